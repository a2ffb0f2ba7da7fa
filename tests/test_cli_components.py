"""`synapse-ng components`, `evaluate` and `reproduce` as real processes, on the raft_consensus component."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

CLI = [sys.executable, "-m", "synapse_ng.cli"]

# Sort the record indices by (voter, seq, position) and keep the last of each voter: O(n log n).
SORTED_TALLY = r"""
fn tally_votes(records: &[Record], quorum: i64, num: i64, den: i64) -> Tally {
    let mut order: Vec<usize> = (0..records.len()).collect();
    order.sort_unstable_by_key(|&i| (records[i].voter, records[i].seq, i));
    let mut t = Tally::default();
    for k in 0..order.len() {
        let last_of_voter = k + 1 == order.len() || records[order[k + 1]].voter != records[order[k]].voter;
        if !last_of_voter { continue; }
        let r = &records[order[k]];
        let w = r.weight as i64;
        match r.choice { 0 => t.yes += w, 1 => t.no += w, _ => t.abstain += w }
        t.turnout += w;
    }
    t.outcome = if t.turnout < quorum {
        2
    } else if t.yes + t.no > 0 && t.yes * den >= num * (t.yes + t.no) {
        0
    } else {
        1
    };
    t
}
"""
# Counts the first vote of each voter instead of the last: right only when nobody votes twice.
FIRST_VOTE_TALLY = SORTED_TALLY.replace(
    "k + 1 == order.len() || records[order[k + 1]].voter", "k == 0 || records[order[k - 1]].voter"
)


def synapse(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    """One honest evaluation with its evidence and module written out."""
    folder = tmp_path_factory.mktemp("evaluated")
    block = folder / "sorted.rs"
    block.write_text(SORTED_TALLY)
    done = synapse(
        "evaluate",
        str(block),
        "--component",
        "consensus",
        "--json",
        "--evidence-out",
        str(folder / "evidence.json"),
        "--wasm-out",
        str(folder / "candidate.wasm"),
    )
    return folder, done


def test_components_lists_the_three_with_their_seed_names():
    done = synapse("components", "--json")
    assert done.returncode == 0
    by_name = {c["name"]: c for c in json.loads(done.stdout)["components"]}
    assert {"task_allocation", "raft_consensus", "gossip_protocol"} <= set(by_name)
    assert "auction_system" in by_name["task_allocation"]["aliases"]
    assert "consensus" in by_name["raft_consensus"]["aliases"]
    assert by_name["raft_consensus"]["kind"] == "exact"
    assert by_name["task_allocation"]["kind"] == "heuristic"


def test_evaluate_measures_a_faster_tally_and_writes_its_evidence(evaluated):
    folder, done = evaluated
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["status"] == "correct"
    assert {w["id"] for w in report["workloads"]} == {"votes_1k", "votes_10k", "votes_100k"}
    assert report["aggregate"]["improvement_pct"] > 50
    evidence = json.loads((folder / "evidence.json").read_text())
    assert evidence["component"] == "raft_consensus"
    assert evidence["candidate"]["sha256"] == report["candidate"]["sha256"]


def test_reproduce_confirms_the_honest_evidence(evaluated):
    folder, _ = evaluated
    done = synapse("reproduce", str(folder / "evidence.json"), str(folder / "candidate.wasm"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "confirmed" in done.stdout


def test_reproduce_refutes_a_tampered_metric_with_exit_9(evaluated, tmp_path):
    folder, _ = evaluated
    evidence = json.loads((folder / "evidence.json").read_text())
    evidence["workloads"][2]["candidate"]["fuel"] //= 2
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(evidence))
    done = synapse("reproduce", str(tampered), str(folder / "candidate.wasm"), "--json")
    assert done.returncode == 9
    assert any("candidate fuel" in m for m in json.loads(done.stdout)["mismatches"])


def test_evaluate_exit_8_shows_the_first_failing_case(tmp_path):
    block = tmp_path / "first.rs"
    block.write_text(FIRST_VOTE_TALLY)
    done = synapse("evaluate", str(block), "--component", "raft_consensus")
    assert done.returncode == 8, done.stdout + done.stderr
    assert "first failure" in done.stdout and "expected:" in done.stdout and "got:" in done.stdout


def test_evaluate_exit_5_for_edits_outside_the_block(tmp_path):
    from synapse_ng.components import get_component
    from synapse_ng.models import CodeLanguage

    program = (
        get_component("raft_consensus")
        .skeleton(CodeLanguage.RUST)
        .replace("POISON_SLOTS: usize = 64", "POISON_SLOTS: usize = 0")
    )
    path = tmp_path / "whole.rs"
    path.write_text(program)
    done = synapse("evaluate", str(path), "--component", "raft_consensus")
    assert done.returncode == 5
    assert "EVOLVE block" in done.stdout


def test_evaluate_unknown_component_lists_the_known_ones(tmp_path):
    block = tmp_path / "b.rs"
    block.write_text(SORTED_TALLY)
    done = synapse("evaluate", str(block), "--component", "warp_drive")
    assert done.returncode == 1
    assert "raft_consensus" in done.stderr and "task_allocation" in done.stderr


def test_reproduce_bad_files_are_usage_errors(evaluated, tmp_path):
    folder, _ = evaluated
    assert synapse("reproduce", str(tmp_path / "none.json"), str(folder / "candidate.wasm")).returncode == 1
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json")
    done = synapse("reproduce", str(garbage), str(folder / "candidate.wasm"))
    assert done.returncode == 1 and "not JSON" in done.stderr
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps({"format": "synapse-ng/evidence/1"}))
    done = synapse("reproduce", str(partial), str(folder / "candidate.wasm"))
    assert done.returncode == 1 and "missing" in done.stderr


def test_the_readme_example_reproduces_funsearch_on_weibull():
    """The README shows how to evaluate your own heuristic with this exact command; FunSearch's published
    Weibull heuristic, run through our harness, must give its published 0.68 % excess on Weibull 5k."""
    root = Path(__file__).resolve().parents[1]
    assert (
        "synapse-ng evaluate examples/funsearch_weibull.rs --component task_allocation"
        in (root / "README.md").read_text()
    )
    done = subprocess.run(
        [*CLI, "evaluate", "examples/funsearch_weibull.rs", "--component", "task_allocation", "--json"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=root,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    workloads = {w["id"]: w for w in json.loads(done.stdout)["workloads"]}
    assert round(workloads["weibull_5k"]["candidate"]["excess_pct"], 2) == 0.68
    assert workloads["weibull_5k"]["baseline"]["bins"] == 2067.0
