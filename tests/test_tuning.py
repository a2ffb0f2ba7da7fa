"""The constant-retuning operator: it finds the real numeric literals, changes only them, keeps their
syntax, is deterministic per seed, and the retuned block still compiles."""

from __future__ import annotations

import random
import re

import pytest

from synapse_ng.components import assemble, get_component
from synapse_ng.evolution.tuning import Literal, can_retune, numeric_literals, retune, tunable_literals
from synapse_ng.languages import tokenize
from synapse_ng.models import CodeLanguage
from synapse_ng.toolchain import compile_source

RUST = CodeLanguage.RUST
C = CodeLanguage.C
WAT = CodeLanguage.WAT

# An evolved task_allocation block of the kind the search keeps: constants worth tuning, plus numbers
# in comments and strings that must never move, and integers that are structure, not constants.
EVOLVED = (
    "/// Best fit, with a penalty for small leftover gaps (below 0.15 * item + 2) and a bonus of 1e3"
    """ for exact fits.
fn priority(item: f64, bins: &[f64]) -> Vec<f64> {
    const EXACT_BONUS: f64 = 1.0e3;
    let label = "gap 7.5 of 100";
    let small = 0.15 * item + 2.0;
    let mut scores = Vec::with_capacity(bins.len());
    for (k, &remaining) in bins.iter().enumerate() {
        let gap = remaining - item; // 0.5 would be too much
        let mut score = -gap;
        if gap == 0.0 {
            score += EXACT_BONUS;
        } else if gap < small {
            score -= 25.0 * (small - gap) / small;
        }
        if k < 16 && remaining > 1_000f64 {
            score -= 3u32 as f64 + label.len() as f64 * 0.0;
        }
        /* old: score *= 2.0; */
        scores.push(score);
    }
    scores
}
"""
)


def _numbers(block: str, language=RUST) -> list[tuple[int, str]]:
    return [(t.start, t.text) for t in tokenize(block, language) if t.kind == "number"]


def test_numeric_literals_of_an_evolved_block():
    found = [(lit.text, lit.value, lit.is_float) for lit in numeric_literals(EVOLVED, RUST)]
    assert found == [
        ("1.0e3", 1000.0, True),
        ("0.15", 0.15, True),
        ("2.0", 2.0, True),
        ("0.0", 0.0, True),
        ("25.0", 25.0, True),
        ("16", 16, False),
        ("1_000f64", 1000.0, True),
        ("3u32", 3, False),
        ("0.0", 0.0, True),
    ]
    for lit in numeric_literals(EVOLVED, RUST):
        assert EVOLVED[lit.start : lit.end] == lit.text
        assert isinstance(lit, Literal)


def test_literal_forms_and_what_is_not_a_literal():
    block = (
        "fn f(t: (u8, u8)) -> u64 {\n"
        "    #[allow(clippy::all)]\n"
        "    let x1 = t.0 as u64 + t.1 as u64;  // 42\n"
        "    let s = \"3.5\"; let c = '7';\n"
        "    let r = 0..10;\n"
        "    x1 + 0x1F + 0b101 + 0o17 + 1e-3 as u64 + 2.5E+3_f32 as u64 + 7i64 as u64 + 1. as u64"
        " + r.len() as u64 + 9.max(3)\n"
        "}\n"
    )
    found = [(lit.text, lit.value, lit.is_float) for lit in numeric_literals(block, RUST)]
    assert found == [
        ("0", 0, False),
        ("10", 10, False),
        ("0x1F", 31, False),
        ("0b101", 5, False),
        ("0o17", 15, False),
        ("1e-3", 0.001, True),
        ("2.5E+3_f32", 2500.0, True),
        ("7i64", 7, False),
        ("1.", 1.0, True),
        ("9", 9, False),
        ("3", 3, False),
    ]


