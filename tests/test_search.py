"""The search and the seed's engine API, driven by a scripted model behind a real loopback server that
speaks the OpenAI (or Ollama) wire protocol, so every answer goes through our real HTTP client; the
candidates are really compiled, checked, run and measured. (A search with the real embedded model is in
test_engine_local.py.)"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from llm_servers import AnthropicWire, LoopbackServer, Ok, OllamaWire, OpenAIWire
from square_component import SquareSum
from synapse_ng.evolution.attempt import Attempt
from synapse_ng.evolution.search import Budget, EvolutionSearch, SearchConfig
from synapse_ng.evolution.store import Store
from synapse_ng.llm.registry import create_provider
from synapse_ng.models import CodeLanguage, InefficencyType, Inefficiency, LLMProviderConfig

COMPONENT = SquareSum()
FAST = "fn sum_squares(values: &[i32]) -> i64 { values.iter().map(|&v| (v as i64) * (v as i64)).sum() }"
# Does not compile, and rustc has no machine-applicable fix for it (an unknown name): only the model can
# repair it.
BROKEN = (
    "fn sum_squares(values: &[i32]) -> i64 "
    "{ values.iter().map(|&v| (v as i64) * (v as i64)).sum::<i64>() + bias }"
)
# Does not compile for want of a `mut`, which rustc itself names as a machine-applicable fix.
SLIPPED = (
    "fn sum_squares(values: &[i32]) -> i64 "
    "{ let total: i64 = 0; for &v in values { total += (v as i64) * (v as i64); } total }"
)
WRONG = "fn sum_squares(values: &[i32]) -> i64 { values.len() as i64 }"


def answer(block: str) -> Ok:
    return Ok(text=f"Here is a faster version.\n\n```rust\n{block}\n```\nIt multiplies instead of adding.")


def provider_for(server: LoopbackServer):
    return create_provider(
        LLMProviderConfig(
            "openai_api", model_name="scripted", api_endpoint=server.url + "/v1", timeout_seconds=30
        )
    )


def run_search(tmp_path, server, *, samples, provider=None, deployed=None, banned=(), **config):
    """A run of `samples` samples on one island with the scripted model, untuned; `deployed` and `banned`
    are the network's lessons (EvolutionSearch), `config` more SearchConfig settings."""
    store = Store(tmp_path / "ws")
    search = EvolutionSearch(
        COMPONENT,
        provider or provider_for(server),
        store,
        problem="sum_squares is slow on long inputs",
        config=SearchConfig(islands=1, concurrency=1, tune_share=0.0, random_cases=5, **config),
        budget=Budget(samples=samples),
        deployed=deployed,
        banned=banned,
    )
    return store, asyncio.run(search.run())


def test_a_search_repairs_dedups_and_keeps_a_measured_held_out_improvement(tmp_path):
    # 1: a block that does not compile, 2: the repair (the fast block), 3: the same block again,
    # 4: a wrong one.
    server = LoopbackServer(OpenAIWire(), answer(BROKEN), answer(FAST), answer(FAST), answer(WRONG))
    try:
        store, result = run_search(tmp_path, server, samples=3, repair_tries=1)
    finally:
        server.close()
    assert result.improved, result.reason
    assert result.heldout.improvement_pct > 50
    assert result.heldout.evidence["candidate"]["sha256"] == result.built.sha256
    rows = store.candidates(result.run_id)
    by_operator = [(row.operator, row.status) for row in rows]
    assert by_operator[0] == ("baseline", "correct")
    assert any(op.endswith("+repair") and status == "correct" for op, status in by_operator)
    assert ("llm-block", "duplicate") in by_operator or ("llm-edits", "duplicate") in by_operator
    assert any(status == "incorrect" for _, status in by_operator)
    # The repair request carried the compiler's complaint back to the model.
    repair_prompt = json.dumps(server.requests[1].body)
    assert "cannot find value `bias`" in repair_prompt
    assert result.progress.compile_failed == 0 or result.progress.compiled >= 1
    statistics = store.statistics()
    assert statistics["best_improvement_per_component"]["square_sum"] == pytest.approx(
        result.heldout.improvement_pct
    )


