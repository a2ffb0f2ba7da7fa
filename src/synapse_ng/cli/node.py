"""`node run`: one node in this process, until SIGINT or SIGTERM.

With `--json` it writes JSON Lines (output.py): a "starting" line, then its log, one object per record,
and last a "stopped" line (or the error). uvicorn, which serves the node, stops it cleanly on SIGINT or
SIGTERM and then raises the signal again so that the process ends as killed by it; `_serve` keeps that
exit status and writes the last line first.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
from datetime import datetime
from pathlib import Path

import click

from ..errors import SynapseError
from .output import Output, json_option

NODE_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonLogLines(logging.Formatter):
    """A log record as one JSON line: {"event": "log", "time", "level", "logger", "message"}, and
    "exception" (the traceback) when the record has one."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "event": "log",
            "time": datetime.fromtimestamp(record.created).astimezone().isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line)


def _log_like_a_node(out: Output) -> None:
    """A node's log is read later, often after something went wrong: every line says when."""
    level = min(logging.getLogger().level, logging.INFO)
    if out.json:  # the log is the stream of events, on stdout with the other JSON lines
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(JsonLogLines())
        logging.basicConfig(level=level, handlers=[handler], force=True)
    else:
        logging.basicConfig(level=level, format=NODE_LOG_FORMAT, force=True)
    logging.getLogger("httpx").setLevel(logging.WARNING)


@click.group("node")
def node_group() -> None:
    """Run a Synapse-NG node."""


@node_group.command("run")
@click.option(
    "--data", "data_dir", required=True, help="The node's directory: identity key, state, config (node.json)."
)
@click.option("--port", type=int, help="HTTP port (default: node.json, else 8700).")
@click.option("--host", help="Address to listen on (default 127.0.0.1).")
@click.option(
    "--peer",
    "peers",
    multiple=True,
    metavar="URL",
    help="A peer's base URL (repeatable); adds to node.json's.",
)
@click.option(
    "--no-auto-vote", is_flag=True, help="Do not vote automatically: a human votes through the API."
)
@click.option(
    "--provider", help="LLM provider for the engine (local, ollama_local, openai_api, anthropic_api)."
)
@click.option("--model", "model_name", help="LLM model name.")
@click.option("--endpoint", help="LLM endpoint URL.")
@click.option(
    "--evolve/--no-evolve",
    default=None,
    help="Whether the Evolutionary Engine evolves chronic issues (default: ENABLE_EVOLUTIONARY_ENGINE, "
    "else node.json).",
)
@click.option(
    "--workspace",
    help="The engine's store and artifacts (default: EVOLUTION_WORKSPACE, else node.json, else DATA/engine).",
)
@json_option(
    'JSON Lines on stdout: {"event": "starting", "data", "url", "peers"}, then every log record as '
    '{"event": "log", "time", "level", "logger", "message"}, and last {"ok": true, "event": "stopped", '
    '"signal"} (the process then ends by that signal, as without --json) or the error.',
    lines=True,
)
def node_run(
    data_dir: str,
    port: int | None,
    host: str | None,
    peers: tuple[str, ...],
    no_auto_vote: bool,
    provider: str | None,
    model_name: str | None,
    endpoint: str | None,
    evolve: bool | None,
    workspace: str | None,
    out: Output,
) -> None:
    """Start a node (FastAPI on uvicorn) and run until SIGINT/SIGTERM.

    Settings: a flag > the environment (LLM_PROVIDER, LLM_MODEL, LLM_ENDPOINT, ENABLE_EVOLUTIONARY_ENGINE,
    EVOLUTION_WORKSPACE) > DATA/node.json > the default."""
    from ..node.config import NodeConfig

    _log_like_a_node(out)
    flags = {  # NodeConfig key -> this command's flag; None (not given) leaves the layers below
        "port": port,
        "host": host,
        "llm_provider": provider,
        "llm_model": model_name,
        "llm_endpoint": endpoint,
        "evolve": evolve,
        "engine_workspace": workspace,
    }
    config = NodeConfig.load(Path(data_dir), **flags)
    config.peers = list(dict.fromkeys([*config.peers, *peers]))
    if no_auto_vote:
        config.auto_vote = False
    out.event("starting", None, data=data_dir, url=config.url, peers=config.peers)
    _serve(config, out)


class _Signalled(BaseException):
    """A stop signal, raised where it would have ended the process (a BaseException: nothing swallows it)."""

    def __init__(self, number: int):
        super().__init__(number)
        self.number = number


def _raise_signalled(number: int, _frame) -> None:
    raise _Signalled(number)


class _ServerFailed(SynapseError):
    """uvicorn exited because the node's server could not start (e.g. its port is taken)."""

    def __init__(self, exit_code: int):
        super().__init__(
            f"the node's HTTP server could not start (exit {exit_code}); uvicorn says why on stderr"
        )
        self.exit_code = exit_code


def _serve(config, out: Output) -> None:
    """Run the node; with --json, end with a line that says how it stopped, and end as before.

    uvicorn installs its own handlers while it serves and restores ours before raising the signal again;
    ours (also there before uvicorn starts) turn it into _Signalled, so "stopped" is written before the
    signal is raised for real, with the handler Python had: the same exit status as without --json.
    """
    from ..node.serve import serve

    if not out.json:
        serve(config)
        return
    stop_signals = (signal.SIGINT, signal.SIGTERM)
    previous = {number: signal.signal(number, _raise_signalled) for number in stop_signals}
    stopped_by = None
    try:
        serve(config)
    except _Signalled as stop:
        stopped_by = signal.Signals(stop.number)
    except SystemExit as failed:  # uvicorn's way to fail at startup; the JSON stream ends with the error
        raise _ServerFailed(failed.code if isinstance(failed.code, int) else 1) from None
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    out.event("stopped", None, ok=True, url=config.url, signal=stopped_by.name if stopped_by else None)
    if stopped_by is not None:
        signal.raise_signal(stopped_by)
