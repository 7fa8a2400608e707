"""Grid pilot for the `nothing_learned` check: where does each workload's learning start?

For each of the known-answer workloads (signals, regression, tabular, char_lm), with their pilots' settings
(steps, evaluation period, fixed hyperparameters, Adam), each point is trained with SEEDS seeds: a rate of 0
(the untrained model: what "learned nothing" reads), the rates of the tests' far-too-low range (1e-7, 1e-6)
and the workload's best rate from its own pilot. A point's value is the best objective over its evaluations;
its mean curve is kept. Writes tests/assets/pilots/nothing_learned.json, which
tests/analysis/test_nothing_learned.py reads as the truth (run this first).

    PYTHONPATH=$PWD nice -n 10 python benchmarks/pilots/pilot_nothing_learned.py     # ~2 CPU-minutes
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _pilot import ASSETS, run_grid, save  # noqa: E402

SEEDS = [101, 202, 303]
#: the far-too-low range the tests use, and each workload's best Adam rate (its own pilot's)
LOW = [1e-7, 1e-6]
BEST = {"signals": 1e-2, "regression": 3e-2, "tabular": 1e-2, "char_lm": 2e-2}
TRAIN = {"signals": "signals", "regression": "regression", "tabular": "tabular", "char_lm": "char_lm"}


def workload_pilot(name: str) -> dict:
    import importlib

    own = json.loads((ASSETS / f"{name}.json").read_text())
    train = importlib.import_module(f"tunebook.workloads.{TRAIN[name]}").train
    fixed = {**own["fixed"], "optimizer": "adam"}
    points = {f"lr={lr:g}": {**fixed, "learning_rate": lr} for lr in [0.0, *LOW, BEST[name]]}
    grid = run_grid(train, points, SEEDS, own["steps"], own["objective"], own["infeasible_above"])
    return {"steps": own["steps"], "objective": own["objective"], "fixed": fixed, "points": grid}


if __name__ == "__main__":
    names = sys.argv[1:] or list(BEST)
    print(save("nothing_learned", {"seeds": SEEDS, "low": LOW, "best": BEST,
                                   "workloads": {n: workload_pilot(n) for n in names}}))
