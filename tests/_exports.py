"""A small stored study shared by the exporter tests: curves, an infeasible trial, a pending one."""

from __future__ import annotations

import numpy as np

import tunebook as tb
from tunebook.analysis.synthetic import exp_decay, write_study

SPACE = tb.SearchSpace(
    scientific={"optimizer": tb.Choice(["adam", "sgd"])},
    nuisance={"learning_rate": tb.Float(1e-4, 1.0, scale="log")},
    fixed={"batch_size": 32},
)


def curves(params, steps, rng):
    lr = params["learning_rate"]
    if lr > 0.3:
        return "train/loss is NaN"
    floor = 0.1 + abs(np.log10(lr) + 2) * 0.05 + (0.02 if params["optimizer"] == "sgd" else 0.0)
    return {"val/error": exp_decay(steps, floor, 0.9, 30.0), "train/loss": exp_decay(steps, floor / 2, 2.0, 25.0)}


def make_study(url: str, name: str = "wd", trials: int = 8, evals: int = 5) -> tb.Study:
    """A finished study (some trials infeasible) in the store at ``url``."""
    return write_study(url, name, curves, space=SPACE, trials=trials, max_train_steps=100, evals=evals,
                       goal="Does the optimizer matter?")
