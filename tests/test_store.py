"""The engine's store on real SQLite files: round trips, commit-as-you-go under SIGKILL, two writing
processes, dedup, statistics across reopening, artifacts (atomic, verified, cleaned up) and bad files."""

from __future__ import annotations

import hashlib
import math
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading

import pytest

from synapse_ng.errors import UsageError
from synapse_ng.evolution.attempt import Attempt
from synapse_ng.evolution.schema import SCHEMA_VERSION
from synapse_ng.evolution.store import CorruptArtifact, RunRow, Store

SHA = "ab" * 32


def candidate_fields(i: int = 0, **overrides) -> dict:
    fields = dict(
        island=i % 2,
        generation=i,
        parent_id=None,
        operator="llm-block",
        provider="local",
        model="qwen",
        tokens_in=100 + i,
        tokens_out=50 + i,
        language="rust",
        source=f"fn f() -> i32 {{ {i} }}",
        source_hash=f"hash-{i}",
        status="correct",
        stage="done",
        message="",
        compile_log="",
        verification={"cases_passed": 10, "cases_total": 10, "first_failure": None},
        metrics={"aggregate": {"candidate": 100.0 - i, "improvement_pct": float(i)}},
        score=100.0 - i,
        improvement_pct=float(i),
        wasm_sha256=None,
        generation_s=2.0,
        compile_s=1.0,
        evaluation_s=3.0,
    )
    fields.update(overrides)
    return fields


def attempt(run_id: str, **fields) -> Attempt:
    return Attempt(run_id=run_id, **fields)


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "ws") as store:
        yield store


def new_run(store: Store, **kwargs) -> str:
    return store.create_run("task_allocation", "local", "qwen", 7, {"islands": 2}, **kwargs)


# ------------------------------------------------------------------------------------ round trips


def test_open_creates_database_and_artifacts_in_wal_mode(tmp_path):
    store = Store(tmp_path / "ws")
    assert (tmp_path / "ws" / "engine.sqlite3").is_file()
    assert (tmp_path / "ws" / "artifacts").is_dir()
    assert store.journal_mode == "wal"
    store.close()
    db = sqlite3.connect(tmp_path / "ws" / "engine.sqlite3")
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()
    Store(tmp_path / "ws").close()  # reopening an up-to-date store migrates nothing


def test_run_round_trip_and_budget(store):
    config = {"islands": 2, "budget": {"samples": 24, "minutes": None}, "problem": "slow bins"}
    run_id = store.create_run("raft_consensus", "openai_api", "gpt", None, config, direction="max")
    assert len(run_id) == 12 and int(run_id, 16) >= 0
    run = store.get_run(run_id)
    assert isinstance(run, RunRow)
    assert (run.run_id, run.component, run.provider, run.model, run.seed) == (
        run_id,
        "raft_consensus",
        "openai_api",
        "gpt",
        None,
    )
    assert run.config == config and run.direction == "max" and run.status == "running"
    assert (run.samples, run.tokens_in, run.tokens_out, run.elapsed_s) == (0, 0, 0, 0.0)

    store.update_run_budget(run_id, 5, 1200, 800, 61.25)
    cid = store.add(attempt(run_id, **candidate_fields()))
    store.finish_run(run_id, "improved", "held-out improvement of 3 %", cid)
    run = store.get_run(run_id)
    assert (run.samples, run.tokens_in, run.tokens_out, run.elapsed_s) == (5, 1200, 800, 61.25)
    assert (run.status, run.reason, run.best_candidate_id) == ("improved", "held-out improvement of 3 %", cid)
    assert run.finished_at is not None

    resumed = store.resume_run(run_id)
    assert resumed.status == "running" and resumed.finished_at is None and resumed.samples == 5


def test_list_runs_newest_first(store):
    ids = [new_run(store) for _ in range(4)]
    assert [run.run_id for run in store.list_runs()] == ids[::-1]
    assert [run.run_id for run in store.list_runs(limit=2)] == ids[:1:-1]


