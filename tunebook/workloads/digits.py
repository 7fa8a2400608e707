"""A real, small workload: an MLP on the UCI handwritten digits (1,797 8x8 images).

The data ships with tunebook (``data/digits.csv.gz``), so nothing is
downloaded. The train/validation split is fixed (seed 0, 20% validation),
whatever the trial. It uses the whole training toolkit (:mod:`tunebook.training`):

- per-host seeds: the trial seed gives the initialization seed and the data
  seed; batches are drawn from (data seed, step), so a run resumed from a
  checkpoint follows exactly the path of an uninterrupted one;
- the playbook's optimizers and a learning-rate schedule (with warmup);
- the total gradient norm logged every step as a tensor (no host sync), and
  clipping at ``grad_clip`` when given;
- checkpoints with the full training state (model, optimizer, scheduler, RNG);
- evaluation every ``eval_every`` steps (by step, never by time), with padded,
  zero-weighted partial batches and per-class counts;
- input-pipeline timing; optional ghost batch norm.

Hyperparameters (``trial.params``), with defaults: ``learning_rate`` (1e-3),
``optimizer`` ("adam"; sgd, momentum, nesterov, rmsprop, nadam), ``beta1``
(0.9), ``beta2`` (0.999), ``epsilon`` (1e-8), ``momentum`` (0.9),
``weight_decay`` (0, decoupled), ``schedule`` ("constant"; linear, cosine,
rsqrt), ``warmup_steps`` (0), ``grad_clip`` (none), ``hidden_units`` (128),
``ghost_batch_size`` (none), ``batch_size`` (64), ``eval_every`` (25).

Logged: ``train/loss``, ``grad/norm`` (and ``grad/clipped``) and ``lr`` every
step; ``val/error``, ``val/loss``, ``val/balanced_error``, ``train/error``
every ``eval_every`` steps; ``input/wait_fraction`` every 100 steps.
"""

from __future__ import annotations

import gzip
from functools import lru_cache
from importlib import resources
from typing import Any, Iterator

import numpy as np

VALIDATION_SHARE = 0.2
NUM_CLASSES = 10


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
    n_val = round(len(x) * VALIDATION_SHARE)
    val, tr = order[:n_val], order[n_val:]
    return x[tr], y[tr], x[val], y[val]


def build_model(params: dict[str, Any]) -> Any:
    """A 2-hidden-layer MLP; with ``ghost_batch_size``, ghost batch norm after each hidden layer."""
    from torch import nn

    from tunebook.training.batchnorm import GhostBatchNorm

    hidden = int(params.get("hidden_units", 128))
    ghost = params.get("ghost_batch_size")
    layers: list[Any] = []
    width = 64
    for _ in range(2):
        layers.append(nn.Linear(width, hidden))
        if ghost:
            layers.append(GhostBatchNorm(hidden, virtual_batch_size=int(ghost)))
        layers.append(nn.ReLU())
        width = hidden
    layers.append(nn.Linear(width, NUM_CLASSES))
    return nn.Sequential(*layers)


def batches(x: Any, y: Any, batch_size: int, data_seed: int, start: int, stop: int) -> Iterator[tuple[int, Any, Any]]:
    """``(step, inputs, labels)`` for steps ``start..stop``, each drawn from (data_seed, step)."""
    for step in range(start, stop + 1):
        idx = np.random.default_rng([data_seed, step]).integers(0, len(x), batch_size)
        yield step, x[idx], y[idx]


def train(trial: Any) -> None:
    """The training function tunebook calls (see the module docstring)."""
    import torch
    import torch.nn.functional as F

    from tunebook.training import optimizers, schedules
    from tunebook.training.checkpoints import restore_training_state, training_state
    from tunebook.training.clipping import clip_and_log
    from tunebook.training.evaluation import PeriodicAction, eval_batch_size, evaluate_classifier, padded_batches
    from tunebook.training.pipeline import TimedIterator
    from tunebook.training.seeds import host_seeds

    hp = trial.params
    seeds = host_seeds(trial.seed)
    torch.manual_seed(seeds.init)
    x_tr, y_tr, x_val, y_val = (torch.from_numpy(a) for a in split())
    model = build_model(hp)
    peak = max(float(hp.get("learning_rate", 1e-3)), 1e-12)  # a group without its own learning rate: the default
    # hp is read by key, never copied whole: trial.params notes which hyperparameters this function uses
    schedule = schedules.from_params(hp, trial.max_train_steps, lr=peak)
    opt = optimizers.from_params(model.parameters(), hp, lr=peak)
    scheduler = schedules.lambda_lr(opt, schedule)
    batch_size = int(hp.get("batch_size", 64))
    weight_decay = float(hp.get("weight_decay", 0.0))
    grad_clip = hp.get("grad_clip")
    evaluate = PeriodicAction(int(hp.get("eval_every", 25)), last_step=trial.max_train_steps)
    val_batch = eval_batch_size(batch_size, 512)
    params = [p for p in model.parameters()]

    start = 1
    resumed = trial.restore()
    if resumed is not None:
        start = restore_training_state(resumed.state, model, opt, scheduler) + 1

    data = TimedIterator(batches(x_tr, y_tr, batch_size, seeds.data, start, trial.max_train_steps), trial, start_step=start)
    for step, xb, yb in data:
        lr = schedule(step - 1)  # what LambdaLR gives this update (a host float: no sync)
        loss = F.cross_entropy(model(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        clip_and_log(trial, step, params, float(grad_clip) if grad_clip else None)
        opt.step()
        if weight_decay:
            # decoupled weight decay, scaled by the scheduled rate (the update rule stays the playbook's)
            with torch.no_grad():
                torch._foreach_mul_(params, 1.0 - lr * weight_decay)
        scheduler.step()
        trial.log(step, **{"train/loss": loss.detach(), "lr": lr})
        if evaluate(step):
            val = evaluate_classifier(model, padded_batches(x_val, y_val, val_batch), num_classes=NUM_CLASSES)
            on_train = evaluate_classifier(model, padded_batches(x_tr, y_tr, val_batch))
            trial.log(step, **val.metrics("val"), **{"train/error": on_train.metrics("train")["train/error"]})
            trial.checkpoint(step, training_state(step, model, opt, scheduler))


def make_step(batch_size: int, params: dict[str, Any] | None = None) -> Any:
    """One training step of the digits MLP at ``batch_size`` (for ``tunebook batch-size``)."""
    import torch
    import torch.nn.functional as F

    from tunebook.training import optimizers

    params = {"learning_rate": 1e-3, "optimizer": "adam", **(params or {})}
    torch.manual_seed(0)
    x_tr, y_tr, _, _ = (torch.from_numpy(a) for a in split())
    model = build_model(params)
    opt = optimizers.from_params(model.parameters(), params)
    generator = torch.Generator().manual_seed(0)

    def step() -> Any:
        idx = torch.randint(0, len(x_tr), (batch_size,), generator=generator)
        loss = F.cross_entropy(model(x_tr[idx]), y_tr[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.detach()

    return step


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
            "fixed": {"optimizer": "adam", "schedule": "cosine", "batch_size": 64, "hidden_units": 128, "eval_every": 50},
        },
        "infeasible_if": {"train/loss": {"above": 100.0}},
    }
