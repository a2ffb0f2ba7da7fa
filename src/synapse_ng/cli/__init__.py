"""The `synapse-ng` command: the root group, and every command in the module of its family.

    output.py      the shared --json option, and the root group that turns any SynapseError into its exit code
    files.py       reading and writing the files named on the command line; the default workspace
    outcomes.py    the exit code of a compile result or an evaluation, from outcome.py's vocabulary
    modules.py     compile, verify, run: one WebAssembly module by hand
    evaluation.py  components, evaluate, reproduce
    evolution.py   evolve, stats
    runs.py        runs, runs show (with plot.py: the best score over time as an SVG)
    machine.py     doctor, model install, model path
    demo.py        demo (the story, or --pipeline)
    node.py        node run
    network.py     network up, upgrade rollback

Every command takes --json (output.py says what it means for a command that runs until stopped); the
exit codes are in errors.py and, for a candidate's result, outcome.py. The command modules import the
heavy parts of the package (the engine, the node) inside the command, so `synapse-ng compile` does not pay
for the node's imports.
"""

from __future__ import annotations

import logging

import click

from .demo import demo_command
from .evaluation import components_command, evaluate_command, reproduce_command
from .evolution import evolve_command, stats_command
from .machine import doctor_command, model_group
from .modules import compile_command, run_command, verify_command
from .network import network_group, upgrade_group
from .node import node_group
from .output import SynapseGroup
from .runs import runs_group


@click.group(cls=SynapseGroup)
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.version_option(package_name="synapse-ng")
def cli(verbose: int) -> None:
    """Synapse-NG: a network that evolves, verifies and safely deploys its own hot code as WebAssembly."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


for command in (
    compile_command,
    verify_command,
    run_command,
    components_command,
    evaluate_command,
    reproduce_command,
    evolve_command,
    stats_command,
    runs_group,
    demo_command,
    doctor_command,
    model_group,
    node_group,
    network_group,
    upgrade_group,
):
    cli.add_command(command)


def main() -> None:
    cli(prog_name="synapse-ng")
