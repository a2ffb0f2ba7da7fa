"""A node's parts on their own: the component runtime (fallback on a trap, shadow comparison), the durable
state, the config a proposal may change, and the on-disk cache of baseline builds."""

from __future__ import annotations

import json
import time

import pytest

from node_helpers import GAP_PENALTY, TRAPS_ON_77, compiled
from synapse_ng.components import CaseFailure, get_component
from synapse_ng.errors import UsageError
from synapse_ng.evolution import build as build_module
from synapse_ng.evolution.build import build_baseline
from synapse_ng.node.config import NodeConfig, check_changes
from synapse_ng.node.envelope import sign_envelope
from synapse_ng.node.identity import Identity
from synapse_ng.node.node import Node
from synapse_ng.node.runtime import BASELINE, ComponentRuntime, VersionError
from synapse_ng.node.state import NodeState
from synapse_ng.story import model_timeout_s

TASKS = get_component("task_allocation")


@pytest.fixture(scope="module")
def runtime_parts():
    baseline = build_baseline(TASKS)
    return baseline, compiled(GAP_PENALTY), compiled(TRAPS_ON_77)


def test_a_trap_falls_back_to_the_previous_version_and_is_counted(runtime_parts):
    baseline, _, trapping = runtime_parts
    runtime = ComponentRuntime(TASKS, baseline.wasm, baseline.sha256)
    runtime.activate("v1", trapping, "t" * 64)
    assert runtime.active == "v1" and runtime.versions() == [BASELINE, "v1"]
    ok = runtime.call({"capacity": 100, "items": [50, 30, 20]})
    assert ok.version == "v1" and ok.fault is None and sorted(set(ok.output)) == [0]
    started = time.time()
    served = runtime.call({"capacity": 100, "items": [50, 77, 20]})
    assert served.version == BASELINE and "trapped" in served.fault
    assert (runtime.faults, runtime.fallbacks) == (1, 1)
    window = runtime.window(started - 0.001)
    assert window.traps == 1 and window.fallbacks == 1
    # The trapped instance was replaced: the next call on v1 works again.
    assert runtime.call({"capacity": 100, "items": [10, 10]}).version == "v1"
    assert runtime.revert("v1") and runtime.active == BASELINE and not runtime.revert("v1")
    assert not runtime.revert(BASELINE)


def test_shadow_runs_one_version_on_the_same_inputs(runtime_parts):
    baseline, better, _ = runtime_parts
    runtime = ComponentRuntime(TASKS, baseline.wasm, baseline.sha256)
    runtime.activate("v1", better, "b" * 64)
    import random

    rng = random.Random(3)
    inputs = [
        {"capacity": 100, "items": [min(100, max(1, round(rng.weibullvariate(45, 3)))) for _ in range(800)]}
        for _ in range(4)
    ]
    before, after = runtime.shadow(BASELINE, inputs), runtime.shadow("v1", inputs)
    assert before.calls == after.calls == 4 and before.traps == after.traps == 0
    assert after.objective < before.objective  # the gap penalty packs these tighter than best fit
    assert runtime.calls == 0  # shadow calls are not production calls
    with pytest.raises(VersionError, match="no live version"):
        runtime.shadow("v9", inputs)


def test_a_module_that_fails_the_static_checks_cannot_be_activated(runtime_parts):
    baseline, _, _ = runtime_parts
    runtime = ComponentRuntime(TASKS, baseline.wasm, baseline.sha256)
    bad = __import__("wasmtime").wat2wasm('(module (import "env" "f" (func)))')
    with pytest.raises(VersionError, match="static checks"):
        runtime.activate("v1", bad, "x" * 64)
    assert runtime.versions() == [BASELINE]


def test_every_version_failing_is_an_error_not_a_wrong_answer(runtime_parts):
    _, _, trapping = runtime_parts
    runtime = ComponentRuntime(TASKS, trapping, "t" * 64)  # a trapping "baseline": nothing to fall back to
    with pytest.raises(CaseFailure, match="every version"):
        runtime.call({"capacity": 100, "items": [77]})


