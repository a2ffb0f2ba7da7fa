"""What a candidate module may contain: the policy the static checks hold a module to.

A component declares its contract here, without inspecting anything: the function exports it calls,
each with its exact wasm signature (:class:`ExportSpec`), and the bounds a module must stay within
(:class:`WasmPolicy`). ``inspect.py`` compares a module with a policy; ``checks.py`` words what differs.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PAGE_BYTES", "VALUE_TYPES", "ExportSpec", "WasmPolicy", "signature_text"]

VALUE_TYPES = ("i32", "i64", "f32", "f64")  # what the host can pass to and take from an export
PAGE_BYTES = 65536  # one page of linear memory: the unit of memory limits, in the module and the sandbox

_USAGE = "expected NAME:PARAMS->RESULTS, e.g. 'add:i32,i32->i32', 'run:->' or 'f:->f64'"


def signature_text(params: tuple[str, ...], results: tuple[str, ...]) -> str:
    """A signature as the specs spell it: ``i32,i32->i32``; ``->`` for no parameters and no results."""
    return f"{','.join(params)}->{','.join(results)}"


@dataclass(frozen=True)
class ExportSpec:
    """A function export a module must have: its name and exact wasm signature."""

    name: str
    params: tuple[str, ...] = ()
    results: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", tuple(self.params))
        object.__setattr__(self, "results", tuple(self.results))
        if not isinstance(self.name, str) or not self.name:
            raise ValueError("an export spec needs a non-empty name, e.g. 'add:i32,i32->i32'")
        for value_type in self.params + self.results:
            if value_type not in VALUE_TYPES:
                raise ValueError(
                    f"unknown value type {value_type!r} in export {self.name!r}: use i32, i64, f32 or f64"
                )

    @classmethod
    def parse(cls, text: str) -> ExportSpec:
        """Parse ``"name:params->results"``, e.g. ``"add:i32,i32->i32"``, ``"run:->"``, ``"f:->f64"``.

        Whitespace around the name and the types is ignored. The name is everything before the
        last ``:`` (so a name may itself contain ``:``).
        """
        if not isinstance(text, str):
            raise ValueError(
                f"an export spec must be a string like 'add:i32,i32->i32', not {type(text).__name__}"
            )
        name, colon, signature = text.rpartition(":")
        name = name.strip()
        if not colon or not name:
            raise ValueError(f"bad export spec {text!r}: {_USAGE}")
        if signature.count("->") != 1:
            raise ValueError(f"bad export spec {text!r}: the signature needs exactly one '->'; {_USAGE}")
        params_text, _, results_text = signature.partition("->")
        return cls(name, _types(text, params_text, "parameters"), _types(text, results_text, "results"))

    @property
    def signature(self) -> str:
        return signature_text(self.params, self.results)

    def __str__(self) -> str:
        return f"{self.name}:{self.signature}"


def _types(text: str, part: str, what: str) -> tuple[str, ...]:
    """The value types of one side of a spec's signature; `text` is the whole spec, for messages."""
    part = part.strip()
    if not part:
        return ()
    found = tuple(item.strip() for item in part.split(","))
    for item in found:
        if not item:
            raise ValueError(f"bad export spec {text!r}: empty type in the {what} list; {_USAGE}")
        if item not in VALUE_TYPES:
            raise ValueError(
                f"bad export spec {text!r}: unknown value type {item!r} in the {what}; "
                "use i32, i64, f32 or f64"
            )
    return found


@dataclass(frozen=True)
class WasmPolicy:
    """What a candidate module may contain. The defaults admit a plain, self-contained module."""

    max_bytes: int = 10 * 1024 * 1024
    allowed_imports: frozenset[str] = frozenset()  # "module.name" strings
    required_exports: tuple[ExportSpec, ...] = ()
    # Memories and tables, imported or defined: a memory must declare a maximum within this.
    max_memory_pages: int = 1024  # 64 KiB pages: 64 MiB
    max_tables: int = 1
    max_table_elements: int = 10_000
    # Defined functions, globals and data segments only: imported ones are bounded by the allowlist.
    max_functions: int = 10_000
    max_globals: int = 1_000
    max_data_segments: int = 10_000

    def __post_init__(self) -> None:
        # Accept any iterable of names, and "add:i32->i32" strings for exports, for convenience.
        object.__setattr__(self, "allowed_imports", frozenset(self.allowed_imports))
        specs = tuple(ExportSpec.parse(s) if isinstance(s, str) else s for s in self.required_exports)
        object.__setattr__(self, "required_exports", specs)
