"""The writers every trial has: the store (:class:`StoreWriter`) and the objective tracker
(:class:`ObjectiveWriter`: checkpoints are ranked by it; it also knows the last step logged)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping

from tunebook.storage.base import MetricBatch, MetricRows
from tunebook.writers.base import MetricWriter

if TYPE_CHECKING:
    from tunebook.storage.base import Storage


class StoreWriter(MetricWriter):
    """Writes a trial's metric points to the store: everything written between two flushes goes
    in one transaction (``Storage.write_metrics``, which also refreshes the heartbeat).

    The same step and metric written twice keeps the last value, stored once: within a flush
    the rows are keyed by (step, name); a step at or below one already stored for that metric
    is sent as a replacement. A resumed attempt (``resume=True``) first drops the points from
    its first step on, which the attempt before it may have stored.

    ``hold`` (for a caller that stores the outcome in the same transaction, as the worker loop does): ``flush`` keeps
    the rows, and
    :meth:`take` hands them over as one :class:`~tunebook.storage.base.MetricBatch`, which the
    loop stores in the transaction that records the outcome (``Storage.finish_trial``).
    """

    def __init__(self, storage: Storage, trial_id: int, worker_id: str, *, resume: bool = False) -> None:
        self.storage, self.trial_id, self.worker_id = storage, trial_id, worker_id
        self.hold = False
        self._resume = resume
        self._first_step: int | None = None
        self._rows: dict[tuple[int, str], float] = {}
        self._low = self._high = 0  # the lowest and highest step of the rows not written yet
        self._stored_top: int | None = None  # the highest step written

    def write_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
        if not self._rows:
            self._low = self._high = step
            if self._first_step is None:
                self._first_step = step
        elif step > self._high:
            self._high = step
        elif step < self._low:
            self._low = step
        rows = self._rows
        for name, value in scalars.items():
            rows[(step, name)] = value

    def _batch(self) -> MetricBatch:
        top = self._stored_top
        # A step at or below the highest one written may be stored already: replaced (deleting a point
        # that is not there changes nothing). Training logs forward, so this is rarely more than a test.
        replace = [key for key in self._rows if key[0] <= top] if top is not None and self._low <= top else []
        rows = MetricRows([(step, name, value) for (step, name), value in self._rows.items()])
        return MetricBatch(rows, replace, self._first_step if self._resume else None)

    def _written(self) -> None:
        self._resume = False
        if self._stored_top is None or self._high > self._stored_top:
            self._stored_top = self._high
        self._rows = {}

    def flush(self) -> None:
        if not self._rows or self.hold:
            return
        batch = self._batch()
        if batch.replace:
            self.storage.write_metrics(self.trial_id, self.worker_id, batch.rows, drop_from_step=batch.drop_from_step,
                                       replace=batch.replace)
        else:
            self.storage.write_metrics(self.trial_id, self.worker_id, batch.rows, drop_from_step=batch.drop_from_step)
        self._written()

    def take(self) -> MetricBatch | None:
        """The rows not written yet, as one batch (counted as written from now on), or None."""
        if not self._rows:
            return None
        batch = self._batch()
        self._written()
        return batch


class ObjectiveWriter(MetricWriter):
    """Remembers the objective's value at each step (a checkpoint is ranked by it), the last step
    logged and the interval before it (whether the training ran to its end)."""

    def __init__(self, metric: str) -> None:
        self.metric = metric
        self.by_step: dict[int, float] = {}
        self.last_step: int | None = None
        self.gap = 0  # the last step less the step logged before it

    def write_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
        value = scalars.get(self.metric)
        if value is not None:
            self.by_step[step] = value
        last = self.last_step
        if last is None or step > last:
            if last is not None:
                self.gap = step - last
            self.last_step = step


__all__ = ["ObjectiveWriter", "StoreWriter"]
