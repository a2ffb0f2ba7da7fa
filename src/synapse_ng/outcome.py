"""One vocabulary for where a candidate stopped and how it ended, with the CLI's exit code for each.

A candidate program goes through the same stages whichever command or search handles it:

    model → extract → dedup → shape → policy → compile → verify → cases → workloads → done

A measuring worker killed at its time limit, or dead, stops at `time_limit` or `error` instead of a
case or workload it cannot name. `Stage` names the stage a candidate reached (and stopped at);
`Outcome` names how it ended, and `built_a_module(outcome, stage)` whether a compiler ran. The string
values are the ones stored in run databases and printed as JSON, so they never change meaning.
Everything that reports a candidate (the toolchain's compile result, the evaluation, the search's
records, the store's statistics and the CLI's exit codes) uses these two enums and nothing else.
"""

from __future__ import annotations

from enum import StrEnum

from . import errors


class Stage(StrEnum):
    MODEL = "model"  # asking the model: the call itself failed (a timeout, a crashed worker, an HTTP error)
    EXTRACT = "extract"  # finding code in a model's answer
    DEDUP = "dedup"  # the source was seen before in this run
    SHAPE = "shape"  # the block fits the component's skeleton (required functions, markers)
    POLICY = "policy"  # the source policy; no compiler has run yet
    COMPILE = "compile"  # the compiler
    VERIFY = "verify"  # static checks of the WebAssembly module
    CASES = "cases"  # the correctness suite in the sandbox
    WORKLOADS = "workloads"  # measured against the baseline on the training workloads
    DONE = "done"  # every stage passed
    # Where a measuring worker stopped without saying at which case or workload:
    TIME_LIMIT = "time_limit"  # killed at the evaluation time limit
    ERROR = "error"  # the worker failed or died (its traceback is the evaluation's log)


class Outcome(StrEnum):
    CORRECT = "correct"  # passed every case and was measured
    INCORRECT = "incorrect"  # a wrong or invalid answer, or a trap
    REJECTED = "rejected"  # shape, policy or static checks refused it; nothing ran
    COMPILE_FAILED = "compile_failed"  # the compiler ran and failed, timed out or was killed
    TIME_LIMIT = "time_limit"  # killed at the evaluation time limit
    COMPILED = "compiled"  # built, not evaluated (a search that only compiles)
    DUPLICATE = "duplicate"  # seen before in this run; not evaluated again
    NO_CODE = "no_code"  # the answer held no code
    MODEL_FAILED = "model_failed"  # the model call failed; nothing was proposed
    MISREPORTED = "misreported"  # another island's program whose claimed figures did not reproduce here
    BANNED = "banned"  # behaves exactly like an upgrade the network rolled back: never proposed again

    @property
    def exit_code(self) -> int:
        return _EXIT_CODES[self]


_EXIT_CODES = {
    Outcome.CORRECT: errors.EXIT_OK,
    Outcome.COMPILED: errors.EXIT_OK,
    Outcome.INCORRECT: errors.EXIT_INCORRECT,
    Outcome.TIME_LIMIT: errors.EXIT_INCORRECT,
    Outcome.REJECTED: errors.EXIT_POLICY,
    Outcome.COMPILE_FAILED: errors.EXIT_COMPILE_FAILED,
    Outcome.DUPLICATE: errors.EXIT_USAGE,
    Outcome.NO_CODE: errors.EXIT_USAGE,
    Outcome.MODEL_FAILED: errors.EXIT_USAGE,  # as an LLMError exits
    Outcome.MISREPORTED: errors.EXIT_INCORRECT,
    Outcome.BANNED: errors.EXIT_INCORRECT,
}
_BUILT = frozenset(
    {
        Outcome.COMPILED,
        Outcome.CORRECT,
        Outcome.INCORRECT,
        Outcome.TIME_LIMIT,
        Outcome.MISREPORTED,
        Outcome.BANNED,
    }
)


def built_a_module(outcome: Outcome, stage: Stage) -> bool:
    """Whether a compiler produced a module: every outcome that implies one, and a module the static
    checks refused (it was compiled, then rejected at VERIFY)."""
    return outcome in _BUILT or (outcome is Outcome.REJECTED and stage is Stage.VERIFY)


def exit_code(outcome: Outcome, stage: Stage) -> int:
    """The CLI's exit code for a candidate that ended with `outcome` at `stage`.

    A rejection at the static checks of the module is a different failure from one at the source policy.
    """
    if outcome is Outcome.REJECTED and stage is Stage.VERIFY:
        return errors.EXIT_WASM_REJECTED
    return outcome.exit_code
