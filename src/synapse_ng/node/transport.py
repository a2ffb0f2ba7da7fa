"""The node's calls to its peers: one HTTP client, one bounded request helper, and each peer's proof that
it holds the key of the member pinned at its address.

    transport = PeerTransport(config, metrics)     no I/O until start()
    await transport.start() / await transport.close()
    await transport.request(link, "GET", path, max_bytes=..., timeout=...) -> httpx.Response | None
    await transport.check_identity(link, members) -> bool

A peer is whoever answers at an address: every response is read as a stream and dropped once it passes
the bytes asked for, and a peer counts as the member pinned there only after it signed a fresh challenge.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time

import httpx

from .config import NodeConfig
from .identity import verify_signature
from .metrics import NodeMetrics
from .peers import PeerLink

logger = logging.getLogger(__name__)

MAX_PEER_RESPONSE_BYTES = (
    16 * 1024 * 1024
)  # an inventory or a fetch batch from a peer; anything bigger is refused
IDENTITY_PROOF = (
    b"synapse-ng identity proof:"  # never the start of a signed message (canonical JSON starts with "{")
)


class _TooLarge(Exception):
    """A peer's response passed the bytes this node asked for."""


class PeerTransport:
    def __init__(self, config: NodeConfig, metrics: NodeMetrics):
        self.config = config
        self.metrics = metrics
        self.peers: dict[str, PeerLink] = {url.rstrip("/"): PeerLink(url.rstrip("/")) for url in config.peers}
        self._client: httpx.AsyncClient | None = None

    @property
    def started(self) -> bool:
        return self._client is not None

    async def start(self) -> None:
        self._client = httpx.AsyncClient(timeout=self.config.peer_timeout_s)

    async def close(self) -> None:
        if self._client:
            await self._client.aclose()

    def add_peer(self, url: str) -> None:
        """A member's address to pull from and push to (never this node's own)."""
        if url != self.config.url and url not in self.peers:
            self.peers[url] = PeerLink(url)

    async def request(
        self,
        link: PeerLink,
        method: str,
        path: str,
        *,
        json: dict | None = None,
        max_bytes: int = MAX_PEER_RESPONSE_BYTES,
        timeout: float | None = None,
    ) -> httpx.Response | None:
        """One call to a peer, its response read as a stream and dropped once it passes `max_bytes` (a peer
        cannot make this node hold more than it asked for); None when the call failed."""
        if self._client is None:
            raise RuntimeError("the peer transport is not started: call start() first")
        client = self._client
        started = time.perf_counter()
        try:
            async with asyncio.timeout(timeout or self.config.peer_timeout_s * 2):
                async with client.stream(method, link.url + path, json=json) as response:
                    declared = response.headers.get("content-length")
                    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
                        raise _TooLarge(f"{declared} bytes declared")
                    chunks, size = [], 0
                    async for chunk in response.aiter_bytes():
                        size += len(chunk)
                        if size > max_bytes:
                            raise _TooLarge(f"more than {max_bytes} bytes sent")
                        chunks.append(chunk)
            link.record(response.status_code < 500, time.perf_counter() - started)
            return httpx.Response(response.status_code, headers=response.headers, content=b"".join(chunks))
        except _TooLarge as error:
            logger.warning(
                "peer %s answered %s %s with %s; dropped", link.url, method, path.split("?")[0], error
            )
        except (httpx.HTTPError, TimeoutError):
            pass
        link.record(False, time.perf_counter() - started)
        return None

    async def check_identity(self, link: PeerLink, members: dict[str, str | None]) -> bool:
        """Whether the peer at this address holds the key of the member pinned there: it must sign a fresh
        challenge (its public /api/identity alone proves nothing). An address that answers with another key
        is refused and reported; it is asked again on the next pull, in case the member comes back."""
        pinned = next((node_id for node_id, url in members.items() if url == link.url), None)
        if pinned is None:
            link.identity = (
                "not a member: no member is pinned at this address (members.json or a membership change)"
            )
            return False
        challenge = secrets.token_hex(32)
        response = await self.request(
            link, "GET", f"/api/identity?challenge={challenge}", max_bytes=64 * 1024
        )
        if response is None or response.status_code != 200:
            return False
        try:
            answer = response.json()
            node_id, proof = answer.get("node_id"), answer.get("proof")
        except (ValueError, AttributeError):
            node_id = proof = None
        if node_id == pinned and verify_signature(pinned, IDENTITY_PROOF + challenge.encode(), proof or ""):
            link.node_id, link.identity = pinned, "ok"
            link.software, link.components = _reported_versions(answer)
            return True
        link.node_id = None
        what = f"answered as {str(node_id)[:16]}" if node_id != pinned else "could not prove the key"
        if link.identity is None or not link.identity.startswith("impostor"):
            self.metrics.peer_impostors.inc()
            logger.warning("peer %s %s, but member %s is pinned there: refused", link.url, what, pinned[:16])
        link.identity = f"impostor: {what}, member {pinned[:16]} is pinned at this address"
        return False


def _reported_versions(answer: dict) -> tuple[str | None, dict[str, str]]:
    """The software version and live component versions a peer reports, kept small and well typed."""
    software = answer.get("software")
    components = answer.get("components")
    versions = {}
    if isinstance(components, dict):
        for name, version in list(components.items())[:16]:
            if isinstance(name, str) and isinstance(version, str):
                versions[name[:64]] = version[:64]
    return (software[:40] if isinstance(software, str) else None), versions
