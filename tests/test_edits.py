"""Candidate extraction from real-looking model answers, SEARCH/REPLACE edits, and source identity.

Every answer below is shaped like what local 1.5B coder models and remote models really write: prose
around fences, several fences, no fence, whole programs with and without the EVOLVE markers, edits in
and out of fences, CRLF line endings, trailing explanations. Each test asserts the exact block.
"""

from __future__ import annotations

import textwrap

import pytest

from synapse_ng.components import assemble, get_component, split_skeleton
from synapse_ng.evolution.extract import Extraction, extract_candidate, required_functions
from synapse_ng.languages import find_functions, normalize_source, source_hash, tokenize, top_level_items
from synapse_ng.models import CodeLanguage

RUST = CodeLanguage.RUST
C = CodeLanguage.C

TASK = get_component("task_allocation")
RAFT = get_component("raft_consensus")
GOSSIP = get_component("gossip_protocol")
PARENT = TASK.baseline_block(RUST)  # the block the model was shown

NEW_PRIORITY = textwrap.dedent(
    """\
    fn priority(item: f64, bins: &[f64]) -> Vec<f64> {
        // Prefer tight fits, but penalise leaving a tiny unusable gap.
        bins.iter()
            .map(|&r| {
                let gap = r - item;
                if gap > 0.0 && gap < 5.0 { -(gap + 10.0) } else { -gap }
            })
            .collect()
    }
    """
)


def fence(code: str, tag: str = "rust") -> str:
    return f"```{tag}\n{code.rstrip()}\n```"


def d(text: str) -> str:
    return textwrap.dedent(text)


# ============================================================================================ fences


def test_prose_around_one_fence():
    answer = (
        "Sure! Here is an improved version of the `priority` function. It keeps best fit but avoids "
        "leaving gaps that no later item can use.\n\n"
        + fence(NEW_PRIORITY)
        + "\n\n### Explanation\n\n- `gap` is the space left after placing the item.\n"
        "- Small gaps are penalised.\n"
    )
    assert extract_candidate(answer, PARENT, RUST, TASK) == Extraction(NEW_PRIORITY, "block", None)


def test_language_string_and_component_argument_are_accepted():
    answer = "Here you go:\n" + fence(NEW_PRIORITY)
    assert extract_candidate(answer, PARENT, "rust", TASK).block == NEW_PRIORITY


def test_several_fences_prefers_the_new_code_over_the_quoted_parent():
    answer = (
        "Your current function is:\n\n"
        + fence(PARENT)
        + "\n\nThe improved function:\n\n"
        + fence(NEW_PRIORITY)
        + "\n\nYou can test it with:\n\n"
        + fence("cargo test --release", "bash")
        + "\n"
    )
    assert extract_candidate(answer, PARENT, RUST, TASK).block == NEW_PRIORITY


def test_a_fence_that_defines_the_function_beats_a_longer_one_that_does_not():
    usage = (
        "fn main() {\n"
        + "    let bins = vec![10.0, 20.0, 30.0];\n" * 12
        + '    println!("{:?}", priority(5.0, &bins));\n}\n'
    )
    answer = (
        "```\n" + NEW_PRIORITY + "```\n\nExample usage (not part of the block):\n\n" + fence(usage) + "\n"
    )
    assert extract_candidate(answer, PARENT, RUST, TASK).block == NEW_PRIORITY


def test_the_language_tag_wins_between_two_definitions():
    cpp = (
        "double priority(double item, double* bins) { return 0; }\n"
        "fn priority(item: f64, bins: &[f64]) -> Vec<f64> { vec![] }\n"
    )
    answer = fence(NEW_PRIORITY, "rs") + "\n\nOr in another style:\n\n" + fence(cpp, "text") + "\n"
    assert extract_candidate(answer, PARENT, RUST, TASK).block == NEW_PRIORITY


@pytest.mark.parametrize("info", ["Rust", "rust,ignore", "{.rust}", "rust title=priority.rs", "~~~rust"])
def test_fence_info_strings(info):
    opening, closing = ("~~~rust", "~~~") if info.startswith("~") else (f"```{info}", "```")
    answer = f"{opening}\n{NEW_PRIORITY}{closing}\n\n```text\nfn priority(x: f64) -> f64 {{ x }}\n```"
    assert extract_candidate(answer, PARENT, RUST, TASK).block == NEW_PRIORITY


