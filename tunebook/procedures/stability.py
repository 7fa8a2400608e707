"""Finding and fixing training instability: the stability check, warmup and clipping.

The playbook ("How can optimization failures be debugged and mitigated?"):

1. From a learning-rate sweep, take the best rate lr* and look at the training
   loss of the rates just above it. Loss going up instead of down (or diverging)
   there means instability limits the usable rate: fixing it should help.
2. Early instability can hide between evaluations: train ~500 steps at 2 x lr*
   and evaluate every step.
3. Warmup: ramp from 0 to a ``base_learning_rate`` 10x the unstable rate over
   ``warmup_steps``, then hold it for at least ``2 x warmup_steps``. Sweep
   ``warmup_steps`` over orders of magnitude, at most 10% of max_train_steps;
   keep the shortest warmup that trains stably. The new run is
   ``max_train_steps + warmup_steps`` long; above 5% of max_train_steps, raise
   max_train_steps.
4. Clipping: threshold at the 90th percentile of logged unclipped gradient
   norms; clipping over half of the updates is too aggressive.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tunebook.errors import SpecError
from tunebook.analysis.checks import Thresholds, loss_rising, loss_spikes, recommend_clipping
from tunebook.procedures._common import Conclusion, best_params, derived_study, free_name, record, study_train
from tunebook.space import SearchSpace
from tunebook.study import Study

EARLY_STEPS = 500
WARMUP_FACTOR = 10.0
MAX_WARMUP_SHARE = 0.10
LONG_WARMUP_SHARE = 0.05
#: In the early check, a loss that climbs back above its best so far by this share of its first value is unstable.
EARLY_RISE = 0.25


@dataclass(frozen=True)
class RateCheck:
    learning_rate: float
    state: str
    unstable: bool
    reason: str


def curve_instability(steps: np.ndarray, loss: np.ndarray, th: Thresholds | None = None) -> str | None:
    """Why a training-loss curve looks unstable (loss going up, spikes), or None."""
    th = th or Thresholds()
    finite = np.isfinite(loss)
    if not finite.all():
        return "the loss became NaN/Inf"
    rising = loss_rising(steps, loss, th)
    if rising is not None:
        return f"the loss climbs back after step {rising['min_step']}"
    spikes = loss_spikes(steps, loss, th)
    if spikes is not None:
        return f"{spikes['spikes']} loss spike(s), the first at step {spikes['first_spike_step']}"
    return None


def trial_instability(study: Study, trial: Any, metric: str) -> str | None:
    """:func:`curve_instability` of one finished trial's ``metric`` curve (None when too short to tell)."""
    curve = study.metrics(trial, [metric]).get(metric, [])
    if len(curve) < 4:
        return None
    return curve_instability(np.array([s for s, _ in curve]), np.array([v for _, v in curve], dtype=float))


def learning_rate_of(study: Study, params: dict[str, Any], param: str) -> float:
    """The learning rate ``param`` in ``params``; a :class:`SpecError` naming ``--param`` when the study has none."""
    if param not in params:
        raise SpecError("--param", f"study {study.name!r} has no hyperparameter {param!r}", "name its learning-rate hyperparameter")
    return float(params[param])


def scientific_values(study: Study, params: dict[str, Any]) -> dict[str, Any]:
    """The scientific values of a trial's parameters: the group it belongs to ({} without scientific ones)."""
    return {k: params[k] for k in study.space.scientific if k in params}


def group_label(values: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in values.items())


def group_best(study: Study, group: dict[str, Any] | None = None) -> tuple[dict[str, Any], Any]:
    """Every hyperparameter of the best trial of one group (the scientific values ``group``), or of the study."""
    if not group:
        return best_params(study)
    s = 1.0 if study.objective[1] == "min" else -1.0
    done = [t for t in study.trials(["completed"]) if t.value is not None
            and all(t.params.get(k) == v for k, v in group.items())]
    if not done:
        raise SpecError("--group", f"study {study.name!r} has no completed trial with {group_label(group)}",
                        "name a group that has completed trials")
    trial = min(done, key=lambda t: (s * t.value, t.number))
    return {**study.space.fixed, **trial.params}, trial


def rate_range(study: Study, values: dict[str, Any], param: str) -> tuple[float, float] | None:
    """The range of ``param`` in the group with these scientific values (its own, in a conditional study)."""
    p = study.space.params_for(values).get(param)
    return (float(p.low), float(p.high)) if p is not None and hasattr(p, "low") else None


