"""The training loop shared by the small known-answer workloads (char_lm, tabular, signals, regression,
sorting).

Each workload supplies its model, how to draw a training batch from (data
seed, step), its loss, and its evaluation; :func:`fit` does the rest the same
way for all of them, with the conventions of :mod:`tunebook.workloads.digits`:

- hyperparameters read from ``trial.params`` by key (never copied whole);
- the trial seed gives the initialization seed and the data seed (batches and
  dropout); batches are drawn from (data seed, step), so a resumed run follows
  the path of an uninterrupted one;
- the playbook's optimizers (``optimizer``: sgd, momentum, nesterov, rmsprop,
  adam, nadam, with ``momentum``, ``beta1``, ``beta2``, ``epsilon``), a
  schedule (``schedule``: constant, linear, cosine, rsqrt) with
  ``warmup_steps``, decoupled ``weight_decay``, ``grad_clip``;
- ``train/loss``, ``lr`` and ``grad/norm`` every step as tensors (no host sync),
  the workload's validation metrics and ``train/error`` or ``train/eval_loss``
  every ``eval_every`` steps (by step) and at the last step, then a checkpoint
  with the full training state;
- ``max_train_steps`` honoured exactly.

Not a public API: the workloads' ``train`` functions are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable


@dataclass
class Task:
    """One workload's parts, built by its ``train`` after the initialization seed is set."""

    model: Any  # a torch.nn.Module
    batch: Callable[[int, int, int], tuple[Any, Any]]  # (data_seed, step, batch_size) -> (inputs, targets)
    loss: Callable[[Any, Any, Any], Any]  # (model, inputs, targets) -> scalar tensor
    evaluate: Callable[[Any], dict[str, Any]]  # model (in eval mode, no grad) -> metrics to log
    default_lr: float = 1e-2
    default_batch_size: int = 32
    default_eval_every: int = 25


def fit(trial: Any, build: Callable[[dict[str, Any]], Task]) -> None:
    """Train ``build(trial.params)``'s task for ``trial.max_train_steps`` steps (see the module docstring)."""
    import torch

    from tunebook.training import optimizers, schedules
    from tunebook.training.checkpoints import restore_training_state, training_state
    from tunebook.training.clipping import clip_and_log
    from tunebook.training.evaluation import PeriodicAction
    from tunebook.training.seeds import host_seeds

    hp = trial.params
    seeds = host_seeds(trial.seed)
    torch.manual_seed(seeds.init)
    task = build(hp)
    model = task.model
    torch.manual_seed(seeds.data)  # dropout's masks
    peak = max(float(hp.get("learning_rate", task.default_lr)), 1e-12)
    schedule = schedules.from_params(hp, trial.max_train_steps, lr=peak)
    opt = optimizers.from_params(model.parameters(), hp, lr=peak)
    scheduler = schedules.lambda_lr(opt, schedule)
    batch_size = int(hp.get("batch_size", task.default_batch_size))
    weight_decay = float(hp.get("weight_decay", 0.0))
    grad_clip = hp.get("grad_clip")
    evaluate = PeriodicAction(int(hp.get("eval_every", task.default_eval_every)), last_step=trial.max_train_steps)
    params = list(model.parameters())

    start = 1
    resumed = trial.restore()
    if resumed is not None:
        start = restore_training_state(resumed.state, model, opt, scheduler) + 1
    model.train()
    for step in range(start, trial.max_train_steps + 1):
        lr = schedule(step - 1)  # what LambdaLR gives this update (a host float: no sync)
        inputs, targets = task.batch(seeds.data, step, batch_size)
        loss = task.loss(model, inputs, targets)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        clip_and_log(trial, step, params, float(grad_clip) if grad_clip else None)
        opt.step()
        if weight_decay:
            with torch.no_grad():
                torch._foreach_mul_(params, 1.0 - lr * weight_decay)
        scheduler.step()
        trial.log(step, **{"train/loss": loss.detach(), "lr": lr})
        if evaluate(step):
            model.eval()
            with torch.no_grad():
                metrics = task.evaluate(model)
            model.train()
            trial.log(step, **metrics)
            trial.checkpoint(step, training_state(step, model, opt, scheduler))


def classifier(model: Any, x_train: Any, y_train: Any, x_val: Any, y_val: Any, n_train_eval: int | None = None,
               **defaults: Any) -> Task:
    """A classification task on in-memory tensors: batches of rows drawn from (data seed, step), cross-entropy,
    and ``val/loss``, ``val/error`` and ``train/error`` (on the first ``n_train_eval`` training rows, all by
    default) at each evaluation. ``defaults``: Task's ``default_*`` fields."""
    import torch
    import torch.nn.functional as F

    x_seen, y_seen = x_train[:n_train_eval], y_train[:n_train_eval]

    def batch(seed: int, step: int, batch_size: int) -> tuple[Any, Any]:
        idx = torch.from_numpy(rows(seed, step, len(x_train), batch_size))
        return x_train[idx], y_train[idx]

    def loss(m: Any, x: Any, y: Any) -> Any:
        return F.cross_entropy(m(x), y)

    def evaluate(m: Any) -> dict[str, Any]:
        logits = m(x_val)
        return {"val/loss": F.cross_entropy(logits, y_val), "val/error": (logits.argmax(1) != y_val).float().mean(),
                "train/error": (m(x_seen).argmax(1) != y_seen).float().mean()}

    return Task(model, batch, loss, evaluate, **defaults)


def mlp(n_in: int, n_out: int, params: dict[str, Any], hidden_units: int) -> Any:
    """``layers`` (2) hidden layers of ``hidden_units`` (the workload's default) with ReLU and dropout
    (``dropout``, 0) after each, then a linear read-out of ``n_out`` values (tabular, regression)."""
    from torch import nn

    hidden = int(params.get("hidden_units", hidden_units))
    dropout = float(params.get("dropout", 0.0))
    layers: list[Any] = []
    width = n_in
    for _ in range(int(params.get("layers", 2))):
        layers += [nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(dropout)]
        width = hidden
    layers.append(nn.Linear(width, n_out))
    return nn.Sequential(*layers)


def rows(seed: int, step: int, n: int, batch_size: int) -> Any:
    """``batch_size`` row indices in ``range(n)``, drawn from (seed, step) alone."""
    import numpy as np

    return np.random.default_rng([seed, step]).integers(0, n, batch_size)


def split_indices(n: int, validation_share: float, seed: int = 0) -> tuple[Any, Any]:
    """A fixed (train, validation) split of ``range(n)``."""
    import numpy as np

    order = np.random.default_rng(seed).permutation(n)
    n_val = round(n * validation_share)
    return order[n_val:], order[:n_val]
