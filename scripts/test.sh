#!/usr/bin/env bash
# Set up (idempotent), then run the whole test suite on two workers, a file at a time (tests/conftest.py
# says why). Extra arguments go to pytest: `-n 0` runs in one process, `-m "not slow"` skips the long tests.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup.sh"
cd "$root"
exec .venv/bin/python -m pytest -n 2 --dist loadfile "$@"
