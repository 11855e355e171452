"""The JSON-schema visitor and the committed schema dumps.

Every generated state of every release validates against that release's schema
(in both dict shapes: the state as a release holds it, and what the dict visitor
pair carries), and the same states changed out of range at one place do not.
The ``x-`` annotations say what each description declares, the committed files
under ``corpora/schemas`` are exactly what the code writes, and ``migcompat
schema`` prints them and refuses bad names with one line and exit 2.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from _support import run_cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from migcompat import devices
from migcompat.cli import EXIT_OK, EXIT_USAGE
from migcompat.devices import releases
from migcompat.devices.base import Device, Release
from migcompat.model import vmstate
from migcompat.model.vmstate import Array, Buffer, Description, Field, FieldRef, FieldType, Scalar, Struct, Subsection
from migcompat.qemu.render import jsonable
from migcompat.schema import dump as schema_dump
from migcompat.schema.visitor import description_schema, dumps
from migcompat.wire.dict import DictInputVisitor, DictOutputVisitor
from migcompat.wire.visitor import INTEGER_KINDS, ListFraming, integer_range

COMMITTED = Path(__file__).parent.parent / "corpora" / "schemas"
RELEASES = [(device, release) for device in devices.registry().values() for release in device.releases]
IDS = [f"{device.name}@{release.name}" for device, release in RELEASES]
#: Places per state shape the exhaustive test breaks (beyond one of each kind).
MAX_SITES = 60


def validator(device: Device, release: Release) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(schema_dump.device_document(device, release))


def dict_output(description: Description, state: dict[str, Any]) -> Any:
    """What the dict visitor pair carries for ``state``, as JSON (bytes as hex)."""
    return jsonable(vmstate.encode(DictOutputVisitor(), description, state))


# -- the schemas are schemas ---------------------------------------------------------------


@pytest.mark.parametrize(("device", "release"), RELEASES, ids=IDS)
def test_every_release_schema_is_a_valid_draft_2020_12_schema(device: Device, release: Release) -> None:
    document = schema_dump.device_document(device, release)
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(document)


@pytest.mark.parametrize("hypervisor", releases.RELEASES, ids=lambda release: release.name)
def test_every_hypervisor_release_schema_is_valid_and_holds_its_devices(
    hypervisor: releases.HypervisorRelease,
) -> None:
    document = schema_dump.release_document(hypervisor)
    jsonschema.Draft202012Validator.check_schema(document)
    assert document["x-order"] == list(hypervisor.devices)
    for name, release_name in hypervisor.devices.items():
        embedded = document["properties"][name]
        assert embedded["x-migcompat"]["release"] == release_name
    # A whole-release state validates: each device's state under its name.
    state = {}
    for name, release_name in hypervisor.devices.items():
        device = devices.get(name)
        state[name] = jsonable(device.fixed_states(device.release(release_name))[-1])
    validator_ = jsonschema.Draft202012Validator(document)
    assert validator_.is_valid(state)
    del state[next(iter(state))]
    assert not validator_.is_valid(state)


# -- generated states validate, out-of-range ones do not ------------------------------------


@pytest.mark.parametrize(("device", "release"), RELEASES, ids=IDS)
def test_fixed_states_validate_in_both_dict_shapes(device: Device, release: Release) -> None:
    check = validator(device, release)
    for state in device.fixed_states(release):
        assert check.is_valid(jsonable(state)), next(check.iter_errors(jsonable(state))).message
        carried = dict_output(release.description, state)
        assert check.is_valid(carried), next(check.iter_errors(carried)).message


@pytest.mark.parametrize(("device", "release"), RELEASES, ids=IDS)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_every_generated_state_validates_and_no_state_out_of_range_does(
    device: Device, release: Release, data: st.DataObject
) -> None:
    description = release.description
    check = validator(device, release)
    state = data.draw(device.strategy(release))
    carried = vmstate.encode(DictOutputVisitor(), description, state)
    loaded = vmstate.load(DictInputVisitor(carried), description, description.version_id)
    for shape in (jsonable(state), jsonable(carried), jsonable(loaded)):
        errors = list(check.iter_errors(shape))
        assert not errors, (errors[0].message, list(errors[0].absolute_path))
    # One change out of range, anywhere: the schema rejects it.
    shape = data.draw(st.sampled_from([jsonable(state), jsonable(carried)]))
    sites = list(_sites(description, shape))
    assert sites, "every description has a value to break"
    path, kind, broken = data.draw(st.sampled_from(sites))
    mutated = _set(shape, path, broken)
    assert not check.is_valid(mutated), f"{path} set to {broken!r:.80} ({kind}) still validates"


@pytest.mark.parametrize(("device", "release"), RELEASES, ids=IDS)
def test_every_place_of_the_fixed_states_rejects_an_out_of_range_value(device: Device, release: Release) -> None:
    check = validator(device, release)
    kinds: set[str] = set()
    for state in device.fixed_states(release):
        for shape in (jsonable(state), dict_output(release.description, state)):
            sites = list(_sites(release.description, shape))
            # Every kind of place, and an even spread of the rest (a full virtio state is large to validate).
            firsts = {kind: index for index, (_, kind, _) in reversed(list(enumerate(sites)))}
            chosen = sorted(set(firsts.values()) | set(range(0, len(sites), max(1, len(sites) // MAX_SITES))))
            for index in chosen:
                path, kind, broken = sites[index]
                assert not check.is_valid(_set(shape, path, broken)), f"{path} set to {broken!r:.80} ({kind})"
                kinds.add(kind)
    assert {"required member", "struct", "description"} <= kinds and len(kinds) >= 5


# What each declared type may not hold. Enumerated from the descriptions, not from the schemas.
def _bad_values(kind: FieldType, value: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(kind, Scalar):
        if kind.kind in INTEGER_KINDS:
            low, high = integer_range(kind.kind)
            yield kind.kind, low - 1
            yield kind.kind, high + 1
            yield kind.kind, "7"
            yield kind.kind, True
            yield kind.kind, 1.5
        elif kind.kind == "bool":
            yield "bool", 1
        else:
            yield "str", 7
    elif isinstance(kind, Buffer):
        yield "buffer", "zz" + value[2:] if value else "zz"
        yield "buffer", 7
        if isinstance(kind.size, int):  # a size held in another field is not a JSON Schema fact
            yield "buffer", value + "00"
            if value:
                yield "buffer", value[2:]
    elif isinstance(kind, Array):
        if isinstance(kind.length, int):
            yield "array", value + value[:1] if value else [kind.element.default()]
            if value:
                yield "array", value[1:]
        yield "array", {"not": "a list"}
        if kind.max_length is not None or kind.framing.kind is ListFraming.COUNT:
            bound = kind.max_length if kind.max_length is not None else (1 << kind.framing.count_bits) - 1
            yield "array", (value or [None]) * (bound // max(1, len(value)) + 1) if bound < 5000 else "x"


def _sites(description: Description, shape: Any) -> Iterator[tuple[tuple[Any, ...], str, Any]]:
    """(path, what, bad value) for each place of a state shape that can be made invalid."""
    yield from _container_sites(description.fields, description.version_id, shape, ())
    yield (), "description", {**shape, "mutant_unknown": 1}
    nested = {sub.name: sub for sub in description.subsections}
    for name, sub in nested.items():
        if name in shape:
            for path, what, bad in _sites(sub.description, shape[name]):
                yield (name, *path), what, bad
    for index, entry in enumerate(shape.get("subsections", [])):
        sub = nested[entry["name"]]
        for path, what, bad in _sites(sub.description, entry[sub.name]):
            yield ("subsections", index, sub.name, *path), what, bad
        yield ("subsections", index, "version_id"), "subsection", sub.description.version_id + 1


def _container_sites(
    fields: tuple[Field, ...], version: int, shape: Any, prefix: tuple[Any, ...]
) -> Iterator[tuple[tuple[Any, ...], str, Any]]:
    for member in fields:
        if member.name not in shape:
            continue
        value = shape[member.name]
        path = (*prefix, member.name)
        if member.present(version, shape):
            # Unconditional, or its condition holds here: a state without it is incomplete.
            what = "required member" if member.when is None else "member whose condition holds"
            yield prefix, what, {k: v for k, v in shape.items() if k != member.name}
        for what, bad in _bad_values(member.type, value):
            yield path, what, bad
        yield from _inner_sites(member.type, version, value, path)
    yield prefix, "struct", {**shape, "mutant_unknown": 1}


def _inner_sites(kind: FieldType, version: int, value: Any, path: tuple[Any, ...]) -> Iterator[Any]:
    if isinstance(kind, Struct):
        yield from _container_sites(kind.fields, version, value, path)
    elif isinstance(kind, Description):
        for inner, what, bad in _sites(kind, value):
            yield (*path, *inner), what, bad
    elif isinstance(kind, Array):
        indexes = range(len(value)) if len(value) <= 4 else (0, len(value) - 1)
        for index in indexes:
            for what, bad in _bad_values(kind.element, value[index]):
                yield (*path, index), what, bad
            yield from _inner_sites(kind.element, version, value[index], (*path, index))


def _set(shape: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    out = copy.copy(shape)
    out[path[0]] = _set(shape[path[0]], path[1:], value)
    return out


# -- the annotations say what the descriptions declare ------------------------------------------


def _check_members(fields: tuple[Field, ...], schema: dict[str, Any], definitions: dict[str, Any]) -> int:
    assert schema["x-order"] == [member.name for member in fields]
    checked = 0
    for member in fields:
        prop = schema["properties"][member.name]
        assert prop["x-since"] == member.since
        assert prop.get("x-until") == member.until
        assert prop.get("x-when") == (
            None if member.when is None else {"field": member.when[0], "equals": member.when[1]}
        )
        checked += 1 + _check_type(member.type, prop, definitions)
    return checked


def _check_type(kind: FieldType, schema: dict[str, Any], definitions: dict[str, Any]) -> int:
    if isinstance(kind, Scalar):
        assert schema["x-kind"] == kind.kind
        if kind.kind in INTEGER_KINDS:
            bits, signed = INTEGER_KINDS[kind.kind]
            assert (schema["x-width"], schema["x-signed"]) == (bits, signed)
            assert (schema["minimum"], schema["maximum"]) == integer_range(kind.kind)
        return 0
    if isinstance(kind, Buffer):
        size = kind.size if isinstance(kind.size, int) else {"field": kind.size.name, "scale": kind.size.scale}
        assert schema["x-size"] == size
        return 0
    if isinstance(kind, Array):
        framing = schema["x-framing"]
        assert framing["kind"] == kind.framing.kind.value
        if kind.framing.kind is ListFraming.COUNT:
            assert framing["count-bits"] == kind.framing.count_bits
        if kind.framing.kind is ListFraming.SENTINEL:
            assert (framing["marker"], framing["terminator"]) == (kind.framing.marker, kind.framing.terminator)
        length = kind.length if not isinstance(kind.length, FieldRef) else {"field": kind.length.name, "scale": 1}
        assert schema.get("x-length") == length
        assert schema.get("x-max-length") == kind.max_length
        return _check_type(kind.element, schema["items"], definitions)
    if isinstance(kind, Struct):
        assert schema["x-struct"] == kind.name
        return _check_members(kind.fields, schema, definitions)
    return _check_description(kind, schema, definitions)


def _check_description(description: Description, schema: dict[str, Any], definitions: dict[str, Any]) -> int:
    assert schema["x-description"] == description.name
    assert (schema["x-version-id"], schema["x-minimum-version-id"]) == (
        description.version_id,
        description.minimum_version_id,
    )
    checked = _check_members(description.fields, schema, definitions)
    keys = schema["x-subsections"]
    assert len(keys) == len(description.subsections)
    for key, sub in zip(keys, description.subsections, strict=True):
        definition = definitions[key]
        assert definition["x-subsection"] == sub.name and definition["x-critical"] is sub.critical
        checked += 1 + _check_description(sub.description, definition, definitions)
    return checked


@pytest.mark.parametrize(("device", "release"), RELEASES, ids=IDS)
def test_annotations_say_what_the_description_declares(device: Device, release: Release) -> None:
    document = schema_dump.device_document(device, release)
    checked = _check_description(release.description, document, document.get("$defs", {}))
    assert checked > 5


def test_slirp_v4_schema_facts_a_reviewer_would_look_for() -> None:
    document = json.loads(dumps(schema_dump.resolve("slirp@v4")))
    ip_id = document["properties"]["ip_id"]
    assert (ip_id["x-kind"], ip_id["x-width"], ip_id["x-signed"], ip_id["x-since"]) == ("uint16", 16, False, 2)
    assert (ip_id["minimum"], ip_id["maximum"]) == (0, 65535)
    sockets = document["properties"]["sockets"]
    assert sockets["x-framing"] == {"kind": "sentinel", "marker": 42, "terminator": 0}
    socket = sockets["items"]["properties"]
    assert socket["so_faddr"]["x-until"] == 4 and "so_faddr" not in sockets["items"]["required"]
    assert socket["fhost"]["properties"]["addr"]["x-when"] == {"field": "family", "equals": 2}
    assert socket["so_rcv"]["properties"]["data"]["x-size"] == {"field": "sb_datalen", "scale": 1}
    clients = document["properties"]["bootp_clients"]
    assert (clients["minItems"], clients["maxItems"], clients["x-since"]) == (16, 16, 3)
    assert document["required"] == ["sockets", "ip_id", "bootp_clients"]
    assert document["properties"]["subsections"]["maxItems"] == 0


def test_virtio_schema_carries_count_framing_bounds_and_subsections() -> None:
    document = json.loads(dumps(schema_dump.resolve("virtio@qemu-7.2")))
    queues = document["properties"]["queues"]
    assert queues["x-framing"] == {"kind": "count", "count-bits": 32}
    assert queues["maxItems"] == queues["x-max-length"] == 1024
    nested = document["properties"]["virtio"]
    assert nested["x-kind"] == "description" and nested["x-description"] == "virtio"
    assert "virtio/64bit_features" in nested["x-subsections"]
    features = document["$defs"]["virtio/64bit_features"]
    assert features["x-critical"] is True
    assert features["properties"]["guest_features"]["x-kind"] == "uint64"
    # A subsection of a subsection's nested description is in $defs too.
    assert "virtio_pci/modern_state" in document["$defs"]
    assert document["properties"]["virtio"]["properties"]["virtio/64bit_features"] == {
        "$ref": "#/$defs/virtio~164bit_features"
    }


def test_a_state_cannot_mix_the_two_subsection_shapes() -> None:
    virtio = devices.get("virtio")
    release = virtio.newest
    check = validator(virtio, release)
    full = jsonable(virtio.fixed_states(release)[1])
    carried = dict_output(release.description, virtio.fixed_states(release)[1])
    assert check.is_valid(full) and check.is_valid(carried)
    mixed = copy.deepcopy(full)
    mixed["virtio"]["subsections"] = carried["virtio"]["subsections"]
    assert not check.is_valid(mixed)


def test_same_named_subsections_that_differ_get_their_own_definitions() -> None:
    inner = Description("a/x", 1, 1, (Field("v", Scalar("uint8")),))
    other = Description("b/x", 1, 1, (Field("v", Scalar("uint16")),))
    description = Description(
        "top",
        1,
        1,
        (
            Field("a", Description("a", 1, 1, (), subsections=(Subsection(inner),))),
            Field("b", Description("b", 1, 1, (), subsections=(Subsection(other),))),
        ),
    )
    schema = description_schema(description)
    assert set(schema["$defs"]) == {"a/x", "b/x"}
    jsonschema.Draft202012Validator.check_schema(schema)


# -- the committed corpus -------------------------------------------------------------------


def test_committed_schemas_are_what_the_code_writes_byte_for_byte() -> None:
    """Fails when corpora/schemas is stale: regenerate with `migcompat schema --all`."""
    files = schema_dump.build()
    committed = {path.relative_to(COMMITTED).as_posix(): path.read_bytes() for path in COMMITTED.rglob("*.json")}
    assert sorted(committed) == sorted(files), "regenerate with: migcompat schema --all --out corpora/schemas/"
    for name, content in files.items():
        assert committed[name] == content, f"{name} is stale: regenerate with migcompat schema --all"
    assert all(content.endswith(b"}\n") for content in files.values())


def test_build_is_deterministic_and_covers_every_release() -> None:
    first, second = schema_dump.build(), schema_dump.build()
    assert first == second
    for device, release in RELEASES:
        assert f"{device.name}/{release.name}.json" in first
    for hypervisor in releases.RELEASES:
        assert f"releases/{hypervisor.name}.json" in first


def test_writing_removes_schemas_of_releases_that_are_gone(tmp_path: Path) -> None:
    stale = tmp_path / "slirp" / "v9.json"
    stale.parent.mkdir(parents=True)
    stale.write_text("{}\n")
    keep = tmp_path / "README.md"
    keep.write_text("not a schema\n")
    removed = schema_dump.write_corpus(tmp_path, schema_dump.build())
    assert removed == ["slirp/v9.json"]
    assert not stale.exists() and keep.exists()


# -- the command --------------------------------------------------------------------------------


def test_schema_command_prints_the_committed_file() -> None:
    code, out, err = run_cli("schema", "slirp@v4")
    assert code == EXIT_OK and err == ""
    assert out == (COMMITTED / "slirp" / "v4.json").read_text()
    code, newest, _ = run_cli("schema", "slirp")
    assert code == EXIT_OK and newest == out
    code, whole, _ = run_cli("schema", "hv-2022")
    assert code == EXIT_OK and whole == (COMMITTED / "releases" / "hv-2022.json").read_text()


def test_schema_all_writes_the_corpus(tmp_path: Path) -> None:
    code, out, _ = run_cli("schema", "--all", "--out", str(tmp_path / "schemas"))
    assert code == EXIT_OK and "wrote 17 schemas" in out
    written = {p.relative_to(tmp_path / "schemas").as_posix(): p.read_bytes() for p in tmp_path.rglob("*.json")}
    assert written == schema_dump.build()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["nope"], "unknown device or release 'nope'"),
        (["slirp@v9"], "device slirp has no release 'v9' (known: v1, v2, v3, v4)"),
        (["hv-2022@v1"], "unknown device or release 'hv-2022@v1'"),
        ([], "give DEVICE[@RELEASE]"),
        (["slirp", "--all"], "give DEVICE[@RELEASE]"),
        (["slirp", "--out", "x"], "--out goes with --all"),
    ],
)
def test_schema_command_refuses_bad_names_with_one_line(args: list[str], expected: str) -> None:
    code, out, err = run_cli("schema", *args)
    assert code == EXIT_USAGE
    assert out == ""
    assert err.startswith("migcompat: error: ") and expected in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_schema_all_reports_an_unwritable_directory(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = run_cli("schema", "--all", "--out", str(blocker / "sub"))
    assert code == EXIT_USAGE and "cannot write" in err and err.count("\n") == 1
