"""The operator's page: every node serves a dashboard at `/`, live, with nothing fetched from the internet.

    GET /                          the page (node/ui/index.html; its script and style under /ui/)
    GET /api/dashboard             one snapshot of everything the page shows (dashboard_snapshot)
    GET /api/dashboard/events      server-sent events: a "snapshot" event whenever the snapshot changes
    GET /api/evolution/runs/{id}   one engine run: its candidates over time, best-so-far, diff, held-out

The page is plain HTML, CSS and JavaScript in the package (no framework, no build step, no CDN); it
draws its charts as SVG itself. Reading needs no credential, like the JSON API; the rollback button
asks for the operator's token and calls the same route as `synapse-ng upgrade rollback`.

A stream looks at the node's write counter every STREAM_CHECK_S and sends a new snapshot as soon as the
node stored something (a vote, a proposal, a rollout report), so a vote gossiped here shows within about
a tenth of a second; in between, a snapshot at least every REFRESH_S carries what changes in memory only
(measurements, call counters). What a reader can make the node compute is bounded: one snapshot shared by
all streams, rebuilt at most every MIN_REBUILD_S; at most MAX_STREAMS streams at once (more get 503); a
bounded history in every list.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from importlib.resources import files
from typing import Any

from fastapi import FastAPI, Path, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from ..errors import UsageError
from .node import Node
from .refusal import Refusal
from .views import proposal_view

logger = logging.getLogger(__name__)

MAX_STREAMS = 8
STREAM_CHECK_S = 0.1
MIN_REBUILD_S = 0.2
REFRESH_S = 2.0
HEARTBEAT_S = 15.0
UI_FILES = {"app.js": "text/javascript; charset=utf-8", "style.css": "text/css; charset=utf-8"}
MAX_CURVE_POINTS = 5000


def add_dashboard(app: FastAPI, node: Node, software: str) -> None:
    ui = files(__package__) / "ui"
    streams = {"open": 0}
    shared = SharedSnapshot(node, software)

    @app.get("/", include_in_schema=False)
    @app.get("/dashboard", include_in_schema=False)
    def page() -> HTMLResponse:
        return HTMLResponse(ui.joinpath("index.html").read_text(encoding="utf-8"))

    @app.get("/ui/{name}", include_in_schema=False)
    def asset(name: str) -> Response:
        if name not in UI_FILES:
            raise Refusal(404, f"no file {name[:64]!r} in the dashboard")
        return Response(ui.joinpath(name).read_bytes(), media_type=UI_FILES[name])

    @app.get("/api/dashboard")
    def snapshot() -> dict:
        return dashboard_snapshot(node, software)

    @app.get("/api/dashboard/events")
    async def events(request: Request) -> StreamingResponse:
        if streams["open"] >= MAX_STREAMS:
            raise Refusal(503, f"{MAX_STREAMS} dashboards are already following this node; try again later")
        streams["open"] += 1
        logger.debug("dashboard stream opened: %d open", streams["open"])

        async def stream():
            last_digest, last_sent = "", time.monotonic()
            try:
                while not await request.is_disconnected():
                    digest, data = shared.current()
                    if digest != last_digest:
                        last_digest, last_sent = digest, time.monotonic()
                        yield f"event: snapshot\ndata: {data}\n\n"
                    elif time.monotonic() - last_sent > HEARTBEAT_S:
                        last_sent = time.monotonic()
                        yield ": still here\n\n"  # a comment line keeps proxies from closing the stream
                    await asyncio.sleep(STREAM_CHECK_S)
            finally:
                streams["open"] -= 1
                logger.debug("dashboard stream closed: %d open", streams["open"])

        headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)

    @app.get("/api/evolution/runs/{run_id}")
    def run_detail(run_id: str = Path(pattern=r"^[A-Za-z0-9_.-]{1,80}$")) -> dict:
        return run_view(node, run_id)


class SharedSnapshot:
    """The snapshot every stream sends, as (digest, JSON text): rebuilt when the node stored something or
    REFRESH_S went by, never more often than MIN_REBUILD_S, whatever the number of streams."""

    def __init__(self, node: Node, software: str) -> None:
        self.node = node
        self.software = software
        self._writes = -1
        self._built = 0.0
        self._current = ("", "")

    def current(self) -> tuple[str, str]:
        now = time.monotonic()
        changed = self.node.state.writes != self._writes or now - self._built > REFRESH_S
        if changed and now - self._built >= MIN_REBUILD_S:
            self._writes = self.node.state.writes
            self._built = now
            snapshot = dashboard_snapshot(self.node, self.software)
            clock = snapshot["node"].pop("now")  # the clock alone is no change worth a message
            digest = hashlib.sha256(json.dumps(snapshot, default=str).encode()).hexdigest()
            snapshot["node"]["now"] = clock
            self._current = (digest, json.dumps(snapshot, default=str))
        return self._current


def dashboard_snapshot(node: Node, software: str) -> dict[str, Any]:
    config = node.config
    remedies = node.remedies
    return {
        "node": {
            "id": node.id,
            "url": config.url,
            "software": software,
            "started_at": node.started_at,
            "engine": {
                "enabled": config.evolve,
                "provider": config.llm_provider,
                "model": config.llm_model or ("embedded" if config.llm_provider == "local" else ""),
            },
            "evolving": node.evolving,
            "now": time.time(),
        },
        "peers": [link.to_dict() for link in node.peers.values()],
        "health": {
            "targets": [
                {"metric": t.metric, "limit": t.limit, "bound": t.bound, "component": t.component}
                for t in node.immune.targets
            ],
            "latest": node.last_measurements,
            "history": [[at, values] for at, values in list(remedies.measurement_history)[-240:]],
            "consecutive": dict(node.immune.consecutive),
            "chronic_after": config.chronic_after,
            "issues": [issue.__dict__ for issue in list(node.immune.history)[-20:]],
            "actions": list(node.actions)[-20:],
        },
        "proposals": [_proposal(node, p) for p in sorted(node.proposals(), key=_newest)[:20]],
        "upgrades": {
            "rollouts": _rollouts(node),
            "history": node.state.history()[-50:],
            "components": node.component_versions(),
        },
        "runs": _runs(node),
        "islands": node.islands.view(),
    }


def _newest(proposal) -> float:
    return -proposal.created_at


def _proposal(node: Node, proposal) -> dict:
    view = proposal_view(node, proposal)
    latest: dict[str, dict] = {}
    for vote in view["votes"]:  # a voter's highest seq counts
        if vote["voter"] not in latest or vote["seq"] > latest[vote["voter"]]["seq"]:
            latest[vote["voter"]] = vote
    view["votes"] = sorted(latest.values(), key=lambda v: v["voter"])
    view["verdict"] = node.state.get(f"verdict:{proposal.id}")  # this node's own verification
    view["members"] = len(node.members())
    return view


def _rollouts(node: Node) -> list[dict]:
    found = []
    for proposal_id, status in node.ledger.rollouts().items():
        view = status.to_dict()
        view["window_started_at"] = node.state.get(f"window:{proposal_id}")
        view["window_s"] = node.config.health_window_s
        found.append(view)
    return found


def _engine_store(node: Node):
    """The engine's store, or None on a node whose engine is off and was never created: a reader does not
    make the node create one just to learn that it has no runs."""
    if not node.config.evolve and not node.remedies.engine_created:
        return None
    return node.engine().store


def _runs(node: Node) -> list[dict]:
    store = _engine_store(node)
    if store is None:
        return []
    return [
        {
            "run_id": run.run_id,
            "component": run.component,
            "status": run.status,
            "reason": run.reason,
            "samples": run.samples,
            "elapsed_s": run.elapsed_s,
            "model": run.model,
            "created_at": run.created_at,
        }
        for run in store.list_runs(10)
    ]


def run_view(node: Node, run_id: str) -> dict:
    from ..evolution.history import minutes_since, run_summary

    store = _engine_store(node)
    if store is None:
        raise Refusal(404, "the Evolutionary Engine is off on this node: it has no runs")
    try:
        summary = run_summary(store, run_id)
    except UsageError:
        raise Refusal(404, f"no engine run {run_id!r} on this node") from None
    run = summary.run
    return {
        "run_id": run.run_id,
        "component": run.component,
        "direction": run.direction,
        "status": run.status,
        "reason": run.reason,
        "samples": run.samples,
        "elapsed_s": run.elapsed_s,
        "baseline_score": summary.baseline.score if summary.baseline else None,
        "candidates": [
            {
                "id": a.id,
                "minutes": minutes_since(run, a),
                "score": a.score,
                "operator": a.operator,
                "status": a.status.value if a.status else None,
            }
            for a in summary.attempts[-MAX_CURVE_POINTS:]
        ],
        "best_so_far": [vars(point) for point in summary.curve],
        "best": None
        if summary.best is None
        else {
            "id": summary.best.id,
            "score": summary.best.score,
            "improvement_pct": summary.best.improvement_pct,
            "operator": summary.best.operator,
        },
        "diff": summary.diff,
        "heldout": summary.heldout(),
    }