def test_a_slip_rustc_can_fix_is_fixed_without_asking_the_model_again(tmp_path):
    server = LoopbackServer(OpenAIWire(), answer(SLIPPED), answer(WRONG))
    try:
        store, result = run_search(tmp_path, server, samples=1, repair_tries=1)
    finally:
        server.close()
    assert len(server.requests) == 1  # no repair round trip
    rows = store.candidates(result.run_id)
    fixed = [row for row in rows if row.operator.endswith("+rustfix")]
    assert len(fixed) == 1 and fixed[0].status == "correct", [
        (row.operator, row.status, row.message) for row in rows
    ]
    assert "let mut total: i64 = 0;" in fixed[0].source
    assert result.improved and result.heldout.improvement_pct > 50


class BusyModel:
    """A provider that reports its model busy, as the embedded one does while another sample generates."""

    busy = True

    def __init__(self, inner):
        self.inner, self.name, self.model = inner, inner.name, inner.model

    async def complete(self, *args, **kwargs):
        return await self.inner.complete(*args, **kwargs)

    async def aclose(self):
        await self.inner.aclose()


def test_while_the_model_is_busy_a_worker_tunes_instead_of_waiting(tmp_path):
    scaled = (
        "fn sum_squares(values: &[i32]) -> i64 { let scale: i64 = 8; "
        "values.iter().map(|&v| (v as i64) * (v as i64) * scale).sum::<i64>() / scale }"
    )
    server = LoopbackServer(OpenAIWire(), answer(scaled), answer(WRONG))
    try:
        store = Store(tmp_path / "ws")
        search = EvolutionSearch(
            COMPONENT,
            BusyModel(provider_for(server)),
            store,
            problem="p",
            config=SearchConfig(islands=1, concurrency=1, tune_share=0.0, random_cases=3),
            budget=Budget(samples=4),
        )
        result = asyncio.run(search.run())
    finally:
        server.close()
    operators = [row.operator for row in store.candidates(result.run_id)]
    # Nothing to tune at first (the baseline has no constant), so the model is asked; then only tunes.
    assert operators == ["baseline", "llm-block", "tune", "tune", "tune"] or operators == [
        "baseline",
        "llm-edits",
        "tune",
        "tune",
        "tune",
    ], operators
    assert len(server.requests) == 1


WRONG_TOO = "fn sum_squares(values: &[i32]) -> i64 { values.len() as i64 * 3 }"


def test_no_improvement_is_reported_with_its_reason(tmp_path):
    server = LoopbackServer(OpenAIWire(), answer(WRONG), answer(WRONG_TOO))
    try:
        store, result = run_search(tmp_path, server, samples=2)
    finally:
        server.close()
    assert not result.improved
    assert "no candidate beat the baseline" in result.reason
    assert store.get_run(result.run_id).status == "no_improvement"


def test_a_token_budget_stops_the_search(tmp_path):
    server = LoopbackServer(OpenAIWire(tokens_in=500, tokens_out=500), answer(WRONG))
    store = Store(tmp_path / "ws")
    search = EvolutionSearch(
        COMPONENT,
        provider_for(server),
        store,
        problem="p",
        config=SearchConfig(islands=1, concurrency=1, tune_share=0.0, random_cases=2),
        budget=Budget(samples=50, tokens=2500),
    )
    try:
        result = asyncio.run(search.run())
    finally:
        server.close()
    # 1000 tokens a call: stops once 2500 are spent. The answers repeat, so the calls' tokens are spent
    # while only the first counts as a sample.
    assert result.progress.proposals == 3
    assert result.progress.samples == 1 and result.progress.duplicates == 2
    assert "token budget" in result.reason


def test_a_model_that_keeps_failing_ends_the_run_with_its_error(tmp_path):
    from llm_servers import Reply

    server = LoopbackServer(
        OpenAIWire(), Reply(401, {"error": {"message": "bad key", "type": "invalid_request_error"}})
    )
    try:
        store, result = run_search(tmp_path, server, samples=10)
    finally:
        server.close()
    assert not result.improved
    assert "failed 3 times in a row" in result.reason and "401" in result.reason


RESUMABLE = textwrap.dedent(
    """
    import asyncio, sys
    sys.path.insert(0, {tests!r})
    from square_component import SquareSum
    from synapse_ng.evolution.search import Budget, EvolutionSearch, SearchConfig
    from synapse_ng.evolution.store import Store
    from synapse_ng.llm.registry import create_provider
    from synapse_ng.models import LLMProviderConfig
    store = Store({workspace!r})
    provider = create_provider(LLMProviderConfig("openai_api", model_name="scripted", api_endpoint={url!r}))
    search = EvolutionSearch(SquareSum(), provider, store, problem="p",
        config=SearchConfig(islands=2, concurrency=1, tune_share=0.0, random_cases=2, seed=7),
        budget=Budget(samples=6))
    asyncio.run(search.run({resume}))
    """
)


