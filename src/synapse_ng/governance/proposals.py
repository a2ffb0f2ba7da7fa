"""The message models of governance: one pydantic model per body (a proposal with its config_change,
code_upgrade or membership_change params, a vote), and the field types they are made of. The node's
HTTP API builds its request bodies from the same field types, so a title, a description, a reason, a
member or a set of changes has one set of limits whether it arrives from an operator or through gossip.

    proposal_body(...) / vote_body(...)           a validated body, ready to sign
    validate_proposal_body(body, now=, rules=)    ProposalError naming the field and what was expected
    validate_vote_body(body)

A body travels inside a signed envelope, so the signature says who wrote it, never that it makes sense.
Every node therefore validates every body it receives with the same strict rules: exact keys, exact
types (a JSON ``true`` is not the integer 1 here), bounded sizes, and the field's name plus what was
expected in every message, so a refused proposal tells its author what to fix. Each field type is a
plain validator over the JSON value as sent (no coercion), raising ProposalError with that message.

The limits where the API and gossip once differed: titles 300 characters and descriptions 100,000 (the
larger: a test pins the 300 in the refusal, and gossip accepts descriptions of 20,000 characters); a
component name 64 characters and a member's URL scheme://host[:port] only (the stricter, which every real
member address meets). An operator's code upgrade must carry a source; a gossiped one may be empty (its
voters then refuse it).
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, PlainValidator, ValidationError, ValidationInfo, model_validator

from ..errors import InvalidInput
from ..json_bounds import HEX64, MAX_INT, MAX_REASON_CHARS, MIN_INT, find_breach
from ..text import show_value

PROPOSAL_TYPES = ("config_change", "code_upgrade", "membership_change")
CHOICES = {"yes": 0, "no": 1, "abstain": 2}
CODE_LANGUAGES = ("rust", "c", "wat")

MAX_THRESHOLD = 65535  # raft_consensus's bound on num and den
MAX_WASM_SIZE = 16 * 1024 * 1024
MAX_SOURCE_BYTES = 200_000
MAX_TITLE_CHARS = 300
MAX_DESCRIPTION_CHARS = 100_000
MAX_ISSUE_CHARS = 100_000
MAX_CONFIG_ISSUE_CHARS = 200
MAX_COMPONENT_CHARS = 64
MAX_URL_CHARS = 200
MAX_MEMBERSHIP_CHANGES = 16
MAX_CONTRIBUTORS = 8  # the islands of a collaborative evolution (collaboration.messages.MAX_ISLANDS)
MAX_SEQ = 2**63  # exclusive: seq is the voter's time_ns, which fits an i64
MAX_BODY_DEPTH = 32  # levels of objects/arrays in a body, the body itself level 1 (the envelope's bound)

PROPOSAL_KEYS = frozenset({"type", "title", "description", "params", "deadline", "quorum", "threshold"})
CODE_UPGRADE_KEYS = frozenset(
    {"component", "wasm_sha256", "wasm_size", "language", "source", "evidence", "improvement_pct", "issue"}
)
CONFIG_CHANGE_KEYS = frozenset({"changes"})
VOTE_KEYS = frozenset({"proposal_id", "choice", "seq", "reason"})


class ProposalError(InvalidInput):
    """A proposal or vote body (or the rules) that cannot be accepted; the message names the field."""


# ------------------------------------------------------------------------------------------ rules


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    """A finite float or an integer that fits 64 bits (math.isfinite(10**400) raises OverflowError)."""
    if _is_int(value):
        return MIN_INT <= value <= MAX_INT
    return isinstance(value, float) and math.isfinite(value)


def _check_threshold(name: str, value: Any) -> tuple[int, int]:
    if not isinstance(value, (list, tuple)) or len(value) != 2 or not all(_is_int(v) for v in value):
        raise ProposalError(f"{name} must be [num, den], two integers, got {show_value(value)}")
    num, den = value
    if not 0 < num <= den <= MAX_THRESHOLD:
        raise ProposalError(f"{name} must satisfy 0 < num <= den <= {MAX_THRESHOLD}, got {num}/{den}")
    return num, den


def _check_quorum(name: str, value: Any) -> None:
    if not _is_number(value) or not 0 < value <= 1:
        raise ProposalError(
            f"{name} must be a number in (0, 1], the fraction of members whose votes are needed, "
            f"got {show_value(value)}"
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
        object.__setattr__(
            self,
            "config_threshold",
            _check_threshold("GovernanceRules.config_threshold", self.config_threshold),
        )
        object.__setattr__(
            self, "code_threshold", _check_threshold("GovernanceRules.code_threshold", self.code_threshold)
        )
        for name in ("deadline_s", "grace_s", "max_deadline_s"):
            value = getattr(self, name)
            if not _is_number(value) or value < 0 or (value == 0 and name != "grace_s"):
                need = "a finite number >= 0" if name == "grace_s" else "a finite number > 0"
                raise ProposalError(
                    f"GovernanceRules.{name} must be {need} (seconds), got {show_value(value)}"
                )
        if self.deadline_s > self.max_deadline_s:
            raise ProposalError(
                f"GovernanceRules.deadline_s ({self.deadline_s:g} s) exceeds "
                f"max_deadline_s ({self.max_deadline_s:g} s): "
                "raise max_deadline_s or shorten the deadline"
            )

    def threshold_for(self, proposal_type: str) -> tuple[int, int]:
        if proposal_type == "config_change":
            return self.config_threshold
        if proposal_type in ("code_upgrade", "membership_change"):  # who may govern weighs like code
            return self.code_threshold
        raise ProposalError(
            f"proposal type must be one of {', '.join(PROPOSAL_TYPES)}, got {show_value(proposal_type)}"
        )


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
        raise ProposalError(
            f"{name}: {'; '.join(parts)}; expected exactly the keys {', '.join(sorted(expected))}"
        )


def _check_str(
    name: str, value: Any, max_chars: int, non_empty: bool = False, *, multiline: bool | None = None
) -> str:
    """With `multiline` (True, or False for one line) the string must also be text: see text_problem."""
    if not isinstance(value, str):
        raise ProposalError(f"{name} must be a string, got {type(value).__name__} {show_value(value)}")
    if non_empty and not value.strip():
        raise ProposalError(f"{name} must be a non-empty string")
    if len(value) > max_chars:
        raise ProposalError(f"{name} must be at most {max_chars} characters, got {len(value)}")
    problem = None if multiline is None else text_problem(value, multiline)
    if problem is not None:
        raise ProposalError(f"{name} {problem}; remove it (readable_text() replaces such characters)")
    return value


def _check_tree(body: dict) -> None:
    """Every integer anywhere in the body (the evidence too) fits 64 bits and nothing nests deeper than
    MAX_BODY_DEPTH levels: what the envelope would refuse, refused here with the field's name."""
    breach = find_breach(body, MAX_BODY_DEPTH)
    if breach is None:
        return
    what = {
        "integer": f"must fit a signed 64-bit integer (-2^63..2^63-1), got {show_value(breach.value)}",
        "key": f"has a key {show_value(breach.value)} that is not a string",
    }.get(breach.kind, f"nests deeper than {MAX_BODY_DEPTH} levels; flatten it")
    raise ProposalError(f"proposal field '{breach.where}' {what}")


