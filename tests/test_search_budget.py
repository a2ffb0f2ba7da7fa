"""A search that never spins and keeps to its minutes: duplicates give their samples back, the tuner offers
only untried settings of real constants, the workers wait for a slow model instead of spinning, and the time
budget cancels a model call in flight. Real compiles and evaluations; the model is a scripted loopback
server behind a wrapper that answers one call at a time, slowly, as the embedded model does."""

from __future__ import annotations

import asyncio
import time

import pytest

from llm_servers import LoopbackServer, Ok, OpenAIWire
from synapse_ng.evolution.attempt import Attempt
from synapse_ng.evolution.search import Budget, EvolutionSearch, SearchConfig
from synapse_ng.evolution.store import Store
from synapse_ng.languages import source_hash
from synapse_ng.models import CodeLanguage
from test_search import WRONG, _bare_search, answer, provider_for


def test_the_tuner_leaves_the_components_interface_codes_alone(tmp_path):
    """raft's outcome `2` sits where a tunable integer would (a branch's value), so only its value says it
    is a code: the tuner never changes it, and a tally with nothing else to tune goes to the model."""
    from synapse_ng.components import get_component
    from synapse_ng.evolution.tuning import tunable_literals

    component = get_component("raft_consensus")
    assert component.interface_codes == {0, 1, 2}
    baseline = component.baseline_block(CodeLanguage.RUST)
    assert [literal.text for literal in tunable_literals(baseline, CodeLanguage.RUST)] == ["2"]
    search, Member = _bare_search(tmp_path, component, exploit=1.0)
    search.population.admit(0, Member(1, baseline, 10.0, 0.0, {"a": 1.0}))
    assert search.tuner.tune(0) is None and search.tuner.batch(0, 8) is None
    # Codes are values, not places: a capacity of 64 in a model's tally is still a constant to tune.
    spare = "let spare: Vec<u32> = Vec::with_capacity(64);"
    sized = baseline.replace("let mut t = Tally::default();", "let mut t = Tally::default(); " + spare, 1)
    assert sized != baseline
    search.population.admit(0, Member(2, sized, 9.0, 1.0, {"a": 0.9}))
    parent, block = search.tuner.tune(0)
    assert parent.id == 2 and spare not in block and "\n        2\n" in block


def test_the_tuner_learns_that_a_constant_whose_changes_break_the_program_is_structure(tmp_path):
    from synapse_ng.components import get_component
    from synapse_ng.outcome import Outcome

    search, Member = _bare_search(tmp_path, get_component("gossip_protocol"), exploit=1.0)
    sentinel = Member(1, "fn f(x: u32) -> u32 { if x == 0 { 7 } else { x } }", 10.0, 0.0, {"a": 1.0})
    search.population.admit(0, sentinel)
    parent, block = search.tuner.tune(0)  # only the sentinel `7` is there to try
    assert parent.id == 1 and "{ 7 }" not in block
    broken = Attempt("run", 0, 1, "tune", CodeLanguage.RUST, source=block, status=Outcome.INCORRECT)
    search.tuner.learn(parent, broken)
    assert search.tuner.tune(0) is None  # nothing tunable left: the search asks the model instead
    # A constant that once held (a weight) stays tunable even if another change of it broke something.
    weighted = Member(2, "fn f(x: f64) -> f64 { x * 0.5 + 3.0 }", 9.0, 1.0, {"a": 0.9})
    search.population.admit(0, weighted)
    seen = set()
    for _ in range(5):
        parent, block = search.tuner.tune(0)
        assert parent.id == 2 and block not in seen
        seen.add(block)
        search.population.claim(source_hash(block, CodeLanguage.RUST))


