"""The dashboard benchmark: what the page weighs, and how soon a vote cast on one node shows on another
node's page, on a local network of 3 real node processes with headless Chromium (Debian's).

  - page weight: the bytes and requests of the first load of a node's page (the HTML, its script and
    style, the first snapshot), the event stream left out (it stays open);
  - vote-to-page latency: a proposal is made on node A and shown on node C's page; then A's operator
    votes, and the clock runs from the vote's POST on A until the vote's row is drawn on C's page (gossip
    from A to C, C's next snapshot event, the page drawing it). Proposers alternate between two nodes
    to stay within the per-member open-proposal bound; automatic voting is off.

    .venv/bin/python benchmarks/dashboard.py [--trials 8]
"""

from __future__ import annotations

import argparse
import platform
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

from synapse_ng.network import LocalNetwork

SETTINGS = {
    "deadline_s": 60.0,
    "grace_s": 0.5,
    "anti_entropy_interval_s": 0.5,
    "immune_interval_s": 1.0,
    "auto_vote": False,
    "evolve": False,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    args = parser.parse_args()
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    with tempfile.TemporaryDirectory(prefix="synapse-dashboard-bench-") as root:
        net = LocalNetwork(Path(root), 3, overrides=SETTINGS)
        net.prepare()
        net.start()
        try:
            net.wait_ready(timeout_s=120)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
                weight, requests = page_weight(browser, net.url(2))
                latencies = vote_latencies(browser, net, args.trials)
                browser.close()
        finally:
            net.stop()
    print(f"# dashboard benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.node()}, 3 nodes")
    print(f"page weight: {weight} bytes in {requests} requests (first load, the event stream left out)")
    print(
        f"vote on node 0 or 1 -> drawn on node 2's page, {len(latencies)} trials: "
        f"min {min(latencies):.3f} s, median {statistics.median(latencies):.3f} s, max {max(latencies):.3f} s"
    )


def page_weight(browser, url: str) -> tuple[int, int]:
    page = browser.new_page()
    sizes: dict[str, int] = {}

    def record(response) -> None:
        if response.url.endswith("/api/dashboard/events"):
            return
        try:
            sizes[response.url] = len(response.body())
        except Exception:  # a response without a body (a redirect)
            sizes[response.url] = 0

    page.on("response", record)
    page.goto(url + "/")
    page.wait_for_selector("#live.live", timeout=30_000)
    page.wait_for_timeout(1000)  # the first snapshot drawn; the stream stays open, so no "idle"
    page.close()
    return sum(sizes.values()), len(sizes)


def vote_latencies(browser, net: LocalNetwork, trials: int) -> list[float]:
    page = browser.new_page()
    page.goto(net.url(2) + "/")
    page.wait_for_selector("#live.live", timeout=30_000)
    latencies = []
    with httpx.Client(timeout=30) as client:
        for trial in range(trials):
            author = trial % 2
            headers = net.operator_headers(author)
            created = client.post(
                net.url(author) + "/api/proposals",
                json={
                    "title": f"trial {trial}",
                    "description": "-",
                    "changes": {"gossip_fanout": 2 + trial % 3},
                },
                headers=headers,
            )
            created.raise_for_status()
            proposal_id = created.json()["id"]
            page.wait_for_selector(f"[data-proposal='{proposal_id}']", timeout=60_000)
            started = time.perf_counter()
            voted = client.post(
                net.url(author) + f"/api/proposals/{proposal_id}/vote",
                json={"choice": "yes", "reason": "benchmark"},
                headers=headers,
            )
            voted.raise_for_status()
            page.wait_for_selector(f"[data-proposal='{proposal_id}'] [data-voter]", timeout=60_000)
            latencies.append(time.perf_counter() - started)
    page.close()
    return latencies


if __name__ == "__main__":
    main()
