"""Proposal and vote bodies: built here, and checked here before a node stores, counts or acts on one.

A body travels inside a signed envelope, so the signature says who wrote it, never that it makes sense.
Every node therefore validates every body it receives with the same strict rules: exact keys, exact
types (a JSON ``true`` is not the integer 1 here), bounded sizes, and the field's name plus what was
expected in every message, so a refused proposal tells its author what to fix.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from ..json_bounds import MAX_INT, MIN_INT, find_breach

PROPOSAL_TYPES = ("config_change", "code_upgrade", "membership_change")
CHOICES = {"yes": 0, "no": 1, "abstain": 2}
CODE_LANGUAGES = ("rust", "c", "wat")

MAX_THRESHOLD = 65535  # raft_consensus's bound on num and den
MAX_WASM_SIZE = 16 * 1024 * 1024
MAX_SOURCE_BYTES = 200_000
MAX_TITLE_CHARS = 300
MAX_DESCRIPTION_CHARS = 100_000
MAX_ISSUE_CHARS = 100_000
MAX_REASON_CHARS = 2000
MAX_SEQ = 2**63  # exclusive: seq is the voter's time_ns, which fits an i64
MAX_BODY_DEPTH = 32  # levels of objects/arrays in a body, the body itself level 1 (the envelope's bound)

PROPOSAL_KEYS = frozenset({"type", "title", "description", "params", "deadline", "quorum", "threshold"})
CODE_UPGRADE_KEYS = frozenset(
    {"component", "wasm_sha256", "wasm_size", "language", "source", "evidence", "improvement_pct", "issue"}
)
CONFIG_CHANGE_KEYS = frozenset({"changes"})
VOTE_KEYS = frozenset({"proposal_id", "choice", "seq", "reason"})

_HEX64 = re.compile(r"[0-9a-f]{64}")


class ProposalError(ValueError):
    """A proposal or vote body (or the rules) that cannot be accepted; the message names the field."""


# ------------------------------------------------------------------------------------------ rules


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    """A finite float or an integer that fits 64 bits (math.isfinite(10**400) raises OverflowError)."""
    if _is_int(value):
        return MIN_INT <= value <= MAX_INT
    return isinstance(value, float) and math.isfinite(value)


def _show(value: Any, limit: int = 80) -> str:
    if _is_int(value) and value.bit_length() > 100:  # repr() of an int over 4300 digits raises ValueError
        return f"a {value.bit_length()}-bit integer"
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"


def _check_threshold(name: str, value: Any) -> tuple[int, int]:
    if not isinstance(value, (list, tuple)) or len(value) != 2 or not all(_is_int(v) for v in value):
        raise ProposalError(f"{name} must be [num, den], two integers, got {_show(value)}")
    num, den = value
    if not 0 < num <= den <= MAX_THRESHOLD:
        raise ProposalError(f"{name} must satisfy 0 < num <= den <= {MAX_THRESHOLD}, got {num}/{den}")
    return num, den


def _check_quorum(name: str, value: Any) -> None:
    if not _is_number(value) or not 0 < value <= 1:
        raise ProposalError(
            f"{name} must be a number in (0, 1], the fraction of members whose votes are needed, got {_show(value)}"
        )


@dataclass(frozen=True)
class GovernanceRules:
    """The network's defaults for new proposals (and the bound on how far away a deadline may be)."""

    quorum: float = 0.5
    config_threshold: tuple[int, int] = (1, 2)
    code_threshold: tuple[int, int] = (2, 3)
    deadline_s: float = 30.0
    grace_s: float = 1.0
    max_deadline_s: float = 7 * 86400

    def __post_init__(self) -> None:
        _check_quorum("GovernanceRules.quorum", self.quorum)
        # Thresholds read from a JSON config arrive as lists: keep them as (hashable) tuples.
        object.__setattr__(self, "config_threshold", _check_threshold("GovernanceRules.config_threshold", self.config_threshold))
        object.__setattr__(self, "code_threshold", _check_threshold("GovernanceRules.code_threshold", self.code_threshold))
        for name in ("deadline_s", "grace_s", "max_deadline_s"):
            value = getattr(self, name)
            if not _is_number(value) or value < 0 or (value == 0 and name != "grace_s"):
                need = "a finite number >= 0" if name == "grace_s" else "a finite number > 0"
                raise ProposalError(f"GovernanceRules.{name} must be {need} (seconds), got {_show(value)}")
        if self.deadline_s > self.max_deadline_s:
            raise ProposalError(
                f"GovernanceRules.deadline_s ({self.deadline_s:g} s) exceeds max_deadline_s ({self.max_deadline_s:g} s): "
                "raise max_deadline_s or shorten the deadline"
            )

    def threshold_for(self, proposal_type: str) -> tuple[int, int]:
        if proposal_type == "config_change":
            return self.config_threshold
        if proposal_type in ("code_upgrade", "membership_change"):  # who may govern weighs like code
            return self.code_threshold
        raise ProposalError(f"proposal type must be one of {', '.join(PROPOSAL_TYPES)}, got {_show(proposal_type)}")


