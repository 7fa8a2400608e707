"""Grid pilot for the char_lm workload (tunebook.workloads.char_lm): the known answers its tests rely on.

Every point is trained with SEEDS seeds for STEPS steps; a point's value is the
best ``val/bpc`` over its evaluations. Writes tests/assets/pilots/char_lm.json.

    PYTHONPATH=$PWD nice -n 10 python benchmarks/pilots/pilot_char_lm.py     # ~2 CPU-minutes
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _pilot import main  # noqa: E402

from tunebook.workloads import char_lm  # noqa: E402

STEPS = 200
SEEDS = [101, 202, 303, 404]
FIXED = {"eval_every": 20}
INFEASIBLE_ABOVE = 5.0  # train/loss in nats; the initial loss is ln(28) = 3.3
ADAM_LRS = [3e-3, 1e-2, 2e-2, 4e-2, 8e-2]
SGD_LRS = [0.5, 1.0, 2.0, 4.0, 5.0, 6.0, 7.0, 8.0, 16.0, 32.0, 64.0]


def points() -> dict[str, dict]:
    out = {}
    for lr in ADAM_LRS:
        out[f"adam lr={lr:g}"] = {"optimizer": "adam", "learning_rate": lr, **FIXED}
        out[f"adam dropout=0.3 lr={lr:g}"] = {"optimizer": "adam", "learning_rate": lr, "dropout": 0.3, **FIXED}
    for lr in SGD_LRS:
        out[f"sgd lr={lr:g}"] = {"optimizer": "sgd", "learning_rate": lr, **FIXED}
    for lr in [1e-2, 2e-2, 4e-2]:
        out[f"adam epsilon=1e-6 lr={lr:g}"] = {"optimizer": "adam", "learning_rate": lr, "epsilon": 1e-6, **FIXED}
        out[f"adam hidden=40 lr={lr:g}"] = {"optimizer": "adam", "learning_rate": lr, "hidden_units": 40, **FIXED}
    return out


#: The training-length truth: Adam at its best rate trained twice as long (a point's value: best over 400 steps)
LONG_STEPS = 400
LONG = {"adam lr=0.02 (400 steps)": {"optimizer": "adam", "learning_rate": 0.02, **FIXED}}


if __name__ == "__main__":
    main("char_lm", char_lm.train, points(), steps=STEPS, seeds=SEEDS, objective="val/bpc",
         infeasible_above=INFEASIBLE_ABOVE, fixed=FIXED, longer=(LONG_STEPS, LONG))
