"""How `evolve` shows a search as it goes, on stderr: a live line on a terminal (rich), and plain lines
(one per proposal, a duplicate's too: it shows in the duplicates count, not in the samples) when stderr
is a file or a pipe, so logs stay readable.

    with ProgressDisplay(budget, live=sys.stderr.isatty()) as show:
        search = EvolutionSearch(..., on_progress=show)
"""

from __future__ import annotations

import click
from rich.console import Console
from rich.live import Live
from rich.text import Text


def describe_progress(progress, budget) -> str:
    """samples, compile and correct rates, best so far and what is left of the budget, in one line."""
    built = progress.compiled + progress.compile_failed
    compile_rate = f"{progress.compiled / built:.0%}" if built else "-"
    correct_rate = f"{progress.correct / progress.compiled:.0%}" if progress.compiled else "-"
    samples = f"{progress.samples}/{budget.samples}" if budget.samples else str(progress.samples)
    parts = [
        f"samples {samples}",
        f"compiled {progress.compiled} ({compile_rate})",
        f"correct {progress.correct} ({correct_rate} of compiled)",
        f"duplicates {progress.duplicates}",
        f"best {progress.best_improvement_pct:+.3f} %",
    ]
    if budget.minutes is not None:
        parts.append(f"{max(0.0, budget.minutes - progress.elapsed_s / 60):.1f} min left")
    else:
        parts.append(f"{progress.elapsed_s / 60:.1f} min")
    if budget.tokens is not None:
        parts.append(f"tokens {progress.tokens_in + progress.tokens_out}/{budget.tokens}")
    return "  ".join(parts)


class ProgressDisplay:
    def __init__(self, budget, *, live: bool) -> None:
        self.budget = budget
        self._live = (
            Live(console=Console(stderr=True), refresh_per_second=4, transient=False) if live else None
        )

    def __enter__(self) -> ProgressDisplay:
        if self._live is not None:
            self._live.start()
        return self

    def __call__(self, progress) -> None:
        line = describe_progress(progress, self.budget)
        if self._live is not None:
            self._live.update(Text(line))
        else:
            click.echo(line, err=True)

    def __exit__(self, *exc) -> None:
        if self._live is not None:
            self._live.stop()
