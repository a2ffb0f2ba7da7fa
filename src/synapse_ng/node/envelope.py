"""The signed envelope every replicated fact travels in (event sourcing: the state IS a set of these).

    env = sign_envelope(identity, "vote", {"proposal_id": ..., "choice": "yes", ...})
    env.id                       sha256 hex of env.signing_bytes(): the message id
    wire = env.to_dict()         {"kind", "body", "author", "created_at", "signature"}
    env = Envelope.from_dict(wire)   strict: EnvelopeError naming the bad field
    verify_envelope(env)         SignatureError unless `author` signed exactly these bytes
    json_text_problem(raw)       why JSON text must be refused before it is parsed (too deep, ...) or None

What is signed is the canonical JSON of {"kind", "body", "author", "created_at"} (sorted keys, no
spaces, UTF-8, no NaN). Because the id is the hash of those bytes and ed25519 signatures are
deterministic, the same message always has the same id however its JSON was ordered on the wire, so a
replayed message is recognised and never counted twice. The signature is not part of the id.

Envelopes are checked structurally when they are built (from_dict or the constructor); the signature is
checked separately by verify_envelope, because a store may hold envelopes whose signatures it has
already verified. The body is copied (through canonical JSON) on construction: treat `env.body` as
read-only, it is what the author signed.

Everything a peer can put in a message is bounded here, so no later step (SQLite, float arithmetic,
json, recursive encoders) can fail on it: integers fit a signed 64-bit integer, a body nests at most
MAX_BODY_DEPTH levels, created_at is positive unix seconds before the year 10000.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from dataclasses import dataclass
from itertools import accumulate
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInput
from ..json_bounds import HEX64, HEX128, describe_int, find_breach
from ..text import show_value
from .identity import verify_signature

if TYPE_CHECKING:
    from .identity import Identity

KINDS = ("proposal", "vote", "stage_report", "rollback", "evolution", "migrant")
FIELDS = ("kind", "body", "author", "created_at", "signature")
MAX_BODY_BYTES = 4 * 1024 * 1024  # canonical JSON of the body; a code_upgrade carries its source
MAX_JSON_DEPTH = 64  # levels of nested objects/arrays in anything canonical_json encodes
MAX_BODY_DEPTH = 32  # in a body (the body itself is level 1): far below Python's recursion limit
MAX_CREATED_AT = 253_402_300_799  # 9999-12-31T23:59:59Z in unix seconds
MAX_NUMBER_DIGITS = 4300  # Python's json cannot read an integer with more digits (sys.int_info)


class EnvelopeError(InvalidInput):
    """An envelope (or a body) that is not well-formed; the message names the field."""


class SignatureError(EnvelopeError):
    """A well-formed envelope whose signature does not verify: altered in transit, or forged."""


def canonical_json(obj: Any, *, max_depth: int = MAX_JSON_DEPTH) -> bytes:
    """The one byte form of a JSON value that signatures and ids are computed over.

    Dict keys must be strings (json would silently turn 1 into "1", so {1: a, "1": b} would sign two
    equal keys); NaN, infinities, non-JSON types, unencodable strings (lone surrogates), integers
    outside the signed 64-bit range and nesting deeper than `max_depth` levels are refused.
    """
    _check_tree(obj, max_depth)
    try:
        text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise EnvelopeError(f"not canonical JSON: a string is not valid UTF-8 ({exc.reason})") from None
    except ValueError as exc:  # NaN / infinity, circular reference, an int over Python's digit limit
        hint = " (NaN and infinities have no JSON form; send null or a string)" if "float" in str(exc) else ""
        raise EnvelopeError(f"not canonical JSON: {exc}{hint}") from None
    except TypeError as exc:  # a set, bytes, an object, ...
        raise EnvelopeError(
            f"not canonical JSON: {exc}; use only dicts, lists, str, int, float, bool, None"
        ) from None
    except RecursionError:
        raise EnvelopeError("not canonical JSON: nested too deeply") from None


def _check_tree(obj: Any, max_depth: int) -> None:
    """String keys, 64-bit integers, depth (json_bounds: one iterative walk)."""
    breach = find_breach(obj, max_depth)
    if breach is None:
        return
    if breach.kind == "integer":
        raise EnvelopeError(
            f"not canonical JSON: the integer at {breach.where} ({describe_int(breach.value)}) "
            "is outside the "
            f"signed 64-bit range -2^63..2^63-1; send a larger number as a string"
        )
    if breach.kind == "key":
        raise EnvelopeError(
            f"not canonical JSON: dict key {breach.value!r} is a {type(breach.value).__name__}; "
            "keys must be strings"
        )
    if breach.kind == "cycle":
        raise EnvelopeError(f"not canonical JSON: Circular reference at {breach.where}")
    raise EnvelopeError(
        f"not canonical JSON: nested deeper than {max_depth} levels (at {breach.where}); "
        "flatten the structure"
    )


_KEEP_STRUCTURE = bytes(b for b in range(256) if b not in b'"[]{}')  # translate() deletes these
_BRACKET_STEP = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")  # +1 / -1 as signed bytes
_LONG_NUMBER = re.compile(rb"[0-9]{%d,}" % (MAX_NUMBER_DIGITS + 1))


def _unescaped(raw: bytes) -> bytes:
    """`raw` without its escape pairs (two backslashes, then backslash-quote): every quote left opens or
    closes a string. Exact for valid JSON, where backslashes occur only in strings (a parser stops at
    the first one elsewhere)."""
    return raw.replace(b"\\\\", b"").replace(b'\\"', b"")


def json_text_problem(raw: bytes, max_depth: int = MAX_JSON_DEPTH) -> str | None:
    """Why a JSON request body must be refused before it is parsed, or None: not UTF-8, nesting deeper
    than `max_depth` levels (a parser recurses, and raises RecursionError far down), or a number longer
    than MAX_NUMBER_DIGITS digits (Python's json raises ValueError on such an integer).

    No recursion and no loop per byte: bytes methods cut the strings out, then the brackets left are
    summed. Brackets and digits inside strings do not count."""
    if not raw:
        return None
    if json.detect_encoding(raw) not in ("utf-8", "utf-8-sig"):
        # In UTF-16/32 a character's bytes can look like quotes and brackets: only UTF-8 scans exactly.
        return "JSON text must be UTF-8 (RFC 8259)"
    if raw.count(b"[") + raw.count(b"{") > max_depth:  # else it cannot nest that deep
        view = _unescaped(raw).translate(None, _KEEP_STRUCTURE)
        # Two adjacent quotes are an empty string or a gap without brackets between two strings: dropping
        # them keeps every bracket on its side and leaves no adjacent quotes (a string of quotes costs
        # nothing).
        outside = b"".join(view.replace(b'""', b"").split(b'"')[::2])
        if outside and max(accumulate(memoryview(outside.translate(_BRACKET_STEP)).cast("b"))) > max_depth:
            return f"JSON nested deeper than {max_depth} levels"
    inside, start = False, 0
    for match in _LONG_NUMBER.finditer(raw):
        # The digits hold no quote or backslash, so counting the quotes between runs is exact.
        inside ^= _unescaped(raw[start : match.start()]).count(b'"') % 2 == 1
        if not inside:
            return f"JSON number longer than {MAX_NUMBER_DIGITS} digits"
        start = match.end()
    return None


def _checked_body(body: Any) -> tuple[dict, bytes]:
    """The body as a fresh JSON dict plus its canonical bytes; EnvelopeError naming `body` otherwise."""
    if not isinstance(body, dict):
        raise EnvelopeError(f"field 'body' must be a JSON object, got {type(body).__name__}")
    try:
        raw = canonical_json(body, max_depth=MAX_BODY_DEPTH)
    except EnvelopeError as exc:
        raise EnvelopeError(f"field 'body': {exc}") from None
    if len(raw) > MAX_BODY_BYTES:
        raise EnvelopeError(
            f"field 'body' is {len(raw)} bytes of canonical JSON, over the limit of {MAX_BODY_BYTES}; "
            f"send large artifacts separately (by sha256) and reference them"
        )
    return json.loads(raw), raw


def _check_kind(kind: Any) -> None:
    if not isinstance(kind, str) or kind not in KINDS:
        raise EnvelopeError(f"field 'kind' must be one of {', '.join(KINDS)}; got {show_value(kind)}")


def _check_author(author: Any) -> None:
    if not isinstance(author, str) or not HEX64.fullmatch(author):
        raise EnvelopeError(
            "field 'author' must be 64 lowercase hex chars (the author's ed25519 public key), "
            f"got {show_value(author)}"
        )


def _check_created_at(created_at: Any) -> None:
    if isinstance(created_at, bool) or not isinstance(created_at, (int, float)):
        raise EnvelopeError(
            "field 'created_at' must be a number (unix seconds), "
            f"got {type(created_at).__name__} {show_value(created_at)}"
        )
    if isinstance(created_at, float) and not math.isfinite(created_at):  # math.isfinite(10**400) would raise
        raise EnvelopeError(f"field 'created_at' must be a finite number (unix seconds), got {created_at!r}")
    if not 0 < created_at <= MAX_CREATED_AT:
        shown = describe_int(created_at) if isinstance(created_at, int) else repr(created_at)
        raise EnvelopeError(
            f"field 'created_at' must be unix seconds in (0, {MAX_CREATED_AT}] "
            "(after 1970, before the year 10000), "
            f"got {shown}"
        )


def _check_signature(signature: Any) -> None:
    if not isinstance(signature, str) or not HEX128.fullmatch(signature):
        raise EnvelopeError(
            "field 'signature' must be 128 lowercase hex chars (an ed25519 signature), "
            f"got {show_value(signature)}"
        )


def _signing_bytes(kind: str, body: dict, author: str, created_at: float) -> bytes:
    return canonical_json({"kind": kind, "body": body, "author": author, "created_at": created_at})


@dataclass(frozen=True, repr=False, eq=False)
class Envelope:
    """One signed message. Well-formed by construction; see verify_envelope for the signature."""

    kind: str  # "proposal" | "vote" | "stage_report" | "rollback" | "evolution" | "migrant"
    body: dict  # JSON object, kind-specific (validated by governance / upgrade)
    author: str  # hex ed25519 public key == node id
    created_at: float  # unix seconds, set by the author (an int stays an int: it is what was signed)
    signature: str  # hex ed25519 signature over signing_bytes()

    def __post_init__(self) -> None:
        _check_kind(self.kind)
        body, _ = _checked_body(self.body)
        _check_author(self.author)
        _check_created_at(self.created_at)
        _check_signature(self.signature)
        object.__setattr__(self, "body", body)

    def signing_bytes(self) -> bytes:
        """Canonical JSON of {"kind", "body", "author", "created_at"}: what the signature covers."""
        return _signing_bytes(self.kind, self.body, self.author, self.created_at)

    @property
    def id(self) -> str:
        """The message id: sha256 hex of signing_bytes(). Equal for a replayed message."""
        return hashlib.sha256(self.signing_bytes()).hexdigest()

    def to_dict(self) -> dict:
        """The wire form (JSON-ready); the id is not sent, every receiver computes it."""
        return {
            "kind": self.kind,
            "body": json.loads(canonical_json(self.body)),
            "author": self.author,
            "created_at": self.created_at,
            "signature": self.signature,
        }

    @classmethod
    def from_dict(cls, data: Any) -> Envelope:
        """Parse the wire form strictly: exactly the five fields, each well-formed (EnvelopeError
        otherwise)."""
        if not isinstance(data, dict):
            raise EnvelopeError(f"an envelope must be a JSON object, got {type(data).__name__}")
        unknown = sorted(str(key) for key in data if key not in FIELDS)
        if unknown:
            raise EnvelopeError(
                f"unknown field(s) {', '.join(repr(k) for k in unknown)} in envelope; "
                f"an envelope has exactly {', '.join(FIELDS)}"
            )
        missing = [key for key in FIELDS if key not in data]
        if missing:
            raise EnvelopeError(f"missing field(s) {', '.join(repr(k) for k in missing)} in envelope")
        return cls(
            kind=data["kind"],
            body=data["body"],
            author=data["author"],
            created_at=data["created_at"],
            signature=data["signature"],
        )

    def __eq__(self, other: object) -> bool:
        """Equal iff the same signed bytes and signature (1 == 1.0 in Python, not in a signature)."""
        if not isinstance(other, Envelope):
            return NotImplemented
        return self.signature == other.signature and self.signing_bytes() == other.signing_bytes()

    def __hash__(self) -> int:
        return hash((self.id, self.signature))

    def __repr__(self) -> str:  # never the body: a code_upgrade's can be megabytes
        return (
            f"Envelope(kind={self.kind!r}, id={self.id[:12]!r}, author={self.author[:12]!r}, "
            f"created_at={self.created_at!r})"
        )


def sign_envelope(identity: Identity, kind: str, body: dict, created_at: float | None = None) -> Envelope:
    """A new envelope authored and signed by `identity` (created_at defaults to now)."""
    _check_kind(kind)
    body, _ = _checked_body(body)
    if created_at is None:
        created_at = time.time()
    _check_created_at(created_at)
    signature = identity.sign(_signing_bytes(kind, body, identity.node_id, created_at))
    return Envelope(kind=kind, body=body, author=identity.node_id, created_at=created_at, signature=signature)


def verify_envelope(env: Envelope) -> None:
    """Raise SignatureError unless env.signature is env.author's signature of env.signing_bytes()."""
    if not verify_signature(env.author, env.signing_bytes(), env.signature):
        raise SignatureError(
            f"bad signature on {env.kind} {env.id[:12]} by {env.author[:12]}: it is not that author's "
            f"signature of this message (altered in transit, or forged); drop the message"
        )
