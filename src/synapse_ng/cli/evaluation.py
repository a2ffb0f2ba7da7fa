"""`components`, `evaluate` and `reproduce`: judge a candidate against a component and re-run its evidence.

`describe_evaluation` is here because `evolve` prints its held-out result the same way.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from .. import errors
from ..errors import UsageError
from ..models import CodeLanguage
from ..toolchain import SOURCE_SUFFIXES
from .files import read_bytes, read_text, write_file
from .modules import LANGUAGES
from .outcomes import result_exit_code
from .output import Output, json_option

if TYPE_CHECKING:  # the evolution package is imported only when a command evaluates
    from ..evolution.evaluate import Evaluation

# The worker that evaluates is killed at this limit; `evaluate` and `reproduce` run the same measurement.
TIME_LIMIT = click.option(
    "--time-limit",
    "time_limit_s",
    type=float,
    default=600.0,
    show_default=True,
    help="Evaluation time limit (s).",
)


@click.command("components")
@json_option()
def components_command(out: Output) -> None:
    """List the evolvable components: name, kind, objective and the seed's names that map to them."""
    from ..components import all_components

    infos = [component.info() for component in all_components().values()]
    lines = []
    for info in infos:
        languages = ", ".join(info["languages"])
        lines.append(f"{info['name']}  ({info['kind']}; {info['objective']}; languages: {languages})")
        lines.append(f"    also: {', '.join(info['aliases']) or '-'}")
        lines.append(f"    {info['description']}")
    out.emit({"components": infos}, "\n".join(lines))


def _read_candidate(path: str, language: str | None) -> tuple[str | bytes, CodeLanguage]:
    """A .wasm file is a compiled module; anything else is source (a block or a whole program)."""
    suffix = Path(path).suffix.lower()
    if suffix == ".wasm":
        return read_bytes(path), CodeLanguage.RUST
    lang = CodeLanguage.from_name(language) if language else SOURCE_SUFFIXES.get(suffix, CodeLanguage.RUST)
    return read_text(path), lang


def describe_evaluation(evaluation: Evaluation) -> str:
    lines = [
        f"component: {evaluation.component}",
        f"status:    {evaluation.status} (stopped at {evaluation.stage})",
    ]
    if evaluation.candidate:
        candidate = evaluation.candidate
        lines.append(f"candidate: sha256 {candidate['sha256']} ({candidate['size']} bytes)")
    if evaluation.cases_total:
        lines.append(f"cases:     {evaluation.cases_passed}/{evaluation.cases_total} passed")
    if evaluation.first_failure:
        failure = evaluation.first_failure
        lines.append(f"first failure: {failure['message']}")
        for key in ("input", "expected", "got"):
            if failure.get(key):
                lines.append(f"  {key}: {failure[key]}")
    elif evaluation.message:
        lines.append(evaluation.message)
    if evaluation.log:
        lines.append(evaluation.log)
    if evaluation.workloads:
        lines += _workload_table(evaluation)
    if evaluation.aggregate:
        improvement = evaluation.aggregate["improvement_pct"]
        lines.append(f"improvement: {improvement:.3f} % (mean over workloads; positive is better)")
    return "\n".join(lines)


def _workload_table(evaluation: Evaluation) -> list[str]:
    """Each workload's metric for the candidate and the baseline, then their other figures."""
    metric = evaluation.aggregate["metric"] if evaluation.aggregate else None
    lines = [
        f"{'workload':<14} {'split':<8} {'candidate':>14} {'baseline':>14} {'better by':>10}   ({metric})"
    ]
    if metric is None:
        return lines
    for w in evaluation.workloads:
        lines.append(
            f"{w['id']:<14} {w['split']:<8} {w['candidate'][metric]:>14.6g} {w['baseline'][metric]:>14.6g} "
            f"{w.get('improvement_pct', 0):>9.3f}%"
        )
        for side in ("candidate", "baseline"):
            others = " ".join(
                f"{k}={v}" if isinstance(v, int) else f"{k}={v:.6g}"
                for k, v in w[side].items()
                if k != metric and isinstance(v, (int, float))
            )
            lines.append(f"    {side + ':':<11} {others}")
    return lines


@click.command("evaluate")
@click.argument("candidate")
@click.option(
    "--component", "component_name", required=True, help="Component name (or a seed name that maps to one)."
)
@click.option(
    "--workloads",
    "split",
    type=click.Choice(["train", "heldout", "all"]),
    default="heldout",
    show_default=True,
)
@click.option("--language", type=LANGUAGES, help="Default: from the suffix, else rust.")
@click.option("--evidence-out", help="Write the evidence record (JSON) here.")
@click.option("--wasm-out", help="Write the candidate's module here.")
@TIME_LIMIT
@json_option()
def evaluate_command(
    candidate: str,
    component_name: str,
    split: str,
    language: str | None,
    evidence_out: str | None,
    wasm_out: str | None,
    time_limit_s: float,
    out: Output,
) -> None:
    """Judge CANDIDATE (an EVOLVE block, a whole .rs/.c program, or a .wasm) against a component.

    Exit 0 correct and measured, 8 incorrect; 3 compile failed, 5 rejected (policy or edits outside the
    EVOLVE block), 6 failed the static checks.
    """
    from ..components import get_component
    from ..evolution import build_candidate, evaluate
    from ..evolution.build import BuildFailure
    from ..evolution.evaluate import failed_build

    component = get_component(component_name)
    source, lang = _read_candidate(candidate, language)
    built = build_candidate(component, source, lang)
    if isinstance(built, BuildFailure):
        evaluation = failed_build(component, built)
    else:
        evaluation = evaluate(component, source, lang, split, time_limit_s=time_limit_s, built=built)
        if wasm_out:
            write_file(wasm_out, built.wasm)
    if evidence_out and evaluation.evidence:
        write_file(evidence_out, json.dumps(evaluation.evidence, indent=2).encode())
    out.emit(evaluation.to_dict(), describe_evaluation(evaluation))
    sys.exit(result_exit_code(evaluation))


@click.command("reproduce")
@click.argument("evidence_file")
@click.argument("candidate_wasm")
@TIME_LIMIT
@json_option()
def reproduce_command(evidence_file: str, candidate_wasm: str, time_limit_s: float, out: Output) -> None:
    """Re-run an evidence record on this machine. Exit 0 confirmed, 9 refuted (every mismatch listed)."""
    from ..evolution import reproduce

    try:
        evidence = json.loads(read_bytes(evidence_file))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UsageError(f"{evidence_file}: not JSON ({error})") from None
    result = reproduce(evidence, read_bytes(candidate_wasm), time_limit_s)
    if result.confirmed:
        human = f"confirmed: every deterministic figure in {evidence_file} re-ran identically"
    else:
        mismatches = "\n".join(f"  - {m}" for m in result.mismatches)
        human = f"refuted: {len(result.mismatches)} mismatch(es)\n{mismatches}"
    out.emit(result.to_dict(), human)
    sys.exit(errors.EXIT_OK if result.confirmed else errors.EXIT_REFUTED)