def test_markdown_with_rust_and_plain_fences():
    answer = (
        "## Improved heuristic\n\n"
        + fence(NEW_PRIORITY)
        + "\n\n## Expected effect\n\n```\nbins: 212.0 -> 209.5 (OR3)\n```\n"
    )
    assert extract_candidate(answer, PARENT, RUST, TASK).block == NEW_PRIORITY


def test_crlf_line_endings():
    answer = ("Here is the code:\n\n" + fence(NEW_PRIORITY) + "\n\nThis should use fewer bins.\n").replace(
        "\n", "\r\n"
    )
    extraction = extract_candidate(answer, PARENT.replace("\n", "\r\n"), RUST, TASK)
    assert extraction.block == NEW_PRIORITY
    assert "\r" not in extraction.block


def test_an_unclosed_fence_runs_to_the_end_of_the_answer():
    answer = "Improved:\n```rust\n" + NEW_PRIORITY
    assert extract_candidate(answer, PARENT, RUST, TASK).block == NEW_PRIORITY


def test_indented_fence_inside_a_list_item():
    answer = "1. Replace the function:\n\n" + textwrap.indent(fence(NEW_PRIORITY), "    ") + "\n2. Rebuild.\n"
    assert extract_candidate(answer, PARENT, RUST, TASK).block == NEW_PRIORITY


def test_reasoning_sections_are_ignored():
    answer = (
        "<think>\nMaybe I should write\n```rust\n"
        "fn priority(item: f64, bins: &[f64]) -> Vec<f64> { vec![0.0; bins.len()] }\n```\n"
        "no, that is first fit.\n</think>\n" + fence(NEW_PRIORITY)
    )
    assert extract_candidate(answer, PARENT, RUST, TASK).block == NEW_PRIORITY


# ========================================================================================== no fence


def test_no_fence_code_between_prose_lines():
    answer = (
        "Here is the improved version:\n\n"
        + NEW_PRIORITY
        + "\nThis version penalises small gaps, which are rarely filled later.\n"
    )
    assert extract_candidate(answer, PARENT, RUST, TASK) == Extraction(NEW_PRIORITY, "block", None)


def test_no_fence_with_doc_comments_and_attribute_kept():
    code = "/// Tight fit with a gap penalty.\n#[inline]\n" + NEW_PRIORITY
    answer = "The new block:\n" + code + "\nDone. Let me know if you want more changes!"
    assert extract_candidate(answer, PARENT, RUST, TASK).block == code


def test_no_fence_bare_code_answer():
    assert extract_candidate(NEW_PRIORITY, PARENT, RUST, TASK).block == NEW_PRIORITY


def test_no_fence_with_an_apostrophe_in_the_trailing_prose():
    answer = NEW_PRIORITY + "\nIt's faster because it doesn't allocate twice.\n"
    assert extract_candidate(answer, PARENT, RUST, TASK).block == NEW_PRIORITY


def test_prose_only_is_no_code():
    extraction = extract_candidate(
        "I think best fit is already optimal; I would not change anything.", PARENT, RUST, TASK
    )
    assert extraction.block is None and extraction.kind == "none"
    assert "priority" in extraction.error


@pytest.mark.parametrize("answer", ["", "   \n\n  ", "\r\n"])
def test_an_empty_answer_is_none_with_an_error(answer):
    extraction = extract_candidate(answer, PARENT, RUST, TASK)
    assert extraction == Extraction(None, "none", "the answer is empty")


def test_an_answer_without_the_required_function_is_refused():
    helper = "fn gap_penalty(gap: f64) -> f64 {\n    if gap < 5.0 { 10.0 } else { 0.0 }\n}\n"
    extraction = extract_candidate("Add this helper:\n" + fence(helper), PARENT, RUST, TASK)
    assert extraction.block is None
    assert "`priority`" in extraction.error


# ==================================================================================== whole programs


def test_whole_program_with_markers_gives_the_block_between_them():
    program = assemble(TASK.skeleton(RUST), NEW_PRIORITY)
    answer = "Here is the complete program with my change:\n\n" + fence(program) + "\n"
    assert extract_candidate(answer, PARENT, RUST, TASK) == Extraction(NEW_PRIORITY, "program", None)


