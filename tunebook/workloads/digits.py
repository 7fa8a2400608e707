"""A real, small workload: an MLP on the UCI handwritten digits (1,797 8x8 images).

The data ships with tunebook (``data/digits.csv.gz``), so nothing is
downloaded. The train/validation split is fixed (seed 0, 20% validation),
whatever the trial. Batches are drawn from a generator seeded by the trial
seed and the step, so a run resumed from a checkpoint follows exactly the
path of an uninterrupted one.

Hyperparameters (``trial.params``), with defaults:
``learning_rate`` (1e-3), ``optimizer`` ("adam" | "sgd" | "momentum"),
``momentum``/``beta1`` (0.9), ``weight_decay`` (0), ``hidden_units`` (128),
``batch_size`` (64), ``eval_every`` (25 steps).

Logged: ``train/loss`` every step (a tensor: no host sync), ``val/error``,
``val/loss`` and ``train/error`` every ``eval_every`` steps; a checkpoint at
every evaluation.
"""

from __future__ import annotations

import gzip
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np

VALIDATION_SHARE = 0.2


@lru_cache(maxsize=1)
def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """Features scaled to [0, 1] (float32, shape (1797, 64)) and labels (int64)."""
    with resources.files("tunebook.workloads").joinpath("data/digits.csv.gz").open("rb") as raw:
        data = np.loadtxt(gzip.open(raw), delimiter=",")
    return (data[:, :-1] / 16.0).astype(np.float32), data[:, -1].astype(np.int64)


def split(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The fixed train/validation split."""
    x, y = load_digits()
    order = np.random.default_rng(seed).permutation(len(x))
    n_val = int(round(len(x) * VALIDATION_SHARE))
    val, tr = order[:n_val], order[n_val:]
    return x[tr], y[tr], x[val], y[val]


def build(params: dict[str, Any]) -> tuple[Any, Any]:
    """The model and its optimizer for these hyperparameters."""
    import torch
    from torch import nn

    hidden = int(params.get("hidden_units", 128))
    model = nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 10))
    lr = float(params.get("learning_rate", 1e-3))
    wd = float(params.get("weight_decay", 0.0))
    name = params.get("optimizer", "adam")
    if name == "adam":
        beta1 = float(params.get("beta1", params.get("momentum", 0.9)))
        opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(beta1, 0.999), weight_decay=wd)
    elif name in ("sgd", "momentum"):
        momentum = float(params.get("momentum", 0.9)) if name == "momentum" else 0.0
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=wd)
    else:
        raise ValueError(f"optimizer: unknown {name!r}; use adam, sgd or momentum")
    return model, opt


def train(trial: Any) -> None:
    """The training function tunebook calls (see the module docstring)."""
    import torch
    import torch.nn.functional as F

    hp = trial.params
    torch.manual_seed(trial.seed)
    x_tr, y_tr, x_val, y_val = (torch.from_numpy(a) for a in split())
    model, opt = build(hp)
    batch_size = int(hp.get("batch_size", 64))
    eval_every = int(hp.get("eval_every", 25))

    start = 1
    resumed = trial.restore()
    if resumed is not None:
        model.load_state_dict(resumed.state["model"])
        opt.load_state_dict(resumed.state["optimizer"])
        start = resumed.step + 1

    for step in range(start, trial.max_train_steps + 1):
        # Batch indices from (seed, step): identical whether or not the run was resumed.
        idx = np.random.default_rng([trial.seed, step]).integers(0, len(x_tr), batch_size)
        xb, yb = x_tr[idx], y_tr[idx]
        loss = F.cross_entropy(model(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        trial.log(step, **{"train/loss": loss.detach()})
        if step % eval_every == 0 or step == trial.max_train_steps:
            model.eval()
            with torch.no_grad():
                logits = model(x_val)
                val_loss = F.cross_entropy(logits, y_val)
                val_error = (logits.argmax(1) != y_val).float().mean()
                train_error = (model(x_tr).argmax(1) != y_tr).float().mean()
            model.train()
            trial.log(step, **{"val/error": val_error, "val/loss": val_loss, "train/error": train_error})
            trial.checkpoint(step, {"model": model.state_dict(), "optimizer": opt.state_dict()})


def demo_spec() -> dict[str, Any]:
    """The demo study: does weight decay help an MLP on digits, learning rate tuned away."""
    return {
        "study": "digits-weight-decay",
        "goal": "Does weight decay help a 2-layer MLP on digits? (learning rate is a nuisance)",
        "experiment": "digits-demo",
        "train": "tunebook.workloads.digits:train",
        "objective": {"metric": "val/error", "mode": "min"},
        "trials": 21,
        "max_train_steps": 1000,
        "search_space": {
            "scientific": {"weight_decay": {"choice": [0.0, 1.0e-3, 1.0e-1]}},
            "nuisance": {"learning_rate": {"min": 1.0e-4, "max": 1.0, "scale": "log"}},
            "fixed": {"optimizer": "adam", "batch_size": 64, "hidden_units": 128, "eval_every": 50},
        },
        "infeasible_if": {"train/loss": {"above": 100.0}},
    }
