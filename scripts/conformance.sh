#!/usr/bin/env bash
# Runs the official WASI test suite's preview-1 tests through the `wippy` launcher
# (`make conformance WASI_TESTSUITE=DIR`). DIR holds WebAssembly/wasi-testsuite's
# `prod/testsuite-base` branch (prebuilt tests, its runner `run-tests`); it is not part of this
# repository and nothing of it is copied here. Needs Python >= 3.12 (python3.12/3.13 on PATH,
# or pyenv's); its packages go into build/conformance/venv.
set -euo pipefail
suite=${1:?usage: run.sh WASI_TESTSUITE_DIR}
suite=$(cd "$suite" && pwd)
repo=$(cd "$(dirname "$0")/.." && pwd)
[ -x "$suite/run-tests" ] || { echo "conformance: $suite has no run-tests (check out prod/testsuite-base)" >&2; exit 2; }
py=""
for c in python3.13 python3.12 "$HOME"/.pyenv/versions/3.13*/bin/python "$HOME"/.pyenv/versions/3.12*/bin/python python3; do
  if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
    py=$c
    break
  fi
done
[ -n "$py" ] || { echo "conformance: the suite's runner needs Python >= 3.12" >&2; exit 2; }
venv="$repo/build/conformance/venv"
if [ ! -x "$venv/bin/python" ]; then
  "$py" -m venv "$venv"
  "$venv/bin/pip" install -q colorama requests
fi
out="$repo/build/conformance"
cd "$suite"
WIPPY="$repo/build/bin/wippy" "$venv/bin/python" run-tests -r "$repo/scripts/conformance_adapter.py" \
  --json-output-location "$out/results.json" --disable-colors | tee "$out/run.log"
# Passed, failed and skipped per suite (the table in docs/processes.md).
"$venv/bin/python" - "$out/results.json" <<'PY'
import json, sys
data = json.load(open(sys.argv[1]))
print("| suite | passed | failed | skipped |")
print("|---|---:|---:|---:|")
for s in data["results"]:
    print(f"| {s['name']} | {s['passed']} | {s['failed']} | {s['skipped']} |")
PY