def test_state_keeps_messages_artifacts_and_versions_across_reopening(tmp_path):
    identity = Identity.generate()
    state = NodeState(tmp_path / "node.sqlite3")
    envelope = sign_envelope(
        identity, "vote", {"proposal_id": "ab" * 32, "choice": "yes", "seq": 1, "reason": ""}
    )
    assert state.add_message(envelope) and not state.add_message(envelope)  # a replay is not stored twice
    sha = state.put_artifact(b"\0asm-bytes")
    state.record_version("task_allocation", "p1", sha, "activated", "stage 0")
    state.record_version("task_allocation", "p2", sha, "activated", "stage 1")
    state.record_version("task_allocation", "p1", sha, "reverted", "rolled back")
    state.set("outcome:x", {"status": "approved"})
    state.close()
    again = NodeState(tmp_path / "node.sqlite3")
    assert again.inventory() == [envelope.id] and again.message(envelope.id) == envelope
    assert again.messages(kind="vote", proposal_id="ab" * 32) == [envelope]
    assert again.artifact(sha) == b"\0asm-bytes" and again.artifact("0" * 64) is None
    assert again.live_versions("task_allocation") == [("p2", sha)]
    assert [h["event"] for h in again.history("task_allocation")] == ["activated", "activated", "reverted"]
    assert again.get("outcome:x") == {"status": "approved"} and again.get("missing", 7) == 7


def test_a_damaged_artifact_is_never_served(tmp_path):
    state = NodeState(tmp_path / "node.sqlite3")
    sha = state.put_artifact(b"module bytes")
    state._write("UPDATE artifacts SET wasm = ? WHERE sha256 = ?", (b"other bytes", sha))
    assert state.artifact(sha) is None


@pytest.mark.parametrize(
    "changes, message",
    [
        ({}, "non-empty"),
        ({"port": 80}, "cannot be changed by a proposal"),
        ({"gossip_fanout": 2.5}, "takes an integer"),
        ({"gossip_fanout": True}, "takes an integer"),
        ({"gossip_fanout": 0}, "within 1..32"),
        ({"anti_entropy_interval_s": float("nan")}, "within"),
        ({"target.peers_reachable": 2.0}, "within 0..1"),
        ({"deadline_s": "30"}, "takes a number"),
    ],
)
def test_config_changes_a_node_cannot_apply_are_refused_with_the_reason(changes, message):
    with pytest.raises(UsageError, match=message):
        check_changes(changes)


def test_config_changes_apply_and_the_file_round_trips(tmp_path):
    config = NodeConfig(data_dir=str(tmp_path), port=9001, peers=["http://127.0.0.1:9002"])
    config.save()
    loaded = NodeConfig.load(tmp_path, port=None)
    assert (
        loaded.port == 9001 and loaded.peers == ["http://127.0.0.1:9002"] and loaded.code_threshold == (2, 3)
    )
    loaded.apply_changes({"gossip_fanout": 4, "target.allocation_excess_pct": 2.5})
    assert loaded.gossip_fanout == 4 and loaded.targets == {"allocation_excess_pct": 2.5}
    (tmp_path / "node.json").write_text(json.dumps({"port": 1, "colour": "red"}))
    with pytest.raises(UsageError, match="unknown keys"):
        NodeConfig.load(tmp_path)
    (tmp_path / "node.json").write_text("{")
    with pytest.raises(UsageError, match="not valid JSON"):
        NodeConfig.load(tmp_path)


@pytest.mark.parametrize("bad", [0, -5, "soon", True, None, float("inf")])
def test_a_model_call_limit_that_is_not_a_positive_number_is_refused_at_load(tmp_path, bad):
    (tmp_path / "node.json").write_text(json.dumps({"llm_timeout_s": bad}))
    with pytest.raises(UsageError, match="llm_timeout_s must be a positive number of seconds"):
        NodeConfig.load(tmp_path)


