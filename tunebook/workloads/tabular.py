"""A tabular workload: an MLP on the Wisconsin diagnostic breast-cancer table (569 rows, 30 features).

The data ships with tunebook (``data/breast_cancer.csv.gz``, copied from
scikit-learn's bundled copy; see ``data/README.md``), so nothing is downloaded
and scikit-learn is not needed. The split is fixed (seed 0, 30% validation,
171 rows); features are standardized with the training rows' mean and sd.

The model: ``layers`` (2) hidden layers of ``hidden_units`` (64) with ReLU and
dropout (``dropout``, 0) after each, a 2-way linear read-out. Batches of
``batch_size`` (32) rows, each drawn from (data seed, step).

Hyperparameters (``trial.params``), with defaults: ``learning_rate`` (1e-2),
``optimizer`` ("adam"; sgd, momentum, nesterov, rmsprop, nadam) and its own
(``momentum``, ``beta1``, ``beta2``, ``epsilon``), ``schedule`` ("constant";
linear, cosine, rsqrt), ``warmup_steps`` (0), ``weight_decay`` (0, decoupled),
``grad_clip`` (none), ``hidden_units`` (64), ``layers`` (2), ``dropout`` (0),
``batch_size`` (32), ``eval_every`` (10).

Logged: ``train/loss``, ``grad/norm`` and ``lr`` every step; ``val/loss``
(cross-entropy in nats, the objective to minimize), ``val/error`` and
``train/error`` every ``eval_every`` steps and at the last step.
"""

from __future__ import annotations

import gzip
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np

VALIDATION_SHARE = 0.3


@lru_cache(maxsize=1)
def load() -> tuple[np.ndarray, np.ndarray]:
    """Raw features (float32, shape (569, 30)) and labels (int64; 0 malignant, 1 benign)."""
    with resources.files("tunebook.workloads").joinpath("data/breast_cancer.csv.gz").open("rb") as raw:
        data = np.loadtxt(gzip.open(raw), delimiter=",")
    return data[:, :-1].astype(np.float32), data[:, -1].astype(np.int64)


@lru_cache(maxsize=1)
def split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The fixed split, standardized by the training rows: (x_train, y_train, x_val, y_val)."""
    from tunebook.workloads._loop import split_indices

    x, y = load()
    tr, val = split_indices(len(x), VALIDATION_SHARE)
    mean, sd = x[tr].mean(axis=0), x[tr].std(axis=0) + 1e-6
    x = ((x - mean) / sd).astype(np.float32)
    return x[tr], y[tr], x[val], y[val]


def build_model(params: dict[str, Any], n_features: int) -> Any:
    from tunebook.workloads._loop import mlp

    return mlp(n_features, 2, params, hidden_units=64)


def _task(params: dict[str, Any]) -> Any:
    import torch

    from tunebook.workloads._loop import classifier

    x_tr, y_tr, x_val, y_val = (torch.from_numpy(a) for a in split())
    return classifier(build_model(params, x_tr.shape[1]), x_tr, y_tr, x_val, y_val,
                      default_lr=1e-2, default_batch_size=32, default_eval_every=10)


def train(trial: Any) -> None:
    """The training function tunebook calls (see the module docstring)."""
    from tunebook.workloads._loop import fit

    fit(trial, _task)
