"""Grid pilot for the sorting workload (tunebook.workloads.sorting: a tiny Transformer sorting 8 digits), the
third held-out workload: no threshold or check was tuned on it, and this pilot was committed before any
tunebook study ran on it. Every point is trained with SEEDS seeds for STEPS steps; a point's value is the best
``val/loss`` over its evaluations. Writes tests/assets/pilots/sorting.json, which
benchmarks/pilots/heldout_sorting.py reads as the truth of its studies (run this first).

    PYTHONPATH=$PWD nice -n 10 python benchmarks/pilots/pilot_sorting.py     # ~10 CPU-minutes (582 CPU-s measured)

The grid, decided before it ran: Adam's learning rate from 1e-7 (nothing moves) to 0.2 (past the optimum);
the same sweep around the optimum for each candidate scientific value (d_model 16, heads 4, ff_units 128,
weight decay 1e-4, dropout 0.1); plain SGD from 0.1 up to rates where every seed diverges (the stability
edge); 40-step runs (evaluated every 5) with a constant rate and with a cosine to zero (too short); then,
in a second stage, each group's best rate trained twice as long (600 steps: does training longer help?), and
Adam at 1e-3 (the top of the held-out range below the optimum) as well.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _pilot import ASSETS, main  # noqa: E402

from tunebook.workloads import sorting  # noqa: E402

STEPS = 300
SEEDS = [101, 202, 303, 404, 505]
FIXED = {"eval_every": 20, "schedule": "cosine"}  # cosine: the curves flatten by the last step
INFEASIBLE_ABOVE = 10.0  # train/loss in nats per token; the initial loss is about ln(10) = 2.3
LRS = [1e-7, 3e-7, 1e-6, 1e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 2e-2, 3e-2, 5e-2, 0.1, 0.2]
NEAR = [3e-3, 1e-2, 2e-2, 3e-2, 5e-2, 0.1]
#: group prefix -> its one change from the default model (Adam, d_model 32, 2 heads, ff_units 64, no dropout)
GROUPS = {"adam d_model=16": {"d_model": 16}, "adam heads=4": {"heads": 4}, "adam ff=128": {"ff_units": 128},
          "adam wd=1e-4": {"weight_decay": 1e-4}, "adam dropout=0.1": {"dropout": 0.1}}
SGD_LRS = [0.1, 0.3, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 6.0, 10.0]


def points() -> dict[str, dict]:
    out = {}
    for rate in LRS:
        out[f"adam lr={rate:g}"] = {"optimizer": "adam", "learning_rate": rate, **FIXED}
    for prefix, change in GROUPS.items():
        for rate in NEAR:
            out[f"{prefix} lr={rate:g}"] = {"optimizer": "adam", "learning_rate": rate, **change, **FIXED}
    for rate in SGD_LRS:
        out[f"sgd lr={rate:g}"] = {"optimizer": "sgd", "learning_rate": rate, **FIXED}
    return out


SHORT_STEPS = 40  # the too-short cases, evaluated every 5 steps
SHORT = {f"short {schedule} adam lr={rate:g}": {"optimizer": "adam", "learning_rate": rate, **FIXED,
                                                "schedule": schedule, "eval_every": 5}
         for schedule in ("cosine", "constant") for rate in (1e-2, 2e-2, 3e-2, 5e-2)}
LONG_STEPS = 600


def longer() -> dict[str, dict]:
    """Stage two: each group's best rate (in the saved first stage) trained LONG_STEPS steps, as "long <key>"."""
    saved = json.loads((ASSETS / "sorting.json").read_text())["points"]
    out = {}
    for prefix in ["adam", *GROUPS, "sgd"]:
        keys = [k for k, p in saved.items() if k.startswith(prefix + " lr=") and "steps" not in p
                and p["mean"] is not None and p["infeasible"] == 0]
        best = min(keys, key=lambda k: saved[k]["mean"])
        out["long " + best] = saved[best]["params"]
    # added before any tunebook study ran, for the held-out case whose range (1e-4 to 1e-3) lies below the
    # optimum: does its top rate gain from training longer? (its 300-step curve flattens as the cosine ends)
    out["long adam lr=0.001"] = saved["adam lr=0.001"]["params"]
    return out


if __name__ == "__main__":
    settings = dict(steps=STEPS, seeds=SEEDS, objective="val/loss", infeasible_above=INFEASIBLE_ABOVE, fixed=FIXED)
    main("sorting", sorting.train, points(), longer=[(SHORT_STEPS, SHORT)], **settings)
    main("sorting", sorting.train, points(), longer=[(SHORT_STEPS, SHORT), (LONG_STEPS, longer())], **settings)