# ------------------------------------------------------------------------------------------ proposals


def proposal_body(
    type: str,
    title: str,
    description: str,
    params: dict,
    *,
    rules: GovernanceRules | None = None,
    now: float,
) -> dict:
    """A validated proposal body with the rules' deadline (now + deadline_s), quorum and threshold."""
    rules = rules or GovernanceRules()
    num, den = rules.threshold_for(type)
    body = {
        "type": type,
        "title": title,
        "description": description,
        "params": params,
        "deadline": float(now) + rules.deadline_s,
        "quorum": rules.quorum,
        "threshold": [num, den],
    }
    validate_proposal_body(body, now=now, rules=rules)
    return body


_REFUSED = {
    "Cc": "a control character",
    "Cf": "a format/bidi control character",
    "Cs": "a lone surrogate",
    "Co": "a private-use character",
}  # not "Cn" (unassigned): each Python has its own Unicode version, and nodes must agree on what they accept
_LINE_BREAKS = "\n\t\r"  # control characters a multi-line text may hold
_SEPARATORS = {"Zl": "a line separator", "Zp": "a paragraph separator"}  # not in a single line either


def _refused(char: str, multiline: bool) -> str | None:
    """What `char` is, when a text may not hold it; None when it may."""
    category = unicodedata.category(char)
    if category in _REFUSED:
        if multiline and char in _LINE_BREAKS:
            return None
        if char in _LINE_BREAKS:
            return "a line break or tab: this field is a single line"
        return _REFUSED[category]
    if not multiline and category in _SEPARATORS:
        return _SEPARATORS[category] + ": this field is a single line"
    return None


def text_problem(text: str, multiline: bool = True) -> str | None:
    """Why `text` may not travel in a message, or None: it holds a control character (newline, tab and
    carriage return only when `multiline`), a format character (bidi overrides such as U+202E, zero-width
    characters), a lone surrogate, a private-use or an unassigned code point. Such characters make what a
    reader sees differ from what was signed (a reversed line, a hidden word), so they are refused rather
    than shown. Note: "unassigned" follows this Python's Unicode database."""
    if text.isprintable():  # the common case, at C speed: no category C or Z character but the space
        return None
    for index, char in enumerate(text):
        what = _refused(char, multiline)
        if what is not None:
            return f"holds U+{ord(char):04X} ({what}) at character {index}"
    return None


def readable_text(text: str, multiline: bool = True) -> str:
    """`text` with every character text_problem refuses replaced by '?' (newlines and tabs kept when
    `multiline`): for text this node composes from others' words (a model's description, a verification's
    reasons, a compiler's output) before it signs it, so its own message is never refused."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join("?" if _refused(char, multiline) else char for char in text)


def _check_keys(name: str, value: dict, expected: frozenset[str]) -> None:
    missing = sorted(expected - value.keys())
    unknown = sorted(str(k) for k in value.keys() - expected)
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing)}")
        if unknown:
            parts.append(f"unknown {', '.join(unknown)}")
        raise ProposalError(f"{name}: {'; '.join(parts)}; expected exactly the keys {', '.join(sorted(expected))}")


def _check_str(name: str, value: Any, max_chars: int, non_empty: bool = False, *, multiline: bool | None = None) -> None:
    """With `multiline` (True, or False for one line) the string must also be text: see text_problem."""
    if not isinstance(value, str):
        raise ProposalError(f"{name} must be a string, got {type(value).__name__} {_show(value)}")
    if non_empty and not value.strip():
        raise ProposalError(f"{name} must be a non-empty string")
    if len(value) > max_chars:
        raise ProposalError(f"{name} must be at most {max_chars} characters, got {len(value)}")
    problem = None if multiline is None else text_problem(value, multiline)
    if problem is not None:
        raise ProposalError(f"{name} {problem}; remove it (readable_text() replaces such characters)")


def _check_tree(body: dict) -> None:
    """Every integer anywhere in the body (the evidence too) fits 64 bits and nothing nests deeper than
    MAX_BODY_DEPTH levels: what the envelope would refuse, refused here with the field's name."""
    breach = find_breach(body, MAX_BODY_DEPTH)
    if breach is None:
        return
    if breach.kind == "integer":
        raise ProposalError(f"proposal field '{breach.where}' must fit a signed 64-bit integer (-2^63..2^63-1), got {_show(breach.value)}")
    if breach.kind == "key":
        raise ProposalError(f"proposal field '{breach.where}' has a key {_show(breach.value)} that is not a string")
    raise ProposalError(f"proposal field '{breach.where}' nests deeper than {MAX_BODY_DEPTH} levels; flatten it")


