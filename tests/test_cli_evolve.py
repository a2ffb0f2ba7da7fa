"""`synapse-ng evolve` and `stats` as real processes, with a scripted model behind a loopback
OpenAI-compatible server; the evolved module's evidence is then reproduced by `synapse-ng reproduce`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from llm_servers import LoopbackServer, Ok, OpenAIWire, scripted_model_options

CLI = [sys.executable, "-m", "synapse_ng.cli"]
SORTED_TALLY = (
    (Path(__file__).parent / "test_cli_components.py")
    .read_text()
    .split('SORTED_TALLY = r"""')[1]
    .split('"""')[0]
)


def synapse(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=600)


def test_evolve_writes_a_reproducible_result_and_stats_read_it_back(tmp_path):
    server = LoopbackServer(OpenAIWire(), Ok(text=f"Sorting is O(n log n):\n```rust\n{SORTED_TALLY}\n```"))
    workspace = str(tmp_path / "ws")
    try:
        done = synapse(
            "evolve",
            "--component",
            "consensus",
            *scripted_model_options(server),
            "--samples",
            "2",
            "--islands",
            "1",
            "--concurrency",
            "1",
            "--workspace",
            workspace,
            "--json",
        )
    finally:
        server.close()
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["improved"] and report["heldout"]["aggregate"]["improvement_pct"] > 50
    files = report["files"]
    assert Path(files["wasm"]).read_bytes()[:4] == b"\0asm"
    reproduced = synapse("reproduce", files["evidence"], files["wasm"])
    assert reproduced.returncode == 0, reproduced.stdout + reproduced.stderr
    stats = json.loads(synapse("stats", "--workspace", workspace, "--json").stdout)
    assert stats["total_generations"] == 2 and stats["successful_compilations"] >= 1
    assert stats["best_improvement_per_component"]["raft_consensus"] > 50


def test_evolve_bad_arguments_are_usage_errors(tmp_path):
    done = synapse("evolve", "--component", "warp_drive", "--workspace", str(tmp_path))
    assert done.returncode == 1 and "known components" in done.stderr
    done = synapse("evolve", "--component", "consensus", "--islands", "0", "--workspace", str(tmp_path))
    assert done.returncode == 1 and "--islands" in done.stderr
    done = synapse(
        "evolve", "--component", "consensus", "--ray-address", "auto", "--workspace", str(tmp_path)
    )
    assert done.returncode == 1 and "--executor ray" in done.stderr
