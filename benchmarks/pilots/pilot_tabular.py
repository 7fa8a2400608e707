"""Grid pilot for the tabular workload (tunebook.workloads.tabular): the known answers its tests rely on.

Every point is trained with SEEDS seeds for STEPS steps; a point's value is the
best ``val/loss`` over its evaluations. Writes tests/assets/pilots/tabular.json.

    PYTHONPATH=$PWD nice -n 10 python benchmarks/pilots/pilot_tabular.py     # ~2 CPU-minutes
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _pilot import main  # noqa: E402

from tunebook.workloads import tabular  # noqa: E402

STEPS = 300
SEEDS = [101, 202, 303, 404, 505]
FIXED = {"eval_every": 10, "batch_size": 64, "hidden_units": 32, "schedule": "cosine"}
INFEASIBLE_ABOVE = 5.0  # train/loss in nats; the initial loss is ln(2) = 0.69
ADAM_LRS = [1e-3, 3e-3, 1e-2, 3e-2, 0.1]
SGD_LRS = [0.03, 0.1, 0.3, 1.0, 2.0, 4.0, 8.0, 16.0]


def points() -> dict[str, dict]:
    out = {}
    for lr in ADAM_LRS:
        out[f"adam lr={lr:g}"] = {"optimizer": "adam", "learning_rate": lr, **FIXED}
        out[f"adam dropout=0.5 lr={lr:g}"] = {"optimizer": "adam", "learning_rate": lr, "dropout": 0.5, **FIXED}
        out[f"adam epsilon=1e-6 lr={lr:g}"] = {"optimizer": "adam", "learning_rate": lr, "epsilon": 1e-6, **FIXED}
        out[f"adam hidden=64 lr={lr:g}"] = {**FIXED, "optimizer": "adam", "learning_rate": lr, "hidden_units": 64}
    for lr in SGD_LRS:
        out[f"sgd lr={lr:g}"] = {"optimizer": "sgd", "learning_rate": lr, **FIXED}
    for lr in [0.05, 0.2, 0.4, 0.8]:  # Adam's edge of stability
        out[f"adam lr={lr:g}"] = {"optimizer": "adam", "learning_rate": lr, **FIXED}
    for lr in [3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0]:  # no hidden layer: logistic regression
        out[f"adam layers=0 lr={lr:g}"] = {"optimizer": "adam", "learning_rate": lr, "layers": 0, **FIXED}
    return out


SHORT_STEPS = 20  # too short, with the cosine decaying to zero over the 20 steps (evaluated every 2): the length probes' case
SHORT = {f"short adam lr={lr:g}": {"optimizer": "adam", "learning_rate": lr, **FIXED, "eval_every": 2}
         for lr in (3e-3, 1e-2, 3e-2)}
SHORTER_STEPS = 10  # far too short (cosine to zero over 10 steps, evaluated every 2): the 20-step points are its 2x
SHORTER = {f"shorter adam lr={lr:g}": {"optimizer": "adam", "learning_rate": lr, **FIXED, "eval_every": 2}
           for lr in (3e-2, 0.1, 0.3)}


if __name__ == "__main__":
    main("tabular", tabular.train, points(), steps=STEPS, seeds=SEEDS, objective="val/loss",
         infeasible_above=INFEASIBLE_ABOVE, fixed=FIXED, longer=[(SHORT_STEPS, SHORT), (SHORTER_STEPS, SHORTER)])
