"""What a node answers about a message or a request: Accepted, or a Refusal carrying the HTTP status that
says why. Every room raises Refusal; the API turns it into that status, gossip into a per-message result."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import SynapseError


class Refusal(SynapseError):
    """A message or request this node will not accept; `status` is the HTTP status that says why."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Accepted:
    id: str
    new: bool
    late: bool = False  # a vote pulled after its proposal closed (counted once a majority holds it)
