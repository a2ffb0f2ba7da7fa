"""What the whole suite shares: the `networks` fixture, and the helper modules beside the tests
(node_helpers, llm_servers, square_component, ray_scenario) importable from every test file.

Tests that run the embedded model or a network of node processes are marked `slow` (a minute or more
each); the README's test command runs them all, `pytest -m "not slow"` leaves them out while iterating.

The README's command runs the suite on two pytest-xdist workers, a file at a time (`--dist loadfile`), so a
file's module-scoped fixtures (the `networks`) start once and its tests never race each other for a port;
the files with slow tests are handed out first, so the longest work starts early. (Not `loadgroup`:
pytest 9.2 keeps a test's id where xdist 3.8 cannot add the group to it.)
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
    heavy_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in heavy_files)  # stable: files keep their own order


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
