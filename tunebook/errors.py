"""One error hierarchy: everything tunebook raises on purpose is a :class:`TunebookError`.

The CLI maps the families to exit codes (see ``EXIT_CODES``): a bad input
exits 2 with one line naming the field and the fix; nothing stored changes,
because validation always happens before the first write.

- :class:`SpecError` — a bad input (spec field, CLI argument, storage URL,
  metric name): ``field``, ``problem``, ``fix``.
- :class:`ConfigurationError` — the environment cannot run the study (the
  training function does not import, the checkpoint folder is a file): a
  ``SpecError`` too, so it exits 2 before any trial is claimed.
- :class:`StorageError` — the store failed or refused (translated from the
  driver at the storage boundary): :class:`StudyNotFound`,
  :class:`StudyExists`, :class:`StorageUnavailable` (an infrastructure fault:
  retried, never blamed on the training function).
- :class:`ClaimLost` — the running trial was taken over by another worker.
- :class:`TrialInfeasible` — the trial diverged or broke a rule; infeasible is
  data, not a failure.
- :class:`MissingExtraError` — an optional dependency is not installed.
"""

from __future__ import annotations


class TunebookError(Exception):
    """Root of every error tunebook raises on purpose."""


class SpecError(TunebookError, ValueError):
    """A bad input: ``field`` is where it is, ``fix`` what to do instead."""

    def __init__(self, field: str, problem: str, fix: str = "") -> None:
        self.field = field
        self.problem = problem
        self.fix = fix
        message = f"{field}: {problem}"
        if fix:
            message += f"; {fix}"
        super().__init__(message)


class ConfigurationError(SpecError):
    """The environment cannot run the study (import, folder, storage); checked before any claim."""


class StorageError(TunebookError, RuntimeError):
    """The store failed or refused an operation."""


class StudyNotFound(StorageError, KeyError):
    """No study (or experiment, or trial) of that name or number is stored."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class StudyExists(StorageError):
    """A study of that name is already stored."""


class StorageUnavailable(StorageError):
    """An infrastructure fault (database away, disk full, locked too long): retried, never the user's fault."""


class ClaimLost(TunebookError, RuntimeError):
    """The trial is no longer this worker's (it was re-queued and claimed elsewhere)."""


class TrialInfeasible(TunebookError):
    """The trial diverged or broke a user rule; raised from ``log`` to stop training."""


class MissingExtraError(TunebookError, ImportError):
    """An optional dependency is not installed: names the extra that brings it."""

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        super().__init__(f"{purpose} needs the '{package}' package: pip install 'tunebook[{extra}]'")


#: CLI exit codes by error family (the most specific class listed first wins).
EXIT_CODES: tuple[tuple[type[BaseException], int], ...] = (
    (SpecError, 2),
    (MissingExtraError, 2),
    (StudyNotFound, 2),
    (StudyExists, 2),
    (StorageUnavailable, 3),
    (StorageError, 1),
    (TunebookError, 1),
)


def failure_line(text: str | None) -> str:
    """The one line that says why something failed: a traceback's exception line (``ValueError: ...``,
    the first line after the last frame), else the text's first line; ``""`` for no text."""
    lines = (text or "").strip().splitlines()
    if not lines:
        return ""
    frames = [i for i, line in enumerate(lines) if line.startswith("  File ")]
    after = [line for line in lines[frames[-1] + 1:] if line and not line[0].isspace()] if frames else []
    return (after[0] if after else lines[0]).strip()


def exception_line(exc: BaseException) -> str:
    """One line for an exception: its message's :func:`failure_line`, else its type's name."""
    return failure_line(str(exc)) or type(exc).__name__


def infrastructure_cause(fault: str | BaseException) -> str:
    """What a trial put back after an infrastructure fault keeps in its ``error`` until it finishes."""
    text = exception_line(fault) if isinstance(fault, BaseException) else failure_line(fault)
    return f"{INFRASTRUCTURE_PREFIX}{text}"


#: How the cause of an infrastructure fault starts (see :func:`infrastructure_cause`).
INFRASTRUCTURE_PREFIX = "infrastructure fault, retried: "


def objective_never_logged(metric: str, logged: "list[str]") -> str:
    """The error of a trial that returned without logging its objective ``metric`` (``logged``: what it did log)."""
    import difflib

    start = _never_logged(metric)
    if not logged:
        return f"{start} (nothing was); call trial.log(step, **{{{metric!r}: value}})"
    close = difflib.get_close_matches(metric, logged, n=1)
    hint = (f"; did the spec mean objective.metric: {close[0]}?" if close
            else f"; call trial.log(step, **{{{metric!r}: value}}) or fix objective.metric in the spec")
    return f"{start} (logged: {', '.join(logged[:8])}){hint}"


def objective_not_finite(metric: str) -> str:
    """The error of a trial that returned, logged its objective ``metric``, yet has no finite value of it stored."""
    return f"no finite value of the objective {metric!r} is stored for the trial"


def is_objective_never_logged(error: str | None, metric: str) -> bool:
    """Is ``error`` the one :func:`objective_never_logged` wrote for ``metric``?"""
    return (error or "").startswith(_never_logged(metric))


def _never_logged(metric: str) -> str:
    return f"the objective {metric!r} was never logged"


def exit_code_for(exc: BaseException) -> int | None:
    """The CLI's exit code for ``exc``, or None when it is not one of ours (a bug: show the traceback)."""
    for cls, code in EXIT_CODES:
        if isinstance(exc, cls):
            return code
    return None
