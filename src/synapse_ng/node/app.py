"""A node's HTTP API (FastAPI; the OpenAPI document is at /openapi.json, the docs at /docs).

Every request body is a pydantic model, so malformed JSON and wrong types get a 422 that says which
field is wrong; a refused message gets the status that says why (401 bad signature or no operator
credential, 403 unknown identity, 404 unknown proposal, 409 replay, closed proposal or a yes this node has
not verified, 413 too large, 422 invalid body, 429 over a member's quota, 507 artifact store full).
The routes that make the node sign or act need its operator's token (SECURITY.md); peers need none.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
from contextlib import asynccontextmanager
from importlib.metadata import version as package_version
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, ConfigDict, Field

from ..components.task_allocation.protocol import MAX_CAPACITY, MAX_ITEMS
from ..governance.proposals import (
    MAX_MEMBERSHIP_CHANGES,
    Changes,
    Choice,
    Component,
    Description,
    Evidence,
    Language,
    NewMember,
    NodeId,
    RequiredSource,
    Title,
    UpgradeTitle,
)
from ..json_bounds import HEX64, MAX_REASON_CHARS
from .dashboard import add_dashboard
from .envelope import MAX_JSON_DEPTH, Envelope, EnvelopeError, json_text_problem
from .node import Node
from .operator import is_operator
from .refusal import Refusal
from .transport import IDENTITY_PROOF
from .views import proposal_view

SOFTWARE_VERSION = f"synapse-ng {package_version('synapse-ng')}"

logger = logging.getLogger(__name__)

HEX64_PATTERN = f"^{HEX64.pattern}$"
FETCH_RESPONSE_BYTES = 4 * 1024 * 1024  # what one /api/gossip/fetch answer holds at most
ProposalId = Annotated[
    str, Path(pattern=HEX64_PATTERN, description="a proposal id: 64 lowercase hex characters")
]
# The node composes its own message from a reason (readable_text replaces what a message may not hold), so
# only the length is the message's bound here.
ReasonText = Annotated[str, Field(max_length=MAX_REASON_CHARS)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


# The request bodies are made of the message models' field types (governance.proposals): one set of limits.


class ConfigChangeRequest(Strict):
    title: Title
    description: Description = ""
    changes: Changes = Field(description="tunable config keys and their new values")


class CodeUpgradeRequest(Strict):
    component: Component
    wasm_base64: str = Field(min_length=4, description="the module, base64")
    evidence: Evidence = Field(description="the evidence record `synapse-ng evaluate --evidence-out` writes")
    source: RequiredSource = Field(description="the source every voter rebuilds to the module's SHA-256")
    language: Language = "rust"
    title: UpgradeTitle = ""
    description: Description = ""


class MembershipRequest(Strict):
    title: Title
    description: Description = ""
    add: list[NewMember] = Field(default=[], max_length=MAX_MEMBERSHIP_CHANGES)
    remove: list[NodeId] = Field(default=[], max_length=MAX_MEMBERSHIP_CHANGES)


class VoteRequest(Strict):
    choice: Choice
    reason: ReasonText = ""


class GossipBatch(Strict):
    messages: list[dict[str, Any]] = Field(max_length=1000)


class FetchRequest(Strict):
    ids: list[Annotated[str, Field(pattern=HEX64_PATTERN)]] = Field(max_length=1000)


class RollbackRequest(Strict):
    reason: ReasonText = "operator rollback"


class TaskBatch(Strict):
    capacity: int = Field(ge=1, le=MAX_CAPACITY)
    items: list[Annotated[int, Field(ge=1)]] = Field(max_length=MAX_ITEMS)


class BodyLimit:
    """Refuses a request body larger than `limit` bytes with a 413, whether or not it declares its length.

    The body is read here, up to the limit, before the app sees any of it (the app's own body parsing
    would turn an error raised while reading into a generic 400). A JSON body the parser must not see
    (nested deeper than max_depth levels, a number of more than 4300 digits, not UTF-8) gets a 422
    here: the parser would recurse down to a RecursionError or raise ValueError, a generic 400."""

    def __init__(self, app, limit: int, max_depth: int = MAX_JSON_DEPTH):
        self.app = app
        self.limit = limit
        self.max_depth = max_depth

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await _too_large(send, self.limit)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.limit:
                return await _too_large(send, self.limit)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        content_type = dict(scope.get("headers") or []).get(b"content-type", b"").lower()
        if body and (not content_type or b"json" in content_type):  # what the app would parse as JSON
            problem = json_text_problem(body, self.max_depth)
            if problem is not None:
                return await JSONResponse({"error": problem}, status_code=422)(scope, receive, send)
        delivered = False

        async def replay():
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _too_large(send, limit: int) -> None:
    body = f'{{"error": "request body larger than {limit} bytes"}}'.encode()
    await send(
        {"type": "http.response.start", "status": 413, "headers": [(b"content-type", b"application/json")]}
    )
    await send({"type": "http.response.body", "body": body})


def create_app(node: Node, *, manage_node: bool = True) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if manage_node:
            await node.start()
        try:
            yield
        finally:
            if manage_node:
                await node.stop()

    # FastAPIOffline: /docs with Swagger UI's files from the package, not a CDN (a node may be offline).
    app = FastAPIOffline(
        title="Synapse-NG node",
        version="0.1.0",
        lifespan=lifespan,
        description="A self-governing node: governance, rollouts, immune system, the components at work.",
    )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError):
        node.metrics.refused.labels(status="422").inc()
        problems = []
        for item in error.errors():
            where = ".".join(str(part) for part in item.get("loc", ()) if part != "body") or "body"
            # A field type's own refusal (a ProposalError) already says what was expected.
            problems.append(f"{where}: {str(item.get('msg')).removeprefix('Value error, ')}")
        return JSONResponse(
            {"error": "invalid request: " + "; ".join(problems[:10]), "details": problems[:50]},
            status_code=422,
        )

    @app.exception_handler(Refusal)
    async def refused(request: Request, refusal: Refusal):
        node.metrics.refused.labels(status=str(refusal.status)).inc()
        return JSONResponse({"error": refusal.message}, status_code=refusal.status)

    def operator_only(request: Request) -> None:
        """The routes that make this node sign or act need its operator's credential (SECURITY.md)."""
        if not is_operator(node.operator_token, request.headers.get("authorization")):
            raise Refusal(
                401,
                "this route needs the node operator's credential: "
                "send the header 'Authorization: Bearer TOKEN' "
                f"with the token in {node.config.path / 'operator.token'} (the CLI reads it with --data DIR "
                "or $SYNAPSE_OPERATOR_TOKEN)",
            )

    operator = [Depends(operator_only)]

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException):
        return JSONResponse({"error": str(error.detail)}, status_code=error.status_code)

    # ------------------------------------------------------------------ identity and health

    @app.get("/api/identity")
    def identity(
        challenge: Annotated[
            str | None, Query(pattern=HEX64_PATTERN, description="64 hex chars a peer asks this node to sign")
        ] = None,
    ):
        answer = {
            "node_id": node.id,
            "url": node.config.url,
            "members": node.members(),
            "started_at": node.started_at,
            "software": SOFTWARE_VERSION,
            "components": {name: info["active"] for name, info in node.component_versions().items()},
        }
        if challenge is not None:  # a peer checks that this address holds the key pinned to it
            answer["proof"] = node.identity.sign(IDENTITY_PROOF + challenge.encode())
        return answer

    @app.get("/api/evolutionary-engine/stats")
    def engine_stats():
        return {
            "enabled": node.config.evolve,
            **node.engine().get_statistics(),
            "islands": node.islands.view(),
        }

    @app.get("/api/islands")
    def islands():
        """Collaborative evolution: this node's island runs, their migrants and winners, and the senders
        whose figures did not reproduce here."""
        return node.islands.view()

    @app.get("/api/health")
    def health():
        measurements = node.last_measurements
        return {
            "measurements": measurements,
            "targets": [
                {"metric": t.metric, "limit": t.limit, "bound": t.bound, "component": t.component}
                for t in node.immune.targets
            ],
            "consecutive": dict(node.immune.consecutive),
            "peers": [link.to_dict() for link in node.peers.values()],
            "evolving": node.evolving,
        }

    @app.get("/api/health/issues")
    def issues():
        return {
            "issues": [issue.__dict__ for issue in list(node.immune.history)],
            "actions": list(node.actions),
        }

    # ------------------------------------------------------------------ governance

    @app.get("/api/proposals")
    def list_proposals():
        return {"proposals": [proposal_view(node, p) for p in node.proposals()]}

    @app.get("/api/proposals/{proposal_id}")
    def get_proposal(proposal_id: ProposalId):
        proposal = node.ledger.proposal(proposal_id)
        if proposal is None:
            raise Refusal(404, f"unknown proposal {proposal_id[:16]}")
        return proposal_view(node, proposal, full=True)

    @app.post("/api/proposals", status_code=201, dependencies=operator)
    def create_proposal(request: ConfigChangeRequest):
        envelope = node.create_proposal(
            "config_change", request.title, request.description, {"changes": request.changes}
        )
        return proposal_view(node, envelope)

    @app.post("/api/proposals/membership", status_code=201, dependencies=operator)
    def create_membership_change(request: MembershipRequest):
        params: dict[str, Any] = {}
        if request.add:
            params["add"] = [member.model_dump() for member in request.add]
        if request.remove:
            params["remove"] = list(request.remove)  # (the count in all is the message model's to check)
        envelope = node.create_proposal("membership_change", request.title, request.description, params)
        return proposal_view(node, envelope)

    @app.post("/api/proposals/code-upgrade", status_code=201, dependencies=operator)
    def create_code_upgrade(request: CodeUpgradeRequest):
        try:
            wasm = base64.b64decode(request.wasm_base64, validate=True)
        except (binascii.Error, ValueError):
            raise Refusal(422, "wasm_base64 is not valid base64") from None
        envelope = node.propose_upgrade(
            request.component,
            wasm,
            request.evidence,
            source=request.source,
            language=request.language,
            title=request.title,
            description=request.description,
        )
        return proposal_view(node, envelope)

    @app.post("/api/proposals/{proposal_id}/vote", status_code=201, dependencies=operator)
    def vote(proposal_id: ProposalId, request: VoteRequest):
        envelope = node.cast_vote(proposal_id, request.choice, request.reason)
        return {"id": envelope.id, "proposal_id": proposal_id, "choice": request.choice, "voter": node.id}

    @app.post("/api/messages", status_code=201)
    def submit_message(message: dict[str, Any]):
        """A message signed by a member elsewhere (a client holding its own key)."""
        try:
            envelope = Envelope.from_dict(message)
        except EnvelopeError as error:
            raise Refusal(422, str(error)) from None
        accepted = node.ingest(envelope, direct=True)
        return {"id": accepted.id, "new": accepted.new}

    # ------------------------------------------------------------------ gossip

    @app.post("/api/gossip")
    def gossip(batch: GossipBatch):
        return {"results": node.ingest_batch(batch.messages)}

    @app.get("/api/gossip/inventory")
    def inventory(
        after: Annotated[
            int,
            Query(
                ge=0,
                le=2**63 - 1,  # SQLite's rowid is a signed 64-bit integer
                description="only messages stored after this sequence number",
            ),
        ] = 0,
    ):
        ids, seq = node.state.inventory_after(after)
        return {"ids": ids, "seq": seq}

    @app.post("/api/gossip/fetch")
    def fetch(request: FetchRequest):
        # At most FETCH_RESPONSE_BYTES of messages (always one): the peer asks again for the rest.
        messages: list[dict] = []
        size = 0
        for message_id in request.ids:
            message = node.state.message(message_id)
            if message is None:
                continue
            data = message.to_dict()
            size += len(json.dumps(data["body"]))
            if messages and size > FETCH_RESPONSE_BYTES:
                break
            messages.append(data)
        return {"messages": messages}

    @app.get("/api/artifacts/{sha256}")
    def artifact(sha256: Annotated[str, Path(pattern=HEX64_PATTERN)]):
        wasm = node.state.artifact(sha256)
        if wasm is None:
            raise Refusal(404, f"no artifact {sha256[:16]} here")
        return Response(wasm, media_type="application/wasm")

    # ------------------------------------------------------------------ upgrades and components

    @app.get("/api/upgrades")
    def upgrades():
        return {"rollouts": {pid: status.to_dict() for pid, status in node.ledger.rollouts().items()}}

    @app.get("/api/upgrades/history")
    def history():
        return {"history": node.state.history()}

    @app.post("/api/upgrades/{component}/rollback", status_code=201, dependencies=operator)
    def rollback(component: Annotated[str, Path(pattern=r"^[a-z_]{1,64}$")], request: RollbackRequest):
        if component not in node.runtimes:
            raise Refusal(404, f"unknown component {component!r}; known: {', '.join(node.runtimes)}")
        envelope = node.operator_rollback(component, request.reason)
        return {"id": envelope.id, "proposal_id": envelope.body["proposal_id"]}

    @app.get("/api/components")
    def components():
        return {"components": node.component_versions()}

    @app.post("/api/tasks", dependencies=operator)
    async def tasks(batch: TaskBatch):
        too_big = [i for i, size in enumerate(batch.items) if size > batch.capacity]
        if too_big:
            raise Refusal(422, f"items {too_big[:5]} are larger than the capacity {batch.capacity}")
        return await asyncio.to_thread(node.allocate, batch.items, batch.capacity)

    @app.get("/metrics")
    def metrics():
        for name, runtime in node.runtimes.items():
            node.metrics.component_faults.labels(component=name).set(runtime.faults)
            node.metrics.component_fallbacks.labels(component=name).set(runtime.fallbacks)
        for metric, value in node.last_measurements.items():
            node.metrics.health.labels(metric=metric).set(value)
        return Response(node.metrics.render(), media_type="text/plain; version=0.0.4")

    add_dashboard(app, node, SOFTWARE_VERSION)
    app.add_middleware(BodyLimit, limit=node.config.max_request_bytes)
    return app
