"""rustc's machine-applicable suggestions, applied by toolchain/rustfix.py and evolution/build.autofix_block,
with the real Debian rustc."""

from __future__ import annotations

import pytest

from synapse_ng.components.registry import get_component
from synapse_ng.evolution.build import BuildFailure, autofix_block, build_candidate
from synapse_ng.models import CodeLanguage
from synapse_ng.toolchain.rustfix import Fix, apply_fixes, suggested_fixes

RUST = CodeLanguage.RUST
TASKS = get_component("task_allocation")

# The slip the embedded model makes most: an integer literal compared with an f64.
GAP_SLIP = """fn priority(item: f64, bins: &[f64]) -> Vec<f64> {
    bins.iter().map(|&remaining| {
        let gap = remaining - item;
        let mut score = -gap;
        if gap > 0 && gap < 20.0 {
            score -= 10.0;
        }
        score
    }).collect()
}"""


def test_an_integer_literal_against_an_f64_becomes_a_float_literal_and_the_block_then_builds():
    assert isinstance(build_candidate(TASKS, GAP_SLIP, RUST), BuildFailure)
    fixed = autofix_block(TASKS, GAP_SLIP, RUST)
    assert fixed == GAP_SLIP.replace("gap > 0 &&", "gap > 0.0 &&")
    built = build_candidate(TASKS, fixed, RUST)
    assert not isinstance(built, BuildFailure), built


def test_the_suggestions_name_rustcs_reason_and_exact_bytes():
    program = "pub fn f(x: f64) -> bool { x > 0 }\n"
    fixes = suggested_fixes(program)
    assert fixes and all(isinstance(f, Fix) for f in fixes)
    assert any(
        program.encode()[f.byte_start : f.byte_end] == b"0" and f.replacement == "0.0" for f in fixes
    ), fixes
    assert apply_fixes(program, fixes) == "pub fn f(x: f64) -> bool { x > 0.0 }\n"


def test_a_program_that_compiles_gets_no_suggestion():
    assert suggested_fixes("pub fn f(x: f64) -> bool { x > 0.0 }\n") == []
    assert autofix_block(TASKS, GAP_SLIP.replace("gap > 0 &&", "gap > 0.0 &&"), RUST) is None


def test_a_guess_is_never_applied_only_machine_applicable_fixes():
    # rustc suggests `scores` for the unknown `score` only as MaybeIncorrect: not ours to apply.
    typo = (
        "fn priority(item: f64, bins: &[f64]) -> Vec<f64> {"
        " let scores: Vec<f64> = bins.iter().map(|&r| item - r).collect(); score }"
    )
    assert autofix_block(TASKS, typo, RUST) is None


def test_a_source_the_policy_refuses_never_reaches_the_compiler():
    hostile = 'const SECRET: &str = include_str!("/etc/passwd");\npub fn f(x: f64) -> bool { x > 0 }\n'
    assert suggested_fixes(hostile) == []


def test_only_fixes_inside_the_region_are_applied_and_overlaps_are_skipped():
    source = "aaa bbb ccc"
    fixes = [
        Fix(0, 3, "AAA", "outside the region"),
        Fix(4, 7, "BBB", "inside"),
        Fix(5, 6, "x", "overlaps the one before"),
        Fix(8, 8, "!", "an insertion"),
        Fix(8, 8, "?", "a second insertion at the same point"),
    ]
    assert apply_fixes(source, fixes, region=(4, 11)) == "aaa BBB !ccc"
    assert apply_fixes(source, [], region=(4, 11)) == source


def test_byte_offsets_are_honoured_past_non_ascii_text():
    program = "// ünïcödé comment\npub fn f(x: f64) -> bool { x > 0 }\n"
    assert apply_fixes(program, suggested_fixes(program)).endswith("{ x > 0.0 }\n")


def test_fixes_rustc_suggests_in_the_harness_are_not_the_candidates_to_apply(monkeypatch):
    # rustc's real suggestions for the block, plus one that would rewrite the harness after it.
    from synapse_ng.evolution import build

    real = build.suggested_fixes

    def with_a_harness_fix(program, options=None):
        marker = program.encode().index(b"// EVOLVE-BLOCK-END")  # just past the block: the harness
        return real(program, options) + [Fix(marker, marker + 19, "// gone", "a fix in the harness")]

    monkeypatch.setattr(build, "suggested_fixes", with_a_harness_fix)
    assert autofix_block(TASKS, GAP_SLIP, RUST) == GAP_SLIP.replace("gap > 0 &&", "gap > 0.0 &&")
    harness_only = GAP_SLIP.replace("gap > 0 &&", "gap > 0.0 &&")  # compiles: only the harness fix is offered
    assert autofix_block(TASKS, harness_only, RUST) is None


@pytest.mark.parametrize("language", [CodeLanguage.C, CodeLanguage.WAT])
def test_other_languages_are_left_to_the_model(language):
    assert autofix_block(TASKS, "double priority(double item) { return item > 0; }", language) is None
