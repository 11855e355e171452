"""migcompat: compatibility test harness and fuzzer for visitor-based VM migration streams."""

__version__ = "0.1.0"
