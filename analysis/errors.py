"""Input errors shared by the analysis engine and the web app.

A single exception type, :class:`InputError` (a ``ValueError``), carries every
problem found in one pass over the input, so a user fixes a file once instead
of once per error. Each problem names the file, the line (1 = the header line,
so the first data record is line 2), the column and a message.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

__all__ = ["Problem", "InputError", "MAX_SHOWN"]

#: how many problems the string form of an InputError lists before summarising
MAX_SHOWN = 20


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input: where (file, line, column) and what.

    ``message`` is English text; ``code`` (stable, e.g. ``"item_range"``) and
    ``params`` (the values the message names) let an application show the
    problem in its own language.
    """

    file: str
    line: int | None
    column: str | None
    message: str
    code: str = ""
    params: dict = field(default_factory=dict, compare=False, hash=False)

    def __str__(self) -> str:
        if not self.file and self.line is None and not self.column:
            return self.message
        where = self.file or "<input>"
        if self.line is not None:
            where += f", line {self.line}"
        if self.column:
            where += f", column {self.column!r}"
        return f"{where}: {self.message}"


class InputError(ValueError):
    """Raised when inputs are invalid; ``.problems`` lists every problem found."""

    def __init__(self, problems: Iterable[Problem] | Problem | str):
        if isinstance(problems, str):
            problems = [Problem("", None, None, problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems: list[Problem] = list(problems)
        super().__init__(self._text())

    def _text(self) -> str:
        lines = [str(p) for p in self.problems[:MAX_SHOWN]]
        extra = len(self.problems) - MAX_SHOWN
        if extra > 0:
            lines.append(f"... and {extra} more problem(s)")
        return "\n".join(lines) if lines else "invalid input"

    def as_records(self) -> list[dict]:
        """The problems as plain dicts (file, line, column, message), e.g. for JSON."""
        return [
            {"file": p.file, "line": p.line, "column": p.column, "message": p.message, "code": p.code,
             "params": dict(p.params)}
            for p in self.problems
        ]
