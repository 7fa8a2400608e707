"""From findings to the next study: what the playbook's loop does after reading a study's checklist.

The playbook ("The incremental tuning strategy", "Extracting insight from
experimental results"): before a study's answer can be trusted, fix what the
checklist found (a search space too small, a budget too short or too long, too
few trials), one round at a time, and only then act on the answer. Each move
here is taken *per scientific group, in the group's own range*: the playbook's
mistakes are widening every group's range when one is limited, re-tuning what
was settled, and comparing across rounds that changed two things.

:func:`next_study` reads a stored study (its findings and its answer) and
returns a :class:`NextStudy`: one decision, the next study as a spec (plain
YAML-ready data), the changes against the source's spec, and for each change
the finding that calls for it. :func:`create_next` stores it (lineage kind
``next``, the source, the findings used). The moves, first that applies:

1. nothing completed, failed trials in a group, a scientific hyperparameter the
   training function never reads with no near-miss name: **fix** (nothing to
   derive; the cause is in the code);
2. an unread hyperparameter whose near-miss name the training function asked
   for: **the spec with the name corrected** (the code is not changed);
   no trial of a group learned (``nothing_learned``): **its learning-rate range moves up**, by
   :data:`MOVE_UP_RULE` (never a longer round: a study that cannot learn does not learn by training longer);
   without a learning-rate range to move, or after :data:`MAX_MOVES_UP` such rounds in a row, **fix** (check the
   pipeline on a tiny subset);
3. a group's best at a boundary of its range: **widen that side of that
   group's range only**, by :data:`WIDEN_RULE` (a shared range two groups read
   becomes a conditional range per group when only some are limited);
4. the best rate at the edge of stability (``stability_edge``,
   ``infeasible_region``): **the warmup/clipping study** (`tunebook stability` / `tunebook warmup`);
5. still improving at ``max_train_steps``: **twice the steps**
   (:data:`LONGER_FACTOR`); saturated early: **the measured best step with a
   margin** (:data:`SHORTER_MARGIN`);
6. too few trials to separate the groups: **extend the same study** by the
   number the sampling check names (``more_trials``), else by its own budget;
7. a fair answer whose trial variance is not measured: **retrain each group's
   best** (``retrain`` studies the answer reads);
8. a fair answer whose interval holds 0 but is wider than one pooled trial sd (not separated yet): **more
   re-runs of each group's best** (the number that brings it under one sd, from the t quantile);
9. a fair answer, separated or a measured tie: **answered, nothing to add**
   (with the retrain/compare/adopt step to act on it).
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass, field
from typing import Any

from tunebook.errors import SpecError
from tunebook.study import Study, StudySpec

#: How a range at its boundary grows: that side moves out by the range's own width in its scale.
WIDEN_RULE = "as far again in its scale (a log range of d decades gains d decades on that side)"
#: Still improving at the end: the next study trains this many times longer.
LONGER_FACTOR = 2
#: Saturated early: the next max_train_steps is the 90th percentile of the better trials' effective best steps times
#: this...
SHORTER_MARGIN = 1.5
#: ...proposed only when it saves at least a quarter of the steps.
SHORTER_AT_MOST = 0.75
#: Before "train longer": a group's best learning rate at or above this position of its range (scaled) is widened first.
RATE_TOP = 0.75
#: No trial learned: a learning-rate range moves up to start at its old upper bound and spans at least this many
#: decades (as many as it did, if more).
MOVE_UP_DECADES = 3
MOVE_UP_RULE = (f"up to start at its old upper bound (every rate in it learned nothing), spanning {MOVE_UP_DECADES} "
                "decades or as many as it did, on a log scale")
#: Rounds in a row that may move the rate up for nothing_learned; then the pipeline is what to check.
MAX_MOVES_UP = 2
#: Retrains of each group's best when the trial variance is not measured yet.
RETRAINS = 3
#: Retrains per group beyond which an answer between one and two trial sd is called "not separated".
MAX_RETRAINS = 6
#: Hyperparameters that live in [0, 1): an upper bound grows at most halfway to 1.
_UNIT_NAMES = re.compile(r"(^|_)(beta\d?|momentum|dropout|prob|p|label_smoothing|ema|decay_rate|keep)($|_)")
#: Fixed hyperparameters that set how often a trial evaluates (kept at the same number of evaluations).
EVAL_EVERY = ("eval_every", "eval_interval", "eval_steps", "evaluate_every")
#: trial_sd sources that are measured (re-runs of a configuration with new seeds).
MEASURED = ("retrain", "replicate", "paired")

_ROUND_SUFFIX = re.compile(r" [(]round \d+ of [^)]*[)]$")

ACTIONS = ("fix", "rename", "widen", "stability", "budget", "extend", "retrain", "answered")


@dataclass(frozen=True)
class Change:
    """One change of the next spec: the field (dotted), its old and new value, and why."""

    field: str
    old: Any
    new: Any
    finding: str  # the check id that calls for it
    reason: str  # one line: what was measured and the rule applied

    def line(self) -> str:
        what = f"{_show(self.old)} (kept)" if self.old == self.new else f"{_show(self.old)} -> {_show(self.new)}"
        return f"{self.field}: {what}  [{self.finding}] {self.reason}"


@dataclass
class NextStudy:
    """What comes after ``source``: a decision, and (for a new or extended study) its spec."""

    source: str
    action: str  # one of ACTIONS
    decision: str  # one line
    spec: dict[str, Any] | None = None  # the next study's spec (file form: ``parent`` included); None: nothing to run
    source_spec: dict[str, Any] | None = None
    changes: list[Change] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)  # check ids used
    commands: list[str] = field(default_factory=list)  # what to run (also for actions without a spec)
    retrain: dict[int, int] = field(default_factory=dict)  # action "retrain": trial number -> new seeds
    not_acted_on: list[str] = field(default_factory=list)  # warnings no move here covers
    answer: Any = None  # the source's GoalAnswer
    answered: bool = False

    @property
    def name(self) -> str | None:
        return None if self.spec is None else self.spec["study"]

    @property
    def trials(self) -> int:
        """Trials this step adds: a new study's budget, an extension's extra trials, or the retrains."""
        if self.action == "retrain":
            return sum(self.retrain.values())
        if self.spec is None:
            return 0
        if self.action == "extend":
            return self.spec["trials"] - (self.source_spec or {}).get("trials", 0)
        return self.spec["trials"]

    def to_yaml(self) -> str:
        """The next spec as YAML (valid input for ``tunebook run``); "" when there is none."""
        return "" if self.spec is None else _yaml(self.spec)

    def diff(self) -> str:
        """A unified diff of the source's spec against the next one."""
        if self.spec is None or self.source_spec is None:
            return ""
        lines = difflib.unified_diff(_yaml(self.source_spec).splitlines(), self.to_yaml().splitlines(),
                                     f"{self.source} (stored)", f"{self.name} (next)", lineterm="", n=1)
        return "\n".join(lines)

    def lines(self) -> list[str]:
        """The decision, one line per change with its finding, then the commands."""
        out = [self.decision]
        out += [f"  - {c.line()}" for c in self.changes]
        if self.not_acted_on:
            out.append("  not acted on here (see the report): " + "; ".join(self.not_acted_on))
        out += [f"  run: {c}" for c in self.commands]
        return out

    def as_dict(self) -> dict[str, Any]:
        """Plain data (the dashboard's panel, ``--format json``)."""
        return {"source": self.source, "action": self.action, "decision": self.decision, "name": self.name,
                "trials": self.trials, "answered": self.answered, "findings": list(self.findings),
                "changes": [{"field": c.field, "old": c.old, "new": c.new, "old_text": _show(c.old), "new_text": _show(c.new),
                             "finding": c.finding, "reason": c.reason}
                            for c in self.changes],
                "commands": list(self.commands), "not_acted_on": list(self.not_acted_on),
                "yaml": self.to_yaml(), "diff": self.diff()}


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_show(v)}" for k, v in value.items()) + "}"
    return "(none)" if value is None else str(value)


