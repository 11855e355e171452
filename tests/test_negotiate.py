"""Capability negotiation between hypervisor releases: the protocol two releases
agree on, what it gives per device, the release rows of a matrix run, and the
``negotiate`` command's exit codes."""

from __future__ import annotations

import dataclasses
import json

import pytest
from _support import run_cli

from migcompat import devices
from migcompat.cli import EXIT_INCOMPATIBLE, EXIT_OK, EXIT_USAGE
from migcompat.compat import cell, matrix
from migcompat.compat.negotiate import common_protocol, negotiate, release_rows
from migcompat.compat.results import Cell
from migcompat.devices import releases
from migcompat.devices.releases import RELEASES, HypervisorRelease, device_releases
from migcompat.errors import DescriptionError, UsageError
from migcompat.model.vmstate import Scalar
from migcompat.outcomes import Outcome

NEWEST = {name: device.newest.name for name, device in devices.registry().items()}
OLDEST = {name: device.releases[0].name for name, device in devices.registry().items()}


def hv(name: str, *formats: str, shipped: dict[str, str] | None = None) -> HypervisorRelease:
    return HypervisorRelease(name, formats, NEWEST if shipped is None else shipped)


# -- the protocol ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "destination", "expected"),
    [
        (("ber", "qemufile"), ("ber", "qemufile"), "ber"),
        (("ber",), ("qemufile", "ber"), "ber"),  # the source's preference wins
        (("ber", "qemufile"), ("qemufile",), "qemufile"),
        (("qemufile",), ("ber", "qemufile"), "qemufile"),
        (("qemufile", "ber"), ("ber", "qemufile"), "qemufile"),
        (("ber",), ("qemufile",), None),
        (("qemufile",), ("ber",), None),
    ],
    ids=lambda value: ",".join(value) if isinstance(value, tuple) else str(value),
)
def test_the_protocol_is_the_sources_first_format_the_destination_speaks(
    source: tuple[str, ...], destination: tuple[str, ...], expected: str | None
) -> None:
    assert common_protocol(hv("a", *source), hv("b", *destination)) == expected
    assert negotiate(hv("a", *source), hv("b", *destination)).protocol == expected


def test_disjoint_releases_agree_on_nothing_and_try_no_device() -> None:
    agreement = negotiate(hv("a", "ber"), hv("b", "qemufile"))
    assert agreement.protocol is None and agreement.devices == ()
    assert agreement.worst is Outcome.REFUSED and not agreement.compatible


# -- per device -----------------------------------------------------------------------


@pytest.mark.parametrize("protocol", releases.WIRE_FORMATS)
def test_old_to_new_loads_every_device_and_new_to_old_is_refused(protocol: str) -> None:
    old, new = hv("old", protocol, shipped=OLDEST), hv("new", protocol)
    forward = negotiate(old, new)
    assert {device.device: device.outcome for device in forward.devices} == dict.fromkeys(NEWEST, Outcome.OK)
    assert forward.compatible and forward.worst is Outcome.OK
    backward = negotiate(new, old)
    assert {device.device: device.outcome for device in backward.devices} == dict.fromkeys(NEWEST, Outcome.REFUSED)
    assert all(device.matches for device in backward.devices)  # refused is what the devices promise
    assert backward.compatible and backward.worst is Outcome.REFUSED
    assert all(device.message for device in backward.devices)


def test_the_table_old_to_new_is_ok_and_new_to_old_refused() -> None:
    oldest, newest = RELEASES[0], RELEASES[-1]
    assert {device.outcome for device in negotiate(oldest, newest).devices} == {Outcome.OK}
    assert {device.outcome for device in negotiate(newest, oldest).devices} == {Outcome.REFUSED}
    assert negotiate(oldest, newest).protocol == "qemufile"
    assert negotiate(newest, newest).protocol == "ber"


def test_a_device_the_destination_does_not_ship_is_refused_as_expected() -> None:
    partial = hv("partial", "qemufile", shipped={"virtio": NEWEST["virtio"]})
    agreement = negotiate(hv("full", "qemufile"), partial)
    slirp = next(device for device in agreement.devices if device.device == "slirp")
    assert slirp.destination is None and slirp.outcome is Outcome.REFUSED and slirp.matches
    # Only what the source ships is in the stream.
    assert [device.device for device in negotiate(partial, hv("full", "qemufile")).devices] == ["virtio"]


def _widened_slirp(monkeypatch: pytest.MonkeyPatch) -> None:
    """slirp whose newest release reads ip_id as uint32: a changed description."""
    slirp = devices.get("slirp")
    newest = slirp.newest
    fields = tuple(
        dataclasses.replace(field, type=Scalar("uint32")) if field.name == "ip_id" else field
        for field in newest.description.fields
    )
    wider = dataclasses.replace(newest, description=dataclasses.replace(newest.description, fields=fields))
    patched = {**devices.registry(), "slirp": dataclasses.replace(slirp, releases=(*slirp.releases[:-1], wider))}
    monkeypatch.setattr(devices, "registry", lambda: patched)