def test_unknown_run_lists_the_latest(store):
    with pytest.raises(UsageError, match="no runs yet"):
        store.get_run("000000000000")
    ids = [new_run(store) for _ in range(3)]
    with pytest.raises(UsageError) as caught:
        store.get_run("nope")
    assert all(run_id in str(caught.value) for run_id in ids)
    with pytest.raises(UsageError, match="no run 'nope'"):
        store.add(attempt("nope", **candidate_fields()))
    with pytest.raises(UsageError, match="no run 'nope'"):
        store.finish_run("nope", "improved", "", None)
    with pytest.raises(UsageError, match="no run 'nope'"):
        store.update_run_budget("nope", 1, 1, 1, 1.0)
    with pytest.raises(UsageError, match="parent"):
        store.add(attempt(ids[0], **candidate_fields(parent_id=12345)))
    other = store.add(attempt(ids[1], **candidate_fields()))
    with pytest.raises(UsageError, match="does not belong"):
        store.finish_run(ids[0], "improved", "", other)


def test_candidate_round_trip_with_exact_json(store):
    run_id = new_run(store)
    tricky = {
        "floats": [0.1 + 0.2, 1e-308, 5e-324, 1.7976931348623157e308, -0.0, 1 / 3],
        "special": [math.inf, -math.inf],
        "big": 2**80,
        "text": 'Grüße ✓ "quoted" \n newline',
        "nested": {"a": [None, True, False, {"b": []}]},
    }
    parent = store.add(attempt(run_id, **candidate_fields(0)))
    fields = candidate_fields(
        1,
        parent_id=parent,
        verification=tricky,
        metrics={"nan": math.nan},
        score=0.1 + 0.2,
        improvement_pct=-1e-12,
        wasm_sha256=SHA.upper(),
    )
    cid = store.add(attempt(run_id, **fields))
    row = store.candidate(cid)
    assert isinstance(row, Attempt) and row.id == cid and row.run_id == run_id
    for name, value in fields.items():
        if name not in ("verification", "metrics", "wasm_sha256"):
            assert getattr(row, name) == value, name
    assert row.verification == tricky
    assert math.copysign(1.0, row.verification["floats"][4]) == -1.0
    assert math.isnan(row.metrics["nan"])
    assert row.score == 0.1 + 0.2 and row.wasm_sha256 == SHA
    assert [c.id for c in store.candidates(run_id)] == [parent, cid]
    with pytest.raises(UsageError, match="no candidate 999"):
        store.candidate(999)
    with pytest.raises(UsageError, match="JSON"):
        store.add(attempt(run_id, **candidate_fields(2, metrics={"x": object()})))


def test_seen_hashes_and_best_candidates(store):
    run_id, other = new_run(store), new_run(store, direction="max")
    for i in range(5):
        store.add(attempt(run_id, **candidate_fields(i, score=[5.0, 1.0, 3.0, 1.0, None][i])))
    store.add(attempt(run_id, **candidate_fields(9, source_hash="", status="no_code", score=None)))
    store.add(attempt(other, **candidate_fields(0, source_hash="elsewhere")))
    assert store.seen_hashes(run_id) == {
        f"hash-{i}" for i in range(5)
    }  # empty hashes left out, other runs too
    best = store.best_candidates(run_id, 3)
    assert [c.score for c in best] == [1.0, 1.0, 3.0]
    assert best[0].id < best[1].id  # ties go to the earlier candidate
    assert [c.score for c in store.best_candidates(run_id, 2, direction="max")] == [5.0, 3.0]
    assert [c.island for c in store.best_candidates(run_id, 10, island=0)] == [0, 0]
    with pytest.raises(UsageError, match="direction"):
        store.create_run("x", "p", "m", None, {}, direction="up")