def validate_proposal_body(body: Any, *, now: float | None = None, rules: GovernanceRules | None = None) -> None:
    """Raise ProposalError unless body is a well-formed proposal. With `now`, the deadline must also lie
    at most rules.max_deadline_s ahead (the default rules' bound when rules is None)."""
    if not isinstance(body, dict):
        raise ProposalError(f"a proposal body must be a JSON object, got {type(body).__name__}")
    _check_keys("proposal body", body, PROPOSAL_KEYS)
    _check_tree(body)
    if body["type"] not in PROPOSAL_TYPES:
        raise ProposalError(f"proposal field 'type' must be one of {', '.join(PROPOSAL_TYPES)}, got {_show(body['type'])}")
    _check_str("proposal field 'title'", body["title"], MAX_TITLE_CHARS, non_empty=True, multiline=False)
    _check_str("proposal field 'description'", body["description"], MAX_DESCRIPTION_CHARS, multiline=True)
    _check_quorum("proposal field 'quorum'", body["quorum"])
    _check_threshold("proposal field 'threshold'", body["threshold"])
    deadline = body["deadline"]
    if not _is_number(deadline):
        raise ProposalError(f"proposal field 'deadline' must be a finite number (unix seconds), got {_show(deadline)}")
    if now is not None:
        horizon = (rules or GovernanceRules()).max_deadline_s
        if deadline > now + horizon:
            raise ProposalError(
                f"proposal field 'deadline' is {deadline - now:.0f} s away; at most {horizon:g} s ahead is accepted"
            )
    if body["type"] == "code_upgrade":
        validate_code_upgrade_params(body["params"])
    elif body["type"] == "membership_change":
        validate_membership_change_params(body["params"])
    else:
        validate_config_change_params(body["params"])


MAX_MEMBERSHIP_CHANGES = 16


def validate_membership_change_params(params: Any) -> None:
    """{"add": [{"node_id", "url"}...], "remove": [node_id...]}: members to add (their key pinned to their
    address) and to remove; at least one change, at most MAX_MEMBERSHIP_CHANGES."""
    if not isinstance(params, dict) or not params or not set(params) <= {"add", "remove"}:
        raise ProposalError('membership_change params must be {"add": [{"node_id", "url"}], "remove": [node_id]} (either or both)')
    add, remove = params.get("add", []), params.get("remove", [])
    if not isinstance(add, list) or not isinstance(remove, list) or not 1 <= len(add) + len(remove) <= MAX_MEMBERSHIP_CHANGES:
        raise ProposalError(f"membership_change params: 'add' and 'remove' are lists with 1..{MAX_MEMBERSHIP_CHANGES} changes in all")
    for entry in add:
        if not isinstance(entry, dict) or set(entry) != {"node_id", "url"}:
            raise ProposalError('each of params.add must be {"node_id": 64 hex chars, "url": "http(s)://host:port"}')
        _check_node_id("params.add[].node_id", entry["node_id"])
        url = entry["url"]
        if not isinstance(url, str) or not url.startswith(("http://", "https://")) or len(url) > 200 or url != url.strip().rstrip("/"):
            raise ProposalError(f"params.add[].url must be an http(s) base URL without a trailing slash, got {_show(url)}")
    for node_id in remove:
        _check_node_id("params.remove[]", node_id)


def _check_node_id(name: str, value: Any) -> None:
    if not isinstance(value, str) or not _HEX64.fullmatch(value):
        raise ProposalError(f"{name} must be 64 lowercase hex characters (a member's public key), got {_show(value)}")