def test_the_tuner_stops_tuning_a_constant_that_never_moves_a_score_off_the_plateau(tmp_path):
    """A literal that INERT_AFTER correct tunes of one program changed, leaving every training score exactly
    as it was (and none moved one), is inert in that program: it is kept, and with nothing else to tune the
    search asks the model. One tune that moves a score keeps a literal live; its tuned children start
    afresh; on the baseline's plateau nothing is learned."""
    from synapse_ng.components import get_component

    search, Member = _bare_search(tmp_path, get_component("gossip_protocol"), exploit=1.0)
    tuner = search.tuner
    parent = Member(1, "fn f(x: f64) -> f64 { x * 2.5 + 0.25 }", 9.0, 1.0, {"a": 0.9, "b": 0.8})
    search.population.admit(0, parent)

    def judged(candidate_id, block, scores):
        tuned = Member(candidate_id, block, 9.0, 1.0, scores)
        tuned.operator = "tune"
        return tuned

    same = {"a": 0.9, "b": 0.8}
    for k in range(tuner.INERT_AFTER - 1):  # `0.25` changed, the scores exactly as they were
        tuner.learn(parent, judged(10 + k, f"fn f(x: f64) -> f64 {{ x * 2.5 + 0.{26 + k} }}", same))
    assert tuner.keep(parent.source) == set()  # not yet: a small step of a live constant can do nothing
    tuner.learn(parent, judged(20, "fn f(x: f64) -> f64 { x * 2.5 + 0.4 }", same))
    inert = parent.source.index("0.25")
    assert tuner.keep(parent.source) == {inert}
    # `2.5` moved a score once: however many tunes leave the scores alone after that, it stays live.
    tuner.learn(parent, judged(30, "fn f(x: f64) -> f64 { x * 3.5 + 0.25 }", {"a": 0.85, "b": 0.8}))
    for k in range(2 * tuner.INERT_AFTER):
        tuner.learn(parent, judged(40 + k, f"fn f(x: f64) -> f64 {{ x * 2.{51 + k} + 0.25 }}", same))
    assert tuner.keep(parent.source) == {inert}
    for _ in range(10):
        tuned = tuner.tune(0)
        assert tuned is not None and "+ 0.25 }" in tuned[1]  # only the live constant is tuned
        search.population.claim(source_hash(tuned[1], CodeLanguage.RUST))
    # A program whose only constant is inert has nothing to tune: the turn goes to the model.
    lone_scores = {"a": 0.8, "b": 0.8}
    lone = Member(2, "fn g(x: f64) -> f64 { x + 0.125 }", 8.0, 2.0, lone_scores)
    assert tuner.has_constants(lone)
    for k in range(tuner.INERT_AFTER):
        tuner.learn(lone, judged(60 + k, f"fn g(x: f64) -> f64 {{ x + 0.{13 + k} }}", lone_scores))
    assert not tuner.has_constants(lone)
    # A batch measured from one build: only its best is judged, and it may tie the parent while another
    # setting of the same literal moved the score. That setting says the literal is live.
    from synapse_ng.evolution.operators import SettingsBatch

    tied = Member(5, "fn k(x: f64) -> f64 { x * 1.5 }", 9.0, 1.0, {"a": 0.9, "b": 0.8})
    blocks = ["fn k(x: f64) -> f64 { x * 1.6 }", "fn k(x: f64) -> f64 { x * 9.5 }"]
    tuner.learn_settings(SettingsBatch(tied, [], "", [["1.6"], ["9.5"]], blocks), [9.0, 9.4])
    for k in range(2 * tuner.INERT_AFTER):
        tuner.learn(tied, judged(90 + k, f"fn k(x: f64) -> f64 {{ x * 1.{51 + k} }}", same))
    assert tuner.keep(tied.source) == set()
    # Inert in that program, not in its tuned children: there the other constant has moved.
    child = Member(4, "fn f(x: f64) -> f64 { x * 3.5 + 0.25 }", 8.5, 1.5, {"a": 0.85, "b": 0.8})
    assert tuner.keep(child.source) == set()
    # On the baseline's plateau an unchanged score is no lesson: the rule may wait for a second constant.
    level = {"a": 1.0, "b": 1.0}
    flat = Member(3, "fn h(x: f64) -> f64 { x - 7.5 }", 10.0, 0.0, level)
    search.population.baseline = Member(0, "fn h(x: f64) -> f64 { x }", 10.0, 0.0, level)
    for k in range(2 * tuner.INERT_AFTER):
        tuner.learn(flat, judged(80 + k, f"fn h(x: f64) -> f64 {{ x - {8 + k}.5 }}", level))
    assert tuner.has_constants(flat)


