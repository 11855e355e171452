"""Fuzzing migcompat's decoders: targets, seeds, libFuzzer runs and regressions.

Why a package inside ``migcompat``: the fuzz logic must be importable by pytest
(which replays every seed and regression on every run) and by ``migcompat fuzz``
after a plain ``pip install``, and it must not need atheris to be imported.
Only :mod:`migcompat.fuzzing.entry` imports atheris; ``fuzz/<name>_fuzzer.py``
are thin scripts over it, named by the OSS-Fuzz convention.
"""
