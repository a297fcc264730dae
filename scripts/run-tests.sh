#!/usr/bin/env bash
# Run the test suite; "no tests collected" (pytest exit 5) is a failure, never a silent pass.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONHASHSEED=0
.venv/bin/python -m pytest -n auto "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "run-tests: pytest collected no tests - failing" >&2
  exit 1
fi
exit "$rc"
