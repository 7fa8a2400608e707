"""A regression workload: an MLP fitting a fixed, seeded synthetic function of 8 inputs.

The data is generated, not downloaded: :func:`dataset` draws 2,500 rows with a
fixed seed. Each row has 8 inputs uniform in [-1, 1]; the target is
``sin(3 x1) + x2**2 - x3 + 0.5 x4 x5`` plus Gaussian noise of sd ``NOISE``
(0.3, so the best possible validation MSE is about 0.09); x6 to x8 do not
matter. 2,000 train, 500 validate.

The model: ``layers`` (2) hidden layers of ``hidden_units`` (32) with ReLU and
dropout (``dropout``, 0) after each, a linear read-out of one value. Batches
of ``batch_size`` (32) rows, each drawn from (data seed, step); the loss is
the mean squared error.

Hyperparameters (``trial.params``), with defaults: ``learning_rate`` (1e-2),
``optimizer`` ("adam"; sgd, momentum, nesterov, rmsprop, nadam) and its own
(``momentum``, ``beta1``, ``beta2``, ``epsilon``), ``schedule`` ("constant";
linear, cosine, rsqrt), ``warmup_steps`` (0), ``weight_decay`` (0, decoupled),
``grad_clip`` (none), ``hidden_units`` (32), ``layers`` (2), ``dropout`` (0),
``batch_size`` (32), ``eval_every`` (20).

Logged: ``train/loss``, ``grad/norm`` and ``lr`` every step; ``val/mse`` (the
objective to minimize) and ``train/mse`` (on 500 fixed training rows) every
``eval_every`` steps and at the last step.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

N_ROWS = 2_500
N_VAL = 500
N_INPUTS = 8
NOISE = 0.3


def target(x: np.ndarray) -> np.ndarray:
    """The noiseless function of the inputs (rows of 8)."""
    return np.sin(3 * x[:, 0]) + x[:, 1] ** 2 - x[:, 2] + 0.5 * x[:, 3] * x[:, 4]


@lru_cache(maxsize=1)
def dataset() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_val, y_val): float32 inputs of shape (n, 8) and targets of shape (n, 1)."""
    rng = np.random.default_rng(0)
    x = rng.uniform(-1.0, 1.0, (N_ROWS, N_INPUTS))
    y = target(x) + NOISE * rng.standard_normal(N_ROWS)
    x, y = x.astype(np.float32), y.astype(np.float32)[:, None]
    return x[N_VAL:], y[N_VAL:], x[:N_VAL], y[:N_VAL]


def build_model(params: dict[str, Any]) -> Any:
    from tunebook.workloads._loop import mlp

    return mlp(N_INPUTS, 1, params, hidden_units=32)


def _task(params: dict[str, Any]) -> Any:
    import torch
    import torch.nn.functional as F

    from tunebook.workloads._loop import Task, rows

    x_tr, y_tr, x_val, y_val = (torch.from_numpy(a) for a in dataset())
    x_seen, y_seen = x_tr[:N_VAL], y_tr[:N_VAL]

    def batch(seed: int, step: int, batch_size: int) -> tuple[Any, Any]:
        idx = torch.from_numpy(rows(seed, step, len(x_tr), batch_size))
        return x_tr[idx], y_tr[idx]

    def loss(m: Any, x: Any, y: Any) -> Any:
        return F.mse_loss(m(x), y)

    def evaluate(m: Any) -> dict[str, Any]:
        return {"val/mse": F.mse_loss(m(x_val), y_val), "train/mse": F.mse_loss(m(x_seen), y_seen)}

    return Task(build_model(params), batch, loss, evaluate, default_lr=1e-2, default_batch_size=32,
                default_eval_every=20)


def train(trial: Any) -> None:
    """The training function tunebook calls (see the module docstring)."""
    from tunebook.workloads._loop import fit

    fit(trial, _task)
