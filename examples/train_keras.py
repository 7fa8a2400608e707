"""Tune a Keras 3 MLP on the digits data with tunebook's Keras callback (torch backend: no TensorFlow needed).

    python examples/train_keras.py              # 6 trials, ./tunebook.db
    tunebook report digits-keras                # curves, checkpoints and the checklist

Each Keras "epoch" is ``eval_every`` steps (``steps_per_epoch``), so the
validation metrics and checkpoints come every ``eval_every`` steps. The data
come as one pass of ``max_train_steps`` batches, each drawn from (seed, step):
Keras ends an epoch early when a pass over the data ends, and a resumed run
sees the batches an uninterrupted one would have seen. The callback
logs the training metrics every step without waiting for the device, stops a
diverging trial and resumes an interrupted one (``initial_epoch=callback.resume(model)``).
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "torch")  # before the first `import keras`

import keras  # noqa: E402
import numpy as np  # noqa: E402

import tunebook as tb  # noqa: E402
from tunebook.integrations.keras import TunebookCallback  # noqa: E402
from tunebook.workloads import digits  # noqa: E402


def build_model(hidden_units: int, learning_rate: float) -> keras.Model:
    model = keras.Sequential([
        keras.Input((64,)),
        keras.layers.Dense(hidden_units, activation="relu"),
        keras.layers.Dense(hidden_units, activation="relu"),
        keras.layers.Dense(digits.NUM_CLASSES),
    ])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    return model


class StepBatches(keras.utils.PyDataset):
    """Batches for steps ``first_step..last_step``; the batch of a step is drawn from (seed, step)."""

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int, seed: int, first_step: int, last_step: int) -> None:
        super().__init__()
        self.x, self.y, self.batch_size, self.seed = x, y, batch_size, seed
        self.first_step, self.last_step = first_step, last_step

    def __len__(self) -> int:
        return max(0, self.last_step - self.first_step + 1)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        idx = np.random.default_rng([self.seed, self.first_step + i]).integers(0, len(self.x), self.batch_size)
        return self.x[idx], self.y[idx]


def train(trial: tb.Trial) -> None:
    """The training function tunebook calls once per trial."""
    hp = trial.params
    keras.utils.set_random_seed(trial.seed)
    x_tr, y_tr, x_val, y_val = digits.split()
    model = build_model(int(hp.get("hidden_units", 64)), hp["learning_rate"])
    callback = TunebookCallback(trial)
    initial_epoch = callback.resume(model)  # 0, or the epoch of the latest checkpoint (and callback.step its step)
    every = int(hp.get("eval_every", 50))
    data = StepBatches(x_tr, y_tr, int(hp.get("batch_size", 64)), trial.seed, callback.step + 1, trial.max_train_steps)
    model.fit(data, validation_data=(x_val, y_val), steps_per_epoch=every, epochs=-(-trial.max_train_steps // every),
              initial_epoch=initial_epoch, shuffle=False, callbacks=[callback], verbose=0)  # in step order


space = tb.SearchSpace(
    nuisance={"learning_rate": tb.Float(1e-4, 3.0, scale="log")},
    fixed={"batch_size": 64, "hidden_units": 64, "eval_every": 50},
)

if __name__ == "__main__":
    study = tb.create_study(
        "digits-keras", space=space, objective=("val/loss", "min"), trials=6, max_train_steps=300,
        goal="Learning rate of a Keras MLP on digits", infeasible_if={"train/loss": {"above": 10.0}},
    )
    tb.run(study, train, workers=1)
    report = tb.analyze(study)
    report.print()
    print("report:", report.save("digits-keras.html"))
