#!/usr/bin/env bash
# Build llama-cpp-python (the embedded model's runtime) as a wheel, one of three ways:
#
#   bash scripts/build_llama.sh portable OUT_DIR   # what set-up installs: runs on any x86-64 CPU
#   bash scripts/build_llama.sh native   OUT_DIR   # llama.cpp's default: tuned to THIS CPU only
#   bash scripts/build_llama.sh avx2     OUT_DIR   # one fixed instruction set (x86-64-v3)
#
# portable: runtime CPU dispatch. ggml builds its CPU backend once per instruction-set level (x64,
# SSE4.2, AVX, AVX2, AVX-512 and its extensions, ...) as libggml-cpu-<level>.so, and at start picks the
# best one this CPU supports, so one wheel (which pip may cache and serve on other machines) runs
# everywhere at the speed of a native build. The variants go beside libllama (llama_cpp/lib), so they
# link to the same libggml-base; the model worker loads them from there (llm/model_worker.py). The
# AMX variant is left out of the installation by set-up (see setup.sh): its AMX buffer type segfaulted
# on a Xeon with AMX. native and avx2 exist to measure against (benchmarks/llama_build.py, BENCHMARKS.md).
#
# About 10 minutes on 2 cores for portable (14 variants), 3 to 5 for the others.
set -euo pipefail
flavour="${1:?usage: build_llama.sh portable|native|avx2 OUT_DIR}"
out="${2:?usage: build_llama.sh portable|native|avx2 OUT_DIR}"
version="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
python="${PYTHON:-python3}"

case "$flavour" in
    portable) cmake_args="-DGGML_NATIVE=OFF -DGGML_BACKEND_DL=ON -DGGML_CPU_ALL_VARIANTS=ON -DGGML_BACKEND_DIR:STRING=llama_cpp/lib" ;;
    native) cmake_args="-DGGML_NATIVE=ON" ;;
    avx2) cmake_args="-DGGML_NATIVE=OFF -DGGML_SSE42=ON -DGGML_AVX=ON -DGGML_F16C=ON -DGGML_FMA=ON -DGGML_AVX2=ON -DGGML_BMI2=ON -DGGML_AVX512=OFF -DGGML_AVX_VNNI=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF" ;;
    *) echo "build_llama.sh: unknown flavour '$flavour' (portable, native or avx2)" >&2; exit 1 ;;
esac

mkdir -p "$out"
echo "build_llama.sh: building llama-cpp-python $version ($flavour) into $out; CMAKE_ARGS=$cmake_args"
# --no-cache-dir: pip's wheel cache is keyed by the source, not by CMAKE_ARGS, so it would hand back
# whichever build it saw first (a native one, say). --no-binary: always from source, with these flags.
CMAKE_ARGS="$cmake_args" CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}" \
    "$python" -m pip wheel -q --no-deps --no-cache-dir --no-binary llama-cpp-python -w "$out" "llama-cpp-python==$version"
ls "$out"/llama_cpp_python-"$version"-*.whl
