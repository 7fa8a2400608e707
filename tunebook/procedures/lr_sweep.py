"""Picking an initial max_train_steps with a learning-rate sweep.

The playbook ("Algorithm for picking an initial candidate for max_train_steps
using a learning rate sweep"): with a constant learning rate and no
regularization, sweep the rate on a grid, each trial for N steps; the step at
which the *fastest* trial first reaches "perfect" training performance (a
threshold on a training metric) is the initial ``max_train_steps``. The sweep
must bracket the best rate: when the fastest rate sits at an edge of the grid,
the answer may lie outside it, and the procedure refuses to conclude.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tunebook.procedures._common import Conclusion


@dataclass(frozen=True)
class SweepPoint:
    learning_rate: float
    state: str
    perfect_at: int | None  # first step where the metric reached the threshold
    group: str = ""  # the scientific values of its group ("optimizer=sgd"), "" without any


def first_step_at(steps: list[int], values: list[float], threshold: float, mode: str = "min") -> int | None:
    """The first step where ``values`` reach ``threshold`` (``<=`` for min, ``>=`` for max)."""
    for step, value in zip(steps, values):
        if value == value and (value <= threshold if mode == "min" else value >= threshold):
            return int(step)
    return None


def decide(points: list[SweepPoint], steps: int, metric: str, threshold: float) -> Conclusion:
    """The sweep's conclusion from its points (pure: tested on known answers).

    Points of several groups (a conditional sweep: each optimizer over its own range of rates) are judged
    each against its own group's grid: whether a group's fastest rate sits at an edge of *its* grid, and its
    own first step at the threshold. The sweep concludes when every group does; its max_train_steps is the
    largest of the groups' (every group's fastest rate reaches the threshold by then).
    """
    labels = list(dict.fromkeys(p.group for p in points))
    if len(labels) <= 1:
        return _decide_one(points, steps, metric, threshold)
    parts = {label: _decide_one([p for p in points if p.group == label], steps, metric, threshold) for label in labels}
    evidence: dict[str, Any] = {"steps": steps, "metric": metric, "threshold": threshold,
                                "groups": {label: c.evidence for label, c in parts.items()}}
    open_ = [label for label, c in parts.items() if not c.concluded]
    text = " ".join(f"[{label}] {c.conclusion}" for label, c in parts.items())
    if open_:
        return Conclusion("lr-sweep", f"Not concluding for {', '.join(open_)}. {text}", evidence, concluded=False)
    worst = max(parts, key=lambda label: parts[label].evidence["max_train_steps"])
    evidence.update({"max_train_steps": parts[worst].evidence["max_train_steps"], "slowest_group": worst})
    return Conclusion("lr-sweep", f"Initial max_train_steps = {evidence['max_train_steps']} (every group's fastest rate "
                      f"reaches the threshold by then; {worst} is the slowest). {text}", evidence)


def _decide_one(points: list[SweepPoint], steps: int, metric: str, threshold: float) -> Conclusion:
    grid = sorted({p.learning_rate for p in points})
    reached = [p for p in points if p.state == "completed" and p.perfect_at is not None]
    evidence: dict[str, Any] = {
        "grid": grid, "steps": steps, "metric": metric, "threshold": threshold,
        "points": [{"learning_rate": p.learning_rate, "state": p.state, "perfect_at": p.perfect_at} for p in points],
    }
    if not reached:
        return Conclusion("lr-sweep", f"No rate reached {metric} <= {threshold:g} within {steps} steps: "
                          "run the sweep longer (more steps) or check the threshold.", evidence, concluded=False)
    fastest = min(reached, key=lambda p: (p.perfect_at, p.learning_rate))
    evidence.update({"fastest_learning_rate": fastest.learning_rate, "max_train_steps": fastest.perfect_at})
    if fastest.learning_rate in (grid[0], grid[-1]):
        side = "lowest" if fastest.learning_rate == grid[0] else "highest"
        return Conclusion(
            "lr-sweep",
            f"Not concluding: the fastest rate ({fastest.learning_rate:.3g}) is the {side} of the grid, so a rate "
            f"beyond it may be faster still. Widen the grid past {fastest.learning_rate:.3g} and sweep again.",
            evidence, concluded=False,
        )
    return Conclusion(
        "lr-sweep",
        f"Initial max_train_steps = {fastest.perfect_at}: the fastest rate ({fastest.learning_rate:.3g}) reaches "
        f"{metric} <= {threshold:g} at step {fastest.perfect_at}.",
        evidence,
    )


def sweep_points(study: Any, metric: str, threshold: float, param: str = "learning_rate") -> list[SweepPoint]:
    """The points of a finished sweep study, each labelled with its group's scientific values (so that a
    conditional sweep, each group over its own range of ``param``, is judged group by group)."""
    mode = study.objective[1] if study.objective[0] == metric else "min"
    out = []
    for t in study.trials():
        if param not in t.params:
            continue
        perfect = None
        if t.state == "completed":
            curve = study.metrics(t, [metric]).get(metric, [])
            perfect = first_step_at([s for s, _ in curve], [v for _, v in curve], threshold, mode)
        label = ", ".join(f"{k}={t.params[k]}" for k in study.space.scientific if k in t.params)
        out.append(SweepPoint(float(t.params[param]), t.state, perfect, label))
    return out


#: What the sweep's premise holds off: a constant rate and no regularization (``--fixed`` may not set them).
PREMISE = ("schedule", "warmup_steps", "constant_steps", "weight_decay", "dropout", "label_smoothing", "l2",
           "l2_regularization", "mixup", "stochastic_depth", "drop_path", "grad_clip")


def premise_overrides(fixed: dict[str, Any]) -> list[str]:
    """The ``fixed`` overrides that break the sweep's premise (a schedule, warmup, regularization)."""
    out = []
    for key, value in fixed.items():
        k = key.lower()
        if k == "schedule" and value == "constant":
            continue
        if k in ("warmup_steps", "constant_steps") and value == 0:
            continue
        if k in PREMISE or "dropout" in k or "weight_decay" in k or "smoothing" in k:
            if k != "schedule" and k not in ("warmup_steps", "constant_steps") and value in (0, 0.0, None, False):
                continue  # turning regularization off is the premise itself
            out.append(key)
    return out


