"""The held-out workloads: the FunSearch test sets, shipped as package data in ``data/``.

They are read from ``$SYNAPSE_BINPACKING_DATA`` when set, else from the package's own copy (CC-BY 4.0,
unchanged: see ``data/README.md``); either way each file is pinned by its SHA-256 in the workload's
origin, and every instance is validated before a module sees it.
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path
from typing import Any

from ...errors import UsageError
from ...settings import settings
from ..base import Split, Workload
from .protocol import MAX_CAPACITY, MAX_ITEMS

DATA_ENV = "SYNAPSE_BINPACKING_DATA"
HELDOUT_FILES = {"or3": "or3.json", "weibull_5k": "weibull_5k.json"}


def data_dir() -> Path:
    """The held-out data: $SYNAPSE_BINPACKING_DATA, else the copy shipped in the package (the FunSearch test
    sets, CC-BY 4.0, unchanged; each file is pinned by its SHA-256 anyway), so a clone anywhere or an
    installed package has its data."""
    configured = settings().binpacking_data
    if configured:
        return Path(configured)
    return Path(str(resources.files(__package__).joinpath("data")))


def heldout_workloads() -> list[Workload]:
    directory = data_dir()
    workloads = []
    for workload_id, file_name in HELDOUT_FILES.items():
        digest, instances = load_dataset(directory / file_name)
        workloads.append(
            Workload(workload_id, Split.HELDOUT, f"{file_name} sha256:{digest}", None, instances)
        )
    return workloads


def _check_instances(path: Path, instances: Any) -> list[dict]:
    where = f"bin-packing data file {path}"
    if not isinstance(instances, list) or not instances:
        raise UsageError(
            f'{where}: "instances" must be a non-empty list of {{"id", "capacity", "items"}} objects'
        )
    checked = []
    for index, instance in enumerate(instances):
        if not isinstance(instance, dict):
            raise UsageError(
                f"{where}: instance {index} is a {type(instance).__name__}, not an object with id, capacity "
                "and items"
            )
        label = f"instance {index} ({instance.get('id')!r})" if "id" in instance else f"instance {index}"
        for key in ("id", "capacity", "items"):
            if key not in instance:
                raise UsageError(f"{where}: {label} has no {key!r} field")
        capacity, items = instance["capacity"], instance["items"]
        if isinstance(capacity, bool) or not isinstance(capacity, int) or not 1 <= capacity <= MAX_CAPACITY:
            raise UsageError(
                f"{where}: {label} has capacity {capacity!r}; it must be an integer in 1..{MAX_CAPACITY}"
            )
        if not isinstance(items, list):
            raise UsageError(
                f"{where}: {label} has items of type {type(items).__name__}; it must be a list of integers"
            )
        if len(items) > MAX_ITEMS:
            raise UsageError(
                f"{where}: {label} has {len(items)} items, more than the {MAX_ITEMS} a module can hold"
            )
        for position, size in enumerate(items):
            if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= capacity:
                raise UsageError(
                    f"{where}: {label} item {position} is {size!r}; item sizes must be integers in "
                    f"1..capacity ({capacity})"
                )
        checked.append({"id": str(instance["id"]), "capacity": capacity, "items": list(items)})
    return checked


_dataset_cache: dict[tuple, tuple[str, list[dict]]] = {}


def load_dataset(path: Path) -> tuple[str, list[dict]]:
    """(sha256 of the file, its validated instances). Raises UsageError naming the file and the fault."""
    path = Path(path)
    try:
        stat = path.stat()
        key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
        if key in _dataset_cache:
            return _dataset_cache[key]
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UsageError(
            f"bin-packing data file {path} is missing: the held-out workloads need "
            f"{', '.join(HELDOUT_FILES.values())}; set {DATA_ENV} to the directory that holds them"
        ) from None
    except OSError as error:
        raise UsageError(f"bin-packing data file {path} cannot be read: {error.strerror or error}") from None
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UsageError(f"bin-packing data file {path} is not valid JSON: {error}") from None
    if not isinstance(document, dict) or "instances" not in document:
        raise UsageError(
            f'bin-packing data file {path} has no "instances" list at the top level; expected '
            f'{{"name", "source", "instances": [...]}}'
        )
    result = (hashlib.sha256(raw).hexdigest(), _check_instances(path, document["instances"]))
    _dataset_cache[key] = result
    return result
