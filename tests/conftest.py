"""What the whole suite shares: the `networks` fixture, and the helper modules beside the tests
(node_helpers, llm_servers, square_component, ray_scenario) importable from every test file.

Tests that run the embedded model or a network of node processes are marked `slow` (a minute or more
each); the README's test command runs them all, `pytest -m "not slow"` leaves them out while iterating.

The README's command runs the suite on two pytest-xdist workers in two lanes: every file with a slow test
in one lane, one after another (node networks and the model each want the whole machine, and their
deadlines were set for that), and the other files, a file at a time, in the other lane. A file stays on
one worker, so its module-scoped fixtures (the `networks`) start once.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from node_helpers import start_network  # noqa: E402  (needs the path above)
from synapse_ng.network import LocalNetwork  # noqa: E402


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.pluginmanager.hasplugin("xdist"):
        return
    heavy_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in heavy_files)  # the long lane starts first
    for item in items:
        lane = "heavy" if item.path in heavy_files else item.path.name
        item.add_marker(pytest.mark.xdist_group(lane))


@pytest.fixture(scope="module")
def networks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., LocalNetwork]]:
    """`networks(name, nodes, **settings)` starts a local network of node processes for the test module;
    every network it started is stopped when the module's tests are done, whatever happened in them."""
    started: list[LocalNetwork] = []

    def start(name: str, nodes: int = 3, **settings) -> LocalNetwork:
        network = start_network(tmp_path_factory.mktemp(name), nodes, **settings)
        started.append(network)
        return network

    yield start
    for network in started:
        network.stop()
