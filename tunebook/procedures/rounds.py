"""The next round of a compute-bound study, with its schedule extended.

The playbook ("Deciding how long to train when training is compute-bound",
round 2): "a few long runs" of the best configuration of round 1, with new
seeds, the base learning rate kept and the schedule extended the way that
keeps what was learned: a linear decay keeps its decay length and extends its
constant phase; a cosine decay keeps its base rate and stretches to the new
number of steps. Re-tuning is opt-in (``retune``): a reduced budget over a
range narrowed around the best value. The new study belongs to the same
experiment, one round later, with the old one as its parent and source.

On a conditional study, round 2 keeps the best configuration only: the best
trial's own conditional values (e.g. its ``beta1`` under ``optimizer=adam``),
never handed to another group.
"""

from __future__ import annotations

import fnmatch
import re
from typing import Any

from tunebook.errors import SpecError
from tunebook.procedures._common import Conclusion, best_params, derived_study, free_name, record, run_command, study_train
from tunebook.space import Choice, Float, Int, Param
from tunebook.study import Study


def extended_fixed(best: dict[str, Any], old_steps: int, new_steps: int) -> dict[str, Any]:
    """The fixed hyperparameters of round 2 (see :func:`tunebook.training.schedules.extend`)."""
    fixed = dict(best)
    schedule = fixed.get("schedule", "constant")
    if schedule == "linear":
        fixed["constant_steps"] = int(fixed.get("constant_steps", 0)) + (new_steps - old_steps)
    # cosine: the same base rate, decayed over the new max_train_steps; constant and rsqrt are unchanged
    return fixed


#: Schedules tunebook's training toolkit knows how to extend (tunebook.training.schedules.from_params).
KNOWN_SCHEDULES = ("constant", "linear", "cosine", "rsqrt")
#: Names a learning rate goes by.
RATE_PATTERNS = ("lr", "learning_rate", "*_lr", "*_learning_rate", "lr_*")
#: Default number of long runs, and the share of round 1's budget a re-tuned round gets.
DEFAULT_RUNS = 3
RETUNE_SHARE = 0.25
#: A re-tuned range spans this share of the old one (in its own scale), centered on the best value.
NARROW_SHARE = 0.25


def learning_rates(study: Study) -> list[str]:
    """The hyperparameters of ``study`` that are learning rates, by name (nuisance, conditional, then fixed)."""
    names = [*study.space.nuisance, *study.space.conditional_params, *study.space.fixed, *study.space.scientific]
    return [n for n in dict.fromkeys(names) if any(fnmatch.fnmatchcase(n.lower(), p) for p in RATE_PATTERNS)]


def narrowed(param: Param, best: Any) -> Param:
    """``param``'s range narrowed to :data:`NARROW_SHARE` of itself around ``best`` (choices are kept)."""
    if isinstance(param, Choice) or best is None:
        return param
    u = param.to_unit(best)
    lo, hi = max(0.0, u - NARROW_SHARE / 2), min(1.0, u + NARROW_SHARE / 2)
    low, high = param.from_unit(lo), param.from_unit(hi)
    if isinstance(param, Int):
        return Int(int(low), int(high)) if int(low) < int(high) else param
    return Float(low, high, param.scale) if low < high else param


def schedule_note(best: dict[str, Any]) -> tuple[str, bool]:
    """How round 2 treats the schedule, and whether tunebook knows it."""
    if "schedule" not in best:
        return ("no 'schedule' hyperparameter: tunebook cannot tell how the training function schedules its rate "
                "(unknown), so check that it follows trial.max_train_steps", False)
    name = best["schedule"]
    if name not in KNOWN_SCHEDULES:
        return (f"schedule {name!r} is unknown to tunebook: kept as it is, not extended; check that it follows "
                "trial.max_train_steps", False)
    how = {"constant": "nothing to extend", "rsqrt": "nothing to extend",
           "linear": "its decay length kept, its constant phase extended",
           "cosine": "its base rate kept, the decay stretched to the new steps"}[name]
    return f"schedule {name!r} extended ({how})", True


