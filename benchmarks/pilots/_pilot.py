"""Seeded grid pilots: a workload's training function run directly, without tunebook's storage or analysis.

A pilot establishes a known answer before any tunebook study is judged: every
point of a grid is trained with several seeds, and each point's value is the
best validation objective over its evaluations (what tunebook stores as a
trial's value). A run is infeasible when its training loss is NaN or above
``infeasible_above`` (the studies' ``infeasible_if``); it is stopped there.

:func:`run_grid` returns ``{point key: {"values": [...], "mean", "sd", "infeasible"}}``
and :func:`save` writes it with the settings under ``tests/assets/pilots/``.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[2]
ASSETS = ROOT / "tests" / "assets" / "pilots"


class Diverged(Exception):
    pass


class PilotTrial:
    """What a training function sees of a tunebook trial: params, seed, max_train_steps, log, checkpoint."""

    def __init__(self, params: dict[str, Any], seed: int, max_train_steps: int, objective: str,
                 infeasible_above: float) -> None:
        self.params, self.seed, self.max_train_steps = params, seed, max_train_steps
        self.objective, self.infeasible_above = objective, infeasible_above
        self.curve: dict[int, float] = {}

    def log(self, step: int, **metrics: Any) -> None:
        loss = metrics.get("train/loss")
        if loss is not None and (step % 10 == 0 or step == self.max_train_steps):  # a host read every 10 steps
            value = float(loss)
            if math.isnan(value) or value > self.infeasible_above:
                raise Diverged(step)
        if self.objective in metrics:
            value = float(metrics[self.objective])
            if math.isnan(value):
                raise Diverged(step)
            self.curve[step] = value

    def checkpoint(self, step: int, state: Any) -> None:
        return None

    def restore(self) -> None:
        return None


def run_point(train: Callable[[Any], None], params: dict[str, Any], seed: int, steps: int, objective: str,
              infeasible_above: float, curves: list[dict[int, float]] | None = None) -> float | None:
    """The best objective of one run (min), or None when it diverged; its curve is appended to ``curves``."""
    trial = PilotTrial(params, seed, steps, objective, infeasible_above)
    try:
        train(trial)
    except Diverged:
        return None
    if curves is not None:
        curves.append(trial.curve)
    return min(trial.curve.values())


def summarize(values: list[float | None]) -> dict[str, Any]:
    done = [v for v in values if v is not None]
    return {"values": values, "infeasible": len(values) - len(done),
            "mean": statistics.fmean(done) if done else None,
            "sd": statistics.stdev(done) if len(done) > 1 else None}


def previous(name: str, settings: dict[str, Any]) -> dict[str, Any]:
    """The points of the saved pilot ``name`` when it was run with the same ``settings`` (else none):
    a pilot given more points trains only the new ones (``--fresh`` retrains all)."""
    path = ASSETS / f"{name}.json"
    if "--fresh" in sys.argv or not path.exists():
        return {}
    saved = json.loads(path.read_text())
    return saved["points"] if all(saved.get(k) == v for k, v in settings.items()) else {}


def run_grid(train: Callable[[Any], None], points: dict[str, dict[str, Any]], seeds: list[int], steps: int,
             objective: str, infeasible_above: float, done: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train every point of ``points`` with each seed; a point already in ``done`` with the same params is kept."""
    out = {}
    for key, params in points.items():
        if done and key in done and done[key]["params"] == params:
            out[key] = done[key]
            continue
        t0 = time.process_time()
        curves: list[dict[int, float]] = []
        values = [run_point(train, dict(params), s, steps, objective, infeasible_above, curves) for s in seeds]
        # the mean curve of the seeds that trained: {step: value}
        mean_curve = {str(k): statistics.fmean(c[k] for c in curves) for k in curves[0]} if curves else {}
        out[key] = {"params": params, **summarize(values), "curve": mean_curve}
        print(f"{key:40s} mean={out[key]['mean']} sd={out[key]['sd']} inf={out[key]['infeasible']} "
              f"({time.process_time() - t0:.1f} cpu-s)", file=sys.stderr, flush=True)
    return out


def save(name: str, payload: dict[str, Any]) -> Path:
    ASSETS.mkdir(parents=True, exist_ok=True)
    path = ASSETS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n")
    return path


def main(workload: str, train: Callable[[Any], None], points: dict[str, dict[str, Any]], *, steps: int,
         seeds: list[int], objective: str, infeasible_above: float, fixed: dict[str, Any],
         longer: tuple[int, dict[str, dict[str, Any]]] | list[tuple[int, dict[str, dict[str, Any]]]] | None = None,
         ) -> None:
    """Run a workload's pilot (only the points not saved yet with these settings) and save it. ``longer``:
    (steps, points), or a list of them, trained that many steps instead (stored with their ``steps``)."""
    settings = {"workload": f"tunebook.workloads.{workload}", "objective": objective, "steps": steps, "seeds": seeds,
                "infeasible_above": infeasible_above}
    done = previous(workload, settings)
    grid = run_grid(train, points, seeds, steps, objective, infeasible_above, done)
    for other_steps, other in [longer] if isinstance(longer, tuple) else longer or []:
        extra = run_grid(train, other, seeds, other_steps, objective, infeasible_above, done)
        grid.update({k: {**v, "steps": other_steps} for k, v in extra.items()})
    print(save(workload, {**settings, "fixed": fixed, "points": grid}))
