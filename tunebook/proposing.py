"""Trials added while a study runs: a proposing design's next trial, and the replicate phase.

A design (:mod:`tunebook.designs`) sees a :class:`History`, never the study:
:func:`history` builds it from the store, inside the store's transaction that
assigns the new trials' numbers and seeds, so two workers asking at once never
add the same trial twice.

- :func:`propose_next`: the next trial of a proposing design (bayesian), until
  the search part of the budget is reached.
- :func:`add_replicates`: once every search trial has finished, the replicates
  of each group's best (:mod:`tunebook.designs.replicates`), stored pending with
  a note that lists them (what marks them as replicates, see
  :func:`tunebook.study.replicate_numbers`).
- :func:`add_length_probes`: once nothing is left to run, the best search trial
  trained longer when its logged learning rate decays
  (:mod:`tunebook.designs.length_probes`), or a note that none are needed.
- :func:`add_next`: whichever applies; the worker loop calls it when nothing is pending.
"""

from __future__ import annotations

from typing import Any

from tunebook.designs import History, PastTrial, get_design, length_probes, trial_seed
from tunebook.designs.replicates import NOTE_KIND, replicate_seed, replicate_trials
from tunebook.errors import SpecError
from tunebook.storage.base import Storage, StudyRecord, TrialRecord
from tunebook.study import Study, load_study
from tunebook.study.handle import replicate_of


def past(record: TrialRecord, fixed: dict[str, Any] | None = None) -> PastTrial:
    """A stored trial as a design sees it (``fixed``: values merged into its params)."""
    return PastTrial(record.number, {**(fixed or {}), **record.params}, record.seed, record.state, record.value)


def history(study: Study) -> History:
    """The study's trials but its length probes (and its ``parent``'s, the warm start of a proposing design) as a
    :class:`History`."""
    spec = study.record.spec
    parent_name = spec.get("parent")
    prior: tuple[PastTrial, ...] = ()
    if parent_name:
        parent = load_study(parent_name, study.storage)
        longer = parent.probe_steps()
        prior = tuple(past(t, parent.space.fixed) for t in parent.trials() if t.number not in longer)
    probes = study.probe_steps()  # trained longer than the study's trials: not points a design may learn from
    return History(space=study.space, seed=study.seed, mode=study.objective[1],
                   trials=tuple(past(t) for t in study.trials() if t.number not in probes), prior=prior,
                   sampler=spec.get("sampler"))


def propose_next(study: Study) -> int | None:
    """Add the next trial of a proposing design atomically; returns its number, None at the search budget.

    Number, training seed and point are assigned in one store transaction
    (:meth:`~tunebook.storage.base.Storage.propose_trial`): two workers asking
    at once get different numbers, different seeds and see each other's point.
    """
    design = get_design(study.design)
    if not design.capabilities.proposes:
        return None
    search = study.replicate_plan.search

    def propose(number: int, study_seed: int) -> tuple[dict[str, Any], int] | None:
        seen = history(study)
        if len(seen.trials) - len(study.replicate_numbers()) >= search:
            return None  # the rest of the budget is the replicates'
        point = design.propose(seen, number)
        return None if point is None else (point, trial_seed(study_seed, number))

    return study.storage.propose_trial(study.id, propose, beyond_budget=len(study.probe_steps()))


def add_replicates(study: Study) -> list[int]:
    """Add the replicates of each group's best once every search trial has finished; returns their numbers.

    One store transaction (:meth:`~tunebook.storage.base.Storage.add_trials`) reads the trials, adds
    what is missing and the note that marks them, so two workers never add them twice.
    """
    plan = study.replicate_plan
    if plan.per_group == 0:
        return []

    def choose(first: int, study_seed: int, room: int) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        chosen = replicate_trials(history(study), plan, study.replicate_numbers(), first, room)
        if not chosen:
            return [], None
        numbers = list(range(first, first + len(chosen)))
        of = sorted({n for _, _, n in chosen})
        note = {"kind": NOTE_KIND, "experiment": study.experiment,
                "conclusion": (f"trials {numbers[0]}-{numbers[-1]} re-run the best of each group "
                               f"(trial{'s' if len(of) > 1 else ''} {', '.join(f'#{n}' for n in of)}) with new seeds "
                               "to measure trial variance"),
                "evidence": {"trials": numbers, "of": {str(k): n for k, (_, _, n) in zip(numbers, chosen)}}}
        return [{"params": p, "seed": s} for p, s, _ in chosen], note

    # length probes are beyond the budget: an extended study's replicates still fit in what it adds
    return study.storage.add_trials(study.id, choose, beyond_budget=len(study.probe_steps()))


def probes_undecided(study: Study, counts: dict[str, int] | None = None) -> bool:
    """Is ``study``'s length-probe decision still to be made? The spec asks for probes, the study has a
    replicate phase (the probes' baseline), nothing is pending or running, and no decision is stored."""
    if study.length_probes == 0 or study.replicate_plan.per_group == 0:
        return False
    counts = study.counts() if counts is None else counts
    if counts.get("pending") or counts.get("running") or not counts.get("completed"):
        return False
    return not study.storage.get_notes(study=study.name, kind=length_probes.NOTE_KIND)


