"""The exit code of a candidate's result, read from the one outcome vocabulary (outcome.py).

`compile` and `evaluate` end with the code of what happened to their candidate; both go through
`result_exit_code`, so a compile failure or a rejection is the same exit code from either command.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..outcome import exit_code
from ..toolchain.result import CompileResult

if TYPE_CHECKING:  # the evolution package is imported only by the commands that evaluate
    from ..evolution.evaluate import Evaluation


def result_exit_code(result: CompileResult | Evaluation) -> int:
    if isinstance(result, CompileResult):
        return result.status.outcome.exit_code  # a compile stops before the module's static checks
    return exit_code(result.status, result.stage)
