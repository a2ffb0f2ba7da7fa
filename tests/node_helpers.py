"""Helpers for tests that run real node processes on loopback (synapse_ng.network.LocalNetwork)."""

from __future__ import annotations

import base64
import functools
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from synapse_ng.components import get_component
from synapse_ng.evolution.build import build_candidate
from synapse_ng.evolution.evaluate import evaluate
from synapse_ng.governance import vote_body
from synapse_ng.models import CodeLanguage
from synapse_ng.network import LocalNetwork
from synapse_ng.node.config import NodeConfig
from synapse_ng.node.envelope import sign_envelope
from synapse_ng.node.identity import Identity

SAMPLES = Path(__file__).resolve().parents[1] / "src" / "synapse_ng" / "samples"
GAP_PENALTY = (SAMPLES / "gap_penalty.rs").read_text()
TASKS = get_component("task_allocation")

# A block that packs like best fit but indexes out of bounds (a wasm trap) when an item of size 77 arrives.
TRAPS_ON_77 = """
fn priority(item: f64, bins: &[f64]) -> Vec<f64> {
    let mut scores: Vec<f64> = bins.iter().map(|&remaining| -(remaining - item)).collect();
    if item == 77.0 {
        let at = bins.len() + 3;
        scores[0] = scores[at];
    }
    scores
}
"""

FAST = {
    "deadline_s": 12.0,
    "grace_s": 0.5,
    "anti_entropy_interval_s": 0.5,
    "immune_interval_s": 1.0,
    "health_window_s": 2.0,
    "evolve": False,
    # Tests script the model and follow its answers; a test about starting points turns them on.
    "evolve_starting_points": False,
    "verify_time_limit_s": 120.0,
}


@functools.lru_cache(maxsize=1)
def honest_upgrade() -> tuple[bytes, dict]:
    """(wasm, evidence) of the hand-written gap-penalty block: a real, reproducible held-out improvement."""
    evaluation = evaluate(TASKS, GAP_PENALTY, CodeLanguage.RUST, "heldout")
    assert evaluation.correct and evaluation.improvement_pct > 0, evaluation.message
    built = build_candidate(TASKS, GAP_PENALTY, CodeLanguage.RUST)
    return built.wasm, evaluation.evidence


def compiled(block: str) -> bytes:
    built = build_candidate(TASKS, block, CodeLanguage.RUST)
    assert not hasattr(built, "stage"), built
    return built.wasm


# url -> its node's operator credential, for the routes that make a node sign or act
# (post(..., operator=True))
OPERATOR_HEADERS: dict[str, dict] = {}


def start_network(
    root: Path,
    nodes: int = 3,
    per_node: dict[int, dict] | Callable[[LocalNetwork], dict[int, dict]] | None = None,
    **overrides,
) -> LocalNetwork:
    """Nodes with FAST settings and `overrides`; `per_node`: settings of single nodes on top
    (index -> {key: value}), or a function of the prepared network (its identities) that returns them."""
    net = LocalNetwork(root, nodes, overrides={**FAST, **overrides})
    net.prepare()
    if callable(per_node):
        per_node = per_node(net)
    for index, settings in (per_node or {}).items():
        config = NodeConfig.load(net.dir(index))
        for key, value in settings.items():
            setattr(config, key, value)
        config.save()
    for i in range(nodes):
        OPERATOR_HEADERS[net.url(i)] = net.operator_headers(i)
    net.start()
    try:
        net.wait_ready(timeout_s=120)
        wait_for(
            lambda: all(len(get(u, "/api/identity")["members"]) == nodes for u in net.urls),
            30,
            "members known",
        )
    except BaseException:
        net.stop()
        raise
    return net


def identity_of(net: LocalNetwork, index: int) -> Identity:
    return Identity.load_or_create(net.dir(index) / "identity.key")


def get(url: str, path: str, **kw) -> dict:
    response = httpx.get(url + path, timeout=30, **kw)
    assert response.status_code == 200, (path, response.status_code, response.text[:300])
    return response.json()


def post(url: str, path: str, payload=None, *, operator: bool = False, **kw) -> httpx.Response:
    """A POST; `operator=True` sends the node's operator credential (anonymous otherwise, as an attacker)."""
    if operator:
        kw["headers"] = {**kw.get("headers", {}), **OPERATOR_HEADERS[url]}
    return httpx.post(url + path, json=payload, timeout=60, **kw)


def submit(
    url: str, identity: Identity, kind: str, body: dict, created_at: float | None = None
) -> httpx.Response:
    return post(url, "/api/messages", sign_envelope(identity, kind, body, created_at).to_dict())


