"""What an honest node checks before it votes on a code upgrade: everything, itself.

A code_upgrade proposal claims "this module, whose SHA-256 is H, is correct and X% better, and here is
the evidence". A node believes none of it. In order, stopping at the first stage that fails:

1. hash: the bytes it fetched hash to H, H is the module the evidence measured, the size matches;
2. static: the component is one this node runs (and the one the evidence is about), and the module
   passes this node's static checks for it (imports, exports, memory);
3. correctness: this node re-runs the correctness cases on the module (evolution.evidence.reproduce);
4. evidence: the same re-run re-measures every workload, and every deterministic figure must be equal
   to the evidence's, bit for bit;
5. improvement: the re-measured improvement is positive, and it is the one the proposal states.

A verdict never raises on bad input: a malformed proposal is a "no" with the reason, not a crash.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import dataclass, field

from ..components import Component, get_component
from ..errors import UsageError
from ..evolution.evidence import reproduce
from ..wasm.inspect import inspect_wasm
from .proposals import ProposalError, validate_code_upgrade_params

logger = logging.getLogger(__name__)

CHECKS = ("hash", "static", "correctness", "evidence", "improvement")
IMPROVEMENT_TOLERANCE = 1e-9


@dataclass
class Verdict:
    ok: bool
    checks: dict[str, bool | None]  # each of CHECKS: True passed, False failed, None not reached
    reasons: list[str] = field(default_factory=list)
    improvement_pct: float | None = None  # as re-measured here
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {
            "ok": self.ok,
            "checks": dict(self.checks),
            "reasons": list(self.reasons),
            "improvement_pct": self.improvement_pct,
            "seconds": self.seconds,
        }


class _Stop(Exception):
    """A stage failed: its name and the reasons."""

    def __init__(self, check: str | None, reasons: list[str]):
        super().__init__(check)
        self.check = check
        self.reasons = reasons


def verify_code_upgrade(
    params: dict, wasm: bytes, *, time_limit_s: float = 600.0, component: Component | None = None
) -> Verdict:
    """Check a code_upgrade's module and evidence on this node; ok only if every check passed."""
    started = time.monotonic()
    checks: dict[str, bool | None] = {name: None for name in CHECKS}
    measured: list[float | None] = [None]
    try:
        _run_checks(params, wasm, time_limit_s, component, checks, measured)
    except _Stop as stop:
        if stop.check is not None:
            checks[stop.check] = False
        verdict = Verdict(False, checks, stop.reasons, measured[0], time.monotonic() - started)
        logger.info("code upgrade refused: %s", "; ".join(stop.reasons))
        return verdict
    return Verdict(True, checks, [], measured[0], time.monotonic() - started)


def _run_checks(
    params: dict,
    wasm: bytes,
    time_limit_s: float,
    component: Component | None,
    checks: dict[str, bool | None],
    measured: list[float | None],
) -> None:
    try:
        validate_code_upgrade_params(params)
    except ProposalError as error:
        raise _Stop(None, [f"the proposal's params are malformed: {error}"]) from None
    evidence = params["evidence"]

    # 1. hash
    if not isinstance(wasm, (bytes, bytearray)):
        raise _Stop("hash", [f"the module must be bytes, got {type(wasm).__name__}"])
    wasm = bytes(wasm)
    sha = hashlib.sha256(wasm).hexdigest()
    claimed = evidence.get("candidate")
    claimed = claimed if isinstance(claimed, dict) else {}
    reasons = []
    if sha != params["wasm_sha256"]:
        reasons.append(f"the module's SHA-256 is {sha}, the proposal says {params['wasm_sha256']}")
    if len(wasm) != params["wasm_size"]:
        reasons.append(f"the module has {len(wasm)} bytes, the proposal says {params['wasm_size']}")
    if claimed.get("sha256") != params["wasm_sha256"]:
        reasons.append(f"the evidence measured the module {claimed.get('sha256')!r}, not the proposed {params['wasm_sha256']}")
    if "size" in claimed and claimed["size"] != params["wasm_size"]:
        reasons.append(f"the evidence measured a module of {claimed['size']!r} bytes, the proposal says {params['wasm_size']}")
    if reasons:
        raise _Stop("hash", reasons)
    checks["hash"] = True

    # 2. static: a component this node runs, the one the evidence is about, and a module that fits it
    if component is None:
        try:
            component = get_component(params["component"])
        except UsageError as error:  # an unknown component
            raise _Stop("static", [f"this node does not run the component: {error}"]) from None
    elif params["component"] != component.name and params["component"].strip().lower() not in component.aliases:
        raise _Stop("static", [f"the proposal is for component {params['component']!r}, this node checks {component.name!r}"])
    if evidence.get("component") != component.name:
        raise _Stop("static", [f"the evidence is for component {evidence.get('component')!r}, the proposal for {component.name!r}"])
    report = inspect_wasm(wasm, component.wasm_policy())
    if not report.ok:
        raise _Stop("static", ["the module fails the static checks: " + "; ".join(report.reasons)])
    checks["static"] = True

    # 3 and 4: one re-run gives correctness and every figure
    try:
        reproduction = reproduce(evidence, wasm, time_limit_s, component=component)
    except Exception as error:  # noqa: BLE001 - UsageError for a malformed record; anything else is no "yes" either
        raise _Stop("evidence", [f"the evidence cannot be re-run here: {error}"]) from None
    wrong = [m for m in reproduction.mismatches if "not correct" in m]
    if wrong:
        raise _Stop("correctness", wrong)
    if reproduction.rerun is None:  # the re-run did not finish, or crashed: correctness is not shown
        raise _Stop("correctness", reproduction.mismatches or ["the re-run produced no result"])
    checks["correctness"] = True
    if reproduction.mismatches:
        raise _Stop("evidence", reproduction.mismatches)
    aggregate = reproduction.rerun.get("aggregate")
    if not reproduction.confirmed or not aggregate:
        raise _Stop("evidence", ["the re-run measured no workloads: there is nothing the improvement rests on"])
    checks["evidence"] = True

    # 5. improvement
    pct = aggregate.get("improvement_pct")
    measured[0] = pct
    if not isinstance(pct, (int, float)) or not math.isfinite(pct) or pct <= 0:
        raise _Stop("improvement", [f"re-measured improvement is {pct}%: not an improvement"])
    if abs(pct - params["improvement_pct"]) > IMPROVEMENT_TOLERANCE:
        raise _Stop(
            "improvement",
            [f"the proposal claims {params['improvement_pct']}% improvement, the evidence (re-measured here) shows {pct}%"],
        )
    checks["improvement"] = True
