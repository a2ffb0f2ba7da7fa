"""One precedence for every setting: a flag > the environment > node.json > the default, with the seed's
variables (ENABLE_EVOLUTIONARY_ENGINE, LLM_PROVIDER, LLM_MODEL, LLM_ENDPOINT, EVOLUTION_WORKSPACE)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import httpx
import pytest

from synapse_ng.errors import UsageError
from synapse_ng.network import LocalNetwork, free_port
from synapse_ng.node.config import NodeConfig
from synapse_ng.settings import settings

CLI = [sys.executable, "-m", "synapse_ng.cli"]
SEED_VARIABLES = ("ENABLE_EVOLUTIONARY_ENGINE", "LLM_PROVIDER", "LLM_MODEL", "LLM_ENDPOINT")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in (*SEED_VARIABLES, "EVOLUTION_WORKSPACE", "SYNAPSE_WORKSPACE"):
        monkeypatch.delenv(name, raising=False)


def test_each_layer_overrides_the_one_below(tmp_path, monkeypatch):
    assert NodeConfig.load(tmp_path).llm_provider == "local"  # the default
    (tmp_path / "node.json").write_text(
        json.dumps({"llm_provider": "ollama_local", "llm_model": "from-file", "evolve": True})
    )
    from_file = NodeConfig.load(tmp_path)
    assert (from_file.llm_provider, from_file.llm_model, from_file.evolve) == (
        "ollama_local",
        "from-file",
        True,
    )
    assert from_file.engine_path == tmp_path / "engine"

    monkeypatch.setenv("LLM_PROVIDER", "openai_api")
    monkeypatch.setenv("ENABLE_EVOLUTIONARY_ENGINE", "false")
    monkeypatch.setenv("EVOLUTION_WORKSPACE", str(tmp_path / "from-env"))
    from_env = NodeConfig.load(tmp_path)
    assert (from_env.llm_provider, from_env.llm_model, from_env.evolve) == ("openai_api", "from-file", False)
    assert from_env.engine_path == tmp_path / "from-env"

    from_flags = NodeConfig.load(
        tmp_path, llm_provider="anthropic_api", evolve=True, engine_workspace=str(tmp_path / "flag")
    )
    assert (from_flags.llm_provider, from_flags.evolve) == ("anthropic_api", True)
    assert from_flags.engine_path == tmp_path / "flag"


@pytest.mark.parametrize(("value", "expected"), [("true", True), ("1", True), ("no", False), ("0", False)])
def test_the_engine_switch_reads_the_usual_spellings(monkeypatch, value, expected):
    monkeypatch.setenv("ENABLE_EVOLUTIONARY_ENGINE", value)
    assert settings().node_settings()["evolve"] is expected


def test_a_blank_variable_is_unset_and_an_unreadable_one_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("LLM_PROVIDER", "  ")
    assert "llm_provider" not in settings().node_settings()
    monkeypatch.setenv("ENABLE_EVOLUTIONARY_ENGINE", "perhaps")
    with pytest.raises(UsageError, match="ENABLE_EVOLUTIONARY_ENGINE.*fix or unset it"):
        NodeConfig.load(tmp_path)


def test_synapse_workspace_wins_over_the_seeds_name(tmp_path, monkeypatch):
    monkeypatch.setenv("EVOLUTION_WORKSPACE", str(tmp_path / "seed"))
    assert settings().default_workspace() == tmp_path / "seed"
    monkeypatch.setenv("SYNAPSE_WORKSPACE", str(tmp_path / "ours"))
    assert settings().default_workspace() == tmp_path / "ours"


def test_what_a_local_network_sets_stands_against_the_environment(tmp_path, monkeypatch):
    """The demo sets its nodes' provider from its own flags: an LLM_PROVIDER in the environment must not
    override it in the node processes, while what the network leaves alone still follows the environment."""
    monkeypatch.setenv("LLM_PROVIDER", "ollama_local")
    monkeypatch.setenv("LLM_MODEL", "qwen")
    net = LocalNetwork(tmp_path, 1, overrides={"llm_provider": "openai_api"}, env={"EXTRA": "1"})
    environment = net._node_environment()
    assert "LLM_PROVIDER" not in environment
    assert environment["LLM_MODEL"] == "qwen" and environment["EXTRA"] == "1"


def _stats_of_a_node(data, environment: dict, *flags: str) -> dict:
    """Start `node run` on DATA with exactly this environment and flags; its engine stats; stop it."""
    port = free_port()
    node = subprocess.Popen(
        [*CLI, "node", "run", "--data", str(data), "--port", str(port), *flags],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for _ in range(600):
            try:
                return httpx.get(f"http://127.0.0.1:{port}/api/evolutionary-engine/stats", timeout=30).json()
            except httpx.TransportError:
                assert node.poll() is None, node.stderr.read()
                time.sleep(0.1)
        raise AssertionError("the node did not answer")
    finally:
        node.terminate()
        node.wait(timeout=60)


# variable -> (node.json key, the flag, what the stats endpoint reports, three values: file, env, flag)
SEED_SETTINGS = {
    "ENABLE_EVOLUTIONARY_ENGINE": ("evolve", None, "enabled", (False, "true", True)),
    "LLM_PROVIDER": (
        "llm_provider",
        "--provider",
        "llm_provider",
        ("ollama_local", "openai_api", "anthropic_api"),
    ),
    "LLM_MODEL": ("llm_model", "--model", "llm_model", ("from-file", "from-env", "from-flag")),
    "LLM_ENDPOINT": (
        "llm_endpoint",
        "--endpoint",
        "llm_endpoint",
        ("http://f:1", "http://e:2", "http://g:3"),
    ),
    "EVOLUTION_WORKSPACE": ("engine_workspace", "--workspace", "workspace_dir", ("file", "env", "flag")),
}


@pytest.mark.parametrize("variable", list(SEED_SETTINGS))
def test_each_seed_variable_beats_node_json_and_a_flag_beats_it(tmp_path, variable):
    """A real `node run` three times: node.json alone, then the variable alone over it, then a flag over
    both; the stats endpoint reports each winner."""
    key, flag, reported, (in_file, in_env, in_flag) = SEED_SETTINGS[variable]
    if variable == "EVOLUTION_WORKSPACE":
        in_file, in_env, in_flag = (str(tmp_path / name) for name in (in_file, in_env, in_flag))
    data = tmp_path / "data"
    data.mkdir()
    (data / "node.json").write_text(json.dumps({key: in_file}))
    clean = {k: v for k, v in os.environ.items() if k not in (*SEED_VARIABLES, "EVOLUTION_WORKSPACE")}
    clean.pop("SYNAPSE_WORKSPACE", None)
    assert _stats_of_a_node(data, clean)[reported] == in_file
    with_variable = {**clean, variable: in_env}
    expected_env = True if variable == "ENABLE_EVOLUTIONARY_ENGINE" else in_env
    assert _stats_of_a_node(data, with_variable)[reported] == expected_env
    flags = ("--no-evolve",) if flag is None else (flag, in_flag)
    expected_flag = False if flag is None else in_flag
    assert _stats_of_a_node(data, with_variable, *flags)[reported] == expected_flag


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_with_the_engine_switched_off_by_the_environment_config_remedies_still_work(tmp_path):
    """node.json says evolve, ENABLE_EVOLUTIONARY_ENGINE=false says no: the variable wins. A chronic issue
    on the nodes' own measurements gets its config remedy proposed, and the model is never called."""
    from llm_servers import LoopbackServer, OpenAIWire
    from node_helpers import FAST, OPERATOR_HEADERS, get, send_tasks, wait_for

    server = LoopbackServer(OpenAIWire())
    settings_ = {key: value for key, value in FAST.items() if key != "evolve"}
    net = LocalNetwork(
        tmp_path,
        2,
        overrides={
            **settings_,
            "llm_provider": "openai_api",
            "llm_model": "scripted",
            "llm_endpoint": server.url + "/v1",
            "chronic_after": 2,
            # any measured dissemination breaches, and so does best fit's excess on this load
            "targets": {"dissemination_ms": 0.0, "allocation_excess_pct": 0.5},
        },
        env={"ENABLE_EVOLUTIONARY_ENGINE": "false"},
    )
    net.prepare()
    for index in range(2):
        config = NodeConfig.load(net.dir(index))
        config.evolve = True
        config.save()
    for index in range(2):
        OPERATOR_HEADERS[net.url(index)] = net.operator_headers(index)
    net.start()
    try:
        net.wait_ready(timeout_s=120)
        headers = net.operator_headers(0)
        created = httpx.post(
            net.url(0) + "/api/proposals",
            json={
                "title": "traffic",
                "description": "a message to disseminate",
                "changes": {"gossip_fanout": 2},
            },
            headers=headers,
            timeout=30,
        )
        assert created.status_code == 201, created.text

        def actions() -> list[dict]:
            for url in net.urls:
                send_tasks(url, [60, 50, 45, 40, 35, 30, 30, 25, 20, 20, 15, 10] * 20, capacity=100)
            return [a for url in net.urls for a in get(url, "/api/health/issues")["actions"]]

        def remedied() -> bool:
            done = actions()
            return any(a["kind"] == "config_change" and "gossip_fanout" in a["detail"] for a in done) and any(
                a["issue_key"] == "task_allocation:allocation_excess_pct"
                and "engine is off" in a["detail"].lower()
                for a in done
            )

        wait_for(
            remedied, 120, "a config remedy proposed and the algorithm issue reported with the engine off"
        )
        for url in net.urls:
            stats = get(url, "/api/evolutionary-engine/stats")
            assert stats["enabled"] is False and stats["total_generations"] == 0
        assert server.requests == []
    finally:
        net.stop()
        server.close()
