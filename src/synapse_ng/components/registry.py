"""The registry of components: every package here with a `component` module defining a Component.

Adding a component is adding one package (its `component.py`, its skeleton files, its reference and
generators); nothing else changes. Plain modules here (base, registry, ...) are shared parts, not
components.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import pkgutil
from typing import TypeGuard

from ..errors import UsageError
from .base import Component


def _is_component_class(cls: type, module_name: str) -> TypeGuard[type[Component]]:
    return (
        issubclass(cls, Component)
        and cls is not Component
        and not inspect.isabstract(cls)
        and cls.__module__ == module_name
    )


@functools.lru_cache(maxsize=1)
def all_components() -> dict[str, Component]:
    package = importlib.import_module(__package__)
    found: dict[str, Component] = {}
    for module_info in pkgutil.iter_modules(package.__path__):
        if not module_info.ispkg or module_info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__package__}.{module_info.name}.component")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if _is_component_class(cls, module.__name__):
                component = cls()
                found[component.name] = component
    return dict(sorted(found.items()))


def get_component(name: str) -> Component:
    """A component by its name or one of the seed's names that map to it."""
    components = all_components()
    key = name.strip().lower()
    if key in components:
        return components[key]
    for component in components.values():
        if key in component.aliases:
            return component
    known = ", ".join(
        f"{c.name} ({', '.join(c.aliases)})" if c.aliases else c.name for c in components.values()
    )
    raise UsageError(
        f"unknown component {name!r}; known components (and the names that map to them): {known}"
    )
