"""A node's configuration and what a config_change proposal may change at run time (TUNABLE, with the type
each key takes). `NodeConfig.load` layers it, each layer over the one before:

    the defaults below  <  DATA/node.json  <  the environment (settings.py)  <  command-line flags
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..fsutil import write_atomically
from ..settings import settings

CONFIG_FILE = "node.json"
MEMBERS_FILE = "members.json"

# key -> (type, minimum, maximum): what a config_change proposal may set, checked before anyone votes.
TUNABLE: dict[str, tuple[type, float, float]] = {
    "gossip_fanout": (int, 1, 32),
    "anti_entropy_interval_s": (float, 0.2, 600.0),
    "immune_interval_s": (float, 0.2, 3600.0),
    "chronic_after": (int, 1, 100),
    "health_window_s": (float, 0.5, 3600.0),
    "deadline_s": (float, 1.0, 7 * 86400.0),
    "islands": (int, 1, 8),
    "target.allocation_excess_pct": (float, 0.0, 100.0),
    "target.tally_fuel_per_vote": (float, 0.0, 1e9),
    "target.dissemination_ms": (float, 0.0, 1e7),
    "target.peers_reachable": (float, 0.0, 1.0),
}


@dataclass
class NodeConfig:
    data_dir: str = "."
    host: str = "127.0.0.1"
    port: int = 8700
    peers: list[str] = field(default_factory=list)
    # governance
    quorum: float = 0.5
    deadline_s: float = 30.0
    grace_s: float = 1.0
    code_threshold: tuple[int, int] = (2, 3)
    config_threshold: tuple[int, int] = (1, 2)
    auto_vote: bool = True
    verify_time_limit_s: float = 600.0
    # what a proposer can make this node spend on verifying its code upgrade (SECURITY.md)
    verify_concurrency: int = 2
    verify_memory_mb: int = 2048
    verify_random_cases: int = 200  # this node's own random correctness cases, with its own seed
    verify_max_random_cases: int = 5000  # evidence asking for more is refused, not run
    # time: a proposal's deadline lies within this horizon of its creation; clocks may differ this much
    max_deadline_s: float = 7 * 86400.0
    max_clock_skew_s: float = 300.0
    # what one member can make this node store
    member_messages_per_s: float = 5.0
    member_burst: int = 200
    max_open_proposals_per_member: int = 8
    max_votes_per_voter: int = 8  # per proposal: a voter may change its mind a few times, not flood
    max_artifact_bytes_per_member: int = 64 * 1024 * 1024
    max_artifact_bytes: int = 8 * 1024 * 1024
    max_artifact_store_bytes: int = 512 * 1024 * 1024
    artifact_fetch_timeout_s: float = 30.0
    # rollout
    stage_fractions: tuple[float, ...] = (0.1, 0.5, 1.0)
    health_window_s: float = 10.0
    health_tolerance_pct: float = 5.0
    # gossip
    gossip_fanout: int = 2
    anti_entropy_interval_s: float = 2.0
    peer_timeout_s: float = 5.0
    # immune system and engine
    immune_interval_s: float = 5.0
    chronic_after: int = 3
    targets: dict[str, float] = field(default_factory=dict)
    evolve: bool = False  # as in the seed: a bare node's engine is off unless enabled
    proposal_cooldown_s: float = 60.0
    llm_provider: str = "local"
    llm_model: str = ""
    llm_endpoint: str = ""
    # How long one model call may take. Several islands on one machine share its cores, so their
    # embedded models each write several times slower (demo --islands raises it: story.py).
    llm_timeout_s: float = 120.0
    engine_workspace: str = ""  # the engine's store and artifacts; "" is DATA/engine
    # The minutes bind: with the embedded model most samples are constant tunes of about 2 s each, and the
    # measured runs that beat best fit needed several hundred samples over 7-20 minutes (BENCHMARKS.md).
    evolve_samples: int = 5000
    evolve_minutes: float = 20.0
    evolve_seed: int = 1
    # Start the search from the component's starting points (its directions' shapes, filled in) as well as
    # the baseline: the ablation in BENCHMARKS.md (issue 13) measures what they and the model each add.
    evolve_starting_points: bool = True
    evolve_language: str = "rust"  # of the candidates: rust, c or wat
    # Collaborative evolution (node/islands.py): how many members search an issue together (1: the
    # designated one alone), at most one migrant sent per interval, how long after an evolution's end the
    # islands wait for a missing final, and after how long without a proposal the next island proposes.
    islands: int = 1
    migration_interval_s: float = 30.0
    island_final_wait_s: float = 60.0
    island_takeover_s: float = 300.0
    # HTTP
    max_request_bytes: int = 8 * 1024 * 1024

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def path(self) -> Path:
        return Path(self.data_dir)

    @property
    def engine_path(self) -> Path:
        return Path(self.engine_workspace).expanduser() if self.engine_workspace else self.path / "engine"

    @classmethod
    def load(cls, data_dir: Path, **overrides: Any) -> NodeConfig:
        """Defaults, then data_dir/node.json if present, then the environment's node settings, then
        `overrides` (from the command line; None means the flag was not given)."""
        values: dict[str, Any] = {}
        file = Path(data_dir) / CONFIG_FILE
        if file.exists():
            try:
                values = json.loads(file.read_text())
            except (OSError, json.JSONDecodeError) as error:
                raise UsageError(f"node config {file} is not valid JSON: {error}") from None
            if not isinstance(values, dict):
                raise UsageError(f"node config {file} must hold a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise UsageError(f"node config {file} has unknown keys {unknown}; known: {sorted(known)}")
        values.update(settings().node_settings())
        values.update({k: v for k, v in overrides.items() if v is not None})
        values["data_dir"] = str(data_dir)
        for key in ("code_threshold", "config_threshold", "stage_fractions"):
            if key in values:
                values[key] = tuple(values[key])
        timeout = values.get("llm_timeout_s", cls.llm_timeout_s)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout < math.inf:
            raise UsageError(f"llm_timeout_s must be a positive number of seconds, not {timeout!r}")
        return cls(**values)

    def save(self) -> None:
        data = asdict(self)
        data.pop("data_dir")
        write_atomically(self.path / CONFIG_FILE, (json.dumps(data, indent=2) + "\n").encode())

    def apply_changes(self, changes: dict[str, Any]) -> None:
        check_changes(changes)
        for key, value in changes.items():
            if key.startswith("target."):
                self.targets[key.removeprefix("target.")] = float(value)
            else:
                kind = TUNABLE[key][0]
                setattr(self, key, kind(value))


def check_changes(changes: Any) -> None:
    """Refuses a config change a node could not apply, with the reason (before anyone votes on it)."""
    if not isinstance(changes, dict) or not changes:
        raise UsageError(
            "a config change is a non-empty object of key -> value; tunable keys: " + ", ".join(TUNABLE)
        )
    for key, value in changes.items():
        if key not in TUNABLE:
            raise UsageError(
                f"config key {key!r} cannot be changed by a proposal; tunable keys: {', '.join(TUNABLE)}"
            )
        kind, low, high = TUNABLE[key]
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or (kind is int and not isinstance(value, int))
        ):
            raise UsageError(
                f"config key {key!r} takes {'an integer' if kind is int else 'a number'}, not {value!r}"
            )
        if not math.isfinite(value) or not low <= value <= high:
            raise UsageError(f"config key {key!r} must be within {low:g}..{high:g}, not {value!r}")