def test_the_tuner_offers_only_settings_not_tried_before(tmp_path):
    from synapse_ng.components import get_component

    search, Member = _bare_search(tmp_path, get_component("task_allocation"), exploit=1.0)
    search.population.admit(0, Member(1, "fn f(x: u32) -> u32 { x * 3 }", 9.0, 1.0, {"a": 0.9}))
    offered = []
    while (tuned := search.tuner.tune(0)) is not None:
        offered.append(tuned[1])
        search.population.claim(source_hash(tuned[1], CodeLanguage.RUST))
        assert len(offered) < 50
    # `3` moves by at most 25 % (at least 1) and never to 0 or 1, so few settings exist: all tried once.
    assert len(offered) == len(set(offered)) >= 2


class OneAtATimeModel:
    """A model that generates one answer at a time and takes `seconds` for it, as the embedded one does:
    `busy` while an answer is being generated, the next call waiting for it."""

    def __init__(self, inner, seconds: float):
        self.inner, self.name, self.model, self.seconds = inner, inner.name, inner.model, seconds
        self.calls = 0
        self._lock: asyncio.Lock | None = None

    @property
    def busy(self) -> bool:
        return self._lock is not None and self._lock.locked()

    async def complete(self, *args, **kwargs):
        self._lock = self._lock or asyncio.Lock()
        async with self._lock:
            self.calls += 1
            await asyncio.sleep(self.seconds)
            return await self.inner.complete(*args, **kwargs)

    async def aclose(self):
        await self.inner.aclose()


# What the model keeps answering, per component: a correct block (with constants where the component's
# rules have any) that the model then repeats, as a small model often does.
REPEATED_ANSWERS = {
    "task_allocation": (
        "fn priority(item: f64, bins: &[f64]) -> Vec<f64> {\n"
        "    bins.iter().map(|&r| { let gap = r - item; "
        "if gap > 0.0 && gap < 20.0 { -gap - 10.0 } else { -gap } }).collect()\n}\n"
    ),
    "raft_consensus": None,  # the sorted tally (tests/test_cli_components.py)
    "gossip_protocol": (
        "fn choose_peers(latency: &[f64], reliability: &[f64], contact_age: &[f64], fanout: usize, "
        "seed: u64, out: &mut [i32]) -> i32 {\n"
        "    let _ = seed;\n    let n = latency.len();\n    let k = if fanout < n { fanout } else { n };\n"
        "    let cost = |i: usize| latency[i] / (reliability[i] + 0.05) "
        "+ if contact_age[i] == 0.0 { 1000.0 } else { 0.0 };\n"
        "    let mut order: Vec<usize> = (0..n).collect();\n"
        "    order.sort_by(|&a, &b| cost(a).partial_cmp(&cost(b)).unwrap_or(core::cmp::Ordering::Equal));\n"
        "    for i in 0..k {\n        out[i] = order[i] as i32;\n    }\n    k as i32\n}\n"
    ),
}