def propose_upgrade(
    url: str,
    wasm: bytes,
    evidence: dict,
    component: str = "task_allocation",
    source: str = GAP_PENALTY,
    language: str = "rust",
) -> str:
    response = post(
        url,
        "/api/proposals/code-upgrade",
        {
            "component": component,
            "wasm_base64": base64.b64encode(wasm).decode(),
            "evidence": evidence,
            "source": source,
            "language": language,
        },
        operator=True,
    )
    assert response.status_code == 201, response.text[:500]
    return response.json()["id"]


def wait_for(condition, timeout_s: float, what: str, every: float = 0.3):
    deadline = time.monotonic() + timeout_s
    last_error = None
    while time.monotonic() < deadline:
        try:
            value = condition()
            if value:
                return value
        except (httpx.HTTPError, AssertionError, KeyError) as error:
            last_error = error
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what} (last error: {last_error!r})")


def vote_on_every_node(net: LocalNetwork, proposal_id: str, choice: str) -> None:
    """Each node's operator casts `choice` through the API (a yes only after the node's own verification)."""
    for url in net.urls:
        wait_for(
            lambda url=url: (
                post(url, f"/api/proposals/{proposal_id}/vote", {"choice": choice}, operator=True).status_code
                == 201
            ),
            20,
            choice,
        )


def sign_yes_with_every_key(net: LocalNetwork, proposal_id: str) -> None:
    """Every member signs a yes with its own key, outside its node: what the keys' holders can do without
    the checks an honest automatic vote makes (a colluding majority)."""
    for i, url in enumerate(net.urls):
        wait_for(
            lambda i=i, url=url: (
                submit(
                    url, identity_of(net, i), "vote", vote_body(proposal_id, "yes", time.time_ns())
                ).status_code
                == 201
            ),
            20,
            "vote",
        )


def outcome(url: str, proposal_id: str) -> dict:
    return get(url, f"/api/proposals/{proposal_id}")["outcome"]


def rollout_state(url: str, proposal_id: str) -> str | None:
    return get(url, "/api/upgrades")["rollouts"].get(proposal_id, {}).get("state")


def code_upgrades(url: str) -> list[dict]:
    return [p for p in get(url, "/api/proposals")["proposals"] if p["type"] == "code_upgrade"]


def approved_upgrades(url: str) -> list[dict]:
    """The code upgrades this node has seen approved, oldest first. A test of what follows an approval
    waits for these, not for the first proposal: on a loaded machine the voters' re-run of the evidence
    can outlast a short voting deadline, and that proposal then closes without a quorum."""
    return [p for p in code_upgrades(url) if p["outcome"]["status"] == "approved"]


def send_tasks(url: str, items: list[int], capacity: int = 100) -> dict:
    response = post(url, "/api/tasks", {"capacity": capacity, "items": items}, operator=True)
    assert response.status_code == 200, response.text[:300]
    return response.json()


def chronic_allocation_network(root: Path, model_url: str, **settings) -> LocalNetwork:
    """3 nodes whose engines evolve task_allocation with the scripted model at `model_url` (an OpenAI-
    compatible loopback server) once its excess over the bound is chronic: the closed loop, quickly."""
    defaults = {
        "evolve": True,
        "llm_provider": "openai_api",
        "llm_model": "scripted",
        "llm_endpoint": model_url + "/v1",
        "evolve_samples": 1,
        "evolve_minutes": 5.0,
        "targets": {"allocation_excess_pct": 3.0},
        "chronic_after": 3,
        "immune_interval_s": 1.0,
    }
    return start_network(root, 3, **{**defaults, **settings})


class AllocationLoad:
    """Batches of Weibull-sized tasks on every node, a few times a second, from `start()` to `stop()`:
    enough that best fit's excess over the bound breaches the 3 % target."""

    def __init__(self, net: LocalNetwork) -> None:
        self.net = net
        self._stop = threading.Event()
        self._driver = threading.Thread(target=self._load, daemon=True)

    def start(self) -> AllocationLoad:
        self._driver.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._driver.join(10)

    def _load(self) -> None:
        rng = random.Random(5)
        while not self._stop.is_set():
            for url in self.net.urls:
                items = [min(100, max(1, round(rng.weibullvariate(45.0, 3.0)))) for _ in range(400)]
                try:
                    send_tasks(url, items, capacity=100)
                except (httpx.HTTPError, AssertionError):  # a busy node: the next batch will do
                    pass
            self._stop.wait(0.3)
