"""Synthetic studies whose right answer holds by construction, on two unlike kinds of workload.

- ``lm``: a language-model-like validation *loss* (minimized, no natural floor at 0, evaluated a few
  times per run), whose best learning rate and noise are set;
- ``tabular``: a tabular classifier's validation *accuracy* (maximized, in [0, 1]).

Each curve function takes the truth as arguments (the floor of each configuration, the seed-to-seed
sd, the evaluation noise), so a test knows the right answer before it looks at a finding. Retrains
(new seeds of a group's best) are run with :func:`measure_trial_sd`, whose spread is ``seed_sd``.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

import tunebook as tb
from tunebook.analysis import load
from tunebook.analysis.checks import groups
from tunebook.analysis.synthetic import exp_decay, write_study

STEPS = 1000
LR = {"learning_rate": {"min": 1e-4, "max": 1.0, "scale": "log"}}

#: (objective, sign): a loss is minimized, an accuracy maximized
KINDS = {"lm": (("val/loss", "min"), 1.0), "tabular": (("val/accuracy", "max"), -1.0)}


def bowl(lr: float, best_lr: float = 1e-2, width: float = 0.1) -> float:
    """How much worse (loss-like) than the optimum a learning rate is: quadratic in log10(lr)."""
    return width * (math.log10(lr) - math.log10(best_lr)) ** 2


def level(kind: str, badness: float) -> float:
    """The final value of a run ``badness`` worse than the best: a loss (3.0 + ...) or an accuracy (0.9 - ...)."""
    return 3.0 + badness if kind == "lm" else 0.9 - badness


def start(kind: str) -> float:
    return 6.0 if kind == "lm" else 0.1


def curves(kind: str, final: float, steps: np.ndarray, rng: np.random.Generator, *, noise: float = 0.002,
           tau: float = 60.0, train_final: float | None = None) -> dict[str, np.ndarray]:
    """A validation curve from the kind's start to ``final`` (time constant ``tau`` steps), with white noise,
    and a training loss that keeps falling to ``train_final``."""
    metric = KINDS[kind][0][0]
    val = exp_decay(steps, final, start(kind), tau) + noise * rng.standard_normal(len(steps))
    train = exp_decay(steps, 0.5 if train_final is None else train_final, 2.3, tau)
    return {metric: val, "train/loss": train}


def study(url: str, kind: str, curve: Callable[..., Any], *, name: str = "s", trials: int = 20,
          space: dict[str, Any] | None = None, evals: int = 40, max_train_steps: int = STEPS, **kw: Any) -> tb.Study:
    return write_study(url, name, curve, space=space or {"nuisance": LR}, trials=trials,
                       max_train_steps=max_train_steps, evals=evals, objective=KINDS[kind][0], **kw)


def measure_trial_sd(study_: tb.Study, seed_sd: float, n: int = 4) -> None:
    """Retrain each group's best with ``n`` new seeds whose values spread by ``seed_sd`` around it."""
    from tunebook.procedures.variance import retrain

    metric = study_.objective[0]
    data = load(study_)
    for g in groups(data):
        best = data.sign() * min(data.sign() * t.value for t in g.trials if t.value is not None)
        number = next(t.number for t in g.trials if t.value == best)

        def again(trial, best=best):
            offset = seed_sd * np.random.default_rng(trial.seed).standard_normal()
            trial.log(STEPS, **{metric: best + offset})

        tb.run(retrain(study_, trial=number, n=n), again, workers=0, progress=False)