def test_results_and_best_improvement(store):
    run_id = new_run(store)
    cid = store.add(attempt(run_id, **candidate_fields()))
    evidence = {"format": "synapse-ng/evidence/1", "aggregate": {"improvement_pct": 2.5000000000000004}}
    first = store.record_result(run_id, cid, "task_allocation", 2.5000000000000004, evidence, SHA)
    store.record_result(run_id, None, "task_allocation", 1.0, {}, "cd" * 32)
    store.record_result(run_id, None, "raft_consensus", 7.5, {}, "ef" * 32)
    results = store.results()
    assert (
        [r.id for r in results][0] == first
        and results[0].evidence == evidence
        and results[0].candidate_id == cid
    )
    assert [r.component for r in store.results("raft_consensus")] == ["raft_consensus"]
    assert store.best_improvement_per_component() == {
        "raft_consensus": 7.5,
        "task_allocation": 2.5000000000000004,
    }
    with pytest.raises(UsageError, match="SHA-256"):
        store.record_result(run_id, cid, "task_allocation", 1.0, {}, "not-a-hash")
    with pytest.raises(UsageError, match="no candidate"):
        store.record_result(run_id, 4242, "task_allocation", 1.0, {}, SHA)


# ----------------------------------------------------------------------------------- statistics


def test_statistics_from_rows_survive_reopening(tmp_path):
    with Store(tmp_path) as store:
        empty = store.statistics()
        assert empty == {
            "total_generations": 0,
            "successful_compilations": 0,
            "failed_compilations": 0,
            "success_rate": 0.0,
            "avg_generation_time_seconds": 0.0,
            "avg_compilation_time_seconds": 0.0,
            "total_generation_time_seconds": 0,
            "total_compilation_time_seconds": 0,
            "best_improvement_per_component": {},
            "best_training_improvement_pct": None,
            "migrants": {"admitted": 0, "misreported": 0, "dropped": 0},
            "banned_as_rolled_back": 0,
        }
        run_id = new_run(store)
        rows = [
            dict(operator="baseline", status="correct", generation_s=0.0, compile_s=9.0),  # not a generation
            dict(status="correct", generation_s=2.0, compile_s=1.0),
            dict(status="incorrect", stage="cases", generation_s=4.0, compile_s=3.0),
            dict(
                status="rejected", stage="verify", generation_s=2.0, compile_s=2.0
            ),  # compiled, then refused
            dict(status="compile_failed", stage="compile", generation_s=4.0, compile_s=2.0),
            dict(status="rejected", stage="policy", generation_s=2.0, compile_s=0.0),  # never compiled
            dict(status="duplicate", stage="dedup", generation_s=4.0, compile_s=0.0),
        ]
        for i, row in enumerate(rows):
            store.add(attempt(run_id, **candidate_fields(i, **row)))
        store.record_result(run_id, None, "task_allocation", 4.25, {}, SHA)
        stats = store.statistics()
    with Store(tmp_path) as reopened:
        assert reopened.statistics() == stats
        assert reopened.statistics(run_id) == stats
        assert reopened.statistics("000000000000")["total_generations"] == 0
    assert stats["total_generations"] == 6
    assert (stats["successful_compilations"], stats["failed_compilations"]) == (3, 1)
    assert stats["success_rate"] == 0.75
    assert stats["avg_generation_time_seconds"] == pytest.approx(18.0 / 6)
    assert stats["avg_compilation_time_seconds"] == pytest.approx(8.0 / 4)
    assert stats["total_generation_time_seconds"] == pytest.approx(18.0)
    assert stats["total_compilation_time_seconds"] == pytest.approx(8.0)
    assert stats["best_improvement_per_component"] == {"task_allocation": 4.25}
    # On training, only correct candidates count, and never the baseline: row 1's 1.0 %, not 2.0-6.0 %.
    assert stats["best_training_improvement_pct"] == 1.0


# ------------------------------------------------------------------------------- concurrency


