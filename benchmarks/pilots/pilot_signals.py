"""Grid pilot for the signals workload (tunebook.workloads.signals), the held-out workload: no threshold or
check was tuned on it. Every point is trained with SEEDS seeds for STEPS steps; a point's value is the best
``val/loss`` over its evaluations. Writes tests/assets/pilots/signals.json, which
benchmarks/pilots/heldout_signals.py reads as the truth of its studies.

    PYTHONPATH=$PWD nice -n 10 python benchmarks/pilots/pilot_signals.py     # ~3 CPU-minutes
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _pilot import main  # noqa: E402

from tunebook.workloads import signals  # noqa: E402

STEPS = 300
SEEDS = [101, 202, 303, 404]
FIXED = {"eval_every": 20}
INFEASIBLE_ABOVE = 5.0  # train/loss in nats; the initial loss is ln(4) = 1.39
ADAM_LRS = [1e-3, 3e-3, 1e-2, 3e-2, 0.1]
SGD_LRS = [0.03, 0.1, 0.3, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0]


def points() -> dict[str, dict]:
    out = {}
    for lr in ADAM_LRS:
        out[f"adam lr={lr:g}"] = {"optimizer": "adam", "learning_rate": lr, **FIXED}
        out[f"adam channels=4 lr={lr:g}"] = {"optimizer": "adam", "learning_rate": lr, "channels": 4, **FIXED}
        out[f"adam channels=24 lr={lr:g}"] = {"optimizer": "adam", "learning_rate": lr, "channels": 24, **FIXED}
        out[f"adam epsilon=1e-6 lr={lr:g}"] = {"optimizer": "adam", "learning_rate": lr, "epsilon": 1e-6, **FIXED}
    for lr in SGD_LRS:
        out[f"sgd lr={lr:g}"] = {"optimizer": "sgd", "learning_rate": lr, **FIXED}
    return out


if __name__ == "__main__":
    main("signals", signals.train, points(), steps=STEPS, seeds=SEEDS, objective="val/loss",
         infeasible_above=INFEASIBLE_ABOVE, fixed=FIXED)