def test_c_and_wat_literals():
    c_block = (
        "#define K 0.5f\n#if 2\n#endif\nstatic double w[3] = {1.5, .25, 1e-3};\n"
        "int f(void) { return 10UL + 017 + 0x1Fu; } // 9\n"
    )
    assert [(lit.text, lit.value, lit.is_float) for lit in numeric_literals(c_block, C)] == [
        ("0.5f", 0.5, True),
        ("3", 3, False),
        ("1.5", 1.5, True),
        (".25", 0.25, True),
        ("1e-3", 0.001, True),
        ("10UL", 10, False),
        ("017", 15, False),
        ("0x1Fu", 31, False),
    ]
    wat = "(func $f (result i32) local.get 0 ;; 5\n  i32.const -25 f64.const 1.5e3 drop i64.const 0x1F drop)"
    assert [(lit.text, lit.value, lit.is_float) for lit in numeric_literals(wat, WAT)] == [
        ("-25", -25, False),
        ("1.5e3", 1500.0, True),
        ("0x1F", 31, False),
    ]


def test_retune_changes_only_tunable_literals_and_keeps_their_syntax():
    tunable = {"1.0e3", "0.15", "2.0", "25.0", "16", "1_000f64", "3u32"}
    changed_any = set()
    for seed in range(40):
        tuned = retune(EVOLVED, RUST, random.Random(seed))
        assert tuned is not None and tuned != EVOLVED
        before, after = tokenize(EVOLVED, RUST), tokenize(tuned, RUST)
        assert len(before) == len(after)
        changed = [(a.text, b.text) for a, b in zip(before, after, strict=True) if a.text != b.text]
        assert 1 <= len(changed) <= 3
        for (old_kind, new_kind), (old, new) in zip(
            [(a.kind, b.kind) for a, b in zip(before, after, strict=True) if a.text != b.text],
            changed,
            strict=True,
        ):
            assert old_kind == new_kind == "number"
            assert old in tunable, f"{old} is not a constant to tune"
            if old in ("16",):
                assert re.fullmatch(r"[1-9][0-9]*", new)
                assert 12 <= int(new) <= 20 and new != old
            elif old == "3u32":
                assert re.fullmatch(r"[1-9][0-9]*u32", new)
            elif old == "1_000f64":
                assert re.fullmatch(r"[0-9]+\.[0-9]+f64", new)
                assert 500 <= float(new[:-3]) <= 2000 * 1.2
            elif old == "1.0e3":
                assert re.fullmatch(r"[0-9]\.[0-9]+e[0-9]+", new)
                assert 500 <= float(new) <= 2000 * 1.2
            else:
                assert re.fullmatch(r"[0-9]+\.[0-9]+", new)
                assert 0.5 * float(old) * 0.8 <= float(new) <= 2 * float(old) * 1.2
            changed_any.add(old)
        # Comments and strings are untouched.
        assert (
            '"gap 7.5 of 100"' in tuned
            and "// 0.5 would be too much" in tuned
            and "/* old: score *= 2.0; */" in tuned
        )
        assert "(below 0.15 * item + 2) and a bonus of 1e3" in tuned
    assert changed_any == tunable  # over 40 seeds every constant gets its turn


def test_retune_is_deterministic_per_seed():
    assert retune(EVOLVED, RUST, random.Random(7)) == retune(EVOLVED, RUST, random.Random(7))
    assert retune(EVOLVED, RUST, random.Random(7), count=2) == retune(
        EVOLVED, RUST, random.Random(7), count=2
    )
    outputs = {retune(EVOLVED, RUST, random.Random(seed)) for seed in range(10)}
    assert len(outputs) == 10


@pytest.mark.parametrize("count", [1, 2, 3])
def test_retune_count(count):
    tuned = retune(EVOLVED, RUST, random.Random(count), count=count)
    changed = [a for a, b in zip(_numbers(EVOLVED), _numbers(tuned), strict=False) if a[1] != b[1]]
    assert len(changed) == count


def test_retune_without_constants_is_none():
    baseline = get_component("task_allocation").baseline_block(RUST)
    assert retune(baseline, RUST, random.Random(0)) is None
    structure_only = (
        "fn f(v: &[u32]) -> u32 {\n    let mut s = 0; // 0.5\n    for i in 1..v.len() { s += v[i - 1]; }\n"
        "    s\n}\n"
    )
    assert retune(structure_only, RUST, random.Random(0)) is None
    assert retune("fn f() -> u32 { 0xFF }", RUST, random.Random(0)) is None


