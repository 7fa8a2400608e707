"""Lightning 2.x: a callback that reports a ``Trainer.fit`` run to a tunebook trial.

    import lightning as L
    from tunebook.integrations.lightning import fit, trainer_kwargs

    def train(trial):
        L.seed_everything(trial.seed)                       # same seed on every rank
        model = MyModule(lr=trial.params["learning_rate"])
        trainer = L.Trainer(**trainer_kwargs(trial, val_check_interval=50, check_val_every_n_epoch=None))
        fit(trainer, model, train_loader, val_loader)      # resumes a preempted trial from its checkpoint

What the callback does:

- **Training metrics** — what the LightningModule logs with ``self.log(...)``
  (``on_step=True``, ``logger=True``, the defaults in ``training_step``) is
  passed to ``trial.log`` at ``trainer.global_step`` (the number of optimizer
  steps taken, so the first step is 1), as the tensors Lightning holds: no
  ``.item()``, no host sync. The values are read from the running result
  collection, not from ``trainer.callback_metrics``, whose getter turns
  ``prog_bar=True`` values into Python numbers (a sync) every time it is read.
- **Validation metrics** — epoch-level values logged in ``validation_step``
  are logged at the global step where validation ran (after the sanity check).
- **Checkpoints** — at the end of each validation, the trainer's own checkpoint
  dict (what ``trainer.save_checkpoint`` writes: weights, optimizers, schedulers,
  loop progress) goes to ``trial.checkpoint``, which keeps the N best by the
  objective plus the latest. The dict is built on every rank (a collective for
  sharded strategies), written by rank 0 only.
- **Resume** — ``callback.resume_path()`` is the file of the trial's latest
  checkpoint (from an interrupted attempt) or None; :func:`fit` passes it as
  ``trainer.fit(..., ckpt_path=...)`` and Lightning restores weights,
  optimizers, schedulers and the global step. (With ``trainer.fit`` directly,
  pass ``ckpt_path=callback.resume_path(), weights_only=False``.)
- **Ctrl-C** — Lightning turns a ``KeyboardInterrupt`` into ``sys.exit(1)``
  and leaves SIGINT ignored; :func:`fit` turns it back into
  ``KeyboardInterrupt`` (so tunebook puts the trial back to pending) and
  restores the SIGINT handler.
- **Infeasible** — once the trial is infeasible (NaN/Inf, an ``infeasible_if``
  rule), ``trainer.should_stop`` is set; ``fit`` returns and tunebook records
  the trial as infeasible.
- **DDP** — every rank runs the same training function with the same
  ``trial.params`` and ``trial.seed``; only global rank 0 writes metrics and
  checkpoints (the other ranks skip the calls). Rank 0 logs its own values,
  unless the module logs with ``sync_dist=True`` (a collective, at the module's
  choice). Ranks agree on stopping every ``stop_check_every`` steps and after
  each validation (one all-reduce of a flag); a single process checks every step
  for free.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any, Mapping, Iterable

from tunebook.integrations._common import Gate, Rename, rename_metrics, renamer, require

L = require("lightning", "lightning", "lightning", "tunebook.integrations.lightning")
_Callback = L.pytorch.Callback


def _same_name(name: str) -> str | None:
    return name


def _loop_metrics(trainer: Any, on_step: bool) -> dict[str, Any] | None:
    """Values the active loop holds for its logged metrics, as tensors; None if Lightning's layout differs.

    On a step: the metrics logged with ``on_step=True`` (their last value).
    At an epoch end: the metrics logged with ``on_epoch=True``, as Lightning
    reduced them (read after Lightning computed them; nothing is computed here).
    """
    results = getattr(trainer, "_results", None)
    if results is None or not hasattr(results, "valid_items"):
        return None
    out: dict[str, Any] = {}
    try:
        for _, metric in results.valid_items():
            meta = metric.meta
            if not meta.logger:
                continue
            if on_step:
                value = metric._forward_cache if meta.on_step else None
            else:
                value = metric._computed if meta.on_epoch else None
            if value is not None:
                name = meta.name
                if meta.add_dataloader_idx and meta.dataloader_idx is not None:
                    name += f"/dataloader_idx_{meta.dataloader_idx}"
                out[name] = value
    except AttributeError:  # a future Lightning changed its result collection: use the public view
        return None
    return out


class TunebookCallback(_Callback):
    """Report a Lightning ``fit`` to ``trial`` (see the module docstring).

    Args:
        trial: the :class:`~tunebook.trial.Trial` that ``train`` received.
        rename: stored name for each logged name: a dict (names not in it stay
            as they are) or a function returning the name, or None to skip the metric.
        checkpoint: checkpoint through ``trial.checkpoint`` after each validation.
        stop_check_every: under DDP, how often (in steps) the ranks agree on
            stopping an infeasible trial; each agreement is one all-reduce.
    """

    def __init__(self, trial: Any, *, rename: Rename = None, checkpoint: bool = True, stop_check_every: int = 50) -> None:
        self.trial = trial
        self.rename = renamer(rename, _same_name)
        self.checkpoint_on_validation = checkpoint
        self.stop_check_every = max(1, int(stop_check_every))
        self.gate = Gate(trial, writes=True)
        self._infeasible = False  # set on the writing rank when a log or checkpoint reports it
        self._last_step = -1
        self.interrupted = False  # Lightning saw a KeyboardInterrupt (it then calls sys.exit(1))

    # resume ------------------------------------------------------------------
    def resume_path(self) -> str | None:
        """The file of the trial's latest checkpoint, for ``trainer.fit(..., ckpt_path=...)``; None on a first attempt."""
        latest = self.trial.restore()
        if latest is None:
            return None
        # tunebook's files wrap the state with the store and trial ids it belongs to; Lightning reads a plain
        # checkpoint file, so hand it the (already checked) state in a file of its own beside the others.
        import torch

        path = Path(latest.path).with_name(".lightning-resume.ckpt")
        torch.save(latest.state, path)
        return str(path)

    # hooks -------------------------------------------------------------------
    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        self.gate.writes = trainer.global_rank == 0

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        self._last_step = trainer.global_step  # 0, or the restored step of a resumed trial

    def _log(self, trainer: Any, *, on_step: bool) -> None:
        """Log the loop's step (``on_step``) or validation values, on the writing rank only; remember a value
        that made the trial infeasible (read when the ranks decide to stop)."""
        if self.gate.writes:
            metrics = _loop_metrics(trainer, on_step=on_step)
            if metrics is None:
                metrics = dict(trainer.callback_metrics)
            if not self.gate.log(trainer.global_step, self._renamed(metrics)):
                self._infeasible = True

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        if trainer.global_step == self._last_step:
            return  # gradient accumulation: no optimizer step yet; log once per step, its last micro-batch
        self._last_step = trainer.global_step
        self._log(trainer, on_step=True)
        self._maybe_stop(trainer, agree=trainer.global_step % self.stop_check_every == 0)

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        if trainer.sanity_checking:
            return
        self._log(trainer, on_step=False)
        if self.checkpoint_on_validation and trainer.state.fn == "fit":
            state = trainer._checkpoint_connector.dump_checkpoint(weights_only=False)  # on every rank
            if self.gate.writes and not self.gate.checkpoint(trainer.global_step, state):
                self._infeasible = True
        self._maybe_stop(trainer, agree=True)

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        # Stopped before max_steps by a callback (EarlyStopping): said, so it is not taken for a cut-short trial.
        if self.gate.writes and trainer.should_stop and trainer.global_step < trainer.max_steps and not self._infeasible:
            stoppers = [f"EarlyStopping on {c.monitor}" for c in trainer.callbacks
                        if type(c).__name__ == "EarlyStopping" and getattr(c, "stopped_epoch", 0)]
            end = getattr(self.trial, "end", None)
            if end is not None:
                end(f"{', '.join(stoppers) or 'a callback set trainer.should_stop'} at step {trainer.global_step}")

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        if isinstance(exception, KeyboardInterrupt):
            self.interrupted = True

    def _renamed(self, metrics: Mapping[str, Any]) -> dict[str, Any]:
        return rename_metrics(metrics, self.rename)

    def _maybe_stop(self, trainer: Any, agree: bool) -> None:
        local = self._infeasible or self.gate.infeasible
        if trainer.world_size > 1:
            if not agree:
                return
            local = trainer.strategy.reduce_boolean_decision(local, all=False)  # any rank -> every rank
        if local:
            trainer.should_stop = True


