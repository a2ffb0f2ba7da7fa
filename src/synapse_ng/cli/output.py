"""What every command shares: the `--json` option, how output is printed, and how an error ends a command.

A command raises SynapseError for whatever stops it (a missing file, an unknown component, a node that
refused) and never catches it: `SynapseGroup`, the root group, turns it into the error's exit code and
message, once for every command. So no two commands can disagree on how an error looks.

`--json` is one option (`json_option`) that every command takes; it puts an `Output` in the click
context, where the command and the group both find it. What it means:

- a command that ends prints one JSON object on stdout (indented), errors included:
  `{"ok": false, "error": MESSAGE, "exit_code": N}`;
- a long-running command (`node run`, `network up`) prints JSON Lines on stdout: one compact object per
  event, each with an "event" key, and last an object with "ok" (true when it stopped cleanly, else the
  error object above) so a script can follow it line by line.

Without `--json`, results go to stdout for a person and an error is `error: MESSAGE` on stderr.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import click

from ..errors import SynapseError

_OUTPUT = "synapse_ng.output"  # the key of the Output in click's context meta, shared by nested contexts

JSON_HELP = "Machine-readable output: one JSON object on stdout, errors included."
JSON_LINES_HELP = (
    'Machine-readable output: JSON Lines on stdout, one object per event (each with an "event" key), '
    'the last one with "ok" (an error is {"ok": false, "error": ..., "exit_code": ...}).'
)


@dataclass(frozen=True)
class Output:
    json: bool = False
    lines: bool = False  # a long-running command: one compact JSON object per line

    def emit(self, payload: dict[str, Any], human: str) -> None:
        """A command's result: `payload` as JSON, or `human` for a person."""
        click.echo(self._dumps(payload) if self.json else human)

    def event(self, event: str, human: str | None, **fields: Any) -> None:
        """One status line of a long-running command; `human` is its text form (None: JSON only)."""
        if self.json:
            click.echo(self._dumps({"event": event, **fields}))
        elif human is not None:
            click.echo(human)

    def error(self, error: SynapseError) -> None:
        notes = list(getattr(error, "__notes__", ()))  # what the command did about it, e.g. "stopped"
        if self.json:
            payload = {"ok": False, "error": str(error), "exit_code": error.exit_code}
            click.echo(self._dumps({**payload, "notes": notes} if notes else payload))
        else:
            for line in (f"error: {error}", *notes):
                click.echo(line, err=True)

    def _dumps(self, payload: dict[str, Any]) -> str:
        return json.dumps(payload) if self.lines else json.dumps(payload, indent=2)


def json_option(help: str = JSON_HELP, *, lines: bool = False):
    """The shared `--json` flag: the command receives an `Output` as its `out` argument."""

    def remember(ctx: click.Context, _param: click.Parameter, value: bool) -> Output:
        output = ctx.meta[_OUTPUT] = Output(json=value, lines=lines)
        return output

    # Eager, so that an error raised while the other options are read is already reported as asked.
    return click.option("--json", "out", is_flag=True, is_eager=True, callback=remember, help=help)


class SynapseGroup(click.Group):
    """The root group: a SynapseError from any command ends the process with its exit code and message."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SynapseError as error:
            ctx.meta.get(_OUTPUT, Output()).error(error)
            ctx.exit(error.exit_code)