@pytest.mark.parametrize("name", sorted(REPEATED_ANSWERS))
def test_a_run_uses_its_minutes_without_spinning(tmp_path, name):
    """A slow model that repeats itself and a sample budget far beyond what the minutes allow: the run
    ends on its time budget, having tuned only untried settings while the model was busy and waited for
    the model otherwise; its repeats were stored as duplicates and counted no samples. (The run that
    once ended after 1.7 of its 20 minutes had spent its 10,000 samples on duplicate tunes.)"""
    from synapse_ng.components import get_component
    from test_cli_components import SORTED_TALLY

    block = REPEATED_ANSWERS[name] or SORTED_TALLY
    server = LoopbackServer(OpenAIWire(), answer(block))
    model = OneAtATimeModel(provider_for(server), seconds=1.0)
    minutes = 0.12
    store = Store(tmp_path / "ws")
    search = EvolutionSearch(
        get_component(name),
        model,
        store,
        problem="p",
        config=SearchConfig(islands=2, concurrency=2, random_cases=3),
        budget=Budget(samples=10_000, minutes=minutes),
    )
    started = time.monotonic()
    try:
        result = asyncio.run(search.run())
    finally:
        server.close()
    assert result.stopped == f"time budget of {minutes:g} minutes spent", (result.stopped, result.reason)
    assert result.progress.elapsed_s >= minutes * 60 and time.monotonic() - started >= minutes * 60
    rows = store.candidates(result.run_id)
    tunes = [row for row in rows if row.operator == "tune"]
    assert all(row.status != "duplicate" for row in tunes)  # the tuner offers untried settings only
    counted = [row for row in rows if row.operator != "baseline" and row.status != "duplicate"]
    assert result.progress.samples == len(counted)
    # Every proposal did real work (a build, or a model call that took its second): no spinning. A model
    # call still running when the minutes ended was cancelled and proposed nothing (at most one a worker).
    progress = result.progress
    judged = progress.samples + progress.duplicates
    assert judged <= progress.proposals <= judged + 2 and progress.proposals < 100 and model.calls >= 1
    if name == "gossip_protocol":  # a real rule, not a stream: its held-out gain passes the paired test
        verdict = result.heldout.aggregate["significance"]
        assert result.improved and verdict["passed"] and verdict["p_value"] < 1e-9, result.reason


def scripted_run(tmp_path, name: str, replies, config: SearchConfig, budget: Budget, **search_options):
    """One search of component `name` against a loopback model that gives `replies` in turn (the last
    one again after that): (store, result, the model's requests)."""
    from synapse_ng.components import get_component

    server = LoopbackServer(OpenAIWire(), *replies)
    store = Store(tmp_path / "ws")
    search = EvolutionSearch(
        get_component(name),
        provider_for(server),
        store,
        problem="p",
        config=config,
        budget=budget,
        **search_options,
    )
    try:
        result = asyncio.run(search.run())
    finally:
        server.close()
    return store, result, server.requests


def test_the_model_sees_the_failing_case_of_its_wrong_tally(tmp_path):
    """A wrong exact answer goes back to the model with the case that shows it: the input, what the
    reference answers and what the program returned."""
    from test_cli_components import FIRST_VOTE_TALLY

    # The second answer holds no code: only its prompt matters, and nothing more is built or measured.
    _, _, requests = scripted_run(
        tmp_path,
        "raft_consensus",
        (answer(FIRST_VOTE_TALLY), Ok(text="No better idea.")),
        SearchConfig(islands=1, concurrency=1, tune_share=0.0, random_cases=5),
        Budget(samples=2),
    )
    second_prompt = requests[1].body["messages"][-1]["content"]
    assert "wrong tally for" in second_prompt and "expected" in second_prompt and "got" in second_prompt


def test_the_time_budget_cancels_a_model_call_in_flight(tmp_path):
    """A model that takes a minute per answer and a twelve-second budget: the run ends on time, the call
    is cancelled (the embedded model stops generating on cancellation), nothing half-made is stored."""
    from synapse_ng.components import get_component

    server = LoopbackServer(OpenAIWire(), answer(WRONG))
    model = OneAtATimeModel(provider_for(server), seconds=60.0)
    store = Store(tmp_path / "ws")
    search = EvolutionSearch(
        get_component("gossip_protocol"),  # nothing to tune: every worker waits for the model
        model,
        store,
        problem="p",
        config=SearchConfig(islands=2, concurrency=2, random_cases=3),
        budget=Budget(samples=100, minutes=0.2),
    )
    started = time.monotonic()
    try:
        result = asyncio.run(search.run())
    finally:
        server.close()
    took = time.monotonic() - started
    assert result.stopped == "time budget of 0.2 minutes spent" and took < 40, (result.stopped, took)
    assert result.progress.samples == 0 and [row.operator for row in store.candidates(result.run_id)] == [
        "baseline"
    ]
    assert model.calls >= 1 and not model.busy  # the call in flight was cancelled, its lock released


