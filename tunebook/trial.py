"""The :class:`Trial` handle that a training function receives.

``trial.log(step, **metrics)`` only appends to an in-memory buffer: a Python
number, a NumPy scalar or a 0-d PyTorch tensor is kept as it is (a tensor is
detached, which does not wait for the device). A background thread turns the
buffer into numbers and writes it in one transaction at most every
``flush_interval`` seconds, so a killed worker loses at most that much, and the
training loop never waits for the device at each step: converting a batch of
device tensors costs one transfer per flush, not one per step.

Non-finite values and the user's ``infeasible_if`` rules are checked when the
buffer is converted; the next ``log`` call (or the end of the trial) then
raises :class:`TrialInfeasible`, which tunebook catches and records: infeasible
is data, not an error.
"""

from __future__ import annotations

import collections
import math
import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from tunebook.storage.base import ClaimLost, Storage, TrialRecord
from tunebook.training.checkpoints import Checkpoint, CheckpointManager

if TYPE_CHECKING:
    from tunebook.study import Study
    from tunebook.writers import MetricWriter


from tunebook.errors import TrialInfeasible  # noqa: E402


def _tensor_type() -> type | None:
    torch = sys.modules.get("torch")  # no tensor can exist before torch is imported
    return None if torch is None else torch.Tensor


def _to_floats(values: list[Any]) -> list[float]:
    """Host floats for a batch of logged values, with one transfer per accelerator and dtype."""
    tensor = _tensor_type()
    out: list[Any] = list(values)
    on_device: dict[Any, list[int]] = {}
    for i, value in enumerate(values):
        if tensor is not None and isinstance(value, tensor):
            if value.device.type == "cpu":
                out[i] = value.item()  # no device to wait for
            else:
                on_device.setdefault((value.device, value.dtype), []).append(i)
        else:
            out[i] = float(value)
    if on_device:
        import torch

        for indices in on_device.values():
            stacked = torch.stack([values[i].reshape(()) for i in indices]).to(torch.float64)
            for i, x in zip(indices, stacked.cpu().tolist()):
                out[i] = x
    return out


def check_rules(rules: Mapping[str, Mapping[str, float]], name: str, value: float) -> str | None:
    """The reason ``value`` of metric ``name`` makes a trial infeasible, or None."""
    if not math.isfinite(value):
        return f"{name} was {value}"
    rule = rules.get(name)
    if rule:
        if "above" in rule and value > rule["above"]:
            return f"{name} = {value:.6g} above {rule['above']:g} (infeasible_if)"
        if "below" in rule and value < rule["below"]:
            return f"{name} = {value:.6g} below {rule['below']:g} (infeasible_if)"
    return None


class _MetricBuffer:
    """Buffered, batched metric writes for one trial (the training side of storage)."""

    def __init__(
        self,
        storage: Storage,
        trial_id: int,
        worker_id: str,
        rules: Mapping[str, Mapping[str, float]],
        objective: str,
        flush_interval: float,
        drop_on_first_write: bool,
    ) -> None:
        self.storage, self.trial_id, self.worker_id = storage, trial_id, worker_id
        self.rules, self.objective = rules, objective
        self.flush_interval = flush_interval
        self.queue: collections.deque[tuple[int, dict[str, Any]]] = collections.deque()
        self.infeasible: str | None = None
        self.error: BaseException | None = None
        self.objective_by_step: dict[int, float] = {}
        self._drop_first = drop_on_first_write
        self._first_step: int | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"tunebook-flush-{trial_id}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.flush_interval):
            try:
                self.flush()
            except BaseException as exc:  # surfaced to the training thread by log()
                self.error = exc
                return

    def flush(self) -> None:
        with self._lock:
            n = len(self.queue)
            if n == 0:
                # Nothing new: still tell the store that this worker is alive.
                self.storage.heartbeat(self.trial_id, self.worker_id)
                return
            batch = [self.queue.popleft() for _ in range(n)]
            keys = [(step, name) for step, metrics in batch for name in metrics]
            floats = _to_floats([v for _, metrics in batch for v in metrics.values()])
            rows = []
            for (step, name), value in zip(keys, floats):
                rows.append((step, name, value))
                if name == self.objective:
                    self.objective_by_step[step] = value
                if self.infeasible is None:
                    self.infeasible = check_rules(self.rules, name, value)
                    if self.infeasible:
                        self.infeasible += f" at step {step}"
            drop = None
            if self._first_step is None:
                self._first_step = batch[0][0]
                drop = self._first_step if self._drop_first else None
            self.storage.write_metrics(self.trial_id, self.worker_id, rows, drop_from_step=drop)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.flush()


