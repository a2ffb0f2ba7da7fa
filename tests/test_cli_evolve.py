"""`synapse-ng evolve` and `stats` as real processes, with a scripted model behind a loopback
OpenAI-compatible server; the evolved module's evidence is then reproduced by `synapse-ng reproduce`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

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


# The model's second answer: the hash-map tally the embedded model wrote (a tally has nothing the tuner
# may change, its integers are outcome and choice codes, so both samples are the model's).
HASH_TALLY = "\n".join(
    line
    for line in (Path(__file__).parents[1] / "examples" / "raft_hash_tally_evolved.rs")
    .read_text()
    .splitlines()
    if not line.startswith("//")
)


def tally_answers() -> tuple[Ok, Ok]:
    """The scripted model's two answers: the sorted tally, then the hash-map one (and so on, repeated)."""
    return Ok(text=f"Sorting is O(n log n):\n```rust\n{SORTED_TALLY}\n```"), Ok(
        text=f"```rust\n{HASH_TALLY}\n```"
    )


def two_sample_tally_search(server: LoopbackServer) -> list[str]:
    """`evolve` arguments: two samples of the vote tally on one island, from the scripted model."""
    return [
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
    ]


def test_evolve_writes_a_reproducible_result_and_stats_and_runs_read_it_back(tmp_path):
    server = LoopbackServer(OpenAIWire(), *tally_answers())
    workspace = str(tmp_path / "ws")
    try:
        done = synapse(*two_sample_tally_search(server), "--workspace", workspace, "--json")
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
    from synapse_ng.evolution.store import Store

    rows = Store(workspace).candidates(report["run_id"])
    counted = [row for row in rows if row.operator != "baseline" and row.status != "duplicate"]
    assert len(counted) == 2  # the budget; the model's repeats were stored but gave their samples back
    assert stats["total_generations"] == len(rows) - 1 and stats["successful_compilations"] >= 1
    assert stats["best_improvement_per_component"]["raft_consensus"] > 50
    _runs_read_back(workspace, report)


def _runs_read_back(workspace: str, report: dict) -> None:
    """`runs` lists the run; `runs show` gives its best candidate, the diff to the baseline and a plot
    whose points are the store's best-so-far scores (computed here from the rows, not by the CLI's code)."""
    from xml.etree import ElementTree

    from synapse_ng.evolution.store import Store

    listed = json.loads(synapse("runs", "--workspace", workspace, "--json").stdout)
    (run,) = listed["runs"]
    assert run["run_id"] == report["run_id"] and run["status"] == "improved"
    assert run["heldout_improvement_pct"] == report["heldout"]["aggregate"]["improvement_pct"]
    shown = synapse("runs", "show", report["run_id"], "--workspace", workspace, "--json")
    assert shown.returncode == 0, shown.stdout + shown.stderr
    detail = json.loads(shown.stdout)
    rows = Store(workspace).candidates(report["run_id"])
    expected, best = [], None
    for row in rows:  # raft_consensus: fuel, lower is better
        if row.status == "correct" and row.score is not None and (best is None or row.score < best):
            best = row.score
            expected.append((row.id, row.score))
    assert detail["best"]["id"] == expected[-1][0] and detail["best"]["score"] == expected[-1][1]
    # The best is the hash-map tally (the second answer: less fuel than sorting).
    assert "--- baseline" in detail["diff"] and "+" in detail["diff"] and "HashMap" in detail["diff"]
    assert detail["settings"]["config"]["islands"] == 1 and detail["heldout"]["workloads"]
    svg = ElementTree.parse(detail["plot"]).getroot()
    circles = [c for c in svg.iter("{http://www.w3.org/2000/svg}circle")]
    assert [(int(c.get("data-candidate")), float(c.get("data-score"))) for c in circles] == expected
    (baseline_line,) = [
        line for line in svg.iter("{http://www.w3.org/2000/svg}line") if line.get("class") == "baseline"
    ]
    assert float(baseline_line.get("data-score")) == rows[0].score and rows[0].operator == "baseline"
    human = synapse("runs", "show", report["run_id"], "--workspace", workspace).stdout
    assert f"plot: {detail['plot']}" in human and "--- baseline" in human
    unknown = synapse("runs", "show", "no-such-run", "--workspace", workspace)
    assert unknown.returncode == 1 and "no-such-run" in unknown.stderr


def test_evolve_bad_arguments_are_usage_errors(tmp_path):
    done = synapse("evolve", "--component", "warp_drive", "--workspace", str(tmp_path))
    assert done.returncode == 1 and "known components" in done.stderr
    done = synapse("evolve", "--component", "consensus", "--islands", "0", "--workspace", str(tmp_path))
    assert done.returncode == 1 and "--islands" in done.stderr
    done = synapse(
        "evolve", "--component", "consensus", "--ray-address", "auto", "--workspace", str(tmp_path)
    )
    assert done.returncode == 1 and "--executor ray" in done.stderr


