"""Keras 3: a callback that reports ``model.fit`` to a tunebook trial.

    import os; os.environ.setdefault("KERAS_BACKEND", "torch")   # before the first `import keras`
    import keras
    from tunebook.integrations.keras import TunebookCallback

    def train(trial):
        keras.utils.set_random_seed(trial.seed)
        model = build(trial.params); model.compile(optimizer=keras.optimizers.Adam(trial.params["learning_rate"]), ...)
        callback = TunebookCallback(trial)
        initial_epoch = callback.resume(model)                  # 0 on a first attempt
        every = 50                                              # an "epoch" = the steps between evaluations
        model.fit(batches(first_step=callback.step + 1),         # >= max_train_steps batches in one pass
                  validation_data=(x_val, y_val), steps_per_epoch=every,
                  epochs=trial.max_train_steps // every, initial_epoch=initial_epoch,
                  shuffle=False, callbacks=[callback], verbose=0)   # shuffle=False: batches in step order

What the callback does:

- **Training metrics** at the global step (optimizer steps since the start of
  the trial, from 1), every step. On the torch backend the callback wraps the
  model's ``train_function`` for the duration of ``fit`` and passes the logs it
  returns (tensors on the device) to ``trial.log``: no host sync in the training
  thread. Keras' own ``on_train_batch_end`` path turns the logs into Python
  floats first (``pythonify_logs``: one ``float(tensor)`` per metric per step);
  the callback is ``async_safe``, so Keras keeps doing that in its callback
  thread pool rather than in the training loop. On other backends the callback
  logs those floats (from the thread pool). Keras' step logs are its running
  means over the epoch so far (``loss`` is a ``Mean`` metric), not the loss of
  the last batch.
- **Validation metrics** (``val_*`` in ``on_epoch_end``) at the global step of
  the epoch's end; an "epoch" is ``steps_per_epoch`` steps, so set it to the
  evaluation interval, and give ``fit`` data of at least ``max_train_steps``
  batches in one pass (Keras ends an epoch early where a pass over the data
  ends; ``examples/train_keras.py`` draws the batch of each step from (seed, step)). Names: ``loss`` -> ``train/loss``, ``val_loss`` ->
  ``val/loss``, ``<m>`` -> ``train/<m>``, ``val_<m>`` -> ``val/<m>``.
- **Checkpoints** at each epoch end: the model's weights and the optimizer's
  variables (NumPy arrays), the epoch and the global step, through
  ``trial.checkpoint``. ``callback.resume(model)`` loads the latest one back and
  returns the epoch to pass as ``fit(initial_epoch=...)`` (0 on a first attempt).
- **Infeasible**: ``model.stop_training = True`` once the trial is infeasible.
- **Stops at max_train_steps** even if ``epochs * steps_per_epoch`` is more.
- **Distributed**: only process 0 (``KERAS_DISTRIBUTION_PROCESS_ID``, else
  ``RANK``) writes; every process gets the same params and seed from the trial.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Mapping

from tunebook.errors import ConfigurationError, MissingExtraError
from tunebook.integrations._common import Gate, Rename, rename_metrics, renamer

try:
    import keras
except ModuleNotFoundError as exc:
    if exc.name == "keras":
        raise MissingExtraError("keras", "keras", "tunebook.integrations.keras") from exc
    if exc.name == "tensorflow" and "KERAS_BACKEND" not in os.environ:
        raise ConfigurationError(
            "KERAS_BACKEND", "Keras' default backend is TensorFlow, which is not installed",
            "set KERAS_BACKEND=torch (or jax) before the first import of keras",
        ) from exc
    raise


def default_name(name: str) -> str | None:
    """Tunebook's name for a Keras log key."""
    if name.startswith("val_"):
        return "val/" + name[len("val_"):]
    if name == "learning_rate":
        return "lr"
    return "train/" + name


