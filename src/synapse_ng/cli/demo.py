"""`demo`: the main job told end to end on a local network (story.py), or with --pipeline the quick tour of
the pipeline (demo.py)."""

from __future__ import annotations

import logging
import signal
import sys

import click

from .evolution import PROVIDERS, model_choice
from .output import Output, json_option

WINDOW_HELP = "Health window of each rollout stage (s)."


@click.command("demo")
@click.option(
    "--pipeline",
    is_flag=True,
    help="Only the pipeline: compile, verify and run a sample in each language, the guards, one evaluation.",
)
@click.option("--nodes", type=click.IntRange(1, 64), default=5, show_default=True)
@click.option(
    "--minutes", type=float, default=30.0, show_default=True, help="The Evolutionary Engine's time budget."
)
@click.option(
    "--provider",
    type=click.Choice(PROVIDERS),
    help="LLM provider (default: LLM_PROVIDER, else local: the embedded model).",
)
@click.option("--model", "model_name", help="LLM model name (default: LLM_MODEL).")
@click.option("--endpoint", help="LLM endpoint URL (default: LLM_ENDPOINT).")
@click.option("--data", help="Keep the network's state here (default: a new temporary directory).")
@click.option(
    "--deadline",
    "deadline_s",
    type=float,
    default=120.0,
    show_default=True,
    help="Voting deadline of a proposal (s): room for every node to rebuild and re-measure the upgrade.",
)
@click.option("--window", "window_s", type=float, default=5.0, show_default=True, help=WINDOW_HELP)
@click.option(
    "--islands",
    type=click.IntRange(1, 8),
    default=1,
    show_default=True,
    help="Nodes that evolve the issue together, each an island of one search (collaborative evolution).",
)
@json_option("Machine-readable output (with --pipeline; the story itself is told for a person).")
def demo_command(
    pipeline: bool,
    nodes: int,
    minutes: float,
    provider: str | None,
    model_name: str | None,
    endpoint: str | None,
    data: str | None,
    deadline_s: float,
    window_s: float,
    islands: int,
    out: Output,
) -> None:
    """The main job: a local network finds a chronic problem in its own hot code, evolves a fix with the
    embedded model, verifies and votes on it, and rolls it out, with measured before/after figures."""
    try:
        if pipeline:
            from ..demo import run_demo

            sys.exit(run_demo(as_json=out.json))
        if islands > nodes:
            raise click.BadParameter(f"{islands} islands need at least {islands} nodes, not {nodes}")
        sys.exit(_story(nodes, minutes, provider, model_name, endpoint, data, deadline_s, window_s, islands))
    except KeyboardInterrupt:  # click would say "Aborted!" and exit 1: a person who stopped it sees "stopped"
        click.echo("stopped", err=True)
        sys.exit(130)


def _story(nodes, minutes, provider, model_name, endpoint, data, deadline_s, window_s, islands) -> int:
    from ..story import run_story

    def stop(*_):  # SIGTERM stops the story like Ctrl-C: its network is shut down, not orphaned
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    provider, model_name, endpoint = model_choice(provider, model_name, endpoint)
    return run_story(
        nodes=nodes,
        minutes=minutes,
        provider=provider,
        model=model_name,
        endpoint=endpoint,
        data=data,
        deadline_s=deadline_s,
        window_s=window_s,
        islands=islands,
    )
