"""An OpenAI-compatible server for a GGUF model: llama-cpp-python's own, with this build's CPU backends.

    python -m synapse_ng.llm.llama_server --model MODEL.gguf --host 127.0.0.1 --port 8000 \\
        [llama_cpp.server options]

Set-up installs llama.cpp with runtime CPU dispatch: its CPU backends are separate libraries that ggml
only looks for beside the Python executable and in the working directory, so a bare
`python -m llama_cpp.server` finds none ("no backends are loaded"). This loads them from where they were
installed, as the model worker does, then runs llama_cpp.server unchanged (same options).
"""

from __future__ import annotations

import runpy
import sys


def main() -> None:
    import llama_cpp

    from .model_worker import load_cpu_variants

    load_cpu_variants(llama_cpp)
    sys.argv[0] = "llama_cpp.server"
    runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
