"""Prompts: every required part is there, for every real component and language, within the size budget."""

from __future__ import annotations

import pytest

from synapse_ng.components import all_components, get_component, split_skeleton
from synapse_ng.evolution.extract import extract_candidate, required_functions
from synapse_ng.evolution.prompts import (
    PROMPT_BUDGET,
    SKELETON_BUDGET,
    ParentInfo,
    build_messages,
    prompt_budget,
    repair_messages,
    skeleton_excerpt,
    trim_error,
)
from synapse_ng.languages import find_functions
from synapse_ng.llm.base import Message
from synapse_ng.models import CodeLanguage

RUST = CodeLanguage.RUST
C = CodeLanguage.C
WAT = CodeLanguage.WAT
# What each language's rules say, and the fence the answer is asked in.
RULE = {RUST: "no external crates", C: "no libc", WAT: "only (func ...) definitions"}
FENCE = {RUST: "rust", C: "c", WAT: "wat"}

PROBLEM = (
    "HealthIssue: chronic inefficiency in task_allocation (issue_source=algorithm). "
    "Metrics: mean bins 212.0, target 205.0 (excess over L1 5.37 %). Severity 0.72. "
    "The auction system wastes capacity on every round."
)

RUSTC_LOG = """warning: unused variable: `k`
  --> candidate.rs:20:9
   |
20 |     for k in 0..n {
   |         ^ help: if this is intentional, prefix it with an underscore: `_k`

error[E0425]: cannot find value `itm` in this scope
  --> candidate.rs:21:30
   |
21 |     bins.iter().map(|&r| r - itm).collect()
   |                              ^^^ help: a local variable with a similar name exists: `item`

error[E0308]: mismatched types
  --> candidate.rs:22:18
   |
22 |     let x: u32 = 1.5;
   |            ---   ^^^ expected `u32`, found floating-point number

error[E0599]: no method named `foo` found for type `f64` in the current scope
  --> candidate.rs:23:7

error[E0425]: cannot find value `bar` in this scope
  --> candidate.rs:24:7

error: aborting due to 4 previous errors; 1 warning emitted

Some errors have detailed explanations: E0308, E0425, E0599.
For more information about an error, try `rustc --explain E0308`.
"""

CASES = [(component, language) for component in all_components().values() for language in component.languages]
IDS = [f"{component.name}-{language.value}" for component, language in CASES]


def _parent(component, language) -> ParentInfo:
    metric = component.objective.metric
    return ParentInfo(
        component.baseline_block(language),
        {f"train_a {metric}": 212.4, f"train_b {metric}": 1_953_204_117.0},
        "improvement over the baseline on training workloads: +0.000 %",
    )


def _signature_line(component, language) -> str:
    block = component.baseline_block(language)
    function = next(
        f for f in find_functions(block, language) if f.name in required_functions(component, language)
    )
    return " ".join(function.signature.split())


def _excerpt_in(user: str) -> str:
    start = user.index("## The fixed program around the block (excerpt)\n```")
    start = user.index("\n", user.index("```", start)) + 1
    return user[start : user.index("\n```\n\n## Current block", start)]


@pytest.mark.parametrize("component, language", CASES, ids=IDS)
def test_block_prompt_has_every_part(component, language):
    parent = _parent(component, language)
    inspiration = ParentInfo(parent.block, {"train_a x": 1.5}, "from island 2")
    messages = build_messages(
        component,
        language,
        problem=PROBLEM,
        parent=parent,
        inspirations=[inspiration],
        last_error="compilation failed\n" + RUSTC_LOG,
    )
    assert [m.role for m in messages] == ["system", "user"]
    assert all(isinstance(m, Message) for m in messages)
    system, user = messages[0].content, messages[1].content
    assert "expert" in system and "EVOLVE block" in system
    objective = component.objective
    assert PROBLEM in user
    assert (
        f"`{objective.metric}`" in user
        and ("minimize" if objective.direction == "min" else "maximize") in user
    )
    assert objective.description in user
    assert f"Kind: {component.kind.value}" in user
    assert parent.block.strip() in user  # the parent block, whole
    assert (
        f"train_a {objective.metric} = 212.4" in user
        and f"train_b {objective.metric} = 1,953,204,117" in user
    )
    assert parent.summary in user
    assert "cannot find value `itm` in this scope" in user and "mismatched types" in user
    assert "warning: unused variable" not in user and "aborting due to" not in user
    # The signature, in the rules and in the excerpt with its doc comment, between the markers.
    signature = _signature_line(component, language)
    assert f"`{signature}`" in user
    excerpt = _excerpt_in(user)
    assert len(excerpt) <= SKELETON_BUDGET
    assert "EVOLVE-BLOCK-START" in excerpt and "EVOLVE-BLOCK-END" in excerpt
    between = excerpt[excerpt.index("EVOLVE-BLOCK-START") : excerpt.index("EVOLVE-BLOCK-END")]
    assert " ".join(signature.split()) in " ".join(between.split())
    block = component.baseline_block(language)
    required = next(
        f for f in find_functions(block, language) if f.name in required_functions(component, language)
    )
    doc = block[required.start : required.code_start].strip()
    assert doc in between
    # Rules and answer format.
    assert "only the EVOLVE block" in user.replace("Write only", "only") and "No I/O" in user
    assert RULE[language] in user.lower()
    assert f"```{FENCE[language]} code block" in user
    assert "<<<<<<< SEARCH" not in user


