"""Benchmark workloads: realistic device states of chosen sizes, and their
hand-packed legacy codecs.

Why: a codec's speed only means something on states shaped like the ones it
will carry. Migration pauses the VM for the device state, and two devices
dominate it in our model: virtio (a header and up to 1024 queues, QEMU's
VIRTIO_QUEUE_MAX) and slirp (one entry per guest-forward socket, each with two
socket buffers). Each workload also has a codec written by hand with
precompiled :class:`struct.Struct` objects -- the fastest pure-Python form of
the legacy wire, the floor our generated qemufile path is measured against.

Strategy: states come from a seeded :class:`random.Random`, so every run and
every codec measure the same values, shaped like real ones (page-aligned guest
addresses, power-of-two rings, 2 KiB socket buffers with offsets inside them).
The slirp workload uses the real slirp v4 description from :mod:`migcompat.devices.slirp`;
the virtio workload a virtio-shaped description (the real device's generic part
has its queue count outside the section, which a stand-alone benchmark cannot
carry).
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from migcompat.devices import slirp
from migcompat.model.vmstate import Array, Buffer, Description, Field, Scalar, State, Struct
from migcompat.wire.visitor import Framing, ListFraming

#: Seed of the generated states (each workload adds its size).
SEED = 0x5EED


@dataclass(frozen=True)
class HandCodec:
    """A hand-packed legacy codec: state -> bytes and back."""

    encode: Callable[[State], bytes]
    decode: Callable[[bytes], State]


@dataclass(frozen=True)
class Workload:
    """A named state of one description, and the hand-packed codec of its wire."""

    name: str
    description: Description
    #: How many queues or sockets: the size the name announces.
    size: int
    make_state: Callable[[int], State]
    hand_codec: Callable[[], HandCodec]

    def state(self) -> State:
        return self.make_state(self.size)


# -- virtio --------------------------------------------------------------------

#: Size of the header's opaque buffer: a PCI config space is 256 bytes.
CONFIG_SIZE = 256

_U8, _U16, _U32, _U64, _BOOL = Scalar("uint8"), Scalar("uint16"), Scalar("uint32"), Scalar("uint64"), Scalar("bool")

HEADER_FIELDS: tuple[Field, ...] = (
    Field("host_features", _U64),
    Field("guest_features", _U64),
    Field("status", _U8),
    Field("isr", _U8),
    Field("queue_sel", _U16),
    Field("config", Buffer(CONFIG_SIZE)),
)
QUEUE = Struct(
    "queue",
    (
        Field("num", _U32),
        Field("desc", _U64),
        Field("avail", _U64),
        Field("used", _U64),
        Field("last_avail_idx", _U16),
        Field("used_idx", _U16),
        Field("vector", _U16),
        Field("notification", _BOOL),
    ),
)
#: The benchmark's virtio device: the header, then the queues behind a be32 count.
VIRTIO = Description(
    "virtio",
    1,
    1,
    (*HEADER_FIELDS, Field("queues", Array(QUEUE, framing=Framing(ListFraming.COUNT, count_bits=32)))),
)
HEADER_NAMES = tuple(f.name for f in HEADER_FIELDS)
QUEUE_NAMES = tuple(f.name for f in QUEUE.fields)


def make_virtio_state(queues: int, seed: int = SEED) -> State:
    """A virtio state with ``queues`` queues, the same for the same arguments."""
    rng = random.Random(seed + queues)
    state: State = {
        "host_features": rng.getrandbits(64),
        "guest_features": rng.getrandbits(64),
        "status": rng.getrandbits(8),
        "isr": rng.getrandbits(8),
        "queue_sel": rng.randrange(queues),
        "config": rng.randbytes(CONFIG_SIZE),
    }
    state["queues"] = [
        {
            "num": rng.choice((0, 128, 256, 1024)),
            "desc": rng.getrandbits(40) & ~0xFFF,
            "avail": rng.getrandbits(40) & ~0xFFF,
            "used": rng.getrandbits(40) & ~0xFFF,
            "last_avail_idx": rng.getrandbits(16),
            "used_idx": rng.getrandbits(16),
            "vector": rng.choice((rng.getrandbits(4), 0xFFFF)),
            "notification": rng.random() < 0.5,
        }
        for _ in range(queues)
    ]
    return state


#: The header on the legacy wire, with the queue count that follows it.
_VIRTIO_HEADER = struct.Struct(f">QQBBH{CONFIG_SIZE}sI")
#: One queue on the legacy wire (QEMU writes a bool as one byte, 0 or 1).
_VIRTIO_QUEUE = struct.Struct(">IQQQHHH?")


def virtio_hand_codec() -> HandCodec:
    header_struct, queue_struct = _VIRTIO_HEADER, _VIRTIO_QUEUE
    pack_header, pack_queue = header_struct.pack, queue_struct.pack
    header_values = itemgetter(*HEADER_NAMES)
    queue_values = itemgetter(*QUEUE_NAMES)

    def encode(state: State) -> bytes:
        queues = state["queues"]
        return pack_header(*header_values(state), len(queues)) + b"".join(
            [pack_queue(*queue_values(queue)) for queue in queues]
        )

    def decode(data: bytes) -> State:
        *header, count = header_struct.unpack_from(data, 0)
        expected = header_struct.size + count * queue_struct.size
        if len(data) != expected:
            raise ValueError(f"{len(data)} bytes where a count of {count} needs {expected}")
        state: State = dict(zip(HEADER_NAMES, header, strict=True))
        unpack = queue_struct.unpack_from
        state["queues"] = [
            dict(zip(QUEUE_NAMES, unpack(data, offset), strict=True))
            for offset in range(header_struct.size, expected, queue_struct.size)
        ]
        return state

    return HandCodec(encode, decode)


# -- slirp ---------------------------------------------------------------------

#: The real slirp description at the version libslirp 4.7 writes.
SLIRP = slirp.build_description(slirp.SLIRP_VERSION)
#: Size of each socket buffer: 2 KiB, as the issue's workload asks.
SBUF_SIZE = 2048
_TCP_NAMES = tuple(name for name, _kind in slirp.TCPCB_LAYOUT)
_INT_BITS = {"int8": 8, "int16": 16, "int32": 32, "uint8": 8, "uint16": 16, "uint32": 32}


def _draw(rng: random.Random, kind: str) -> int:
    bits = _INT_BITS[kind]
    value = rng.getrandbits(bits)
    return value - (1 << bits) if kind.startswith("int") and value >> (bits - 1) else value


def make_slirp_state(sockets: int, seed: int = SEED) -> State:
    """A slirp v4 state with ``sockets`` IPv4 guest-forward sockets, each with
    2 KiB receive and send buffers, the same for the same arguments."""
    rng = random.Random(seed + 1_000_003 * sockets)

    def address() -> State:
        return {"family": slirp.FAMILY_INET, "addr": rng.getrandbits(32), "port": rng.getrandbits(16)}

    def sbuf() -> State:
        return {
            "sb_cc": rng.randrange(SBUF_SIZE + 1),
            "sb_datalen": SBUF_SIZE,
            "woff": rng.randrange(SBUF_SIZE),
            "roff": rng.randrange(SBUF_SIZE),
            "data": rng.randbytes(SBUF_SIZE),
        }

    def tcpcb() -> State:
        out: State = {}
        for name, kind in slirp.TCPCB_LAYOUT:
            if kind == "int16[4]":
                out[name] = [_draw(rng, "int16") for _ in range(slirp.TCPT_NTIMERS)]
            else:
                out[name] = _draw(rng, kind)
        return out

    state: State = {
        "sockets": [
            {
                "so_urgc": rng.getrandbits(32),
                # Gated out at v4 (``until=4``): a v4 load gives them their defaults.
                "so_faddr": 0,
                "so_laddr": 0,
                "so_fport": 0,
                "so_lport": 0,
                "fhost": address(),
                "lhost": address(),
                "so_iptos": rng.getrandbits(8),
                "so_emu": rng.getrandbits(8),
                "so_type": rng.getrandbits(8),
                "so_state": _draw(rng, "int32"),
                "so_rcv": sbuf(),
                "so_snd": sbuf(),
                "so_tcpcb": tcpcb(),
            }
            for _ in range(sockets)
        ],
        "ip_id": rng.getrandbits(16),
        "bootp_clients": [
            {"allocated": rng.getrandbits(1), "macaddr": rng.randbytes(6)} for _ in range(slirp.NB_BOOTP_CLIENTS)
        ],
    }
    return state


def _tcp_format() -> str:
    codes = {"int16": "h", "uint16": "H", "uint8": "B", "uint32": "I", "int16[4]": f"{slirp.TCPT_NTIMERS}h"}
    return ">" + "".join(codes[kind] for _name, kind in slirp.TCPCB_LAYOUT)


#: From the socket marker to the receive buffer's data: marker, so_urgc, the two
#: IPv4 addresses (family, addr, port), iptos, emu, type, state, then sb_cc,
#: sb_datalen, woff, roff.
_SLIRP_HEAD = struct.Struct(">BIHIHHIHBBBiIIII")
_SLIRP_SBUF = struct.Struct(">IIII")
_SLIRP_TCP = struct.Struct(_tcp_format())
_SLIRP_TAIL_CLIENT = struct.Struct(">H6s")
_TIMERS = _TCP_NAMES.index("t_timer")
_SBUF_NAMES = ("sb_cc", "sb_datalen", "woff", "roff")


def _tuple_getter(names: tuple[str, ...]) -> Callable[[State], tuple[Any, ...]]:
    """``itemgetter`` that returns a tuple also for one name."""
    get = itemgetter(*names)
    if len(names) == 1:
        return lambda mapping: (get(mapping),)
    return get


def slirp_hand_codec() -> HandCodec:
    """slirp v4's legacy bytes packed by hand; IPv4 sockets only (what the workload holds)."""
    head, sbuf_head, tcp = _SLIRP_HEAD, _SLIRP_SBUF, _SLIRP_TCP
    pack_head, pack_sbuf, pack_tcp = head.pack, sbuf_head.pack, tcp.pack
    sbuf_values = itemgetter(*_SBUF_NAMES)
    before_timers = _tuple_getter(_TCP_NAMES[:_TIMERS])
    after_timers = _tuple_getter(_TCP_NAMES[_TIMERS + 1 :])
    timers = slirp.TCPT_NTIMERS

    def encode(state: State) -> bytes:
        out: list[bytes] = []
        append = out.append
        for so in state["sockets"]:
            fhost, lhost, rcv, snd, tcb = so["fhost"], so["lhost"], so["so_rcv"], so["so_snd"], so["so_tcpcb"]
            if fhost["family"] != slirp.FAMILY_INET or lhost["family"] != slirp.FAMILY_INET:
                raise ValueError("the hand-packed slirp codec writes IPv4 sockets only")
            append(
                pack_head(
                    slirp.SOCKET_MARKER,
                    so["so_urgc"],
                    fhost["family"],
                    fhost["addr"],
                    fhost["port"],
                    lhost["family"],
                    lhost["addr"],
                    lhost["port"],
                    so["so_iptos"],
                    so["so_emu"],
                    so["so_type"],
                    so["so_state"],
                    *sbuf_values(rcv),
                )
            )
            append(rcv["data"])
            append(pack_sbuf(*sbuf_values(snd)))
            append(snd["data"])
            append(pack_tcp(*before_timers(tcb), *tcb["t_timer"], *after_timers(tcb)))
        append(struct.pack(">BH", slirp.SOCKET_TERMINATOR, state["ip_id"]))
        for client in state["bootp_clients"]:
            append(_SLIRP_TAIL_CLIENT.pack(client["allocated"], client["macaddr"]))
        return b"".join(out)

    def decode(data: bytes) -> State:
        sockets: list[State] = []
        position = 0
        unpack_head, unpack_sbuf, unpack_tcp = head.unpack_from, sbuf_head.unpack_from, tcp.unpack_from
        while data[position] == slirp.SOCKET_MARKER:
            (_, urgc, ff, fa, fp, lf, la, lp, iptos, emu, kind, so_state, *rcv) = unpack_head(data, position)
            position += head.size
            rcv_state: State = dict(zip(_SBUF_NAMES, rcv, strict=True))
            rcv_state["data"] = data[position : position + rcv[1]]
            position += rcv[1]
            snd = unpack_sbuf(data, position)
            position += sbuf_head.size
            snd_state: State = dict(zip(_SBUF_NAMES, snd, strict=True))
            snd_state["data"] = data[position : position + snd[1]]
            position += snd[1]
            values = unpack_tcp(data, position)
            position += tcp.size
            tcb: State = dict(zip(_TCP_NAMES[:_TIMERS], values[:_TIMERS], strict=True))
            tcb["t_timer"] = list(values[_TIMERS : _TIMERS + timers])
            tcb.update(zip(_TCP_NAMES[_TIMERS + 1 :], values[_TIMERS + timers :], strict=True))
            sockets.append(
                {
                    "so_urgc": urgc,
                    "so_faddr": 0,
                    "so_laddr": 0,
                    "so_fport": 0,
                    "so_lport": 0,
                    "fhost": {"family": ff, "addr": fa, "port": fp},
                    "lhost": {"family": lf, "addr": la, "port": lp},
                    "so_iptos": iptos,
                    "so_emu": emu,
                    "so_type": kind,
                    "so_state": so_state,
                    "so_rcv": rcv_state,
                    "so_snd": snd_state,
                    "so_tcpcb": tcb,
                }
            )
        if data[position] != slirp.SOCKET_TERMINATOR:
            raise ValueError(f"byte {position}: neither a socket marker nor the terminator")
        (ip_id,) = struct.unpack_from(">H", data, position + 1)
        position += 3
        clients = [
            {"allocated": allocated, "macaddr": mac}
            for allocated, mac in _SLIRP_TAIL_CLIENT.iter_unpack(data[position : position + 8 * slirp.NB_BOOTP_CLIENTS])
        ]
        if position + 8 * slirp.NB_BOOTP_CLIENTS != len(data):
            raise ValueError("trailing bytes after the bootp clients")
        return {"sockets": sockets, "ip_id": ip_id, "bootp_clients": clients}

    return HandCodec(encode, decode)


# -- the table -----------------------------------------------------------------


def _virtio(queues: int) -> Workload:
    return Workload(f"virtio-{queues}", VIRTIO, queues, make_virtio_state, virtio_hand_codec)


def _slirp(sockets: int) -> Workload:
    return Workload(f"slirp-{sockets}", SLIRP, sockets, make_slirp_state, slirp_hand_codec)


#: Every named workload, in report order.
WORKLOADS: dict[str, Workload] = {w.name: w for w in (_virtio(8), _virtio(64), _virtio(1024), _slirp(10), _slirp(1000))}
#: Where the performance targets apply.
TARGET_WORKLOADS = ("virtio-1024", "slirp-1000")


def sized(kind: str, size: int) -> Workload:
    """A workload of any size (the scaling series): ``kind`` is "virtio" or "slirp"."""
    builders: dict[str, Callable[[int], Workload]] = {"virtio": _virtio, "slirp": _slirp}
    return builders[kind](size)


__all__ = [
    "CONFIG_SIZE",
    "HandCodec",
    "SBUF_SIZE",
    "SLIRP",
    "TARGET_WORKLOADS",
    "VIRTIO",
    "WORKLOADS",
    "Workload",
    "make_slirp_state",
    "make_virtio_state",
    "sized",
]
