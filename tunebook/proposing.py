"""Trials added while a study runs: a proposing design's next trial.

A proposing design (:mod:`tunebook.designs`) sees a :class:`History`, never the
study: :func:`history` builds it from the store, inside the store's transaction
that assigns the new trial's number and seed (:func:`propose_next`).
"""

from __future__ import annotations

from typing import Any

from tunebook.designs import History, PastTrial, get_design, trial_seed
from tunebook.storage.base import TrialRecord
from tunebook.study import Study, load_study


def past(record: TrialRecord, fixed: dict[str, Any] | None = None) -> PastTrial:
    """A stored trial as a design sees it (``fixed``: values merged into its params)."""
    return PastTrial(record.number, {**(fixed or {}), **record.params}, record.seed, record.state, record.value)


def history(study: Study) -> History:
    """The study's trials (and its ``parent``'s, the warm start of a proposing design) as a :class:`History`."""
    spec = study.record.spec
    parent_name = spec.get("parent")
    prior: tuple[PastTrial, ...] = ()
    if parent_name:
        parent = load_study(parent_name, study.storage)
        prior = tuple(past(t, parent.space.fixed) for t in parent.trials())
    return History(space=study.space, seed=study.seed, mode=study.objective[1],
                   trials=tuple(past(t) for t in study.trials()), prior=prior, sampler=spec.get("sampler"))


def propose_next(study: Study) -> int | None:
    """Add the next trial of a proposing design atomically; returns its number, None at the budget.

    Number, training seed and point are assigned in one store transaction
    (:meth:`~tunebook.storage.base.Storage.propose_trial`): two workers asking
    at once get different numbers, different seeds and see each other's point.
    """
    design = get_design(study.design)
    if not design.capabilities.proposes:
        return None

    def propose(number: int, study_seed: int) -> tuple[dict[str, Any], int] | None:
        point = design.propose(history(study), number)
        return None if point is None else (point, trial_seed(study_seed, number))

    return study.storage.propose_trial(study.id, propose)
