"""Evolvable components: the contract, the registry, and one module per component."""

from .base import (
    CallOutput,
    Case,
    CaseFailure,
    CandidateShapeError,
    Component,
    ComponentKind,
    Objective,
    Split,
    Workload,
    assemble,
    split_skeleton,
)
from .registry import all_components, get_component

__all__ = [
    "CallOutput",
    "Case",
    "CaseFailure",
    "CandidateShapeError",
    "Component",
    "ComponentKind",
    "Objective",
    "Split",
    "Workload",
    "all_components",
    "assemble",
    "get_component",
    "split_skeleton",
]
