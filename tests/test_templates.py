"""A direction's template: its shape as a whole block with the rule left as a hole (Component.templates).
A parent that is still the baseline is shown to the model as the template instead, since a 1.5B model shown
gossip's random baseline copied it back in 10 of 13 answers of a 20-minute run. Each template must become a
correct program once a rule is written in, and the prompt must show it only in place of the baseline."""

from __future__ import annotations

import pytest

from llm_servers import Ok
from synapse_ng.components import get_component
from synapse_ng.components.gossip_protocol.templates import C_HOLE, RUST_HOLE
from synapse_ng.evolution.build import BuildFailure, build_baseline, build_candidate
from synapse_ng.evolution.measure import component_ref, measure_job
from synapse_ng.evolution.search import Budget, SearchConfig
from synapse_ng.models import CodeLanguage
from test_search import answer
from test_search_budget import REPEATED_ANSWERS, scripted_run

# The plainest rule of the first direction, as a model would write it into each hole.
RULES = {
    CodeLanguage.RUST: (
        RUST_HOLE,
        "const EPS: f64 = 0.05;\n        latency[i] / (reliability[i] + EPS) "
        "+ if contact_age[i] == 0.0 { 1.0e9 } else { 0.0 }",
    ),
    CodeLanguage.C: (C_HOLE, "latency[i] / (reliability[i] + EPS) + (contact_age[i] == 0.0 ? 1.0e9 : 0.0)"),
}
# Where the hole asks for named constants: Rust declares them in the hole, C above the function.
ABOVE = {CodeLanguage.RUST: "", CodeLanguage.C: "#define EPS 0.05\n"}


@pytest.mark.parametrize("language", [CodeLanguage.RUST, CodeLanguage.C])
def test_every_gossip_template_with_a_rule_written_in_builds_and_passes_the_cases(language):
    component = get_component("gossip_protocol")
    templates = component.templates_for(language)
    assert templates and len(templates) <= len(component.directions_for(language))
    hole, rule = RULES[language]
    baseline = build_baseline(component)
    for template in templates:
        assert template.count(hole) == 1, template
        unfilled = build_candidate(component, template, language)
        assert isinstance(unfilled, BuildFailure)  # a template copied back as it is does not build
        built = build_candidate(component, ABOVE[language] + template.replace(hole, rule), language)
        assert not isinstance(built, BuildFailure), (template, built.message, built.log)
        job = {
            "component": component_ref(component),
            "candidate": built.wasm,
            "baseline": baseline.wasm,
            "splits": [],
            "case_seed": 1,
            "random_cases": 5,
        }
        result = measure_job(job)
        assert result["first_failure"] is None and result["cases_passed"] == result["cases_total"], template


def test_the_model_gets_the_template_in_place_of_the_baseline_and_its_own_program_after(tmp_path):
    """Sample 0 (the first direction) has the baseline as parent: the prompt shows the template with its
    hole and not the baseline's random shuffle. Its answer beats the baseline; sample 1's parent is that
    answer, shown as it is, with no template."""
    better = REPEATED_ANSWERS["gossip_protocol"]
    store, result, requests = scripted_run(
        tmp_path,
        "gossip_protocol",
        (answer(better), Ok(text="No better idea.")),
        SearchConfig(islands=1, concurrency=1, tune_share=0.0, exploit=1.0, random_cases=3),
        Budget(samples=2),
    )
    first, second = (request.body["messages"][-1]["content"] for request in requests)
    baseline_shuffle = "let _ = (reliability, contact_age);"
    assert "## The block to complete" in first and RUST_HOLE in first and baseline_shuffle not in first
    rows = store.candidates(result.run_id)
    assert rows[1].operator == "llm-block" and rows[1].status == "correct" and rows[1].improvement_pct > 0
    assert "## The block to complete" not in second and RUST_HOLE not in second
    assert "## Current block" in second and "partial_cmp" in second


def test_each_sample_gets_the_template_of_its_own_direction_and_only_from_the_baseline(tmp_path):
    """The template follows the sample's direction slot (sample % (directions + 1)); the free slot, a
    direction without a template and a parent that is not the baseline get none."""
    from types import SimpleNamespace

    from test_search import _bare_search

    component = get_component("gossip_protocol")
    baseline, other = SimpleNamespace(operator="baseline"), SimpleNamespace(operator="llm-block")
    rust = _bare_search(tmp_path / "rust", component)[0].model
    assert [rust.template(baseline, sample) for sample in range(8)] == [*component.templates, None] * 2
    assert all(rust.template(other, sample) is None for sample in range(8))
    c = _bare_search(tmp_path / "c", component, language=CodeLanguage.C)[0].model
    assert [c.template(baseline, sample) for sample in range(4)] == [component.c_templates[0], None] * 2
    wat = _bare_search(tmp_path / "wat", component, language=CodeLanguage.WAT)[0].model
    assert wat.template(baseline, 0) is None
