"""`network up` and `upgrade rollback`: a local network of node processes, and an operator's rollback.

`network up` runs until it is stopped, so with `--json` it writes JSON Lines (output.py): one object per
node, one when the network is up, and last one with "ok".
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import click

from ..errors import SynapseError, UsageError
from .output import Output, json_option

ENGINE_CHECK_S = 5.0  # how often `network up` asks its nodes whether an engine failed


@click.group("network")
def network_group() -> None:
    """A local network of node processes on loopback."""


@network_group.command("up")
@click.option("--nodes", type=click.IntRange(1, 64), default=3, show_default=True)
@click.option(
    "--data",
    "root",
    default="synapse-network",
    show_default=True,
    help="Directory holding one sub-directory per node.",
)
@click.option("--base-port", type=int, help="First port (default: free ports).")
@click.option(
    "--evolve/--no-evolve",
    default=True,
    show_default=True,
    help="Whether the nodes' Evolutionary Engines evolve chronic issues (a bare `node run` is off).",
)
@json_option(
    'JSON Lines on stdout: {"event": "node", "index", "url", "id", "data"} for each node, {"event": "up", '
    '"urls"} once all answer, and last {"ok": true, "event": "stopped"} or the error (exit 10 when a node '
    "exited or its engine failed).",
    lines=True,
)
def network_up(nodes: int, root: str, base_port: int | None, evolve: bool, out: Output) -> None:
    """Start N nodes that know each other, print their URLs, and stop them all cleanly on Ctrl-C/SIGTERM.
    If a node exits, or its engine fails, say which and how (with its log), stop the rest and exit 10."""
    from ..network import LocalNetwork

    net = LocalNetwork(Path(root), nodes, base_port=base_port, overrides={"evolve": evolve})
    stop: list[bool] = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    try:
        net.prepare()
        net.start()
        net.wait_ready()
        for i, url in enumerate(net.urls):
            human = f"node {i}  {url}  id {net.ids[i][:16]}  data {net.dir(i)}"
            out.event("node", human, index=i, url=url, id=net.ids[i], data=str(net.dir(i)))
        out.event("up", "network up; Ctrl-C stops every node", urls=net.urls)
        _watch(net, stop)
    except KeyboardInterrupt:
        pass
    except SynapseError as error:  # the group reports it; this says what became of the other nodes
        error.add_note("network stopped: the other nodes were shut down cleanly")
        raise
    finally:
        net.stop()
    out.event("stopped", "network stopped", ok=True)


def _watch(net, stop: list[bool]) -> None:
    """Until SIGTERM: raise NodeFailed as soon as a node exits or reports that its engine failed."""
    checked_engines = 0.0
    while not stop:
        time.sleep(0.5)
        net.check()
        if time.monotonic() - checked_engines > ENGINE_CHECK_S:
            net.check_engines()
            checked_engines = time.monotonic()


@click.group("upgrade")
def upgrade_group() -> None:
    """Operate on a node's upgrades."""


@upgrade_group.command("rollback")
@click.option("--node", "node_url", required=True, help="The node's base URL.")
@click.option("--component", required=True)
@click.option("--reason", default="operator rollback", show_default=True)
@click.option(
    "--data",
    "data_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The node's data directory, where its operator token is "
    "(or pass --token / $SYNAPSE_OPERATOR_TOKEN).",
)
@click.option("--token", default=None, help="The node's operator token (DATA/operator.token).")
@json_option('Machine-readable output: {"ok": true, "id", "proposal_id", "component", "node"} or the error.')
def upgrade_rollback(
    node_url: str, component: str, reason: str, data_dir: Path | None, token: str | None, out: Output
) -> None:
    """Roll back the live upgrade of COMPONENT everywhere (a signed rollback message from that node; needs
    the node's operator token)."""
    import httpx

    from ..node.operator import bearer, read_operator_token

    headers = bearer(read_operator_token(data_dir, token))
    url = node_url.rstrip("/") + f"/api/upgrades/{component}/rollback"
    try:
        response = httpx.post(url, json={"reason": reason}, headers=headers, timeout=30)
    except httpx.HTTPError as error:
        raise UsageError(f"cannot reach {node_url}: {error}; is the node running?") from None
    if response.status_code >= 400:
        refusal = response.json().get("error")
        raise UsageError(f"{node_url} refused the rollback ({response.status_code}): {refusal}")
    signed = response.json()
    payload = {
        "ok": True,
        "id": signed["id"],
        "proposal_id": signed["proposal_id"],
        "component": component,
        "node": node_url,
    }
    out.emit(
        payload, f"rollback {signed['id'][:16]} of proposal {signed['proposal_id'][:16]} signed and spreading"
    )
