"""Evolvable components: the contract (`base`), the registry, and one package per component.

Each component package (`task_allocation`, `raft_consensus`, `gossip_protocol`) holds its skeletons as
real files (`skeleton.rs`, `skeleton.c`, `skeleton.wat`), its `component` module (the Component
subclass), its Python reference and the generators of its cases and workloads; `registry` finds them by
that layout.
"""

from .base import (
    CallOutput,
    CandidateShapeError,
    Case,
    CaseFailure,
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
