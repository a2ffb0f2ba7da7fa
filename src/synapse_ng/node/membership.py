"""Who the members are: the genesis list (members.json), then only membership_change proposals approved
by governance. A change is checked against the members this node holds before anyone votes on it."""

from __future__ import annotations

from ..errors import UsageError


def check_membership_change(params: dict, members: dict[str, str | None]) -> None:
    """Refuses a change this node could not apply (params are already well formed)."""
    add = params.get("add", [])
    remove = set(params.get("remove", []))
    for entry in add:
        if entry["node_id"] in members:
            raise UsageError(f"{entry['node_id'][:16]} is a member already")
        if entry["url"] in members.values():
            raise UsageError(f"member {next(k for k, v in members.items() if v == entry['url'])[:16]} is pinned at {entry['url']} already")
    unknown = sorted(node_id[:16] for node_id in remove if node_id not in members)
    if unknown:
        raise UsageError(f"not members: {', '.join(unknown)}")
    if len(remove) >= len(members) + len(add):
        raise UsageError("a membership change cannot remove every member")