def next_round(study: Study, steps: int, *, name: str | None = None, trials: int | None = None,
               retune: tuple[str, ...] = (), train: str | None = None) -> Conclusion:
    """Create round N+1 from the best trial of ``study``, ``steps`` long.

    Default: ``trials`` (:data:`DEFAULT_RUNS`) long runs of the best
    configuration with new seeds, everything frozen (the base learning rate
    included) and the schedule extended. ``retune``: those tuned
    hyperparameters stay nuisance over a range narrowed around their best
    value, with a reduced budget (``trials``, default a quarter of round 1's).
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps <= study.max_train_steps:
        raise SpecError("--steps", f"must be more than the current max_train_steps ({study.max_train_steps})",
                        f"e.g. --steps {2 * study.max_train_steps}")
    if trials is not None and (isinstance(trials, bool) or not isinstance(trials, int) or trials < 1):
        raise SpecError("--trials", f"expected 1 or more, got {trials!r}", "e.g. --trials 3")
    retune = check_retune(study, tuple(retune))
    ref = train or study_train(study)[0]
    best, trial = best_params(study)
    space = study.space
    if space.conditional and retune:
        group = space.subspace(best)
        shared = {**space.nuisance, **group}
        wrong = [r for r in retune if r not in shared]
        if wrong:
            raise SpecError("--retune", f"{wrong[0]!r} is not tuned in the best trial's group "
                            f"({space.conditional_key(best)}): round 2 of a conditional study keeps the best configuration",
                            f"choose among {', '.join(sorted(shared)) or '(none)'}")
    params = space.params_for(best) if space.conditional else space.params
    keep = {k: narrowed(params[k], best.get(k)).to_spec() for k in retune}
    fixed = extended_fixed({k: v for k, v in best.items() if k not in keep}, study.max_train_steps, steps)
    round_ = study.record.round + 1
    base = re.sub(r"-r\d+$", "", study.name)
    name = name or free_name(study, f"{base}-r{round_}")
    rates = learning_rates(study)
    how, known = schedule_note(best)
    if keep:
        n = trials or max(2, round(RETUNE_SHARE * study.trials_budget))
        new_space: dict[str, Any] = {"nuisance": keep, "fixed": fixed}
        design = "quasi_random"
    else:
        n = trials or DEFAULT_RUNS
        new_space = {"fixed": fixed}
        design = "replicates"
    frozen_rates = [f"{r}={fixed[r]:.4g}" for r in rates if r in fixed and isinstance(fixed[r], (int, float))]
    goal = (f"Round {round_} of {study.name}: {steps} steps (was {study.max_train_steps}) from its best trial "
            f"#{trial.number}, " + (f"re-tuning {', '.join(sorted(keep))}" if keep else f"{n} long runs with new seeds"))
    new = derived_study(study, name, kind="next-round", trial=trial.number, train=ref, space=new_space, trials=n,
                        design=design, max_train_steps=steps, round=round_, goal=goal)
    frozen = sorted(k for k in fixed if k not in keep)
    evidence = {"from_trial": trial.number, "old_steps": study.max_train_steps, "new_steps": steps,
                "schedule": best.get("schedule"), "schedule_known": known, "fixed": fixed, "retuned": sorted(keep),
                "retuned_ranges": keep, "learning_rates": rates, "trials": n, "run": run_command(new.name, study.storage)}
    rate_text = (f"base learning rate kept ({', '.join(frozen_rates)})" if frozen_rates and not set(rates) & set(keep)
                 else f"learning rate re-tuned ({', '.join(r for r in rates if r in keep)})" if set(rates) & set(keep)
                 else "no learning rate found by name (lr, learning_rate, *_lr): name it so, or check it is kept")
    text = (f"Created {new.name} (round {round_}): {n} {'trials' if keep else 'long runs'} of {steps} steps from "
            f"#{trial.number} of {study.name}; {rate_text}; {how}. "
            f"Frozen: {', '.join(frozen)}. Re-tuned: {', '.join(f'{k} {_range(v)}' for k, v in keep.items()) or 'nothing'}. "
            f"Run it: {run_command(new.name, study.storage)}")
    return record(study, Conclusion("next-round", text, evidence, studies=[new.name]))


def _range(spec: dict[str, Any]) -> str:
    if "choice" in spec:
        return f"in {spec['choice']}"
    return f"{spec['min']:.3g}..{spec['max']:.3g}" + (" (log)" if spec.get("scale") == "log" else "")


def check_retune(study: Study, names: tuple[str, ...]) -> tuple[str, ...]:
    """``names`` if each is a tuned nuisance hyperparameter of ``study``; else a SpecError naming it."""
    tuned = sorted(n for n in study.space.params if n not in study.space.scientific)
    for name in names:
        if name in study.space.scientific:
            raise SpecError("--retune", f"{name!r} is a scientific hyperparameter of study {study.name!r}: round 2 "
                            "keeps the best configuration's value", f"re-tune nuisance ones: {', '.join(tuned) or '(none)'}")
        if name not in study.space.params:
            where = "a fixed value" if name in study.space.fixed else "not a hyperparameter"
            raise SpecError("--retune", f"{name!r} is {where} of study {study.name!r}",
                            f"choose among its tuned hyperparameters: {', '.join(tuned) or '(none)'}, or leave --retune out")
    return names