def validate_code_upgrade_params(params: Any) -> None:
    """The params of a code_upgrade proposal: the module's identity, its source and its evidence."""
    if not isinstance(params, dict):
        raise ProposalError(f"proposal field 'params' must be a JSON object, got {type(params).__name__}")
    _check_keys("code_upgrade params", params, CODE_UPGRADE_KEYS)
    _check_str("params.component", params["component"], 200, non_empty=True, multiline=False)
    sha = params["wasm_sha256"]
    if not isinstance(sha, str) or not _HEX64.fullmatch(sha):
        raise ProposalError(f"params.wasm_sha256 must be 64 lowercase hex characters (the module's SHA-256), got {_show(sha)}")
    size = params["wasm_size"]
    if not _is_int(size) or not 1 <= size <= MAX_WASM_SIZE:
        raise ProposalError(f"params.wasm_size must be an integer in 1..{MAX_WASM_SIZE} (bytes), got {_show(size)}")
    if params["language"] not in CODE_LANGUAGES:
        raise ProposalError(f"params.language must be one of {', '.join(CODE_LANGUAGES)}, got {_show(params['language'])}")
    source = params["source"]
    if not isinstance(source, str):
        raise ProposalError(f"params.source must be a string (the program's source), got {type(source).__name__}")
    source_bytes = len(source.encode("utf-8", "surrogatepass"))
    if source_bytes > MAX_SOURCE_BYTES:
        raise ProposalError(f"params.source must be at most {MAX_SOURCE_BYTES} bytes of UTF-8, got {source_bytes}")
    if not isinstance(params["evidence"], dict):
        raise ProposalError(f"params.evidence must be a JSON object (an evidence record), got {type(params['evidence']).__name__}")
    if not _is_number(params["improvement_pct"]):
        raise ProposalError(f"params.improvement_pct must be a finite number (percent), got {_show(params['improvement_pct'])}")
    _check_str("params.issue", params["issue"], MAX_ISSUE_CHARS, multiline=False)


def validate_config_change_params(params: Any) -> None:
    """The params of a config_change proposal: {"changes": {key: JSON scalar, ...}, "issue": str (optional)}."""
    if not isinstance(params, dict):
        raise ProposalError(f"proposal field 'params' must be a JSON object, got {type(params).__name__}")
    # "issue" (optional) names the health issue a config remedy answers, so no second one is opened for it.
    _check_keys("config_change params", params, CONFIG_CHANGE_KEYS | ({"issue"} & params.keys()))
    if "issue" in params:
        _check_str("params.issue", params["issue"], 200, multiline=False)
    changes = params["changes"]
    if not isinstance(changes, dict) or not changes:
        raise ProposalError(f"params.changes must be a non-empty JSON object {{key: value}}, got {_show(changes)}")
    for key, value in changes.items():
        if not isinstance(key, str) or not key:
            raise ProposalError(f"params.changes keys must be non-empty strings (config keys), got {_show(key)}")
        if not (isinstance(value, (str, bool)) or _is_number(value)):
            raise ProposalError(
                f"params.changes[{key!r}] must be a JSON scalar (string, 64-bit integer, finite number or boolean), "
                f"got {_show(value)}"
            )


# ------------------------------------------------------------------------------------------ votes


def vote_body(proposal_id: str, choice: str, seq: int, reason: str = "") -> dict:
    """A validated vote body. seq orders one voter's votes: the highest counts (use time.time_ns())."""
    body = {"proposal_id": proposal_id, "choice": choice, "seq": seq, "reason": reason}
    validate_vote_body(body)
    return body


def validate_vote_body(body: Any) -> None:
    if not isinstance(body, dict):
        raise ProposalError(f"a vote body must be a JSON object, got {type(body).__name__}")
    _check_keys("vote body", body, VOTE_KEYS)
    proposal_id = body["proposal_id"]
    if not isinstance(proposal_id, str) or not _HEX64.fullmatch(proposal_id):
        raise ProposalError(f"vote field 'proposal_id' must be 64 lowercase hex characters (a proposal's id), got {_show(proposal_id)}")
    if not isinstance(body["choice"], str) or body["choice"] not in CHOICES:
        raise ProposalError(f"vote field 'choice' must be one of {', '.join(CHOICES)}, got {_show(body['choice'])}")
    seq = body["seq"]
    if not _is_int(seq) or not 0 <= seq < MAX_SEQ:
        raise ProposalError(f"vote field 'seq' must be an integer in 0..2^63-1 (the voter's time_ns), got {_show(seq)}")
    _check_str("vote field 'reason'", body["reason"], MAX_REASON_CHARS, multiline=True)
