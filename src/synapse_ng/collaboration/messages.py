"""The two messages of a collaborative evolution, checked the same way by every node.

    evolution_body(issue, component, language, islands, ends_at, seed)   the designated node opens one
    migrant_body(evolution, source, source_hash, lineage, score, scores, final)   an island's program
    validate_evolution_body(body) / validate_migrant_body(body)          CollaborationError naming the field

An `evolution` says: these islands (node ids, the designated one first) search this issue's component in
this language until `ends_at`. A `migrant` is one island's program for it: the block, the hashes of the
programs it descends from (newest first), and the training figures its sender claims. `final` marks the
sender's last word, its best program at the end of the budget: the winner is chosen among the finals.

Nothing here is trusted: a receiver re-measures every migrant before it admits it (evolution.exchange),
and the bounds below keep what a member can make others store small: a block of at most
MAX_MIGRANT_SOURCE_CHARS, at most MAX_MIGRANTS_PER_ISLAND migrants per island and evolution (admission).
"""

from __future__ import annotations

import math
from typing import Any

from ..errors import InvalidInput
from ..json_bounds import HEX64, MAX_INT
from ..text import show_value

LANGUAGES = ("rust", "c", "wat")
MAX_ISLANDS = 8
MAX_ISSUE_CHARS = 200
MAX_COMPONENT_CHARS = 64
MAX_MIGRANT_SOURCE_CHARS = 32_000  # the largest starting block is 3.4k characters (raft's, in WAT)
MAX_LINEAGE = 32
MAX_SCORES = 64  # training workloads per component: task_allocation has 12
MAX_MIGRANTS_PER_ISLAND = 24  # per evolution, the final included
MAX_EVOLUTION_S = 4 * 3600.0  # an evolution ends within this of its creation

EVOLUTION_KEYS = frozenset({"issue", "component", "language", "islands", "ends_at", "seed"})
MIGRANT_KEYS = frozenset({"evolution", "source", "source_hash", "lineage", "score", "scores", "final"})


class CollaborationError(InvalidInput):
    """An evolution or migrant body that cannot be right; the message names the field."""


def evolution_body(
    issue: str, component: str, language: str, islands: list[str], ends_at: float, seed: int
) -> dict:
    body = {
        "issue": issue,
        "component": component,
        "language": language,
        "islands": list(islands),
        "ends_at": float(ends_at),
        "seed": seed,
    }
    validate_evolution_body(body)
    return body


def migrant_body(
    evolution: str,
    source: str,
    source_hash: str,
    lineage: list[str],
    score: float,
    scores: dict[str, float],
    final: bool,
) -> dict:
    body = {
        "evolution": evolution,
        "source": source,
        "source_hash": source_hash,
        "lineage": list(lineage)[:MAX_LINEAGE],
        "score": float(score),
        "scores": {name: float(value) for name, value in scores.items()},
        "final": final,
    }
    validate_migrant_body(body)
    return body


def validate_evolution_body(body: Any) -> None:
    kind = "evolution"
    _check_keys(body, EVOLUTION_KEYS, kind)
    _check_text(body["issue"], "issue", MAX_ISSUE_CHARS, kind)
    _check_text(body["component"], "component", MAX_COMPONENT_CHARS, kind)
    if body["language"] not in LANGUAGES:
        raise CollaborationError(
            f"{kind} language is {show_value(body['language'])}: expected one of {', '.join(LANGUAGES)}"
        )
    islands = body["islands"]
    if not isinstance(islands, list) or not 1 <= len(islands) <= MAX_ISLANDS:
        raise CollaborationError(f"{kind} islands must be a list of 1 to {MAX_ISLANDS} node ids")
    for node_id in islands:
        _check_hex(node_id, "islands[]", kind)
    if len(set(islands)) != len(islands):
        raise CollaborationError(f"{kind} islands names a node twice")
    _check_number(body["ends_at"], "ends_at", kind)
    seed = body["seed"]
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_INT:
        raise CollaborationError(f"{kind} seed is {show_value(seed)}: expected an integer >= 0")


def validate_migrant_body(body: Any) -> None:
    kind = "migrant"
    _check_keys(body, MIGRANT_KEYS, kind)
    _check_hex(body["evolution"], "evolution", kind)
    source = body["source"]
    if not isinstance(source, str) or not source.strip():
        raise CollaborationError(f"{kind} source must be the program's block, a non-empty string")
    if len(source) > MAX_MIGRANT_SOURCE_CHARS:
        raise CollaborationError(
            f"{kind} source has {len(source)} characters: at most {MAX_MIGRANT_SOURCE_CHARS} travel"
        )
    _check_hex(body["source_hash"], "source_hash", kind)
    lineage = body["lineage"]
    if not isinstance(lineage, list) or len(lineage) > MAX_LINEAGE:
        raise CollaborationError(f"{kind} lineage must be a list of at most {MAX_LINEAGE} source hashes")
    for digest in lineage:
        _check_hex(digest, "lineage[]", kind)
    _check_number(body["score"], "score", kind)
    scores = body["scores"]
    if not isinstance(scores, dict) or len(scores) > MAX_SCORES:
        raise CollaborationError(f"{kind} scores must be an object of at most {MAX_SCORES} workload figures")
    for name, value in scores.items():
        _check_text(name, "scores key", 200, kind)
        _check_number(value, f"scores[{name!r}]", kind)
    if not isinstance(body["final"], bool):
        raise CollaborationError(f"{kind} final is {show_value(body['final'])}: expected true or false")


def _check_keys(body: Any, expected: frozenset[str], kind: str) -> None:
    if not isinstance(body, dict):
        raise CollaborationError(f"{kind} body is {type(body).__name__}: expected a JSON object")
    missing = sorted(expected - body.keys())
    unknown = sorted(str(key) for key in body.keys() - expected)
    if missing or unknown:
        raise CollaborationError(
            f"{kind} body has keys {', '.join(sorted(map(str, body)))}: expected exactly "
            f"{', '.join(sorted(expected))}"
        )


def _check_text(value: Any, name: str, limit: int, kind: str) -> None:
    if not isinstance(value, str) or not value or len(value) > limit or not value.isprintable():
        raise CollaborationError(f"{kind} {name} must be printable text of 1 to {limit} characters")


def _check_hex(value: Any, name: str, kind: str) -> None:
    if not isinstance(value, str) or not HEX64.fullmatch(value):
        raise CollaborationError(f"{kind} {name} {show_value(value)} is not 64 lowercase hex characters")


def _check_number(value: Any, name: str, kind: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise CollaborationError(f"{kind} {name} is {show_value(value)}: expected a finite number")
