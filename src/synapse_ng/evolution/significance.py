"""Skill, not luck: is a candidate's gain larger than what chance and a change of random stream produce?

    signed_rank_test(differences) -> (pairs, w_plus, p_value)        Wilcoxon's test, one-sided
    significance(objective, workloads, gain) -> dict | None          the verdict an evidence record keeps
    luck(aggregate) -> str | None                                    why a measured gain is not shown skill
    shown_in_training(aggregate) -> bool                             a training gain fit to be confirmed

A heuristic is measured on generated instances (a workload's topologies, its packing instances), and a
candidate that only shuffles its random choices (a generator's constants changed, a tie broken another
way) does better on some instances and worse on others. On a few instances its mean can still look
better: that is luck, and it does not carry over. So a gain counts only when two things hold.

1. **Paired and significant.** Each instance is measured on candidate and baseline (the same topology,
   the same items), and the per-instance gains (in percent of the baseline's value on that instance, so
   every instance weighs alike) go into Wilcoxon's signed-rank test, one-sided, at level 1 % (LEVEL).
   Why this test: under the null hypothesis that the candidate is the baseline with another random
   stream, each paired gain is as likely to be positive as negative with the same size, which is exactly
   the symmetry the signed-rank test assumes; it needs no normality (t99 and bin counts are skewed and
   discrete) and uses the sizes of the gains, not only their signs. Zero gains (an instance packed
   identically) say nothing and are dropped, as in Wilcoxon's own treatment; tied sizes share their
   average rank. The p-value is exact (the null distribution counted over all sign assignments) up to
   EXACT_PAIRS non-zero pairs and from the normal approximation with the tie correction beyond. Why 1 %:
   a false claim rolls out to every node of the network, a missed one only waits for the next run.
2. **Beyond the stream's own spread** (components whose decisions draw random numbers): the held-out
   check also measures the *baseline* under several other random streams (`Component.random_streams`);
   each reseeded baseline has a "gain" over the baseline that is pure stream. The candidate's gain must
   exceed the largest of them.

The search applies the same test to the training instances when it chooses which candidate to confirm
(at SELECTION_LEVEL): the best training score made of a few lucky instances is not the one that carries
over. Both are computed from the measured workloads alone, so every voter recomputes them from its own re-run.
Exact components (the vote tally) answer exactly what the reference answers, and their cost is a
deterministic function of the input: their workloads carry no per-instance items and the test does not
apply (None).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ..components import Objective

LEVEL = 0.01
# Of the training gain a search takes to the held-out check: looser than LEVEL, since it only chooses
# which candidate is tested (the held-out test decides), yet it keeps a gain made on two lucky instances
# out of the running.
SELECTION_LEVEL = 0.05
EXACT_PAIRS = 60  # beyond this, the normal approximation (the exact count costs pairs^3 steps)
TEST_NAME = "Wilcoxon signed-rank, one-sided, paired per instance"


def signed_rank_test(differences: Sequence[float]) -> tuple[int, float, float]:
    """(non-zero pairs, W+ the sum of the ranks of the positive differences, one-sided p-value of a W+
    at least this large under the null of differences symmetric about zero). No pairs: p = 1."""
    nonzero = [d for d in differences if d != 0 and math.isfinite(d)]
    n = len(nonzero)
    if n == 0:
        return 0, 0.0, 1.0
    ranks = _ranks([abs(d) for d in nonzero])
    w_plus = sum(rank for rank, d in zip(ranks, nonzero, strict=True) if d > 0)
    if n <= EXACT_PAIRS:
        return n, w_plus, _exact_p(ranks, w_plus)
    mean = n * (n + 1) / 4
    ties = _tie_sizes([abs(d) for d in nonzero])
    variance = n * (n + 1) * (2 * n + 1) / 24 - sum(t**3 - t for t in ties) / 48
    if variance <= 0:
        return n, w_plus, 1.0 if w_plus <= mean else 0.0
    z = (w_plus - mean - 0.5) / math.sqrt(variance)  # continuity correction
    return n, w_plus, 0.5 * math.erfc(z / math.sqrt(2))


def _ranks(values: list[float]) -> list[float]:
    """Ranks 1..n of the values, ties sharing their average rank."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for position in range(start, end + 1):
            ranks[order[position]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def _tie_sizes(values: list[float]) -> list[int]:
    counts: dict[float, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return [count for count in counts.values() if count > 1]


def _exact_p(ranks: list[float], w_plus: float) -> float:
    """P(W+ >= w_plus) when each rank's sign is + or - with probability 1/2, counted exactly. Ranks are
    whole or half numbers, so doubled they are integers and the count is a subset-sum table."""
    doubled = [round(2 * rank) for rank in ranks]
    total = sum(doubled)
    ways = [0] * (total + 1)
    ways[0] = 1
    for rank in doubled:
        for value in range(total, rank - 1, -1):
            ways[value] += ways[value - rank]
    threshold = round(2 * w_plus)
    return sum(ways[threshold:]) / 2 ** len(doubled)


def instance_gains(
    objective: Objective, workloads: list[dict], side: str = "candidate"
) -> list[float] | None:
    """Per-instance gains (percent of the baseline's value) of `side` over the baseline, in workload order;
    None when a workload has no per-instance items (the test does not apply)."""
    gains: list[float] = []
    for workload in workloads:
        measured, baseline = workload.get(side), workload.get("baseline")
        if not isinstance(measured, dict) or not isinstance(baseline, dict):
            return None
        ours, theirs = measured.get("items"), baseline.get("items")
        if not isinstance(ours, list) or not isinstance(theirs, list) or len(ours) != len(theirs) or not ours:
            return None
        gains += [objective.improvement_pct(a, b) for a, b in zip(ours, theirs, strict=True)]
    return gains


def significance(objective: Objective, workloads: list[dict], improvement_pct: float) -> dict | None:
    """The verdict on a measured gain (see the module docstring), or None where the test does not apply.
    `improvement_pct` is the aggregate gain the evaluation reports (measure.aggregate)."""
    gains = instance_gains(objective, workloads)
    if gains is None:
        return None
    pairs, w_plus, p_value = signed_rank_test(gains)
    verdict: dict = {
        "test": TEST_NAME,
        "level": LEVEL,
        "instances": len(gains),
        "nonzero_pairs": pairs,
        "w_plus": w_plus,
        "p_value": p_value,
        "significant": improvement_pct > 0 and p_value < LEVEL,
    }
    stream_gains = _stream_gains(objective, workloads)
    if stream_gains is not None:
        verdict["stream_gains_pct"] = stream_gains
        verdict["beats_streams"] = improvement_pct > max(stream_gains)
    verdict["passed"] = verdict["significant"] and verdict.get("beats_streams", True)
    return verdict


def _stream_gains(objective: Objective, workloads: list[dict]) -> list[float] | None:
    """The aggregate gain of each reseeded baseline over the baseline (the mean of per-workload gains, as
    measure.aggregate computes a candidate's), or None when no workload was measured under other streams."""
    streams = [w.get("baseline_streams") for w in workloads]
    lists = [s for s in streams if isinstance(s, list) and s]
    if not streams or len(lists) != len(streams):
        return None
    count = min(len(s) for s in lists)
    metric = objective.metric
    gains = []
    for stream in range(count):
        per_workload = [
            objective.improvement_pct(w["baseline_streams"][stream][metric], w["baseline"][metric])
            for w in workloads
        ]
        gains.append(sum(per_workload) / len(per_workload))
    return gains


def luck(aggregate: dict) -> str | None:
    """Why the gain an aggregate (measure.aggregate) reports is not shown to be skill, or None when it is
    (or when the test does not apply: no per-instance items)."""
    verdict = aggregate.get("significance")
    if verdict is None:
        return None
    if not isinstance(verdict, dict):
        return "comes with a malformed significance record"
    if not verdict.get("significant"):
        p_value, pairs = verdict.get("p_value"), verdict.get("nonzero_pairs")
        return (
            f"is not significant: p = {p_value:.3g} over {pairs} instances that differ "
            f"({TEST_NAME}; needs p < {LEVEL:g})"
        )
    if not verdict.get("beats_streams", True):
        best = max(verdict.get("stream_gains_pct") or [0.0])
        return f"is within what another random stream alone gives the baseline (up to {best:.3f} %)"
    return None


def shown_in_training(aggregate: dict) -> bool:
    """Whether a training gain is worth confirming on held-out work: positive, and (where the workloads
    have instances) paired-significant at SELECTION_LEVEL."""
    if (aggregate.get("improvement_pct") or 0.0) <= 0:
        return False
    verdict = aggregate.get("significance")
    return verdict is None or (isinstance(verdict, dict) and verdict.get("p_value", 1.0) < SELECTION_LEVEL)