def test_a_run_without_a_model_never_calls_it_and_ends_when_nothing_is_left_to_tune(tmp_path):
    """The ablation's arm (b): best fit has no constant, so the tuner alone has nothing to do; the run says
    so at once instead of waiting for a model it must not call."""
    _, result, requests = scripted_run(
        tmp_path,
        "task_allocation",
        (answer(WRONG),),
        SearchConfig(islands=2, concurrency=2, random_cases=3, use_model=False),
        Budget(samples=100, minutes=5),
    )
    assert result.stopped == "the tuner has no untried setting left, and this run has no model"
    assert requests == [] and result.progress.samples == 0 and not result.improved


def test_starting_blocks_are_judged_first_then_tuned_without_a_model(tmp_path):
    """The ablation's arm (c): the given blocks are proposed before anything else and judged like any
    candidate; one that does not compile is not sent to a model for repair; the correct one is tuned."""
    broken = "fn priority(item: f64, bins: &[f64]) -> Vec<f64> { no_such_rule(item, bins) }\n"
    shape = (
        "fn priority(item: f64, bins: &[f64]) -> Vec<f64> {\n    const THRESHOLD: f64 = 20.0;\n"
        "    bins.iter().map(|&r| { let gap = r - item; if gap > 0.0 && gap < THRESHOLD { -gap - 10.0 }"
        " else { -gap } }).collect()\n}\n"
    )
    store, result, requests = scripted_run(
        tmp_path,
        "task_allocation",
        (answer(WRONG),),
        SearchConfig(islands=1, concurrency=1, random_cases=3, use_model=False, batch_settings=0),
        Budget(samples=3),
        starts=(broken, shape),
    )
    rows = store.candidates(result.run_id)
    assert [(row.operator, row.status) for row in rows] == [
        ("baseline", "correct"),
        ("start", "compile_failed"),
        ("start", "correct"),
        ("tune", "correct"),
    ]
    assert rows[3].parent_id == rows[2].id and "THRESHOLD: f64 = 20.0" not in rows[3].source
    assert requests == [] and rows[2].provider == "-"


def test_the_model_is_asked_before_the_starting_points_and_a_broken_one_ends_the_run_at_once(tmp_path):
    """A model that refuses every call (a 401) ends the run before a single starting point is judged (the
    story's engine-failure test waited minutes for it); a working one writes its first answer while the
    starting points are judged after it."""
    from llm_servers import Reply

    shape = (
        "fn priority(item: f64, bins: &[f64]) -> Vec<f64> {\n    const THRESHOLD: f64 = 20.0;\n"
        "    bins.iter().map(|&r| { let gap = r - item; if gap > 0.0 && gap < THRESHOLD { -gap - 10.0 }"
        " else { -gap } }).collect()\n}\n"
    )
    config = SearchConfig(islands=1, concurrency=1, random_cases=3, tune_share=1.0, batch_settings=0)
    refused = Reply(401, {"error": {"message": "invalid api key", "type": "auth"}})
    store, result, requests = scripted_run(
        tmp_path / "refused", "task_allocation", (refused,), config, Budget(samples=20), starts=(shape,)
    )
    assert result.model_gave_up and "401" in result.reason and len(requests) == 3
    operators = [row.operator for row in store.candidates(result.run_id)]
    assert "start" not in operators and operators.count("llm-block") + operators.count("llm-edits") == 3

    store, result, requests = scripted_run(
        tmp_path / "working", "task_allocation", (answer(WRONG),), config, Budget(samples=3), starts=(shape,)
    )
    operators = [row.operator for row in store.candidates(result.run_id)]
    assert operators[0] == "baseline" and operators[1].startswith("llm-") and operators[2] == "start"
    assert len(requests) == 1  # then the tuner (tune_share 1.0) has the starting point to tune


