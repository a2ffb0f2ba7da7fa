"""Tokens per second of the embedded model under different llama.cpp builds and settings, side by side.

    .venv/bin/python benchmarks/llama_build.py \
        --config before=/tmp/llama-builds/native,extra_bufts=on,omp=default,threads=2 \
        --config after=installed [--rounds 5] [--hog 1]

Each --config is NAME=DIR[,key=value...]: DIR a `pip install --target DIR` of llama-cpp-python built one
way (scripts/build_llama.sh native|avx2|portable), or `installed` for the one in this virtualenv; the
keys override the product's defaults: extra_bufts=on|off (llama.cpp's repacked weight layouts),
omp=default|passive (OpenMP's waiting: by default its threads spin a while between operations before
they sleep; passive sleeps at once), threads=N (generation threads; the prompt always uses every CPU).
Every configuration gets a model worker of its own; all stay loaded and the rounds go round-robin over
them, so a noisy neighbour slows them all alike. Each call: the same ~540-token prompt (a new first
line each round, so no prompt cache helps), --max-tokens new tokens, greedy. --hog N keeps N other
processes busy meanwhile, as the engine's compiles and evaluations do while the model generates.
Printed: each configuration's llama.cpp features and CPU backend, then the median prompt and generation
rates with their ratio to the first configuration.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from synapse_ng.llm.embedded_model import default_model_path  # noqa: E402
from synapse_ng.llm.worker_process import ModelWorker  # noqa: E402

PROMPT = (
    "Here is a Rust function that packs items into bins with the best-fit rule:\n\n"
    + (
        "fn priority(item: f64, bins: &[f64]) -> Vec<f64> {\n"
        "    bins.iter().map(|&r| -(r - item)).collect()\n}\n\n"
    )
    * 12
    + "Explain, step by step, how a better rule could waste less space, then write it."
)


def _messages(round_: int) -> list[dict]:
    # The round first: llama-cpp-python reuses the evaluated prefix of the previous prompt, and an identical
    # prompt would cost no evaluation at all. Every configuration gets the same prompt in a round.
    return [{"role": "user", "content": f"Request {round_ + 1}. {PROMPT}"}]


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "?"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", action="append", required=True, metavar="NAME=DIR[,key=value...]")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--hog", type=int, default=0, help="busy processes running meanwhile")
    parser.add_argument("--max-tokens", type=int, default=128)
    args = parser.parse_args()
    model = default_model_path(assemble=True)
    configs: list[tuple[str, ModelWorker]] = []
    saved = {key: os.environ.get(key) for key in ("PYTHONPATH", "OMP_WAIT_POLICY")}
    base_pythonpath = saved["PYTHONPATH"] or ""
    for spec in args.config:
        name, _, rest = spec.partition("=")
        directory, *pairs = rest.split(",")
        options = dict(pair.split("=", 1) for pair in pairs)
        # The worker inherits this environment: a build's directory first on its PYTHONPATH makes it import
        # that llama_cpp instead of the virtualenv's. OMP_WAIT_POLICY="" means OpenMP's own default.
        os.environ["PYTHONPATH"] = (
            base_pythonpath
            if directory == "installed"
            else os.pathsep.join(p for p in (directory, base_pythonpath) if p)
        )
        os.environ["OMP_WAIT_POLICY"] = {"default": "", "passive": "PASSIVE"}[options.get("omp", "passive")]
        extra = {"on": True, "off": False}[options["extra_bufts"]] if "extra_bufts" in options else None
        worker = ModelWorker(
            model,
            n_ctx=2048,
            n_threads=int(options["threads"]) if "threads" in options else None,
            extra_buffer_types=extra,
        )
        info = worker.start()
        label = (
            f"{name}: extra buffer types {'on' if info['extra_buffer_types'] else 'off'},"
            f" OpenMP wait {options.get('omp', 'passive')}, "
            f"{info['n_threads']}+{info['n_threads_batch']} threads"
        )
        configs.append((label, worker))
        print(
            f"{label}: loaded in {info['load_s']:.2f} s; {info['system_info']};"
            f" CPU backend: {info['cpu_backend']}",
            flush=True,
        )
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.hog)]
    results: dict[str, list[dict]] = {label: [] for label, _ in configs}
    for _, worker in configs:  # one warm-up call each (page cache, first-touch allocations)
        worker.chat(
            _messages(-1), max_tokens=8, temperature=0.0, seed=1, timeout_s=600, cancel=threading.Event()
        )
    for round_ in range(args.rounds):
        for label, worker in configs:
            reply = worker.chat(
                _messages(round_),
                max_tokens=args.max_tokens,
                temperature=0.0,
                seed=1,
                timeout_s=600,
                cancel=threading.Event(),
            )
            t = reply["timings"]
            results[label].append(t)
        print(f"round {round_ + 1}/{args.rounds} done", flush=True)
    for _, worker in configs:
        worker.close()
    for hog in hogs:
        hog.kill()

    print(
        f"\n{cpu_model()}, {os.cpu_count()} CPUs; {time.strftime('%Y-%m-%d')}; {args.rounds} rounds, "
        f"prompt {results[configs[0][0]][0]['prompt_tokens']} tokens, {args.max_tokens} new tokens; "
        f"{args.hog} busy process(es) meanwhile\n"
    )
    print(
        "| configuration (generation + prompt threads) | prompt tokens/s | generation tokens/s"
        " | prompt ratio | generation ratio |"
    )
    print("| --- | --- | --- | --- | --- |")
    first = None
    for label, _ in configs:
        prompt = statistics.median(t["prompt_tokens"] / t["prompt_s"] for t in results[label])
        generation = statistics.median(
            (t["completion_tokens"] - 1) / t["generation_s"] for t in results[label]
        )
        if first is None:
            first = (prompt, generation)
        print(
            f"| {label} | {prompt:.1f} | {generation:.1f} | {prompt / first[0]:.2f}"
            f" | {generation / first[1]:.2f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
