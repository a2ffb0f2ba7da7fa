"""The network's faults, each one with real node processes on loopback: signed messages that must be
refused, votes that replace each other, dishonest code upgrades that every honest node votes down, a
SIGKILL in the middle of a rollout, a node cut off during a vote, and an upgrade that traps in production."""

from __future__ import annotations

import copy
import hashlib
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from node_helpers import (
    GAP_PENALTY,
    OPERATOR_HEADERS,
    TRAPS_ON_77,
    compiled,
    get,
    honest_upgrade,
    identity_of,
    outcome,
    post,
    propose_upgrade,
    rollout_state,
    send_tasks,
    sign_yes_with_every_key,
    start_network,
    submit,
    wait_for,
)
from synapse_ng.governance import proposal_body, vote_body
from synapse_ng.node.envelope import sign_envelope
from synapse_ng.node.identity import Identity

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def net(networks):
    # Verifying a code upgrade rebuilds it and re-runs its evidence (10-30 s on 2 busy cores): the deadline
    # leaves room.
    return networks("net", 3, deadline_s=30.0)


def _config_body(deadline_s: float = 12.0, **rules) -> dict:
    from synapse_ng.governance import GovernanceRules

    return proposal_body(
        "config_change",
        "fan-out 3",
        "",
        {"changes": {"gossip_fanout": 3}},
        rules=GovernanceRules(deadline_s=deadline_s, **rules),
        now=time.time(),
    )


# ------------------------------------------------------------------------------- signed messages


def test_bad_messages_are_refused_with_the_status_that_says_why(net):
    url = net.url(0)
    member = identity_of(net, 1)
    # A proposal signed by a member, accepted; the same message again is a replay.
    envelope = sign_envelope(member, "proposal", _config_body())
    first = post(url, "/api/messages", envelope.to_dict())
    assert first.status_code == 201, first.text
    replay = post(url, "/api/messages", envelope.to_dict())
    assert replay.status_code == 409 and "already received" in replay.json()["error"]
    proposal_id = envelope.id

    # Bad signature: the body changed after signing.
    tampered = envelope.to_dict()
    tampered["body"] = {**tampered["body"], "title": "something else"}
    response = post(url, "/api/messages", tampered)
    assert response.status_code == 401 and "bad signature" in response.json()["error"]

    # An identity that is not a member of the network.
    stranger = Identity.generate()
    response = submit(url, stranger, "vote", vote_body(proposal_id, "yes", time.time_ns()))
    assert response.status_code == 403 and "unknown identity" in response.json()["error"]

    # A vote for a proposal nobody has, and one after the deadline of a real proposal.
    response = submit(url, member, "vote", vote_body("ab" * 32, "yes", time.time_ns()))
    assert response.status_code == 404 and "unknown proposal" in response.json()["error"]
    late = envelope.body["deadline"] + 5
    response = submit(url, member, "vote", vote_body(proposal_id, "yes", time.time_ns()), created_at=late)
    assert response.status_code == 409 and "closed" in response.json()["error"]

    # A code upgrade that asks for less than the network's rules: refused, not voted on.
    lax = _config_body(config_threshold=(1, 10))
    response = submit(url, member, "proposal", lax)
    assert response.status_code == 422 and "threshold of at least 1/2" in response.json()["error"]

    # Nothing refused was stored: node 0 and its peers hold the proposal, and no stranger's vote.
    votes = get(url, f"/api/proposals/{proposal_id}")["votes"]
    assert all(v["voter"] != stranger.node_id for v in votes)


def test_a_second_vote_replaces_the_first_and_is_counted_once(net):
    url = net.url(0)
    body = _config_body(deadline_s=6.0)
    proposal = sign_envelope(identity_of(net, 0), "proposal", body)
    assert post(url, "/api/messages", proposal.to_dict()).status_code == 201
    voter = identity_of(net, 2)
    # Node 2 votes yes automatically; its owner then votes no, then no again (a replay is refused).
    wait_for(
        lambda: any(v["voter"] == voter.node_id for v in get(url, f"/api/proposals/{proposal.id}")["votes"]),
        20,
        "node 2's vote",
    )
    change = sign_envelope(voter, "vote", vote_body(proposal.id, "no", time.time_ns(), "changed my mind"))
    assert post(url, "/api/messages", change.to_dict()).status_code == 201
    assert post(url, "/api/messages", change.to_dict()).status_code == 409
    result = wait_for(
        lambda: (o := outcome(url, proposal.id))["status"] not in ("open", "closing") and o,
        30,
        "the decision",
    )
    assert result["counted"][voter.node_id] == "no"
    assert (result["yes"], result["no"], result["turnout"]) == (2, 1, 3)
    assert result["status"] == "approved"  # 2 of 3 >= 1/2
    # Every node reached the same outcome from the same messages.
    for other in net.urls[1:]:
        assert (
            wait_for(
                lambda other=other: outcome(other, proposal.id)["status"] not in ("open", "closing"),
                20,
                "decided",
            )
            and outcome(other, proposal.id) == result
        )


