"""What the source policy reports: a `Violation` (rule, line, message), collected by a `Report`
that keeps one finding per place and rule and turns offsets into the lines the author wrote."""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

__all__ = ["Report", "Violation"]


@dataclass(frozen=True)
class Violation:
    """One breach of the source policy."""

    rule: str  # short stable id, e.g. "include-macro"
    line: int  # 1-based line in the original source
    message: str  # what was found and why it is banned

    def __str__(self) -> str:
        return f"line {self.line}: [{self.rule}] {self.message}"


class Report:
    """Violations found so far, one per (place, rule): a token can break two rules but not one twice.
    newline: what ends a line in this language (rustc: \\n; clang: \\r\\n, \\r or \\n)."""

    def __init__(self, source: str, newline: re.Pattern[str]) -> None:
        self._starts = [0] + [m.end() for m in newline.finditer(source)]
        self._found: dict[tuple[int, str], tuple[int, str]] = {}

    def add(self, offset: int, rule: str, message: str) -> None:
        self._found.setdefault((offset, rule), (offset, message))

    def violations(self) -> list[Violation]:
        ordered = sorted(self._found.items(), key=lambda item: (item[1][0], item[0][1]))
        return [
            Violation(rule, bisect.bisect_right(self._starts, offset), message)
            for (_, rule), (offset, message) in ordered
        ]
