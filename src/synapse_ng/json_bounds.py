"""The bounds every JSON value a peer can send must keep, checked in one walk: integers fit a signed 64-bit
integer (what SQLite and the components' Rust hold), nesting stays within a depth, dict keys are strings.

    breach = find_breach(value, max_depth)    None, or Breach(kind, where, value): the first thing
                                              out of bounds
    HEX64.fullmatch(text) / HEX128.fullmatch(text)   the shape of every id a peer sends: a sha256 or an
                                                     ed25519 public key (64), an ed25519 signature (128)

Iterative, so a hostile value cannot exhaust the stack. The envelope (node/) and the message models
(governance/) each word the breach in their own error. The id shapes live here, the lowest module that
reads peers' values, so that identity, envelope, messages and gossip share one definition.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .text import clip, clip_start

MIN_INT, MAX_INT = -(2**63), 2**63 - 1
HEX64 = re.compile(r"[0-9a-f]{64}")  # lowercase only: one spelling per id, or a replay would get a new one
HEX128 = re.compile(r"[0-9a-f]{128}")
CONTAINERS = (dict, list, tuple)
# A free-text reason on a vote, a stage report or a rollback: one limit for every message that carries one.
MAX_REASON_CHARS = 2000


@dataclass(frozen=True)
class Breach:
    # "integer" (outside 64 bits), "depth" (nested deeper than allowed), "cycle", "key" (not a string)
    kind: str
    where: str  # the JSON path, e.g. params.evidence["a b"][3] ("the top level" for the value itself)
    value: Any = None  # the integer or the key


def describe_int(value: int) -> str:
    """A huge int without converting it to text (str() of one over 4300 digits raises)."""
    bits = value.bit_length()
    return repr(value) if bits <= 100 else f"a {bits}-bit integer, about {int(bits * 0.30103) + 1} digits"


def _where(link: tuple | None, key: Any = None) -> str:
    """The JSON path of a value from the links the walk keeps."""
    keys = [] if key is None else [key]
    while link is not None:
        link, parent_key, _ = link
        keys.append(parent_key)
    parts = []
    for k in reversed(keys):
        if isinstance(k, int):
            parts.append(f"[{k}]")
        elif isinstance(k, str) and k.isidentifier():
            parts.append(f".{k}" if parts else k)
        else:
            text = repr(k)
            parts.append(f"[{clip(text, 40)}]")
    path = "".join(parts) or "the top level"
    return clip_start(path, 103) if len(path) > 120 else path


def _out_of_range(value: Any) -> bool:
    return isinstance(value, int) and not MIN_INT <= value <= MAX_INT  # bools are 0 and 1


def find_breach(obj: Any, max_depth: int) -> Breach | None:
    """The first value of `obj` out of bounds (the value itself is level 1), or None."""
    if not isinstance(obj, CONTAINERS):
        return Breach("integer", _where(None), obj) if _out_of_range(obj) else None
    # (container, its level, link): link = (parent's link, key in parent, parent) names the path
    stack: list[tuple[Any, int, tuple | None]] = [(obj, 1, None)]
    walked: dict[
        int, int
    ] = {}  # container id -> deepest level walked (a shared one is walked again only deeper)
    while stack:
        item, depth, link = stack.pop()
        if walked.get(id(item), 0) >= depth:
            continue
        walked[id(item)] = depth
        if depth > max_depth:
            ancestors, up = [], link
            while up is not None:
                up, _, parent = up
                ancestors.append(parent)
            return Breach("cycle" if any(parent is item for parent in ancestors) else "depth", _where(link))
        pairs = item.items() if isinstance(item, dict) else enumerate(item)
        for key, value in pairs:
            if isinstance(item, dict) and not isinstance(key, str):
                return Breach("key", _where(link), key)
            if isinstance(value, CONTAINERS):
                stack.append((value, depth + 1, (link, key, item)))
            elif _out_of_range(value):
                return Breach("integer", _where(link, key), value)
    return None
