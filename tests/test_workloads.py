"""The benchmark workloads: the hand-packed floor writes the product's wire."""

from __future__ import annotations

import pytest

from migcompat.codec.compiled import compile_codec
from migcompat.devices import slirp
from migcompat.model import vmstate
from migcompat.perf import workloads
from migcompat.wire.qemufile import QemuFileInputVisitor, QemuFileOutputVisitor


@pytest.mark.parametrize("name", ["virtio-8", "virtio-64", "slirp-10"])
def test_hand_codec_writes_the_walkers_legacy_bytes_and_reads_them_back(name: str) -> None:
    workload = workloads.WORKLOADS[name]
    state = workload.state()
    visitor = QemuFileOutputVisitor()
    vmstate.save(visitor, workload.description, state)
    legacy = visitor.result()
    hand = workload.hand_codec()
    assert hand.encode(state) == legacy
    assert hand.decode(legacy) == state
    # The state is one the real description loads unchanged: its checks pass.
    assert vmstate.load(QemuFileInputVisitor(legacy), workload.description, workload.description.version_id) == state


def test_slirp_workload_is_the_real_description_with_2k_buffers() -> None:
    assert slirp.build_description(slirp.SLIRP_VERSION) == workloads.SLIRP
    state = workloads.make_slirp_state(4)
    assert len(state["sockets"]) == 4
    for socket in state["sockets"]:
        for side in ("so_rcv", "so_snd"):
            assert socket[side]["sb_datalen"] == len(socket[side]["data"]) == workloads.SBUF_SIZE
        assert socket["fhost"]["family"] == slirp.FAMILY_INET
    assert list(slirp.validate_slirp(state)) == []


def test_hand_codec_refuses_what_it_cannot_write() -> None:
    state = workloads.make_slirp_state(1)
    state["sockets"][0]["fhost"] = {"family": slirp.FAMILY_INET6, "addr": 0, "port": 0}
    with pytest.raises(ValueError, match="IPv4"):
        workloads.slirp_hand_codec().encode(state)
    legacy = compile_codec(workloads.SLIRP, "qemufile").encode(workloads.make_slirp_state(1))
    with pytest.raises(ValueError, match="trailing"):
        workloads.slirp_hand_codec().decode(legacy + b"\0")


def test_workload_names_carry_their_size() -> None:
    assert list(workloads.WORKLOADS) == ["virtio-8", "virtio-64", "virtio-1024", "slirp-10", "slirp-1000"]
    for name, workload in workloads.WORKLOADS.items():
        assert name.endswith(f"-{workload.size}")
    assert workloads.sized("virtio", 4096).state()["queues"].__len__() == 4096


def test_pyasn1_still_writes_a_signed_minimum_non_minimally() -> None:
    """Why migcompat.perf.asn1spec gives pyasn1 a corrected INTEGER encoder: when pyasn1
    writes ``02 02 80 00`` for -32768 itself, this fails and the correction can go."""
    der = pytest.importorskip("pyasn1.codec.der.encoder")
    univ = pytest.importorskip("pyasn1.type.univ")
    assert der.encode(univ.Integer(-32768)) == bytes.fromhex("0203ff8000")


def test_slirp_workload_holds_signed_minimums_and_every_ber_codec_writes_them_alike() -> None:
    pytest.importorskip("pyasn1")
    from migcompat.perf import bench

    workload = workloads.WORKLOADS["slirp-10"]
    state = workload.state()
    state["sockets"][0]["so_tcpcb"]["t_timer"] = [-32768, 32767, -1, 0]
    state["sockets"][0]["so_state"] = -(1 << 31)
    codecs, _ = bench.build_codecs(workload, ["ber", "pyasn1", "asn1tools"])
    encoded = bench.check_codecs(codecs, state)
    assert encoded["pyasn1"] == encoded["ber"]
