"""Gossip and anti-entropy: how messages spread between members.

    await gossip.push(envelope)   forward a new message to the peers the live gossip_protocol chooses
    await gossip.anti_entropy()   pull from every peer what it stored since the last complete pull
    gossip.synced_since(moment)   whether a majority of the peers were pulled from completely since then
    gossip.late_holders           late vote id -> the peers whose inventories list it (voting counts them)

Pushing is fast and may miss; pulling is complete and slower: together every member ends up holding the
same messages, which is all the state there is.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable

from ..json_bounds import HEX64
from .admission import Admission
from .config import NodeConfig
from .envelope import Envelope
from .peers import PeerLink
from .state import NodeState
from .transport import PeerTransport

COALESCE_S = 0.1  # the messages of one such interval go out together
FETCH_BATCH = 500  # message ids asked of a peer at once


class Gossip:
    def __init__(
        self,
        config: NodeConfig,
        state: NodeState,
        transport: PeerTransport,
        admission: Admission,
        choose_peers: Callable[[list[PeerLink], str, int], list[PeerLink]],
    ):
        self.config = config
        self.state = state
        self.transport = transport
        self.admission = admission
        self._choose_peers = choose_peers
        self._outbox: list[Envelope] = []
        self.late_holders: dict[str, set[str]] = {i: set() for i in state.late_votes()}

    async def push(self, envelope: Envelope) -> None:
        """Queue a new message for forwarding; the messages of one short interval go out together, one
        POST per chosen peer, so a burst costs a few requests instead of one per message and peer."""
        self._outbox.append(envelope)
        if len(self._outbox) == 1:
            await asyncio.sleep(COALESCE_S)
            await self._flush()

    async def _flush(self) -> None:
        batch, self._outbox = self._outbox, []
        if not batch or not self.transport.started:
            return
        peers = self.transport.peers
        per_link: dict[str, list[dict]] = {}
        for envelope in batch:
            # Forward to peers chosen by the live gossip_protocol, never back to the author.
            links = [link for link in peers.values() if link.node_id != envelope.author]
            for link in self._choose_peers(links, envelope.id, self.config.gossip_fanout) if links else []:
                per_link.setdefault(link.url, []).append(envelope.to_dict())
        await asyncio.gather(
            *(
                self.transport.request(peers[url], "POST", "/api/gossip", json={"messages": messages})
                for url, messages in per_link.items()
            )
        )

    async def anti_entropy(self) -> None:
        """Pull from every peer at once (a dead peer's time-out must not delay the live ones)."""
        await asyncio.gather(*(self._pull(link) for link in list(self.transport.peers.values())))

    async def _pull(self, link: PeerLink) -> None:
        """Check the peer's identity, then fetch every message it has and this node lacks."""
        if link.identity != "ok" and not await self.transport.check_identity(link, self.state.members()):
            return
        started = time.time()
        # Only what the peer stored since the last complete pull (its own sequence numbers): a pull costs
        # what is new, not the size of the whole history.
        response = await self.transport.request(link, "GET", f"/api/gossip/inventory?after={link.cursor}")
        if response is None:
            link.identity = None  # unreachable: whoever answers next must prove the key again
            return
        if response.status_code != 200:
            return
        try:
            inventory = response.json()
            ids = [i for i in inventory["ids"] if isinstance(i, str) and HEX64.fullmatch(i)]
            seq = inventory["seq"]
            if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq < 2**63:
                return
        except (ValueError, KeyError, TypeError, RecursionError):
            return
        for message_id in ids:
            if message_id in self.late_holders:
                self.late_holders[message_id].add(link.url)
        missing = [i for i in ids if not self.state.has_message(i)]
        if missing and not await self._fetch(link, missing):
            # More to fetch, a vote whose proposal is still to come, or over a rate: pull again from here.
            return
        link.cursor = max(link.cursor, seq)
        link.synced_at = started

    async def _fetch(self, link: PeerLink, missing: list[str]) -> bool:
        """Fetch and ingest the messages this node lacks; True when nothing is left to pull again."""
        fetched = await self.transport.request(
            link, "POST", "/api/gossip/fetch", json={"ids": missing[:FETCH_BATCH]}
        )
        if fetched is None or fetched.status_code != 200:
            return False
        try:
            messages = fetched.json()["messages"]
        except (ValueError, KeyError, TypeError, RecursionError):
            return False
        results = self.admission.ingest_batch(messages if isinstance(messages, list) else [], pulled=True)
        for result in results:
            if result.get("late"):
                self.late_holders.setdefault(result["id"], set()).add(link.url)
        return not (
            len(missing) > FETCH_BATCH
            or len(messages) < min(len(missing), FETCH_BATCH)
            or any(r.get("status") in (404, 429, 503) for r in results)
        )

    def synced_since(self, moment: float) -> bool:
        """Whether a majority of the peers (rounded up) were pulled from completely since `moment`."""
        links = list(self.transport.peers.values())
        synced = sum(1 for link in links if link.synced_at is not None and link.synced_at >= moment)
        return synced >= math.ceil(len(links) / 2)