def test_whole_program_with_a_changed_harness_keeps_only_the_block():
    program = assemble(TASK.skeleton(RUST), NEW_PRIORITY).replace(
        "const MAX_ITEMS: usize = 10000;", "const MAX_ITEMS: usize = 20000;"
    )
    assert extract_candidate(fence(program), PARENT, RUST, TASK).block == NEW_PRIORITY


def test_markers_around_just_the_block_is_a_block():
    answer = fence("// EVOLVE-BLOCK-START\n" + NEW_PRIORITY + "// EVOLVE-BLOCK-END")
    assert extract_candidate(answer, PARENT, RUST, TASK) == Extraction(NEW_PRIORITY, "block", None)


def test_a_lone_start_marker():
    answer = fence("// EVOLVE-BLOCK-START\n" + NEW_PRIORITY)
    assert extract_candidate(answer, PARENT, RUST, TASK).block == NEW_PRIORITY


def _without_markers(program: str) -> str:
    return "\n".join(line for line in program.split("\n") if "EVOLVE-BLOCK" not in line)


def test_whole_skeleton_without_markers_task_allocation_rust():
    program = _without_markers(assemble(TASK.skeleton(RUST), NEW_PRIORITY))
    extraction = extract_candidate("Full program:\n" + fence(program), PARENT, RUST, TASK)
    assert extraction == Extraction(NEW_PRIORITY, "program", None)


def test_whole_skeleton_without_markers_raft_rust_keeps_new_imports_and_helpers():
    block = d(
        """\
        use std::collections::HashMap;

        /// Last record per voter, in one pass.
        fn tally_votes(records: &[Record], quorum: i64, num: i64, den: i64) -> Tally {
            let mut best: HashMap<u32, (u32, usize)> = HashMap::with_capacity(records.len());
            for (i, r) in records.iter().enumerate() {
                let e = best.entry(r.voter).or_insert((r.seq, i));
                if r.seq >= e.0 {
                    *e = (r.seq, i);
                }
            }
            let mut t = Tally::default();
            for &(_, i) in best.values() {
                add(&mut t, &records[i]);
            }
            t.outcome = outcome(&t, quorum, num, den);
            t
        }

        fn add(t: &mut Tally, r: &Record) {
            let w = r.weight as i64;
            match r.choice {
                0 => t.yes += w,
                1 => t.no += w,
                _ => t.abstain += w,
            }
            t.turnout += w;
        }

        fn outcome(t: &Tally, quorum: i64, num: i64, den: i64) -> i32 {
            if t.turnout < quorum {
                2
            } else if t.yes + t.no > 0 && t.yes * den >= num * (t.yes + t.no) {
                0
            } else {
                1
            }
        }
        """
    )
    head, _, tail = split_skeleton(RAFT.skeleton(RUST))
    # The model puts its `use` at the top of the file, above the harness, and drops the markers.
    program = _without_markers("use std::collections::HashMap;\n\n" + head + block.split("\n", 2)[2] + tail)
    extraction = extract_candidate(fence(program), RAFT.baseline_block(RUST), RUST, RAFT)
    assert extraction.kind == "program"
    assert extraction.block == block
    # What is left assembles into the skeleton (nothing of the harness is defined twice).
    assert "pub struct Record" not in extraction.block and "fn tally(" not in extraction.block


def test_whole_skeleton_without_markers_task_allocation_c():
    block = d(
        """\
        void priority(double item, const double *bins, int n, double *scores) {
            for (int k = 0; k < n; k++) {
                double gap = bins[k] - item;
                scores[k] = gap < 3.0 ? -(gap + 50.0) : -gap;
            }
        }
        """
    )
    program = _without_markers(assemble(TASK.skeleton(C), block))
    extraction = extract_candidate("```c\n" + program + "```\n", TASK.baseline_block(C), C, TASK)
    assert extraction == Extraction(block, "program", None)


def test_free_form_without_parent_returns_the_whole_fence():
    program = '#[no_mangle]\npub extern "C" fn execute(ptr: i32, len: i32) -> i32 {\n    ptr + len\n}\n'
    answer = "Here is a program:\n" + fence(program) + "\nIt exports execute."
    assert extract_candidate(answer, "", RUST, None) == Extraction(program, "block", None)