def test_evolve_draws_a_live_line_on_a_terminal_and_plain_lines_into_a_pipe(tmp_path):
    """stderr on a real pseudo-terminal: rich's live display (cursor control, redrawn line); the same
    search with stderr on a pipe: one plain line per sample, no control characters."""
    import os
    import pty

    server = LoopbackServer(OpenAIWire(), *tally_answers())
    args = [*CLI, *two_sample_tally_search(server), "--minutes", "10"]
    try:
        leader, follower = pty.openpty()
        terminal = subprocess.Popen(
            [*args, "--workspace", str(tmp_path / "tty")],
            stdout=subprocess.PIPE,
            stderr=follower,
            env={**os.environ, "TERM": "xterm", "COLUMNS": "200"},
        )
        os.close(follower)
        seen = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closed: the process is gone
                break
            if not chunk:
                break
            seen += chunk
        assert terminal.wait(timeout=600) == 0
    finally:
        server.close()
    server = LoopbackServer(OpenAIWire(), *tally_answers())  # the same answers again, from the first
    try:
        piped = synapse(
            *two_sample_tally_search(server), "--minutes", "10", "--workspace", str(tmp_path / "pipe")
        )
    finally:
        server.close()
    drawn = seen.decode("utf-8", "replace")
    assert "\x1b[" in drawn and "samples 2/2" in drawn and "min left" in drawn
    assert piped.returncode == 0, piped.stderr
    lines = [line for line in piped.stderr.splitlines() if line.startswith("samples ")]
    # One line per proposal: the model repeats itself, and a repeat shows as a duplicate, not a sample.
    counts = [(line.split()[1], int(line.split("duplicates ")[1].split()[0])) for line in lines]
    assert counts[-1][0] == "2/2" and len(counts) == 2 + counts[-1][1], counts
    assert [n for n, _ in counts] == sorted(n for n, _ in counts) and "\x1b[" not in piped.stderr
    assert all("min left" in line and "correct" in line for line in lines)


# A hash table with linear probing, in C: O(n) where the baseline is O(records x voters).
HASHED_TALLY_C = r"""
typedef struct {
    uint32_t voter;
    uint32_t seq;
    uint32_t index;
    uint32_t used;
} Slot;

static Slot table[1u << 21];

static Tally tally_votes(const Record *records, uint32_t n, int64_t quorum, int64_t num, int64_t den) {
    uint32_t size = 16;
    while (size < 2 * n) size <<= 1;
    for (uint32_t k = 0; k < size; k++) table[k].used = 0;
    uint32_t mask = size - 1;
    for (uint32_t i = 0; i < n; i++) {
        const Record *r = &records[i];
        uint32_t h = (r->voter * 2654435761u) & mask;
        while (table[h].used && table[h].voter != r->voter) h = (h + 1) & mask;
        if (!table[h].used) {
            table[h].used = 1;
            table[h].voter = r->voter;
            table[h].seq = r->seq;
            table[h].index = i;
        } else if (r->seq >= table[h].seq) {
            table[h].seq = r->seq;
            table[h].index = i;
        }
    }
    Tally t;
    t.yes = 0;
    t.no = 0;
    t.abstain = 0;
    t.turnout = 0;
    for (uint32_t k = 0; k < size; k++) {
        if (!table[k].used) continue;
        const Record *r = &records[table[k].index];
        int64_t w = (int64_t)r->weight;
        if (r->choice == 0) t.yes += w;
        else if (r->choice == 1) t.no += w;
        else t.abstain += w;
        t.turnout += w;
    }
    if (t.turnout < quorum) t.outcome = 2;
    else if (t.yes + t.no > 0 && t.yes * den >= num * (t.yes + t.no)) t.outcome = 0;
    else t.outcome = 1;
    return t;
}
"""


