"""`runs` and `runs show RUN_ID`: the engine's past runs, read from its store.

`runs show` writes the run's best score over time as an SVG next to its result
(WORKSPACE/results/RUN_ID/best-score.svg) and prints where it is.
"""

from __future__ import annotations

from typing import Any

import click

from .files import WORKSPACE_HELP, workspace, write_file
from .output import Output, json_option

PLOT_FILE = "best-score.svg"


@click.group("runs", invoke_without_command=True)
@click.option("--workspace", "workspace_dir", help=f"Store to read {WORKSPACE_HELP}.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=20, show_default=True, help="Newest first.")
@json_option()
@click.pass_context
def runs_group(ctx: click.Context, workspace_dir: str | None, limit: int, out: Output) -> None:
    """List the engine's runs, newest first (`runs show RUN_ID` for one of them)."""
    if ctx.invoked_subcommand is not None:
        return
    from ..evolution.store import Store

    store = Store(workspace(workspace_dir))
    results = {}
    for result in store.results():  # the last held-out result of each run
        results[result.run_id] = result.improvement_pct
    rows = [_run_dict(run, results.get(run.run_id)) for run in store.list_runs(limit)]
    header = f"{'run':<34} {'component':<16} {'status':<15} {'samples':>7} {'held out':>9}  model, started"
    lines = [header] + [
        f"{r['run_id']:<34} {r['component']:<16} {r['status']:<15} {r['samples']:>7} "
        f"{_percent(r['heldout_improvement_pct']):>9}  {r['provider']}/{r['model']}, {r['created_at'][:19]}"
        for r in rows
    ]
    human = "\n".join(lines) if rows else f"no runs in {store.database_path}"
    out.emit({"ok": True, "workspace": str(store.directory), "runs": rows}, human)


@runs_group.command("show")
@click.argument("run_id")
@click.option("--workspace", "workspace_dir", help=f"Store to read {WORKSPACE_HELP}.")
@json_option()
def runs_show(run_id: str, workspace_dir: str | None, out: Output) -> None:
    """One run: its settings, outcome, best candidate and its diff to the baseline, and a plot of the best
    score over time (an SVG next to the run's result)."""
    from ..evolution.history import run_summary
    from ..evolution.store import Store
    from .plot import best_score_svg

    store = Store(workspace(workspace_dir))
    summary = run_summary(store, run_id)
    run = summary.run
    metric = _metric(summary)
    svg = best_score_svg(
        summary.curve,
        summary.baseline.score if summary.baseline else None,
        title=f"{run.component}, run {run.run_id}",
        metric=metric,
        direction=run.direction,
        minutes=run.elapsed_s / 60,
    )
    folder = store.directory / "results" / run.run_id
    folder.mkdir(parents=True, exist_ok=True)
    plot = folder / PLOT_FILE
    write_file(plot, svg.encode())
    payload = {
        "ok": True,
        **_run_dict(run, summary.result.improvement_pct if summary.result else None),
        "settings": run.config,
        "reason": run.reason,
        "outcomes": summary.outcomes,
        "baseline_score": summary.baseline.score if summary.baseline else None,
        "best": _candidate_dict(summary.best),
        "diff": summary.diff,
        "heldout": summary.heldout(),
        "curve": [vars(point) for point in summary.curve],
        "plot": str(plot),
    }
    out.emit(payload, _describe(summary, metric, str(plot)))


def _run_dict(run, heldout: float | None) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "component": run.component,
        "provider": run.provider,
        "model": run.model,
        "seed": run.seed,
        "status": run.status,
        "samples": run.samples,
        "tokens_in": run.tokens_in,
        "tokens_out": run.tokens_out,
        "elapsed_s": run.elapsed_s,
        "heldout_improvement_pct": heldout,
        "created_at": run.created_at,
        "finished_at": run.finished_at,
    }


def _candidate_dict(attempt) -> dict[str, Any] | None:
    if attempt is None:
        return None
    return {
        "id": attempt.id,
        "operator": attempt.operator,
        "island": attempt.island,
        "score": attempt.score,
        "improvement_pct": attempt.improvement_pct,
        "wasm_sha256": attempt.wasm_sha256,
        "source": attempt.source,
    }


def _metric(summary) -> str:
    attempt = summary.best or summary.baseline
    metrics = (attempt.metrics or {}) if attempt else {}
    return str((metrics.get("aggregate") or {}).get("metric") or "score")


def _describe(summary, metric: str, plot: str) -> str:
    run = summary.run
    lines = [
        f"run {run.run_id}: {run.component}, {run.provider}/{run.model}, seed {run.seed}",
        f"status {run.status}: {run.reason or '-'}",
        f"samples {run.samples}, tokens {run.tokens_in} in / {run.tokens_out} out, "
        f"{run.elapsed_s / 60:.1f} min; outcomes: "
        + (", ".join(f"{name} {count}" for name, count in sorted(summary.outcomes.items())) or "none"),
        "settings: "
        + ", ".join(f"{key} {value}" for key, value in sorted((run.config.get("config") or {}).items())),
    ]
    if summary.baseline is not None and summary.baseline.score is not None:
        lines.append(f"baseline {metric}: {summary.baseline.score:g}")
    if summary.best is not None:
        best = summary.best
        lines.append(
            f"best: candidate {best.id} ({best.operator}), {metric} {best.score:g}, "
            f"{_percent(best.improvement_pct)} on the training workloads"
        )
    if summary.result is not None:
        verdict = (summary.result.evidence.get("aggregate") or {}).get("significance")
        test = f", {verdict['test']}: p = {verdict['p_value']:.3g}" if isinstance(verdict, dict) else ""
        lines.append(f"held out: {_percent(summary.result.improvement_pct)}{test}")
    if summary.diff:
        lines += ["", summary.diff.rstrip("\n"), ""]
    lines.append(f"plot: {plot}")
    return "\n".join(lines)


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:+.3f} %"
