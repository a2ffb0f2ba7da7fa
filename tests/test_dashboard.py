"""The dashboard every node serves, in a real headless Chromium (Debian's, driven by Playwright) against a
3-node network on loopback while a real upgrade goes through: the chronic issue, the engine's run (the
scripted loopback model), the proposal, every node's verification and vote, the rollout, the new version,
all appearing without a reload; then the rollback button rolls it back on every node. No request leaves
the machine. Screenshots go to SYNAPSE_SCREENSHOTS (default: build/screenshots) for a person to look at.

The quick tests attack the page's routes with plain HTTP: what a reader can make a node compute or read."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import httpx
import pytest

from llm_servers import LoopbackServer, Ok, OpenAIWire
from node_helpers import (
    GAP_PENALTY,
    AllocationLoad,
    chronic_allocation_network,
    get,
    wait_for,
)
from synapse_ng.node.dashboard import MAX_STREAMS

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def screenshots() -> Path:
    folder = Path(os.environ.get("SYNAPSE_SCREENSHOTS") or ROOT / "build" / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def rendered_row(url: str, selector: str, cells: tuple[str, ...], shot: str) -> dict[str, str]:
    """The text of some cells of one row of a node's page, as a headless Chromium renders it; a screenshot
    of the page goes to `shot` in the screenshots folder."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 1600})
        page.goto(url + "/")
        row = page.wait_for_selector(selector, timeout=30_000)
        found = {cell: row.query_selector(f".{cell}").inner_text() for cell in cells}
        page.screenshot(path=str(screenshots() / shot), full_page=True)
        browser.close()
    return found


@pytest.fixture(scope="module")
def one_node(networks):
    return networks("dashboard-routes", 1)


def test_the_page_and_its_files_are_served_and_nothing_else(one_node):
    url = one_node.url(0)
    page = httpx.get(url + "/", timeout=30)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert 'src="/ui/app.js"' in page.text and "http" not in page.text.replace("http-equiv", "")
    assert httpx.get(url + "/ui/app.js", timeout=30).headers["content-type"].startswith("text/javascript")
    for name in ("..%2F..%2Fnode%2Fapp.py", "index.html", "app.py", "%2Fetc%2Fpasswd"):
        assert httpx.get(url + "/ui/" + name, timeout=30).status_code == 404, name
    docs = httpx.get(url + "/docs", timeout=30).text
    assert "cdn" not in docs.lower() and "/static-offline-docs/swagger-ui-bundle.js" in docs
    assert httpx.get(url + "/static-offline-docs/swagger-ui-bundle.js", timeout=30).status_code == 200
    snapshot = get(url, "/api/dashboard")
    assert snapshot["node"]["engine"]["enabled"] is False  # FAST settings: the engine is off here
    assert {t["metric"] for t in snapshot["health"]["targets"]} >= {"allocation_excess_pct"}


def test_an_anonymous_reader_asking_for_runs_gets_a_404_not_a_new_engine(one_node):
    """The engine is off on this node: asking for a run neither creates an engine nor fails with a 500;
    an id outside the pattern is refused before anything is looked up."""
    url = one_node.url(0)
    for run_id in ("0123456789ab", "no-such-run"):
        answer = httpx.get(url + f"/api/evolution/runs/{run_id}", timeout=30)
        assert answer.status_code == 404 and "engine is off" in answer.json()["error"].lower()
    assert httpx.get(url + "/api/evolution/runs/" + "x" * 81, timeout=30).status_code == 422
    assert not (one_node.dir(0) / "engine").exists()