def test_a_usage_example_main_is_dropped():
    main = 'fn main() {\n    let scores = priority(5.0, &[10.0, 7.0]);\n    println!("{:?}", scores);\n}\n'
    answer = (
        "Here is the code with a small test:\n"
        + fence(NEW_PRIORITY + "\n" + main)
        + "\nRun it with cargo run."
    )
    assert extract_candidate(answer, PARENT, RUST, TASK).block == NEW_PRIORITY


def test_a_block_that_repeats_harness_types_loses_them():
    parent = RAFT.baseline_block(RUST)
    repeated = d(
        """\
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[repr(C)]
        pub struct Record {
            pub voter: u32,
            pub seq: u32,
            pub choice: u32,
            pub weight: u32,
        }

        """
    )
    answer = "```rust\n" + repeated + parent + "```"
    extraction = extract_candidate(answer, parent, RUST, RAFT)
    assert extraction == Extraction(parent, "program", None)


# Answers written by the embedded Qwen2.5-Coder-1.5B to prompts.build_messages, kept verbatim.
QWEN_EDITS_MODE_ANSWER = (
    "```rust\n"
    "/// Scores the bins that can hold `item`: `bins[k]` is the remaining capacity of the k-th of them, in\n"
    "/// bin order (unused bins, at full capacity, included). Returns one finite score per bin; the item\n"
    "/// goes to the highest score, the first one on ties. Fewer bins used in the end is better.\n"
    "/// Baseline: best fit, the bin the item fills most tightly.\n"
    "fn priority(item: f64, bins: &[f64]) -> Vec<f64> {\n"
    "    bins.iter().map(|&remaining| -remaining).collect()\n"
    "}\n"
    "```"
)

QWEN_GOSSIP_ANSWER = (
    "```rust\n"
    "/// Improved version of choose_peers, using a more sophisticated approach to minimize t99.\n"
    "fn choose_peers(latency: &[f64], reliability: &[f64], contact_age: &[f64], fanout: usize, seed: u64,"
    " out: &mut [i32]) -> i32 {\n"
    "    let n = latency.len();\n"
    "    let mut order = [0i32; MAX_PEERS];\n"
    "    for i in 0..n {\n"
    "        order[i] = i as i32;\n"
    "    }\n"
    "    let mut state = seed;\n"
    "    for i in 0..n {\n"
    "        let j = i + (splitmix64(&mut state) % ((n - i) as u64)) as usize;\n"
    "        order.swap(i, j);\n"
    "        out[i] = order[i];\n"
    "    }\n"
    "    let mut t99 = MAX_PEERS as f64; // Initialize t99 to maximum possible value\n"
    "    let mut count = 0;\n"
    "    let mut visited = vec![false; n];\n"
    "    visited[0] = true; // Mark the starting node as visited\n"
    "\n"
    "    for _ in 0..fanout {\n"
    "        let mut neighbors = Vec::new();\n"
    "        for (i, &latency_i) in latency.iter().enumerate() {\n"
    "            if visited[i] || latency_i == 0.0 {\n"
    "                continue;\n"
    "            }\n"
    "            if contact_age[i] == 0.0 {\n"
    "                neighbors.push((i, latency_i));\n"
    "            } else {\n"
    "                let age = contact_age[i] as f64 / 1000.0;\n"
    "                let prob = reliability[i];\n"
    "                let delay = latency_i + 5.0 + 100.0 * age;\n"
    "                if age < 10.0 && prob > 0.7 && prob < 1.0 {\n"
    "                    neighbors.push((i, delay));\n"
    "                } else if age < 100.0 && prob > 0.5 && prob < 1.0 {\n"
    "                    neighbors.push((i, delay));\n"
    "                } else if age < 1000.0 && prob > 0.3 && prob < 1.0 {\n"
    "                    neighbors.push((i, delay));\n"
    "                }\n"
    "            }\n"
    "        }\n"
    "        if neighbors.is_empty() {\n"
    "            break; // No more neighbors, so t99 is already the max\n"
    "        }\n"
    "        neighbors.sort_by(|&(_, latency1), &(_, latency2)| latency1.partial_cmp(&latency2).unwrap());\n"
    "        for (i, latency) in neighbors {\n"
    "            if visited[i] {\n"
    "                continue;\n"
    "            }\n"
    "            visited[i] = true;\n"
    "            count += 1;\n"
    "            if count >= n {\n"
    "                return count as i32; // All nodes are visited, t99 is already the max\n"
    "            }\n"
    "            t99 = t99.min(latency as f64); // Update t99 based on the new latency\n"
    "        }\n"
    "    }\n"
    "\n"
    "    if count < n {\n"
    "        return count as i32; // Not enough nodes visited, t99 is still the max\n"
    "    }\n"
    "\n"
    "    t99 // t99 is the minimum time until 99% of nodes hold the message\n"
    "}\n"
    "```"
)


