"""Is a freshly activated component healthy? One observation window, judged against the one before.

A node that switched to an upgraded component watches it for a window (SPEC: 10 s by default), then
signs a stage_report. The judgement is deliberately simple and explainable, because its reason is
what an operator reads when a rollout stops: any trap or fallback (the node had to run the previous
version because the new one failed) is a failure; so is a production objective that got worse than
the previous window's by more than a tolerance. Everything else is ok, and the reason says what was
seen, including "no calls in the window" so that an ok on no evidence is visible as such.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

DEFAULT_TOLERANCE_PCT = 5.0
# Percentages computed on floats: 1.05 vs 1.0 is 5.000000000000004 %, which is still "5 %".
_PCT_SLACK = 1e-9


@dataclass
class WindowStats:
    calls: int = 0
    traps: int = 0
    fallbacks: int = 0
    # The component's production objective averaged over the window (allocation excess %, fuel per vote, ...).
    objective: float | None = None


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _check_stats(stats: WindowStats, name: str) -> None:
    for field_name in ("calls", "traps", "fallbacks"):
        value = getattr(stats, field_name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} window {field_name} is {value!r}: expected an integer >= 0")
    objective = stats.objective
    if objective is not None and (
        isinstance(objective, bool) or not isinstance(objective, (int, float)) or not math.isfinite(objective)
    ):
        raise ValueError(
            f"{name} window objective is {objective!r}: expected a finite number or None (not measured)"
        )


def _worse_pct(previous: float, current: float, direction: str) -> float:
    """How much worse current is than previous, in percent of |previous| (negative when better)."""
    worse_by = current - previous if direction == "min" else previous - current
    if previous == 0:
        return 0.0 if worse_by <= 0 else math.inf
    return worse_by / abs(previous) * 100.0


def judge_window(
    previous: WindowStats | None,
    current: WindowStats,
    direction: str,
    *,
    tolerance_pct: float = DEFAULT_TOLERANCE_PCT,
) -> tuple[bool, str]:
    """(ok, reason) for the window just observed; `direction` is the objective's: "min" or "max".

    Not ok: any trap or fallback, or an objective worse than the previous window's by more than
    tolerance_pct percent of it (exactly tolerance_pct is still ok; from a previous value of 0, any
    worsening is too much). With no previous window or no objective, only traps and fallbacks count."""
    if direction not in ("min", "max"):
        raise ValueError(
            f"objective direction {direction!r} is neither 'min' (lower is better) "
            "nor 'max' (higher is better)"
        )
    if (
        isinstance(tolerance_pct, bool)
        or not isinstance(tolerance_pct, (int, float))
        or not math.isfinite(tolerance_pct)
        or tolerance_pct < 0
    ):
        raise ValueError(f"tolerance_pct is {tolerance_pct!r}: expected a finite number >= 0")
    _check_stats(current, "current")
    if previous is not None:
        _check_stats(previous, "previous")

    failures: list[str] = []
    observations: list[str] = []

    if current.traps or current.fallbacks:
        failures.append(
            f"{_plural(current.traps, 'trap')}, {_plural(current.fallbacks, 'fallback')} in the window"
        )
    elif current.calls == 0:
        observations.append("no calls in the window")
    else:
        observations.append(f"{_plural(current.calls, 'call')}, no traps or fallbacks")

    if previous is None:
        observations.append("objective not compared (no previous window)")
    elif previous.objective is None or current.objective is None:
        observations.append("objective not compared (not measured in both windows)")
    else:
        before, now = previous.objective, current.objective
        worse = _worse_pct(before, now, direction)
        better_word = "lower" if direction == "min" else "higher"
        change = "worse" if worse > 0 else "not worse"
        figure = f"objective {now:.6g} vs {before:.6g} before ({better_word} is better)"
        if worse > tolerance_pct + _PCT_SLACK:
            amount = "from 0" if math.isinf(worse) else f"by {worse:.2f}%"
            failures.append(f"{figure}: worse {amount}, more than the {tolerance_pct:g}% tolerance")
        elif worse > 0:
            observations.append(
                f"{figure}: {change} by {worse:.2f}%, within the {tolerance_pct:g}% tolerance"
            )
        else:
            observations.append(f"{figure}: {change}")

    if failures:
        return False, "; ".join(failures)
    return True, "; ".join(observations)
