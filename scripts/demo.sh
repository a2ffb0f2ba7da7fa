#!/usr/bin/env bash
# Set up (idempotent), then run the main job end to end.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup.sh"
exec "$root/.venv/bin/synapse-ng" demo "$@"
