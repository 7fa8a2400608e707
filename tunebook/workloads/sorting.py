"""A tiny Transformer that learns to sort: each output position names the digit of that rank in the input.

The data is generated, not downloaded: :func:`dataset` draws 5,000 sequences of
8 digits (0 to 9, uniform, repeats allowed) with a fixed seed; the target of a
sequence is the same digits sorted in ascending order, one token per position.
4,000 train, 1,000 validate. Sorting needs every position to see the whole
sequence (how many digits are smaller than each one), which is what attention
does and a per-position model cannot.

The model: a token embedding and a learned position embedding of ``d_model``
(32), ``layers`` (1) Transformer encoder blocks (``torch.nn.TransformerEncoderLayer``:
``heads`` (2) attention heads, a feed-forward part of ``ff_units`` (64), ReLU,
dropout ``dropout`` (0), post-norm), then a linear read-out of 10 logits at
each position. Batches of ``batch_size`` (32) sequences, each drawn from (data
seed, step); the loss is the token-level cross-entropy (mean over positions).

Hyperparameters (``trial.params``), with defaults: ``learning_rate`` (3e-3),
``optimizer`` ("adam"; sgd, momentum, nesterov, rmsprop, nadam) and its own
(``momentum``, ``beta1``, ``beta2``, ``epsilon``), ``schedule`` ("constant";
linear, cosine, rsqrt), ``warmup_steps`` (0), ``weight_decay`` (0, decoupled),
``grad_clip`` (none), ``d_model`` (32), ``heads`` (2; must divide ``d_model``),
``ff_units`` (64), ``layers`` (1), ``dropout`` (0), ``batch_size`` (32),
``eval_every`` (20).

Logged: ``train/loss`` (nats per token), ``grad/norm`` and ``lr`` every step;
``val/loss`` (token cross-entropy in nats, the objective to minimize),
``val/error`` (the share of wrong tokens) and ``train/error`` (on 1,000 fixed
training sequences) every ``eval_every`` steps and at the last step.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

N_SEQUENCES = 5_000
N_VAL = 1_000
LENGTH = 8
VOCAB = 10


@lru_cache(maxsize=1)
def dataset() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_val, y_val): int64 sequences of shape (n, 8) and their sorted targets."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, VOCAB, (N_SEQUENCES, LENGTH)).astype(np.int64)
    y = np.sort(x, axis=1)
    return x[N_VAL:], y[N_VAL:], x[:N_VAL], y[:N_VAL]


def build_model(params: dict[str, Any]) -> Any:
    """The Transformer of the module docstring; its output is (batch, 10 logits, 8 positions)."""
    import torch
    from torch import nn

    d_model = int(params.get("d_model", 32))
    heads = int(params.get("heads", 2))
    ff_units = int(params.get("ff_units", 64))
    dropout = float(params.get("dropout", 0.0))

    class Sorter(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.tokens = nn.Embedding(VOCAB, d_model)
            self.positions = nn.Parameter(0.02 * torch.randn(LENGTH, d_model))
            self.blocks = nn.Sequential(*[
                nn.TransformerEncoderLayer(d_model, heads, dim_feedforward=ff_units, dropout=dropout,
                                           batch_first=True)
                for _ in range(int(params.get("layers", 1)))])
            self.readout = nn.Linear(d_model, VOCAB)

        def forward(self, x: Any) -> Any:
            h = self.blocks(self.tokens(x) + self.positions)
            return self.readout(h).transpose(1, 2)  # classes second, as cross_entropy wants

    return Sorter()


def _task(params: dict[str, Any]) -> Any:
    import torch

    from tunebook.workloads._loop import classifier

    x_tr, y_tr, x_val, y_val = (torch.from_numpy(a) for a in dataset())
    return classifier(build_model(params), x_tr, y_tr, x_val, y_val, n_train_eval=N_VAL,
                      default_lr=3e-3, default_batch_size=32, default_eval_every=20)


def train(trial: Any) -> None:
    """The training function tunebook calls (see the module docstring)."""
    from tunebook.workloads._loop import fit

    fit(trial, _task)
