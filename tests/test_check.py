"""``migcompat check``: what a destination QEMU does with a stream, predicted offline.

Every expectation here is what real QEMU did with the same bytes (the campaign
of ``migcompat qemu agree``; its disagreements are replayed from
``corpora/regressions/qemu_agree``). The tests that load into real QEMU say
so by name and require the release.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _support import require_release, run_cli

from migcompat.compat import agree
from migcompat.devices.streams import check_stream, read_destination
from migcompat.errors import MalformedInput
from migcompat.qemu.incoming import LOADED, REFUSED, UNJUDGED, LoadVerdict
from migcompat.qemu.ram import (
    FLAG_CONTINUE,
    FLAG_PAGE,
    FLAG_ZERO,
    PAGE_SIZE,
    ZERO_FILL_CHECKED,
    RamBlocks,
    ram_blocks,
    ram_record_end,
)
from migcompat.qemu.stream import SECTION_FULL, parse_qemu
from migcompat.wire.qemufile import QemuFileInputVisitor, QemuLoadVisitor

ROOT = Path(__file__).resolve().parent.parent / "corpora"
RELEASES = ("5.2", "7.2", "10.0")
CAPTURES = sorted(p for release in RELEASES for p in (ROOT / f"qemu-{release}").glob("*.bin"))
CASES = sorted((ROOT / "regressions" / agree.REGRESSIONS).glob("*.json"))


def _destination(path: Path) -> object:
    folder = path.parent
    return read_destination(
        path, folder / "vmstate-pc.json", folder.name.removeprefix("qemu-"), folder / agree.MINIMUMS
    )


def _check(data: bytes, against: Path) -> LoadVerdict:
    return check_stream(data, _destination(against))  # type: ignore[arg-type]


@pytest.mark.parametrize("capture", CAPTURES, ids=[f"{p.parent.name}/{p.name}" for p in CAPTURES])
def test_every_capture_loads_into_its_own_configuration(capture: Path) -> None:
    verdict = _check(capture.read_bytes(), capture)
    assert verdict.verdict == LOADED, verdict.refusal
    assert verdict.ignored.startswith("the vmdesc trailer")
    assert {section.verdict for section in verdict.sections} == {LOADED}


@pytest.mark.parametrize(
    ("stream", "against", "expected", "words"),
    [
        # real migrations between the releases (migcompat matrix --real): these load
        ("qemu-5.2/pc-virtio-net.bin", "qemu-7.2/pc-virtio-net@pc-i440fx-5.2.bin", LOADED, ""),
        ("qemu-7.2/pc-virtio-net@pc-i440fx-5.2.bin", "qemu-5.2/pc-virtio-net.bin", LOADED, ""),
        ("qemu-10.0/pc-virtio-net@pc-i440fx-5.2.bin", "qemu-5.2/pc-virtio-net.bin", LOADED, ""),
        ("qemu-10.0/pc-virtio-net@pc-i440fx-5.2.bin", "qemu-7.2/pc-virtio-net@pc-i440fx-5.2.bin", LOADED, ""),
        # and these do not
        ("qemu-10.0/pc-virtio-net.bin", "qemu-7.2/pc-virtio-net.bin", REFUSED, "Machine type received is"),
        ("qemu-7.2/pc-virtio-net.bin", "qemu-7.2/pc-virtio-net-5vectors.bin", REFUSED, "Bad config data: i=0x9a"),
        ("qemu-7.2/pc-virtio-net.bin", "qemu-7.2/pc-virtio-blk.bin", REFUSED, 'Unknown ramblock "0000:00:02.0/'),
    ],
)
def test_a_stream_against_another_configuration(stream: str, against: str, expected: str, words: str) -> None:
    verdict = _check((ROOT / stream).read_bytes(), ROOT / against)
    assert verdict.verdict == expected
    if words:
        assert verdict.refusal is not None and words in verdict.refusal.reason


CAPTURE = ROOT / "qemu-7.2" / "pc-virtio-net.bin"


def _section(data: bytes, idstr: str) -> tuple[int, int, int]:
    record = next(r for r in parse_qemu(data).records if r.idstr == idstr and r.kind == SECTION_FULL)
    assert record.span is not None
    return record.span


def _verdict_of(data: bytes) -> LoadVerdict:
    return _check(data, CAPTURE)


def test_an_end_of_stream_byte_ends_the_load_and_what_follows_is_ignored() -> None:
    data = CAPTURE.read_bytes()
    start, _body, _footer = _section(data, "fdc")
    # QEMU stops at the EOF byte: the sections after it are never read, the load succeeds.
    verdict = _verdict_of(data[:start] + b"\x00" + b"garbage after the end")
    assert verdict.verdict == LOADED and "bytes after the end-of-stream byte" in verdict.ignored
    assert verdict.sections[-1].label != "fdc"


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (lambda d, s, b, f: d[: b - 4] + (9).to_bytes(4, "big") + d[b:], "savevm: unsupported version 9 for 'fdc'"),
        (lambda d, s, b, f: d[: b - 4] + (1).to_bytes(4, "big") + d[b:], "too old for local minimum version_id 2"),
        (lambda d, s, b, f: d[:f] + b"\x7f" + d[f + 1 :], "Missing section footer for fdc"),
        (lambda d, s, b, f: d[: f + 4] + bytes((d[f + 4] ^ 1,)) + d[f + 5 :], "Mismatched section id for fdc"),
        (lambda d, s, b, f: d[: s + 6] + b"x" + d[s + 7 :], "Unknown savevm section or instance 'xdc' 0"),
        (lambda d, s, b, f: d[:s] + b"\x09" + d[s + 1 :], "Unknown savevm section type 9"),
        (lambda d, s, b, f: d[: b + 3], "input ends after"),
    ],
    ids=["version-too-new", "version-too-old", "footer-marker", "footer-id", "unknown-section", "type", "cut"],
)
def test_what_qemu_checks_on_a_section_is_refused_in_its_words(edit: object, words: str) -> None:
    data = CAPTURE.read_bytes()
    start, body, footer = _section(data, "fdc")
    verdict = _verdict_of(edit(data, start, body, footer))  # type: ignore[operator]
    assert verdict.verdict == REFUSED
    assert verdict.refusal is not None and words in verdict.refusal.reason


def test_a_bool_byte_other_than_one_is_true_to_qemu_and_refused_by_the_exact_reader() -> None:
    assert QemuLoadVisitor(b"\x02").visit_bool("flag", False) is True
    assert QemuLoadVisitor(b"\x00").visit_bool("flag", True) is False
    with pytest.raises(MalformedInput, match="bool byte is 0x02"):
        QemuFileInputVisitor(b"\x02").visit_bool("flag", False)


def test_the_virtio_queue_count_qemu_does_not_check_is_refused_with_the_crash_it_causes() -> None:
    data = CAPTURE.read_bytes()
    _start, body, _footer = _section(data, "0000:00:02.0/virtio-net")
    at = body + 4 + 256 + 16 + 4 * 16 + 1 + 2 + 1 + 1 + 2 + 4 + 4 + 8  # the be32 queue count (3)
    assert int.from_bytes(data[at : at + 4], "big") == 3
    verdict = _verdict_of(data[:at] + (1024).to_bytes(4, "big") + data[at + 4 :])
    assert verdict.verdict == REFUSED


def test_the_destination_must_be_a_readable_capture(tmp_path: Path) -> None:
    broken = tmp_path / "broken.bin"
    broken.write_bytes(CAPTURE.read_bytes()[:1000])
    code, out, err = run_cli("check", str(CAPTURE), "--against", str(broken))
    assert code == 2 and "not a stream migcompat can read" in err and "Traceback" not in out + err
    code, _out, err = run_cli("check", str(CAPTURE), "--against", str(tmp_path / "missing.bin"))
    assert code == 2 and "cannot read the destination capture" in err
    table = tmp_path / "minimums.json"
    table.write_text('{"minimum_version_id": {"cpu": -1}}')
    code, _out, err = run_cli("check", str(CAPTURE), "--against", str(CAPTURE), "--minimums", str(table))
    assert code == 2 and "not a minimum-versions table" in err


def test_the_cli_exit_codes_follow_the_verdict() -> None:
    folder = CAPTURE.parent
    common = ["--dump", str(folder / "vmstate-pc.json"), "--minimums", str(folder / agree.MINIMUMS)]
    code, out, _err = run_cli("check", str(CAPTURE), "--against", str(CAPTURE), *common, "--release", "7.2")
    assert code == 0 and out.rstrip().endswith("verdict: loads")
    other = folder / "pc-virtio-net-5vectors.bin"
    code, out, _err = run_cli("check", str(CAPTURE), "--against", str(other), *common, "--json")
    assert code == 1
    document = json.loads(out)
    assert document["verdict"] == REFUSED and document["sections"][-1]["path"].endswith("/pci_config")


@pytest.mark.parametrize("case", CASES, ids=[p.name for p in CASES])
def test_a_kept_case_replays_to_qemu_s_verdict_or_to_a_stated_reason(case: Path) -> None:
    """Each case QEMU and the check once disagreed on, or on which QEMU crashed or hung."""
    mutant, (qemu, message), record = agree.load_case(case, ROOT)
    data = mutant.base.path.read_bytes()
    outcome = agree.judge(mutant, _destination(mutant.base.path), data, (qemu, message))  # type: ignore[arg-type]
    assert outcome.ours == record["ours"]["verdict"], outcome.our_reason
    if outcome.ours == UNJUDGED:
        # Left undecided only for the reason recorded (one a stream and a dump cannot show).
        assert outcome.our_reason == record["ours"]["reason"]
    else:
        assert outcome.agrees, f"QEMU {qemu} ({message[:200]}); migcompat {outcome.ours}: {outcome.our_reason}"


def test_a_sampled_campaign_agrees_with_real_qemu_on_every_release() -> None:
    for release in RELEASES:
        require_release(release)
    campaign = agree.run(ROOT, RELEASES, 150, seed=11, jobs=2)
    assert len(campaign.outcomes) >= 100
    wrong = [outcome for outcome in campaign.disagreements if outcome.ours != UNJUDGED]
    assert not wrong, [(o.mutant.base.name, o.mutant.what, o.qemu, o.ours, o.our_reason) for o in wrong]


def test_every_capture_against_every_other_configuration_agrees_with_a_real_load() -> None:
    for release in RELEASES:
        require_release(release)
    campaign = agree.pairs(ROOT, RELEASES, jobs=2)
    assert len(campaign.outcomes) == len(CAPTURES) * (len(CAPTURES) - 1)
    assert any(outcome.qemu == agree.ACCEPTED for outcome in campaign.outcomes)
    wrong = [(o.mutant.what, o.qemu, o.ours, o.our_reason) for o in campaign.disagreements]
    assert not wrong, wrong


def test_a_config_length_qemu_would_spin_on_is_refused_with_that_finding() -> None:
    data = CAPTURE.read_bytes()
    _start, body, _footer = _section(data, "0000:00:02.0/virtio-net")
    at = body + 4 + 256 + 16 + 4 * 16 + 1 + 2 + 1 + 1 + 2 + 4  # the be32 config length (8)
    assert int.from_bytes(data[at : at + 4], "big") == 8
    verdict = _verdict_of(data[:at] + b"\xff" + data[at + 1 :])
    assert verdict.verdict == REFUSED and verdict.refusal is not None
    assert verdict.refusal.path.endswith("/config") and "spins" in verdict.refusal.finding


def _ram_pages(data: bytes) -> RamBlocks:
    """Every RAM page of a capture: where each is, and its fill byte."""
    records = [r for r in parse_qemu(data).records if r.idstr == "ram"]
    blocks = RamBlocks(ram_blocks(records[0].raw))
    for record in records:
        assert record.span is not None
        ram_record_end(data, record.span[1], check=blocks)
    return blocks


def _vapic_variants(data: bytes) -> dict[str, tuple[bytes, str]]:
    """The kvm-tpr-opt section made active or standby over guest RAM of each
    kind vapic_post_load meets, with the verdict real QEMU gave (TCG, 5.2 to 10.0)."""
    _start, body, _footer = _section(data, "kvm-tpr-opt")
    state, paddr = body + 124, body + 140  # be32 state and rom_state_paddr after the 124-byte rom_state

    def put(stream: bytes, at: int, value: int) -> bytes:
        return stream[:at] + value.to_bytes(4, "big") + stream[at + 4 :]

    content, fill = _ram_pages(data).pages[("pc.ram", 0x8000)]
    header = int.from_bytes(data[content - 8 : content], "big")
    assert fill == 0 and header == 0x8000 | FLAG_CONTINUE | FLAG_ZERO, "the capture's page at 0x8000 is a zero page"
    rom_page = put(data, paddr, 0x8000)
    # The zero page sent as a whole page instead, with a ROM size byte of 1 (512 bytes).
    whole = (0x8000 | FLAG_CONTINUE | FLAG_PAGE).to_bytes(8, "big") + b"\0\0\x01" + bytes(PAGE_SIZE - 3)
    filled = rom_page[: content - 8] + whole + rom_page[content + 1 :]
    return {
        "standby, ROM beyond RAM": (put(data, paddr, 0x2000000), REFUSED),
        "active, no ROM at 0": (put(data, state, 2), REFUSED),
        "standby, no ROM at 0x8000": (rom_page, REFUSED),
        "standby, a ROM at 0x8000": (filled, LOADED),
        "active, a ROM at 0x8000": (put(filled, state, 2), LOADED),
    }


@pytest.mark.parametrize("release", RELEASES)
def test_an_active_vapic_is_judged_from_the_option_rom_in_the_stream_s_ram(release: str) -> None:
    capture = ROOT / f"qemu-{release}" / "pc-virtio-net.bin"
    for name, (stream, expected) in _vapic_variants(capture.read_bytes()).items():
        verdict = _check(stream, capture)
        assert verdict.verdict == expected, (name, verdict.refusal)
        if expected == REFUSED:
            assert verdict.refusal is not None and verdict.refusal.path == "kvm-tpr-opt/rom_state_paddr"
            assert "vapic_post_load" in verdict.refusal.reason


@pytest.mark.parametrize("release", RELEASES)
def test_real_qemu_judges_the_vapic_variants_as_check_does(release: str, tmp_path: Path) -> None:
    require_release(release)
    from migcompat.qemu import peer

    capture = ROOT / f"qemu-{release}" / "pc-virtio-net.bin"
    mutant = tmp_path / "vapic.bin"
    for name, (stream, expected) in _vapic_variants(capture.read_bytes()).items():
        mutant.write_bytes(stream)
        result = peer.load(peer.CONFIGS["pc-virtio-net"], mutant, release=release, timeout=20)
        assert result.accepted == (expected == LOADED), (name, result.message)


def _zero_fill(data: bytes) -> bytes:
    """The capture with its first zero page's fill byte set to 1."""
    content = min(content for content, fill in _ram_pages(data).pages.values() if fill == 0)
    return data[:content] + b"\x01" + data[content + 1 :]


