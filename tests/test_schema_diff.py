"""The static checker: every rule on migcompat's dumps and on edited QEMU dumps, levels checked against real loads.

Each rule has a case built from two small descriptions (OLD writes, NEW
reads). The static verdict per wire format must be what actually happens when
NEW loads a stream OLD wrote on that format -- so a rule's level (WIRE,
WIRE_LEGACY, WIRE_BER, ADVISORY) is measured, not asserted -- and every
finding's JSON pointers must resolve in the documents. QEMU's
``-dump-vmstate`` checks run on copies of the committed 7.2 dump edited in the
test, covering what ``scripts/vmstate-static-checker.py`` reports and the cases
it misses. Broken input of every kind exits 2 with one line.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from _support import run_cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from migcompat.cli import EXIT_INCOMPATIBLE, EXIT_OK, EXIT_USAGE
from migcompat.compat import cell
from migcompat.compat.classify import classify
from migcompat.errors import UsageError
from migcompat.model.projection import project
from migcompat.model.vmstate import Array, Buffer, Description, Field, Scalar, State, Struct, Subsection
from migcompat.outcomes import Outcome
from migcompat.qemu import dump as qemu_dump
from migcompat.schema import diff as schema_diff
from migcompat.schema import dump as schema_dump
from migcompat.schema import input as schema_input
from migcompat.schema import read as schema_read
from migcompat.schema.diff import BACKWARD, FORWARD
from migcompat.schema.rules import RULES, Level
from migcompat.schema.visitor import SCHEMA_FORMAT, description_schema
from migcompat.wire.visitor import Framing, ListFraming

ROOT = Path(__file__).parent.parent
SCHEMAS = ROOT / "corpora" / "schemas"
QEMU_DUMP = ROOT / "corpora" / "qemu-7.2" / "vmstate-pc.json"
U8, U16, U32, S16 = Scalar("uint8"), Scalar("uint16"), Scalar("uint32"), Scalar("int16")


def document(description: Description) -> dict[str, Any]:
    out = description_schema(description)
    out["x-migcompat"] = {"format": SCHEMA_FORMAT, "kind": "device"}
    return out


def resolve(doc: Any, pointer: str) -> Any:
    """Follow an RFC 6901 pointer, independently of the code under test."""
    value = doc
    for token in pointer.split("/")[1:] if pointer else []:
        token = token.replace("~1", "/").replace("~0", "~")
        value = value[int(token)] if isinstance(value, list) else value[token]
    return value


def desc(*fields: Field, name: str = "dev", version: int = 1, minimum: int = 1, **options: Any) -> Description:
    return Description(name, version, minimum, tuple(fields), **options)


# -- one case per rule: static verdict against real loads ------------------------------------


@dataclass
class Case:
    rule: str
    old: Description
    new: Description
    #: A state OLD writes that shows the change.
    state: State
    #: What NEW should load, when it is not the name-by-name projection (renames, reshapes).
    expected: Callable[[State], State] | None = None
    #: Rules that may come along with the one the case is about.
    also: set[str] = field(default_factory=set)


def _renamed(state: State) -> State:
    return {("c" if key == "b" else key): value for key, value in state.items()}


def _grouped(state: State) -> State:
    return {"a": state["a"], "pair": {"lo": state["lo"], "hi": state["hi"]}}


def _to_struct(state: State) -> State:
    return {**state, "t": {"t_0": state["t"][0], "t_1": state["t"][1]}}


INNER = desc(Field("x", U16), name="inner")
SUB = Subsection(desc(Field("flag", U8), name="dev/extra"))
SKIPPABLE = Subsection(desc(Field("flag", U8), name="dev/extra"), critical=False)
COUNTED = Framing(ListFraming.COUNT, count_bits=32)

CASES: list[Case] = [
    Case("FIELD_REMOVED", desc(Field("a", U16), Field("b", U32)), desc(Field("a", U16)), {"a": 1, "b": 2}),
    Case("FIELD_ADDED", desc(Field("a", U16)), desc(Field("a", U16), Field("b", U32)), {"a": 1}),
    Case(
        "FIELD_RENAMED",
        desc(Field("a", U16), Field("b", U32)),
        desc(Field("a", U16), Field("c", U32)),
        {"a": 1, "b": 2},
        expected=_renamed,
    ),
    Case(
        "FIELDS_REGROUPED",
        desc(Field("a", U16), Field("lo", U16), Field("hi", U32)),
        desc(Field("a", U16), Field("pair", Struct("pair", (Field("lo", U16), Field("hi", U32))))),
        {"a": 1, "lo": 2, "hi": 3},
        expected=_grouped,
    ),
    Case(
        "FIELD_REORDERED",
        desc(Field("a", U16), Field("b", U32)),
        desc(Field("b", U32), Field("a", U16)),
        {"a": 1, "b": 2},
    ),
    Case(
        "WIDTH_CHANGED", desc(Field("a", U16), Field("b", U8)), desc(Field("a", U32), Field("b", U8)), {"a": 1, "b": 2}
    ),
    Case("SIGN_CHANGED", desc(Field("a", U16)), desc(Field("a", Scalar("int16"))), {"a": 0xFFFF}),
    Case(
        "SHAPE_CHANGED",
        desc(Field("t", Array(Scalar("int16"), length=2))),
        desc(Field("t", Struct("t", (Field("t_0", Scalar("int16")), Field("t_1", Scalar("int16")))))),
        {"t": [-1, 7]},
        expected=_to_struct,
    ),
    Case(
        "TYPE_CHANGED",
        desc(Field("a", U32)),
        desc(Field("a", Struct("pair", (Field("x", U16), Field("y", U16))))),
        {"a": 0x00010002},
    ),
    Case(
        "ARRAY_LENGTH_CHANGED",
        desc(Field("v", Array(U8, length=4))),
        desc(Field("v", Array(U8, length=5))),
        {"v": [1, 2, 3, 4]},
    ),
    Case("BUFFER_SIZE_CHANGED", desc(Field("m", Buffer(6))), desc(Field("m", Buffer(7))), {"m": b"abcdef"}),
    Case(
        "FRAMING_CHANGED",
        desc(Field("q", Array(U16, framing=COUNTED)), Field("z", U8)),
        desc(Field("q", Array(U16, framing=Framing(ListFraming.COUNT, count_bits=16))), Field("z", U8)),
        {"q": [5, 6], "z": 9},
    ),
    Case(
        "FRAMING_CHANGED",
        desc(Field("q", Array(U16, framing=Framing(ListFraming.SENTINEL, marker=42, terminator=0)))),
        desc(Field("q", Array(U16, framing=Framing(ListFraming.SENTINEL, marker=43, terminator=0)))),
        {"q": [5]},
    ),
    Case(
        "MAX_LENGTH_LOWERED",
        desc(Field("q", Array(U16, framing=COUNTED))),
        desc(Field("q", Array(U16, framing=COUNTED, max_length=2))),
        {"q": [1, 2, 3]},
    ),
    Case(
        "CONDITION_CHANGED",
        desc(Field("a", U8), Field("b", U32, when=("a", 1))),
        desc(Field("a", U8), Field("b", U32, when=("a", 2))),
        {"a": 1, "b": 7},
    ),
    Case(
        "SUBSECTION_REMOVED",
        desc(Field("a", U8), subsections=(SUB,)),
        desc(Field("a", U8)),
        {"a": 1, "dev/extra": {"flag": 1}},
    ),
    Case("SUBSECTION_ADDED", desc(Field("a", U8)), desc(Field("a", U8), subsections=(SUB,)), {"a": 1}),
    Case(
        "SUBSECTION_SKIPPED",
        desc(Field("a", U8), subsections=(SKIPPABLE,)),
        desc(Field("a", U8), accept_unknown=True),
        {"a": 1, "dev/extra": {"flag": 1}},
    ),
    Case("VERSION_TOO_NEW", desc(Field("a", U8), version=2), desc(Field("a", U8), version=1), {"a": 1}),
    Case(
        "VERSION_TOO_NEW",  # ... but a BER destination that accepts unknown members loads it
        desc(Field("a", U8), Field("b", U8, since=2), version=2),
        desc(Field("a", U8), version=1, accept_unknown=True),
        {"a": 1, "b": 2},
        also={"FIELD_REMOVED"},
    ),
    Case(
        "VERSION_BELOW_MINIMUM",
        desc(Field("a", U8), version=1),
        desc(Field("a", U8), version=2, minimum=2),
        {"a": 1},
    ),
    Case(
        "DESCRIPTION_RENAMED",
        desc(Field("n", INNER)),
        desc(Field("n", desc(Field("x", U16), name="inner2"))),
        {"n": {"x": 5}},
    ),
    Case(
        "DESCRIPTION_RENAMED",
        desc(Field("s", Struct("old-struct", (Field("x", U16),)))),
        desc(Field("s", Struct("new-struct", (Field("x", U16),)))),
        {"s": {"x": 5}},
    ),
    Case(
        "FIELD_VERSION_CHANGED",
        desc(Field("a", U8), Field("b", U8, since=1), version=2),
        desc(Field("a", U8), Field("b", U8, since=2), version=2),
        {"a": 1, "b": 2},
    ),
]
CASE_IDS = [f"{case.rule}-{index}" for index, case in enumerate(CASES)]


def _dynamic(case: Case, wire: str) -> Outcome:
    """What really happens when NEW loads what OLD wrote on ``wire``."""

    def load() -> State:
        stream = cell.encode(wire, case.old, case.state)
        return cell.decode(wire, case.new, stream, case.old.version_id)

    def expected() -> State:
        state = case.expected(case.state) if case.expected else case.state
        source = case.new if case.expected else case.old
        return project(state, source, case.new)

    return classify(load, expected, "differs").outcome


def test_every_rule_has_a_case_or_is_qemu_only() -> None:
    qemu_only = {"SECTION_REMOVED", "SECTION_ADDED", "SIZE_CHANGED", "FIELD_UNUSED", "MACHINE_TYPE_CHANGED"}
    assert {case.rule for case in CASES} | qemu_only == {rule.id for rule in RULES}


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_each_rule_fires_with_its_level_and_its_pointers_resolve(case: Case) -> None:
    old, new = document(case.old), document(case.new)
    report = schema_diff.compare(schema_read.read(old, "old"), schema_read.read(new, "new"))
    rules = {finding.rule for finding in report.findings}
    assert case.rule in rules
    assert rules <= {case.rule} | case.also, report.findings
    for finding in report.findings:
        if finding.old is not None:
            resolve(old, finding.old)
        if finding.new is not None:
            resolve(new, finding.new)
        assert finding.message and finding.direction == FORWARD


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("wire", ["qemufile", "ber"])
def test_each_rules_static_verdict_is_what_a_real_load_does(case: Case, wire: str) -> None:
    report = schema_diff.compare(
        schema_read.read(document(case.old), "old"), schema_read.read(document(case.new), "new")
    )
    outcome = _dynamic(case, wire)
    assert outcome is not Outcome.CRASH
    assert report.compatible((wire,)) == (outcome is Outcome.OK), (
        f"static {'compatible' if report.compatible((wire,)) else report.rules((wire,))}, dynamic {outcome}"
    )


def test_levels_say_which_wire_breaks() -> None:
    assert Level.WIRE.breaks == {"qemufile", "ber"}
    assert Level.WIRE_LEGACY.breaks == {"qemufile"}
    assert Level.WIRE_BER.breaks == {"ber"}
    assert Level.ADVISORY.breaks == frozenset()


def test_a_properly_versioned_addition_is_compatible_forward_and_refused_backward() -> None:
    old = desc(Field("a", U16), version=1)
    new = desc(Field("a", U16), Field("b", U32, since=2), version=2)
    report = schema_diff.compare(
        schema_read.read(document(old), "old"), schema_read.read(document(new), "new"), (FORWARD, BACKWARD)
    )
    assert [(f.direction, f.rule) for f in report.findings] == [(BACKWARD, "VERSION_TOO_NEW")]


def test_a_gated_field_the_destination_reads_later_is_explained() -> None:
    old = desc(Field("a", U16), Field("b", U32), version=2)
    new = desc(Field("a", U16), Field("b", U32, since=3), version=3)
    report = schema_diff.compare(schema_read.read(document(old), "old"), schema_read.read(document(new), "new"))
    (finding,) = report.findings
    assert finding.rule == "FIELD_REMOVED" and "only from version 3" in finding.message


# -- migcompat's committed dumps -----------------------------------------------------------------


def test_slirp_upgrades_are_compatible_and_downgrades_refused_by_version() -> None:
    code, out, _ = run_cli("diff", str(SCHEMAS / "slirp" / "v3.json"), str(SCHEMAS / "slirp" / "v4.json"))
    assert code == EXIT_OK and "forward (OLD writes, NEW reads): compatible" in out
    code, out, _ = run_cli("diff", str(SCHEMAS / "slirp" / "v4.json"), str(SCHEMAS / "slirp" / "v3.json"))
    assert code == EXIT_INCOMPATIBLE
    assert "VERSION_TOO_NEW" in out and "reads versions 1..3 and refuses it" in out


def test_virtio_destination_only_subsections_are_reported_as_advisory() -> None:
    code, out, _ = run_cli("diff", "virtio@qemu-2.1", "virtio@qemu-2.4", "--format", "json")
    assert code == EXIT_OK
    report = json.loads(out)
    assert report["compatible"] is True
    added = [f for f in report["findings"] if f["rule"] == "SUBSECTION_ADDED"]
    assert {f["path"].rsplit("/", 2)[-2] + "/" + f["path"].rsplit("/", 1)[-1] for f in added} == {
        "virtio/device_endian",
        "virtio/64bit_features",
        "virtio/virtqueues",
    }
    assert all(f["level"] == "ADVISORY" and f["breaks"] == [] for f in added)


def test_both_directions_show_what_each_way_breaks() -> None:
    code, out, _ = run_cli("diff", "virtio@qemu-2.2", "virtio@qemu-2.4", "--direction", "both", "--format", "json")
    assert code == EXIT_INCOMPATIBLE
    report = json.loads(out)
    assert report["verdicts"] == {"forward": "compatible", "backward": "incompatible"}
    backward = {f["rule"] for f in report["findings"] if f["direction"] == "backward"}
    assert backward == {"MAX_LENGTH_LOWERED", "SUBSECTION_REMOVED"}
    removed = next(f for f in report["findings"] if f["rule"] == "SUBSECTION_REMOVED")
    # Backward: NEW is the source, so the subsection is in NEW's document and missing from OLD's.
    assert removed["new"].startswith("/$defs/virtio~1") and removed["old"] == "/properties/virtio"


def test_whole_release_dumps_report_removed_and_added_sections(tmp_path: Path) -> None:
    release = json.loads((SCHEMAS / "releases" / "hv-2022.json").read_text())
    without = copy.deepcopy(release)
    del without["properties"]["slirp"]
    without["x-order"].remove("slirp")
    without["required"].remove("slirp")
    path = tmp_path / "hv-without-slirp.json"
    path.write_text(json.dumps(without))
    code, out, _ = run_cli("diff", str(SCHEMAS / "releases" / "hv-2022.json"), str(path), "--format", "json")
    assert code == EXIT_INCOMPATIBLE
    findings = json.loads(out)["findings"]
    assert [(f["rule"], f["section"], f["old"]) for f in findings] == [
        ("SECTION_REMOVED", "slirp", "/properties/slirp")
    ]
    code, out, _ = run_cli("diff", str(path), str(SCHEMAS / "releases" / "hv-2022.json"))
    assert code == EXIT_OK and "SECTION_ADDED at slirp" in out


def test_release_names_work_in_place_of_files() -> None:
    # A migration runs the source's machine type on both sides: then hv-2022 reads hv-2014.
    code, out, _ = run_cli("diff", "hv-2014", "hv-2022", "--machine", "pc-i440fx-2.1")
    assert code == EXIT_OK and "SUBSECTION_ADDED" in out
    # On its own machine type hv-2022's virtio-net has 4 MSI-X vectors where hv-2014's has 3.
    code, out, _ = run_cli("diff", "hv-2014", "hv-2022")
    assert code == EXIT_INCOMPATIBLE and "BUFFER_SIZE_CHANGED" in out and "msix_table" in out
    code, out, _ = run_cli("diff", "virtio@qemu-10.0@pc-i440fx-5.2", "virtio@qemu-5.2", "--format", "json")
    assert code == EXIT_OK, out
    code, _, err = run_cli("diff", "hv-2022", "hv-2014", "--machine", "pc-i440fx-10.0")
    assert code == EXIT_USAGE and "does not know machine type pc-i440fx-10.0" in err
    code, out, _ = run_cli("diff", "hv-2022", "hv-2014")
    assert code == EXIT_INCOMPATIBLE and "VERSION_TOO_NEW" in out and "SUBSECTION_REMOVED" in out


def test_an_edited_minimum_version_is_reported_with_a_pointer_into_new(tmp_path: Path) -> None:
    edited = json.loads((SCHEMAS / "slirp" / "v4.json").read_text())
    edited["x-minimum-version-id"] = 4
    path = tmp_path / "v4-min4.json"
    path.write_text(json.dumps(edited))
    code, out, _ = run_cli("diff", str(SCHEMAS / "slirp" / "v3.json"), str(path), "--format", "json")
    assert code == EXIT_INCOMPATIBLE
    (finding,) = json.loads(out)["findings"]
    assert (finding["rule"], finding["new"]) == ("VERSION_BELOW_MINIMUM", "/x-minimum-version-id")


def test_wire_option_counts_only_that_wire() -> None:
    old = document(desc(Field("a", U16), Field("b", U32)))
    new = document(desc(Field("a", U16), Field("c", U32)))
    layouts = schema_read.read(old, "old"), schema_read.read(new, "new")
    report = schema_diff.compare(*layouts)
    assert report.rules() == ["FIELD_RENAMED"]
    assert report.compatible(("qemufile",)) and not report.compatible(("ber",))


def test_text_output_names_rule_level_pointers_and_why(tmp_path: Path) -> None:
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    old.write_text(json.dumps(document(desc(Field("a", U16)))))
    new.write_text(json.dumps(document(desc(Field("a", U32)))))
    code, out, err = run_cli("diff", str(old), str(new))
    assert code == EXIT_INCOMPATIBLE and err == ""
    assert "WIRE        WIDTH_CHANGED at dev/a" in out
    assert "old /properties/a, new /properties/a" in out
    assert "written as uint16 (2 bytes), read as uint32 (4 bytes)" in out
    assert out.rstrip().endswith("1 finding: 1 breaking (all wires), 0 not; incompatible")
    code, out, _ = run_cli("diff", str(old), str(new), "--wire", "qemufile", "--format", "json")
    assert code == EXIT_INCOMPATIBLE and json.loads(out)["wires"] == ["qemufile"]


# -- QEMU's -dump-vmstate ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def qemu() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(QEMU_DUMP.read_text())
    return loaded


def qemu_diff(tmp_path: Path, old: dict[str, Any], new: dict[str, Any], *extra: str) -> tuple[int, dict[str, Any]]:
    before, after = tmp_path / "old.json", tmp_path / "new.json"
    before.write_text(json.dumps(old))
    after.write_text(json.dumps(new))
    code, out, err = run_cli("diff", str(before), str(after), "--format", "json", *extra)
    assert err == "", err
    return code, json.loads(out)


def edited(base: dict[str, Any], edit: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    copied = copy.deepcopy(base)
    edit(copied)
    return copied


def test_the_committed_qemu_dump_against_itself_is_clean(qemu: dict[str, Any]) -> None:
    layout = qemu_dump.read(qemu, "dump")
    assert len(layout.sections) == 213 and layout.machine == "pc-i440fx-7.2"
    code, out, _ = run_cli("diff", str(QEMU_DUMP), str(QEMU_DUMP), "--direction", "both")
    assert code == EXIT_OK and "0 findings" in out


def _fields(dump: dict[str, Any], section: str) -> list[dict[str, Any]]:
    fields: list[dict[str, Any]] = dump[section]["Description"]["Fields"]
    return fields


QEMU_CASES: dict[str, tuple[Callable[[dict[str, Any]], None], str, str, bool]] = {
    # name: (edit NEW, rule, pointer it must name, counted by QEMU's checker)
    "section missing": (lambda d: d.pop("isa-pcspk"), "SECTION_REMOVED", "/isa-pcspk", True),
    "section version": (lambda d: d["e1000"].update(version_id=1), "VERSION_TOO_NEW", "/e1000/version_id", True),
    "description version": (
        lambda d: d["e1000"]["Description"].update(version_id=1),
        "VERSION_TOO_NEW",
        "/e1000/Description/version_id",
        True,
    ),
    "section minimum version": (
        lambda d: d["mc146818rtc"].update(minimum_version_id=4),
        "VERSION_BELOW_MINIMUM",
        "/mc146818rtc/minimum_version_id",
        False,  # printed, never counted: QEMU's checker misses it
    ),
    "description minimum version": (
        lambda d: d["mc146818rtc"]["Description"].update(minimum_version_id=4),
        "VERSION_BELOW_MINIMUM",
        "/mc146818rtc/Description/minimum_version_id",
        True,
    ),
    "field renamed": (
        lambda d: _fields(d, "fw_cfg_io")[0].update(field="cur_entry_renamed"),
        "FIELD_RENAMED",
        "/fw_cfg_io/Description/Fields/0",
        True,
    ),
    "last field missing": (
        lambda d: _fields(d, "mc146818rtc").pop(),
        "FIELD_REMOVED",
        "/mc146818rtc/Description/Fields/12",
        True,
    ),
    "field appended": (
        lambda d: _fields(d, "i8042").append({"field": "extra", "version_id": 0, "field_exists": False, "size": 4}),
        "FIELD_ADDED",
        "/i8042/Description/Fields/1",
        False,  # QEMU's checker stops when the source runs out of fields
    ),
    "size mismatch": (
        lambda d: _fields(d, "kvmclock")[0].update(size=4),
        "SIZE_CHANGED",
        "/kvmclock/Description/Fields/0/size",
        True,
    ),
    "subsection not found": (
        lambda d: d["fw_cfg_io"]["Description"]["Subsections"].pop(0),
        "SUBSECTION_REMOVED",
        "/fw_cfg_io/Description/Subsections/0",
        True,
    ),
    "fields reordered": (
        lambda d: _fields(d, "mc146818rtc").insert(0, _fields(d, "mc146818rtc").pop(1)),
        "FIELD_REORDERED",
        "/mc146818rtc/Description/Fields/1",
        True,
    ),
    "missing description": (
        lambda d: _fields(d, "e1000")[0].pop("Description"),
        "TYPE_CHANGED",
        "/e1000/Description/Fields/0",
        True,
    ),
    "test function added": (
        lambda d: _fields(d, "kvmclock")[0].update(field_exists=True),
        "CONDITION_CHANGED",
        "/kvmclock/Description/Fields/0",
        False,
    ),
    "array length (8.0+ dumps)": (
        lambda d: [_fields(d, "mc146818rtc")[0].update(num=1), None][0],
        "ARRAY_LENGTH_CHANGED",
        "/mc146818rtc/Description/Fields/0/num",
        False,
    ),
}


@pytest.mark.parametrize("name", list(QEMU_CASES))
def test_qemu_dump_edits_are_reported_with_rule_and_pointer(qemu: dict[str, Any], tmp_path: Path, name: str) -> None:
    edit, rule, pointer, _qemu_counts = QEMU_CASES[name]
    old = qemu
    if name.startswith("array length"):
        old = edited(qemu, lambda d: _fields(d, "mc146818rtc")[0].update(num=128))
    code, report = qemu_diff(tmp_path, old, edited(qemu, edit))
    assert code == EXIT_INCOMPATIBLE
    assert report["input"] == "qemu"
    matching = [f for f in report["findings"] if f["rule"] == rule]
    assert matching, report["findings"]
    pointers = {f["old"] for f in matching} | {f["new"] for f in matching}
    assert pointer in pointers
    new = edited(qemu, edit)
    for finding in report["findings"]:
        if finding["old"] is not None:
            resolve(old, finding["old"])
        if finding["new"] is not None:
            resolve(new, finding["new"])


def test_qemu_destination_only_subsection_is_reported_and_compatible(qemu: dict[str, Any], tmp_path: Path) -> None:
    new = edited(
        qemu,
        lambda d: (
            d["ps2-kbd"]["Description"]
            .setdefault("Subsections", [])
            .append({"name": "ps2kbd/new", "version_id": 1, "minimum_version_id": 1, "Fields": []})
        ),
    )
    code, report = qemu_diff(tmp_path, qemu, new)
    assert code == EXIT_OK
    assert [(f["rule"], f["level"]) for f in report["findings"]] == [("SUBSECTION_ADDED", "ADVISORY")]
    code, report = qemu_diff(tmp_path, new, qemu)
    assert code == EXIT_INCOMPATIBLE and report["summary"]["rules"] == ["SUBSECTION_REMOVED"]


def test_qemu_rename_breaks_only_the_self_describing_wire(qemu: dict[str, Any], tmp_path: Path) -> None:
    new = edited(qemu, lambda d: _fields(d, "fw_cfg_io")[0].update(field="renamed"))
    code, report = qemu_diff(tmp_path, qemu, new, "--wire", "qemufile")
    assert code == EXIT_OK and report["summary"]["rules"] == []
    assert report["findings"][0]["breaks"] == ["ber"]


def test_qemu_unused_placeholder_of_the_same_size_is_advisory(qemu: dict[str, Any], tmp_path: Path) -> None:
    def retire(dump: dict[str, Any]) -> None:
        fields = _fields(dump, "mc146818rtc")
        periodic, next_time = fields[3], fields[4]  # 8 + 8 bytes
        assert (periodic["size"], next_time["size"]) == (8, 8)
        fields[3:5] = [{"field": "unused", "version_id": 0, "field_exists": False, "size": 16}]

    code, report = qemu_diff(tmp_path, qemu, edited(qemu, retire))
    assert code == EXIT_INCOMPATIBLE  # on BER: the names differ
    assert [(f["rule"], f["level"]) for f in report["findings"]] == [("FIELD_UNUSED", "WIRE_BER")] * 2
    code, _ = qemu_diff(tmp_path, qemu, edited(qemu, retire), "--wire", "qemufile")
    assert code == EXIT_OK

    def wrong_size(dump: dict[str, Any]) -> None:
        retire(dump)
        _fields(dump, "mc146818rtc")[3]["size"] = 12

    code, report = qemu_diff(tmp_path, qemu, edited(qemu, wrong_size))
    assert code == EXIT_INCOMPATIBLE and "FIELD_UNUSED" not in report["summary"]["rules"]


def test_qemu_description_renames_are_advisory(qemu: dict[str, Any], tmp_path: Path) -> None:
    new = edited(qemu, lambda d: _fields(d, "e1000")[0]["Description"].update(name="PCIDeviceRenamed"))
    code, report = qemu_diff(tmp_path, qemu, new)
    assert code == EXIT_OK
    assert [(f["rule"], f["level"]) for f in report["findings"]] == [("DESCRIPTION_RENAMED", "ADVISORY")]
    assert report["findings"][0]["new"] == "/e1000/Description/Fields/0/Description/name"


def test_qemu_machine_type_change_is_refused(qemu: dict[str, Any], tmp_path: Path) -> None:
    """QEMU's checker only warns; the destination's configuration section check refuses the stream."""
    new = edited(qemu, lambda d: d["vmschkmachine"].update(Name="pc-i440fx-2.1"))
    code, report = qemu_diff(tmp_path, qemu, new)
    assert code == EXIT_INCOMPATIBLE
    assert [(f["rule"], f["old"]) for f in report["findings"]] == [("MACHINE_TYPE_CHANGED", "/vmschkmachine/Name")]


def test_qemu_field_version_bump_that_keeps_the_stream_is_advisory(qemu: dict[str, Any], tmp_path: Path) -> None:
    # mc146818rtc is version 3; its field 'base_rtc' arrived in 3. Saying 2 changes nothing for a v3 stream.
    new = edited(qemu, lambda d: _fields(d, "mc146818rtc")[8].update(version_id=2))
    code, report = qemu_diff(tmp_path, qemu, new)
    assert code == EXIT_OK
    assert [f["rule"] for f in report["findings"]] == ["FIELD_VERSION_CHANGED"]
    # Saying 4 takes it off a v3 stream: the destination no longer reads it.
    new = edited(qemu, lambda d: _fields(d, "mc146818rtc")[8].update(version_id=4))
    code, report = qemu_diff(tmp_path, qemu, new)
    assert code == EXIT_INCOMPATIBLE and report["summary"]["rules"] == ["FIELD_REMOVED"]
    assert "only from version 4" in report["findings"][0]["message"]


def test_qemu_duplicate_field_names_stay_positional(qemu: dict[str, Any], tmp_path: Path) -> None:
    # e1000 has two fields named 'unused' (4 bytes each); widen the second only.
    def edit(dump: dict[str, Any]) -> None:
        fields = _fields(dump, "e1000")
        assert fields[1]["field"] == fields[2]["field"] == "unused"
        fields[2]["size"] = 8

    code, report = qemu_diff(tmp_path, qemu, edited(qemu, edit))
    assert code == EXIT_INCOMPATIBLE
    assert [(f["rule"], f["old"]) for f in report["findings"]] == [("SIZE_CHANGED", "/e1000/Description/Fields/2/size")]


def test_a_qemu_dump_cannot_be_compared_with_a_migcompat_schema() -> None:
    code, out, err = run_cli("diff", str(QEMU_DUMP), str(SCHEMAS / "slirp" / "v4.json"))
    assert code == EXIT_USAGE and out == ""
    assert "cannot compare a migcompat schema dump" in err and err.count("\n") == 1


# -- broken input: exit 2, one line, no traceback ------------------------------------------------


BROKEN: dict[str, bytes] = {
    "empty": b"",
    "not json": b"hello",
    "binary": bytes(range(256)),
    "truncated json": (SCHEMAS / "slirp" / "v4.json").read_bytes()[:500],
    "a list": b"[1, 2, 3]",
    "an unrelated object": b'{"name": "x"}',
    "deep nesting": b"[" * 100_000,
    "wrong schema format": json.dumps({"x-migcompat": {"format": 99, "kind": "device"}}).encode(),
    "unknown kind": json.dumps({"x-migcompat": {"format": 1, "kind": "machine"}}).encode(),
    "schema without x-order": json.dumps(
        {
            "x-migcompat": {"format": 1, "kind": "device"},
            "x-kind": "description",
            "x-description": "d",
            "x-version-id": 1,
            "x-minimum-version-id": 1,
            "x-subsections": [],
            "properties": {},
        }
    ).encode(),
    "qemu fields not a list": json.dumps(
        {
            "vmschkmachine": {"Name": "pc"},
            "x": {"version_id": 1, "Description": {"name": "x", "version_id": 1, "Fields": 5}},
        }
    ).encode(),
    "qemu negative size": json.dumps(
        {
            "x": {
                "version_id": 1,
                "Description": {
                    "name": "x",
                    "version_id": 1,
                    "Fields": [{"field": "f", "version_id": 0, "field_exists": False, "size": -1}],
                },
            }
        }
    ).encode(),
    "qemu version a string": json.dumps({"x": {"version_id": "1", "Description": {"name": "x"}}}).encode(),
}


@pytest.mark.parametrize("name", list(BROKEN))
def test_broken_input_is_one_line_and_exit_2(tmp_path: Path, name: str) -> None:
    path = tmp_path / "broken.json"
    path.write_bytes(BROKEN[name])
    for args in ((str(path), str(SCHEMAS / "slirp" / "v4.json")), (str(SCHEMAS / "slirp" / "v4.json"), str(path))):
        code, out, err = run_cli("diff", *args)
        assert code == EXIT_USAGE, (name, out, err)
        assert out == "" and err.startswith("migcompat: error: ") and str(path) in err
        assert err.count("\n") == 1 and "Traceback" not in err


def test_deeply_nested_descriptions_are_refused_not_overflowed(tmp_path: Path) -> None:
    depth = 5000  # parseable JSON, far deeper than any real description
    head = '{"name": "d", "version_id": 1, "Fields": [{"field": "f", "version_id": 0, "size": 1, "Description": '
    text = '{"s": {"version_id": 1, "Description": ' + head * depth + '{"name": "d", "version_id": 1}'
    text += "}]}" * depth + "}}"
    path = tmp_path / "deep.json"
    path.write_text(text)
    code, _, err = run_cli("diff", str(path), str(path))
    assert code == EXIT_USAGE and ("deeper than" in err or "nested too deeply" in err), err
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["missing.json", "slirp@v4"], "missing.json: no such file, and unknown device or release"),
        (["slirp@v9", "slirp@v4"], "device slirp has no release 'v9'"),
        (["corpora", "slirp@v4"], "corpora: is a directory"),
    ],
)
def test_unknown_names_and_paths_are_one_line(args: list[str], expected: str) -> None:
    code, out, err = run_cli("diff", *args)
    assert code == EXIT_USAGE and out == "" and expected in err and err.count("\n") == 1


def test_bad_options_are_usage_errors() -> None:
    assert run_cli("diff", "slirp@v3", "slirp@v4", "--format", "xml")[0] == EXIT_USAGE
    assert run_cli("diff", "slirp@v3", "slirp@v4", "--direction", "sideways")[0] == EXIT_USAGE
    assert run_cli("diff", "slirp@v3")[0] == EXIT_USAGE


def _json_values() -> st.SearchStrategy[Any]:
    scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 300), st.text(max_size=6))
    return st.recursive(
        scalars,
        lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
        max_leaves=20,
    )


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mangled_dumps_load_or_are_refused_cleanly(data: st.DataObject) -> None:
    """A committed dump with one place replaced by arbitrary JSON: a layout or a UsageError, nothing else."""
    kind = data.draw(st.sampled_from(["schema", "qemu"]))
    base: Any = (
        json.loads((SCHEMAS / "virtio" / "qemu-2.2.json").read_text())
        if kind == "schema"
        else {
            "vmschkmachine": {"Name": "pc"},
            "mc146818rtc": json.loads(QEMU_DUMP.read_text())["mc146818rtc"],
        }
    )
    places: list[tuple[Any, Any]] = []

    def collect(value: Any) -> None:
        if isinstance(value, dict):
            places.extend((value, key) for key in value)
            for item in value.values():
                collect(item)
        elif isinstance(value, list):
            places.extend((value, index) for index in range(len(value)))
            for item in value:
                collect(item)

    collect(base)
    container, key = data.draw(st.sampled_from(places))
    container[key] = data.draw(_json_values())
    try:
        layout = schema_read.read(base, "x") if kind == "schema" else qemu_dump.read(base, "x")
    except UsageError:
        return
    schema_diff.compare(layout, layout, (FORWARD, BACKWARD))


def test_the_input_size_limit_is_enforced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(schema_input, "MAX_INPUT_BYTES", 100)
    with pytest.raises(UsageError, match="larger than"):
        schema_input.load(str(SCHEMAS / "slirp" / "v4.json"))


def test_schema_dump_resolution_agrees_with_the_committed_files() -> None:
    for path in SCHEMAS.glob("*/*.json"):
        spec = path.stem if path.parent.name == "releases" else f"{path.parent.name}@{path.stem}"
        left = schema_input.load(str(path))
        right = schema_read.read(schema_dump.resolve(spec), spec)
        assert schema_diff.compare(left, right, (FORWARD, BACKWARD)).findings == []


# -- byte layouts on real releases ---------------------------------------------------------------

QEMU_5_2 = ROOT / "corpora" / "qemu-5.2" / "vmstate-pc.json"
QEMU_10_0 = ROOT / "corpora" / "qemu-10.0" / "vmstate-pc.json"


def test_dumps_before_qemu_8_say_they_give_no_element_counts() -> None:
    old = qemu_dump.read(json.loads(QEMU_5_2.read_text()), "5.2")
    new = qemu_dump.read(json.loads(QEMU_10_0.read_text()), "10.0")
    assert not old.counts_known and new.counts_known


@pytest.mark.parametrize("direction", ["forward", "backward"])
def test_e1000e_retired_interrupt_fields_are_not_wire_breaks_between_5_2_and_10_0(
    tmp_path: Path, direction: str
) -> None:
    """QEMU 10.0 replaced e1000e's itr/eitr 'intr_pending' flags (1 byte; 5 bytes, an array the 5.2 dump
    cannot show) by 'unused' placeholders of the same bytes; e1000e migrates both ways."""
    code, out, err = run_cli("diff", str(QEMU_5_2), str(QEMU_10_0), "--format", "json", "--direction", direction)
    assert err == "" and code == EXIT_INCOMPATIBLE  # other devices do break
    findings = [f for f in json.loads(out)["findings"] if f["section"] == "e1000e"]
    unused = {f["path"]: f for f in findings if f["rule"] == "FIELD_UNUSED"}
    assert set(unused) == {"e1000e/core.itr_intr_pending", "e1000e/core.eitr_intr_pending"}
    assert all(f["level"] == "WIRE_BER" for f in unused.values())
    assert "same 5 bytes" in unused["e1000e/core.eitr_intr_pending"]["message"]
    assert "before 8.0" in unused["e1000e/core.eitr_intr_pending"]["message"]
    assert "before 8.0" not in unused["e1000e/core.itr_intr_pending"]["message"]
    breaking = {(f["rule"], f["path"]) for f in findings if f["level"] not in ("ADVISORY", "WIRE_BER")}
    # What is left is real: timadj is new in 10.0 (gated by a test function at the destination).
    assert breaking == {("FIELD_ADDED" if direction == "forward" else "FIELD_REMOVED", "e1000e/core.timadj")}


def test_an_unknown_count_that_the_bytes_cannot_explain_is_still_a_break(tmp_path: Path) -> None:
    old = json.loads(QEMU_5_2.read_text())
    new = json.loads(QEMU_10_0.read_text())
    placeholder = next(f for f in _fields(new, "e1000e") if f["field"] == "unused" and f["size"] == 5)
    placeholder["size"] = 7  # still a whole number of the 1-byte elements of the 5.2 field
    code, report = qemu_diff(tmp_path, old, new)
    assert "e1000e/core.eitr_intr_pending" in {f["path"] for f in report["findings"] if f["rule"] == "FIELD_UNUSED"}
    old_field = next(f for f in _fields(old, "e1000e") if f["field"] == "core.eitr_intr_pending")
    old_field["size"] = 2  # 7 bytes are no whole number of 2-byte elements
    code, report = qemu_diff(tmp_path, old, new)
    assert code == EXIT_INCOMPATIBLE
    rules = {(f["rule"], f["path"]) for f in report["findings"] if f["section"] == "e1000e"}
    assert ("FIELD_REMOVED", "e1000e/core.eitr_intr_pending") in rules
    assert ("FIELD_ADDED", "e1000e/unused") in rules


def _group(dump: dict[str, Any], section: str, start: int, stop: int) -> None:
    """Move fields[start:stop] of a section into one nested description, as a VMSTATE_STRUCT would."""
    fields = _fields(dump, section)
    inner = {"name": f"{section}-group", "version_id": 1, "minimum_version_id": 1, "Fields": fields[start:stop]}
    fields[start:stop] = [{"field": "group", "version_id": 0, "field_exists": False, "size": 64, "Description": inner}]


def test_fields_regrouped_into_a_struct_with_the_same_bytes_break_only_ber(tmp_path: Path) -> None:
    new = json.loads(QEMU_10_0.read_text())
    old = copy.deepcopy(new)
    sizes = [f["size"] for f in _fields(old, "mc146818rtc")[:3]]
    assert all(isinstance(size, int) for size in sizes)
    _group(new, "mc146818rtc", 0, 3)
    code, report = qemu_diff(tmp_path, old, new, "--wire", "qemufile")
    assert code == EXIT_OK
    assert [(f["rule"], f["level"], f["path"]) for f in report["findings"]] == [
        ("FIELDS_REGROUPED", "WIRE_BER", f"mc146818rtc/{_fields(old, 'mc146818rtc')[0]['field']}")
    ]
    assert f"same {sum(sizes)} legacy bytes" in report["findings"][0]["message"]
    code, report = qemu_diff(tmp_path, new, old, "--wire", "ber")
    assert code == EXIT_INCOMPATIBLE and report["summary"]["rules"] == ["FIELDS_REGROUPED"]


def test_a_regroup_that_moves_bytes_is_not_a_regroup(tmp_path: Path) -> None:
    new = json.loads(QEMU_10_0.read_text())
    old = copy.deepcopy(new)
    _group(new, "mc146818rtc", 0, 3)
    inner = _fields(new, "mc146818rtc")[0]["Description"]["Fields"]
    inner[0], inner[2] = inner[2], inner[0]  # same total, other offsets
    assert inner[0]["size"] != inner[2]["size"]
    code, report = qemu_diff(tmp_path, old, new, "--wire", "qemufile")
    assert code == EXIT_INCOMPATIBLE
    assert "FIELDS_REGROUPED" not in {f["rule"] for f in report["findings"]}


def test_a_regroup_that_changes_a_sign_is_not_a_regroup() -> None:
    old = desc(Field("a", U16), Field("lo", U16), Field("hi", U32))
    new = desc(Field("a", U16), Field("pair", Struct("pair", (Field("lo", S16), Field("hi", U32)))))
    report = schema_diff.compare(schema_read.read(document(old), "old"), schema_read.read(document(new), "new"))
    assert "FIELDS_REGROUPED" not in report.rules() and not report.compatible(("qemufile",))