def sweep_space(low: float, high: float, points: int, fixed: dict[str, Any]) -> dict[str, Any]:
    """A log grid of constant learning rates, regularization off."""
    rates = np.geomspace(low, high, points).tolist()
    fixed = {"schedule": "constant", "weight_decay": 0.0, "warmup_steps": 0, **fixed}
    return {"nuisance": {"learning_rate": {"choice": rates}}, "fixed": fixed}


def run_sweep(
    name: str,
    *,
    train: str,
    storage: Any = None,
    low: float = 1e-4,
    high: float = 1.0,
    points: int = 7,
    steps: int = 1000,
    metric: str = "train/error",
    threshold: float = 0.0,
    fixed: dict[str, Any] | None = None,
    workers: int = 1,
    progress: bool = True,
    force: bool = False,
) -> Conclusion:
    """Create and run the sweep study, then decide and record the conclusion.

    ``fixed`` may not set a schedule, warmup or regularization (the sweep needs a
    constant rate and no regularization) unless ``force``, which the note records.
    """
    from tunebook.errors import SpecError

    broken = premise_overrides(fixed or {})
    if broken and not force:
        raise SpecError("--fixed", f"{', '.join(broken)} would break the sweep's premise (a constant learning rate, "
                        "no regularization)", "leave them out, or pass --force (the note will say so)")
    from tunebook.execution import run
    from tunebook.procedures._common import record
    from tunebook.study import create_study

    study = create_study(
        name, space=sweep_space(low, high, points, fixed or {}), objective=(metric, "min"), trials=points,
        max_train_steps=steps, storage=storage, train=train, design="grid",
        goal=f"Learning-rate sweep: the step at which the fastest constant rate reaches {metric} <= {threshold:g}",
        infeasible_if={"train/loss": {"above": 1e6}},
    )
    run(study, workers=workers, progress=progress)
    result = decide(sweep_points(study, metric, threshold), steps, metric, threshold)
    result.studies = [study.name]
    if broken:
        result.evidence["forced_overrides"] = {k: (fixed or {})[k] for k in broken}
        result.conclusion += (f" Forced: {', '.join(f'{k}={(fixed or {})[k]}' for k in broken)} break the sweep's premise "
                              "(constant rate, no regularization), so read this answer with care.")
    return record(study, result)
