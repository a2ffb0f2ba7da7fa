"""The tuner's fast path: many constant settings measured from one build, each figure equal to what the
setting's own compiled block measures, and nothing from it trusted without the full check."""

from __future__ import annotations

import asyncio
import random

import pytest

from llm_servers import LoopbackServer, OpenAIWire
from synapse_ng.components import Split, get_component
from synapse_ng.evolution.build import BuiltModule, build_candidate
from synapse_ng.evolution.evaluate import evaluate
from synapse_ng.evolution.measure import component_ref
from synapse_ng.evolution.search import Budget, EvolutionSearch, SearchConfig
from synapse_ng.evolution.slots import bake, measure_settings_job, slottable, slotted
from synapse_ng.evolution.store import Store
from synapse_ng.evolution.tuning import float_setting, literal_value, tunable_literals
from synapse_ng.models import CodeLanguage
from test_search import answer, provider_for

RUST, C = CodeLanguage.RUST, CodeLanguage.C
PACKING = get_component("task_allocation")
# A module-level constant (stays a literal: a const initialiser cannot read memory), a function's const
# (becomes a `let` read from a slot) and a bare literal.
PENALTY = (
    "const SCALE: f64 = 1.0e0;\n"
    "fn priority(item: f64, bins: &[f64]) -> Vec<f64> {\n    const T: f64 = 20.0;\n"
    "    bins.iter().map(|&r| { let gap = r - item; "
    "if gap > 0.0 && gap < T { -gap * SCALE - 10.0 } else { -gap * SCALE } }).collect()\n}\n"
)
PENALTY_C = (
    "#define T 20.0\n"
    "void priority(double item, const double *bins, int n, double *scores) {\n"
    "    for (int k = 0; k < n; k++) { double gap = bins[k] - item; "
    "scores[k] = (gap > 0.0 && gap < T) ? -gap - 10.0 : -gap; }\n}\n"
)


def measured(block: str, language: CodeLanguage, values: list[list[float]]) -> list[float | None]:
    """Each setting's training score, measured from one build of the block's slotted form."""
    floats = [lit for lit in tunable_literals(block, language) if lit.is_float]
    built = build_candidate(PACKING, slotted(block, language, slottable(block, language, floats)), language)
    assert isinstance(built, BuiltModule), built
    job = {"component": component_ref(PACKING), "wasm": built.wasm, "settings": values}
    return measure_settings_job(job)["scores"]


def settings_scores(block: str, language: CodeLanguage, settings: list[list[str]]) -> list[float | None]:
    return measured(
        block, language, [[literal_value(text, language) for text in texts] for texts in settings]
    )


def test_slots_replace_function_constants_and_leave_module_constants():
    floats = [lit for lit in tunable_literals(PENALTY, RUST) if lit.is_float]
    assert [lit.text for lit in floats] == ["1.0e0", "20.0", "10.0"]
    usable = slottable(PENALTY, RUST, floats)
    assert [lit.text for lit in usable] == ["20.0", "10.0"]
    block = slotted(PENALTY, RUST, usable)
    assert (
        "const SCALE: f64 = 1.0e0;" in block and "let T: f64 = (unsafe { core::ptr::read_volatile(" in block
    )
    assert "- 10.0" not in block and block.count("read_volatile") == 2


@pytest.mark.parametrize("block, language", [(PENALTY, RUST), (PENALTY_C, C)])
def test_each_setting_measures_exactly_what_its_own_compiled_block_measures(block, language):
    """The figure that chooses the best setting is the figure the full evaluation of that setting's
    block gives, bit for bit; the parent's own values give the parent's figure."""
    rng = random.Random(5)
    floats = [lit for lit in tunable_literals(block, language) if lit.is_float]
    usable = slottable(block, language, floats)
    others = {lit.start for lit in tunable_literals(block, language) if lit not in usable}
    drawn = [float_setting(block, language, rng, None, 4.0, keep=others)]
    settings = [[lit.text for lit in usable]] + [texts for _, texts in drawn]
    scores = settings_scores(block, language, settings)
    for texts, score in zip(settings, scores, strict=True):
        baked = bake(block, usable, texts)
        evaluation = evaluate(PACKING, baked, language, Split.TRAIN, random_cases=3)
        assert evaluation.correct and score == evaluation.aggregate["candidate"], (texts, score)
    assert len(set(scores)) > 1  # the settings really ran (the values were not folded in at compile time)


def test_a_setting_that_breaks_the_rule_scores_nothing():
    # NaN scores make every bin tie on NaN: the host refuses the packing (no valid choice), no score.
    scores = measured(PENALTY, RUST, [[20.0, 10.0], [20.0, float("nan")]])
    assert scores[0] is not None and scores[1] is None


def test_a_search_tunes_from_one_build_and_judges_the_best_setting_in_full(tmp_path):
    server = LoopbackServer(OpenAIWire(), answer(PENALTY))
    store = Store(tmp_path / "ws")
    search = EvolutionSearch(
        PACKING,
        provider_for(server),
        store,
        problem="p",
        config=SearchConfig(islands=1, concurrency=1, tune_share=1.0, random_cases=3, batch_settings=12),
        budget=Budget(samples=2),
    )
    try:
        result = asyncio.run(search.run())
    finally:
        server.close()
    rows = store.candidates(result.run_id)
    assert [row.operator for row in rows] == ["baseline", "llm-block", "tune"], rows
    assert result.progress.settings_measured == 12 and len(server.requests) == 1
    tuned = rows[-1]
    # The best of the twelve, written in and then built, checked (cases) and measured like any candidate.
    assert tuned.status == "correct" and tuned.verification["cases_passed"] > 0
    assert tuned.source != PENALTY and "const T: f64 =" in tuned.source
