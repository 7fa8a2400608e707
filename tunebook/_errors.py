"""Errors that tunebook reports to people.

Every bad input (a spec field, a CLI argument, a storage URL, a metric name)
raises :class:`SpecError`: one line that names the field and says how to fix
it. The CLI prints that line and exits with status 2; nothing stored changes,
because validation always happens before the first write.
"""

from __future__ import annotations


class SpecError(ValueError):
    """A bad input: ``field`` is where it is, ``fix`` what to do instead."""

    def __init__(self, field: str, problem: str, fix: str = "") -> None:
        self.field = field
        self.problem = problem
        self.fix = fix
        message = f"{field}: {problem}"
        if fix:
            message += f"; {fix}"
        super().__init__(message)


class MissingExtraError(ImportError):
    """An optional dependency is not installed: names the extra that brings it."""

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        super().__init__(
            f"{purpose} needs the '{package}' package: pip install 'tunebook[{extra}]'"
        )
