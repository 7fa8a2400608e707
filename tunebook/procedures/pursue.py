"""The playbook's loop, run to an answer: the study, then :func:`~tunebook.procedures.next.next_study`, then the next.

``pursue(spec, budget=N)`` runs a study, reads its checklist, takes the one
move the findings call for (widen a group's range, move the learning-rate range
up where no trial learned, never a longer round there, train longer or shorter,
extend the study, retrain each group's best to measure trial variance, or re-run
it until an interval that holds 0 is at most one trial sd wide), runs that, and
so on, until the answer to the goal is fair and either separated or a measured
tie, or until ``N`` trials (in all: every round, every extension,
every retrain) are spent. It stops too where no move can be made without a
person (a bug to fix, the warmup/clipping study), and says so.

Nothing is kept outside the store: the rounds are the chain of ``next``
studies from the first one (their lineage), and the retrains are the source's
``retrain`` studies, so an interrupted ``pursue`` run again with the same
arguments finds where it stopped (the last round, its pending trials first)
and goes on. Each decision is written to the notebook (kind ``pursue``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from tunebook.designs.length_probes import NOTE_KIND as LENGTH_PROBE_NOTE
from tunebook.errors import SpecError
from tunebook.procedures.next import RETRAINS, NextStudy, chain, create_next, next_study, retrain_studies, successor
from tunebook.study import Study

#: A round that would need more than what is left is cut to what is left, if that leaves this many trials per group.
MIN_TRIALS_PER_GROUP = 3
#: At most this many rounds (a guard: each round spends trials, so a budget ends the loop first in practice).
MAX_ROUNDS = 30


@dataclass
class Round:
    """One step of the loop: the study it read, the decision, and the trials spent so far."""

    study: str
    action: str
    decision: str
    trials: int  # trials the decision adds (0 when it stops)
    spent: int  # trials spent once it has run (all rounds so far)
    changes: list[str] = field(default_factory=list)


@dataclass
class PursueResult:
    """Where the loop ended: answered or not, the answer with its evidence, and what is missing."""

    rounds: list[Round]
    budget: int
    spent: int
    answered: bool
    study: str  # the last round (the study holding the answer)
    answer: Any  # its GoalAnswer
    missing: str = ""  # what is still missing, and the budget it would take ("" when answered)
    needed: int | None = None  # trials the next step would take, when known

    def lines(self) -> list[str]:
        a = self.answer
        out = [f"{'answered' if self.answered else 'not answered'} after {len(self.rounds)} round(s), "
               f"{self.spent} of {self.budget} trials spent; the answer is read from {self.study}:",
               f"  {a.verdict}"]
        out += [f"  evidence: {line}" for line in evidence_lines(a)]
        if not self.answered:
            out.append(f"  missing: {self.missing}")
        return out


def evidence_lines(a: Any) -> list[str]:
    """Each group's best (and retrain mean +/- sd), the difference and the trial sd, as lines."""
    metric = a.objective[0]
    out = []
    for g in a.groups:
        if g.best_value is None:
            out.append(f"{g.group or 'the study'}: nothing completed")
            continue
        line = f"{g.group or 'the study'}: best {metric} {g.best_value:.4g} (trial #{g.best_trial}, {g.n_completed} completed)"
        if g.mean is not None:
            line += (f", {g.runs_source or 're-runs'} {g.mean:.4g}" + (f" +/- {g.sd:.2g}" if g.sd is not None else "")
                     + f" (n={g.n_runs})")
        if g.limited_by:
            line += f"; limited by {'; '.join(g.limited_by)}"
        out.append(line)
    if a.difference is not None:
        sd = f", trial sd {a.trial_sd:.3g} from {a.trial_sd_source}" if a.trial_sd else ", trial sd not measured"
        ratio = f" ({a.difference / a.trial_sd:.1f} sd)" if a.trial_sd else ""
        out.append(f"difference {a.difference:.4g}{ratio}{sd}; fair: {'yes' if a.fair else 'no: ' + '; '.join(a.reasons)}")
    return out