# ------------------------------------------------------------------------------- the API's input


ENDPOINTS = [
    (
        "/api/proposals",
        [
            {"title": 5, "changes": {"gossip_fanout": 3}},
            {"title": "x", "changes": {}},
            {"title": "x"},
            {"title": "x", "changes": {"gossip_fanout": "3"}},
            {"title": "x", "changes": {"no_such_key": 1}},
            {"title": "x", "changes": {"gossip_fanout": 10**30}},
            {"title": "x", "changes": {"gossip_fanout": 3}, "extra": 1},
        ],
    ),
    (
        "/api/proposals/" + "ab" * 32 + "/vote",
        [{"choice": "maybe"}, {"choice": 1}, {}, {"choice": "yes", "reason": ["x"]}],
    ),
    ("/api/proposals/not-an-id/vote", [{"choice": "yes"}]),
    (
        "/api/proposals/code-upgrade",
        [
            {},
            {"component": "task_allocation", "wasm_base64": "!!!!", "evidence": {}},
            {"component": "task_allocation", "wasm_base64": "AGFzbQEAAAA=", "evidence": {}},
            {
                "component": "nope",
                "wasm_base64": "AGFzbQEAAAA=",
                "evidence": {"aggregate": {"improvement_pct": 1}},
            },
            {"component": "task_allocation", "wasm_base64": 7, "evidence": []},
        ],
    ),
    (
        "/api/messages",
        [
            {},
            {"kind": "vote"},
            {"kind": "nonsense", "body": {}, "author": "x", "created_at": 1, "signature": "y"},
            [],
        ],
    ),
    ("/api/gossip", [{}, {"messages": "x"}, {"messages": [1, 2]}]),
    ("/api/gossip/fetch", [{}, {"ids": ["zz"]}, {"ids": "x"}]),
    ("/api/upgrades/task_allocation/rollback", [{"reason": 5}]),
    ("/api/upgrades/NOPE/rollback", [{}]),
    ("/api/upgrades/nope/rollback", [{}]),
    (
        "/api/tasks",
        [
            {},
            {"capacity": 0, "items": [1]},
            {"capacity": 10, "items": [11]},
            {"capacity": 10, "items": [0]},
            {"capacity": 10, "items": ["1"]},
            {"capacity": 10.5, "items": [1]},
            {"capacity": 10, "items": [1] * 10_001},
        ],
    ),
]


def test_malformed_json_and_wrong_types_get_a_4xx_with_a_message_never_a_500(net):
    url = net.url(1)
    for path, payloads in ENDPOINTS:
        for payload in payloads:
            response = post(url, path, payload, operator=True)
            assert 400 <= response.status_code < 500 and response.status_code != 401, (
                path,
                payload if len(str(payload)) < 200 else "...",
                response.status_code,
                response.text[:300],
            )
            assert response.json()["error"], (path, response.text[:300])
        # Not JSON at all, and JSON of the wrong shape.
        for raw in (b"{not json", b"", b"\xff\xfe", b"null", b"[]" if path != "/api/messages" else b"3"):
            response = httpx_post_raw(url + path, raw, OPERATOR_HEADERS[url])
            assert 400 <= response.status_code < 500, (path, raw, response.status_code, response.text[:300])
    for path in (
        "/api/proposals/xyz",
        "/api/proposals/" + "ab" * 32,
        "/api/artifacts/123",
        "/api/artifacts/" + "cd" * 32,
    ):
        response = httpx.get(url + path, timeout=30)
        assert 400 <= response.status_code < 500 and response.json()["error"], (path, response.status_code)


def httpx_post_raw(url: str, raw: bytes, headers: dict | None = None):
    return httpx.post(
        url, content=raw, headers={"content-type": "application/json", **(headers or {})}, timeout=30
    )


def test_an_oversized_payload_is_refused_with_413_whether_or_not_it_declares_its_length(net):
    big = b'{"messages": [' + b'{"kind": "vote"},' * 600_000 + b"{}]}"
    assert len(big) > 8 * 1024 * 1024
    response = httpx.post(
        net.url(0) + "/api/gossip", content=big, headers={"content-type": "application/json"}, timeout=60
    )
    assert response.status_code == 413 and "larger than" in response.json()["error"]

    def chunks():
        for _ in range(100):
            yield b" " * 100_000

    response = httpx.post(
        net.url(0) + "/api/gossip", content=chunks(), headers={"content-type": "application/json"}, timeout=60
    )
    assert response.status_code == 413
    assert get(net.url(0), "/api/identity")["node_id"]  # still serving


