"""Islands of one search that trust no one's scores, in one process: the search's side of a collaborative
evolution (the node's side, with signed gossip between real node processes, is in test_islands_network.py).
Each island has its own scripted model behind a real loopback server; every program is really compiled
and measured. The door between islands is a small in-memory pool here, speaking evolution.exchange."""

from __future__ import annotations

import asyncio

from llm_servers import LoopbackServer, OpenAIWire
from synapse_ng.evolution.exchange import Alone, Migrant
from synapse_ng.evolution.search import Budget, EvolutionSearch, SearchConfig
from synapse_ng.evolution.store import Store
from synapse_ng.languages import source_hash
from synapse_ng.models import CodeLanguage
from test_search import BROKEN, COMPONENT, FAST, WRONG, answer, provider_for

# Correct, and better than the baseline, but not as good as FAST: a second honest program.
UNROLLED = (
    "fn sum_squares(values: &[i32]) -> i64 { let mut t: i64 = 0; let mut i = 0; "
    "while i < values.len() { let v = values[i] as i64; t += v * v; i += 1; } t }"
)


class Pool:
    """What the gossip carries between the islands of this test: offers, and each island's final."""

    def __init__(self, names: list[str]):
        self.boxes: dict[str, list[Migrant]] = {name: [] for name in names}
        self.finals: dict[str, Migrant] = {}


class Door(Alone):
    collaborative = True

    def __init__(self, pool: Pool, name: str, proposer: bool):
        self.pool, self.name, self.proposer = pool, name, proposer
        self.verdicts: list[tuple[str, str, str]] = []
        self.sent: list[Migrant] = []
        self.winner = None

    def _migrant(self, attempt, lineage, final: bool) -> Migrant:
        return Migrant(
            f"{self.name}-{len(self.sent)}",
            self.name,
            attempt.source,
            attempt.source_hash,
            tuple(lineage),
            attempt.score,
            dict(attempt.scores),
            final,
        )

    def incoming(self):
        box = self.pool.boxes[self.name]
        taken, box[:] = list(box), []
        return taken

    def offer(self, attempt, lineage):
        migrant = self._migrant(attempt, lineage, False)
        self.sent.append(migrant)
        for name, box in self.pool.boxes.items():
            if name != self.name:
                box.append(migrant)

    def judged(self, migrant, verdict, detail):
        self.verdicts.append((migrant.sender, verdict, detail))

    async def finals(self, own, lineage):
        self.pool.finals[self.name] = self._migrant(own, lineage, True)
        while len(self.pool.finals) < len(self.pool.boxes):
            await asyncio.sleep(0.05)
        return [self.pool.finals[name] for name in sorted(self.pool.finals)]

    def decided(self, winner, finals):
        self.winner = winner

    async def should_propose(self, winner):
        return self.proposer


def island(tmp_path, name: str, server, door: Door, samples: int = 2) -> EvolutionSearch:
    return EvolutionSearch(
        COMPONENT,
        provider_for(server),
        Store(tmp_path / name),
        problem="sum_squares is slow on long inputs",
        config=SearchConfig(islands=1, concurrency=1, tune_share=0.0, random_cases=5, seed=len(name)),
        budget=Budget(samples=samples),
        exchange=door,
    )


def forged(source: str, score: float, sender: str = "forger") -> Migrant:
    return Migrant("forged", sender, source, source_hash(source, CodeLanguage.RUST), (), score, {}, False)


def test_islands_admit_only_what_reproduces_and_agree_on_one_winner(tmp_path):
    pool = Pool(["a", "b"])
    doors = {"a": Door(pool, "a", proposer=True), "b": Door(pool, "b", proposer=False)}
    # A forger's migrants reach island b before anything else: FAST with a score better than FAST has,
    # and a wrong program claiming a score at all.
    pool.boxes["b"] += [forged(FAST, 1.0), forged(WRONG, 1.0)]
    servers = {
        "a": LoopbackServer(OpenAIWire(), answer(UNROLLED), answer(WRONG)),
        # b's model writes FAST after the forger sent it: measured again, on b's own word this time.
        "b": LoopbackServer(OpenAIWire(), answer(WRONG), answer(FAST)),
    }

    async def both():
        return await asyncio.gather(
            *(island(tmp_path, name, servers[name], doors[name]).run() for name in ("a", "b"))
        )

    try:
        result_a, result_b = asyncio.run(both())
    finally:
        for server in servers.values():
            server.close()
    b_verdicts = doors["b"].verdicts
    assert ("forger", "misreport") in {(s, v) for s, v, _ in b_verdicts}, b_verdicts
    assert ("forger", "dropped") in {(s, v) for s, v, _ in b_verdicts}, b_verdicts
    # a's program reached b and was admitted once b had measured it; FAST, forged, was refused for its score.
    assert any(s == "a" and v == "admitted" for s, v, _ in b_verdicts), b_verdicts
    misreport = next(d for s, v, d in b_verdicts if v == "misreport")
    assert "claimed a training score of 1" in misreport
    b_fast = [
        a
        for a in Store(tmp_path / "b").candidates(result_b.run_id)
        if a.source_hash == source_hash(FAST, "rust")
    ]
    judged = [a.status.value for a in b_fast if a.status.value != "duplicate"]  # the scripted model repeats
    assert judged == ["misreported", "correct"], "a forged claim poisons nothing"
    # Both islands derive the same winner from the finals, each re-measured: the best that reproduced.
    winner = doors["a"].winner
    assert winner == doors["b"].winner
    assert (winner.author, winner.source_hash) == ("b", source_hash(FAST, CodeLanguage.RUST))
    # Only the proposer confirms on held-out work, and it proposes b's program.
    assert result_a.improved, result_a.reason
    assert result_a.best.source_hash == winner.source_hash
    assert not result_b.improved and "another island proposes it" in result_b.reason


def test_a_final_whose_claim_does_not_reproduce_cannot_win(tmp_path):
    pool = Pool(["a", "broken", "liar"])
    door = Door(pool, "a", proposer=True)
    # The liar's final: UNROLLED claiming a score no program reaches. It is measured and refused.
    pool.finals["liar"] = Migrant(
        "l", "liar", UNROLLED, source_hash(UNROLLED, CodeLanguage.RUST), (), 1.0, {}, True
    )
    # A final that does not build is dropped (built as sent: no fixes, no model call spent on it), and the
    # decision goes on.
    pool.finals["broken"] = Migrant(
        "b", "broken", BROKEN, source_hash(BROKEN, CodeLanguage.RUST), (), 1.0, {}, True
    )
    server = LoopbackServer(OpenAIWire(), answer(WRONG), answer(WRONG))
    try:
        result = asyncio.run(island(tmp_path, "a", server, door).run())
        asked = len(server.requests)
    finally:
        server.close()
    assert door.winner is None
    verdicts = {(s, v) for s, v, _ in door.verdicts}
    assert ("liar", "misreport") in verdicts and ("broken", "dropped") in verdicts
    assert not result.improved and "no island's final program" in result.reason
    assert asked == len(
        [a for a in Store(tmp_path / "a").candidates(result.run_id) if a.operator.startswith("llm-")]
    )
