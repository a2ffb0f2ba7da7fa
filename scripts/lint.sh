#!/usr/bin/env bash
# The checks .ci/run makes before the tests: lint, formatting and types (configured in pyproject.toml),
# and the components' Rust skeletons formatted as rustfmt would (their C twins are compiled by the tests).
# Fails on the first problem; `ruff check --fix`, `ruff format` and `rustfmt --edition 2021 FILE` repair
# most of what the formatters report.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
.venv/bin/ruff check src tests benchmarks
.venv/bin/ruff format --check src tests benchmarks
.venv/bin/mypy
rustfmt --check --edition 2021 src/synapse_ng/components/*/skeleton.rs
