"""rustc's own machine-applicable suggestions for a program that does not compile.

    suggested_fixes(source, options) -> [Fix]      rustc's MachineApplicable suggestions, as byte spans
    apply_fixes(source, fixes, region=None) -> str  the source with the non-overlapping ones applied

Small models make the same few type slips over and over: `gap > 0` against an `f64` (rustc: use `0.0`),
a missing `mut`, a missing `;`, `item` where `&item` is wanted. rustc names the exact fix and marks it
MachineApplicable, the level at which `cargo fix` applies a suggestion unattended. Applying those is
cheaper and surer than a round trip to the model, and keeps the model's idea intact. Suggestions of any
lower applicability (MaybeIncorrect, HasPlaceholders, Unspecified) are never applied.

The check runs rustc exactly like a compile, isolated and under the same limits, with
`--emit=metadata` (type checking only, no code generation) and JSON diagnostics. A source the policy
refuses is never handed to the compiler, here either.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from .build import CompileOptions, screen, source_in_tempdir
from .isolate import run_isolated
from .policy import check_rust
from .rust import TARGET, find_rustc

__all__ = ["Fix", "apply_fixes", "suggested_fixes"]

SOURCE_NAME = "candidate.rs"
MACHINE_APPLICABLE = "MachineApplicable"


@dataclass(frozen=True)
class Fix:
    byte_start: int  # UTF-8 byte offsets into the source
    byte_end: int
    replacement: str
    message: str  # rustc's words for it, e.g. "use a float literal"


def suggested_fixes(source: str, options: CompileOptions | None = None) -> list[Fix]:
    """The MachineApplicable suggestions rustc makes for `source`'s errors (empty when it compiles,
    when rustc suggests nothing applicable, or when the source policy refuses it)."""
    options = options or CompileOptions()
    if screen(source, check_rust):
        return []
    rustc = find_rustc(options.rustc_path)
    with source_in_tempdir("synapse-rustfix-", source, SOURCE_NAME) as workdir:
        argv = [
            rustc.path,
            "--edition=2021",
            "--crate-type=cdylib",
            "--crate-name=candidate",
            f"--target={TARGET}",
            "--error-format=json",
            "--emit=metadata",
            "-o",
            "candidate.rmeta",
            SOURCE_NAME,
        ]
        outcome = run_isolated(argv, workdir, options.limits, extra_path=os.path.dirname(rustc.path))
    if outcome.timed_out or outcome.killed_by_signal is not None:
        return []
    fixes: list[Fix] = []
    for line in outcome.stderr.splitlines():
        if not line.startswith("{"):
            continue
        try:
            diagnostic = json.loads(line)
        except ValueError:
            continue
        if isinstance(diagnostic, dict) and diagnostic.get("level") == "error":
            fixes.extend(_machine_applicable(diagnostic, diagnostic.get("message", "")))
    return fixes


def _machine_applicable(diagnostic: dict, context: str) -> list[Fix]:
    found = []
    message = diagnostic.get("message") or context
    for span in diagnostic.get("spans") or ():
        replacement = span.get("suggested_replacement")
        if (
            replacement is not None
            and span.get("suggestion_applicability") == MACHINE_APPLICABLE
            and span.get("file_name") == SOURCE_NAME
            and isinstance(span.get("byte_start"), int)
            and isinstance(span.get("byte_end"), int)
        ):
            found.append(Fix(span["byte_start"], span["byte_end"], replacement, message))
    for child in diagnostic.get("children") or ():
        found.extend(_machine_applicable(child, message))
    return found


def apply_fixes(source: str, fixes: list[Fix], region: tuple[int, int] | None = None) -> str:
    """Apply the fixes that lie wholly inside `region` (byte offsets; default: the whole source), in
    source order, skipping any that overlaps one already taken (rustc may suggest two ways to mend one
    spot). Returns the source unchanged when none applies."""
    data = source.encode("utf-8")
    low, high = region if region is not None else (0, len(data))
    taken: list[Fix] = []
    for fix in sorted(set(fixes), key=lambda f: (f.byte_start, f.byte_end, f.replacement)):
        if not (low <= fix.byte_start <= fix.byte_end <= high):
            continue
        if taken and fix.byte_start < taken[-1].byte_end:
            continue
        if taken and fix.byte_start == fix.byte_end == taken[-1].byte_start == taken[-1].byte_end:
            continue  # two insertions at one point: one is enough
        taken.append(fix)
    for fix in reversed(taken):
        data = data[: fix.byte_start] + fix.replacement.encode("utf-8") + data[fix.byte_end :]
    return data.decode("utf-8")
