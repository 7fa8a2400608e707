"""The exploitation phase: Bayesian optimization once exploration is done.

The playbook ("After exploration concludes"): once the search space is
understood, quasi-random search has done its job, and Bayesian optimization
can find the best configuration within it. A study with ``design:
bayesian`` proposes its trials one at a time through Optuna's samplers in
ask/tell mode, over tunebook's own store:

- warm start: the completed and infeasible trials of the ``parent`` study
  (the quasi-random exploration) are told to the sampler first;
- infeasible trials are *constraints*, never a made-up bad value: they enter
  as pruned trials with a violated constraint (TPE models them as the
  infeasible group); Optuna's GP sampler models only trials with an
  objective, so for it a proposal whose nearest evaluated neighbours are
  mostly infeasible (a closeness-weighted vote of three) is set aside (as a
  running trial, which its acquisition avoids) and the sampler asked again;
- trials still running (or proposed and not yet claimed) are passed as
  running trials, so parallel workers do not all get the same point;
- proposals are atomic: the store assigns the trial's number, its training
  seed and its point in one transaction (:func:`tunebook.proposing.propose_next`),
  and the sampler is seeded from the study's seed and that number, so two
  workers asking at once never add the same point or the same seed.

:func:`refined_space` proposes narrower bounds from the exploration study.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tunebook.designs.base import History, PastTrial, ProposingDesign, register_design
from tunebook.errors import MissingExtraError, SpecError
from tunebook.space import Choice, Float, Int, Param, SearchSpace

SAMPLERS = ("gp", "tpe")
CONSTRAINT = "constraints:infeasible"
#: GP proposals: how many evaluated neighbours vote on feasibility, and how many proposals may be set aside.
NEIGHBOURS = 3
MAX_REJECTIONS = 10


def _optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise MissingExtraError("optuna", "bo", "design: bayesian") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def distribution(param: Param) -> Any:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if isinstance(param, Float):
        return FloatDistribution(param.low, param.high, log=param.scale == "log")
    if isinstance(param, Int):
        return IntDistribution(param.low, param.high, log=param.scale == "log")
    return CategoricalDistribution(list(param.values))


def _in_space(space: SearchSpace, params: dict[str, Any]) -> bool:
    for name, p in space.params.items():
        if name not in params:
            return False
        v = params[name]
        if isinstance(p, Choice):
            if v not in p.values:
                return False
        elif not (p.low <= v <= p.high):
            return False
    return True


def _frozen(optuna: Any, space: SearchSpace, dists: dict[str, Any], t: PastTrial) -> Any | None:
    """``t`` (its params with its study's fixed values) as an Optuna trial; None when outside ``space``."""
    params = dict(t.params)
    if not _in_space(space, params):
        return None  # an exploration point outside this study's space
    values = {k: params[k] for k in dists}
    if t.state == "completed" and t.value is not None and math.isfinite(t.value):
        return optuna.trial.create_trial(params=values, distributions=dists, value=float(t.value),
                                         system_attrs={CONSTRAINT: 0.0})
    if t.state == "infeasible":
        # no objective was observed: a pruned trial whose constraint is violated, with no value
        return optuna.trial.create_trial(params=values, distributions=dists, state=optuna.trial.TrialState.PRUNED,
                                         system_attrs={CONSTRAINT: 1.0})
    if t.state in ("running", "pending"):  # pending: proposed by another worker, not claimed yet
        return optuna.trial.create_trial(params=values, distributions=dists, state=optuna.trial.TrialState.RUNNING)
    return None


def _unit(space: SearchSpace, params: dict[str, Any]) -> np.ndarray:
    return np.array([space.params[k].to_unit(params[k]) for k in space.params], dtype=float)


def infeasible_neighbourhood(space: SearchSpace, point: dict[str, Any], known: list[tuple[dict[str, Any], bool]],
                             k: int = NEIGHBOURS) -> bool:
    """Is ``point`` in a region known to be infeasible?

    The ``k`` evaluated trials nearest to it (in scaled coordinates) vote,
    weighted by closeness; most of the weight infeasible means yes.
    """
    if not known:
        return False
    x = _unit(space, point)
    ranked = sorted((float(np.linalg.norm(_unit(space, p) - x)), bad) for p, bad in known)[:k]
    weights = [1.0 / (d + 0.02) for d, _ in ranked]
    return sum(w for w, (_, bad) in zip(weights, ranked) if bad) > 0.5 * sum(weights)


def sampler_seed(study_seed: int, number: int) -> int:
    """The sampler's seed for proposing trial ``number``: distinct per trial, the same on every worker."""
    return int(np.random.SeedSequence([study_seed, number, 0x0B0]).generate_state(1)[0] & 0x7FFFFFFF)


def propose(history: History, *, sampler: str = "gp", number: int | None = None) -> dict[str, Any]:
    """The sampler's next point (as trial ``number``), given the study's trials and its parent's.

    A point equal to one the study already holds is set aside and the sampler
    asked again (as for GP proposals in an infeasible region).
    """
    if sampler not in SAMPLERS:
        raise SpecError("sampler", f"unknown sampler {sampler!r}", "use 'gp' or 'tpe'")
    optuna = _optuna()
    space = history.space
    dists = {k: distribution(p) for k, p in space.params.items()}
    own = [PastTrial(t.number, {**space.fixed, **t.params}, t.seed, t.state, t.value) for t in history.trials]
    history_trials = [t for t in (*history.prior, *own) if t.state in ("completed", "infeasible", "running", "pending")]
    seed = history.seed
    if number is None:
        number = len(history.trials)
    taken = [dict(t.params) for t in own if t.state in ("completed", "infeasible", "running", "pending")]
    if sampler == "tpe":
        chosen = optuna.samplers.TPESampler(seed=sampler_seed(seed, number), constant_liar=True, n_startup_trials=5,
                                            multivariate=True)
    else:
        chosen = optuna.samplers.GPSampler(seed=sampler_seed(seed, number), n_startup_trials=5)
    direction = "minimize" if history.mode == "min" else "maximize"
    ostudy = optuna.create_study(direction=direction, sampler=chosen)
    frozen = [f for t in history_trials if (f := _frozen(optuna, space, dists, t)) is not None]
    ostudy.add_trials(frozen)
    known = [({k: f.params[k] for k in dists}, f.state == optuna.trial.TrialState.PRUNED)
             for f in frozen if f.state != optuna.trial.TrialState.RUNNING]
    for _ in range(MAX_REJECTIONS):
        trial = ostudy.ask(dists)
        point = dict(trial.params)
        duplicate = {**space.fixed, **point} in taken
        if not duplicate and (sampler == "tpe" or not infeasible_neighbourhood(space, point, known)):
            return point
        # GP cannot see infeasible trials, and a repeated point teaches nothing: this proposal
        # stays running (never told), so the next ask moves away from it
    return point


@register_design("bayesian", proposes=True, samplers=SAMPLERS, replicated=True)
class BayesianDesign(ProposingDesign):
    """Bayesian optimization (Optuna's GP or TPE sampler), warm-started from the ``parent`` study's trials."""

    def propose(self, history: History, number: int) -> dict[str, Any] | None:
        return propose(history, sampler=history.sampler or SAMPLERS[0], number=number)


def refined_space(parent: Any, *, top_share: float = 0.2, margin: float = 0.25) -> dict[str, dict[str, Any]]:
    """Narrower bounds for each numeric hyperparameter: the span of the best trials, widened by ``margin``.

    A side where the best trials touch the original boundary keeps that boundary.
    """
    ranked = sorted((t for t in parent.trials(["completed"]) if t.value is not None),
                    key=lambda t: t.value if parent.objective[1] == "min" else -t.value)
    top = ranked[: max(3, int(math.ceil(top_share * len(ranked))))]
    out: dict[str, dict[str, Any]] = {}
    for name, p in parent.space.params.items():
        units = [p.to_unit(t.params[name]) for t in top if name in t.params]  # conditional: its groups only
        if isinstance(p, Choice) or not units:
            continue
        lo, hi = min(units), max(units)
        pad = margin * max(hi - lo, 0.05)
        lo, hi = max(0.0, lo - pad), min(1.0, hi + pad)
        low, high = p.from_unit(lo), p.from_unit(hi)
        spec = {"min": low, "max": high}
        if p.scale == "log":
            spec["scale"] = "log"
        if isinstance(p, Int):
            spec["type"] = "int"
        out[name] = spec
    return out