class Trial:
    """One training run: its hyperparameters, seed and the way to report back.

    Args (made by tunebook, not by users): the study, the claimed trial
    record, the storage, this worker's id and the checkpoint folder.
    """

    def __init__(
        self,
        study: Study,
        record: TrialRecord,
        storage: Storage,
        worker_id: str,
        checkpoint_root: str | os.PathLike[str],
        flush_interval: float = 1.0,
        writers: "Sequence[MetricWriter]" = (),
    ) -> None:
        self.study = study
        self.id = record.id
        self.number = record.number
        self.seed = int(record.seed)
        self.attempt = record.attempts
        self.params: dict[str, Any] = {**study.space.fixed, **record.params}
        self.max_train_steps = study.max_train_steps
        self._storage = storage
        self._worker_id = worker_id
        self._checkpoints = CheckpointManager(
            Path(checkpoint_root) / study.name / f"trial-{record.number:05d}",
            keep_best=study.keep_checkpoints,
            mode=study.objective[1],
            records=storage.get_checkpoints(record.id),
            on_change=lambda kept: storage.set_checkpoints(record.id, worker_id, kept),
            owner=record.id,
            background=True,
        )
        self._writers = list(writers)  # extra writers (exporters): fed host floats, see tunebook.writers
        for writer in self._writers:
            writer.write_hparams(self.params)
        self._buffer = _MetricBuffer(
            storage,
            record.id,
            worker_id,
            study.infeasible_if,
            study.objective[0],
            flush_interval,
            drop_on_first_write=record.attempts > 1,
        )

    # reporting -------------------------------------------------------------
    def log(self, step: int, **metrics: Any) -> None:
        """Record metric values at ``step``; cheap, never waits for the device.

        Raises:
            TrialInfeasible: a value logged earlier was NaN/Inf or broke a rule.
        """
        buffer = self._buffer
        if buffer.infeasible is not None:
            raise TrialInfeasible(buffer.infeasible)
        if buffer.error is not None:
            raise buffer.error
        tensor = _tensor_type()
        if tensor is not None:
            for name, value in metrics.items():
                if isinstance(value, tensor):
                    if value.numel() != 1:
                        raise ValueError(
                            f"metric {name!r}: log a scalar, got a tensor of shape {tuple(value.shape)}; "
                            "reduce it first (e.g. loss.mean())"
                        )
                    if value.requires_grad:  # do not keep the autograd graph alive in the buffer
                        metrics[name] = value.detach()
        buffer.queue.append((step, metrics))

    def flush(self) -> None:
        """Write what is buffered now (waits for the device once); rarely needed."""
        self._buffer.flush()
        if self._buffer.infeasible is not None:
            raise TrialInfeasible(self._buffer.infeasible)

    @property
    def should_stop(self) -> bool:
        """True once the trial is known to be infeasible (for loops that poll)."""
        return self._buffer.infeasible is not None

    # checkpoints -----------------------------------------------------------
    def checkpoint(self, step: int, state: Any) -> str:
        """Save ``state`` at ``step``; keep the N best by the objective plus the latest.

        The objective logged at the same ``step`` ranks the checkpoint, so log
        the evaluation before checkpointing. ``state`` is copied (to the CPU)
        at once and written atomically in the background, so training goes on
        while the file is written. Returns the path being written.
        """
        self.flush()  # the objective at this step must be known to rank the checkpoint
        return self._checkpoints.save(step, state, self._buffer.objective_by_step.get(step))

    def restore(self) -> Checkpoint | None:
        """The latest checkpoint of this trial (from an interrupted attempt), or None."""
        return self._checkpoints.latest()

    def best_checkpoint(self) -> Checkpoint | None:
        """The kept checkpoint with the best objective (retrospective selection)."""
        return self._checkpoints.best()

    # lifecycle -------------------------------------------------------------
    def close(self) -> None:
        """Write the last checkpoint and the last buffered metrics; the executor calls it when ``train`` returns."""
        try:
            self._checkpoints.close()  # the last checkpoint is on disk before the trial ends
        finally:
            self._buffer.close()

    def end(self, summary: Mapping[str, Any]) -> None:
        """How the trial ended (``state``, ``value``, ``best_step``, ``infeasible_reason``, ``error``):
        written to the extra writers, which are then closed. The executor calls it once the outcome is stored."""
        for writer in self._writers:
            writer.write_summary(summary)
            writer.close()
        self._writers = []

    def __enter__(self) -> "Trial":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def infeasible_reason(self) -> str | None:
        """Why the trial is infeasible (e.g. "train/loss was nan at step 3"), or None."""
        return self._buffer.infeasible

    _close = close  # old private names, kept until every caller uses the public ones
    _infeasible_reason = infeasible_reason

    def __repr__(self) -> str:
        return f"Trial(study={self.study.name!r}, number={self.number}, params={self.params!r})"


__all__ = ["Checkpoint", "ClaimLost", "Trial", "TrialInfeasible", "check_rules"]