@pytest.mark.parametrize("component, language", CASES, ids=IDS)
def test_prompt_sizes_stay_within_budget(component, language):
    excerpt = skeleton_excerpt(component, language)
    assert len(excerpt) <= SKELETON_BUDGET
    assert len(excerpt) < len(component.skeleton(language))
    # The baseline as parent and a compile error: the whole prompt fits.
    messages = build_messages(
        component, language, problem=PROBLEM, parent=_parent(component, language), last_error=RUSTC_LOG
    )
    assert sum(len(m.content) for m in messages) <= prompt_budget(language)
    # Two inspirations as big as the parent: they are dropped as needed, the parent never.
    big = ParentInfo(component.baseline_block(language) * 2, {"x": 1.0}, "big")
    messages = build_messages(
        component,
        language,
        problem=PROBLEM * 4,
        parent=_parent(component, language),
        inspirations=[big, big],
        last_error=RUSTC_LOG * 3,
    )
    assert sum(len(m.content) for m in messages) <= prompt_budget(language)
    assert component.baseline_block(language).strip() in messages[1].content


@pytest.mark.parametrize("component, language", CASES, ids=IDS)
def test_the_excerpt_shrinks_but_keeps_the_signature_and_its_doc_comment(component, language):
    full = skeleton_excerpt(component, language)
    block = component.baseline_block(language)
    required = next(
        f for f in find_functions(block, language) if f.name in required_functions(component, language)
    )
    doc = block[required.start : required.code_start].strip()
    signature = " ".join(_signature_line(component, language).split())
    sizes = []
    for budget in (SKELETON_BUDGET, 1500, 1000, 0):
        excerpt = skeleton_excerpt(component, language, budget=budget)
        sizes.append(len(excerpt))
        assert signature in " ".join(excerpt.split()) and doc in excerpt
        assert excerpt.count("/*") == excerpt.count("*/")  # a shortened block comment is still closed
        assert "EVOLVE-BLOCK-START" in excerpt and "EVOLVE-BLOCK-END" in excerpt
        if budget >= 1000:
            # the harness line that calls the block is always shown at a reasonable budget
            assert any(
                (f"(call ${name}" if language is WAT else f"{name}(") in line
                for line in excerpt.split("\n")[excerpt.count("\n") // 3 :]
                for name in required_functions(component, language)
            )
    assert sizes == sorted(sizes, reverse=True) and sizes[0] == len(full)


def test_the_exact_semantics_reach_the_model():
    raft = get_component("raft_consensus")
    for language in (RUST, C):
        user = build_messages(
            raft, language, problem=PROBLEM, parent=_parent(raft, language), last_error=RUSTC_LOG
        )[1].content
        assert "yes * den >= num * (yes + no)" in _excerpt_in(user)
        assert "Kind: exact" in user


def test_inspirations_are_shown_when_they_fit():
    task = get_component("task_allocation")
    parent = _parent(task, RUST)
    other = (
        "fn priority(item: f64, bins: &[f64]) -> Vec<f64> {\n"
        "    bins.iter().map(|&r| -(r - item).powf(1.5)).collect()\n}\n"
    )
    messages = build_messages(
        task,
        RUST,
        problem=PROBLEM,
        parent=parent,
        inspirations=[ParentInfo(other, {"train_or bins": 210.25}, "island 1 best")],
    )
    user = messages[1].content
    assert (
        "## Other good blocks" in user
        and other.strip() in user
        and "train_or bins = 210.25" in user
        and "island 1 best" in user
    )
    assert user.index("## Current block") < user.index("## Other good blocks") < user.index("## Answer")
    assert "last attempt failed" not in user


def test_a_larger_budget_keeps_the_inspirations_and_the_whole_excerpt():
    gossip = get_component("gossip_protocol")
    parent = _parent(gossip, RUST)
    second = ParentInfo(parent.block.replace("splitmix64", "mix"), {"train t99": 300.5}, "island 2")
    small = build_messages(
        gossip, RUST, problem=PROBLEM, parent=parent, inspirations=[parent, second], last_error=RUSTC_LOG
    )
    assert "## Other good blocks" not in small[1].content  # two 1.5k blocks do not fit 6,000 characters
    large = build_messages(
        gossip,
        RUST,
        problem=PROBLEM,
        parent=parent,
        inspirations=[parent, second],
        last_error=RUSTC_LOG,
        budget=12_000,
    )
    user = large[1].content
    assert "### Version A" in user and "### Version B" in user and "train t99 = 300.5" in user
    assert _excerpt_in(user) == skeleton_excerpt(gossip, RUST).rstrip("\n")
    assert sum(len(m.content) for m in large) <= 12_000


def test_edits_mode_asks_for_search_replace_that_extract_candidate_understands():
    task = get_component("task_allocation")
    parent = _parent(task, RUST)
    user = build_messages(task, RUST, problem=PROBLEM, parent=parent, mode="edits")[1].content
    assert "<<<<<<< SEARCH\n" in user and "\n=======\n" in user and "\n>>>>>>> REPLACE" in user
    assert "SEARCH must match" in user
    # An answer in exactly the format asked for applies to the parent block.
    answer = (
        "<<<<<<< SEARCH\n    bins.iter().map(|&remaining| -(remaining - item)).collect()\n=======\n"
        "    bins.iter().map(|&remaining| -(remaining - item) + 0.5 * (remaining == item) as u8 as f64)"
        ".collect()\n>>>>>>> REPLACE"
    )
    extraction = extract_candidate(answer, parent.block, RUST, task)
    assert extraction.kind == "edits" and "0.5 * (remaining == item)" in extraction.block


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="mode"):
        build_messages(
            get_component("task_allocation"),
            RUST,
            problem="x",
            parent=_parent(get_component("task_allocation"), RUST),
            mode="diff",
        )


