#!/usr/bin/env bash
# Create .venv with Python >= 3.11 and install wardwatch into it.
#   scripts/bootstrap.sh run   -> runtime dependencies only
#   scripts/bootstrap.sh test  -> plus test and lint tools, plus the apt packages the tests use (when root)
# Safe to run repeatedly: it only reinstalls when pyproject.toml changed.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-run}"

have_root() { [ "$(id -u)" -eq 0 ]; }
apt_install() {
  if have_root && command -v apt-get >/dev/null 2>&1; then
    echo "bootstrap: installing $* with apt-get" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null || true
    apt-get install -y -qq --no-install-recommends "$@" >/dev/null
  else
    return 1
  fi
}

pick_python() {
  for candidate in "${PYTHON:-}" python3.11 python3.12 python3.13 python3; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 && \
       "$candidate" -c 'import sys; raise SystemExit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  return 1
}

py="$(pick_python)" || { echo "bootstrap: Python >= 3.11 is required" >&2; exit 2; }

if [ ! -x .venv/bin/python ]; then
  if ! "$py" -m venv .venv 2>/dev/null; then
    rm -rf .venv
    # Debian ships venv/ensurepip separately
    apt_install python3-venv || { echo "bootstrap: '$py -m venv' failed; install python3-venv" >&2; exit 2; }
    "$py" -m venv .venv
  fi
fi

# the C extensions (record walker, accumulators) are optional, but wanted: make sure a compiler and the Python headers are there
if ! command -v cc >/dev/null 2>&1 || ! .venv/bin/python -c \
     'import sysconfig, os, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))'; then
  apt_install gcc libc6-dev python3-dev || echo "bootstrap: no C compiler: the (slower) Python record walker is used" >&2
fi

stamp=".venv/.wardwatch-$mode"
# reinstall when the dependencies or the C extensions changed (an editable install builds them in place)
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ -n "$(find src -name '*.c' -newer "$stamp")" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  if [ "$mode" = "test" ]; then
    .venv/bin/python -m pip install -q -e ".[dev]"
  else
    .venv/bin/python -m pip install -q -e .
  fi
  touch "$stamp"
fi

# byte-compile wardwatch's own sources (an editable install leaves them as source; with PYTHONDONTWRITEBYTECODE
# set, as on some CI machines, every run would compile ~80 modules again: ~55 ms per command)
.venv/bin/python -m compileall -q src/wardwatch >/dev/null || true

if [ "$mode" = "test" ]; then
  # system tools the tests compare against or drive; skipped tests say so when these are missing
  missing=()
  command -v tshark >/dev/null 2>&1 || missing+=(tshark)
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
  command -v storescp >/dev/null 2>&1 || missing+=(dcmtk)
  command -v tcpdump >/dev/null 2>&1 || missing+=(tcpdump)
  command -v ss >/dev/null 2>&1 || missing+=(iproute2)  # ip and ss: the ward lab's namespaces
  command -v nft >/dev/null 2>&1 || missing+=(nftables)  # the live sensor's silence counters
  command -v tcpreplay >/dev/null 2>&1 || missing+=(tcpreplay)  # bench: replaying a capture into a sensor
  if [ ${#missing[@]} -gt 0 ]; then
    if ! apt_install "${missing[@]}"; then
      echo "bootstrap: not root or no apt-get: tests needing ${missing[*]} will be skipped" >&2
    fi
  fi
fi