# ------------------------------------------------------------------------------- code upgrades


def test_every_honest_node_votes_no_on_a_dishonest_code_upgrade(net):
    wasm, evidence = honest_upgrade()
    url = net.url(0)

    # 1. The evidence is for another module than the artifact (hash mismatch).
    other = compiled(GAP_PENALTY.replace("25.0", "24.0"))
    mismatched = propose_upgrade(url, other, evidence)
    # 2. A module that fails the static checks (an import), with evidence naming it.
    bad_static = __import__("wasmtime").wat2wasm('(module (import "env" "f" (func)) (func (export "x")))')
    static_evidence = copy.deepcopy(evidence)
    static_evidence["candidate"]["sha256"] = hashlib.sha256(bad_static).hexdigest()
    fails_static = propose_upgrade(url, bad_static, static_evidence)
    # 3. A module that is not correct (first fit's mirror: always the last bin), evidence doctored to name it.
    wrong = compiled(
        "fn priority(item: f64, bins: &[f64]) -> Vec<f64> { "
        "(0..bins.len()).map(|k| k as f64 + item * 0.0).collect() }"
    )
    wrong_evidence = copy.deepcopy(evidence)
    wrong_evidence["candidate"]["sha256"] = hashlib.sha256(wrong).hexdigest()
    incorrect = propose_upgrade(url, wrong, wrong_evidence)
    # 4. The honest module with doctored figures: the evidence does not reproduce.
    doctored = copy.deepcopy(evidence)
    doctored["workloads"][0]["candidate"]["bins"] -= 1.0
    not_reproduced = propose_upgrade(url, wasm, doctored)

    dishonest = {
        "hash": mismatched,
        "static": fails_static,
        "correctness": incorrect,
        "evidence": not_reproduced,
    }
    for check, proposal_id in dishonest.items():
        result = wait_for(
            lambda pid=proposal_id: (o := outcome(url, pid))["status"] not in ("open", "closing") and o,
            90,
            f"the {check} proposal decided",
        )
        assert result["status"] == "rejected", (check, result)
        assert result["yes"] == 0 and result["no"] == 3, (check, result)
        for node in range(3):
            # Each node decides on its own, after its own pull since the deadline.
            def decided(n=node, pid=proposal_id):
                return outcome(net.url(n), pid)["status"] not in ("open", "closing")

            wait_for(decided, 30, f"node {node} decided the {check} proposal")
            view = get(net.url(node), f"/api/proposals/{proposal_id}")
            assert view["outcome"]["status"] == "rejected", (node, check, view["outcome"])
            if node == 0:
                assert view["verdict"]["ok"] is False and view["verdict"]["reasons"], (check, view["verdict"])
        for vote in get(url, f"/api/proposals/{proposal_id}")["votes"]:
            assert vote["choice"] == "no" and vote["reason"], vote
    # None of them went live anywhere.
    for node in range(3):
        assert get(net.url(node), "/api/components")["components"]["task_allocation"]["active"] == "baseline"