CHILD_WRITER = textwrap.dedent(
    """
    import sys
    from synapse_ng.evolution.attempt import Attempt
    from synapse_ng.evolution.store import Store

    directory, run_id, count, tag = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    store = Store(directory)
    print("ready", flush=True)
    sys.stdin.readline()  # wait for "go", so that writers really overlap
    for i in range(count):
        candidate_id = store.add(Attempt(
            run_id, island=i % 2, generation=i, parent_id=None, operator="llm-block", provider="local",
            model="qwen", tokens_in=i, tokens_out=i, language="rust", source=f"// {tag} {i}",
            source_hash=f"{tag}-{i}", status="correct", stage="done", message="", compile_log="",
            verification={"i": i}, metrics={"score": i / 7}, score=i / 7, improvement_pct=0.5,
            wasm_sha256=None, generation_s=0.1, compile_s=0.2, evaluation_s=0.3,
        ))
        if i % 5 == 0:
            store.update_run_budget(run_id, i, i, i, float(i))
        print(candidate_id, flush=True)
    """
)


def start_writer(directory, run_id, count, tag) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-c", CHILD_WRITER, str(directory), run_id, str(count), tag],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout.readline().strip() == "ready", process.stderr.read()
    return process


def test_killed_writer_loses_nothing_it_committed(tmp_path):
    with Store(tmp_path) as store:
        run_id = new_run(store)
    child = start_writer(tmp_path, run_id, 100_000, "killed")
    child.stdin.write("go\n")
    child.stdin.flush()
    printed = []
    try:
        while len(printed) < 40:
            line = child.stdout.readline()
            assert line, child.stderr.read()
            printed.append(int(line))
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL
    with Store(tmp_path) as store:
        assert store.integrity_check() == []
        stored = {c.id: c for c in store.candidates(run_id)}
        assert set(printed) <= set(stored)  # every candidate the child saw committed is there
        assert len(stored) < 100_000  # and it really was killed mid-way
        assert all(stored[i].verification == {"i": stored[i].generation} for i in printed)
        assert store.statistics()["total_generations"] == len(stored)
        # the resumed run carries on: same run, new ids after the old ones, dedup still knows the old sources
        assert {f"killed-{c.generation}" for c in stored.values()} == store.seen_hashes(run_id)
        new_id = store.add(attempt(store.resume_run(run_id).run_id, **candidate_fields(0)))
        assert new_id > max(stored)


def test_two_processes_write_concurrently(tmp_path):
    with Store(tmp_path) as store:
        run_id = new_run(store)
    count = 150
    writers = [start_writer(tmp_path, run_id, count, tag) for tag in ("a", "b")]
    for writer in writers:
        writer.stdin.write("go\n")
        writer.stdin.flush()
    outputs = [writer.communicate(timeout=60) for writer in writers]
    for writer, (out, err) in zip(writers, outputs, strict=True):
        assert writer.returncode == 0, err
        assert "locked" not in err
        assert len(out.split()) == count
    with Store(tmp_path) as store:
        rows = store.candidates(run_id)
        assert len(rows) == 2 * count
        assert sorted(int(i) for out, _ in outputs for i in out.split()) == [c.id for c in rows]
        assert len(store.seen_hashes(run_id)) == 2 * count
        assert store.integrity_check() == []


def test_threads_share_one_store(store):
    run_id = new_run(store)
    errors = []

    def write(tag: int) -> None:
        try:
            for i in range(25):
                store.add(attempt(run_id, **candidate_fields(i, source_hash=f"{tag}-{i}")))
                store.seen_hashes(run_id)
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=write, args=(tag,)) for tag in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(store.candidates(run_id)) == 100


# ---------------------------------------------------------------------------------- artifacts