def spent(first: Study) -> int:
    """Trials spent by the chain from ``first`` (every round's budget, its extensions and retrains included; a
    length probe counts as the trials of its study's length it costs: 2)."""
    from tunebook.procedures._common import derived_studies

    total = 0
    study: Study | None = first
    seen = set()
    while study is not None and study.name not in seen:
        seen.add(study.name)
        total += study.trials_budget + probe_cost(study)
        total += sum(r.trials_budget for r in derived_studies(study, "retrain", nonempty=False))
        study = successor(study)
    return total


def probe_cost(study: Study) -> int:
    """What a study's length probes cost, in trials of its length (a probe trains FACTOR times as long)."""
    return sum(-(-steps // max(study.max_train_steps, 1)) for steps in study.probe_steps().values())


def _parsed(spec: Any) -> Any:
    """``spec`` (a mapping) as a :class:`~tunebook.study.StudySpec`, None when it is not valid (it gets its own
    one-line refusal where it is read)."""
    from tunebook.study import StudySpec

    try:
        return StudySpec.from_mapping(spec)
    except Exception:  # noqa: BLE001 - see the docstring
        return None


def most_probe_cost(spec: Any) -> int:
    """The most a study of this spec (a mapping) can spend on length probes, in trials of its length: one probe per
    replicate of its best (they pair), each FACTOR times as long; 0 for a spec that is not valid."""
    from tunebook.designs import length_probes

    parsed = _parsed(spec)
    return 0 if parsed is None else length_probes.FACTOR * min(parsed.length_probes, parsed.replicate_plan().per_group)


def expected_probe_cost(current: Study, proposal: NextStudy) -> int:
    """What the proposed round's length probes will cost (in trials of its length) when the current round had
    some (its learning rate decays, and the next round's schedule with it): :func:`most_probe_cost`."""
    if proposal.spec is None or proposal.action in ("retrain", "extend") or not current.probe_steps():
        return 0
    return most_probe_cost(proposal.spec)


def _groups(proposal: NextStudy) -> int:
    return max(1, len([g for g in proposal.answer.groups if g.group]))


def reserve(proposal: NextStudy) -> int:
    """Trials kept back for the last step, measuring trial variance (retrains of each group's best), while a
    search round is cut to the budget: a comparison of two or more groups cannot be answered without it."""
    groups = _groups(proposal)
    if proposal.spec is not None and _replicated(proposal.spec):
        return 0  # the study re-runs each group's best itself (its replicate phase)
    return RETRAINS * groups if groups >= 2 and proposal.action not in ("retrain", "answered") else 0


def _replicated(spec: Any) -> bool:
    """Does a study of this spec have a replicate phase (the default's 3, or as many as its budget holds)?"""
    parsed = _parsed(spec)
    return bool(spec.get("replicates")) if parsed is None else parsed.replicate_plan().per_group > 0


def _fit(proposal: NextStudy, left: int) -> str | None:
    """Cut the proposal to ``left`` trials when that still leaves a round worth running; the note, or None if not."""
    need = proposal.trials
    if need <= left - reserve(proposal) or (proposal.action == "retrain" and need <= left):
        return ""
    groups = _groups(proposal)
    left = left - reserve(proposal)
    if proposal.action in ("widen", "budget", "rename") and left >= MIN_TRIALS_PER_GROUP * groups:
        assert proposal.spec is not None
        proposal.spec["trials"] = left - left % groups
        return (f"cut from {need} to {proposal.spec['trials']} trials: the budget left"
                + (f", {reserve(proposal)} kept back to measure trial variance" if reserve(proposal) else ""))
    if proposal.action == "extend" and left >= groups:
        assert proposal.spec is not None and proposal.source_spec is not None
        extra = left - left % groups
        proposal.spec["trials"] = proposal.source_spec["trials"] + extra
        return (f"cut from {need} to {extra} more trials: the budget left"
                + (f", {reserve(proposal)} kept back to measure trial variance" if reserve(proposal) else ""))
    return None


def _open_first(spec: Any, storage: Any) -> tuple[Study, Callable[..., Any] | None]:
    from tunebook.study import load_study, study_from_spec_file

    if isinstance(spec, Study):
        return spec, None
    if isinstance(spec, (str, Path)) and (str(spec).endswith((".yaml", ".yml")) or Path(spec).is_file()):
        return study_from_spec_file(spec, storage=storage)
    if isinstance(spec, str):
        return load_study(spec, storage), None
    raise SpecError("spec", f"expected a YAML spec file, a study name or a Study, got {type(spec).__name__}",
                    "e.g. tb.pursue('study.yaml', budget=64)")


def _check_budget(spec: Any, budget: Any) -> None:
    """Refuse a budget that is not a number of trials, or (read before anything is stored) one below the first
    study's own trials."""
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise SpecError("--budget", f"expected a number of trials (1 or more), got {budget!r}", "e.g. --budget 64")
    if isinstance(spec, (str, Path)) and str(spec).endswith((".yaml", ".yml")) and Path(spec).is_file():
        from tunebook.study import read_spec_file

        mapping = read_spec_file(spec)[0]
        _first_fits(mapping.get("trials"), budget, most_probe_cost(mapping))


def _first_fits(trials: Any, budget: int, probes: int = 0) -> None:
    """Refuse a budget that the first study (its trials, and the length probes it may add) does not fit in."""
    if isinstance(trials, int) and not isinstance(trials, bool) and trials + probes > budget:
        extra = (f" and up to {probes} trials' worth of length probes (if its learning rate decays)" if probes else "")
        raise SpecError("--budget", f"the first study alone has {trials} trials{extra}, more than the budget ({budget})",
                        f"give --budget {trials + probes} or more (e.g. {3 * (trials + probes)})"
                        + (", or set length_probes: 0 in its spec" if probes else ""))


def _last_round(first: Study, say: Callable[[str], None]) -> Study:
    """The last round made so far from ``first`` (where a run again after an interruption resumes)."""
    current = first
    while (after := successor(current)) is not None:
        current = after
    if current is not first:
        say(f"resuming at {current.name} (round {len(chain(current))} of {first.name})")
    return current


class _Rounds:
    """Runs the rounds' trials: one import of each training function (workers pickle it), or ``train`` for all."""

    def __init__(self, first: Study, first_train: Callable[..., Any] | None, train: Callable[..., Any] | None,
                 workers: int | None, progress: bool, say: Callable[[str], None]) -> None:
        from tunebook.procedures._common import portable_train_ref

        self.train, self.workers, self.progress, self.say = train, workers, progress, say
        self.functions: dict[str | None, Callable[..., Any]] = {}
        if first_train is not None:
            self.functions[portable_train_ref(first, first.train_ref)] = first_train

    def train_of(self, study: Study) -> Callable[..., Any]:
        from tunebook.procedures._common import portable_train_ref, study_train

        if self.train is not None:
            return self.train
        ref = portable_train_ref(study, study.train_ref)
        if ref not in self.functions:
            self.functions[ref] = study_train(study)[1]
        return self.functions[ref]

    def run(self, study: Study) -> None:
        """The round's pending trials, then those of its retrain studies (an interrupted round resumes)."""
        from tunebook.execution import run

        for s in [study, *retrains_of(study)]:
            counts = s.counts()
            if counts["pending"] or counts["running"]:
                result = run(s, self.train_of(s) if s.train_ref else self.train_of(study), workers=self.workers,
                             progress=self.progress)
                if result.interrupted:  # running trials went back to pending: the same call resumes here
                    self.say(f"interrupted during {s.name}: run the same command again to resume")
                    raise KeyboardInterrupt


def _take(current: Study, proposal: NextStudy, budget: int, used: int, rounds: list[Round],
          say: Callable[[str], None]) -> bool:
    """Record the round's decision; whether the loop goes on with it (the proposal cut to the budget left)."""
    probes = expected_probe_cost(current, proposal)
    left = budget - used - probes  # the next round's length probes, when this one had some, are paid first
    cut = None if proposal.answered or proposal.action in ("fix", "stability") else _fit(proposal, left)
    if cut is None:
        rounds.append(Round(current.name, proposal.action, proposal.decision, 0, used))
        stop = proposal.answered or proposal.action in ("fix", "stability")
        say(f"round {len(rounds)}: {current.name}: {proposal.decision}" + (
            "" if stop else f" -- not taken: it needs {proposal.trials} trial(s)"
            + (f" and {probes} for its length probes" if probes else "") + f", {budget - used} left of {budget}"))
        return False
    text = proposal.decision + (f" ({cut})" if cut else "") + (
        f" (+{probes} trials' worth kept for its length probes at twice the steps)" if probes else "")
    rounds.append(Round(current.name, proposal.action, text, proposal.trials, used + proposal.trials + probes,
                        [c.line() for c in proposal.changes]))
    say(f"round {len(rounds)}: {current.name}: {text}")
    for c in proposal.changes:
        say(f"    {c.line()}")
    return True


def _missing(final: NextStudy, budget: int, used: int, probes: int = 0) -> tuple[str, int | None]:
    """What is still missing once the loop stops unanswered, and the trials the next step would take (``probes``:
    its length probes' cost)."""
    if final.answered:
        return "", None
    needed = (final.trials + reserve(final) + probes) or None  # with what measuring trial variance will take after it
    if final.action in ("fix", "stability"):
        return f"{final.decision} (needs a person: {'; '.join(final.commands) or 'see the report'})", needed
    if needed:
        kept = "".join(f", {n} of them {what}" for n, what in ((reserve(final), "to measure trial variance after it"),
                                                               (probes, "for its length probes")) if n)
        return (f"{final.decision} It would take {needed} more trial(s){kept} (budget {budget}, {used} spent): "
                f"`tunebook pursue ... --budget {used + needed}` goes on from here."), needed
    return final.decision, needed


def pursue(spec: Any, *, budget: int, storage: Any = None, workers: int | None = 1, train: Callable[..., Any] | None = None,
           progress: bool = False, log: Callable[[str], None] | None = print, thresholds: Any = None) -> PursueResult:
    """Run ``spec`` (a YAML file, a stored study's name, or a :class:`Study`) and its next studies until answered.

    ``budget``: trials in all (every round, extension and retrain). Run again with the
    same arguments after an interruption, it resumes at the last round. ``train``: the
    training function for every round (default: each study's stored one).
    """
    from tunebook.procedures._common import Conclusion, record
    from tunebook.study import load_study

    _check_budget(spec, budget)
    say = log or (lambda line: None)
    first, first_train = _open_first(spec, storage)
    decided = first.storage.get_notes(study=first.name, kind=LENGTH_PROBE_NOTE)  # stored with the probes, or alone
    _first_fits(first.trials_budget, budget, probe_cost(first) if decided else most_probe_cost(first.record.spec))
    rounds: list[Round] = []
    current = _last_round(first, say)
    runner = _Rounds(first, first_train, train, workers, progress, say)
    proposal: NextStudy | None = None
    for _ in range(MAX_ROUNDS):
        runner.run(current)
        proposal = next_study(current, thresholds=thresholds)
        if not _take(current, proposal, budget, spent(first), rounds, say):
            break
        made = create_next(current, proposal)
        current = made if made is not None else load_study(current.name, current.storage)  # a fresh record
        proposal = None
    final = next_study(current, thresholds=thresholds) if proposal is None else proposal
    used = spent(first)
    missing, needed = _missing(final, budget, used, expected_probe_cost(current, final))
    result = PursueResult(rounds, budget, used, final.answered, current.name, final.answer, missing, needed)
    for line in result.lines():
        say(line)
    record(current, Conclusion("pursue", ("Answered: " if final.answered else "Not answered: ") + final.answer.verdict,
                               {"budget": budget, "spent": used, "rounds": [r.__dict__ for r in rounds],
                                "missing": missing}, studies=[s.name for s in chain(current)], concluded=final.answered))
    return result


def retrains_of(study: Study) -> list[Study]:
    """Every retrain study of ``study`` (empty ones included)."""
    from tunebook.procedures._common import derived_studies

    return derived_studies(study, "retrain", nonempty=False)


__all__ = ["PursueResult", "Round", "evidence_lines", "pursue", "retrain_studies", "spent"]
