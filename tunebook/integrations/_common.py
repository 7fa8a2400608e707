"""What the framework callbacks share: lazy imports, metric names, the rank gate.

Every callback writes through the same :class:`~tunebook.trial.Trial` calls
(``log``, ``checkpoint``, ``restore``, ``should_stop``) and only on the
process that writes (global rank 0 of a distributed trial); on the other ranks
the calls are skipped, so every rank can run the same code with the same
trial (same ``params``, same ``seed``).
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Mapping

from tunebook.errors import MissingExtraError, TrialInfeasible

#: A metric-name mapping: a dict (names absent from it pass unchanged) or a function
#: returning the stored name, or None to drop the metric.
Rename = Mapping[str, str] | Callable[[str], "str | None"] | None


def require(module: str, package: str, extra: str, purpose: str) -> Any:
    """Import ``module`` or raise :class:`MissingExtraError` naming ``tunebook[extra]``."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name is not None and exc.name.split(".")[0] != module.split(".")[0]:
            raise  # the package is there but one of its own dependencies is not: show the real error
        raise MissingExtraError(package, extra, purpose) from exc


def renamer(rename: Rename, default: Callable[[str], "str | None"]) -> Callable[[str], "str | None"]:
    """One function ``framework name -> stored name (or None: drop)`` from the user's ``rename``."""
    if rename is None:
        return default
    if callable(rename):
        return rename
    table = dict(rename)
    return lambda name: table.get(name, default(name))


class Gate:
    """The trial as one rank sees it: writes happen on the writing rank only.

    ``log`` and ``checkpoint`` return False once the trial is infeasible (the
    framework should stop); they never raise :class:`TrialInfeasible`, which
    tunebook records after ``train`` returns.
    """

    def __init__(self, trial: Any, writes: bool = True) -> None:
        self.trial = trial
        self.writes = writes

    def log(self, step: int, metrics: Mapping[str, Any]) -> bool:
        if not self.writes or not metrics:
            return not self.infeasible
        try:
            self.trial.log(int(step), **metrics)
        except TrialInfeasible:
            return False
        return True

    def checkpoint(self, step: int, state: Any) -> bool:
        if not self.writes:
            return not self.infeasible
        try:
            self.trial.checkpoint(int(step), state)
        except TrialInfeasible:
            return False
        return True

    @property
    def infeasible(self) -> bool:
        """True once the trial is known to be infeasible (a cheap attribute read: no flush, no sync)."""
        return bool(self.writes and self.trial.should_stop)


def rename_metrics(metrics: Mapping[str, Any], rename: Callable[[str], "str | None"]) -> dict[str, Any]:
    """``metrics`` under the names they are stored as; a name ``rename`` maps to None is left out."""
    out = {}
    for name, value in metrics.items():
        stored = rename(name)
        if stored is not None:
            out[stored] = value
    return out