def check(study: Study, *, param: str = "learning_rate", above: int = 3, train_metric: str = "train/loss",
          group: dict[str, Any] | None = None) -> Conclusion:
    """lr*, the rates just above it, and whether they are unstable (recorded in the notebook).

    Judged within one group (``group``: scientific values; default: the best trial's), over that group's
    trials and, in a conditional study, its own range of ``param``: another group's rates (another range,
    another optimizer) say nothing about this one's stability.
    """
    best, best_trial = group_best(study, group)
    lr_star = learning_rate_of(study, best, param)
    values = scientific_values(study, best)
    label = group_label(values)
    candidates = []
    for t in study.trials(["completed", "infeasible"]):
        params = {**study.space.fixed, **t.params}
        if param not in params or scientific_values(study, params) != values:
            continue
        rate = float(params[param])
        if rate > lr_star:
            candidates.append((rate, t))
    candidates.sort(key=lambda c: c[0])
    checks = []
    for rate, t in candidates[:above]:
        if t.state == "infeasible":
            checks.append(RateCheck(rate, t.state, True, f"diverged: {t.infeasible_reason}"))
            continue
        why = trial_instability(study, t, train_metric)
        checks.append(RateCheck(rate, t.state, why is not None, why or "stable"))
    unstable = [c for c in checks if c.unstable]
    # a gradual edge: the rates just above train (worse), and every rate from some point up diverged
    first = len(candidates)
    while first > 0 and candidates[first - 1][1].state == "infeasible":
        first -= 1
    diverged_from = candidates[first][0] if len(candidates) - first >= 2 and not unstable else None
    span = rate_range(study, values, param)
    evidence: dict[str, Any] = {
        "lr_star": lr_star, "best_trial": best_trial.number, "param": param, "group": label,
        "range": list(span) if span else None,
        "rates_above": [c.__dict__ for c in checks],
        "unstable_learning_rate": unstable[0].learning_rate if unstable else diverged_from,
        "diverged_from": diverged_from,
    }
    where = f" in {label}" if label else ""
    if not checks:
        ceiling = span is not None and lr_star >= span[1] * (1 - 1e-9)
        text = (f"lr* = {lr_star:.3g} is the largest rate tried{where}"
                + (f" (its range {span[0]:.3g} to {span[1]:.3g})" if span else "") + ": no rate above it to inspect. "
                + ("It sits at the top of the range: widen the range upwards" if ceiling else "Sweep higher rates")
                + " to see where training becomes unstable.")
        return record(study, Conclusion("stability", text, evidence, concluded=False))
    if unstable:
        first = unstable[0]
        text = (f"Instability limits the learning rate{where}: lr* = {lr_star:.3g}, and {first.learning_rate:.3g} just "
                f"above it is unstable ({first.reason}). Fixing it (warmup, clipping) should allow higher rates and "
                f"better results: run `tunebook warmup {study.name}`.")
    elif diverged_from is not None:
        text = (f"lr* = {lr_star:.3g}{where} sits at the edge of stability: the {len(checks)} rate(s) just above it train "
                f"stably, and every rate from {diverged_from:.3g} up diverged ({len(candidates) - first} trials). Fixing "
                f"the instability (warmup, clipping) may allow higher rates: run `tunebook warmup {study.name}`.")
    else:
        text = (f"No instability just above lr* = {lr_star:.3g}{where}: the rates above it train stably "
                "but worse. Instability is not what limits this workload.")
    return record(study, Conclusion("stability", text, evidence))


def check_groups(study: Study, *, param: str = "learning_rate", above: int = 3,
                 train_metric: str = "train/loss") -> list[Conclusion]:
    """:func:`check` in every group that has ``param`` and a completed trial, each in its own range."""
    seen: list[dict[str, Any]] = []
    for t in study.trials(["completed"]):
        params = {**study.space.fixed, **t.params}
        values = scientific_values(study, params)
        if param in params and t.value is not None and values not in seen:
            seen.append(values)
    return [check(study, param=param, above=above, train_metric=train_metric, group=v) for v in seen]


def early_instability_study(study: Study, *, param: str = "learning_rate", steps: int = EARLY_STEPS,
                            seeds: int = 1, train: str | None = None, group: dict[str, Any] | None = None) -> Study:
    """~500 steps at 2 x lr*, evaluated every step (the playbook's early-instability check).

    It runs without the study's ``infeasible_if`` (a loss rule would stop the
    very instability it looks for); NaN/Inf still stop a trial. ``group``: the scientific values whose
    best trial is read (default: the study's best).
    """
    best, trial = group_best(study, group)
    lr = 2 * learning_rate_of(study, best, param)
    ref = train or study_train(study)[0]
    fixed = {**best, param: lr, "eval_every": 1}
    name = f"{study.name}-early-instability"
    existing = study.storage.get_study(name)
    if existing is not None and (existing.spec.get("derived") is None or existing.max_train_steps != steps):
        name = free_name(study, name)
    return derived_study(
        study, name, kind="early-instability", trial=trial.number, train=ref,
        space=SearchSpace(fixed=fixed, allow_fixed_only=True), trials=seeds,
        design="replicates", max_train_steps=steps, infeasible_if={},
        goal=f"Early instability check: {steps} steps at 2 x lr* = {lr:.3g}, evaluated every step",
    )


