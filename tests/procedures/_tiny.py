"""A second real workload for the loop's tests, small enough to run dozens of trials in seconds.

A 2-16-16-2 MLP (PyTorch, one thread) classifies two noisy concentric rings
(800 points made once from seed 0: 600 to train, 200 to validate), minibatches of
32 drawn from (trial seed, step). Hyperparameters: ``optimizer`` (adam, sgd),
``learning_rate`` (with a default per optimizer), ``eval_every`` (default 10).
Logs ``train/loss`` every step and ``val/loss`` every ``eval_every`` steps.

Its right answers were measured first by a seeded grid pilot (three seeds a point,
:func:`pilot`, numbers in tests/procedures/test_next.py).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np


@lru_cache(maxsize=1)
def circles() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Two noisy concentric rings (radius 0.5 and 1.0), 400 points each; 600 to train, 200 to validate."""
    rng = np.random.default_rng(0)
    n = 400
    rings = []
    for radius in (0.5, 1.0):
        angle = rng.uniform(0, 2 * math.pi, n)
        rings.append(np.stack([np.cos(angle), np.sin(angle)], 1) * radius + 0.15 * rng.standard_normal((n, 2)))
    x = np.concatenate(rings).astype(np.float32)
    y = np.concatenate([np.zeros(n), np.ones(n)]).astype(np.int64)
    order = rng.permutation(len(x))
    x, y = x[order], y[order]
    return x[:600], y[:600], x[600:], y[600:]


DEFAULT_LR = {"adam": 1e-2, "sgd": 0.3}


def train(trial) -> None:
    import torch
    import torch.nn.functional as F
    from torch import nn

    torch.set_num_threads(1)
    hp = trial.params
    name = hp.get("optimizer", "adam")
    lr = float(hp.get("learning_rate", DEFAULT_LR[name]))
    every = int(hp.get("eval_every", 10))
    torch.manual_seed(trial.seed)
    x_tr, y_tr, x_val, y_val = (torch.from_numpy(a) for a in circles())
    model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 2))
    opt = torch.optim.Adam(model.parameters(), lr=lr) if name == "adam" else torch.optim.SGD(model.parameters(), lr=lr)
    for step in range(1, trial.max_train_steps + 1):
        idx = torch.from_numpy(np.random.default_rng([trial.seed, step]).integers(0, len(x_tr), 32))
        loss = F.cross_entropy(model(x_tr[idx]), y_tr[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        trial.log(step, **{"train/loss": loss.detach()})
        if step % every == 0 or step == trial.max_train_steps:
            with torch.no_grad():
                trial.log(step, **{"val/loss": F.cross_entropy(model(x_val), y_val)})


def pilot(optimizer: str, rates: list[float], steps: int, seeds: tuple[int, ...] = (0, 1, 2)) -> dict[float, list[float]]:
    """The seeded grid pilot: each rate's best val/loss for each seed (run directly, no store)."""

    class Probe:
        def __init__(self, lr: float, seed: int) -> None:
            self.params = {"optimizer": optimizer, "learning_rate": lr}
            self.seed, self.max_train_steps, self.best = seed, steps, math.inf

        def log(self, step: int, **values) -> None:
            if "val/loss" in values:
                v = float(values["val/loss"])
                self.best = min(self.best, v) if math.isfinite(v) else self.best

    out = {}
    for lr in rates:
        runs = []
        for seed in seeds:
            probe = Probe(lr, seed)
            train(probe)
            runs.append(probe.best)
        out[lr] = runs
    return out