def test_a_failing_case_is_shown_as_it_is():
    raft = get_component("raft_consensus")
    failure = (
        "wrong tally for 2 votes from 1 voters, quorum 0, threshold 1/2: expected yes=0, no=100, abstain=0,"
        " turnout=100, outcome=1 (rejected); got yes=100 ... (wrong: yes, no, outcome)"
    )
    user = build_messages(raft, RUST, problem=PROBLEM, parent=_parent(raft, RUST), last_error=failure)[
        1
    ].content
    assert failure in user


# ============================================================================================ errors


def test_trim_error_keeps_the_first_errors_only():
    trimmed = trim_error(RUSTC_LOG)
    assert trimmed.startswith("error[E0425]: cannot find value `itm`")
    assert "error[E0308]: mismatched types" in trimmed and "error[E0599]" in trimmed
    assert "`bar`" not in trimmed and "(1 more error not shown)" in trimmed
    assert "warning" not in trimmed and "aborting" not in trimmed and "rustc --explain" not in trimmed


def test_trim_error_clang_and_linker_logs():
    clang = (
        "candidate.c:18:11: error: expected expression\n  int x = ;\n          ^\n"
        "candidate.c:19:3: warning: implicit declaration of function 'foo' is invalid in C99"
        " [-Wimplicit-function-declaration]\n  foo();\n  ^\n"
        "1 warning and 1 error generated.\n"
    )
    assert trim_error(clang) == "candidate.c:18:11: error: expected expression\n  int x = ;\n          ^"
    linker = (
        "wasm-ld-14: error: /tmp/candidate-1.o: undefined symbol: exp\n" * 3
        + "clang: error: linker command failed with exit code 1 (use -v to see invocation)\n"
    )
    assert trim_error(linker) == "wasm-ld-14: error: /tmp/candidate-1.o: undefined symbol: exp"