class TunebookCallback(keras.callbacks.Callback):
    """Report a Keras ``fit`` to ``trial`` (see the module docstring).

    Args:
        trial: the :class:`~tunebook.trial.Trial` that ``train`` received.
        rename: stored name for each Keras log key: a dict (keys not in it get the
            default mapping) or a function returning the name, or None to skip the key.
        checkpoint: checkpoint weights and optimizer state at each epoch end.
    """

    async_safe = True  # Keras may call on_train_batch_end from its thread pool: keep the training loop free

    def __init__(self, trial: Any, *, rename: Rename = None, checkpoint: bool = True) -> None:
        super().__init__()
        self.trial = trial
        self.rename = renamer(rename, default_name)
        self.checkpoint_each_epoch = checkpoint
        self.gate = Gate(trial, writes=_process_id() == 0)
        self.step = 0  # optimizer steps of this trial so far (restored by resume)
        self._epoch_start = 0
        self._wrapped: Any = None
        self._lock = threading.Lock()

    # resume ------------------------------------------------------------------
    def resume(self, model: Any) -> int:
        """Load the trial's latest checkpoint into ``model`` (weights, optimizer); the ``initial_epoch`` for ``fit``."""
        latest = self.trial.restore()
        if latest is None:
            return 0
        state = latest.state
        model.set_weights(state["weights"])
        if state.get("optimizer") and model.optimizer is not None:
            if not model.optimizer.built:
                model.optimizer.build(model.trainable_variables)
            for variable, value in zip(model.optimizer.variables, state["optimizer"]):
                variable.assign(value)
        self.step = int(state["step"])
        return int(state["epoch"])

    # hooks -------------------------------------------------------------------
    def on_train_begin(self, logs: Any = None) -> None:
        model = self.model
        if keras.backend.backend() == "torch" and getattr(model, "train_function", None) is not None:
            original = model.train_function

            def train_function(data: Any) -> Any:
                out = original(data)
                self._after_step(out, on_device=True)
                return out

            self._wrapped = (original, train_function)
            model.train_function = train_function

    def on_train_end(self, logs: Any = None) -> None:
        if self._wrapped is not None:
            original, wrapper = self._wrapped
            if self.model.train_function is wrapper:
                self.model.train_function = original
            self._wrapped = None

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self._epoch_start = self.step

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        if self._wrapped is None:  # not the torch backend: Keras' floats, maybe from its thread pool
            with self._lock:
                self._after_step(logs or {}, on_device=False, step=self._epoch_start + batch + 1)

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        logs = logs or {}
        metrics = {k: v for k, v in logs.items() if k.startswith("val_")}
        ok = self.gate.log(self.step, self._renamed(metrics)) if metrics else not self.gate.infeasible
        if ok and self.checkpoint_each_epoch and self.gate.writes:
            optimizer = self.model.optimizer
            state = {
                "step": self.step,
                "epoch": epoch + 1,
                "weights": self.model.get_weights(),
                "optimizer": [keras.ops.convert_to_numpy(v) for v in optimizer.variables] if optimizer is not None else [],
            }
            ok = self.gate.checkpoint(self.step, state)
        if not ok:
            self.model.stop_training = True

    # helpers -----------------------------------------------------------------
    def _after_step(self, logs: Any, on_device: bool, step: int | None = None) -> None:
        if step is None:
            self.step += 1
            step = self.step
        else:
            self.step = max(self.step, step)
        metrics = _flat(logs)
        if on_device:  # tensors as they are: trial.log converts them in its flush thread
            metrics = {k: v for k, v in metrics.items() if hasattr(v, "shape") and len(v.shape) == 0}
        if not self.gate.log(step, self._renamed(metrics)):
            self.model.stop_training = True
        if step >= self.trial.max_train_steps:
            self.model.stop_training = True

    def _renamed(self, metrics: Mapping[str, Any]) -> dict[str, Any]:
        return rename_metrics(metrics, self.rename)


def _flat(logs: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in logs.items():
        if isinstance(value, dict):
            out.update(_flat(value))
        else:
            out[key] = value
    return out


def _process_id() -> int:
    """This process's index in a multi-process run: Keras' own variable, else torchrun's RANK, else 0."""
    for variable in ("KERAS_DISTRIBUTION_PROCESS_ID", "RANK"):
        if os.environ.get(variable, "").isdigit():
            return int(os.environ[variable])
    return 0


__all__ = ["TunebookCallback", "default_name"]
