"""The next round of a compute-bound study, with its schedule extended.

The playbook ("Deciding how long to train when training is compute-bound",
round 2): train longer with the best configuration of round 1, extending the
learning-rate schedule the way that keeps what was learned: a linear decay
keeps its decay length and extends its constant phase; a cosine decay keeps
its base rate and stretches to the new number of steps. The new study belongs
to the same experiment, one round later, with the old one as its parent.
"""

from __future__ import annotations

import re
from typing import Any

from tunebook._errors import SpecError
from tunebook.procedures._common import Conclusion, best_params, derived_study, record
from tunebook.study import Study


def extended_fixed(best: dict[str, Any], old_steps: int, new_steps: int) -> dict[str, Any]:
    """The fixed hyperparameters of round 2 (see :func:`tunebook.training.schedules.extend`)."""
    fixed = dict(best)
    schedule = fixed.get("schedule", "constant")
    if schedule == "linear":
        fixed["constant_steps"] = int(fixed.get("constant_steps", 0)) + (new_steps - old_steps)
    # cosine: the same base rate, decayed over the new max_train_steps; constant and rsqrt are unchanged
    return fixed


def next_round(study: Study, steps: int, *, name: str | None = None, trials: int | None = None,
               retune: tuple[str, ...] = ("learning_rate",)) -> Conclusion:
    """Create round N+1: the best configuration, ``steps`` long, the schedule extended, ``retune`` kept as nuisance."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps <= study.max_train_steps:
        raise SpecError("--steps", f"must be more than the current max_train_steps ({study.max_train_steps})",
                        f"e.g. --steps {2 * study.max_train_steps}")
    best, trial = best_params(study)
    keep = {k: p.to_spec() for k, p in study.space.params.items() if k in retune}
    scientific = {k: p.to_spec() for k, p in study.space.scientific.items()}
    fixed = extended_fixed({k: v for k, v in best.items() if k not in keep and k not in scientific}, study.max_train_steps, steps)
    round_ = study.record.round + 1
    base = re.sub(r"-r\d+$", "", study.name)
    name = name or f"{base}-r{round_}"
    space: dict[str, Any] = {"scientific": scientific, "nuisance": keep, "fixed": fixed}
    if not keep and not scientific:
        space = {"fixed": fixed}
    new = derived_study(
        study, name, space=space, trials=trials or (study.trials_budget if keep or scientific else 1),
        design="quasi_random" if keep or scientific else "replicates", max_train_steps=steps, round=round_,
        goal=f"Round {round_} of {study.name}: {steps} steps (was {study.max_train_steps}) with the best configuration "
             f"(#{trial.number}) and its schedule extended",
    )
    evidence = {"from_trial": trial.number, "old_steps": study.max_train_steps, "new_steps": steps,
                "schedule": best.get("schedule", "constant"), "fixed": fixed, "retuned": sorted(keep)}
    text = (f"Created {new.name} (round {round_}): {steps} steps from #{trial.number} of {study.name}, schedule "
            f"'{best.get('schedule', 'constant')}' extended as the playbook says"
            + (f", {', '.join(sorted(keep))} re-tuned." if keep else "."))
    return record(study, Conclusion("next-round", text, evidence, studies=[new.name]))


def check_retune(study: Study, names: tuple[str, ...]) -> tuple[str, ...]:
    """``names`` if each is a tuned (nuisance or scientific) hyperparameter of ``study``; else a SpecError naming it."""
    tuned = sorted(study.space.params)
    for name in names:
        if name not in study.space.params:
            where = "a fixed value" if name in study.space.fixed else "not a hyperparameter"
            raise SpecError("--retune", f"{name!r} is {where} of study {study.name!r}",
                            f"choose among its tuned hyperparameters: {', '.join(tuned) or '(none)'}, or --retune '' for none")
    return names
