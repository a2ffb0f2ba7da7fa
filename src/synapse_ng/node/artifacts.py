"""The WASM modules a node keeps: stored within the store's bound, fetched from peers within the size a
proposal declared, and collected once neither an open proposal, a standing rollout nor a live version
needs them.

    artifacts.store(wasm) -> sha256              Refusal(507) when the store stays full after a collection
    await artifacts.fetch(sha256, author, size)  from here, else from the peers (the author first)
    artifacts.collect() -> [sha256 dropped]      (collect_if_due: at most every GC_INTERVAL_S)
"""

from __future__ import annotations

import hashlib
import logging
import time

from .ledger import Ledger
from .metrics import NodeMetrics
from .refusal import Refusal
from .runtime import COMPONENTS
from .transport import PeerTransport

logger = logging.getLogger(__name__)

FETCH_RETRY_S = 3.0  # an artifact no peer had is asked for again after this long
GC_INTERVAL_S = 30.0


class Artifacts:
    def __init__(self, ledger: Ledger, transport: PeerTransport, metrics: NodeMetrics):
        self.ledger = ledger
        self.state, self.config = ledger.state, ledger.config
        self.transport, self.metrics = transport, metrics
        self._fetch_failed: dict[str, float] = {}  # artifact -> when no peer had it
        self._collected_at = 0.0

    def store(self, wasm: bytes) -> str:
        """Keep a module, within the store's total bound (what nothing needs is collected first)."""
        sizes = self.state.artifact_sizes()
        if sum(sizes.values()) + len(wasm) > self.config.max_artifact_store_bytes:
            self.collect()
            sizes = self.state.artifact_sizes()
            if sum(sizes.values()) + len(wasm) > self.config.max_artifact_store_bytes:
                raise Refusal(
                    507,
                    f"this node's artifact store is full ({sum(sizes.values())} of "
                    f"{self.config.max_artifact_store_bytes} bytes, "
                    "all needed by open proposals or versions)",
                )
        return self.state.put_artifact(wasm)

    def collect_if_due(self) -> None:
        if time.time() - self._collected_at > GC_INTERVAL_S:
            self.collect()

    def collect(self) -> list[str]:
        """Delete the modules that neither an open proposal, an approved rollout that still stands, nor a live
        version needs (version history keeps its hashes; a reverted version's module is not kept)."""
        now, keep = time.time(), set()
        for proposal in self.ledger.proposals():
            if proposal.body["type"] != "code_upgrade":
                continue
            sha = proposal.body["params"]["wasm_sha256"]
            if self.ledger.is_open(proposal, now):
                keep.add(sha)
                continue
            outcome = self.ledger.decided(proposal.id)
            if outcome is None or (
                outcome["status"] == "approved"
                and self.ledger.rollout_status(proposal).state != "rolled_back"
            ):
                keep.add(sha)  # undecided yet, or its rollout stands
        for name in COMPONENTS:
            keep.update(sha for _, sha in self.state.live_versions(name))
        drop = [sha for sha in self.state.artifact_sizes() if sha not in keep]
        if drop:
            self.state.delete_artifacts(drop)
            self.metrics.artifacts_collected.inc(len(drop))
            logger.info("collected %d artifacts no proposal or version needs", len(drop))
        self._collected_at = now
        return drop

    async def fetch(self, sha256: str, author: str | None = None, size: int | None = None) -> bytes | None:
        """The module with this hash, from here or a peer: streamed, and dropped once it passes its declared
        size (or this node's maximum), so a peer cannot make this node read more than the proposal said."""
        wasm = self.state.artifact(sha256)
        if wasm is not None:
            return wasm
        if time.time() - self._fetch_failed.get(sha256, 0.0) < FETCH_RETRY_S:
            return None
        cap = (
            min(int(size), self.config.max_artifact_bytes)
            if size is not None
            else self.config.max_artifact_bytes
        )
        peers = self.transport.peers.values()
        links = sorted(
            (link for link in peers if link.identity == "ok"), key=lambda link: link.node_id != author
        )
        for link in links:
            response = await self.transport.request(
                link,
                "GET",
                f"/api/artifacts/{sha256}",
                max_bytes=cap,
                timeout=self.config.artifact_fetch_timeout_s,
            )
            if response is None or response.status_code != 200:
                continue
            if hashlib.sha256(response.content).hexdigest() != sha256:
                logger.warning(
                    "peer %s sent an artifact that does not match %s; ignored", link.url, sha256[:16]
                )
                continue
            try:
                self.store(response.content)
            except Refusal as refusal:
                logger.warning("artifact %s not kept: %s", sha256[:16], refusal.message)
            return response.content
        self._fetch_failed[sha256] = time.time()
        return None