def test_real_small_model_answers_edits_mode_with_a_whole_block():
    extraction = extract_candidate(QWEN_EDITS_MODE_ANSWER, PARENT, RUST, TASK)
    assert extraction.kind == "block" and extraction.error is None
    assert extraction.block == PARENT.replace("-(remaining - item)", "-remaining")


def test_real_small_model_answer_that_drops_the_helper_gets_it_back():
    parent = GOSSIP.baseline_block(RUST)
    extraction = extract_candidate(QWEN_GOSSIP_ANSWER, parent, RUST, GOSSIP)
    assert extraction.kind == "block"
    assert extraction.block.startswith("/// splitmix64: a small, good 64-bit generator")
    assert extraction.block.count("fn splitmix64") == 1 and extraction.block.count("fn choose_peers") == 1
    assert extraction.block.rstrip().endswith(
        "t99 // t99 is the minimum time until 99% of nodes hold the message\n}"
    )


# ============================================================================ helpers from the parent


def test_helpers_the_answer_leaves_out_come_from_the_parent():
    parent = GOSSIP.baseline_block(RUST)
    # The signature on one line, as a model may write it (the parent's is wrapped); the body dedented.
    choose = (
        "fn choose_peers(latency: &[f64], reliability: &[f64], contact_age: &[f64], fanout: usize, seed: u64,"
        " out: &mut [i32]) -> i32 {\n"
        + d(
            """\
            let _ = contact_age;
            let n = latency.len();
            let k = if fanout < n { fanout } else { n };
            let mut order = [0i32; MAX_PEERS];
            for i in 0..n {
                order[i] = i as i32;
            }
            let mut state = seed;
            for i in 0..k {
                let j = i + (splitmix64(&mut state) % ((n - i) as u64)) as usize;
                order.swap(i, j);
                out[i] = order[i];
            }
            let _ = reliability;
            k as i32
        }
        """
        )
    )
    extraction = extract_candidate("The rest is unchanged:\n" + fence(choose), parent, RUST, GOSSIP)
    helper = next(f for f in find_functions(parent, RUST) if f.name == "splitmix64")
    assert extraction.block == parent[helper.start : helper.end] + "\n\n" + choose


def test_c_helpers_and_types_from_the_parent_go_before_the_function():
    parent = RAFT.baseline_block(C)
    function = parent[parent.index("static Tally tally_votes") :].replace(
        "t.turnout += w;", "t.turnout = t.turnout + w;"
    )
    extraction = extract_candidate(fence(function, "c"), parent, C, RAFT)
    block = extraction.block
    assert (
        block.index("} Seen;")
        < block.index("static Seen seen[MAX_VOTES];")
        < block.index("static Tally tally_votes")
    )
    assert "t.turnout = t.turnout + w;" in block


# ============================================================================================= edits

EDIT_ANSWER = d(
    """\
    I will make best fit prefer bins that end up nearly full.

    ```rust
    <<<<<<< SEARCH
        bins.iter().map(|&remaining| -(remaining - item)).collect()
    =======
        bins.iter()
            .map(|&remaining| {
                let gap = remaining - item;
                if gap < 1.0 { 1000.0 } else { -gap }
            })
            .collect()
    >>>>>>> REPLACE
    ```

    This keeps the packing valid because every score is finite.
    """
)


def test_search_replace_inside_a_fence():
    extraction = extract_candidate(EDIT_ANSWER, PARENT, RUST, TASK)
    expected = PARENT.replace(
        "    bins.iter().map(|&remaining| -(remaining - item)).collect()\n",
        "    bins.iter()\n        .map(|&remaining| {\n            let gap = remaining - item;\n"
        "            if gap < 1.0 { 1000.0 } else { -gap }\n        })\n        .collect()\n",
    )
    assert extraction == Extraction(expected, "edits", None)


