"""A search learns from what the network deployed and rolled back (node/lessons.py hands it these): it
starts from the deployed block and proposes only what beats it, and it never proposes a rolled-back block
again, neither the same source nor another that behaves exactly like it. Scripted model on loopback, real
builds and measurements."""

from __future__ import annotations

from llm_servers import LoopbackServer, OpenAIWire
from synapse_ng.evolution.store import Store
from synapse_ng.languages import source_hash
from test_islands_search import UNROLLED
from test_search import FAST, answer, run_search

# FAST written differently: the same normalised source once comments and spacing go (the same hash), and
# a renamed variable (another hash, the same machine code, so the same figure on every workload).
FAST_REFORMATTED = (
    "// squares\nfn sum_squares(values: &[i32]) -> i64 {\n"
    "    values.iter().map(|&v| (v as i64) * (v as i64)).sum()\n}"
)
FAST_RENAMED = (
    "fn sum_squares(values: &[i32]) -> i64 { values.iter().map(|&x| (x as i64) * (x as i64)).sum() }"
)


def search(tmp_path, answers: list, samples: int, **lessons) -> tuple[Store, object]:
    """A run of `samples` samples whose scripted model gives `answers`, with the lessons given."""
    server = LoopbackServer(OpenAIWire(), *answers)
    try:
        return run_search(tmp_path, server, samples=samples, **lessons)
    finally:
        server.close()


def test_a_rolled_back_block_is_never_proposed_again_by_hash_or_by_behaviour(tmp_path):
    store, result = search(tmp_path, [answer(FAST_REFORMATTED), answer(FAST_RENAMED)], 2, banned=(FAST,))
    answers = [a for a in store.candidates(result.run_id) if a.operator.startswith("llm-")]
    assert answers[0].source_hash == source_hash(FAST, "rust"), "the reformatted block is FAST's hash"
    assert answers[0].status.value == "duplicate", "the same source is never built again"
    renamed = next(a for a in answers if a.source_hash == source_hash(FAST_RENAMED, "rust"))
    assert renamed.status.value == "banned" and "rolled back" in renamed.message
    assert not result.improved
    # Without the ban, the renamed block is an improvement: the ban is what stopped it.
    _, free = search(tmp_path / "free", [answer(FAST_RENAMED)], 1)
    assert free.improved, free.reason


def test_a_search_starts_from_the_deployed_block_and_proposes_only_what_beats_it(tmp_path):
    # Deployed: FAST. The model writes UNROLLED, better than the baseline but not than FAST.
    store, result = search(tmp_path, [answer(UNROLLED)], 2, deployed=FAST)
    starts = [a for a in store.candidates(result.run_id) if a.operator == "start"]
    assert [a.source.strip() for a in starts] == [FAST] and starts[0].status.value == "correct"
    assert not result.improved
    assert result.reason == "no candidate beat the deployed version on the training workloads"
    # Deployed: UNROLLED. FAST beats it, and is proposed.
    _, better = search(tmp_path / "better", [answer(FAST)], 2, deployed=UNROLLED)
    assert better.improved and better.best.source.strip() == FAST, better.reason


def test_a_budget_spent_before_the_deployed_block_is_judged_still_has_to_beat_it(tmp_path):
    # One sample: the model's answer takes it before the deployed start is judged. The deployed block
    # (FAST) is then measured before anything can win, and UNROLLED, better than the baseline only, loses.
    store, result = search(tmp_path, [answer(UNROLLED)], 1, deployed=FAST)
    judged = {a.source.strip(): a for a in store.candidates(result.run_id)}
    assert judged[UNROLLED.strip()].status.value == "correct", "the answer improves on the baseline"
    assert judged[FAST].operator == "start" and judged[FAST].status.value == "correct"
    assert not result.improved
    assert result.reason == "no candidate beat the deployed version on the training workloads"
