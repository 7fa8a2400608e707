"""Studies of the loop's tests on the small rings workload (:mod:`_tiny`), and how to build them.

The right answers, measured first by a seeded grid pilot (``_tiny.pilot``, 5 seeds a point, best val/loss of
each run; recorded in docs/guide/next-and-pursue.md):

at 100 steps   SGD  lr 0.1: 0.646 (sd 0.018)  0.3: 0.379  0.5: 0.240  1.0: 0.230 (sd 0.062)  1.5: 0.373  3.0: 0.643
               Adam lr 3e-3: 0.441  0.01: 0.167  0.02: 0.144 (sd 0.016)  0.03: 0.153  0.05: 0.153  0.1: 0.258

at 200 steps   SGD  lr 0.3: 0.181  0.5: 0.165  1.0: 0.158 (sd 0.014)  1.5: 0.182  2.0: 0.256
               Adam lr 0.01: 0.137  0.02: 0.132 (sd 0.002)  0.05: 0.141  0.1: 0.250 (one seed of five diverges)

so SGD's optimum lies in 0.5..1.0 and Adam's in 0.02..0.05, and Adam wins at both lengths: by ~0.09 at 100
steps (about 2 seed sd), by ~0.026 at 200 (about 2.5 pooled seed sd).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import _tiny

import tunebook as tb

TRAIN = f"{Path(_tiny.__file__).resolve()}:train"
#: SGD's pilot optimum at 100 steps (the grid points within one seed sd of the best mean), and Adam's.
SGD_OPTIMUM = (0.5, 1.0)
ADAM_OPTIMUM = (0.02, 0.05)


def lr(lo: float, hi: float) -> dict[str, Any]:
    return {"learning_rate": {"min": lo, "max": hi, "scale": "log"}}


def optimizers(name: str = "rings-opt", *, conditional: bool = False, trials: int = 16, steps: int = 100,
               evals: int = 10) -> dict[str, Any]:
    """Adam against SGD with a learning-rate range too low for SGD (1e-3..0.3: its optimum is 0.5..1.0) that holds
    Adam's (0.02..0.05, well inside: at 0.3 Adam's pilot is far worse)."""
    space: dict[str, Any] = {"scientific": {"optimizer": {"choice": ["adam", "sgd"]}},
                             "fixed": {"eval_every": max(1, steps // evals)}}
    if conditional:
        space["conditional"] = {"optimizer=adam": lr(1e-3, 0.3), "optimizer=sgd": lr(1e-3, 0.3)}
    else:
        space["nuisance"] = lr(1e-3, 0.3)
    return {"study": name, "goal": "Is Adam better than SGD on the rings?", "train": TRAIN,
            "objective": {"metric": "val/loss", "mode": "min"}, "trials": trials, "max_train_steps": steps,
            "search_space": space, "replicates": 0}  # trial variance measured by the loop's retrains (pilots set before
                                                      # the replicate phase existed)


def create(spec: dict[str, Any], url: str) -> tb.Study:
    spec = dict(spec)
    name = spec.pop("study")
    return tb.create_study(name, space=spec.pop("search_space"), storage=url, **spec)


def build(spec: dict[str, Any], url: str) -> tb.Study:
    study = create(spec, url)
    tb.run(study, _tiny.train, workers=0, progress=False)
    return study