def _yaml(spec: dict[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(spec, sort_keys=False, default_flow_style=False, width=120)


# the study's findings ----------------------------------------------------------------------------
def read_study(study: Study, thresholds: Any = None) -> tuple[list[Any], Any]:
    """The checklist's findings and the answer of ``study`` (no figures)."""
    from tunebook.analysis.checks import Thresholds, build_answer, run_checks
    from tunebook.analysis.data import load

    data = load(study)
    th = thresholds or Thresholds()
    findings = run_checks(data, th)
    return findings, build_answer(data, findings, th)


def _warnings(findings: list[Any], check: str) -> list[Any]:
    return [f for f in findings if f.check == check and f.severity == "warning"]


# names and lineage -----------------------------------------------------------------------------
def next_name(study: Study) -> str:
    """``NAME-n2`` for round 2 of NAME, ``NAME-n3`` after it (a trailing ``-nK`` is replaced)."""
    base = re.sub(r"-n\d+$", "", study.name)
    return f"{base}-n{study.record.round + 1}"


def chain(study: Study) -> list[Study]:
    """The rounds that led to ``study`` through ``next`` (oldest first, ``study`` last)."""
    from tunebook.procedures._common import lineage
    from tunebook.study import load_study

    out = [study]
    seen = {study.name}
    while True:
        derived = lineage(out[0])
        if not derived or derived.get("kind") != "next" or derived.get("source") in seen:
            return out
        try:
            source = load_study(derived["source"], study.storage)
        except SpecError:
            return out
        seen.add(source.name)
        out.insert(0, source)


def successor(study: Study) -> Study | None:
    """The newest study made from ``study`` by ``next`` (empty ones included), or None."""
    from tunebook.procedures._common import derived_studies

    found = derived_studies(study, "next", nonempty=False)
    return found[-1] if found else None


# ranges --------------------------------------------------------------------------------------
def widened(param: Any, side: str, name: str) -> tuple[Any, str] | None:
    """``param`` with ``side`` moved out by :data:`WIDEN_RULE`, and the rule as applied; None if it cannot move."""
    from tunebook.space import Int

    low, high, log = param.low, param.high, param.scale == "log"
    unit = _UNIT_NAMES.search(name.lower()) is not None and 0 <= low and high <= 1
    if log:
        ratio = high / low
        new = high * ratio if side == "upper" else low / ratio
        how = f"x{ratio:.3g}" if side == "upper" else f"/{ratio:.3g}"
        if unit and side == "upper":
            new = min(new, (1 + high) / 2)
    else:
        width = high - low
        new = high + width if side == "upper" else low - width
        how = f"{'+' if side == 'upper' else '-'}{width:.3g}"
        if side == "lower" and low >= 0:
            new = max(0.0, new)
        if unit and side == "upper":
            new = (1 + high) / 2
            how = "halfway to 1 (a value in [0, 1))"
    if isinstance(param, Int):
        new = int(math.ceil(new)) if side == "upper" else int(math.floor(new))
        if log and new < 1:
            new = 1
    if (side == "upper" and new <= high) or (side == "lower" and new >= low):
        return None
    bounds = (low, new) if side == "lower" else (high, new)
    rule = f"{side} bound {bounds[0]:.4g} -> {bounds[1]:.4g} ({how}: {WIDEN_RULE})"
    out = type(param)(new, high, param.scale) if side == "lower" else type(param)(low, new, param.scale)
    return out, rule


def moved_up(param: Any) -> tuple[Any, str] | None:
    """A learning-rate range moved up by :data:`MOVE_UP_RULE`, and the rule as applied; None for a range that
    cannot move (not a float range, or a non-positive upper bound)."""
    from tunebook.space import Float

    if not isinstance(param, Float) or not param.high > 0:
        return None
    low, high = param.low, param.high
    decades = math.log10(high / low) if param.scale == "log" and low > 0 else 0.0
    span = max(decades, MOVE_UP_DECADES)
    new = Float(high, high * 10 ** span, "log")
    return new, (f"[{low:.4g}, {high:.4g}] -> [{new.low:.4g}, {new.high:.4g}] (moved {MOVE_UP_RULE}: "
                 f"{span:.3g} decades)")


def _moves_up(study: Study) -> int:
    """How many rounds in a row, up to ``study``, were made by moving the learning rate up (nothing_learned)."""
    n = 0
    for s in reversed(chain(study)):
        if "nothing_learned" not in ((s.derived or {}).get("findings") or []):
            break
        n += 1
    return n


def _nice_steps(steps: float, eval_every: int | None) -> int:
    """A step count rounded up to a multiple of ``eval_every`` (or to 2 significant digits)."""
    steps = max(1, int(math.ceil(steps)))
    if eval_every and eval_every > 1:
        return int(math.ceil(steps / eval_every) * eval_every)
    digits = max(0, len(str(steps)) - 2)
    return int(math.ceil(steps / 10 ** digits) * 10 ** digits)


# the moves -----------------------------------------------------------------------------------
def next_study(study: Study, *, thresholds: Any = None, findings: list[Any] | None = None,
               answer: Any = None) -> NextStudy:
    """What the playbook does after ``study``: see the module docstring for the moves and their order."""
    if findings is None or answer is None:
        findings, answer = read_study(study, thresholds)
    plan = _Plan(study, findings, answer)
    return plan.decide()


class _Plan:
    def __init__(self, study: Study, findings: list[Any], answer: Any) -> None:
        self.study = study
        self.findings = findings
        self.answer = answer
        try:  # the canonical order (a store may hand the spec back with its keys sorted)
            spec = StudySpec.from_mapping(study.record.spec).to_mapping()
        except SpecError:
            spec = dict(study.record.spec)
        self.spec = {**spec, "trials": study.trials_budget}  # an extended study's budget grew
        self.space = study.space
        self.groups = {g.group: g for g in answer.groups}

    # helpers
    def result(self, action: str, decision: str, **kw: Any) -> NextStudy:
        used = kw.pop("findings", None)
        if used is None:
            used = sorted({c.finding for c in kw.get("changes", [])})
        out = NextStudy(self.study.name, action, decision, findings=used, answer=self.answer,
                        source_spec=self._file_spec(self.spec, self.study.name) if kw.get("spec") is not None else None,
                        **kw)
        acted = set(used)
        out.not_acted_on = [f"{f.check}{' (' + f.evidence['group'] + ')' if f.evidence.get('group') else ''}"
                            for f in self.findings if f.severity == "warning" and f.check not in acted
                            and f.check not in ("sampled_enough",)]
        return out

    def _file_spec(self, spec: dict[str, Any], name: str) -> dict[str, Any]:
        """A stored or new spec in the order a YAML file reads best (every field kept)."""
        order = ("study", "goal", "experiment", "train", "objective", "trials", "max_train_steps", "search_space",
                 "design", "scientific_design", "seed", "infeasible_if", "keep_checkpoints", "grid_force", "parent",
                 "sampler", "derived")
        out = {k: spec[k] for k in order if k in spec}
        out.update({k: v for k, v in spec.items() if k not in out})
        out["study"] = name
        return out

    def new_spec(self, space: dict[str, Any], changes: list[Change], *, max_train_steps: int | None = None,
                 fixed_changes: dict[str, Any] | None = None) -> dict[str, Any]:
        """The next study's spec: the source's with ``space`` and steps changed, a derived name and its lineage."""
        from tunebook.procedures._common import free_name, portable_train_ref

        name = next_name(self.study)
        existing = successor(self.study)
        train = portable_train_ref(self.study, self.study.train_ref)
        spec = {k: v for k, v in self.spec.items() if k not in ("study", "seed", "parent", "derived", "goal")}
        spec["search_space"] = space
        if max_train_steps is not None:
            spec["max_train_steps"] = max_train_steps
        spec["train"] = train
        spec["derived"] = {"kind": "next", "source": self.study.name, "trial": None,
                           "findings": sorted({c.finding for c in changes})}
        goal = self.spec.get("goal") or ""
        round_ = self.study.record.round + 1
        base_goal = _ROUND_SUFFIX.sub("", goal)
        spec["goal"] = f"{base_goal} (round {round_} of {self._root()}: {', '.join(sorted({c.finding for c in changes}))})".strip()
        # the same proposal twice (a second `tunebook next --run`) names the same study, so it resumes
        if existing is not None and self._same(existing, spec):
            name = existing.name
        elif self.study.storage.get_study(name) is not None:
            name = free_name(self.study, name)
        spec = StudySpec.from_mapping({**spec, "study": name}).to_mapping()  # validated; defaults filled
        if train is None:
            spec.pop("train", None)
        return self._file_spec(spec, name)  # derived.source is the lineage (a YAML `parent` is a warm start only)

    def _root(self) -> str:
        return chain(self.study)[0].name

    def _same(self, existing: Study, spec: dict[str, Any]) -> bool:
        from tunebook.study import spec_hash

        probe = StudySpec.from_mapping({**spec, "study": existing.name}).to_mapping()
        return spec_hash(probe) == existing.record.spec_hash

    # the order of the moves
    def decide(self) -> NextStudy:
        for move in (self.nothing_yet, self.fix, self.rename, self.learn, self.widen, self.stability, self.budget_longer,
                     self.extend, self.budget_shorter, self.measure, self.answered):
            out = move()
            if out is not None:
                return out
        return self.result("fix", "The answer is not fair for a reason no move covers: "  # pragma: no cover
                           + "; ".join(self.answer.reasons) + ".", findings=[])

    def nothing_yet(self) -> NextStudy | None:
        counts = self.study.counts()
        if counts["pending"] + counts["running"] and not counts["completed"]:
            return self.result("fix", f"{self.study.name} has not run yet: run it first.", findings=[],
                               commands=[f"tunebook run {self.study.name}"])
        if not counts["completed"]:
            return self.result("fix", f"{self.study.name} has no completed trial: {self.answer.verdict}", findings=[],
                               commands=[f"tunebook status {self.study.name}"])
        return None

    def fix(self) -> NextStudy | None:
        for f in _warnings(self.findings, "unused_hyperparameter"):
            if f.evidence.get("asked_for") is None and f.evidence.get("role") == "scientific":
                return self.result("fix", f"Fix the training function first: {f.message} No next study can answer the "
                                   "goal until it reads it.", findings=[f.check])
        for f in _warnings(self.findings, "failed_trials"):
            if f.evidence.get("short_groups"):
                return self.result("fix", f"Fix the failing trials first: {f.message}", findings=[f.check],
                                   commands=[f"tunebook status {self.study.name}",
                                             f"tunebook run {self.study.name} --retry-failed"])
        return None

    def rename(self) -> NextStudy | None:
        renames = {f.evidence["param"]: (f.evidence["asked_for"], f) for f in _warnings(self.findings, "unused_hyperparameter")
                   if f.evidence.get("asked_for") and f.evidence["asked_for"] not in self.space.roles}
        if not renames:
            return None
        space = _rename_space(self.space.to_spec(), {k: v[0] for k, v in renames.items()})
        changes = [Change(f"search_space: {old}", old, new, f.check,
                          f"the training function never read {old!r} and asked for {new!r}: the spec's name is "
                          "corrected; the training code was not changed")
                   for old, (new, f) in renames.items()]
        spec = self.new_spec(space, changes)
        return self.result("rename", f"New study {spec['study']}: the spec with {len(changes)} name(s) corrected "
                           "(the code was not changed); the trials so far did not use them.",
                           spec=spec, changes=changes, commands=[f"tunebook run {spec['study']}"])

    def learn(self) -> NextStudy | None:
        """No trial of a group learned: move its learning-rate range up (:data:`MOVE_UP_RULE`), else say what to check."""
        flat = _warnings(self.findings, "nothing_learned")
        if not flat:
            return None
        where = ", ".join(f.evidence.get("group") or "the study" for f in flat)
        moves = _moves_up(self.study)
        spec_space = self.space.to_spec()
        changes = [] if moves >= MAX_MOVES_UP else self._move_rates_up(spec_space, flat)
        if not changes:
            why = (f"{moves} round(s) in a row already moved the learning rate up and still nothing learned"
                   if moves >= MAX_MOVES_UP else "the study has no learning-rate range (nuisance) to move up")
            return self.result("fix", f"No trial learned ({where}; see nothing_learned) and {why}: check the pipeline "
                               "on a tiny subset (a few batches must fit to near zero loss: labels matched to inputs, "
                               "gradients reaching every layer), then find where training starts with a learning-rate "
                               "sweep (`tunebook lr-sweep`). No longer round is proposed.", findings=["nothing_learned"],
                               commands=[f"tunebook report {self.study.name}", "tunebook lr-sweep --help"])
        spec = self.new_spec(spec_space, changes)
        return self.result("widen", f"New study {spec['study']}: no trial learned ({where}): the learning-rate range "
                           f"moves up ({len(changes)} change(s)), same budget ({spec['trials']} trials, "
                           f"{spec['max_train_steps']} steps; not longer: nothing learned at this length).",
                           spec=spec, changes=changes, commands=[f"tunebook run {spec['study']}"])

    def _move_rates_up(self, spec_space: dict[str, Any], flat: list[Any]) -> list[Change]:
        """Move each learning-rate range of the groups that learned nothing up; writes ``spec_space``."""
        from tunebook.procedures.rounds import learning_rates

        labels = [g.group for g in self.answer.groups if g.group]
        groups = {f.evidence.get("group", "") for f in flat}
        every = not labels or "" in groups or set(labels) <= groups
        why = _short(flat[0].message)
        changes: list[Change] = []
        for name in learning_rates(self.study):
            if name in self.space.nuisance and (every or _choice_groups(self.space) is None):
                moved = moved_up(self.space.nuisance[name])
                if moved is not None:
                    spec_space["nuisance"][name] = moved[0].to_spec()
                    changes.append(Change(f"search_space.nuisance.{name}", self.space.nuisance[name].to_spec(),
                                          moved[0].to_spec(), "nothing_learned", f"{why}; {moved[1]}"))
            elif name in self.space.nuisance:  # one shared range, only some groups flat: a range per group
                sci, values = _choice_groups(self.space)  # type: ignore[misc]
                old = self.space.nuisance[name]
                del spec_space["nuisance"][name]
                for value in values:
                    key = f"{sci}={value}"
                    moved = moved_up(old) if key in groups else None
                    spec_space.setdefault("conditional", {}).setdefault(key, {})[name] = (moved[0] if moved else old).to_spec()
                    changes.append(Change(f"search_space.conditional.{key}.{name}", old.to_spec(),
                                          (moved[0] if moved else old).to_spec(), "nothing_learned",
                                          f"{why}; {moved[1]}" if moved else f"{key} learned: it keeps the shared range"))
            else:
                for key, sub in self.space.conditional.items():
                    if name in sub and (every or key in groups) and (moved := moved_up(sub[name])) is not None:
                        spec_space["conditional"][key][name] = moved[0].to_spec()
                        changes.append(Change(f"search_space.conditional.{key}.{name}", sub[name].to_spec(),
                                              moved[0].to_spec(), "nothing_learned", f"{why}; {moved[1]}"))
        return changes if any(c.old != c.new for c in changes) else []

    def widen(self) -> NextStudy | None:
        return self._widen(_warnings(self.findings, "search_space_boundary"), "a group's best sits at a boundary")

    def _widen(self, hits: list[Any], where: str) -> NextStudy | None:
        """Widen each finding's side of its group's range (``evidence``: group, param, side, best_value, trial)."""
        blocked = {(f.evidence.get("group", ""), f.evidence["param"], f.evidence["side"]) for f in self._unstable()}
        hits = [f for f in hits if (f.evidence.get("group", ""), f.evidence["param"], f.evidence["side"]) not in blocked]
        if not hits:
            return None
        spec_space = self.space.to_spec()
        changes: list[Change] = []
        by_param: dict[str, list[Any]] = {}
        for f in hits:
            by_param.setdefault(f.evidence["param"], []).append(f)
        labels = [g.group for g in self.answer.groups if g.group]
        for name, found in by_param.items():
            if name not in self.space.nuisance:
                changes += self._widen_conditional(spec_space, name, found)
            elif self._limited_alike(found, labels) or _choice_groups(self.space) is None:
                changes += self._widen_shared(spec_space, name, found)
            else:
                changes += self._widen_per_group(spec_space, name, found)
        widening = [c for c in changes if c.old != c.new]
        if not widening:
            return None
        spec = self.new_spec(spec_space, changes)
        kept = [g for g in labels if not any(c.field.endswith(f"{g}.{n}") and c.old != c.new
                                               for c in changes for n in by_param)]
        also = (f"; {', '.join(kept)} {'keeps its range' if len(kept) == 1 else 'keep their ranges'}"
                if kept and len(kept) < len(labels) else "")
        return self.result("widen", f"New study {spec['study']}: widen the range(s) where {where} "
                           f"({len(widening)} change(s){also}), same budget ({spec['trials']} trials, "
                           f"{spec['max_train_steps']} steps).", spec=spec, changes=changes,
                           commands=[f"tunebook run {spec['study']}"])

    @staticmethod
    def _limited_alike(found: list[Any], labels: list[str]) -> bool:
        """Whether a nuisance range limits every group on the same side(s) (or the study has no groups)."""
        limited = {(f.evidence.get("group", ""), f.evidence["side"]) for f in found}
        sides = {s for _, s in limited}
        return not labels or ({g for g, _ in limited} >= set(labels)
                              and all({s for g, s in limited if g == lab} == sides for lab in labels))

    def _widen_shared(self, spec_space: dict[str, Any], name: str, found: list[Any]) -> list[Change]:
        """Widen a nuisance range shared by every group on each limited side; writes ``spec_space``."""
        changes = []
        param = self.space.nuisance[name]
        for side in sorted({f.evidence["side"] for f in found}):
            moved = widened(param, side, name)
            if moved is None:
                continue
            new, rule = moved
            changes.append(Change(f"search_space.nuisance.{name}", param.to_spec(), new.to_spec(),
                                  found[0].check, _why(found, side) + "; " + rule))
            param = new
        spec_space["nuisance"][name] = param.to_spec()
        return changes

    def _widen_per_group(self, spec_space: dict[str, Any], name: str, found: list[Any]) -> list[Change]:
        """Only some groups are limited: each group gets its own range, widened only where limited."""
        on = _choice_groups(self.space)
        assert on is not None
        sci, values = on
        old = self.space.nuisance[name]
        del spec_space["nuisance"][name]
        cond = spec_space.setdefault("conditional", {})
        changes = []
        for value in values:
            key = f"{sci}={value}"
            param = old
            mine = [f for f in found if f.evidence.get("group", "") == key]
            for side in sorted({f.evidence["side"] for f in mine}):
                moved = widened(param, side, name)
                if moved is not None:
                    param = moved[0]
                    rule = moved[1]
            cond.setdefault(key, {})[name] = param.to_spec()
            if mine and param != old:
                changes.append(Change(f"search_space.conditional.{key}.{name}", old.to_spec(), param.to_spec(),
                                      mine[0].check,
                                      f"{_why(mine, mine[0].evidence['side'])}; the shared range becomes one "
                                      f"range per {sci} so that only {key}'s moves; {rule}"))
            else:
                changes.append(Change(f"search_space.conditional.{key}.{name}", old.to_spec(), param.to_spec(),
                                      found[0].check,
                                      f"{key} is not limited by its range: it keeps the shared range as its own"))
        return changes

    def _widen_conditional(self, spec_space: dict[str, Any], name: str, found: list[Any]) -> list[Change]:
        """Widen a group's own (conditional) range where its findings point; writes ``spec_space``."""
        changes = []
        for f in found:
            key = f.evidence.get("group", "")
            sub = self.space.conditional.get(key)
            if sub is None or name not in sub:
                continue  # a scientific or fixed name: nothing to widen
            param = self._current(spec_space, key, name)
            moved = widened(param, f.evidence["side"], name)
            if moved is None:
                continue
            new, rule = moved
            spec_space["conditional"][key][name] = new.to_spec()
            changes.append(Change(f"search_space.conditional.{key}.{name}", param.to_spec(), new.to_spec(),
                                  f.check, _why([f], f.evidence["side"]) + "; " + rule))
        return changes

    def _current(self, spec_space: dict[str, Any], key: str, name: str) -> Any:
        from tunebook.space import param_from_spec

        return param_from_spec(spec_space["conditional"][key][name], f"search_space.conditional.{key}.{name}")

    def _unstable(self) -> list[Any]:
        """The findings that put a group's best rate at the edge of stability (a wider range would not help there)."""
        return _warnings(self.findings, "stability_edge") + _warnings(self.findings, "infeasible_region")

    def stability(self) -> NextStudy | None:
        hits = self._unstable()
        if not hits:
            return None
        f = hits[0]
        ev = f.evidence
        rate = ev.get("nearest_infeasible", ev.get("first_diverged"))
        commands = [f"tunebook stability {self.study.name} --param {ev['param']} --run"]
        if rate is not None:
            commands.append(f"tunebook warmup {self.study.name} --param {ev['param']}   (or --unstable-lr {rate:.4g}, "
                            "the nearest diverged rate)")
        where = f" in {ev['group']}" if ev.get("group") else ""
        near = f" (the nearest diverged trial at {rate:.4g})" if rate is not None else ""
        return self.result("stability", f"The best {ev['param']}{where} ({ev['best_value']:.4g}) sits at the edge of "
                           f"stability{near}: the next study is the warmup/clipping study, not a wider range.",
                           findings=[f.check], commands=commands)

    def _eval_every(self) -> tuple[str, int] | None:
        for name in EVAL_EVERY:
            value = self.space.fixed.get(name)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return name, value
        return None

    def _budget(self, steps: int, changes: list[Change], action_text: str) -> NextStudy:
        spec_space = self.space.to_spec()
        evals = self._eval_every()
        if evals is not None:
            name, every = evals
            n_evals = max(1, self.study.max_train_steps // every)
            new_every = max(1, steps // n_evals)
            if new_every != every:
                spec_space["fixed"][name] = new_every
                changes.append(Change(f"search_space.fixed.{name}", every, new_every, changes[0].finding,
                                      f"the same number of evaluations ({n_evals}) over the new length"))
        spec = self.new_spec(spec_space, changes, max_train_steps=steps)
        return self.result("budget", f"New study {spec['study']}: {action_text}, the search space unchanged "
                           f"({spec['trials']} trials).", spec=spec, changes=changes, commands=[f"tunebook run {spec['study']}"])

    def budget_longer(self) -> NextStudy | None:
        late = [f for f in _warnings(self.findings, "max_train_steps") if f.evidence.get("verdict") == "train longer"]
        late += _warnings(self.findings, "still_improving")
        if not late:
            return None
        measured = [f for f in late if "lower_bound" in f.evidence]  # length probes: the gain at the same rate
        high = [] if measured else self._rates_near_top(late)
        if high:  # the playbook: too small a learning rate also looks like a need for more steps; widen it first
            out = self._widen(high, "a group that looks like it needs more steps has its best learning rate in the "
                                    f"top {1 - RATE_TOP:.0%} of its range")
            if out is not None:
                return out
        old = self.study.max_train_steps
        new = _nice_steps(LONGER_FACTOR * old, (self._eval_every() or (None, None))[1])
        def named(found: list[Any]) -> str:
            return ", ".join(sorted({f.evidence.get("group", "") or "the study" for f in found}))

        if measured:  # each group with what said it: the probes measured only the group of the trial they re-ran
            ev = measured[0].evidence
            why = (f"{named(measured)}: measured by length probes: {ev['probe_steps']} steps improve on "
                   f"{ev['max_train_steps']} by {ev['gain']:.4g} (one-sided 95% lower bound {ev['lower_bound']:.3g})")
            rest = [f for f in late if f not in measured]
            if rest:
                why += f"; {named(rest)}: {rest[0].check} (from the curves)"
        else:
            why = f"{named(late)}: {_short(late[0].message)}"
        first = (measured or late)[0]
        change = Change("max_train_steps", old, new, first.check,
                        f"{why}; rule: x{LONGER_FACTOR} (the playbook: when in doubt, "
                        "train longer; judge the next length from where its best steps land)")
        return self._budget(new, [change], f"train {LONGER_FACTOR}x longer ({old} -> {new} steps)")

    def _rates_near_top(self, late: list[Any]) -> list[Any]:
        """For each group a "train longer" finding names: a stand-in finding per learning rate whose best value lies in
        the top :data:`RATE_TOP` share of the group's own range (in its scale)."""
        from tunebook.analysis.checks import WARNING, Finding, is_learning_rate

        out = []
        for label in sorted({f.evidence.get("group", "") for f in late}):
            g = self.groups.get(label)
            if g is None or g.best_trial is None:
                continue
            trial = self.study.storage.get_trial_by_number(self.study.id, g.best_trial)
            if trial is None:
                continue
            params = self.space.params_for(trial.params) if self.space.conditional else self.space.params
            for name, param in params.items():
                value = trial.params.get(name)
                if not is_learning_rate(name) or self.space.roles.get(name) == "scientific" or not hasattr(param, "low"):
                    continue
                if not isinstance(value, (int, float)) or param.to_unit(value) < RATE_TOP:
                    continue
                why = (f"{label + chr(39) + 's' if label else 'the'} best {name} {value:.4g} (#{g.best_trial}) lies in the top "
                       f"{1 - RATE_TOP:.0%} of its range (up to {param.high:g}) while its curves still improve at the "
                       "end: a rate too small also looks like a need for more steps")
                out.append(Finding("still_improving", WARNING, why, "widen the rate first",
                                   {"group": label, "param": name, "side": "upper", "best_value": value,
                                    "bound": param.high, "trial": g.best_trial, "why": why}))
        return out

    def budget_shorter(self) -> NextStudy | None:
        early = [f for f in _warnings(self.findings, "max_train_steps") if f.evidence.get("verdict") == "too long"]
        sat = _warnings(self.findings, "saturated_early")
        if not early and not sat:
            return None
        labels = [g.group for g in self.answer.groups]
        flagged = {f.evidence.get("group", "") for f in early + sat}
        if set(labels) - flagged:
            return None  # one group still needs the length: keep it
        steps = self._best_steps()
        if len(steps) < 3:
            return None
        latest = steps[min(len(steps) - 1, int(math.ceil(0.9 * len(steps))) - 1)]  # the 90th percentile
        old = self.study.max_train_steps
        new = _nice_steps(max(latest * SHORTER_MARGIN, 1), (self._eval_every() or (None, None))[1])
        if new > SHORTER_AT_MOST * old:
            return None  # not worth a round: the trials already use most of their length
        f = (early or sat)[0]
        change = Change("max_train_steps", old, new, f.check,
                        f"the better trials come within their noise of their best by step {latest} (90th percentile of "
                        f"{len(steps)} effective best steps, the better half of each group); rule: that step "
                        f"x{SHORTER_MARGIN} (a margin), rounded up")
        return self._budget(new, [change], f"train shorter ({old} -> {new} steps), the compute spent on trials instead")

    def _best_steps(self) -> list[int]:
        """The effective best steps (within noise of the best) of the better half of every group, sorted."""
        from tunebook.analysis.checks import Thresholds, group_view, groups
        from tunebook.analysis.checks.sampling import effective_best_steps
        from tunebook.analysis.data import load

        data, th = load(self.study), Thresholds()
        steps: list[int] = []
        for g in groups(data, th.scientific_buckets):
            steps += effective_best_steps(group_view(data, g), th)
        return sorted(steps)

    def extend(self) -> NextStudy | None:
        under = [f for f in _warnings(self.findings, "sampled_enough")]
        few = [g for g in self.answer.groups if g.group and g.n_completed < 3]
        if not under and not few:
            return None
        n_groups = max(1, len([g for g in self.answer.groups if g.group]) if len(self.answer.groups) > 1 else 1)
        more = [f.evidence.get("more_trials") for f in under]
        per_group = [int(m) for m in more if isinstance(m, (int, float)) and m > 0]
        budget = self.study.trials_budget
        if per_group:
            extra = max(per_group) * n_groups
            rule = f"the sampling check's informative number: {max(per_group)} more per group x {n_groups} group(s)"
        else:
            per = max(1, budget // n_groups)
            extra = per * n_groups
            rule = f"no informative number measured: the budget doubles ({per} more per group)"
        if few:
            need = max(3 - g.n_completed for g in few) * n_groups
            if need > extra:
                extra, rule = need, f"{', '.join(g.group for g in few)} need(s) at least 3 completed trials"
        f = (under or [None])[0]
        finding = f.check if f is not None else "min_group_trials"
        why = _short(f.message) if f is not None else "; ".join(r for r in self.answer.reasons if "completed trial" in r)
        change = Change("trials", budget, budget + extra, finding, f"{why}; rule: {rule}")
        spec = dict(self._file_spec(self.spec, self.study.name))
        spec["trials"] = budget + extra
        return self.result("extend", f"Extend {self.study.name} by {extra} trials ({budget} -> {budget + extra}): the same "
                           "study, its finished trials kept (too few to separate the groups).",
                           spec=spec, changes=[change], commands=[f"tunebook run {self.study.name}"])

    def measure(self) -> NextStudy | None:
        a = self.answer
        groups = [g for g in a.groups if g.best_trial is not None]
        if len(groups) < 2 or not a.fair:
            return None
        state, why = separation(a)
        n = min((g.n_runs for g in groups), default=0)
        bare = [g for g in groups if g.n_runs < 2]
        if state != "unmeasured" and "retrain" in (a.trial_sd_source or "") and bare:
            # retrains measured another configuration (a best that an extension replaced): each group's best needs its own
            want = {g.best_trial: RETRAINS for g in bare}
            names = ", ".join(f"{g.group} #{g.best_trial}" for g in bare)
            return self.result("retrain", f"Measure trial variance: the retrains do not cover every group's best ({names} "
                               f"has fewer than 2): retrain {'it' if len(bare) == 1 else 'them'} with {RETRAINS} new "
                               f"seeds ({sum(want.values())} trials).", findings=["trial_variance"], retrain=want,
                               commands=[f"tunebook retrain {self.study.name} --trial {t} --n {k + _retrained(self.study, t)}"
                                         for t, k in want.items()])
        if state in ("separated", "tie"):
            return None
        if state == "not separated":
            return self.replicate_more(groups, why)
        if state == "unclear":
            if n >= MAX_RETRAINS or "retrain" not in (a.trial_sd_source or ""):
                return None  # as many retrains as this step gives, or re-runs this step does not add to
            text = f"{why}; {RETRAINS} more retrains of each group's best"
        else:
            text = f"the answer is fair but {why}: retrain each group's best with {RETRAINS} new seeds"
        want = {g.best_trial: RETRAINS for g in groups}
        return self.result("retrain", f"Measure trial variance: {text} ({sum(want.values())} trials).",
                           findings=["trial_variance"], retrain=want,
                           commands=[f"tunebook retrain {self.study.name} --trial {t} --n {k + _retrained(self.study, t)}"
                                     for t, k in want.items()])

    def replicate_more(self, groups: list[Any], why: str) -> NextStudy | None:
        """More re-runs of each group's best (retrains with new seeds, which join its replicates), as many as bring
        the interval of the difference under one pooled trial sd (``runs_needed``, from the t quantile)."""
        n = getattr(self.answer, "runs_needed", None)
        if not n:
            return None
        want = {g.runs_of if g.runs_of is not None else g.best_trial: n - g.n_runs for g in groups if g.n_runs < n}
        if not want:
            return None
        rule = (f"{n} runs of each group's best: the fewest n with t(0.975, dof) x sqrt(1/n + 1/n) <= 1, "
                "i.e. n >= 2 t^2, the dof growing with the runs added")
        return self.result("retrain", f"Not separated yet: {why}. Re-run each group's best with new seeds up to {rule} "
                           f"({sum(want.values())} trials; they join its replicates).", findings=["trial_variance"],
                           retrain=want,
                           commands=[f"tunebook retrain {self.study.name} --trial {t} --n {k + _retrained(self.study, t)}"
                                     for t, k in want.items()])

    def answered(self) -> NextStudy | None:
        a = self.answer
        if not a.fair:
            return None
        follow: list[str] = []
        groups = [g for g in a.groups if g.best_trial is not None]
        if len(groups) >= 2 and a.best_group:
            winner = next(g for g in groups if g.group == a.best_group)
            if separation(a)[0] == "separated":
                follow = [f"tunebook retrain {self.study.name} --trial {winner.best_trial} --n 5   "
                          "(the winner's final retrains, then compare against your baseline and adopt)"]
        elif groups:
            follow = [f"tunebook retrain {self.study.name} --trial {groups[0].best_trial} --n 5   "
                      "(its variance, then compare against your baseline and adopt)"]
        how = ""
        if len(groups) >= 2:
            state, why = separation(a)
            how = f" ({'a measured tie' if state == 'tie' else state}: {why})"
        return self.result("answered", f"Answered, nothing to add: {a.verdict}{how}", findings=[], commands=follow,
                           answered=True)


def separation(a: Any) -> tuple[str, str]:
    """Whether a fair answer separates its two best groups: ``separated``, ``tie`` (measured), ``unclear``, or
    ``unmeasured`` (no re-runs behind its trial sd), with the reason in words.

    With a 95% interval of the difference (replicates): separated when the difference exceeds it, a measured tie
    when it holds 0 and its half-width is at most one pooled trial sd, else ``not separated`` (more runs of each
    group's best, :meth:`_Plan.replicate_more`). Without: separated beyond 2 measured trial sd, a tie within 1, unclear between.
    """
    measured = any(m in (a.trial_sd_source or "") for m in MEASURED)
    if not measured or not a.trial_sd or a.difference is None:
        return "unmeasured", f"its trial variance is not measured ({a.trial_sd_source or 'no re-runs'})"
    interval = getattr(a, "interval", None)
    if interval is not None and interval > 0:
        from tunebook.analysis.checks.goal import TIE_RULE

        if a.difference > interval:
            return "separated", f"the difference {a.difference:.3g} exceeds its 95% interval (+/- {interval:.3g})"
        if interval <= a.trial_sd:
            return "tie", (f"the 95% interval of the difference (+/- {interval:.3g}) holds 0 and is at most one pooled "
                           f"trial sd ({a.trial_sd:.3g})")
        return "not separated", (f"the 95% interval of the difference (+/- {interval:.3g}) holds 0 but is "
                                 f"{interval / a.trial_sd:.1f} pooled trial sd wide ({TIE_RULE})")
    gap = a.difference / a.trial_sd
    if gap > 2:
        return "separated", f"{a.best_group} leads by {gap:.1f} measured trial sd"
    if gap <= 1:
        return "tie", f"the difference is {gap:.1f} measured trial sd"
    return "unclear", f"{a.best_group} leads by {gap:.1f} trial sd: between one and two, not yet separated"


def _short(message: str) -> str:
    """A finding's message without its group prefix, cut at its first sentence."""
    text = re.sub(r"^\[[^\]]*\] ", "", message)
    return text.split(": ")[0] if len(text) > 160 else text.rstrip(".")


def _why(found: list[Any], side: str) -> str:
    f = next((x for x in found if x.evidence["side"] == side), found[0])
    ev = f.evidence
    if ev.get("why"):
        return ev["why"]
    where = f"{ev['group']}'s" if ev.get("group") else "the"
    return f"{where} best {ev['param']} {ev['best_value']:.4g} (#{ev['trial']}) is at the {side} bound {ev['bound']:g}"


def _choice_groups(space: Any) -> tuple[str, list[Any]] | None:
    """The scientific choice conditional ranges can hang on (one scientific hyperparameter, a choice), or None."""
    from tunebook.space import Choice

    if len(space.scientific) != 1:
        return None
    name, param = next(iter(space.scientific.items()))
    if not isinstance(param, Choice) or len(param.values) < 2:
        return None
    if space.conditional_on not in (None, name):
        return None
    return name, list(param.values)


def _rename_space(spec: dict[str, Any], renames: dict[str, str]) -> dict[str, Any]:
    """The space spec with hyperparameters renamed (every role and conditional group, order kept)."""
    def swap(mapping: dict[str, Any]) -> dict[str, Any]:
        return {renames.get(k, k): v for k, v in mapping.items()}

    out = {role: swap(spec.get(role) or {}) for role in ("scientific", "nuisance", "fixed")}
    if spec.get("conditional"):
        out["conditional"] = {}
        for key, sub in spec["conditional"].items():
            name, _, value = key.partition("=")
            out["conditional"][f"{renames.get(name, name)}={value}"] = swap(sub)
    return out


# creating it -----------------------------------------------------------------------------------
def create_next(source: Study, proposal: NextStudy) -> Study | None:
    """Store the proposed study (or extend the source); None when the proposal runs no study of its own."""
    from tunebook.procedures._common import run_command
    from tunebook.study import create_study_from_spec

    if proposal.action == "retrain":
        from tunebook.procedures.variance import retrain

        for number, n in proposal.retrain.items():
            retrain(source, number, n + _retrained(source, number))
        return None
    if proposal.spec is None:
        return None
    fields = dict(proposal.spec)
    if proposal.action == "extend":
        return create_study_from_spec(StudySpec.from_mapping(fields), storage=source.storage)
    if fields.get("train") is None:
        raise SpecError("train", f"study {source.name!r} stores no training function",
                        "pass --train module:function, or run it once with tb.run(study, train)")
    spec = StudySpec.from_mapping(fields)
    study = create_study_from_spec(spec, storage=source.storage, parent=source.name,
                                   round=source.record.round + 1, repro_command=run_command(spec.study, source.storage))
    source.storage.add_note("next", f"{proposal.decision}", {"study": spec.study, "changes": [c.line() for c in proposal.changes],
                                                            "findings": proposal.findings},
                            experiment=source.experiment, study=source.name)
    return study


def _retrained(source: Study, number: int) -> int:
    """How many seeds the retrain study of trial ``number`` has already (a retrain study only grows)."""
    from tunebook.procedures._common import derived_studies

    found = derived_studies(source, "retrain", trial=number, nonempty=False)
    return max((s.trials_budget for s in found), default=0)


def retrain_studies(source: Study, proposal: NextStudy) -> list[Study]:
    """The retrain studies a ``retrain`` proposal made (to run them)."""
    from tunebook.procedures._common import derived_studies

    return [s for n in proposal.retrain for s in derived_studies(source, "retrain", trial=n, nonempty=False)[-1:]]


def rounds_panel(study: Study, findings: list[Any] | None = None, answer: Any = None) -> dict[str, Any]:
    """What the dashboard's study page shows: the proposed next step (plain data) and the chain of rounds.

    ``{"proposal": NextStudy.as_dict(), "chain": [{"study", "round", "kind", "findings", "trials", "completed",
    "best", "current"}...]}``; the chain runs from the first round through ``study`` to the newest round made
    from it. A study that cannot be judged yet (nothing completed) still gets its chain and a ``fix`` proposal.
    ``findings`` and ``answer``: the study's, when the caller has them (the dashboard's cached analysis).
    """
    rounds = chain(study)
    after = successor(study)
    seen = {s.name for s in rounds}
    while after is not None and after.name not in seen:
        rounds.append(after)
        seen.add(after.name)
        after = successor(after)
    rows = []
    for s in rounds:
        counts = s.counts()
        best = s.best_trial()
        derived = s.derived or {}
        rows.append({"study": s.name, "round": s.record.round, "kind": derived.get("kind") or "",
                     "findings": list(derived.get("findings") or []), "trials": s.trials_budget,
                     "completed": counts["completed"], "best": None if best is None else best.value,
                     "current": s.name == study.name})
    return {"proposal": next_study(study, findings=findings, answer=answer).as_dict(), "chain": rows}
