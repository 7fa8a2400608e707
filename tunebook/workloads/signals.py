"""A 1-D convolutional network on generated signals: which of four waveforms is hidden in the noise.

The data is generated, not downloaded: :func:`dataset` draws 3,000 signals of
64 samples with a fixed seed. Each is a sine, square, triangle or sawtooth
wave (the class) of random frequency (1.5 to 6 cycles), phase and amplitude
(0.5 to 1.5), plus Gaussian noise of sd 0.6 (so the class is not obvious from a
single sample). 2,400 train, 600 validate.

The model: two convolutions (kernel 5, ``channels`` (16) each, the second of
stride 2) with ReLU, global average pooling, dropout (``dropout``, 0), a
4-way linear read-out. Batches of ``batch_size`` (32) signals, each drawn
from (data seed, step).

Hyperparameters (``trial.params``), with defaults: ``learning_rate`` (1e-2),
``optimizer`` ("adam"; sgd, momentum, nesterov, rmsprop, nadam) and its own
(``momentum``, ``beta1``, ``beta2``, ``epsilon``), ``schedule`` ("constant";
linear, cosine, rsqrt), ``warmup_steps`` (0), ``weight_decay`` (0, decoupled),
``grad_clip`` (none), ``channels`` (16), ``dropout`` (0), ``batch_size`` (32),
``eval_every`` (20).

Logged: ``train/loss``, ``grad/norm`` and ``lr`` every step; ``val/loss``
(cross-entropy in nats, the objective to minimize), ``val/error`` and
``train/error`` (on 600 fixed training signals) every ``eval_every`` steps and
at the last step.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

N_SIGNALS = 3_000
N_VAL = 600
LENGTH = 64
NOISE = 0.6
CLASSES = ("sine", "square", "triangle", "sawtooth")


@lru_cache(maxsize=1)
def dataset() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_val, y_val): float32 signals of shape (n, 1, 64) and int64 classes."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, len(CLASSES), N_SIGNALS)
    cycles = rng.uniform(1.5, 6.0, N_SIGNALS)[:, None]
    phase = rng.uniform(0.0, 1.0, N_SIGNALS)[:, None]
    amplitude = rng.uniform(0.5, 1.5, N_SIGNALS)[:, None]
    t = (np.arange(LENGTH)[None, :] / LENGTH) * cycles + phase
    frac = t - np.floor(t)
    waves = np.stack([np.sin(2 * np.pi * t), np.where(frac < 0.5, 1.0, -1.0),
                      4 * np.abs(frac - 0.5) - 1, 2 * frac - 1])
    clean = waves[labels, np.arange(N_SIGNALS)] * amplitude
    x = (clean + NOISE * rng.standard_normal(clean.shape)).astype(np.float32)[:, None, :]
    y = labels.astype(np.int64)
    return x[N_VAL:], y[N_VAL:], x[:N_VAL], y[:N_VAL]


def build_model(params: dict[str, Any]) -> Any:
    from torch import nn

    channels = int(params.get("channels", 16))
    return nn.Sequential(
        nn.Conv1d(1, channels, 5, padding=2), nn.ReLU(),
        nn.Conv1d(channels, channels, 5, stride=2, padding=2), nn.ReLU(),
        nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Dropout(float(params.get("dropout", 0.0))),
        nn.Linear(channels, len(CLASSES)))


def _task(params: dict[str, Any]) -> Any:
    import torch

    from tunebook.workloads._loop import classifier

    x_tr, y_tr, x_val, y_val = (torch.from_numpy(a) for a in dataset())
    return classifier(build_model(params), x_tr, y_tr, x_val, y_val, n_train_eval=N_VAL,
                      default_lr=1e-2, default_batch_size=32, default_eval_every=20)


def train(trial: Any) -> None:
    """The training function tunebook calls (see the module docstring)."""
    from tunebook.workloads._loop import fit

    fit(trial, _task)