def test_retune_c_and_wat():
    c_block = (
        "#define WEIGHT 0.75\nvoid priority(double item, const double *bins, int n, double *scores) {\n"
        "    for (int k = 0; k < n; k++) scores[k] = -(bins[k] - item) * WEIGHT + 12.5f; /* 3.0 */\n}\n"
    )
    tuned = retune(c_block, C, random.Random(3), count=2)
    assert tuned.startswith(("#define WEIGHT 0.", "#define WEIGHT 1."))
    assert re.search(r"\+ [0-9]+\.[0-9]+f; /\* 3\.0 \*/", tuned)
    wat = "(func $f (result i32)\n  i32.const -40\n  i32.const 1\n  i32.add)"
    tuned = retune(wat, WAT, random.Random(1))
    assert re.search(r"i32\.const -(3[0-9]|4[0-9]|50)\n  i32\.const 1\n", tuned) and "-40" not in tuned


def test_a_retuned_block_still_compiles():
    component = get_component("task_allocation")
    tuned = retune(EVOLVED, RUST, random.Random(11), count=3)
    assert tuned != EVOLVED
    result = compile_source(assemble(component.skeleton(RUST), tuned), RUST)
    assert result.ok, result.log


def test_a_wide_scale_jumps_further_and_a_narrow_one_is_refused():
    block = (
        "fn priority(item: f64, bins: &[f64]) -> Vec<f64> {"
        " bins.iter().map(|&r| -(r - item) - 50.0).collect() }"
    )
    narrow = {
        float(re.search(r"- ([0-9.]+)\)", retune(block, RUST, random.Random(s), count=1)).group(1))
        for s in range(200)
    }
    wide = {
        float(
            re.search(r"- ([0-9.]+)\)", retune(block, RUST, random.Random(s), count=1, scale=10.0)).group(1)
        )
        for s in range(200)
    }
    assert 50.0 * 0.5 * 0.8 <= min(narrow) and max(narrow) <= 50.0 * 2 * 1.2
    assert min(wide) < 50.0 * 0.3 and max(wide) > 50.0 * 3.3  # factors well beyond [0.5, 2]
    # (the occasional Gaussian nudge is 5 % of the old value, so the low end can dip below 0.1 x)
    assert 0 < min(wide) and max(wide) <= 50.0 * 10 * 1.2
    # An integer's step stretches by log2(scale): 40 moves by at most 10 narrow, 33 wide.
    ints = "fn f(x: u32) -> u32 { x + 40 }"
    steps = {
        int(retune(ints, RUST, random.Random(s), scale=10.0).split("+ ")[1].split()[0]) for s in range(200)
    }
    assert max(steps) > 50 and min(steps) < 30 and min(steps) >= 7
    with pytest.raises(ValueError, match="scale must be > 1"):
        retune(block, RUST, random.Random(0), scale=1.0)


def test_can_retune_says_whether_there_is_a_constant():
    assert can_retune(EVOLVED, RUST)
    assert not can_retune(get_component("task_allocation").baseline_block(RUST), RUST)
    assert not can_retune("fn f(x: u32) -> u32 { x + 1 } // 2.5 in a comment", RUST)


# ------------------------------------------------------------------ what is not a tuning knob