def test_several_edits_without_fences_and_crlf():
    # Indented less than the code around it so that the long line fits; d() removes the indent anyway.
    answer = d(
        """\
    <<<<<<< SEARCH
    /// Baseline: best fit, the bin the item fills most tightly.
    =======
    /// Best fit with a bonus for an exact fit.
    >>>>>>> REPLACE

    <<<<<<< SEARCH
        bins.iter().map(|&remaining| -(remaining - item)).collect()
    =======
        bins.iter().map(|&remaining| if remaining == item { 1.0e9 } else { -(remaining - item) }).collect()
    >>>>>>> REPLACE
    """
    ).replace("\n", "\r\n")
    extraction = extract_candidate(answer, PARENT, RUST, TASK)
    assert extraction.kind == "edits" and extraction.error is None
    assert extraction.block == PARENT.replace(
        "/// Baseline: best fit, the bin the item fills most tightly.",
        "/// Best fit with a bonus for an exact fit.",
    ).replace(
        "-(remaining - item)).collect()",
        "if remaining == item { 1.0e9 } else { -(remaining - item) }).collect()",
    )


def test_a_search_that_matches_nothing_is_an_error_naming_it():
    answer = d(
        """\
        <<<<<<< SEARCH
            bins.iter().map(|&remaining| -(remaining - item)).collect()
        =======
            bins.iter().map(|&remaining| -(remaining - item) * 2.0).collect()
        >>>>>>> REPLACE
        <<<<<<< SEARCH
            let waste = remaining - item;
        =======
            let waste = (remaining - item).abs();
        >>>>>>> REPLACE
        """
    )
    extraction = extract_candidate(answer, PARENT, RUST, TASK)
    assert extraction.block is None and extraction.kind == "edits"
    assert "edit 2" in extraction.error and "let waste = remaining - item;" in extraction.error
    assert "edit 1" not in extraction.error


def test_a_search_with_other_indentation_and_spacing_still_applies_and_is_reindented():
    answer = d(
        """\
        <<<<<<< SEARCH
        bins.iter().map(|&remaining| -(remaining-item)).collect()
        =======
        let scale = 1.5;
        bins.iter().map(|&remaining| -(remaining - item) * scale).collect()
        >>>>>>> REPLACE
        """
    )
    extraction = extract_candidate(answer, PARENT, RUST, TASK)
    assert extraction.error is None
    assert (
        "    let scale = 1.5;\n    bins.iter().map(|&remaining| -(remaining - item) * scale).collect()\n}\n"
        in extraction.block
    )


def test_a_search_that_skips_blank_lines_still_applies():
    parent = (
        "fn priority(item: f64, bins: &[f64]) -> Vec<f64> {\n    let mut out = Vec::new();\n\n"
        "    for &b in bins {\n        out.push(item - b);\n    }\n    out\n}\n"
    )
    answer = (
        "<<<<<<< SEARCH\n    let mut out = Vec::new();\n    for &b in bins {\n=======\n"
        "    let mut out = Vec::with_capacity(bins.len());\n    for &b in bins {\n>>>>>>> REPLACE\n"
    )
    extraction = extract_candidate(answer, parent, RUST, TASK)
    assert extraction.block == parent.replace(
        "let mut out = Vec::new();\n\n", "let mut out = Vec::with_capacity(bins.len());\n"
    )


def test_a_search_of_harness_code_says_so():
    answer = (
        "<<<<<<< SEARCH\n    const MAX_ITEMS: usize = 10000;\n=======\n"
        "    const MAX_ITEMS: usize = 20000;\n>>>>>>> REPLACE\n"
    )
    extraction = extract_candidate(answer, PARENT, RUST, TASK)
    assert extraction.block is None
    assert "fixed harness" in extraction.error and "MAX_ITEMS" in extraction.error


def test_edits_only_ever_touch_the_parent_block():
    extraction = extract_candidate(EDIT_ANSWER, PARENT, RUST, TASK)
    assert "mod harness" not in extraction.block
    assert extraction.block.startswith("/// Scores the bins")