def test_an_honest_upgrade_rolls_out_survives_a_sigkill_mid_rollout_and_a_restart(tmp_path):
    net = start_network(
        tmp_path, 3, health_window_s=4.0, deadline_s=30.0
    )  # room for three verifications on 2 cores
    try:
        wasm, evidence = honest_upgrade()
        items = [20 + (k * 37) % 81 for k in range(300)]
        for url in net.urls:
            send_tasks(url, items, capacity=150)
        proposal_id = propose_upgrade(net.url(0), wasm, evidence)
        assert wait_for(
            lambda: outcome(net.url(0), proposal_id)["status"] not in ("open", "closing"), 90, "decision"
        )
        assert outcome(net.url(0), proposal_id)["status"] == "approved"
        stages = get(net.url(0), "/api/upgrades")["rollouts"][proposal_id]["stages"]
        assert [len(s) for s in stages] == [1, 1, 1]
        # Kill the stage-1 node with SIGKILL as soon as stage 0 has switched, then bring it back.
        index = {identity_of(net, i).node_id: i for i in range(3)}
        first, second = index[stages[0][0]], index[stages[1][0]]
        wait_for(
            lambda: (
                get(net.url(first), "/api/components")["components"]["task_allocation"]["active"]
                == proposal_id
            ),
            60,
            "stage 0 switched",
        )
        net.kill(second)
        time.sleep(3)
        net.restart(second)
        for url in net.urls:
            wait_for(
                lambda url=url: rollout_state(url, proposal_id) == "completed",
                120,
                f"rollout completed at {url}",
            )
        for i, url in enumerate(net.urls):
            live = get(url, "/api/components")["components"]["task_allocation"]
            assert live["active"] == proposal_id and live["sha256"] == hashlib.sha256(wasm).hexdigest()
            history = get(url, "/api/upgrades/history")["history"]
            assert [h["event"] for h in history if h["version"] == proposal_id] == ["activated"], (i, history)
        # The node-level figure: the same batch packs into fewer bins than before on the upgraded version.
        after = send_tasks(net.url(0), items, capacity=150)
        assert after["version"] == proposal_id
        # The active version survives a restart of every node.
        net.stop()
        net.start()
        net.wait_ready()
        for url in net.urls:
            assert get(url, "/api/components")["components"]["task_allocation"]["active"] == proposal_id
        # An operator rolls it back from the command line: every node goes back to the baseline.
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "synapse_ng.cli",
                "upgrade",
                "rollback",
                "--node",
                net.url(2),
                "--data",
                str(net.dir(2)),
                "--component",
                "task_allocation",
                "--reason",
                "operator test",
            ],
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0 and "signed and spreading" in done.stdout, done.stdout + done.stderr
        for url in net.urls:
            wait_for(
                lambda url=url: (
                    get(url, "/api/components")["components"]["task_allocation"]["active"] == "baseline"
                ),
                60,
                "rolled back",
            )
            assert rollout_state(url, proposal_id) == "rolled_back"
        again = subprocess.run(
            [
                sys.executable,
                "-m",
                "synapse_ng.cli",
                "upgrade",
                "rollback",
                "--node",
                net.url(0),
                "--data",
                str(net.dir(0)),
                "--component",
                "task_allocation",
            ],
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert again.returncode == 1 and "nothing to roll back" in again.stderr
    finally:
        net.stop()


def test_a_node_cut_off_during_voting_rejoins_and_converges(tmp_path):
    net = start_network(tmp_path, 3, deadline_s=8.0)
    try:
        cut = net.processes[2]
        os.killpg(cut.pid, signal.SIGSTOP)  # frozen: unreachable, as if its link were cut
        try:
            response = post(
                net.url(0),
                "/api/proposals",
                {"title": "fan-out 4", "changes": {"gossip_fanout": 4}},
                operator=True,
            )
            assert response.status_code == 201, response.text
            proposal_id = response.json()["id"]
            result = wait_for(
                lambda: (o := outcome(net.url(0), proposal_id))["status"] not in ("open", "closing") and o,
                30,
                "decided without node 2",
            )
            assert result["status"] == "approved" and result["turnout"] == 2
        finally:
            os.killpg(cut.pid, signal.SIGCONT)
        # Back online: anti-entropy brings it the proposal and the votes; it decides only once it has pulled
        # from a majority of its peers since the deadline (a push of the proposal alone, queued while it was
        # frozen, must not make it decide "no quorum"), and it computes the same outcome.
        wait_for(lambda: outcome(net.url(2), proposal_id) == result, 30, "node 2 converged")
        assert (
            get(net.url(2), f"/api/proposals/{proposal_id}")["votes"]
            == get(net.url(0), f"/api/proposals/{proposal_id}")["votes"]
        )
        assert all(
            v["voter"] != identity_of(net, 2).node_id
            for v in get(net.url(2), f"/api/proposals/{proposal_id}")["votes"]
        )
    finally:
        net.stop()


def test_an_upgrade_that_traps_in_production_is_rolled_back_everywhere_automatically(tmp_path):
    net = start_network(tmp_path, 3, auto_vote=False, health_window_s=3.0, deadline_s=6.0)
    try:
        _, evidence = honest_upgrade()
        trapping = compiled(TRAPS_ON_77)
        doctored = copy.deepcopy(evidence)
        doctored["candidate"]["sha256"] = hashlib.sha256(trapping).hexdigest()
        proposal_id = propose_upgrade(net.url(0), trapping, doctored)
        # A node never signs yes to a module it has not verified (409); here the keys' holders sign yes
        # themselves, outside the nodes, without the checks an honest automatic vote makes: the rollout must
        # still catch it.
        refused = post(net.url(0), f"/api/proposals/{proposal_id}/vote", {"choice": "yes"}, operator=True)
        assert refused.status_code == 409 and "verification" in refused.json()["error"], refused.text
        sign_yes_with_every_key(net, proposal_id)
        # The WASM spread with the proposal (by hash), even though no node verified it automatically.
        sha = hashlib.sha256(trapping).hexdigest()
        for url in net.urls:
            wait_for(
                lambda url=url: httpx.get(f"{url}/api/artifacts/{sha}", timeout=10).content == trapping,
                20,
                "artifact",
            )
        wait_for(lambda: outcome(net.url(0), proposal_id)["status"] == "approved", 30, "approved")
        stages = get(net.url(0), "/api/upgrades")["rollouts"][proposal_id]["stages"]
        first = {identity_of(net, i).node_id: i for i in range(3)}[stages[0][0]]
        wait_for(
            lambda: (
                get(net.url(first), "/api/components")["components"]["task_allocation"]["active"]
                == proposal_id
            ),
            30,
            "stage 0 live",
        )
        served = send_tasks(net.url(first), [50, 77, 30, 77, 20], capacity=100)
        assert served["version"] == "baseline" and "trapped" in served["fault"]  # production kept working
        for url in net.urls:
            wait_for(
                lambda url=url: rollout_state(url, proposal_id) == "rolled_back", 60, f"rolled back at {url}"
            )
            # The rollback message is in; the node reverts its runtime on its next governance tick.
            wait_for(
                lambda url=url: (
                    get(url, "/api/components")["components"]["task_allocation"]["active"] == "baseline"
                ),
                10,
                "reverted",
            )
        rollout = get(net.url(2), "/api/upgrades")["rollouts"][proposal_id]
        assert "trap" in rollout["rollback_reason"] and rollout["rolled_back_by"] == stages[0][0]
        events = [
            h["event"]
            for h in get(net.url(first), "/api/upgrades/history")["history"]
            if h["version"] == proposal_id
        ]
        assert events == ["activated", "reverted"]
        for other in set(range(3)) - {first}:  # later stages never switched
            assert not [
                h
                for h in get(net.url(other), "/api/upgrades/history")["history"]
                if h["version"] == proposal_id
            ]
        metrics = httpx.get(net.url(first) + "/metrics", timeout=30).text
        assert (
            "synapse_rollbacks_total 1.0" in metrics
            and 'synapse_component_calls_total{component="task_allocation"' in metrics
        )
    finally:
        net.stop()


def test_network_up_starts_nodes_that_know_each_other_and_stops_them_cleanly(tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-m", "synapse_ng.cli", "network", "up", "--nodes", "2", "--data", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines = []
        while not lines or "network up" not in lines[-1]:
            line = process.stdout.readline()
            assert line, "".join(lines)
            lines.append(line)
        urls = [line.split()[2] for line in lines if line.startswith("node ")]
        assert len(urls) == 2
        identities = [get(url, "/api/identity") for url in urls]
        assert sorted(identities[0]["members"]) == sorted(i["node_id"] for i in identities)
        for i in range(2):
            key = tmp_path / f"node{i}" / "identity.key"
            assert key.stat().st_mode & 0o777 == 0o600
    finally:
        process.send_signal(signal.SIGTERM)
        rest = process.communicate(timeout=60)[0]
    assert process.returncode == 0 and "network stopped" in rest
    for url in urls:
        with pytest.raises(httpx.HTTPError):
            httpx.get(url + "/api/identity", timeout=2)


def test_network_up_reports_a_node_that_dies_and_stops_the_others(tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-m", "synapse_ng.cli", "network", "up", "--nodes", "3", "--data", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines = []
        while not lines or "network up" not in lines[-1]:
            line = process.stdout.readline()
            assert line, "".join(lines)
            lines.append(line)
        urls = [line.split()[2] for line in lines if line.startswith("node ")]
        victim = next(pid for pid, argv in _node_processes() if str(tmp_path / "node2") in argv)
        os.kill(victim, signal.SIGKILL)
        rest = process.communicate(timeout=60)[0]
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 10, rest
    assert f"node 2 ({urls[2]}) was killed by signal SIGKILL" in rest
    assert (
        f"the last lines of {tmp_path / 'node2' / 'node.log'}" in rest and "listening on" in rest
    )  # the log is quoted
    assert "the other nodes were shut down cleanly" in rest
    for url in urls[:2]:
        with pytest.raises(httpx.HTTPError):
            httpx.get(url + "/api/identity", timeout=2)


def _node_processes() -> list[tuple[int, list[str]]]:
    from pathlib import Path

    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
            except OSError:
                continue
            if "node" in argv and "run" in argv:
                found.append((int(entry.name), argv))
    return found