def test_structure_is_left_alone_by_its_place():
    """Patterns, indices, array lengths, shifts, bit operations, remainders, wrapping arithmetic and
    decimal hash constants are structure: tuning them changes the program (or its random stream), not
    how it weighs things. The weights beside them still tune."""
    block = (
        "fn f(v: &[u64], x: u64) -> f64 {\n"
        "    let table = [0.0f64; 64];\n"
        "    let mut z = x.wrapping_mul(31).rotate_left(5);\n"
        "    z = (z ^ (z >> 30)) % 7 + 2654435769 + (z & 255) + (z | 12) + (z << 3);\n"
        "    let pick = match z { 2 => 1.5, 3 | 4 => 2.5, _ => 0.25 };\n"
        "    pick * 0.75 + table[3] + v[2] as f64 + 40.0\n"
        "}\n"
    )
    tunable = [literal.text for literal in tunable_literals(block, RUST)]
    assert tunable == ["1.5", "2.5", "0.25", "0.75", "40.0"], tunable
    structural = {lit.text for lit in numeric_literals(block, RUST) if lit.structural}
    assert structural == {"64", "31", "5", "30", "7", "2654435769", "255", "12", "3", "4", "2"}, structural
    for seed in range(30):
        tuned = retune(block, RUST, random.Random(seed), count=3)
        assert [lit.text for lit in numeric_literals(tuned, RUST) if lit.structural] == [
            lit.text for lit in numeric_literals(block, RUST) if lit.structural
        ]
    c_block = (
        "int f(int x, const int *a) {\n    switch (x) { case 3: return a[2] << 4; }\n    return x * 9;\n}\n"
    )
    assert [lit.text for lit in tunable_literals(c_block, C)] == ["9"]


def test_the_shipped_generators_and_tallies_offer_nothing_but_real_constants():
    """The gossip baseline's splitmix64 shifts (which a tuner once turned into a lucky random stream) and
    the tally's match arms are not tunable; the tally's outcome code is left to the tuner's measurements."""
    gossip = get_component("gossip_protocol")
    tally = get_component("raft_consensus")
    for language in (RUST, C, WAT):
        assert tunable_literals(gossip.baseline_block(language), language) == []
        assert [lit.text for lit in tunable_literals(tally.baseline_block(language), language)] == ["2"]
    assert retune(gossip.baseline_block(RUST), RUST, random.Random(0)) is None
    assert retune(gossip.baseline_block(WAT), WAT, random.Random(0)) is None
    assert not can_retune(get_component("task_allocation").baseline_block(WAT), WAT)


def test_wat_structure_is_known_by_the_instruction_that_takes_the_constant():
    """In WAT the instruction a constant feeds says what it is, folded (the enclosing form) or flat (the
    next instruction): shifts, bit operations, remainders, addresses and hash-sized integers are
    structure; the operands of arithmetic and comparisons tune, and so does every float."""
    block = (
        "(func $f (param $x i64) (result f64)\n"
        "  (i64.shr_u (local.get $x) (i64.const 30)) drop\n"
        "  local.get $x i64.const 27 i64.rotl drop\n"
        "  (i64.rem_u (local.get $x) (i64.const 7)) drop\n"
        "  (i32.load (i32.const 64)) drop\n"
        "  (i64.mul (local.get $x) (i64.const 2654435769)) drop\n"
        "  (i64.and (local.get $x) (i64.const 255)) drop\n"
        "  (i64.lt_s (local.get $x) (i64.const 40)) drop\n"
        "  i64.const 12 local.get $x i64.add drop\n"
        "  (f64.mul (f64.const 0.75) (f64.const 3.0)))\n"
    )
    structural = [lit.text for lit in numeric_literals(block, WAT) if lit.structural]
    assert structural == ["30", "27", "7", "64", "2654435769", "255"], structural
    assert [lit.text for lit in tunable_literals(block, WAT)] == ["40", "12", "0.75", "3.0"]


def test_wat_blocks_have_no_slots_so_the_ordinary_tuner_tunes_them():
    """The fast path reads settings from a static array of the block's own; a WAT block may only define
    functions, so nothing in it is slottable and the tuner falls back to one compile per setting."""
    from synapse_ng.evolution.slots import slottable, slotted

    block = "(func $f (result f64) (f64.mul (f64.const 0.75) (f64.const 3.0)))"
    floats = [lit for lit in tunable_literals(block, WAT) if lit.is_float]
    assert len(floats) == 2 and slottable(block, WAT, floats) == []
    assert slottable(block, C, floats) == floats  # C slots them (and Rust, outside a const item)
    with pytest.raises(ValueError, match="no slots for wat"):
        slotted(block, WAT, floats)
    assert retune(block, WAT, random.Random(0)) != block