def test_a_reader_cannot_hold_more_than_a_few_event_streams(one_node):
    """The attack: open stream after stream. Each costs the node a snapshot every half second, so past
    MAX_STREAMS the node answers 503 at once; a closed stream frees its place."""
    url = one_node.url(0) + "/api/dashboard/events"
    with httpx.Client(timeout=30) as client:
        opened = []  # (context, line iterator): both kept, or httpx closes the stream
        try:
            for _ in range(MAX_STREAMS):
                stream = client.stream("GET", url)
                response = stream.__enter__()
                assert response.status_code == 200
                lines = response.iter_lines()
                assert next(lines) == "event: snapshot"
                opened.append((stream, lines))
            with client.stream("GET", url) as refused:
                assert refused.status_code == 503
                assert "already following" in refused.read().decode()
        finally:
            for stream, _lines in opened:
                stream.__exit__(None, None, None)

        def admitted() -> bool:
            with client.stream("GET", url) as response:
                return response.status_code == 200

        wait_for(admitted, 30, "a stream admitted again once the others closed")


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_dashboard_shows_the_whole_upgrade_live_and_its_rollback_button_works(tmp_path):
    from playwright.sync_api import sync_playwright

    server = LoopbackServer(OpenAIWire(), Ok(text=f"A gap-aware version:\n```rust\n{GAP_PENALTY}\n```"))
    net = chronic_allocation_network(tmp_path, server.url, deadline_s=30.0, health_window_s=4.0)
    load = AllocationLoad(net).start()
    shots = screenshots()
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 1600})
            requests: list[str] = []
            navigations: list[str] = []
            page.on("request", lambda request: requests.append(request.url))
            page.on("framenavigated", lambda frame: navigations.append(frame.url))
            watched = net.url(1)
            page.goto(watched + "/")
            page.wait_for_selector("#live.live", timeout=30_000)

            card = page.wait_for_selector("[data-proposal]", timeout=300_000)
            proposal_id = card.get_attribute("data-proposal")
            page.screenshot(path=str(shots / "1-proposal.png"), full_page=True)
            page.wait_for_function(
                "document.querySelectorAll('[data-proposal] [data-voter]').length === 3", timeout=200_000
            )
            votes = page.locator("[data-proposal] [data-voter]").all_inner_texts()
            assert all("yes" in vote and "evidence reproduced" in vote for vote in votes), votes
            assert "passed" in page.locator("[data-proposal] .verdict").inner_text()

            page.wait_for_function(
                "(id) => [...document.querySelectorAll('[data-rollout] .rollout-state')]"
                ".some(e => e.textContent === 'completed')",
                arg=proposal_id,
                timeout=200_000,
            )
            live_version = page.locator("[data-component=task_allocation] .active-version")
            assert live_version.inner_text() == proposal_id[:12]
            assert "approved" in page.locator("[data-proposal] .outcome").inner_text()
            page.screenshot(path=str(shots / "2-upgraded.png"), full_page=True)

            # The author's page shows the engine's run: candidates, best so far, held-out figures.
            evolution = browser.new_page(viewport={"width": 1280, "height": 1400})
            evolution.on("request", lambda request: requests.append(request.url))
            author_url = _author_url(net, proposal_id)
            evolution.goto(author_url + "/#evolution")
            evolution.wait_for_selector("#run svg .best", timeout=60_000)
            assert "held out" in evolution.locator("#run .heldout").inner_text()
            unknown = httpx.get(author_url + "/api/evolution/runs/no-such-run", timeout=30)
            assert unknown.status_code == 404 and "no engine run" in unknown.json()["error"]
            evolution.locator("#evolution").screenshot(path=str(shots / "3-evolution.png"))

            # The button asks to confirm, then for the operator's token (`upgrade rollback --data` reads it).
            page.on(
                "dialog",
                lambda dialog: dialog.accept(net.token(1)) if dialog.type == "prompt" else dialog.accept(),
            )
            page.click("[data-rollback=task_allocation]")
            page.wait_for_function(
                "document.querySelector('[data-component=task_allocation] .active-version').textContent"
                " === 'baseline'",
                timeout=120_000,
            )
            page.screenshot(path=str(shots / "4-rolled-back.png"), full_page=True)
            browser.close()
        for url in net.urls:
            wait_for(
                lambda url=url: (
                    get(url, "/api/components")["components"]["task_allocation"]["active"] == "baseline"
                ),
                60,
                f"the rollback reached {url}",
            )
        assert navigations == [watched + "/"]  # everything appeared without a reload
        assert requests and all(r.startswith("http://127.0.0.1:") for r in requests), requests
    finally:
        load.stop()
        net.stop()
        server.close()


def _author_url(net, proposal_id: str) -> str:
    author = get(net.url(0), f"/api/proposals/{proposal_id}")["author"]
    return next(url for url in net.urls if get(url, "/api/identity")["node_id"] == author)


def test_what_members_write_is_shown_as_text_never_run_as_html(one_node):
    """The attack: a member's proposal title and a vote's reason carry HTML and script. The page shows
    them as text: no element is made from them and no script runs."""
    from playwright.sync_api import sync_playwright

    url = one_node.url(0)
    headers = one_node.operator_headers(0)
    title = '<img src=x onerror="window.pwned=1">fanout'
    created = httpx.post(
        url + "/api/proposals",
        json={"title": title, "description": "<b>bold</b>", "changes": {"gossip_fanout": 3}},
        headers=headers,
        timeout=30,
    )
    assert created.status_code == 201, created.text
    proposal_id = created.json()["id"]
    reason = "<script>window.pwned=2</script><svg onload=window.pwned=3>"
    voted = httpx.post(
        url + f"/api/proposals/{proposal_id}/vote", json={"choice": "no", "reason": reason}, headers=headers
    )
    assert voted.status_code == 201, voted.text
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(url + "/")
        card = page.wait_for_selector(f"[data-proposal='{proposal_id}']", timeout=30_000)
        page.wait_for_selector(f"[data-proposal='{proposal_id}'] [data-voter]", timeout=30_000)
        assert title in card.inner_text() and "<script>" in card.inner_text()
        assert card.query_selector("img, script, svg[onload], b") is None
        assert page.evaluate("window.pwned") is None
        browser.close()
