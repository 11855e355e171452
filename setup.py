"""The native BER extension (migcompat.wire._berc); everything else is in pyproject.toml.

``optional=True``: without a C compiler the install still succeeds and
migcompat runs its pure-Python path (``migcompat bench`` says which).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("migcompat.wire._berc", ["harness/wire/_berc.c"], optional=True, extra_compile_args=["-O2"]),
    ]
)