def test_the_model_is_told_when_it_copied_the_current_block_back(tmp_path):
    """A copy of the parent is not run again, and the next prompt says that it was a copy, instead of
    repeating the same request to a model that keeps copying (gossip: five answers of ten)."""
    from synapse_ng.components import get_component

    baseline = get_component("gossip_protocol").baseline_block(CodeLanguage.RUST)
    store, result, requests = scripted_run(
        tmp_path,
        "gossip_protocol",
        (answer(baseline), Ok(text="No better idea.")),
        SearchConfig(islands=1, concurrency=1, tune_share=0.0, random_cases=3),
        Budget(samples=1),
    )
    assert [row.status for row in store.candidates(result.run_id)] == ["correct", "duplicate", "no_code"]
    first, second = (request.body["messages"][-1]["content"] for request in requests)
    assert "the current block, unchanged" not in first and "the current block, unchanged" in second


def test_a_wat_answer_gets_room_for_wat(tmp_path):
    """The same program takes two to three times the tokens in WAT: raft's baseline block alone is 3.4k
    characters, more than 900 tokens would hold."""
    from synapse_ng.components import get_component

    component = get_component("raft_consensus")
    tokens = {
        language: _bare_search(tmp_path / language.value, component, language=language)[
            0
        ].model.max_new_tokens
        for language in (CodeLanguage.RUST, CodeLanguage.C, CodeLanguage.WAT)
    }
    assert tokens == {CodeLanguage.RUST: 900, CodeLanguage.C: 900, CodeLanguage.WAT: 1600}
    assert len(component.baseline_block(CodeLanguage.WAT)) > 900 * 3  # about 3 characters a token
    chosen = _bare_search(tmp_path / "own", component, language=CodeLanguage.WAT, max_new_tokens=2000)[0]
    assert chosen.model.max_new_tokens == 2000


def test_a_new_structure_gets_its_own_tune_turns_before_the_incumbent(tmp_path):
    """A model's new rule is judged with its first-guess constants; it takes the next FRESH_TURNS tunes,
    then the tuner goes back to the best elite (exploit 1.0 here, so without the turns it would never
    be tuned at all)."""
    from synapse_ng.components import get_component

    search, Member = _bare_search(tmp_path, get_component("task_allocation"), exploit=1.0)
    incumbent = Member(1, "fn f(x: f64) -> f64 { x * 0.5 + 3.0 }", 9.0, 1.0, {"a": 0.9})
    newcomer = Member(2, "fn g(x: f64) -> f64 { if x < 20.0 { x - 7.0 } else { x } }", 9.5, 0.5, {"a": 0.95})
    search.population.admit(0, incumbent)
    search.population.admit(0, newcomer)
    search.tuner.introduce(0, newcomer)
    parents = []
    for _ in range(search.tuner.FRESH_TURNS + 2):
        parent, block = search.tuner.tune(0)
        search.population.claim(source_hash(block, CodeLanguage.RUST))
        parents.append(parent.id)
    assert parents == [2] * search.tuner.FRESH_TURNS + [1, 1]
    # A new structure with nothing untried near it gives its turns back at once.
    search.tuner.introduce(0, newcomer)
    search.tuner.DRAWS = 1
    original = search.population.seen

    class Everything(set):  # every setting counts as tried
        def __contains__(self, item):
            return True

    search.population.seen = Everything(original)
    assert search.tuner.tune(0) is None
    search.population.seen = original
    assert search.tuner.tune(0)[0].id == 1
