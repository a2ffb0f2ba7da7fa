"""A forwarding choice in Python: the skeletons' baseline bit for bit, and what counts as a valid choice."""

from __future__ import annotations

from ..base import CaseFailure

MAX_PEERS = 256
M64 = (1 << 64) - 1


def splitmix64(state: int) -> tuple[int, int]:
    """One splitmix64 step: (new state, output), exactly as in the skeletons."""
    state = (state + 0x9E3779B97F4A7C15) & M64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return state, z ^ (z >> 31)


def baseline_choice(n: int, fanout: int, seed: int) -> list[int]:
    """The skeletons' baseline selection, bit for bit: a partial Fisher-Yates shuffle."""
    k = min(fanout, n)
    order = list(range(n))
    state = seed & M64
    out = []
    for i in range(k):
        state, r = splitmix64(state)
        j = i + r % (n - i)
        order[i], order[j] = order[j], order[i]
        out.append(order[i])
    return out


def decision_seed(topology_seed: int, node: int, stream: int = 0) -> int:
    """The seed handed to the module for a node's decision; `stream` > 0 gives another random stream on
    the same topology (the held-out check's reseeded baselines), 0 the workloads' own."""
    return splitmix64((((topology_seed << 32) ^ node) ^ (stream * 0x9E3779B97F4A7C15)) & M64)[1]


def validate_choice(choice: list[int], n_peers: int, fanout: int) -> None:
    """Raise CaseFailure unless choice is at most `fanout` distinct indices in 0..n_peers-1."""
    if len(choice) > fanout:
        raise CaseFailure(
            f"{_peers(len(choice))} chosen with fan-out {fanout}: choose at most fanout peers (returned "
            f"indices {_show_list(choice)})"
        )
    seen: set[int] = set()
    for slot, index in enumerate(choice):
        if not 0 <= index < n_peers:
            valid = f"valid indices are 0..{n_peers - 1}" if n_peers else "there are no peers, so choose none"
            raise CaseFailure(
                f"index {index} out of range for {_peers(n_peers)} (output slot {slot}): {valid}"
            )
        if index in seen:
            raise CaseFailure(
                f"duplicate index {index} (output slots {choice.index(index)} and {slot}): each peer may be "
                "chosen once"
            )
        seen.add(index)


def _peers(count: int) -> str:
    return f"{count} peer" if count == 1 else f"{count} peers"


def _show_list(values: list[int], limit: int = 20) -> str:
    if len(values) <= limit:
        return repr(values)
    return repr(values[:limit])[:-1] + f", ... ({len(values)} in all)]"
