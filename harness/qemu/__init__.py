"""Real QEMU: its migration stream framing (sections, RAM records, the vmdesc trailer), ``-dump-vmstate``
dumps, rendering a decoded stream, and the peers that run a real ``qemu-system-x86_64``.

Why one folder: these are QEMU's formats and QEMU's processes, as opposed to the visitor protocol migcompat
models; the device models (:mod:`migcompat.devices`) build on the stream framing here.
"""
