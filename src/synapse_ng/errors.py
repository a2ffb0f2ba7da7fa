"""One exception tree for the whole package.

    SynapseError                  base; every message says what went wrong and what to do next
    ├── UsageError                bad arguments, a missing or unreadable file          (exit 1)
    ├── ToolchainError            the machine lacks something a compile needs
    │   ├── CompilerNotFound      no compiler binary at all                             (exit 2)
    │   └── TargetMissing         a compiler, but without the wasm32 target            (exit 4)
    ├── EngineFailed              the engine could not work: its model kept failing     (exit 1)
    ├── SandboxError              the sandbox itself could not be set up                (exit 1)
    ├── LLMError                  a model provider failed (llm/base.py)                 (exit 1)
    └── InvalidInput              input from outside that cannot be right: a message,   (exit 1)
                                  a file, a plan, a target (also a ValueError)
          EnvelopeError, IdentityError, ProposalError, RolloutError, TargetError, ... each where its
          input is read; the message says what was wrong and what to do

Every public exception of the package derives from SynapseError, so a caller can catch the package's
errors in one clause; the `InvalidInput` ones are also ValueErrors because that is what they are.

Results that a candidate program earns (it did not compile, the policy rejected it, the checks
rejected the module, it trapped) are *not* exceptions: they come back as typed result objects,
because the evolutionary engine feeds them back to the model. Exceptions are for callers and
machines that are set up wrongly.

The CLI's exit codes live here so that every command agrees on them.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_USAGE = 1
EXIT_COMPILER_NOT_FOUND = 2
EXIT_COMPILE_FAILED = 3
EXIT_TARGET_MISSING = 4
EXIT_POLICY = 5
EXIT_WASM_REJECTED = 6
EXIT_TRAP = 7
EXIT_INCORRECT = 8
EXIT_REFUTED = 9
EXIT_NODE_DIED = 10


class SynapseError(Exception):
    """Base of every error this package raises on purpose."""

    exit_code = EXIT_USAGE


class UsageError(SynapseError):
    """The caller asked for something impossible: a missing file, a bad argument."""

    exit_code = EXIT_USAGE


class ToolchainError(SynapseError):
    """The machine lacks a tool a compile needs."""


class CompilerNotFound(ToolchainError):
    exit_code = EXIT_COMPILER_NOT_FOUND


class TargetMissing(ToolchainError):
    exit_code = EXIT_TARGET_MISSING


class EngineFailed(SynapseError):
    """The Evolutionary Engine could not do its work (its model kept failing); not "no improvement"."""


class SandboxError(SynapseError):
    """The sandbox could not be built (bad limits, an engine that refuses the configuration)."""

    exit_code = EXIT_USAGE


class InvalidInput(SynapseError, ValueError):
    """Input from outside the process (a peer's message, a file, an operator's plan) that cannot be right."""