@pytest.mark.parametrize(
    "answer, message",
    [
        ("<<<<<<< SEARCH\n    bins.iter()\n>>>>>>> REPLACE\n", "malformed"),
        ("<<<<<<< SEARCH\n    bins.iter()\n=======\n    bins.iter().rev()\n", "not finished"),
        ("<<<<<<< SEARCH\n\n=======\nfn extra() {}\n>>>>>>> REPLACE\n", "empty SEARCH"),
    ],
)
def test_malformed_edits(answer, message):
    extraction = extract_candidate(answer, PARENT, RUST, TASK)
    assert extraction.block is None and extraction.kind == "edits" and message in extraction.error


def test_edits_without_a_parent():
    extraction = extract_candidate(EDIT_ANSWER, "", RUST, None)
    assert extraction.block is None and "parent" in extraction.error


# ===================================================================================== normalisation


def test_comment_and_whitespace_variants_are_duplicates():
    variants = [
        NEW_PRIORITY,
        NEW_PRIORITY.replace("    ", "\t"),
        "/// docs\n"
        + NEW_PRIORITY.replace(
            "// Prefer tight fits, but penalise leaving a tiny unusable gap.", "/* other words */"
        ),
        NEW_PRIORITY.replace("\n", "\r\n") + "\n\n\n",
        NEW_PRIORITY.replace("r - item", "r-item").replace("gap > 0.0", "gap>0.0"),
    ]
    hashes = {source_hash(v, RUST) for v in variants}
    assert len(hashes) == 1
    assert len(source_hash(NEW_PRIORITY, RUST)) == 64


@pytest.mark.parametrize(
    "change",
    [
        ("gap < 5.0", "gap < 5.5"),  # a constant
        ("gap + 10.0", "gap - 10.0"),  # an operator
        ("let gap", "let gap2"),  # a name (and a compile error: still not the same source)
        ("-(gap + 10.0)", "- -(gap + 10.0)"),  # token boundaries matter
    ],
)
def test_real_changes_are_not_duplicates(change):
    changed = NEW_PRIORITY.replace(*change)
    assert changed != NEW_PRIORITY
    assert source_hash(changed, RUST) != source_hash(NEW_PRIORITY, RUST)


def test_string_contents_and_c_token_boundaries_count():
    assert normalize_source('let s = "a  b";', RUST) != normalize_source('let s = "a b";', RUST)
    assert normalize_source("x = a - -b;", C) != normalize_source("x = a--b;", C)
    assert normalize_source("x = a + ++b;", C) != normalize_source("x = a++ + b;", C)


def test_normalize_c_keeps_directive_lines_apart():
    one = "#define K 2\nint x = K;"
    other = "#define K 2 int x = K;"
    assert normalize_source(one, C) != normalize_source(other, C)
    assert normalize_source("#define  K 2  // two\n\nint x=K;", C) == normalize_source(one, C)


def test_normalize_strips_every_kind_of_comment():
    rust = "/* outer /* nested */ still comment */ fn f() -> u8 { b'x' } // end\n/// doc\n"
    assert normalize_source(rust, RUST) == "fn f ( ) -> u8 { b'x' }"
    wat = "(module ;; line\n (; block (; nested ;) ;) (func $f (result i32) i32.const 7))"
    assert normalize_source(wat, CodeLanguage.WAT) == "( module ( func $f ( result i32 ) i32.const 7 ) )"


# ============================================================================== lexer and structure


def test_lexer_knows_lifetimes_chars_and_raw_strings():
    code = "fn f<'a>(x: &'a str) -> char { let _r = r#\"fn g() { \"quoted\" }\"#; '{' }"
    kinds = [(t.kind, t.text) for t in tokenize(code, RUST) if t.kind in ("lifetime", "char", "string")]
    assert kinds == [
        ("lifetime", "'a"),
        ("lifetime", "'a"),
        ("string", 'r#"fn g() { "quoted" }"#'),
        ("char", "'{'"),
    ]
    items = top_level_items(code, RUST)
    assert [(i.kind, i.name) for i in items] == [("fn", "f")]


def test_required_functions_of_the_real_components():
    assert required_functions(TASK, RUST) == ("priority",)
    assert required_functions(TASK, C) == ("priority",)
    assert required_functions(RAFT, C) == ("tally_votes",)
    assert required_functions(GOSSIP, RUST) == ("choose_peers",)  # splitmix64 is a helper
    items = {(i.kind, i.name) for i in top_level_items(RAFT.baseline_block(C), C)}
    assert items == {("type", "Seen"), ("static", "seen"), ("fn", "tally_votes")}
