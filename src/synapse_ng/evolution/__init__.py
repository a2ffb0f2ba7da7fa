"""The Evolutionary Engine's laboratory: building, measuring and proving candidates."""

from .build import BuildFailure, BuiltModule, build_baseline, build_candidate
from .evaluate import Evaluation, evaluate
from .evidence import EVIDENCE_FORMAT, Reproduction, reproduce

__all__ = [
    "EVIDENCE_FORMAT",
    "BuildFailure",
    "BuiltModule",
    "Evaluation",
    "Reproduction",
    "build_baseline",
    "build_candidate",
    "evaluate",
    "reproduce",
]
