#!/usr/bin/env bash
# The checks .ci/run makes before the tests: lint, formatting and types (configured in pyproject.toml).
# Fails on the first problem; `ruff check --fix` and `ruff format` repair most of what the first two report.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
.venv/bin/ruff check src tests benchmarks
.venv/bin/ruff format --check src tests benchmarks
.venv/bin/mypy
