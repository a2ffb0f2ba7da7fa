"""Collaborative evolution on a node: one search of a chronic issue, run as islands on several members
that exchange their best programs as signed messages and trust none of each other's figures.

    await islands.lead(issue, issue_key)   the designated node opens an evolution and runs its island
    await islands.tick()                   join an evolution this node is an island of
    islands.view()                         each island run, its migrants and its winner (stats, dashboard)

The designated member of an issue (the first by sha256(issue_key + member), remedies.py) signs an
`evolution` naming the `config.islands` first members by that rank; each of them runs the same search with
its own seed (the evolution's seed plus its rank) until `ends_at`. A new best of an island's own goes out as
a `migrant`, at most one every `migration_interval_s`; a receiver re-measures every migrant before it
admits it (evolution.search), drops the ones whose figures do not reproduce, and remembers the sender's
misreport: the rest of that sender's migrants in the evolution are dropped unmeasured, and its future ones
get a smaller share. At the end each island signs a final migrant, waits for the others' (a dead island's
until `ends_at + island_final_wait_s`, plus the clock skew allowed), re-measures them and takes the same
winner as every other island (collaboration.agreement). The designated node confirms it on held-out work
and proposes it, naming the islands whose final reproduced, the winner's first. When no proposal for the
evolution comes, the next island by rank takes over: at once if no higher-ranked island sent a final (it
is gone), else after `island_takeover_s` per rank (it may have died while confirming).

A node runs one search at a time (its own, or an island of another's evolution), and an evolution this
node opened before a restart is left to the other islands: the next one by rank proposes its winner.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..collaboration.agreement import Final, island_members
from ..collaboration.messages import MAX_MIGRANTS_PER_ISLAND, evolution_body, migrant_body
from ..collaboration.outcomes import trust_penalties
from ..evolution.exchange import Migrant
from ..models import GeneratedCode, HealthIssue
from .config import NodeConfig
from .envelope import Envelope
from .ledger import Ledger
from .lessons import Lessons
from .refusal import Refusal
from .state import NodeState

if TYPE_CHECKING:  # the engine is loaded on first use (remedies.py): a node that never evolves never loads it
    from ..evolution.engine import EvolutionaryEngineManager

logger = logging.getLogger(__name__)

POLL_S = 0.5
# After the last moment a final may be made (ends_at + island_final_wait_s, by its author's clock), the
# islands wait this much longer for it to arrive, so that every island decides on the same finals.
FINAL_SETTLE_S = 5.0
MISREPORTS_KEY = "island_misreports"  # sender -> migrants of its whose figures did not reproduce here


class Islands:
    def __init__(
        self,
        node_id: str,
        config: NodeConfig,
        state: NodeState,
        ledger: Ledger,
        sign: Callable[[str, dict], Envelope],
        engine: Callable[[], EvolutionaryEngineManager],
        propose: Callable[[HealthIssue, GeneratedCode, str], str | None],
        lessons: Callable[[str, str], Lessons],
        *,
        busy: Callable[[], bool] = lambda: False,
        issue_keys: Callable[[], set[str]] = set,
    ):
        self.id = node_id
        self.config = config
        self.state = state
        self.ledger = ledger
        self._sign = sign
        self._engine = engine
        self._propose = propose
        self._lessons = lessons
        self._busy = busy  # the node's own (solo or leading) evolution is running
        self._issue_keys = issue_keys  # "component:metric" of this node's immune targets for components
        self.runs: deque[dict] = deque(maxlen=20)  # this node's island runs, newest last
        self._joined: set[str] = set()  # evolution ids this node took part in (or declined)
        self._task: asyncio.Task | None = None
        self.searching = False
        self.current: dict | None = None  # the island run under way here, as /api/health shows it

    # ------------------------------------------------------------------ reads

    def misreports(self) -> dict[str, int]:
        return self.state.get(MISREPORTS_KEY, {})

    def view(self) -> dict:
        outcomes = self.ledger.outcomes()
        return {
            "islands_per_evolution": self.config.islands,
            "runs": [dict(run, liars=sorted(run["liars"])) for run in self.runs],
            "misreports": self.misreports(),
            "contradicted_claims": trust_penalties(outcomes),
            "outcomes": [o.to_dict() for o in outcomes],
        }

    # ------------------------------------------------------------------ the designated node

    async def lead(self, issue: HealthIssue, issue_key: str) -> GeneratedCode | None:
        """Open an evolution of `issue` with the islands its rank names, and run the first island; None,
        without opening one, while an evolution this node opened (before a restart) is still open."""
        now = time.time()
        for mine in self.state.messages(kind="evolution"):
            if mine.author == self.id and now < mine.body["ends_at"]:
                logger.info("evolution %s, opened here, is still open: its islands go on", mine.id[:12])
                return None
        islands = island_members(issue_key, self.ledger.members(), self.config.islands)
        ends_at = now + self.config.evolve_minutes * 60.0
        body = evolution_body(
            issue_key,
            issue.affected_component,
            self.config.evolve_language,
            islands,
            ends_at,
            self.config.evolve_seed,
        )
        evolution = self._sign("evolution", body)
        self._joined.add(evolution.id)
        logger.info("opened evolution %s of %s with %d islands", evolution.id[:12], issue_key, len(islands))
        return await self._evolve(evolution, 0, issue)

    # ------------------------------------------------------------------ the other islands

    async def tick(self) -> None:
        if self._task is not None and not self._task.done():
            return
        if not self.config.evolve or self.searching or self._busy():
            return
        now = time.time()
        for evolution_id in self.state.ids(kind="evolution"):
            if evolution_id in self._joined:
                continue
            self._joined.add(evolution_id)  # looked at once: joined now, or never
            evolution = self.state.message(evolution_id)
            assert evolution is not None  # listed just above, and stored messages stay
            body = evolution.body
            if not self._wants(body, now):
                continue
            rank = body["islands"].index(self.id)
            issue = HealthIssue(
                issue_type=body["issue"].partition(":")[2] or body["issue"],
                severity="high",
                current_value=0.0,
                target_value=0.0,
                recommended_action="evolve the component",
                description=(
                    f"island {rank} of evolution {evolution.id[:12]}, opened by node {evolution.author[:12]} "
                    f"for {body['issue']}"
                ),
                issue_source="algorithm",
                affected_component=body["component"],
            )
            self.searching = True  # now, not when the task first runs: the node's own evolve waits for it
            self._task = asyncio.create_task(self._island(evolution, rank, issue))
            return

    def _wants(self, body: dict, now: float) -> bool:
        """Whether this node searches an evolution it is named in: it is open, about a component and metric
        this node's immune system watches, and asks for no more islands than this node's own setting (a
        node with `islands = 1` evolves alone and is nobody's island)."""
        return (
            self.id in body["islands"][1:]  # the first opened it; after a restart the next ones go on
            and now < body["ends_at"]
            and body["issue"] in self._issue_keys()
            and body["issue"].startswith(body["component"] + ":")
            and len(body["islands"]) <= self.config.islands
        )

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _island(self, evolution: Envelope, rank: int, issue: HealthIssue) -> None:
        try:
            code = await self._evolve(evolution, rank, issue)
            if code is not None and not proposed_for(self.ledger, evolution):  # this island takes over
                self._propose(issue, code, evolution.body["issue"])
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("island %d of evolution %s failed", rank, evolution.id[:12])
        finally:  # set by tick before the task ran: whatever happened, this node may search again
            self.searching = False
            self.current = None

    # ------------------------------------------------------------------ one island

    async def _evolve(self, evolution: Envelope, rank: int, issue: HealthIssue) -> GeneratedCode | None:
        body = evolution.body
        run = {
            "evolution": evolution.id,
            "issue": body["issue"],
            "component": body["component"],
            "rank": rank,
            "islands": body["islands"],
            "ends_at": body["ends_at"],
            "state": "searching",
            "sent": 0,
            "admitted": 0,
            "dropped": 0,
            "misreport": 0,
            "liars": set(),
            "finals": 0,
            "contributors": [],
            "winner": None,
            "proposes": False,  # this island is the one that proposes the winner
            "final_sent": False,
        }
        self.runs.append(run)
        exchange = IslandExchange(self, evolution, rank, run)
        minutes = min(self.config.evolve_minutes, max(0.0, body["ends_at"] - time.time()) / 60.0)
        learned = self._lessons(body["component"], body["language"])
        self.searching = True
        self.current = {
            "component": body["component"],
            "since": time.time(),
            "issue": issue.description,
            "island": f"{rank + 1} of {len(body['islands'])}",
        }
        try:
            code = await self._engine().generate_optimized_code(
                issue,
                {
                    **learned.context(),
                    "island": f"{rank + 1} of {len(body['islands'])}",
                    "evolution": evolution.id[:12],
                },
                exchange=exchange,
                seed=body["seed"] + rank,
                minutes=minutes,
                language=body["language"],
                deployed=learned.deployed,
                banned=tuple(learned.banned),
            )
        finally:
            self.searching = False
            self.current = None
            run["state"] = "done"
        if code is not None:  # the winner's island first, then the others whose final reproduced
            winner = (run["winner"] or {}).get("author")
            others = [n for n in body["islands"] if n in exchange.contributors and n != winner]
            contributors = ([winner] if winner else []) + others
            code.collaboration = {"evolution": evolution.id, "contributors": contributors}
        return code

    def record_misreport(self, sender: str) -> None:
        counts = self.misreports()
        counts[sender] = counts.get(sender, 0) + 1
        self.state.set(MISREPORTS_KEY, counts)


class IslandExchange:
    """evolution.exchange's door, over this node's signed messages (see the module docstring)."""

    collaborative = True

    def __init__(self, room: Islands, evolution: Envelope, rank: int, run: dict):
        self.room = room
        self.evolution = evolution
        self.rank = rank
        self.run = run
        self.islands: list[str] = evolution.body["islands"]
        self.ends_at: float = evolution.body["ends_at"]
        self._seen: set[str] = set()
        self._measured: dict[str, int] = {}  # sender -> its migrants handed to the search
        self._pending: tuple | None = None  # the newest offer, waiting for the migration interval
        self._last_sent = -math.inf
        self.contributors: set[str] = set()
        self.finalists: set[str] = set()  # the islands whose final arrived in time, reproduced or not
        # A sender that misreported to this node before, or whose deployed claim the network's live
        # measurements contradicted, gets a smaller share of this evolution's re-measurements.
        self._past = dict(room.misreports())
        for node, count in trust_penalties(room.ledger.outcomes()).items():
            self._past[node] = self._past.get(node, 0) + count
        # What this node sent before a restart counts: admission counts its stored messages too.
        mine = room.state.authored("migrant", evolution.id, room.id)
        run["sent"] = sum(not m.body["final"] for m in mine)
        run["final_sent"] = any(m.body["final"] for m in mine)

    # ---------------------------------------------------------------- in

    def _messages(self) -> list[Envelope]:
        return self.room.state.messages(kind="migrant", proposal_id=self.evolution.id)

    def incoming(self) -> list[Migrant]:
        self._flush()
        found = []
        for message in self._messages():
            if message.id in self._seen or message.author == self.room.id or message.body["final"]:
                continue
            self._seen.add(message.id)
            sender = message.author
            share = max(1, MAX_MIGRANTS_PER_ISLAND // (1 + self._past.get(sender, 0)))
            if sender in self.run["liars"] or self._measured.get(sender, 0) >= share:
                self.run["dropped"] += 1  # not measured: this sender's word is spent
                continue
            self._measured[sender] = self._measured.get(sender, 0) + 1
            found.append(_migrant(message))
        return found

    def judged(self, migrant: Migrant, verdict: str, detail: str) -> None:
        if not migrant.final:  # a final's verdict shows in the winner and the contributors
            self.run[verdict] = self.run.get(verdict, 0) + 1
        if verdict == "misreport":
            self.run["liars"].add(migrant.sender)
            self.room.record_misreport(migrant.sender)
            logger.warning(
                "evolution %s: dropped a migrant of node %s: %s",
                self.evolution.id[:12],
                migrant.sender[:12],
                detail,
            )

    # ---------------------------------------------------------------- out

    def offer(self, attempt, lineage: list[str]) -> None:
        self._pending = (attempt.source, attempt.source_hash, lineage, attempt.score, attempt.scores)
        self._flush()

    def _flush(self) -> None:
        if (
            self._pending is None
            or time.monotonic() - self._last_sent < self.room.config.migration_interval_s
        ):
            return
        if self.run["sent"] >= MAX_MIGRANTS_PER_ISLAND - 1 or time.time() >= self.ends_at:
            return  # the last slot is the final's
        source, digest, lineage, score, scores = self._pending
        self._pending = None
        self._send(source, digest, lineage, score, scores, final=False)

    def _send(self, source, digest, lineage, score, scores, final: bool) -> None:
        body = migrant_body(self.evolution.id, source, digest, lineage, score, scores, final)
        try:
            self.room._sign("migrant", body)
        except Refusal as refusal:  # over a count or past the end (a restart, a slow clock): not fatal
            logger.warning("evolution %s: migrant not sent: %s", self.evolution.id[:12], refusal.message)
            return
        self._last_sent = time.monotonic()
        if final:
            self.run["final_sent"] = True
        else:
            self.run["sent"] += 1

    # ---------------------------------------------------------------- the end

    async def finals(self, own, lineage: list[str]) -> list[Migrant]:
        self.run["state"] = "waiting for finals"
        if not self.run["final_sent"]:
            self._send(own.source, own.source_hash, lineage, own.score, own.scores, final=True)
        config = self.room.config
        cutoff = self.ends_at + config.island_final_wait_s
        # A final stamped (by its author's clock) before the cutoff may reach this node as late as the
        # clocks may differ: wait that long for a missing one, so that every island decides on the same.
        deadline = cutoff + FINAL_SETTLE_S + config.max_clock_skew_s
        while True:
            finals = {m.author: m for m in self._messages() if m.body["final"] and m.created_at <= cutoff}
            if set(self.islands) <= finals.keys() or time.time() >= deadline:
                break
            await asyncio.sleep(POLL_S)
        self.finalists = set(finals)
        self.run["finals"] = len(finals)
        return [_migrant(finals[node]) for node in self.islands if node in finals]

    def decided(self, winner: Final | None, finals: list[Final]) -> None:
        # The islands that contributed: those whose final reproduced here (a liar's does not count).
        self.contributors = {f.author for f in finals if f.reproduced}
        self.run["contributors"] = [n for n in self.islands if n in self.contributors]
        self.run["state"] = "decided"
        self.run["winner"] = (
            None
            if winner is None
            else {"author": winner.author, "source_hash": winner.source_hash, "score": winner.measured}
        )

    async def should_propose(self, winner: Final) -> bool:
        """The first island proposes. An island whose higher-ranked islands all sent no final (gone before
        the end) proposes at once; otherwise it waits `island_takeover_s` per rank for their proposal
        (one of them may have died while confirming), and proposes if none came."""
        if proposed_for(self.room.ledger, self.evolution):
            return False
        if self.rank > 0 and any(node in self.finalists for node in self.islands[: self.rank]):
            deadline = time.time() + self.rank * self.room.config.island_takeover_s
            while time.time() < deadline:
                if proposed_for(self.room.ledger, self.evolution):
                    return False
                await asyncio.sleep(POLL_S)
            if proposed_for(self.room.ledger, self.evolution):
                return False
        if self.rank > 0:
            logger.info(
                "evolution %s: no proposal came; island %d proposes", self.evolution.id[:12], self.rank
            )
        self.run["proposes"] = True
        return True


def proposed_for(ledger: Ledger, evolution: Envelope) -> bool:
    """Whether an island of `evolution` proposed its winner already (admission refuses a proposal naming
    an evolution from anyone else, so a stranger cannot stop the islands by proposing first)."""
    islands = evolution.body["islands"]
    return any(
        p.body["params"].get("evolution") == evolution.id and p.author in islands for p in ledger.proposals()
    )


def _migrant(message: Envelope) -> Migrant:
    body = message.body
    return Migrant(
        message.id,
        message.author,
        body["source"],
        body["source_hash"],
        tuple(body["lineage"]),
        body["score"],
        dict(body["scores"]),
        body["final"],
    )