def test_trim_error_cuts_long_text_at_a_line():
    text = "\n".join(f"line {i}: case failed with a long explanation of what went wrong" for i in range(200))
    trimmed = trim_error(text, max_chars=500)
    assert len(trimmed) < 560 and trimmed.startswith("line 0:") and "more characters" in trimmed
    assert trim_error("rejected by the source policy:\nline 3: [std-fs] std::fs is banned") == (
        "rejected by the source policy:\nline 3: [std-fs] std::fs is banned"
    )


# ============================================================================================ repair


def test_repair_messages_carry_the_block_the_errors_and_block_line_numbers():
    task = get_component("task_allocation")
    block = (
        "fn priority(item: f64, bins: &[f64]) -> Vec<f64> {\n    bins.iter().map(|&r| r - itm).collect()\n}\n"
    )
    head, _, _ = split_skeleton(task.skeleton(RUST))
    line = head.count("\n") + 2  # the block's second line, as rustc numbers the assembled program
    log = (
        f"error[E0425]: cannot find value `itm` in this scope\n  --> candidate.rs:{line}:30\n   |\n"
        f"{line} |     bins.iter().map(|&r| r - itm).collect()\n   |                              ^^^\n\n"
        "error: aborting due to 1 previous error\n"
    )
    messages = repair_messages(task, RUST, block, log)
    assert [m.role for m in messages] == ["system", "user"]
    user = messages[1].content
    assert block.strip() in user
    assert "cannot find value `itm`" in user and "--> block line 2:30" in user
    assert f"\n{'2'.rjust(len(str(line)))} |     bins.iter()" in user
    assert "fn priority(item: f64, bins: &[f64]) -> Vec<f64>" in user
    assert "```rust code block" in user
    assert sum(len(m.content) for m in messages) <= PROMPT_BUDGET


@pytest.mark.parametrize("component, language", CASES, ids=IDS)
def test_repair_prompts_fit(component, language):
    messages = repair_messages(component, language, component.baseline_block(language), RUSTC_LOG)
    assert sum(len(m.content) for m in messages) <= prompt_budget(language)


def test_a_direction_is_given_as_the_one_idea_to_try_just_before_the_answer():
    component = get_component("task_allocation")
    assert component.directions, "task_allocation should have directions for the model"
    idea = component.directions[0]
    messages = build_messages(
        component,
        RUST,
        problem=PROBLEM,
        parent=_parent(component, RUST),
        last_error=RUSTC_LOG,
        direction=idea,
    )
    user = messages[1].content
    assert f"## Idea to try this time\n{idea}" in user
    assert (
        user.index("## Your last attempt failed")
        < user.index("## Idea to try this time")
        < user.index("## Answer")
    )
    assert sum(len(m.content) for m in messages) <= PROMPT_BUDGET
    without = build_messages(component, RUST, problem=PROBLEM, parent=_parent(component, RUST))
    assert "Idea to try" not in without[1].content


def test_wat_repairs_name_block_lines_and_a_whole_wat_module_gives_its_block_back():
    """wat2wasm's `<anon>:LINE:COL` and gutters become block lines; an answer that copies the whole WAT
    skeleton without its markers is cut back to the block's functions (helpers included)."""
    from synapse_ng.evolution.build import BuildFailure, build_candidate

    task = get_component("task_allocation")
    block = task.baseline_block(WAT).replace("(local.get $item))))", "(local.get $itm))))")
    built = build_candidate(task, block, WAT)
    assert isinstance(built, BuildFailure) and "<anon>:" in built.log
    line = next(number for number, text in enumerate(block.split("\n"), 1) if "$itm" in text)
    user = repair_messages(task, WAT, block, built.log)[1].content
    assert f"--> block line {line}:" in user and "failed to find name `$itm`" in user
    gossip = get_component("gossip_protocol")
    module = "\n".join(line for line in gossip.skeleton(WAT).split("\n") if "EVOLVE-BLOCK" not in line)
    extraction = extract_candidate(f"```wat\n{module}\n```", gossip.baseline_block(WAT), WAT, gossip)
    assert extraction.kind == "program" and extraction.error is None
    assert [f.name for f in find_functions(extraction.block, WAT)] == ["splitmix64", "choose_peers"]
    assert "(memory" not in extraction.block and "(export" not in extraction.block
