"""Who the members are: the genesis list (members.json), then only membership_change proposals approved
by governance. A change is checked against the members this node holds before anyone votes on it.
Nothing is learned from whoever answers at a peer's address."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import UsageError
from ..json_bounds import HEX64
from .state import NodeState


def load_genesis_members(state: NodeState, file: Path) -> None:
    """Add the members listed in `file` (a JSON list of {node_id, url}), if it exists."""
    if not file.exists():
        return
    try:
        members = json.loads(file.read_text())
        if not isinstance(members, list):
            raise ValueError("not a list")
        for entry in members:
            node_id, url = entry["node_id"], entry.get("url")
            if not isinstance(node_id, str) or not HEX64.fullmatch(node_id):
                raise ValueError(
                    f"node_id {str(node_id)[:80]!r} is not 64 lowercase hex characters "
                    "(an ed25519 public key)"
                )
            if url is not None and (not isinstance(url, str) or not url.startswith(("http://", "https://"))):
                raise ValueError(f"url {str(url)[:80]!r} of {node_id[:16]} is not an http(s) URL")
            state.add_member(node_id, url.rstrip("/") if url else None)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise UsageError(f"{file} must be a JSON list of {{node_id, url}}: {error}") from None


def check_membership_change(params: dict, members: dict[str, str | None]) -> None:
    """Refuses a change this node could not apply (params are already well formed)."""
    add = params.get("add", [])
    remove = set(params.get("remove", []))
    for entry in add:
        if entry["node_id"] in members:
            raise UsageError(f"{entry['node_id'][:16]} is a member already")
        if entry["url"] in members.values():
            raise UsageError(
                f"member {next(k for k, v in members.items() if v == entry['url'])[:16]} "
                f"is pinned at {entry['url']} already"
            )
    unknown = sorted(node_id[:16] for node_id in remove if node_id not in members)
    if unknown:
        raise UsageError(f"not members: {', '.join(unknown)}")
    if len(remove) >= len(members) + len(add):
        raise UsageError("a membership change cannot remove every member")
