"""A component's starting points: complete blocks in its directions' shapes that a search may start from
(SearchConfig.starting_points). Each must build, pass the correctness cases, and give the tuner a constant
to work on; otherwise it would only cost a sample."""

from __future__ import annotations

import pytest

from synapse_ng.components import get_component
from synapse_ng.evolution.build import BuildFailure, build_baseline, build_candidate
from synapse_ng.evolution.measure import component_ref, measure_job
from synapse_ng.evolution.tuning import tunable_literals
from synapse_ng.models import CodeLanguage


@pytest.mark.parametrize("language", [CodeLanguage.RUST, CodeLanguage.C])
def test_every_starting_point_builds_passes_the_cases_and_has_a_constant_to_tune(language):
    component = get_component("task_allocation")
    starts = component.starting_points_for(language)
    assert len(starts) == len(component.directions_for(language))  # one per direction
    baseline = build_baseline(component)
    for block in starts:
        built = build_candidate(component, block, language)
        assert not isinstance(built, BuildFailure), (block, built.message, built.log)
        job = {
            "component": component_ref(component),
            "candidate": built.wasm,
            "baseline": baseline.wasm,
            "splits": [],  # the cases only: whether it is better is the search's question
            "case_seed": 1,
            "random_cases": 5,
        }
        result = measure_job(job)
        assert result["first_failure"] is None and result["cases_passed"] == result["cases_total"], block
        assert tunable_literals(block, language), block


def test_a_language_without_starting_points_has_none():
    assert get_component("task_allocation").starting_points_for(CodeLanguage.ASSEMBLYSCRIPT) == ()
    assert get_component("raft_consensus").starting_points_for(CodeLanguage.RUST) == ()


@pytest.mark.parametrize("wanted", [None, False])
def test_a_node_s_engine_starts_from_the_starting_points_unless_its_config_says_no(tmp_path, wanted):
    """On by default (the measured ablation in BENCHMARKS.md); `evolve_starting_points: false` in
    node.json turns it off."""
    import json

    from synapse_ng.node.config import NodeConfig
    from synapse_ng.node.node import Node

    folder = tmp_path / "node"
    folder.mkdir()
    if wanted is not None:
        (folder / "node.json").write_text(json.dumps({"evolve_starting_points": wanted}))
    node = Node.open(NodeConfig.load(folder, port=18998))
    try:
        assert node.remedies.engine().search_config.starting_points is (wanted is None)
    finally:
        node.state.close()