def test_the_model_call_limit_reaches_the_engine_and_grows_with_islands_sharing_the_cores(tmp_path):
    (tmp_path / "node.json").write_text(json.dumps({"llm_timeout_s": 45}))
    node = Node.open(NodeConfig.load(tmp_path, port=18998))
    try:
        assert node.remedies.engine().llm_config.timeout_seconds == 45
    finally:
        node.state.close()
    # Three embedded models on two cores each write about half as fast; one has the machine to itself.
    assert model_timeout_s(1, cores=2) == model_timeout_s(2, cores=2) == 120
    assert model_timeout_s(3, cores=2) == 240 and model_timeout_s(8, cores=2) == 480


def test_the_baseline_cache_gives_the_bytes_a_compile_gives_and_rebuilds_a_damaged_entry(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("SYNAPSE_CACHE_DIR", str(tmp_path))
    component = get_component("gossip_protocol")
    build_baseline.cache_clear()
    fresh = build_baseline(component)
    [entry] = list((tmp_path / "baselines").iterdir())
    assert json.loads(entry.read_text())["sha256"] == fresh.sha256
    build_baseline.cache_clear()
    calls = []
    monkeypatch.setattr(build_module, "build_candidate", lambda *a, **k: calls.append(a) or fresh)
    cached = build_baseline(component)
    assert cached.wasm == fresh.wasm and not calls  # served from disk, no compile
    record = json.loads(entry.read_text())
    record["wasm"] = record["wasm"][:-2] + ("00" if record["wasm"][-2:] != "00" else "01")
    entry.write_text(json.dumps(record))
    build_baseline.cache_clear()
    assert build_baseline(component).wasm == fresh.wasm and calls  # damaged: rebuilt
    build_baseline.cache_clear()


def test_a_peer_pulls_only_what_was_stored_after_its_cursor(tmp_path):
    identity = Identity.generate()
    state = NodeState(tmp_path / "node.sqlite3")
    first = [
        sign_envelope(identity, "vote", {"proposal_id": "ab" * 32, "choice": "yes", "seq": k, "reason": ""})
        for k in range(3)
    ]
    for envelope in first:
        state.add_message(envelope)
    ids, cursor = state.inventory_after(0)
    assert ids == [e.id for e in first]
    later = sign_envelope(
        identity, "vote", {"proposal_id": "ab" * 32, "choice": "no", "seq": 9, "reason": ""}
    )
    state.add_message(later)
    state.add_message(first[0])  # a replay stores nothing, so it is not new to anyone
    assert state.inventory_after(cursor) == ([later.id], cursor + 1)
    assert state.inventory_after(cursor + 1) == ([], cursor + 1)
    delay = state.mean_delay(0.0, exclude_author="someone else")
    assert delay is not None and delay >= 0  # created just before they were stored
    assert state.mean_delay(0.0, exclude_author=identity.node_id) is None  # only its own messages


def test_the_engines_statistics_count_other_islands_programs_and_banned_ones():
    from synapse_ng.evolution.statistics import Generation, engine_statistics

    stats = engine_statistics(
        [
            Generation("misreported", "workloads", 0.0, 0.5, 1.0, "migrant"),
            Generation("correct", "done", 0.0, 0.5, 0.5, "migrant"),
            Generation("incorrect", "cases", 0.0, 0.5, None, "migrant"),
            Generation("banned", "workloads", 2.0, 0.5, 1.5, "llm-block"),
        ],
        {},
    )
    assert stats["migrants"] == {"admitted": 1, "misreported": 1, "dropped": 1}
    assert stats["banned_as_rolled_back"] == 1
    assert stats["successful_compilations"] == 4  # each built a module


def test_the_engines_statistics_are_prometheus_metrics_of_the_right_types():
    from prometheus_client.parser import text_string_to_metric_families

    from synapse_ng.evolution.statistics import Generation, engine_statistics
    from synapse_ng.node.metrics import NodeMetrics

    stats = engine_statistics(
        [
            Generation("correct", "done", 2.0, 0.5, 1.5, "llm-block"),
            Generation("compile_failed", "compile", 3.0, 0.25, None, "llm-block"),
            Generation("duplicate", "dedup", 1.0, 0.0, None, "llm-edits"),
        ],
        {"task_allocation": 0.52},
    )
    metrics = NodeMetrics()
    metrics.watch_engine(lambda: stats, lambda: False)
    families = {family.name: family for family in text_string_to_metric_families(metrics.render().decode())}
    kinds = {name: families[name].type for name in families if name.startswith("synapse_engine_")}
    assert kinds == {
        "synapse_engine_enabled": "gauge",
        "synapse_engine_generations": "counter",
        "synapse_engine_compilations": "counter",
        "synapse_engine_compile_success_ratio": "gauge",
        "synapse_engine_generation_seconds": "summary",
        "synapse_engine_compilation_seconds": "summary",
        "synapse_engine_best_improvement_percent": "gauge",
    }
    values = {
        (sample.name, tuple(sample.labels.values())): sample.value
        for family in families.values()
        for sample in family.samples
    }
    assert values[("synapse_engine_enabled", ())] == 0
    assert values[("synapse_engine_generations_total", ())] == 3
    assert values[("synapse_engine_compilations_total", ("succeeded",))] == 1
    assert values[("synapse_engine_compilations_total", ("failed",))] == 1
    assert values[("synapse_engine_compile_success_ratio", ())] == 0.5
    assert values[("synapse_engine_generation_seconds_count", ())] == 3
    assert values[("synapse_engine_generation_seconds_sum", ())] == 6.0
    assert values[("synapse_engine_compilation_seconds_count", ())] == 2
    assert values[("synapse_engine_compilation_seconds_sum", ())] == 0.75
    assert values[("synapse_engine_best_improvement_percent", ("task_allocation",))] == 0.52


def test_what_a_peer_reports_of_its_versions_is_kept_small_and_well_typed():
    """The attack: a peer's identity answer carries a huge, oddly typed version report. The node keeps at
    most 16 components, names and versions of at most 64 characters, strings only, and a short software
    string; the rest is dropped, never stored or shown."""
    from synapse_ng.node.transport import _reported_versions

    answer = {
        "software": "x" * 10_000,
        "components": {
            **{f"c{i}" * 40: "v" * 1000 for i in range(100)},
            "ok": "baseline",
        },
    }
    software, components = _reported_versions(answer)
    assert software == "x" * 40
    assert len(components) <= 16 and all(len(k) <= 64 and len(v) <= 64 for k, v in components.items())
    assert _reported_versions({"software": 5, "components": {"a": 1, "b": None, 3: "x", "c": "v1"}}) == (
        None,
        {"c": "v1"},
    )
    assert _reported_versions({"components": ["not", "a", "dict"]}) == (None, {})


def test_the_rollouts_canary_replays_an_input_without_crowding_out_the_real_ones(runtime_parts):
    """The judged window is the distinct inputs production sent: a canary per tick used to be kept again,
    and a burst of ticks left a window of copies of a few inputs (a good upgrade was rolled back on one)."""
    from synapse_ng.node.rollouts import serve_canary

    baseline, better, _ = runtime_parts
    runtime = ComponentRuntime(TASKS, baseline.wasm, baseline.sha256)
    runtime.activate("v1", better, "b" * 64)
    sent = [{"capacity": 100, "items": [40 + k, 30, 20 + k]} for k in range(5)]
    for task in sent:
        runtime.call(task)
    for _ in range(60):
        serve_canary(runtime)
    assert list(runtime.recent_inputs) == sent
    assert runtime.calls == 65  # the canaries are still served and counted: they exercise the version
    runtime.call({"capacity": 100, "items": [99]})
    assert list(runtime.recent_inputs)[-1] == {"capacity": 100, "items": [99]}