def _check_hex64(name: str, value: Any, what: str) -> str:
    if not isinstance(value, str) or not HEX64.fullmatch(value):
        raise ProposalError(f"{name} must be 64 lowercase hex characters ({what}), got {show_value(value)}")
    return value


def _one_of(name: str, value: Any, allowed) -> Any:
    if not isinstance(value, str) or value not in allowed:
        raise ProposalError(f"{name} must be one of {', '.join(allowed)}, got {show_value(value)}")
    return value


def _finite(name: str, value: Any, what: str) -> float:
    if not _is_number(value):
        raise ProposalError(f"{name} must be a finite number ({what}), got {show_value(value)}")
    return value


def _json_object(name: str, value: Any, what: str = "") -> dict:
    if not isinstance(value, dict):
        raise ProposalError(f"{name} must be a JSON object{what}, got {type(value).__name__}")
    return value


def _field(check) -> PlainValidator:
    """A field type's check: the JSON value as sent (no coercion), a ProposalError naming the field."""
    return PlainValidator(check, json_schema_input_type=Any)


# ------------------------------------------------------------------------------------------ field types
# One definition per field: the message models below and the node's API request bodies use these.


def _source(value: Any, non_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise ProposalError(
            f"params.source must be a string (the program's source), got {type(value).__name__}"
        )
    if non_empty and not value.strip():
        raise ProposalError(
            "params.source must be a non-empty string: "
            "the source every voter rebuilds to the module's SHA-256"
        )
    size = len(value.encode("utf-8", "surrogatepass"))
    if size > MAX_SOURCE_BYTES:
        raise ProposalError(f"params.source must be at most {MAX_SOURCE_BYTES} bytes of UTF-8, got {size}")
    return value


def _changes(changes: Any) -> dict:
    if not isinstance(changes, dict) or not changes:
        raise ProposalError(
            f"params.changes must be a non-empty JSON object {{key: value}}, got {show_value(changes)}"
        )
    for key, value in changes.items():
        if not isinstance(key, str) or not key:
            raise ProposalError(
                f"params.changes keys must be non-empty strings (config keys), got {show_value(key)}"
            )
        if not (isinstance(value, (str, bool)) or _is_number(value)):
            raise ProposalError(
                f"params.changes[{key!r}] must be a JSON scalar "
                f"(string, 64-bit integer, finite number or boolean), got {show_value(value)}"
            )
    return changes


def _member_url(url: Any) -> str:
    host = url[url.find("://") + 3 :] if isinstance(url, str) else ""
    if (
        not isinstance(url, str)
        or not url.startswith(("http://", "https://"))
        or len(url) > MAX_URL_CHARS
        or not host
        or any(c.isspace() or c == "/" for c in host)
    ):
        raise ProposalError(
            "params.add[].url must be an http(s) base URL, "
            "scheme://host[:port] with no path or trailing slash, "
            f"at most {MAX_URL_CHARS} characters, got {show_value(url)}"
        )
    return url


def _int_in(name: str, low: int, high: int, what: str) -> PlainValidator:
    def check(value: Any) -> int:
        if not _is_int(value) or not low <= value <= high:
            raise ProposalError(f"{name} must be an integer in {what}, got {show_value(value)}")
        return value

    return _field(check)


def _text(name: str, max_chars: int, non_empty: bool = False, multiline: bool = True) -> PlainValidator:
    return _field(lambda v: _check_str(name, v, max_chars, non_empty, multiline=multiline))


def _hex64(name: str, what: str) -> PlainValidator:
    return _field(lambda v: _check_hex64(name, v, what))


def _contributors(value: Any) -> list[str]:
    if not isinstance(value, list) or len(value) > MAX_CONTRIBUTORS:
        raise ProposalError(
            f"params.contributors must be a list of at most {MAX_CONTRIBUTORS} node ids, "
            f"got {show_value(value)}"
        )
    for node_id in value:
        _check_hex64("each of params.contributors", node_id, "a member's public key")
    return value


def _upgrade_title(value: Any) -> str:
    return (
        value
        if value == ""
        else _check_str("proposal field 'title'", value, MAX_TITLE_CHARS, True, multiline=False)
    )


ProposalType = Annotated[str, _field(lambda v: _one_of("proposal field 'type'", v, PROPOSAL_TYPES))]
Title = Annotated[str, _text("proposal field 'title'", MAX_TITLE_CHARS, non_empty=True, multiline=False)]
# An operator's code upgrade may leave its title empty: the node then names it "upgrade <component>".
UpgradeTitle = Annotated[str, _field(_upgrade_title)]
Description = Annotated[str, _text("proposal field 'description'", MAX_DESCRIPTION_CHARS)]
Deadline = Annotated[float, _field(lambda v: _finite("proposal field 'deadline'", v, "unix seconds"))]
Quorum = Annotated[float, _field(lambda v: _check_quorum("proposal field 'quorum'", v) or v)]
Threshold = Annotated[list[int], _field(lambda v: _check_threshold("proposal field 'threshold'", v) and v)]
Changes = Annotated[dict[str, Any], _field(_changes)]
# Optional: absent is None, but a JSON null is refused (the check runs on any value sent, None included).
ConfigIssue = Annotated[str | None, _text("params.issue", MAX_CONFIG_ISSUE_CHARS, multiline=False)]
Component = Annotated[str, _text("params.component", MAX_COMPONENT_CHARS, non_empty=True, multiline=False)]
Sha256 = Annotated[str, _hex64("params.wasm_sha256", "the module's SHA-256")]
WasmSize = Annotated[int, _int_in("params.wasm_size", 1, MAX_WASM_SIZE, f"1..{MAX_WASM_SIZE} (bytes)")]
Language = Annotated[
    Literal["rust", "c", "wat"], _field(lambda v: _one_of("params.language", v, CODE_LANGUAGES))
]
Source = Annotated[str, _field(_source)]
RequiredSource = Annotated[str, _field(lambda v: _source(v, non_empty=True))]
Evidence = Annotated[
    dict[str, Any], _field(lambda v: _json_object("params.evidence", v, " (an evidence record)"))
]
Improvement = Annotated[float, _field(lambda v: _finite("params.improvement_pct", v, "percent"))]
Issue = Annotated[str, _text("params.issue", MAX_ISSUE_CHARS, multiline=False)]
NodeId = Annotated[str, _hex64("a member's node_id", "a member's public key")]
EvolutionId = Annotated[str | None, _hex64("params.evolution", "the evolution message's id")]
Contributors = Annotated[list[str] | None, _field(_contributors)]
MemberUrl = Annotated[str, _field(_member_url)]
ProposalId = Annotated[str, _hex64("vote field 'proposal_id'", "a proposal's id")]
Choice = Annotated[
    Literal["yes", "no", "abstain"], _field(lambda v: _one_of("vote field 'choice'", v, tuple(CHOICES)))
]
Seq = Annotated[int, _int_in("vote field 'seq'", 0, MAX_SEQ - 1, "0..2^63-1 (the voter's time_ns)")]
Reason = Annotated[str, _text("vote field 'reason'", MAX_REASON_CHARS)]


# ------------------------------------------------------------------------------------------ message models


class _Body(BaseModel):
    """A body as signed: exact keys (one message naming the missing and the unknown), values as sent."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: ClassVar[str] = "body"
    keys: ClassVar[frozenset[str]] = frozenset()
    optional: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="before")
    @classmethod
    def _exact_keys(cls, data: Any) -> Any:
        _json_object(cls.name, data)
        _check_keys(cls.name, data, cls.keys | (cls.optional & data.keys()))
        cls._check_whole(data)
        return data

    @classmethod
    def _check_whole(cls, data: dict) -> None:
        """What a body checks as a whole once its keys are right (nothing, unless a model says)."""


class ConfigChangeParams(_Body):
    """{"changes": {key: JSON scalar}, "issue": the health issue a config remedy answers (optional)}."""

    name = "config_change params"
    keys = CONFIG_CHANGE_KEYS
    optional = frozenset({"issue"})
    changes: Changes
    issue: ConfigIssue = None  # absent, or a string (a JSON null is refused)


class CodeUpgradeParams(_Body):
    """The params of a code_upgrade: the module's identity, its source and its evidence; from a
    collaborative evolution, also its id and the islands that took part (node/islands.py)."""

    name = "code_upgrade params"
    keys = CODE_UPGRADE_KEYS
    optional = frozenset({"evolution", "contributors"})
    component: Component
    wasm_sha256: Sha256
    wasm_size: WasmSize
    language: Language
    source: Source
    evidence: Evidence
    improvement_pct: Improvement
    issue: Issue
    evolution: EvolutionId = None
    contributors: Contributors = None


class NewMember(_Body):
    """A member to add: its key pinned to its address."""

    name = "each of params.add"
    keys = frozenset({"node_id", "url"})
    node_id: NodeId
    url: MemberUrl


class MembershipChangeParams(BaseModel):
    """{"add": [{"node_id", "url"}...], "remove": [node_id...]}: at least one change,
    at most MAX_MEMBERSHIP_CHANGES."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    add: list[NewMember] = []
    remove: list[NodeId] = []

    @model_validator(mode="before")
    @classmethod
    def _shape(cls, params: Any) -> Any:
        if not isinstance(params, dict) or not params or not set(params) <= {"add", "remove"}:
            raise ProposalError(
                'membership_change params must be {"add": [{"node_id", "url"}], "remove": [node_id]} '
                "(either or both)"
            )
        add, remove = params.get("add", []), params.get("remove", [])
        if (
            not isinstance(add, list)
            or not isinstance(remove, list)
            or not 1 <= len(add) + len(remove) <= MAX_MEMBERSHIP_CHANGES
        ):
            raise ProposalError(
                "membership_change params: 'add' and 'remove' are lists "
                f"with 1..{MAX_MEMBERSHIP_CHANGES} changes in all"
            )
        return params


PARAMS: dict[str, type[BaseModel]] = {
    "config_change": ConfigChangeParams,
    "code_upgrade": CodeUpgradeParams,
    "membership_change": MembershipChangeParams,
}


class ProposalBody(_Body):
    """A proposal. With `now` in the validation context, its deadline must also lie at most the rules'
    max_deadline_s ahead (the default rules' bound when the context has no `rules`)."""

    name = "proposal body"
    keys = PROPOSAL_KEYS
    type: ProposalType
    title: Title
    description: Description
    quorum: Quorum
    threshold: Threshold
    deadline: Deadline
    params: Annotated[dict[str, Any], _field(lambda v: _json_object("proposal field 'params'", v))]

    @classmethod
    def _check_whole(cls, data: dict) -> None:
        """What the envelope would refuse, refused before any field, with the field's name."""
        _check_tree(data)

    @model_validator(mode="after")
    def _horizon_and_params(self, info: ValidationInfo) -> ProposalBody:
        now = (info.context or {}).get("now")
        if now is not None:
            horizon = ((info.context or {}).get("rules") or GovernanceRules()).max_deadline_s
            if self.deadline > now + horizon:
                raise ProposalError(
                    f"proposal field 'deadline' is {self.deadline - now:.0f} s away; "
                    f"at most {horizon:g} s ahead is accepted"
                )
        _validated(PARAMS[self.type], self.params)
        return self


class VoteBody(_Body):
    """A vote: seq orders one voter's votes, the highest counts."""

    name = "vote body"
    keys = VOTE_KEYS
    proposal_id: ProposalId
    choice: Choice
    seq: Seq
    reason: Reason


def _validated(model: type[BaseModel], data: Any, context: dict | None = None) -> BaseModel:
    """`data` as `model`, or the ProposalError of its first problem
    (fields in the order the model lists them)."""
    try:
        return model.model_validate(data, context=context)
    except ValidationError as error:
        raise first_problem(error) from None


def first_problem(error: ValidationError) -> ProposalError:
    """The ProposalError a field type raised, or one naming the field pydantic itself refused."""
    first = error.errors()[0]
    raised = (first.get("ctx") or {}).get("error")
    if isinstance(raised, ProposalError):
        return raised
    where = ".".join(str(part) for part in first.get("loc", ())) or "body"
    return ProposalError(f"{where}: {first.get('msg')}")


# ------------------------------------------------------------------------------------------ checks


def validate_proposal_body(
    body: Any, *, now: float | None = None, rules: GovernanceRules | None = None
) -> None:
    """Raise ProposalError unless body is a well-formed proposal. With `now`, the deadline must also lie
    at most rules.max_deadline_s ahead (the default rules' bound when rules is None)."""
    if not isinstance(body, dict):
        raise ProposalError(f"a proposal body must be a JSON object, got {type(body).__name__}")
    _validated(ProposalBody, body, {"now": now, "rules": rules})


def validate_membership_change_params(params: Any) -> None:
    _validated(MembershipChangeParams, params)


def validate_code_upgrade_params(params: Any) -> None:
    _validated(CodeUpgradeParams, _json_object("proposal field 'params'", params))


def validate_config_change_params(params: Any) -> None:
    _validated(ConfigChangeParams, _json_object("proposal field 'params'", params))


def vote_body(proposal_id: str, choice: str, seq: int, reason: str = "") -> dict:
    """A validated vote body. seq orders one voter's votes: the highest counts (use time.time_ns())."""
    body = {"proposal_id": proposal_id, "choice": choice, "seq": seq, "reason": reason}
    validate_vote_body(body)
    return body


def validate_vote_body(body: Any) -> None:
    if not isinstance(body, dict):
        raise ProposalError(f"a vote body must be a JSON object, got {type(body).__name__}")
    _validated(VoteBody, body)