def test_artifact_round_trip_is_atomic_and_idempotent(store):
    wasm = b"\0asm\x01\0\0\0" + bytes(range(256))
    sha = store.put_artifact(wasm)
    assert sha == hashlib.sha256(wasm).hexdigest()
    assert store.artifact_path(sha) == store.artifacts_dir / f"{sha}.wasm"
    assert store.get_artifact(sha) == wasm and store.get_artifact(sha.upper()) == wasm
    assert store.put_artifact(bytearray(wasm)) == sha
    assert sorted(p.name for p in store.artifacts_dir.iterdir()) == [f"{sha}.wasm"]  # no temp files left
    assert store.has_artifact(sha) and not store.has_artifact(SHA)
    with pytest.raises(UsageError, match="no artifact"):
        store.get_artifact(SHA)
    with pytest.raises(UsageError, match="SHA-256"):
        store.artifact_path("../engine.sqlite3")


def test_corrupted_artifact_is_detected_and_repaired_by_storing_again(store):
    wasm = b"\0asm\x01\0\0\0 module"
    sha = store.put_artifact(wasm)
    path = store.artifact_path(sha)
    path.write_bytes(wasm[:-1] + b"X")
    with pytest.raises(CorruptArtifact, match="corrupt") as caught:
        store.get_artifact(sha)
    assert str(path) in str(caught.value) and isinstance(caught.value, UsageError)
    assert store.put_artifact(wasm) == sha
    assert store.get_artifact(sha) == wasm


def test_cleanup_keeps_the_newest_and_every_result_artifact(store):
    run_id = new_run(store)
    shas = []
    for i in range(8):  # oldest first, with distinct mtimes
        sha = store.put_artifact(b"\0asm" + bytes([i]))
        os.utime(store.artifact_path(sha), ns=(10**18 + i * 10**9, 10**18 + i * 10**9))
        shas.append(sha)
    store.record_result(run_id, None, "task_allocation", 3.0, {}, shas[0])
    store.add(attempt(run_id, **candidate_fields(0, wasm_sha256=shas[1])))
    store.record_result(run_id, None, "task_allocation", 1.0, {}, "cd" * 32)  # names a file that is not here
    assert store.referenced_artifacts() == {shas[0], shas[1], "cd" * 32}
    stale = store.artifacts_dir / ".deadbeef.tmp"
    stale.write_bytes(b"half")
    os.utime(stale, (0, 0))

    removed = store.cleanup_artifacts(keep_latest=3)
    assert sorted(removed) == sorted(
        shas[1:5]
    )  # a candidate's reference does not protect it; a result's does
    left = {p.stem for p in store.artifacts_dir.iterdir()}
    assert left == {shas[0], *shas[5:]}
    assert store.cleanup_artifacts(keep_latest=3) == []
    assert store.cleanup_artifacts(keep_latest=0) == shas[7:4:-1]
    assert store.get_artifact(shas[0]) == b"\0asm\x00"
    with pytest.raises(UsageError):
        store.cleanup_artifacts(keep_latest=-1)


# --------------------------------------------------------------------------------- bad files


def test_schema_newer_than_the_code_is_refused(tmp_path):
    Store(tmp_path).close()
    db = sqlite3.connect(tmp_path / "engine.sqlite3")
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    with pytest.raises(UsageError, match="newer synapse-ng"):
        Store(tmp_path)


def test_not_a_database_says_to_move_it_away(tmp_path):
    (tmp_path / "engine.sqlite3").write_bytes(b"this is not a database, just some text\n" * 200)
    with pytest.raises(UsageError, match="move it away") as caught:
        Store(tmp_path)
    assert "engine.sqlite3" in str(caught.value)
    assert (tmp_path / "engine.sqlite3").read_bytes().startswith(b"this is not")  # nothing overwritten


def test_directory_that_is_a_file(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match="writable directory"):
        Store(tmp_path / "file")


def test_closed_store(tmp_path):
    store = Store(tmp_path)
    store.close()
    with pytest.raises(UsageError, match="closed"):
        store.list_runs()