def test_a_device_that_breaks_its_promise_makes_the_pair_incompatible(monkeypatch: pytest.MonkeyPatch) -> None:
    _widened_slirp(monkeypatch)
    agreement = negotiate(hv("a", "qemufile", shipped={"slirp": "v3"}), hv("b", "qemufile", shipped={"slirp": "v4"}))
    (slirp,) = agreement.devices
    assert slirp.outcome in (Outcome.DETECTED, Outcome.CORRUPT) and slirp.expected is Outcome.OK
    assert not agreement.compatible


# -- validation -----------------------------------------------------------------------


def test_a_release_checks_its_formats_when_built() -> None:
    with pytest.raises(DescriptionError, match="unknown wire format 'dict'"):
        HypervisorRelease("x", ("dict",), {})
    with pytest.raises(DescriptionError, match="speaks no wire format"):
        HypervisorRelease("x", (), {})
    with pytest.raises(DescriptionError, match="twice"):
        HypervisorRelease("x", ("ber", "ber"), {})


def test_device_releases_are_checked_against_the_registry() -> None:
    with pytest.raises(DescriptionError, match="unknown device 'floppy'"):
        device_releases(hv("x", "ber", shipped={"floppy": "v1"}))
    with pytest.raises(DescriptionError, match="slirp has no release 'v9'"):
        negotiate(hv("x", "ber", shipped={"slirp": "v9"}), hv("y", "ber"))
    assert set(device_releases(RELEASES[0])) == {"slirp", "virtio"}


def test_releases_are_immutable_and_unknown_names_are_usage_errors() -> None:
    release = releases.get("hv-2017")
    assert release.formats == ("qemufile", "ber")
    with pytest.raises(TypeError):
        release.devices["slirp"] = "v1"  # type: ignore[index]
    with pytest.raises(UsageError, match="unknown hypervisor release 'hv-1999' \\(known: hv-2014"):
        releases.get("hv-1999")


# -- release rows ---------------------------------------------------------------------


def test_release_rows_cover_every_pair_and_reuse_the_runs_cells() -> None:
    config = cell.MatrixConfig(devices=("slirp",))
    source, destination = RELEASES[0], RELEASES[-1]
    slirp_pair = (source.devices["slirp"], destination.devices["slirp"])
    corrupt = Cell("slirp", *slirp_pair, "qemufile", outcome=Outcome.CORRUPT, expected=Outcome.OK)
    rows = release_rows(config, [corrupt])
    assert [(row.source, row.destination) for row in rows] == [(s.name, d.name) for s in RELEASES for d in RELEASES]
    row = next(row for row in rows if (row.source, row.destination) == (source.name, destination.name))
    assert row.protocol == "qemufile" and row.devices == {"slirp": "corrupt"} and row.worst is Outcome.CORRUPT
    fresh = {(row.source, row.destination): row for row in release_rows(config, [])}
    assert fresh[source.name, destination.name].devices == {"slirp": "ok"}
    assert fresh[destination.name, source.name].devices == {"slirp": "refused"}


def test_a_matrix_run_carries_the_release_rows() -> None:
    config = cell.MatrixConfig(devices=("slirp",), pairings=("qemufile",), examples=1, shrink=False)
    document = matrix.run_matrix(config).to_json()
    assert len(document["releases"]) == len(RELEASES) ** 2
    row = document["releases"][0]
    assert row["source"] == row["destination"] == RELEASES[0].name
    assert row["protocol"] == "qemufile" and row["devices"] == {"slirp": "ok"} and row["worst"] == "ok"


# -- the command ----------------------------------------------------------------------


def test_negotiate_prints_the_protocol_and_every_device() -> None:
    code, out, _ = run_cli("negotiate", "hv-2015", "hv-2022")
    assert code == EXIT_OK
    assert "protocol qemufile" in out
    assert "slirp" in out and "v3 -> v4" in out and "qemu-2.4 -> qemu-7.2" in out
    code, out, _ = run_cli("negotiate", "hv-2022", "hv-2015")
    assert code == EXIT_OK  # refused, as the devices promise
    assert "refused" in out and "(expected" not in out


def test_negotiate_json() -> None:
    code, out, _ = run_cli("negotiate", "--json", "hv-2022", "hv-2022")
    assert code == EXIT_OK
    document = json.loads(out)
    assert document["protocol"] == "ber" and document["compatible"] is True
    assert {device["device"]: device["outcome"] for device in document["devices"]} == {"slirp": "ok", "virtio": "ok"}


def test_negotiate_exits_1_when_a_device_breaks_its_promise(monkeypatch: pytest.MonkeyPatch) -> None:
    _widened_slirp(monkeypatch)
    code, out, _ = run_cli("negotiate", "hv-2015", "hv-2022")
    assert code == EXIT_INCOMPATIBLE
    assert "(expected ok)" in out and "INCOMPATIBLE" in out


def test_negotiate_exits_1_without_a_common_format(monkeypatch: pytest.MonkeyPatch) -> None:
    table = (*RELEASES, hv("ber-only", "ber"))
    monkeypatch.setattr(releases, "RELEASES", table)
    code, out, _ = run_cli("negotiate", "hv-2014", "ber-only")
    assert code == EXIT_INCOMPATIBLE and "no common wire format" in out


def test_negotiate_exits_2_on_an_unknown_release() -> None:
    code, out, err = run_cli("negotiate", "hv-2014", "hv-3000")
    assert code == EXIT_USAGE and out == ""
    assert err.count("\n") == 1 and "unknown hypervisor release 'hv-3000'" in err