def trainer_kwargs(trial: Any, callback: TunebookCallback | None = None, callbacks: Iterable[Any] = (), **overrides: Any) -> dict[str, Any]:
    """Keyword arguments for ``lightning.Trainer`` that run ``trial`` (``L.Trainer(**trainer_kwargs(trial))``).

    ``max_steps`` is the study's ``max_train_steps``; the callback (made if not
    given) comes first in ``callbacks``. Lightning's own checkpointing, logger,
    progress bar and model summary are off by default (tunebook stores the
    checkpoints and curves; the default logger and progress bar turn logged
    tensors into numbers, a host sync); ``overrides`` win.
    """
    kwargs: dict[str, Any] = {
        "max_steps": trial.max_train_steps,
        "callbacks": [callback or TunebookCallback(trial), *callbacks],
        "enable_checkpointing": False,
        "logger": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
    }
    kwargs.update(overrides)
    return kwargs


def fit(trainer: Any, model: Any, *args: Any, **kwargs: Any) -> None:
    """``trainer.fit(model, *args, **kwargs)`` that resumes the trial and keeps Ctrl-C a ``KeyboardInterrupt``.

    ``ckpt_path`` defaults to the trial's latest checkpoint (none on a first
    attempt) and ``weights_only`` to False (the file is the trainer's own
    checkpoint, written by this trial). The trainer needs a
    :class:`TunebookCallback` among its callbacks.
    """
    callback = next((c for c in trainer.callbacks if isinstance(c, TunebookCallback)), None)
    if callback is None:
        from tunebook.errors import SpecError

        raise SpecError("callbacks", "the trainer has no TunebookCallback",
                        "build it with L.Trainer(**trainer_kwargs(trial)) or add TunebookCallback(trial)")
    kwargs.setdefault("ckpt_path", callback.resume_path())
    kwargs.setdefault("weights_only", False)
    sigint = signal.getsignal(signal.SIGINT) if threading.current_thread() is threading.main_thread() else None
    try:
        trainer.fit(model, *args, **kwargs)
    except SystemExit:
        if not callback.interrupted:
            raise
        raise KeyboardInterrupt from None  # tunebook re-queues the trial; it resumes from its checkpoint
    finally:
        if sigint is not None and callback.interrupted:
            signal.signal(signal.SIGINT, sigint)  # Lightning set SIG_IGN while it shut down


__all__ = ["TunebookCallback", "fit", "trainer_kwargs"]
