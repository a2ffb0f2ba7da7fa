"""Data shared across the parts of synapse-ng. Plain dataclasses and enums, no behaviour."""

from __future__ import annotations

from enum import Enum


class CodeLanguage(str, Enum):
    """Languages a candidate may be written in (the seed's names and values)."""

    RUST = "rust"
    WAT = "wat"
    C = "c"
    ASSEMBLYSCRIPT = "assemblyscript"

    @classmethod
    def from_name(cls, name: str) -> "CodeLanguage":
        try:
            return cls(name.lower())
        except ValueError:
            known = ", ".join(member.value for member in cls)
            raise ValueError(f"unknown language {name!r}; known: {known}") from None
