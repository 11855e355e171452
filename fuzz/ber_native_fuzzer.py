#!/usr/bin/env python3
"""ber_native_fuzzer: the atheris entry point of migcompat.fuzzing.targets.TARGETS["ber_native_fuzzer"].

The fuzz logic and its invariant are documented on that target's function in
harness/fuzzing/targets.py; every target holds the project's invariant: the
input loads, or is rejected with the DecodeError family -- any other exception,
a hang past the per-input timeout, or memory beyond the run's limit is a
finding. Run: python3 fuzz/ber_native_fuzzer.py [libFuzzer options] [corpus dirs or files]
"""

from migcompat.fuzzing.entry import main

if __name__ == "__main__":
    main("ber_native_fuzzer")