def _committed_candidates(database: Path) -> int:
    """How many candidates another process has committed so far: 0 while its database has no file, or a
    file whose tables are still being created."""
    if not database.exists():
        return 0
    try:
        with sqlite3.connect(database) as db:
            return db.execute("select count(*) from candidates").fetchone()[0]
    except sqlite3.OperationalError:  # "no such table" until the schema is committed
        return 0


def test_a_killed_run_resumes_and_loses_only_what_was_in_flight(tmp_path):
    blocks = [
        FAST.replace("sum()", "sum::<i64>()"),
        WRONG,
        FAST,
        WRONG.replace("len()", "len() * 2"),
        FAST + " ",
        BROKEN,
    ] + [WRONG.replace("len()", f"len() * {k}") for k in range(3, 13)]  # distinct, so the budget is met
    server = LoopbackServer(OpenAIWire(), *[answer(b) for b in blocks])
    workspace = tmp_path / "ws"
    script = RESUMABLE.format(
        tests=str(Path(__file__).parent), workspace=str(workspace), url=server.url + "/v1", resume="None"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        database = workspace / "engine.sqlite3"
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:  # wait until the baseline and two samples are committed
            if _committed_candidates(database) >= 3:
                break
            time.sleep(0.2)
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        store = Store(workspace)
        (run,) = store.list_runs()
        before = store.candidates(run.run_id)
        assert len(before) >= 3
        resume = RESUMABLE.format(
            tests=str(Path(__file__).parent),
            workspace=str(workspace),
            url=server.url + "/v1",
            resume=repr(run.run_id),
        )
        finished = subprocess.run([sys.executable, "-c", resume], capture_output=True, text=True, timeout=600)
        assert finished.returncode == 0, finished.stderr
    finally:
        server.close()
    after = Store(workspace).candidates(run.run_id)
    assert [row.id for row in after[: len(before)]] == [row.id for row in before]  # nothing lost
    counted = [row for row in after if row.operator != "baseline" and row.status != "duplicate"]
    assert len(counted) == 6  # the budget, across both processes (a duplicate gives its sample back)
    assert sum(1 for row in after if row.operator == "baseline") == 1  # the baseline was not measured again
    evaluated = [row.source_hash for row in after if row.status not in ("duplicate",) and row.source_hash]
    assert len(evaluated) == len(set(evaluated))  # no source evaluated twice
    assert Store(workspace).get_run(run.run_id).status in ("improved", "no_improvement")


# -------------------------------------------------------------------------------- the seed's API


def test_the_engine_returns_measured_generated_code(tmp_path):
    from synapse_ng.evolution.engine import EvolutionaryEngineManager

    sorted_tally = (
        (Path(__file__).parent / "test_cli_components.py")
        .read_text()
        .split('SORTED_TALLY = r"""')[1]
        .split('"""')[0]
    )
    server = LoopbackServer(OpenAIWire(), answer(sorted_tally))
    try:
        engine = EvolutionaryEngineManager(
            LLMProviderConfig("openai_api", "scripted", server.url + "/v1"),
            str(tmp_path / "ws"),
            budget=Budget(samples=1),
            search_config=SearchConfig(islands=1, concurrency=1, tune_share=0.0, random_cases=5),
        )
        issue = Inefficiency(
            type=InefficencyType.CONSENSUS,
            description="Consensus exceeds 5s",
            severity=0.7,
            current_metric=8.0,
            target_metric=3.0,
            affected_component="raft_consensus",
            suggested_improvement="Optimize the tally",
        )
        generated = asyncio.run(engine.generate_optimized_code(issue, {"peer_count": 12}))
    finally:
        server.close()
    assert generated is not None and generated.measured and generated.eligible_for_deployment
    assert generated.estimated_improvement > 50  # measured on votes_1k/10k/100k, not severity x 100
    assert generated.wasm_binary[:4] == b"\0asm" and len(generated.wasm_hash) == 64
    assert generated.evidence["component"] == "raft_consensus"
    assert "peer_count: 12" in json.dumps(server.requests[0].body)
    stats = engine.get_statistics()
    for key in (
        "total_generations",
        "successful_compilations",
        "failed_compilations",
        "success_rate",
        "workspace_dir",
        "llm_provider",
        "llm_model",
        "avg_generation_time_seconds",
        "avg_compilation_time_seconds",
    ):
        assert key in stats
    assert stats["best_improvement_per_component"]["raft_consensus"] == pytest.approx(
        generated.estimated_improvement
    )
    # Statistics are read from the store: a new engine on the same workspace sees them.
    again = EvolutionaryEngineManager(
        LLMProviderConfig("openai_api", "scripted", "http://127.0.0.1:9/v1"), str(tmp_path / "ws")
    )
    assert again.get_statistics()["total_generations"] == stats["total_generations"]


def test_an_unknown_component_gets_unmeasured_free_form_code(tmp_path):
    from synapse_ng.evolution.engine import EvolutionaryEngineManager

    program = '#[no_mangle]\npub extern "C" fn execute(ptr: i32, len: i32) -> i32 { ptr.wrapping_add(len) }'
    server = LoopbackServer(OpenAIWire(), answer(program))
    try:
        engine = EvolutionaryEngineManager(
            LLMProviderConfig("openai_api", "scripted", server.url + "/v1"), str(tmp_path / "ws")
        )
        issue = Inefficiency(
            type=InefficencyType.REPUTATION,
            description="slow",
            severity=0.5,
            current_metric=2.0,
            target_metric=1.0,
            affected_component="reputation_engine",
            suggested_improvement="cache",
        )
        generated = asyncio.run(engine.generate_optimized_code(issue))
    finally:
        server.close()
    assert generated is not None and generated.wasm_binary[:4] == b"\0asm"
    assert generated.estimated_improvement is None and not generated.measured
    assert not generated.eligible_for_deployment


SEED_SCRIPTS = Path(__file__).parent / "seed"


@pytest.fixture(scope="module")
def ollama_port_server():
    """A loopback server speaking Ollama's protocol on Ollama's port (the seed's scripts name
    http://localhost:11434), answering with a correct, faster tally; bound once for the module."""
    sorted_tally = (
        (Path(__file__).parent / "test_cli_components.py")
        .read_text()
        .split('SORTED_TALLY = r"""')[1]
        .split('"""')[0]
    )
    deadline = time.monotonic() + 30  # a moment's occupant (a closing server) is waited for
    while True:
        try:
            server = LoopbackServer(
                OllamaWire(models={"codellama:7b"}), Ok(text=f"```rust\n{sorted_tally}\n```"), port=11434
            )
            break
        except OSError:
            if time.monotonic() > deadline:
                holder = subprocess.run(
                    ["ss", "-ltnp", "sport = :11434"], capture_output=True, text=True
                ).stdout.strip()
                pytest.skip(f"port 11434 is taken (a real Ollama?); this is pid {os.getpid()}: {holder}")
            time.sleep(0.5)
    yield server
    server.close()


class _RequestsSince:
    """The module's Ollama server as one test sees it: only the requests made since the test began."""

    def __init__(self, server: LoopbackServer) -> None:
        self.server = server
        self.start = len(server.requests)

    @property
    def requests(self):
        return self.server.requests[self.start :]


@pytest.fixture
def ollama_on_its_port(ollama_port_server):
    return _RequestsSince(ollama_port_server)


@pytest.mark.parametrize("how", ["file", "stdin"])
def test_the_seed_test_script_runs_as_a_file_unchanged_but_for_the_import_path(
    ollama_on_its_port, tmp_path, how
):
    """The seed's own "Test Script", saved to a file (no main guard, asyncio.run at top level) and run as a
    user would: evaluation workers must never re-import it."""
    script = tmp_path / "seed_test.py"
    script.write_text((SEED_SCRIPTS / "seed_test_script.py").read_text())
    done = _run_script(script, how, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "✓ Success!" in done.stdout and "WASM:" in done.stdout and "Hash:" in done.stdout, (
        done.stdout + done.stderr
    )
    assert "✗ Failed" not in done.stdout
    assert done.stdout.count("✓ Success!") == 1  # ran once: not again inside a worker
    assert ollama_on_its_port.requests and ollama_on_its_port.requests[0].path == "/api/chat"


def test_the_seed_example_runs_as_a_file(ollama_on_its_port, tmp_path):
    script = tmp_path / "seed_example.py"
    script.write_text((SEED_SCRIPTS / "seed_example.py").read_text())
    done = _run_script(script, "file", tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 3 and lines[0].startswith("✓ Generated WASM: ") and lines[0].endswith(" bytes"), (
        done.stdout + done.stderr
    )
    assert lines[1].startswith("  Hash: ") and len(lines[1].split()[-1]) == 64
    improvement = float(lines[2].removeprefix("  Est. improvement: ").removesuffix("%"))
    assert improvement > 50  # measured on the held-out vote sets, not severity x 100
    assert "peer_count: 12" in json.dumps(ollama_on_its_port.requests[0].body)


def _run_script(script: Path, how: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "TMPDIR": str(cwd)}
    if how == "file":
        return subprocess.run(
            [sys.executable, str(script)], capture_output=True, text=True, timeout=900, env=env, cwd=cwd
        )
    with open(script) as stdin:
        return subprocess.run(
            [sys.executable, "-"], stdin=stdin, capture_output=True, text=True, timeout=900, env=env, cwd=cwd
        )


# ------------------------------------------------------------------ population rules, without a model


def _bare_search(tmp_path, component, **config):
    search = EvolutionSearch(
        component, None, Store(tmp_path / "ws"), problem="-", config=SearchConfig(islands=1, **config)
    )
    return search, Member


def Member(candidate_id, block, score, improvement_pct, scores) -> Attempt:
    """A correct, measured program as the population holds it, with these per-workload scores."""
    workloads = [{"id": name, "candidate": {"m": value}} for name, value in scores.items()]
    metrics = {"workloads": workloads, "aggregate": {"metric": "m"}}
    return Attempt(
        "run",
        0,
        None,
        "llm-block",
        CodeLanguage.RUST,
        source=block,
        status="correct",
        stage="done",
        score=score,
        improvement_pct=improvement_pct,
        metrics=metrics,
        id=candidate_id,
    )


def test_an_island_keeps_one_program_per_measured_behaviour(tmp_path):
    from synapse_ng.components import get_component

    search, Member = _bare_search(tmp_path, get_component("task_allocation"), elites=3)
    best_fit = Member(1, "best fit", 315.1, 0.0, {"train_or bins": 105.2, "train_weibull bins": 209.9})
    rescaled = Member(2, "best fit * 0.5", 315.1, 0.0, {"train_or bins": 105.2, "train_weibull bins": 209.9})
    different = Member(3, "gap penalty", 316.0, -0.3, {"train_or bins": 105.4, "train_weibull bins": 210.6})
    better = Member(
        4, "gap penalty, tuned", 313.0, 0.7, {"train_or bins": 104.8, "train_weibull bins": 208.2}
    )
    for member in (best_fit, rescaled, different, better):
        search.population.admit(0, member)
    assert [m.id for m in search.population.islands[0]] == [4, 1, 3]  # the rescaling took no slot
    search.population.admit(0, better)  # migration of a member already there
    assert [m.id for m in search.population.islands[0]] == [4, 1, 3]


def test_directions_come_in_turn_with_a_free_turn(tmp_path):
    from synapse_ng.components import get_component

    component = get_component("task_allocation")
    search, _ = _bare_search(tmp_path, component)
    n = len(component.directions)
    turns = [search.model.direction(sample) for sample in range(2 * (n + 1))]
    assert turns[:n] == list(component.directions) and turns[n] is None and turns[n + 1 :] == turns[: n + 1]
    assert (
        EvolutionSearch(COMPONENT, None, Store(tmp_path / "ws2"), problem="-").model.direction(0) is None
    )  # none declared


def test_the_tuner_works_on_an_elite_that_has_constants(tmp_path):
    from synapse_ng.components import get_component

    search, Member = _bare_search(tmp_path, get_component("task_allocation"), exploit=1.0)
    baseline = get_component("task_allocation").baseline_block(search.config.language)
    search.population.admit(0, Member(1, baseline, 315.1, 0.0, {"a": 1.0}))
    assert search.tuner.tune(0) is None  # best fit has no constant
    penalty = (
        "fn priority(item: f64, bins: &[f64]) -> Vec<f64> {\n"
        "    bins.iter().map(|&r| { let gap = r - item; "
        "if gap > 0.0 && gap < 20.0 { -gap - 10.0 } else { -gap } }).collect()\n}\n"
    )
    search.population.admit(0, Member(2, penalty, 316.0, -0.3, {"a": 2.0}))
    for _ in range(30):
        parent, block = search.tuner.tune(0)
        assert parent.id == 2 and block != penalty
        assert block.replace("20.0", "").replace("10.0", "") != penalty.replace("20.0", "").replace(
            "10.0", ""
        )


def test_a_program_that_ties_its_parent_but_has_constants_is_still_tuned_with_wide_steps(tmp_path):
    from synapse_ng.components import get_component

    search, Member = _bare_search(tmp_path, get_component("task_allocation"), exploit=1.0)
    baseline = get_component("task_allocation").baseline_block(search.config.language)
    search.population.baseline = Member(1, baseline, 315.1, 0.0, {"a": 1.0})
    search.population.admit(0, search.population.baseline)
    # A gap penalty whose threshold (0.1) is too small to matter: it packs exactly like best fit.
    plateau = (
        "fn priority(item: f64, bins: &[f64]) -> Vec<f64> {\n    const THRESHOLD: f64 = 0.1;\n"
        "    bins.iter().map(|&r| if r > item && r - item < THRESHOLD { -r - 10.0 } else { -r })"
        ".collect()\n}\n"
    )
    twin = Member(2, plateau, 315.1, 0.0, {"a": 1.0})
    search.population.admit(0, twin)
    search.population.remember_tunable(0, twin)
    assert [m.id for m in search.population.islands[0]] == [1]  # no elite slot for a behavioural twin...
    thresholds, blocks = [], []
    for _ in range(40):
        parent, block = search.tuner.tune(0)  # ...but it is tuned, from its plateau, with wide steps
        assert parent.id == 2
        import re

        value = float(re.search(r"THRESHOLD: f64 = ([0-9.e+-]+);", block).group(1))
        thresholds.append(value)
        blocks.append(block)
    assert max(thresholds) > 0.1 * 3 or min(thresholds) < 0.1 / 3  # beyond what [0.5, 2] steps reach
    # The threshold and the penalty move together: either alone leaves the rule inert.
    assert all("0.1;" not in block and "10.0" not in block for block in blocks), blocks


@pytest.mark.parametrize("name", ["task_allocation", "raft_consensus", "gossip_protocol"])
def test_each_language_gets_directions_with_its_own_code_shapes(tmp_path, name):
    from synapse_ng.components import get_component

    component = get_component(name)
    rust_only = ("let ", ".iter()", "Vec<", "|&", "usize")
    for language in (CodeLanguage.RUST, CodeLanguage.C):
        search, _ = _bare_search(tmp_path / language.value, component, language=language)
        given = {search.model.direction(sample) for sample in range(12)} - {None}
        assert given == set(component.directions_for(language)) and len(given) >= 1
        rusty = [d for d in given if any(token in d for token in rust_only)]
        assert rusty if language is CodeLanguage.RUST else not rusty, given  # C shapes for C
    # WAT has a skeleton but no directions: a WAT search leaves every idea to the model.
    assert CodeLanguage.WAT in component.languages and component.directions_for(CodeLanguage.WAT) == ()
    search, _ = _bare_search(tmp_path / "wat", component, language=CodeLanguage.WAT)
    assert {search.model.direction(sample) for sample in range(12)} == {None}


@pytest.mark.parametrize(
    ("provider", "wire", "endpoint", "temperature_in"),
    [
        ("openai_api", OpenAIWire, "/v1", lambda body: body["temperature"]),
        ("anthropic_api", AnthropicWire, "", lambda body: body["temperature"]),
        ("ollama_local", OllamaWire, "", lambda body: body["options"]["temperature"]),
    ],
)
def test_the_model_configs_temperature_reaches_the_wire_and_the_runs_record(
    tmp_path, provider, wire, endpoint, temperature_in
):
    """The seed's LLMProviderConfig.temperature is what the search sends (not a value of its own), and
    the run's record says which temperature was used."""
    server = LoopbackServer(wire(models=None), answer(FAST))
    try:
        config = LLMProviderConfig(
            provider,
            model_name="scripted",
            api_endpoint=server.url + endpoint,
            api_key="sk-ant-test-key" if provider == "anthropic_api" else None,
            timeout_seconds=30,
            temperature=0.35,
        )
        store, result = run_search(tmp_path, server, samples=1, provider=create_provider(config))
    finally:
        server.close()
    assert server.requests and {temperature_in(r.body) for r in server.requests} == {0.35}
    assert store.get_run(result.run_id).config["config"]["temperature"] == 0.35