# The baseline's table walked with pointers (no index arithmetic in the inner loop): about a quarter
# less fuel than the WAT baseline, same answers.
POINTER_TALLY_WAT = r"""
;; The baseline's table, walked with pointers: no index arithmetic in the inner loop.
(func $tally_votes (param $records i32) (param $n i32) (param $quorum i64) (param $num i64) (param $den i64)
    (param $scratch i32) (result i64 i64 i64 i64 i32)
  (local $r i32) (local $end i32) (local $e i32) (local $top i32) (local $v i32) (local $c i32)
  (local $w i64) (local $yes i64) (local $no i64) (local $abstain i64)
  (local.set $r (local.get $records))
  (local.set $end (i32.add (local.get $records) (i32.shl (local.get $n) (i32.const 4))))
  (local.set $top (local.get $scratch))
  (loop $record (if (i32.lt_u (local.get $r) (local.get $end)) (then
    (local.set $v (i32.load (local.get $r)))
    (local.set $e (local.get $scratch))
    (block $found (loop $search
      (br_if $found (i32.eq (local.get $e) (local.get $top)))
      (br_if $found (i32.eq (i32.load (local.get $e)) (local.get $v)))
      (local.set $e (i32.add (local.get $e) (i32.const 16)))
      (br $search)))
    (if (i32.eq (local.get $e) (local.get $top)) (then
      (i32.store (local.get $e) (local.get $v))
      (i32.store offset=4 (local.get $e) (i32.const 0))
      (local.set $top (i32.add (local.get $top) (i32.const 16)))))
    (if (i32.ge_u (i32.load offset=4 (local.get $r)) (i32.load offset=4 (local.get $e))) (then
      (i32.store offset=4 (local.get $e) (i32.load offset=4 (local.get $r)))
      (i32.store offset=8 (local.get $e) (local.get $r))))
    (local.set $r (i32.add (local.get $r) (i32.const 16)))
    (br $record))))
  (local.set $e (local.get $scratch))
  (loop $voter (if (i32.lt_u (local.get $e) (local.get $top)) (then
    (local.set $r (i32.load offset=8 (local.get $e)))
    (local.set $c (i32.load offset=8 (local.get $r)))
    (local.set $w (i64.load32_u offset=12 (local.get $r)))
    (if (i32.eqz (local.get $c)) (then (local.set $yes (i64.add (local.get $yes) (local.get $w)))))
    (if (i32.eq (local.get $c) (i32.const 1)) (then (local.set $no (i64.add (local.get $no) (local.get $w)))))
    (if (i32.gt_u (local.get $c) (i32.const 1))
      (then (local.set $abstain (i64.add (local.get $abstain) (local.get $w)))))
    (local.set $e (i32.add (local.get $e) (i32.const 16)))
    (br $voter))))
  (local.set $w (i64.add (local.get $yes) (local.get $no)))
  (local.get $yes) (local.get $no) (local.get $abstain) (i64.add (local.get $w) (local.get $abstain))
  (if (result i32) (i64.lt_s (i64.add (local.get $w) (local.get $abstain)) (local.get $quorum))
    (then (i32.const 2))
    (else (select (i32.const 0) (i32.const 1) (i32.and (i64.gt_s (local.get $w) (i64.const 0))
      (i64.ge_s (i64.mul (local.get $yes) (local.get $den)) (i64.mul (local.get $num) (local.get $w))))))))
"""


@pytest.mark.parametrize(
    "language, fence, block, gain, expected_line",
    [
        ("c", "c", HASHED_TALLY_C, 50, "uint32_t h = (r->voter * 2654435761u) & mask;"),
        ("wat", "wat", POINTER_TALLY_WAT, 10, "(local.set $top (local.get $scratch))"),
    ],
)
def test_evolve_searches_in_the_language_it_is_given(tmp_path, language, fence, block, gain, expected_line):
    """`--language c|wat`: the model is asked for that language, the answer is built (clang, wat2wasm)
    into that skeleton and measured against that baseline, and the result (source, module, evidence) is
    in that language."""
    server = LoopbackServer(OpenAIWire(), Ok(text=f"Faster:\n```{fence}\n{block}\n```"))
    workspace = str(tmp_path / "ws")
    try:
        done = synapse(
            *two_sample_tally_search(server), "--language", language, "--workspace", workspace, "--json"
        )
    finally:
        server.close()
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["improved"] and report["heldout"]["aggregate"]["improvement_pct"] > gain
    assert report["heldout"]["candidate"]["language"] == language
    source = Path(report["files"]["source"])
    assert source.name == f"candidate.{language}" and expected_line in source.read_text()
    assert f"```{fence}" in json.dumps(server.requests[0].body)


def test_evolve_refuses_a_language_without_a_skeleton(tmp_path):
    """Refused before anything runs: no model call, a usage error naming the choices."""
    server = LoopbackServer(OpenAIWire(), Ok(text="unused"))
    try:
        refused = synapse(
            *two_sample_tally_search(server), "--language", "assemblyscript", "--workspace", str(tmp_path)
        )
    finally:
        server.close()
    assert refused.returncode != 0 and "'assemblyscript' is not one of" in refused.stderr
    assert server.requests == []


def test_evolve_starts_from_the_starting_points_unless_told_not_to(tmp_path):
    """The run's recorded settings say which: on by default, off with --no-starting-points."""
    server = LoopbackServer(OpenAIWire(), Ok(text="No better idea."))
    try:
        for flags, expected in (((), True), (("--no-starting-points",), False)):
            workspace = str(tmp_path / str(expected))
            options = [*scripted_model_options(server), "--samples", "0", *flags, "--workspace", workspace]
            done = synapse("evolve", "--component", "task_allocation", *options, "--json")
            assert done.returncode == 0, done.stdout + done.stderr
            run_id = json.loads(done.stdout)["run_id"]
            shown = synapse("runs", "show", run_id, "--workspace", workspace, "--json")
            assert json.loads(shown.stdout)["settings"]["config"]["starting_points"] is expected
    finally:
        server.close()