def early_decision(curves: list[tuple[str, str | None, np.ndarray, np.ndarray]], *, learning_rate: float) -> Conclusion:
    """From ``(state, infeasible reason, steps, train loss)`` per run: diverges, unstable then recovers, or stable (pure)."""
    evidence: dict[str, Any] = {"learning_rate": learning_rate, "runs": []}
    verdicts = []
    for state, reason, steps, loss in curves:
        run: dict[str, Any] = {"state": state, "reason": reason}
        if state == "infeasible" or (len(loss) and not np.isfinite(loss).all()):
            verdict = "diverges"
            run["why"] = reason or "the loss became NaN/Inf"
        elif len(loss) < 8:
            verdict = "unknown"
            run["why"] = f"{len(loss)} loss points: too short to tell"
        else:
            k = max(2, len(loss) // 10)
            start, end = float(loss[0]), float(np.median(loss[-k:]))
            half = len(loss) // 2
            why = curve_instability(steps[:half], loss[:half])
            rise = loss[:half] - np.minimum.accumulate(loss[:half])  # how far the loss climbed back above its best so far
            worst = int(np.argmax(rise))
            run.update({"initial_loss": start, "final_loss": end, "early_rise": float(rise[worst])})
            if why is None and rise[worst] > EARLY_RISE * start:
                why = f"the loss climbed back by {rise[worst]:.3g} at step {int(steps[worst])}"
            if end >= start:
                verdict, run["why"] = "diverges", f"the loss ends at {end:.3g}, not below its start ({start:.3g})"
            elif why is not None:
                verdict, run["why"] = "recovers", why
            else:
                verdict, run["why"] = "stable", f"the loss fell from {start:.3g} to {end:.3g} without spikes"
        run["verdict"] = verdict
        evidence["runs"].append(run)
        verdicts.append(verdict)
    order = ("diverges", "recovers", "stable")
    known = [v for v in verdicts if v in order]
    if not known:
        return Conclusion("early-instability", "Not concluding: the early-instability runs are too short or did not "
                          "finish; run them to the end.", evidence, concluded=False)
    verdict = min(known, key=order.index)
    evidence["verdict"] = verdict
    first = next(r for r in evidence["runs"] if r["verdict"] == verdict)
    text = {
        "diverges": f"Diverges at 2 x lr* = {learning_rate:.3g} ({first['why']}): this rate is out of reach without "
                    "warmup or clipping; lr* itself may sit close to the edge.",
        "recovers": f"Unstable early, then recovers at 2 x lr* = {learning_rate:.3g} ({first['why']}): early "
                    "instability; warmup recommended (`tunebook warmup`).",
        "stable": f"Stable at 2 x lr* = {learning_rate:.3g} ({first['why']}): no early instability.",
    }[verdict]
    return Conclusion("early-instability", text, evidence)


def analyze_early(source: Study, early: Study, *, param: str = "learning_rate",
                  train_metric: str = "train/loss") -> Conclusion:
    """Decide from a finished early-instability study; recorded in the notebook of ``source``."""
    curves = []
    for t in early.trials(["completed", "infeasible", "failed"]):
        curve = early.metrics(t, [train_metric]).get(train_metric, [])
        reason = t.infeasible_reason or (f"failed: {(t.error or '').strip().splitlines()[-1:]}" if t.state == "failed" else None)
        curves.append((t.state, reason, np.array([s for s, _ in curve]), np.array([v for _, v in curve], dtype=float)))
    result = early_decision(curves, learning_rate=float(early.space.fixed[param]))
    result.studies = [early.name]
    return record(source, result)


def warmup_steps_grid(max_train_steps: int) -> list[int]:
    """Orders of magnitude from 10, the largest at most 10% of max_train_steps."""
    cap = max(1, int(MAX_WARMUP_SHARE * max_train_steps))
    grid = [v for v in (10, 100, 1000, 10_000, 100_000, 1_000_000) if v <= cap]
    return grid or [cap]


def warmup_study(study: Study, unstable_learning_rate: float, *, param: str = "learning_rate",
                 factor: float = WARMUP_FACTOR, grid: list[int] | None = None, train: str | None = None,
                 group: dict[str, Any] | None = None) -> Study:
    """The warmup study: base rate ``factor`` x the unstable one, warmup_steps over orders of magnitude, on the
    best trial of ``group`` (scientific values; default: the study's best)."""
    if not unstable_learning_rate > 0:
        raise SpecError("--unstable-lr", f"must be positive, got {unstable_learning_rate!r}", "run `tunebook stability` first")
    best, source_trial = group_best(study, group)
    grid = grid or warmup_steps_grid(study.max_train_steps)
    base_lr = factor * unstable_learning_rate
    # Every trial runs warmup plus at least 2 x warmup at the base rate (constant after the ramp).
    steps = 3 * max(grid)
    fixed = {k: v for k, v in best.items() if k != "warmup_steps"}
    fixed.update({param: base_lr, "schedule": "constant"})
    ref = train or study_train(study)[0]
    return derived_study(
        study, free_name(study, f"{study.name}-warmup"), kind="warmup", trial=source_trial.number, train=ref,
        space={"nuisance": {"warmup_steps": {"choice": grid}}, "fixed": fixed},
        trials=len(grid), design="grid", max_train_steps=steps,
        goal=f"Warmup: shortest warmup_steps that trains stably at {base_lr:.3g} ({factor:g} x the unstable rate)",
    )


def warmup_decision(points: list[tuple[int, str, str | None]], *, max_train_steps: int, base_lr: float) -> Conclusion:
    """From ``(warmup_steps, state, instability or None)``: the shortest stable warmup (pure)."""
    stable = sorted(w for w, state, why in points if state == "completed" and why is None)
    evidence: dict[str, Any] = {"points": [{"warmup_steps": w, "state": s, "instability": why} for w, s, why in points],
                                "base_learning_rate": base_lr, "max_train_steps": max_train_steps}
    if not stable:
        return Conclusion("warmup", f"No warmup in {sorted(w for w, _, _ in points)} trains stably at {base_lr:.3g}: "
                          "try longer warmups, gradient clipping, or a lower base rate (e.g. 3x instead of 10x).",
                          evidence, concluded=False)
    shortest = stable[0]
    total = max_train_steps + shortest
    evidence.update({"warmup_steps": shortest, "new_max_train_steps": total})
    text = (f"Shortest stable warmup: {shortest} steps at base rate {base_lr:.3g}. Prepend it to the baseline's schedule "
            f"and train {max_train_steps} + {shortest} = {total} steps.")
    if shortest > LONG_WARMUP_SHARE * max_train_steps:
        text += (f" The warmup is over {LONG_WARMUP_SHARE:.0%} of max_train_steps: raise max_train_steps "
                 "to keep the post-warmup budget.")
        evidence["raise_max_train_steps"] = True
    return Conclusion("warmup", text, evidence)


def analyze_warmup(source: Study, warm: Study, *, param: str = "learning_rate", train_metric: str = "train/loss") -> Conclusion:
    """Decide from a finished warmup study; recorded in the notebook with the clipping advice."""
    points = []
    norms: list[float] = []
    for t in warm.trials():
        why = None
        if t.state == "completed":
            why = trial_instability(warm, t, train_metric)
            norms += [v for _, v in warm.metrics(t, ["grad/norm"]).get("grad/norm", [])]
        elif t.state == "infeasible":
            why = t.infeasible_reason
        points.append((int(t.params["warmup_steps"]), t.state, why))
    base_lr = float(warm.space.fixed[param])
    result = warmup_decision(points, max_train_steps=source.max_train_steps, base_lr=base_lr)
    if norms:
        clip = recommend_clipping(np.array(norms))
        result.evidence["clipping"] = clip
        result.conclusion += (f" If instability remains, clip gradients at about {clip['recommended_threshold']:.3g} "
                              "(90th percentile of the unclipped norms).")
    result.studies = [warm.name]
    return record(source, result)


def recorded_unstable_rate(study: Study, group: dict[str, Any] | None = None) -> float | None:
    """The unstable learning rate the last stability check of ``study`` (of ``group`` when given: another
    group's rate belongs to another range) recorded in the notebook, or None."""
    notes = study.storage.get_notes(study=study.name, kind="stability")
    label = group_label(group) if group else None
    return next((n["evidence"]["unstable_learning_rate"] for n in reversed(notes) if n["evidence"].get("unstable_learning_rate")
                 and (label is None or n["evidence"].get("group", "") == label)), None)
