"""libFuzzer dictionaries and ``.options`` files, written from one table.

Why: a mutation engine that does not know ``30 80``, ``00 00`` or ``QEVM`` needs
millions of executions to stumble on them; a dictionary hands them over. The
same files serve three runners -- ``migcompat fuzz`` (which writes them next to
its work corpus, so an installed package needs no source tree),
``fuzz/*.dict``/``fuzz/*.options`` for OSS-Fuzz and ClusterFuzzLite, and the
tests, which check the committed files are what this module writes.
"""

from __future__ import annotations

from migcompat.fuzzing.targets import TARGETS

_BER: tuple[tuple[str, bytes], ...] = (
    ("sequence", b"\x30"),
    ("sequence_indefinite", b"\x30\x80"),
    ("end_of_contents", b"\x00\x00"),
    ("integer_1", b"\x02\x01"),
    ("integer_9", b"\x02\x09\x00"),
    ("boolean_true", b"\x01\x01\xff"),
    ("boolean_false", b"\x01\x01\x00"),
    ("octet_string", b"\x04"),
    ("octet_string_constructed", b"\x24\x80"),
    ("utf8string", b"\x0c"),
    ("utf8string_constructed", b"\x2c\x80"),
    ("length_long_1", b"\x81"),
    ("length_long_2", b"\x82\x01\x00"),
    ("length_long_4", b"\x84\xff\xff\xff\xff"),
    ("length_long_8", b"\x88\x7f\xff\xff\xff\xff\xff\xff\xff"),
    ("length_reserved", b"\xff"),
    ("tag_multi_byte", b"\x1f\x81\x00"),
    ("tag_context", b"\xa0"),
    ("code_u8", b":u8"),
    ("code_u16", b":u16"),
    ("code_u32", b":u32"),
    ("code_u64", b":u64"),
    ("code_i8", b":i8"),
    ("code_i16", b":i16"),
    ("code_i32", b":i32"),
    ("code_i64", b":i64"),
    ("code_bool", b":bool"),
    ("code_str", b":str"),
    ("code_buf", b":buf"),
    ("code_struct", b":struct"),
    ("code_list", b":list"),
    ("subsections", b"subsections:list"),
    ("subsection_entry", b"name:str version_id:u32 critical:bool"),
    ("envelope_magic", b"migcompat-stream"),
)

_QEMU: tuple[tuple[str, bytes], ...] = (
    ("magic", b"QEVM"),
    ("version", b"\x00\x00\x00\x03"),
    ("configuration", b"\x07"),
    ("section_start", b"\x01"),
    ("section_part", b"\x02"),
    ("section_end", b"\x03"),
    ("section_full", b"\x04"),
    ("subsection", b"\x05"),
    ("vmdesc", b"\x06"),
    ("footer", b"\x7e"),
    ("socket_marker", b"\x2a"),
    ("slirp", b"\x05slirp"),
    ("virtio_subsection", b"virtio/"),
    ("virtio_64bit", b"\x15virtio/64bit_features"),
    ("ram", b"\x03ram"),
    ("ram_eos", b"\x00\x00\x00\x00\x00\x00\x00\x10"),
    ("ram_mem_size", b"\x00\x00\x00\x00\x01\x00\x00\x04"),
    ("ram_zero_page", b"\x00\x00\x00\x00\x00\x00\x10\x22"),
    ("json_devices", b'{"devices":['),
    ("json_name", b'"name":'),
    ("json_instance", b'"instance_id":'),
    ("json_size", b'"size":'),
    ("json_array_len", b'"array_len":'),
    ("json_fields", b'"fields":['),
    ("json_subsections", b'"subsections":['),
    ("json_vmsd_name", b'"vmsd_name":'),
    ("u32_max", b"\xff\xff\xff\xff"),
    ("u16_no_vector", b"\xff\xff"),
)

#: Dictionary file name -> entries.
DICTIONARIES: dict[str, tuple[tuple[str, bytes], ...]] = {"ber.dict": _BER, "qemu.dict": _QEMU}


def _escape(value: bytes) -> str:
    return "".join(chr(byte) if 0x20 <= byte < 0x7F and byte not in b'"\\' else f"\\x{byte:02x}" for byte in value)


def render_dictionary(name: str) -> str:
    """The libFuzzer dictionary file ``name``: one ``kw="..."`` line per entry."""
    lines = [f"# {name}: written by harness/fuzzing/dictionaries.py; do not edit by hand."]
    lines += [f'{key}="{_escape(value)}"' for key, value in DICTIONARIES[name]]
    return "\n".join(lines) + "\n"


def render_options(target: str) -> str:
    """The ``<target>.options`` file: libFuzzer's ``max_len`` and dictionary."""
    spec = TARGETS[target]
    lines = ["[libfuzzer]", f"max_len = {spec.max_len}"]
    if spec.dictionary is not None:
        lines.append(f"dict = {spec.dictionary}")
    return "\n".join(lines) + "\n"


def files() -> dict[str, str]:
    """Every dictionary and options file, by file name (as under ``fuzz/``)."""
    out = {name: render_dictionary(name) for name in DICTIONARIES}
    out.update({f"{target}.options": render_options(target) for target in TARGETS})
    return out


__all__ = ["DICTIONARIES", "files", "render_dictionary", "render_options"]