def _rate_trace(study: Study, number: int) -> tuple[str, list[float]] | None:
    """The first learning-rate metric trial ``number`` logged (:data:`~tunebook.designs.length_probes.RATE_METRICS`)
    and its values in step order."""
    curves = study.metrics(number, list(length_probes.RATE_METRICS))
    for name in length_probes.RATE_METRICS:
        if curves.get(name):
            return name, [v for _, v in sorted(curves[name])]
    return None


def length_probe_plan(study: Study, first: int, study_seed: int, room: int
                      ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The length probes to add (``(trial specs, note)``), or the note that none are needed; read and
    decided inside the store's transaction that adds them (two workers never decide twice)."""
    if study.storage.get_notes(study=study.name, kind=length_probes.NOTE_KIND):
        return [], None
    best = study.best_trial()
    if best is None:
        return [], None
    steps = length_probes.probe_steps(study.max_train_steps)
    trace = _rate_trace(study, best.number)
    share = None if trace is None else length_probes.decayed_share(trace[1])
    base = {"kind": length_probes.NOTE_KIND, "experiment": study.experiment}
    evidence: dict[str, Any] = {"trials": [], "of": {}, "max_train_steps": steps, "source": best.number,
                                "rate_metric": trace[0] if trace else None, "rate_end_share": share}
    if trace is None or share is None:
        return [], {**base, "evidence": evidence, "conclusion": (
            f"no length probes: trial #{best.number} logged no learning rate "
            f"({', '.join(length_probes.RATE_METRICS)}), so whether its schedule decays is not known")}
    if share > length_probes.DECAYED:
        return [], {**base, "evidence": evidence, "conclusion": (
            f"no length probes: trial #{best.number}'s {trace[0]} ends at {100 * share:.3g}% of its peak (more than "
            f"{length_probes.DECAYED:.0%}): the curves judge the training length (still_improving, max_train_steps)")}
    # paired with the best's replicates: the same seeds (initialization, batch order), so that the seed's share
    # of the spread cancels in each pair's difference; as many probes as replicates, however many were asked
    # for beyond them (an unpaired probe would not enter the paired comparison). Without replicates of the best,
    # new seeds
    of = {n for n, source in replicate_of(study.storage, study.name).items() if source == best.number}
    trials = study.trials()
    paired = [t.seed for t in sorted(trials, key=lambda t: t.number) if t.number in of]
    n = min(study.length_probes, room, len(paired) or study.length_probes)
    paired = paired[:n]
    used = {t.seed for t in trials}
    seeds = list(paired)
    while len(seeds) < n:
        seeds.append(replicate_seed(study_seed, first + len(seeds), used))
        used.add(seeds[-1])
    numbers = list(range(first, first + n))
    evidence.update({"trials": numbers, "of": {str(k): best.number for k in numbers}, "paired_seeds": len(paired)})
    return [{"params": dict(best.params), "seed": seed} for seed in seeds], {**base, "evidence": evidence, "conclusion": (
        f"trials {numbers[0]}-{numbers[-1]} re-run trial #{best.number} (the best) for {steps} steps instead of "
        f"{study.max_train_steps}: its {trace[0]} decays to {100 * share:.3g}% of its peak, so a flat end does not show "
        "the run was long enough; they measure whether training longer helps")}


def add_length_probes(study: Study) -> list[int]:
    """Decide the study's length probes once nothing is left to run: add them, or store why none are needed
    (:mod:`tunebook.designs.length_probes`); returns their numbers."""
    if not probes_undecided(study):
        return []
    return study.storage.add_trials(study.id, lambda first, seed, room: length_probe_plan(study, first, seed, room),
                                    beyond_budget=study.length_probes)


def add_next(study: Study) -> int | None:
    """Add the study's next trial while it runs (a proposal, else the replicates, else the length probes);
    its number, or None."""
    number = propose_next(study)
    if number is not None:
        return number
    added = add_replicates(study) or add_length_probes(study)
    return added[0] if added else None


def grows(study: Study, counts: dict[str, int] | None = None) -> bool:
    """Are trials still to be added to ``study`` as it runs (proposals or replicates within its budget)?"""
    try:
        design = get_design(study.design)
    except SpecError:  # a design registered by a plugin not imported here
        return False
    if not (design.capabilities.proposes or study.replicate_plan.per_group):
        return False
    counts = study.counts() if counts is None else counts
    total = sum(counts.values())
    if total < study.trials_budget or probes_undecided(study, counts):
        return True
    return total - len(study.probe_steps()) < study.trials_budget  # the probes are beyond the budget


def growing_studies(store: Storage, scope: Study | None) -> list[Study]:
    """The studies of ``scope`` (or of the whole store) to which trials are still added as they run."""
    if scope is not None:
        return [scope] if grows(scope) else []
    out = []
    for item in store.study_summaries():
        record: StudyRecord = item["study"]
        study = Study(record, store)
        if grows(study, {**item["counts"]}):
            out.append(study)
    return out