@pytest.mark.parametrize("release", RELEASES)
def test_a_zero_page_with_a_fill_byte_is_judged_by_the_destination_s_release(release: str) -> None:
    capture = ROOT / f"qemu-{release}" / "pc-virtio-net.bin"
    stream = _zero_fill(capture.read_bytes())
    verdict = _check(stream, capture)
    if ZERO_FILL_CHECKED[release]:
        assert verdict.verdict == REFUSED and verdict.refusal is not None
        assert verdict.refusal.reason == "Found a zero page with value 1" and verdict.refusal.path == "ram"
    else:
        assert verdict.verdict == LOADED
    unknown = check_stream(stream, read_destination(capture))
    assert unknown.verdict == UNJUDGED and "--release" in unknown.sections[-1].reason


@pytest.mark.parametrize("release", RELEASES)
def test_real_qemu_judges_a_filled_zero_page_as_check_does(release: str, tmp_path: Path) -> None:
    require_release(release)
    from migcompat.qemu import peer

    mutant = tmp_path / "fill.bin"
    mutant.write_bytes(_zero_fill((ROOT / f"qemu-{release}" / "pc-virtio-net.bin").read_bytes()))
    result = peer.load(peer.CONFIGS["pc-virtio-net"], mutant, release=release, timeout=20)
    assert result.accepted == (not ZERO_FILL_CHECKED[release]), result.message
