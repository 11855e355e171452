"""Reports of the real matrix: JSON, Markdown, HTML and JUnit from one results model.

Why: a release engineer reads the real grid beside the model's prediction and
the static checker's verdict, and CI needs each real migration as a test case.
One grid per configuration: a row per machine type, a column per (source,
destination) pair; each cell shows QEMU's outcome, and marks where the model
or the static checker said otherwise. Every disagreement is listed with the
reason on both sides.
"""

from __future__ import annotations

import html
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree

from migcompat.compat.real import NOT_APPLICABLE, OK, RealCell, RealResults

__all__ = ["write_real"]

FILES = ("real.json", "real.md", "real.html", "real-junit.xml")


def write_real(results: RealResults, out_dir: Path) -> list[Path]:
    """Write the four reports into ``out_dir``; their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    texts = {
        "real.json": json.dumps(results.to_json(), indent=2) + "\n",
        "real.md": markdown(results),
        "real.html": html_page(results),
        "real-junit.xml": junit(results),
    }
    written = []
    for name in FILES:
        path = out_dir / name
        scratch = path.with_name(f".{name}.tmp")
        scratch.write_text(texts[name])
        scratch.replace(path)
        written.append(path)
    return written


def _pairs(results: RealResults) -> list[tuple[str, str]]:
    return list(dict.fromkeys((cell.source, cell.destination) for cell in results.cells))


def _grid(results: RealResults) -> dict[str, dict[str, dict[tuple[str, str], RealCell]]]:
    grid: dict[str, dict[str, dict[tuple[str, str], RealCell]]] = {}
    for cell in results.cells:
        grid.setdefault(cell.config, {}).setdefault(cell.machine, {})[cell.source, cell.destination] = cell
    return grid


def _mark(cell: RealCell) -> str:
    """QEMU's outcome; ``≠model`` / ``≠static`` where they said otherwise (``explained``
    where the disagreement has a reason in the evidence)."""
    marks = [cell.real]
    if not cell.agrees:
        marks.append("(explained)" if cell.explanation else f"≠model {cell.model}")
    if cell.static_agrees is False:
        marks.append(f"≠static {cell.static}")
    return " ".join(marks)


def _disagreement_lines(results: RealResults) -> Iterator[str]:
    for cell in results.disagreements:
        yield f"{cell.key}: QEMU {cell.real} ({cell.message}); the model said {cell.model} ({cell.model_reason})"
    for cell in results.static_false_alarms:
        first = cell.static_findings[0] if cell.static_findings else ""
        yield f"{cell.key}: static checker false alarm: incompatible ({first}), yet QEMU migrated it intact"
    for cell in results.static_misses:
        yield f"{cell.key}: static checker miss: compatible, yet QEMU {cell.real} ({cell.message})"
    for (config, machine, source), (agrees, detail) in results.layouts.items():
        if not agrees:
            yield f"{config}@{machine}/{source}: the model's layout is wrong: {detail}"


def markdown(results: RealResults) -> str:
    lines = ["# Real matrix", "", results.headline(), ""]
    lines.append("Releases: " + ", ".join(f"{name} (QEMU {v})" for name, v in results.releases.items()))
    lines.append("")
    pairs = _pairs(results)
    for config, rows in _grid(results).items():
        lines += [f"## {config}", "", "| machine type | " + " | ".join(f"{s} → {d}" for s, d in pairs) + " |"]
        lines.append("| --- |" + " --- |" * len(pairs))
        for machine, cells in rows.items():
            shown = [_mark(cells[pair]) if pair in cells else "" for pair in pairs]
            lines.append(f"| `{machine}` | " + " | ".join(shown) + " |")
        lines.append("")
    found = list(_disagreement_lines(results))
    lines += ["## Disagreements", ""] + ([f"- {line}" for line in found] or ["None."]) + [""]
    if results.layouts:
        lines += ["## The model's layouts", ""]
        lines.append("The reference virtio-net-pci of the model under each machine type, against the bytes QEMU wrote:")
        lines.append("")
        for (config, machine, source), (agrees, detail) in results.layouts.items():
            lines.append(f"- {'✓' if agrees else '✗'} `{config}@{machine}` from {source}: {detail}")
        lines.append("")
    unsent = Counter(line.split(":")[0] for cell in results.cells for line in cell.static_unsent)
    if unsent:
        lines += ["## Static findings set aside", ""]
        lines.append("Findings about a member the source's stream did not carry (a subsection only a running guest")
        lines.append("makes needed, a field the machine type's compatibility properties turn off), by rule and member:")
        lines += [""] + [f"- {count} cells: `{finding}`" for finding, count in unsent.most_common()] + [""]
    corrupt = [cell for cell in results.cells if cell.real not in (OK, "refused")]
    if corrupt:
        lines += ["## Corrupt and crashed migrations", ""]
        lines += [f"- {cell.key}: {cell.real}: " + "; ".join(cell.changes[:5] or [cell.message]) for cell in corrupt]
        lines.append("")
    return "\n".join(lines)


_STYLE = """body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse;margin-bottom:1.5em}
td,th{border:1px solid #999;padding:.3em .6em;font-size:90%}td.ok{background:#cfc}td.refused{background:#ddf}
td.corrupt{background:#f99}td.crash{background:#fc6}td.disagree{outline:3px solid #c00}code{font-size:95%}"""


def html_page(results: RealResults) -> str:
    e = html.escape
    out = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>migcompat real matrix</title>",
        f"<style>{_STYLE}</style></head><body><h1>Real matrix</h1><p>{e(results.headline())}</p>",
    ]
    pairs = _pairs(results)
    for config, rows in _grid(results).items():
        out.append(f"<h2>{e(config)}</h2><table><tr><th>machine type</th>")
        out += [f"<th>{e(s)} → {e(d)}</th>" for s, d in pairs] + ["</tr>"]
        for machine, cells in rows.items():
            out.append(f"<tr><th><code>{e(machine)}</code></th>")
            for pair in pairs:
                cell = cells.get(pair)
                if cell is None:
                    out.append("<td></td>")
                    continue
                disagree = " disagree" if not cell.agrees or cell.static_agrees is False else ""
                title = f"model: {cell.model} ({cell.model_reason}); static: {cell.static}; {cell.message}"
                out.append(f"<td class='{e(cell.real)}{disagree}' title='{e(title)}'>{e(_mark(cell))}</td>")
            out.append("</tr>")
        out.append("</table>")
    found = list(_disagreement_lines(results))
    out.append("<h2>Disagreements</h2><ul>" + "".join(f"<li>{e(line)}</li>" for line in found) + "</ul>")
    if not found:
        out.append("<p>None.</p>")
    out.append("</body></html>\n")
    return "".join(out)


def junit(results: RealResults) -> str:
    suite = ElementTree.Element(
        "testsuite",
        name="migcompat.real",
        tests=str(len(results.cells)),
        failures=str(sum(cell.fails for cell in results.cells)),
        time=f"{results.seconds:.3f}",
    )
    for cell in results.cells:
        case = ElementTree.SubElement(
            suite, "testcase", classname=f"real.{cell.config}", name=cell.key, time=f"{cell.seconds:.3f}"
        )
        if cell.fails:
            failure = ElementTree.SubElement(case, "failure", message=cell.failure)
            failure.text = "\n".join([cell.message, *cell.changes])
        static = cell.static if cell.static != NOT_APPLICABLE else "no verdict (machine type)"
        explained = f"; explained: {cell.explanation}" if cell.explanation else ""
        ElementTree.SubElement(case, "system-out").text = f"static checker: {static}; {cell.message}{explained}"
    return ElementTree.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"
