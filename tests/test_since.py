"""The version each field of a section arrived in, measured of real QEMU (:mod:`migcompat.qemu.since`).

The committed tables (``corpora/qemu-X/minimum-versions.json``) are checked
against a second, independent source where one exists -- the release's own
``-dump-vmstate`` -- and re-measured from a live release; the walk itself is
checked on QEMU answers that do not add up.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from _support import require_release, run_cli

from migcompat.compat import agree
from migcompat.errors import UsageError
from migcompat.qemu import dump, minimums, since, vmdesc
from migcompat.qemu.stream import SECTION_FULL, parse_qemu

ROOT = Path(__file__).resolve().parent.parent / "corpora"
RELEASES = ("5.2", "7.2", "10.0")


def _sections(capture: Path, table: minimums.Table) -> dict[str, since.ProbedSection]:
    data = capture.read_bytes()
    parsed = parse_qemu(data, decode_vmdesc=False)
    assert parsed.vmdesc is not None
    entries = vmdesc.section_entries(vmdesc.parse(parsed.vmdesc) or {})
    found = {}
    for record in parsed.records:
        entry = entries.get((record.idstr, record.instance_id))
        vmsd = entry.get("vmsd_name") if entry else None
        if record.kind == SECTION_FULL and isinstance(vmsd, str) and record.span is not None and entry:
            _start, body, footer = record.span
            found[vmsd] = since.ProbedSection(vmsd, entry, record.version_id, table.minimums[vmsd], body, footer)
    return found


@pytest.mark.parametrize("release", RELEASES)
def test_the_measured_field_versions_match_the_dump_wherever_the_dump_has_the_section(release: str) -> None:
    folder = ROOT / f"qemu-{release}"
    table = minimums.read(folder / agree.MINIMUMS)
    layout = dump.read(json.loads((folder / "vmstate-pc.json").read_bytes()), "dump")
    dumped = {top.description.name: top.description for top in layout.sections.values()}
    compared = 0
    for vmsd, (version, fields) in table.fields_since.items():
        section = dumped.get(vmsd)
        if section is None or section.version_id != version:
            continue
        minimum = table.minimums[vmsd]
        expected = {m.name: m.since for m in section.members if m.since > minimum}
        # The dump names an array once; the measurement may name its elements (name[0]).
        measured = {name if name in expected else re.sub(r"\[\d+\]$", "", name): v for name, v in fields.items()}
        assert measured == expected, vmsd
        compared += 1
    assert compared >= 4, "the dump describes most of the sections measured"


@pytest.mark.parametrize("release", RELEASES)
def test_every_release_table_reads_the_older_cpu_and_ide_sections_field_by_field(release: str) -> None:
    table = minimums.read(ROOT / f"qemu-{release}" / agree.MINIMUMS)
    cpu_version, cpu = table.fields_since["cpu"]
    assert cpu_version > table.minimums["cpu"] and cpu and all(v == cpu_version for v in cpu.values())
    ide_version, ide = table.fields_since["ide"]
    assert table.minimums["ide"] < min(ide.values()) <= max(ide.values()) == ide_version


@pytest.mark.parametrize("release", RELEASES)
def test_a_live_release_measures_what_its_table_says(release: str) -> None:
    require_release(release)
    table = minimums.read(ROOT / f"qemu-{release}" / agree.MINIMUMS)
    capture = ROOT / f"qemu-{release}" / "pc-virtio-net.bin"
    wanted = [s for name, s in _sections(capture, table).items() if name in ("ide", "timer", "mc146818rtc")]
    from migcompat.qemu import peer

    measured = since.probe(release, peer.CONFIGS["pc-virtio-net"], capture.read_bytes(), wanted, timeout=30)
    assert set(measured) == {"ide", "timer", "mc146818rtc"}
    for vmsd, fields in measured.items():
        minimum = table.minimums[vmsd]
        assert {n: v for n, v in fields if v > minimum} == table.fields_since[vmsd][1]


def _ide(release: str = "7.2") -> tuple[since.ProbedSection, bytes]:
    table = minimums.read(ROOT / f"qemu-{release}" / agree.MINIMUMS)
    capture = ROOT / f"qemu-{release}" / "pc-virtio-net.bin"
    return _sections(capture, table)["ide"], capture.read_bytes()


def test_answers_that_never_let_the_rebuilt_stream_load_measure_nothing() -> None:
    section, data = _ide()
    calls: list[int] = []

    def refusing(stream: bytes) -> tuple[bool, str]:
        calls.append(len(stream))
        return False, "qemu-system-x86_64: Missing section footer for 0000:00:01.1/ide"

    assert since.probe_section(section, data, refusing) is None
    assert len(calls) == 2, "no field named: one cut stream, then the rebuilt one, refused"


def test_a_field_qemu_names_that_the_section_does_not_have_measures_nothing() -> None:
    section, data = _ide()
    assert since.probe_section(section, data, lambda _s: (False, "Failed to load ide:no_such_field")) is None


def test_a_capture_whose_fields_overrun_the_section_measures_nothing() -> None:
    section, data = _ide()
    cut = since.ProbedSection(section.vmsd_name, section.entry, section.version_id, 0, section.body, section.body + 10)
    assert since.probe_section(cut, data, lambda _s: (True, "")) is None


def test_a_table_with_broken_field_versions_is_refused_naming_the_file(tmp_path: Path) -> None:
    table = tmp_path / "minimums.json"
    for broken in (
        {"minimum_version_id": {}, "fields_since": {"cpu": {"version_id": 12, "fields": {"x": 13}}}},
        {"minimum_version_id": {}, "fields_since": {"cpu": {"fields": {}}}},
        {"minimum_version_id": {}, "fields_since": {"cpu": {"version_id": 12, "fields": {"x": True}}}},
    ):
        table.write_text(json.dumps(broken))
        with pytest.raises(UsageError, match="is not a minimum-versions table"):
            minimums.read(table)
        capture = ROOT / "qemu-7.2" / "pc-virtio-net.bin"
        code, out, err = run_cli("check", str(capture), "--against", str(capture), "--minimums", str(table))
        assert code == 2 and str(table) in err and "Traceback" not in out + err


def test_an_older_cpu_section_is_read_field_by_field_and_refused_as_qemu_refuses_it(tmp_path: Path) -> None:
    capture = ROOT / "qemu-7.2" / "pc-virtio-net.bin"
    data = capture.read_bytes()
    section = _sections(capture, minimums.read(ROOT / "qemu-7.2" / agree.MINIMUMS))["cpu"]
    older = data[: section.body - 4] + (11).to_bytes(4, "big") + data[section.body :]
    mutant = tmp_path / "older-cpu.bin"
    mutant.write_bytes(older)
    folder = capture.parent
    common = ["--minimums", str(folder / agree.MINIMUMS), "--dump", str(folder / "vmstate-pc.json")]
    code, out, _err = run_cli("check", str(mutant), "--against", str(capture), *common)
    # Version 11 has no xcr0, xstate_bv, ymmh registers: QEMU reads fewer bytes and misses the footer.
    assert code == 1 and "Missing section footer for cpu" in out
