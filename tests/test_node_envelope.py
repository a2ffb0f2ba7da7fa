"""Node identities and signed envelopes with real ed25519 keys and real key files: creation (0600,
atomic, one winner among racing processes), refusal of unsafe or corrupt keys, canonical bytes, ids
that survive reordering and replay, strict parsing, and tamper detection down to a single byte."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import multiprocessing
import os
import stat

import pytest

from synapse_ng.node.envelope import (
    KINDS,
    MAX_BODY_BYTES,
    Envelope,
    EnvelopeError,
    SignatureError,
    canonical_json,
    sign_envelope,
    verify_envelope,
)
from synapse_ng.node.identity import Identity, IdentityError, verify_signature

VOTE_BODY = {"proposal_id": "ab" * 32, "choice": "yes", "seq": 17, "reason": "measured 12% faster"}


@pytest.fixture(scope="module")
def alice() -> Identity:
    return Identity.generate()


@pytest.fixture(scope="module")
def bob() -> Identity:
    return Identity.generate()


@pytest.fixture()
def vote(alice) -> Envelope:
    return sign_envelope(alice, "vote", VOTE_BODY, created_at=1_700_000_000.25)


# ---------------------------------------------------------------------------------------------- identity


def test_key_file_is_created_0600_and_reused(tmp_path):
    path = tmp_path / "keys" / "node.key"  # the parent does not exist yet
    first = Identity.load_or_create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert len(text) == 65 and text.endswith("\n") and all(c in "0123456789abcdef" for c in text[:64])
    second = Identity.load_or_create(path)
    assert second.node_id == first.node_id
    assert len(first.node_id) == 64 and first.node_id == first.node_id.lower()
    assert path.read_text() == text  # loading never rewrites the key
    assert sorted(p.name for p in path.parent.iterdir()) == ["node.key"]  # no temp file left behind
    # Same key, same signatures: the loaded identity really is the created one.
    assert second.sign(b"x") == first.sign(b"x")


def test_key_file_created_0600_even_under_a_permissive_umask(tmp_path):
    old = os.umask(0)
    try:
        Identity.load_or_create(tmp_path / "node.key")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "node.key").stat().st_mode) == 0o600


def test_key_without_trailing_newline_and_uppercase_hex_load(tmp_path):
    seed_hex = "0f" * 32
    path = tmp_path / "node.key"
    path.write_text(seed_hex.upper())
    path.chmod(0o600)
    a = Identity.load_or_create(path)
    path.write_text(seed_hex + "\n")
    assert Identity.load_or_create(path).node_id == a.node_id


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644, 0o700 | 0o010])
def test_key_readable_by_others_is_refused_with_a_chmod_hint(tmp_path, mode):
    path = tmp_path / "node.key"
    Identity.load_or_create(path)
    before = path.read_text()
    path.chmod(mode)
    with pytest.raises(IdentityError, match=r"chmod 600 .*node\.key") as info:
        Identity.load_or_create(path)
    assert f"{mode:04o}" in str(info.value)
    assert path.read_text() == before  # refused, not replaced by a new identity
    path.chmod(0o600)
    Identity.load_or_create(path)


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"\n",
        b"ab" * 31 + b"\n",  # 62 hex chars: too short
        b"ab" * 33 + b"\n",  # 66: too long
        b"ab" * 32 + b"\n\n",  # two newlines
        b" " + b"ab" * 32,  # leading space
        b"ab" * 31 + b"zz\n",  # not hex
        b"\xff" * 64,  # not text at all
        b"ab" * 32 + b"\n" + b"ab" * 32,  # two keys
    ],
)
def test_corrupt_key_is_refused(tmp_path, content):
    path = tmp_path / "node.key"
    path.write_bytes(content)
    path.chmod(0o600)
    with pytest.raises(IdentityError, match="corrupt.*64 hex chars"):
        Identity.load_or_create(path)
    assert path.read_bytes() == content  # never overwritten


def test_key_path_that_is_a_directory_is_refused(tmp_path):
    (tmp_path / "node.key").mkdir()
    with pytest.raises(IdentityError, match="is a directory"):
        Identity.load_or_create(tmp_path / "node.key")


def test_a_stray_temp_file_from_a_crashed_writer_does_not_become_the_key(tmp_path):
    # What a writer killed mid-write leaves: a half-written temp file, never a half-written key.
    stray = tmp_path / ".node.key.tmp-1234-deadbeef"
    stray.write_bytes(b"abab")
    identity = Identity.load_or_create(tmp_path / "node.key")
    assert Identity.load_or_create(tmp_path / "node.key").node_id == identity.node_id
    assert stray.read_bytes() == b"abab"


def test_losing_the_creation_race_keeps_the_winners_key(tmp_path):
    from synapse_ng.node.identity import create_secret_file

    path = tmp_path / "node.key"
    winner = Identity.load_or_create(path)
    assert create_secret_file(path, b"\x01" * 32) is False  # the link refuses to replace it
    assert Identity.load_or_create(path).node_id == winner.node_id
    assert sorted(p.name for p in tmp_path.iterdir()) == ["node.key"]


class _Created(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += record.getMessage().startswith("created a new node identity")


def _race_worker(directory: str, rounds: int, barrier, results) -> None:
    """One racing process: every round, all processes create the same key file at the same moment."""
    from pathlib import Path

    handler = _Created()
    log = logging.getLogger("synapse_ng.node.identity")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    out = []
    for i in range(rounds):
        barrier.wait(timeout=30)
        before = handler.count
        node_id = Identity.load_or_create(Path(directory) / f"node{i}.key").node_id
        out.append((node_id, handler.count - before))
    results.put(out)


def test_concurrent_creation_from_several_processes_ends_with_one_identity(tmp_path):
    processes, rounds = 3, 25
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(processes)
    results = ctx.Queue()
    workers = [
        ctx.Process(target=_race_worker, args=(str(tmp_path), rounds, barrier, results))
        for _ in range(processes)
    ]
    for w in workers:
        w.start()
    outs = [results.get(timeout=60) for _ in workers]
    for w in workers:
        w.join(timeout=30)
        assert w.exitcode == 0
    for i in range(rounds):
        ids = {out[i][0] for out in outs}
        assert len(ids) == 1, f"round {i}: processes hold different identities {ids}"
        assert sum(out[i][1] for out in outs) == 1, f"round {i}: not exactly one process created the key"
        assert Identity.load_or_create(tmp_path / f"node{i}.key").node_id == ids.pop()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"node{i}.key" for i in range(rounds))


def test_repr_never_shows_the_seed(tmp_path):
    path = tmp_path / "node.key"
    identity = Identity.load_or_create(path)
    seed = path.read_text().strip()
    for text in (repr(identity), str(identity), f"{identity}"):
        assert identity.node_id in text
        assert seed not in text


def test_sign_and_verify_round_trip(alice, bob):
    sig = alice.sign(b"hello")
    assert len(sig) == 128 and sig == sig.lower()
    assert verify_signature(alice.node_id, b"hello", sig)
    assert not verify_signature(alice.node_id, b"hellO", sig)
    assert not verify_signature(bob.node_id, b"hello", sig)
    assert alice.sign(b"hello") == sig  # ed25519 is deterministic


@pytest.mark.parametrize(
    "node_id, data, signature",
    [
        ("zz" * 32, b"hello", None),  # not hex
        ("ab" * 31, b"hello", None),  # 62 chars
        ("ab" * 33, b"hello", None),
        ("", b"hello", None),
        (b"\xab" * 32, b"hello", None),  # raw bytes instead of hex
        (None, "hello", None),  # data not bytes
        (None, b"hello", "zz" * 64),
        (None, b"hello", "ab" * 63),
        (None, b"hello", ""),
        (None, b"hello", 12345),
        ("ff" * 32, b"hello", None),  # 32 bytes that are not a usable point
        ("00" * 32, b"hello", None),  # a small-order point
    ],
)
def test_verify_signature_is_false_on_malformed_input_and_never_raises(alice, node_id, data, signature):
    good = alice.sign(b"hello")
    node_id = alice.node_id if node_id is None else node_id
    signature = good if signature is None else signature
    assert verify_signature(node_id, data, signature) is False


def test_verify_signature_wants_lowercase_hex(alice):
    sig = alice.sign(b"x")
    assert not verify_signature(alice.node_id.upper(), b"x", sig)
    assert not verify_signature(alice.node_id, b"x", sig.upper())


# ---------------------------------------------------------------------------------------------- envelope


def test_canonical_json_is_sorted_compact_utf8():
    assert canonical_json({"b": 1, "a": [1.5, "é", None, True]}) == '{"a":[1.5,"é",null,true],"b":1}'.encode()


@pytest.mark.parametrize(
    "value, reason",
    [
        (math.nan, "float"),
        ({"x": [math.inf]}, "float"),
        ({"x": -math.inf}, "float"),
        ({"x": {1, 2}}, "set"),
        ({"x": b"raw"}, "bytes"),
        ({1: "a"}, "key"),
        ({"x": {None: 1}}, "key"),
        ({"x": "\ud800"}, "UTF-8"),
    ],
)
def test_canonical_json_refuses_what_has_no_canonical_form(value, reason):
    with pytest.raises(EnvelopeError, match=reason):
        canonical_json(value)


def test_canonical_json_reports_a_cycle():
    loop: list = []
    loop.append(loop)
    with pytest.raises(EnvelopeError, match="[Cc]ircular"):
        canonical_json({"x": loop})


def test_sign_verify_round_trip_through_the_wire(vote, alice):
    verify_envelope(vote)
    wire = json.dumps(vote.to_dict())
    back = Envelope.from_dict(json.loads(wire))
    verify_envelope(back)
    assert back == vote and back.id == vote.id
    assert back.author == alice.node_id and back.body == VOTE_BODY and back.kind == "vote"
    assert set(vote.to_dict()) == {"kind", "body", "author", "created_at", "signature"}


def test_signing_bytes_and_id_have_the_documented_form(vote, alice):
    author, proposal = alice.node_id, "ab" * 32
    expected = (
        f'{{"author":"{author}","body":{{"choice":"yes","proposal_id":"{proposal}",'
        f'"reason":"measured 12% faster","seq":17}},"created_at":1700000000.25,"kind":"vote"}}'
    ).encode()
    assert vote.signing_bytes() == expected
    assert vote.id == hashlib.sha256(expected).hexdigest()
    assert verify_signature(alice.node_id, expected, vote.signature)


def test_created_at_defaults_to_now(alice):
    import time

    before = time.time()
    env = sign_envelope(alice, "rollback", {"proposal_id": "p", "reason": "r", "automatic": True})
    assert before <= env.created_at <= time.time()


def _tampered(vote: Envelope, **change) -> Envelope:
    wire = vote.to_dict()
    wire.update(change)
    return Envelope.from_dict(wire)


def _flip_hex(text: str, i: int) -> str:
    return text[:i] + ("0" if text[i] != "0" else "1") + text[i + 1 :]


def test_tampering_with_any_field_fails_verification(vote, alice):
    cases = {
        "kind": _tampered(vote, kind="proposal"),
        "body value": _tampered(vote, body={**VOTE_BODY, "choice": "no"}),
        "body seq": _tampered(vote, body={**VOTE_BODY, "seq": 18}),
        "body extra key": _tampered(vote, body={**VOTE_BODY, "extra": None}),
        "created_at": _tampered(vote, created_at=vote.created_at + 1e-6),
        "created_at as int": _tampered(vote, created_at=1_700_000_000),
        "author": _tampered(vote, author=_flip_hex(alice.node_id, 10)),
    }
    for what, env in cases.items():
        assert env.id != vote.id or what == "signature"
        with pytest.raises(SignatureError, match=r"bad signature on \w+ [0-9a-f]{12} by [0-9a-f]{12}"):
            verify_envelope(env)
    for i in range(128):  # every position of the signature
        with pytest.raises(SignatureError):
            verify_envelope(_tampered(vote, signature=_flip_hex(vote.signature, i)))


def test_any_single_byte_change_of_the_wire_form_is_refused_or_fails_verification(vote):
    wire = json.dumps(vote.to_dict(), sort_keys=True, ensure_ascii=False)
    alphabet = sorted(set(wire) | set('0123456789abcdefxyz .-e"{}[],:'))
    checked = 0
    for i, original in enumerate(wire):
        for replacement in alphabet:
            if replacement == original:
                continue
            text = wire[:i] + replacement + wire[i + 1 :]
            try:
                env = Envelope.from_dict(json.loads(text))
            except (ValueError, EnvelopeError):  # no longer JSON, or no longer a well-formed envelope
                continue
            if env.signing_bytes() == vote.signing_bytes() and env.signature == vote.signature:
                continue  # a change that means the same thing (cannot happen in canonical JSON)
            checked += 1
            with pytest.raises(SignatureError):
                verify_envelope(env)
    assert checked > 300  # the loop really verified many well-formed forgeries


def test_signature_of_another_identity_with_the_author_swapped_fails(vote, alice, bob):
    # Bob signs Alice's vote and claims to be Alice...
    forged = Envelope(vote.kind, vote.body, alice.node_id, vote.created_at, bob.sign(vote.signing_bytes()))
    with pytest.raises(SignatureError):
        verify_envelope(forged)
    # ...or takes Alice's signature and puts his own id on it.
    with pytest.raises(SignatureError):
        verify_envelope(_tampered(vote, author=bob.node_id))
    # Bob's own vote verifies, and is a different message.
    own = sign_envelope(bob, vote.kind, vote.body, vote.created_at)
    verify_envelope(own)
    assert own.id != vote.id


def test_id_is_stable_across_dict_key_order(alice):
    body = {"type": "config_change", "params": {"changes": {"b": 2, "a": 1}}, "title": "t", "quorum": 0.5}
    env = sign_envelope(alice, "proposal", body, created_at=1.0)
    wire = env.to_dict()
    reordered = {k: wire[k] for k in reversed(list(wire))}
    reordered["body"] = {
        "quorum": 0.5,
        "title": "t",
        "params": {"changes": {"a": 1, "b": 2}},
        "type": "config_change",
    }
    back = Envelope.from_dict(json.loads(json.dumps(reordered)))
    assert back.id == env.id and back.signing_bytes() == env.signing_bytes()
    verify_envelope(back)


def test_replay_has_the_same_id(vote, alice):
    wire = json.dumps(vote.to_dict())
    replays = {Envelope.from_dict(json.loads(wire)).id for _ in range(3)}
    assert replays == {vote.id}
    # Re-signing the same content at the same time is the same message (deterministic signatures)...
    again = sign_envelope(alice, "vote", dict(VOTE_BODY), created_at=vote.created_at)
    assert again.id == vote.id and again.signature == vote.signature and again == vote
    assert len({vote, again}) == 1
    # ...and at another time it is a new one.
    assert sign_envelope(alice, "vote", VOTE_BODY, created_at=vote.created_at + 1).id != vote.id


GOOD = {
    "kind": "vote",
    "body": {"x": 1},
    "author": "ab" * 32,
    "created_at": 1.5,
    "signature": "cd" * 64,
}


@pytest.mark.parametrize(
    "change, message",
    [
        ({"kind": "ballot"}, "field 'kind' must be one of proposal, vote, stage_report, rollback"),
        ({"kind": None}, "field 'kind'"),
        ({"kind": ["vote"]}, "field 'kind'"),
        ({"body": []}, "field 'body' must be a JSON object, got list"),
        ({"body": "{}"}, "field 'body' must be a JSON object, got str"),
        ({"body": None}, "field 'body' must be a JSON object"),
        ({"body": {"x": math.nan}}, "field 'body': not canonical JSON"),
        ({"body": {"x": math.inf}}, "field 'body': not canonical JSON"),
        ({"author": "AB" * 32}, "field 'author' must be 64 lowercase hex"),
        ({"author": "ab" * 31}, "field 'author'"),
        ({"author": "ab" * 32 + "\n"}, "field 'author'"),
        ({"author": "zz" * 32}, "field 'author'"),
        ({"author": 12}, "field 'author'"),
        ({"created_at": "1.5"}, "field 'created_at' must be a number"),
        ({"created_at": True}, "field 'created_at' must be a number"),
        ({"created_at": None}, "field 'created_at'"),
        ({"created_at": math.nan}, "field 'created_at' must be a finite number"),
        ({"created_at": math.inf}, "field 'created_at' must be a finite number"),
        ({"created_at": -math.inf}, "field 'created_at' must be a finite number"),
        ({"signature": "cd" * 63}, "field 'signature' must be 128 lowercase hex"),
        ({"signature": "cd" * 65}, "field 'signature'"),
        ({"signature": "CD" * 64}, "field 'signature'"),
        ({"signature": "xy" * 64}, "field 'signature'"),
        ({"signature": None}, "field 'signature'"),
        ({"id": "ab" * 32}, "unknown field\\(s\\) 'id'"),
        ({"extra": 1, "zzz": 2}, "unknown field\\(s\\) 'extra', 'zzz'"),
    ],
)
def test_from_dict_refuses_each_malformed_field_naming_it(change, message):
    with pytest.raises(EnvelopeError, match=message):
        Envelope.from_dict({**GOOD, **change})


@pytest.mark.parametrize("missing", ["kind", "body", "author", "created_at", "signature"])
def test_from_dict_refuses_a_missing_field_naming_it(missing):
    data = {k: v for k, v in GOOD.items() if k != missing}
    with pytest.raises(EnvelopeError, match=f"missing field\\(s\\) '{missing}'"):
        Envelope.from_dict(data)


@pytest.mark.parametrize("data", [None, [], "envelope", 3, [GOOD]])
def test_from_dict_refuses_a_non_object(data):
    with pytest.raises(EnvelopeError, match="an envelope must be a JSON object"):
        Envelope.from_dict(data)


def test_from_dict_accepts_every_kind_and_integer_created_at():
    for kind in KINDS:
        env = Envelope.from_dict({**GOOD, "kind": kind, "created_at": 1_700_000_000})
        assert env.kind == kind
        assert b'"created_at":1700000000,' in env.signing_bytes()  # an int is signed as an int


def test_nan_is_refused_when_signing(alice):
    with pytest.raises(EnvelopeError, match="body"):
        sign_envelope(alice, "stage_report", {"figures": {"p99": math.nan}})
    with pytest.raises(EnvelopeError, match="created_at"):
        sign_envelope(alice, "vote", VOTE_BODY, created_at=math.nan)
    with pytest.raises(EnvelopeError, match="kind"):
        sign_envelope(alice, "ballot", VOTE_BODY)


def test_body_size_limit(alice):
    overhead = len(canonical_json({"s": ""}))
    at_limit = {"s": "x" * (MAX_BODY_BYTES - overhead)}
    env = sign_envelope(alice, "proposal", at_limit, created_at=2.0)
    verify_envelope(Envelope.from_dict(env.to_dict()))
    over = {**env.to_dict(), "body": {"s": "x" * (MAX_BODY_BYTES - overhead + 1)}}
    with pytest.raises(
        EnvelopeError, match=f"field 'body' is {MAX_BODY_BYTES + 1} bytes .* limit of {MAX_BODY_BYTES}"
    ):
        Envelope.from_dict(over)
    with pytest.raises(EnvelopeError, match="limit"):
        sign_envelope(alice, "proposal", over["body"])
    # The limit counts UTF-8 bytes, not characters.
    with pytest.raises(EnvelopeError, match="limit"):
        Envelope.from_dict({**env.to_dict(), "body": {"s": "é" * (MAX_BODY_BYTES // 2)}})


def test_envelope_body_is_a_copy_of_what_was_signed(alice):
    body = {"proposal_id": "p", "reason": "r", "automatic": False, "list": (1, 2)}
    env = sign_envelope(alice, "rollback", body, created_at=3.0)
    body["reason"] = "changed after signing"
    env.to_dict()["body"]["reason"] = "changed on the wire copy"
    assert env.body["reason"] == "r" and env.body["list"] == [1, 2]
    verify_envelope(env)


def test_repr_is_short_and_omits_the_body(alice):
    env = sign_envelope(alice, "proposal", {"source": "fn main() {}" * 10_000}, created_at=4.0)
    text = repr(env)
    assert len(text) < 200 and env.id[:12] in text and "fn main" not in text


# --------------------------------------------------------------------------------------------- hostile bounds


def _wire(body=None, **change) -> dict:
    return {**GOOD, **({} if body is None else {"body": body}), **change}


@pytest.mark.parametrize(
    "body, where",
    [
        ({"n": 2**63}, "at n "),
        ({"n": -(2**63) - 1}, "at n "),
        ({"a": {"b c": [1, 2, 10**400]}}, r"at a\['b c'\]\[2\] \(a 1329-bit integer, about 401 digits\)"),
        ({"deep": [[[[{"x": -(10**19)}]]]]}, r"at deep\[0\]\[0\]\[0\]\[0\].x "),
        (
            {"n": 10**5000},
            r"at n \(a 16610-bit integer",
        ),  # past Python's 4300-digit str() limit: still an EnvelopeError
    ],
)
def test_integers_beyond_64_bits_anywhere_in_a_body_are_refused_naming_the_place(alice, body, where):
    with pytest.raises(EnvelopeError, match=f"field 'body': .*integer {where}.*signed 64-bit range"):
        Envelope.from_dict(_wire(body))
    with pytest.raises(EnvelopeError, match="signed 64-bit range"):
        sign_envelope(alice, "vote", body)


def test_the_64_bit_bounds_themselves_are_accepted_and_round_trip(alice):
    body = {"hi": 2**63 - 1, "lo": -(2**63), "t": True, "f": 1e308}
    env = sign_envelope(alice, "vote", body, created_at=5.0)
    back = Envelope.from_dict(json.loads(json.dumps(env.to_dict())))
    verify_envelope(back)
    assert back.body == body and back.id == env.id


@pytest.mark.parametrize(
    "created_at",
    [10**400, 2**63, -1, 0, -0.0, 0.0, 253_402_300_800, 1e300, -1e-9],
)
def test_created_at_must_be_unix_seconds_before_the_year_10000(created_at):
    with pytest.raises(
        EnvelopeError, match=r"field 'created_at' must be unix seconds in \(0, 253402300799\]"
    ):
        Envelope.from_dict(_wire(created_at=created_at))


def test_created_at_bounds_accepted():
    for created_at in (1, 0.001, 253_402_300_799, 1_700_000_000.25):
        assert Envelope.from_dict(_wire(created_at=created_at)).created_at == created_at


def test_body_nesting_is_bounded_iteratively(alice):
    from synapse_ng.node.envelope import MAX_BODY_DEPTH

    def nested(levels: int) -> dict:
        body: dict = {}
        for _ in range(levels - 1):
            body = {"x": body}
        return body

    Envelope.from_dict(_wire(nested(MAX_BODY_DEPTH)))  # the body itself is level 1
    with pytest.raises(
        EnvelopeError, match=f"field 'body': not canonical JSON: nested deeper than {MAX_BODY_DEPTH} levels"
    ):
        Envelope.from_dict(_wire(nested(MAX_BODY_DEPTH + 1)))
    with pytest.raises(
        EnvelopeError, match="nested deeper"
    ):  # far past the recursion limit: no RecursionError
        Envelope.from_dict(_wire(nested(200_000)))
    # Shared (not cyclic) containers are fine and are not walked once per path.
    shared = [1, 2, 3]
    wide: list = [shared] * 4
    for _ in range(20):
        wide = [wide, wide]
    assert canonical_json({"w": wide}).count(b"[1,2,3]") == 4 * 2**20


def test_canonical_json_refuses_huge_ints_before_json_does():
    with pytest.raises(EnvelopeError, match="signed 64-bit range"):
        canonical_json(10**5000)
    with pytest.raises(EnvelopeError, match="signed 64-bit range"):
        canonical_json([{"a": 2**64}])
    assert canonical_json([2**63 - 1, -(2**63)]) == b"[9223372036854775807,-9223372036854775808]"


# ---------------------------------------------------------------------------------------------- json text


def _reference_problem(raw: bytes, max_depth: int) -> str | None:
    """A byte-by-byte scanner, the obvious way: what json_text_problem must agree with on JSON-like text."""
    depth = deepest = run = longest = 0
    inside = escaped = False
    for byte in raw:
        char = chr(byte)
        if inside:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                inside = False
            continue
        if char == '"':
            inside, run = True, 0
            continue
        if char == "\\":
            return "not JSON"  # a backslash outside strings: a parser stops here, before anything deeper
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
        run = run + 1 if char.isdigit() else 0
        longest = max(longest, run)
    if deepest > max_depth:
        return "nested"
    return "digits" if longest > 4300 else None


def test_json_text_problem_counts_brackets_outside_strings_only():
    from synapse_ng.node.envelope import json_text_problem

    assert json_text_problem(b"[" * 100_000) == "JSON nested deeper than 64 levels"
    assert json_text_problem(b'{"a":' * 65 + b"1" + b"}" * 65) == "JSON nested deeper than 64 levels"
    assert json_text_problem(b"[" * 64 + b"]" * 64) is None
    assert json_text_problem(b'["' + b"[" * 1000 + b'"]') is None  # brackets in a string are text
    assert json_text_problem(b'["\\"' + b"[" * 1000 + b'"]') is None  # an escaped quote does not end it
    assert (
        json_text_problem(b'["\\\\",' + b"[" * 65 + b"]" * 65 + b"]") is not None
    )  # an escaped backslash does
    assert json_text_problem(b'{"n": ' + b"7" * 4301 + b"}") == "JSON number longer than 4300 digits"
    assert json_text_problem(b'{"n": ' + b"7" * 4300 + b"}") is None
    assert (
        json_text_problem(b'{"s": "' + b"7" * 9000 + b'", "t": "x"}') is None
    )  # digits in a string are text
    assert json_text_problem('{"a": []}'.encode("utf-16")) == "JSON text must be UTF-8 (RFC 8259)"
    assert json_text_problem(b"\xef\xbb\xbf[1]") is None  # a UTF-8 BOM is still UTF-8
    assert json_text_problem(b"") is None


def test_json_text_problem_agrees_with_a_byte_scanner_on_random_text():
    import random

    from synapse_ng.node.envelope import json_text_problem

    rng = random.Random(7)
    alphabet = ["[", "]", "{", "}", '"', "\\", "a", ",", ":", "1"]
    compared = 0
    for _ in range(30_000):
        weights = [rng.random() for _ in alphabet]
        text = "".join(rng.choices(alphabet, weights=weights, k=rng.randint(0, 120)))
        expected = _reference_problem(text.encode(), 3)
        if expected == "not JSON":
            continue
        got = json_text_problem(text.encode(), max_depth=3)
        assert (got is not None) == (expected is not None), text
        compared += 1
    assert compared > 5000
    # Long digit runs, inside and outside strings, between escaped quotes.
    for text in (b'["\\"",' + b"1" * 4301 + b"]", b'["\\"' + b"1" * 4301 + b'"]', b'"a\\\\"' + b"2" * 4301):
        assert (json_text_problem(text) is not None) == (_reference_problem(text, 64) is not None), text


def test_json_text_problem_is_fast_on_hostile_8_mb_bodies():
    import time

    from synapse_ng.node.envelope import json_text_problem

    for text in (
        b'"' * 8_000_000,
        b"[" + b'"",' * 2_600_000 + b'""]',
        b'"\\' * 4_000_000,
        b"[" * 65 + b'"' * 8_000_000,
    ):
        started = time.perf_counter()
        json_text_problem(text)
        assert time.perf_counter() - started < 5.0  # a byte loop in Python takes seconds; this, milliseconds
