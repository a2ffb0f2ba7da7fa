"""How the node's state reads to a person or a client: the views the HTTP API and the dashboard share."""

from __future__ import annotations

from .envelope import Envelope
from .node import Node


def proposal_view(node: Node, proposal: Envelope, full: bool = False) -> dict:
    """A proposal as the API and the dashboard show it: its body (without the evidence and source unless
    `full`), its votes and the outcome this node sees."""
    body = proposal.body
    params = dict(body["params"])
    if not full:
        params.pop("evidence", None)
        params.pop("source", None)
    view = {
        "id": proposal.id,
        "type": body["type"],
        "title": body["title"],
        "author": proposal.author,
        "created_at": proposal.created_at,
        "deadline": body["deadline"],
        "params": params,
        "outcome": node.outcome(proposal),
        "votes": [
            {"voter": v.author, **v.body} for v in node.state.messages(kind="vote", proposal_id=proposal.id)
        ],
    }
    if full:
        view["description"] = body["description"]
        view["verdict"] = node.state.get(f"verdict:{proposal.id}")
    return view
