#!/bin/bash -eu
# Builds every fuzz/*_fuzzer.py into $OUT the OSS-Fuzz way (compile_python_fuzzer:
# a PyInstaller bundle plus the wrapper libFuzzer runs), with its .options file,
# the dictionaries they name, and a seed corpus zip of the committed seeds and
# regressions. Runs in $SRC/migcompat (the Dockerfile's WORKDIR).

# The project and its runtime dependencies (click, hypothesis), plus pyasn1 for
# the differential target; atheris is already in the base image.
pip3 install ".[fuzz]"

for fuzzer in fuzz/*_fuzzer.py; do
  name=$(basename -s .py "$fuzzer")
  # Device modules and the target modules are imported by name at run time
  # (importlib), which PyInstaller cannot see: collect them explicitly.
  compile_python_fuzzer "$fuzzer" \
    --collect-submodules migcompat \
    --collect-submodules pyasn1 \
    --collect-data hypothesis
  cp "fuzz/$name.options" "$OUT/"
  seeds=$(find "corpora/seeds/$name" "corpora/regressions/$name" -type f 2>/dev/null || true)
  if [ -n "$seeds" ]; then
    # shellcheck disable=SC2086 # one argument per seed file
    zip -q -j "$OUT/${name}_seed_corpus.zip" $seeds
  fi
done
cp fuzz/*.dict "$OUT/"
