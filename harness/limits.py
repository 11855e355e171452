"""Named limits every decoder enforces.

Why: a migration stream arrives from another host and is attack surface. A
declared length or count is never trusted: each is checked against the input that
is actually left and against one of the limits below before anything is
allocated. Each number says where it comes from; raising one is a deliberate act
reviewed like any protocol change.
"""

from __future__ import annotations

#: Deepest nesting of structs and lists a decoder follows. QEMU's deepest real
#: VMState nesting (virtio extra_state -> transport state -> queue arrays) is under
#: 8 levels; 64 leaves ample room while keeping Python's own recursion limit
#: (1000 frames) far away.
MAX_DEPTH = 64

#: Most elements in one list. QEMU's largest real arrays are VIRTIO_QUEUE_MAX
#: (1024) queues and RAM-sized bitmaps are never visited element-wise; slirp's
#: socket list is bounded only by memory, so allow a generous million.
MAX_ELEMENTS = 1_000_000

#: Longest single string or buffer. The largest single field QEMU sends inside a
#: device section is a config space or a VGA/ROM-sized blob of a few MiB; 64 MiB
#: bounds one allocation well below this machine's memory.
MAX_LENGTH = 64 * 1024 * 1024

#: Largest whole input a decoder accepts. Device state without RAM is at most tens
#: of MiB even for large machines; 256 MiB refuses an accidental RAM image early.
MAX_INPUT = 256 * 1024 * 1024

#: Longest BER tag number, in subsequent octets. 4 octets reach tag 2^28, far
#: beyond anything X.690 users assign; a 1000-byte tag is hostile.
MAX_TAG_OCTETS = 4

#: Longest BER long-form length, in octets. 8 octets express any length a 64-bit
#: machine can hold; anything longer cannot be a real length.
MAX_LENGTH_OCTETS = 8

#: Longest BER INTEGER content, in octets. Our widest type is 64 bits, which needs
#: 9 octets in two's complement for the largest uint64.
MAX_INTEGER_OCTETS = 9
