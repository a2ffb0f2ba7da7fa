"""Hostile input against a real node app over HTTP (httpx's ASGITransport, no mocks):
integers beyond 64 bits, JSON nested 100,000 deep, bidi overrides in titles. Every one gets a 4xx with
{"error": ...}, never a 500, and one bad message in a gossip batch never sinks the others."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest

from synapse_ng.governance import proposal_body
from synapse_ng.governance.proposals import (
    ProposalError,
    readable_text,
    text_problem,
    validate_proposal_body,
    vote_body,
)
from synapse_ng.node.app import create_app
from synapse_ng.node.config import NodeConfig
from synapse_ng.node.envelope import Envelope
from synapse_ng.node.identity import Identity
from synapse_ng.node.node import Node
from synapse_ng.node.operator import bearer

HUGE = 10**400  # 401 digits: fine for Python and json, an OverflowError for SQLite and floats


@pytest.fixture()
def node(tmp_path):
    node = Node.open(NodeConfig.load(tmp_path / "node", port=18999))
    yield node
    node.state.close()


class Client:
    """A synchronous client of the real ASGI app over httpx's ASGITransport. No lifespan: the node's
    background loops stay off; raise_app_exceptions=False turns a crash into the 500 a client would see."""

    def __init__(self, app):
        self.transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)

    def request(self, method: str, url: str, **kwargs) -> httpx.Response:
        async def send() -> httpx.Response:
            async with httpx.AsyncClient(transport=self.transport, base_url="http://node") as client:
                return await client.request(method, url, **kwargs)

        return asyncio.run(send())

    def get(self, url: str, **kwargs) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs) -> httpx.Response:
        return self.request("POST", url, **kwargs)


@pytest.fixture()
def client(node):
    return Client(create_app(node, manage_node=False))


def hand_signed(identity: Identity, kind: str, body: dict, created_at=None) -> dict:
    """The wire form of a message signed over whatever JSON it holds: sign_envelope would refuse to build
    one with a huge integer, an attacker just signs the bytes."""
    created_at = time.time() if created_at is None else created_at
    signed = {"kind": kind, "body": body, "author": identity.node_id, "created_at": created_at}
    data = json.dumps(signed, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return {**signed, "signature": identity.sign(data)}


def good_proposal(node: Node, title: str = "raise the fan-out", description: str = "") -> dict:
    body = proposal_body(
        "config_change",
        title,
        description,
        {"changes": {"gossip_fanout": 4}},
        rules=node.rules,
        now=time.time(),
    )
    return hand_signed(node.identity, "proposal", body)


def assert_refused(response, status: int = 422, *, says: str = "") -> dict:
    assert response.status_code == status, (response.status_code, response.text[:500])
    payload = response.json()
    assert isinstance(payload.get("error"), str) and payload["error"], payload
    assert says in payload["error"], payload["error"]
    return payload


# ---------------------------------------------------------------------------------------- integers


def test_inventory_cursor_beyond_64_bits_is_a_422_not_an_overflow(client):
    assert_refused(client.get(f"/api/gossip/inventory?after={2**63}"), says="after")
    assert_refused(client.get("/api/gossip/inventory?after=-1"), says="after")
    assert_refused(client.get("/api/gossip/inventory?after=" + "9" * 5000), says="after")
    last = client.get(f"/api/gossip/inventory?after={2**63 - 1}")
    assert last.status_code == 200 and last.json() == {"ids": [], "seq": 2**63 - 1}


@pytest.mark.parametrize(
    "where",
    ["vote seq", "proposal deadline", "evidence-like nesting", "created_at", "negative"],
)
def test_a_signed_message_with_a_400_digit_integer_is_a_422(client, node, where):
    proposal = good_proposal(node)
    if where == "vote seq":
        message = hand_signed(
            node.identity, "vote", {"proposal_id": "ab" * 32, "choice": "yes", "seq": HUGE, "reason": ""}
        )
    elif where == "proposal deadline":  # math.isfinite(10**400) raised OverflowError in the validator
        message = hand_signed(node.identity, "proposal", {**proposal["body"], "deadline": HUGE})
    elif where == "evidence-like nesting":
        message = hand_signed(
            node.identity,
            "stage_report",
            {"proposal_id": "ab" * 32, "stage": 0, "ok": True, "figures": {"calls": HUGE}, "reason": ""},
        )
    elif where == "created_at":  # SQLite: "Python int too large to convert to SQLite INTEGER"
        message = hand_signed(node.identity, "proposal", proposal["body"], created_at=HUGE)
    else:
        message = hand_signed(
            node.identity, "proposal", {**proposal["body"], "params": {"changes": {"gossip_fanout": -HUGE}}}
        )
    payload = assert_refused(client.post("/api/messages", json=message))
    assert "64-bit" in payload["error"] or "created_at" in payload["error"], payload
    assert client.get("/api/gossip/inventory").json()["ids"] == []  # nothing was stored


def test_one_hostile_message_never_sinks_a_gossip_batch(client, node):
    good = good_proposal(node)
    deep: dict = {"leaf": 1}
    for _ in range(40):  # 40 levels: under the request's 64, over a body's 32
        deep = {"x": deep}
    hostile = [
        hand_signed(
            node.identity, "vote", {"proposal_id": "ab" * 32, "choice": "yes", "seq": HUGE, "reason": ""}
        ),
        hand_signed(node.identity, "proposal", good["body"], created_at=HUGE),
        hand_signed(node.identity, "proposal", {**good["body"], "deadline": HUGE}),
        hand_signed(node.identity, "proposal", {**good["body"], "title": "pay \u202egnp.exe"}),
        hand_signed(node.identity, "proposal", {**good["body"], "params": deep}),
        hand_signed(node.identity, "vote", {"choice": "yes"}),  # fields missing
        {**good, "signature": "00" * 64},
        {"kind": "vote"},
        {},
    ]
    response = client.post("/api/gossip", json={"messages": [*hostile, good]})
    assert response.status_code == 200, response.text[:500]
    results = response.json()["results"]
    assert len(results) == len(hostile) + 1
    accepted = [r for r in results if r["ok"]]
    assert len(accepted) == 1 and accepted[0]["new"] is True
    assert accepted[0]["id"] == Envelope.from_dict(good).id
    for result in results:
        if not result["ok"]:
            assert 400 <= result["status"] < 500 and result["error"], result
    assert client.get("/api/gossip/inventory").json()["ids"] == [accepted[0]["id"]]


# ---------------------------------------------------------------------------------------- nesting


@pytest.mark.parametrize("path", ["/api/messages", "/api/gossip", "/api/gossip/fetch", "/api/proposals"])
@pytest.mark.parametrize("text", [b"[" * 100_000, b'{"a":' * 100_000, b"[" * 65 + b"]" * 65])
def test_json_nested_deeper_than_64_levels_is_a_422(client, path, text):
    response = client.post(path, content=text, headers={"content-type": "application/json"})
    assert_refused(response, says="JSON nested deeper than 64 levels")
    # No content-type: FastAPI would still parse it as JSON, so it is checked too.
    assert_refused(client.post(path, content=text), says="JSON nested deeper than 64 levels")


def test_nesting_up_to_64_levels_and_brackets_in_strings_pass_the_body_check(client, node):
    shallow = client.post(
        "/api/messages", content=b"[" * 64 + b"]" * 64, headers={"content-type": "application/json"}
    )
    assert shallow.status_code == 422 and "nested" not in shallow.json()["error"]  # the route's own 422
    # A description full of brackets and escaped quotes is text, not nesting: the message is accepted.
    message = good_proposal(node, description='[{"\\' * 5000 + "]" * 100)
    response = client.post("/api/messages", json=message)
    assert response.status_code == 201, response.text[:500]


def test_a_number_longer_than_pythons_digit_limit_is_a_422(client):
    text = b'{"messages": [' + b"7" * 5000 + b"]}"
    assert_refused(
        client.post("/api/gossip", content=text, headers={"content-type": "application/json"}),
        says="4300 digits",
    )
    # The same digits inside a string are just text (the batch item is refused on its own, not the request).
    response = client.post("/api/gossip", json={"messages": [{"kind": "7" * 5000}]})
    assert response.status_code == 200 and response.json()["results"][0]["status"] == 422


def test_json_in_utf16_is_refused_not_scanned_wrongly(client):
    response = client.post(
        "/api/gossip",
        content='{"messages": []}'.encode("utf-16"),
        headers={"content-type": "application/json"},
    )
    assert_refused(response, says="UTF-8")


# ---------------------------------------------------------------------------------------- text


def test_a_proposal_title_with_a_bidi_override_is_a_422(client, node):
    good = good_proposal(node)
    message = hand_signed(node.identity, "proposal", {**good["body"], "title": "harmless \u202etxt.exe"})
    payload = assert_refused(client.post("/api/messages", json=message), says="U+202E")
    assert "title" in payload["error"] and "format/bidi" in payload["error"]
    # The operator's route too (its credential is not what is wrong here).
    response = client.post(
        "/api/proposals",
        json={"title": "tune \u202egossip", "changes": {"gossip_fanout": 4}},
        headers=bearer(node.operator_token),
    )
    assert_refused(response, says="U+202E")
    # A newline is fine in a description, never in a title.
    newline = hand_signed(node.identity, "proposal", {**good["body"], "title": "two\nlines"})
    assert_refused(client.post("/api/messages", json=newline), says="U+000A")
    fine = hand_signed(
        node.identity, "proposal", {**good["body"], "description": "line one\nline two\tcafé ✓"}
    )
    assert client.post("/api/messages", json=fine).status_code == 201


@pytest.mark.parametrize(
    "char, what",
    [
        ("\u202e", "format/bidi"),  # RIGHT-TO-LEFT OVERRIDE
        ("\u2066", "format/bidi"),  # LEFT-TO-RIGHT ISOLATE
        ("\u200b", "format/bidi"),  # ZERO WIDTH SPACE
        ("\ufeff", "format/bidi"),  # BOM / zero-width no-break space
        ("\x00", "control"),
        ("\x1b", "control"),  # ANSI escapes
        ("\x85", "control"),  # NEL, a C1 line break
        ("\ud800", "surrogate"),
        ("\ue000", "private-use"),
        ("\U0010fffd", "private-use"),
    ],
)
def test_text_problem_names_the_code_point_and_its_kind(char, what):
    for multiline in (False, True):
        problem = text_problem(f"ab{char}cd", multiline)
        assert (
            problem is not None
            and f"U+{ord(char):04X}" in problem
            and what in problem
            and "character 2" in problem
        )
        assert text_problem(readable_text(f"ab{char}cd", multiline), multiline) is None
        assert readable_text(f"ab{char}cd", multiline) == "ab?cd"


def test_unassigned_code_points_are_accepted_so_nodes_on_different_unicode_versions_agree():
    assert text_problem("ab\u0378cd", False) is None


def test_line_breaks_are_text_only_in_multi_line_fields():
    for char in ("\n", "\t", "\r"):
        assert text_problem(f"a{char}b", multiline=True) is None
        assert "single line" in text_problem(f"a{char}b", multiline=False)
    for char in ("\u2028", "\u2029"):  # line and paragraph separators (category Zl, Zp)
        assert text_problem(f"a{char}b", multiline=True) is None
        assert "single line" in text_problem(f"a{char}b", multiline=False)
    assert readable_text("a\nb\u202e", multiline=True) == "a\nb?"
    assert readable_text("a\nb", multiline=False) == "a?b"
    for text in ("plain", "café — naïve ✓ 日本語 עברית العربية", "a\u00a0b", "emoji 🚀", ""):
        assert text_problem(text, multiline=False) is None and readable_text(text, multiline=False) == text


def test_every_text_field_is_checked_and_named():
    now = time.time()
    body = proposal_body("config_change", "ok", "", {"changes": {"gossip_fanout": 4}}, now=now)
    for field, value in [("title", "a\u202eb"), ("description", "a\u200bb")]:
        with pytest.raises(ProposalError, match=f"'{field}' holds U\\+"):
            validate_proposal_body({**body, field: value})
    with pytest.raises(ProposalError, match="params.issue holds U\\+0000"):
        validate_proposal_body({**body, "params": {"changes": {"gossip_fanout": 4}, "issue": "x\x00"}})
    with pytest.raises(ProposalError, match="vote field 'reason' holds U\\+202E"):
        vote_body("ab" * 32, "no", 1, "checks failed \u202e")
    assert (
        vote_body("ab" * 32, "no", 1, readable_text("checks failed \u202e\nsee log"))["reason"]
        == "checks failed ?\nsee log"
    )


def test_huge_integers_in_a_proposal_are_a_proposal_error_not_an_overflow():
    now = time.time()
    body = proposal_body("config_change", "ok", "", {"changes": {"gossip_fanout": 4}}, now=now)
    bad = [
        {**body, "deadline": HUGE},
        {**body, "quorum": HUGE},
        {**body, "params": {"changes": {"gossip_fanout": HUGE}}},
        {**body, "params": {"changes": {"gossip_fanout": 10**5000}}},  # beyond the 4300-digit repr limit
    ]
    for proposal in bad:
        with pytest.raises(ProposalError):
            validate_proposal_body(proposal, now=now)
    evidence = {"aggregate": {"improvement_pct": 5.0, "runs": [1, 2, -HUGE]}}
    with pytest.raises(
        ProposalError, match=r"params.evidence.aggregate.runs\[2\]' must fit a signed 64-bit integer"
    ):
        validate_proposal_body({**body, "type": "code_upgrade", "params": {"evidence": evidence}})
    nested: dict = {}
    for _ in range(40):
        nested = {"n": nested}
    with pytest.raises(ProposalError, match="nests deeper than 32 levels"):
        validate_proposal_body({**body, "params": {"changes": {"gossip_fanout": 4}, "deep": nested}})
