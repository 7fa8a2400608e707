"""The metric-writer contract, in the manner of CLU's ``metric_writers``.

A :class:`MetricWriter` receives a trial's metrics as host floats, already
converted off the training thread: ``write_hparams`` once when the trial
starts, ``write_scalars(step, {...})`` for each logged step, ``write_summary``
once when the trial ends (state, value, best step, reason), then ``close``.
``flush`` makes what was written durable. Exporters are made per trial by a
:data:`WriterFactory` from a :class:`TrialInfo`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping


@dataclass(frozen=True)
class TrialInfo:
    """What a writer may know about the trial it writes for."""

    study: str
    number: int
    seed: int
    params: Mapping[str, Any]
    roles: Mapping[str, str] = field(default_factory=dict)  # hyperparameter name -> scientific|nuisance|fixed
    objective: tuple[str, str] = ("", "min")  # (metric, "min"|"max")
    goal: str = ""
    attempt: int = 1
    storage_id: str = ""  # the store's identity (several stores must never mix)


class MetricWriter(ABC):
    """Where a trial's metrics go. Implementations need not be thread-safe: one thread calls them."""

    def write_hparams(self, hparams: Mapping[str, Any]) -> None:  # noqa: B027 - optional hook
        """The trial's hyperparameters, once, before any scalar."""

    @abstractmethod
    def write_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
        """Metric values (host floats) at ``step``."""

    def write_summary(self, summary: Mapping[str, Any]) -> None:  # noqa: B027 - optional hook
        """How the trial ended: ``state``, ``value``, ``best_step``, ``infeasible_reason``, ``error``."""

    def flush(self) -> None:  # noqa: B027 - optional hook
        """Make what was written durable."""

    def close(self) -> None:
        """Flush and release resources; the writer is not used afterwards."""
        self.flush()


#: Makes the writer for one trial (called in the worker process that runs it).
WriterFactory = Callable[[TrialInfo], MetricWriter]


__all__ = ["MetricWriter", "TrialInfo", "WriterFactory"]
