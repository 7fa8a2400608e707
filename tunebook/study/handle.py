"""Studies: create, load, resume and extend.

A study is one round of experiments (playbook: "Designing the next round of
experiments"): a goal, an objective, a role-aware search space, a trial budget
and a ``max_train_steps`` that is never tuned inside it. Its trials are
materialized when it is created and stored with the seed and the generator's
version, so it re-opens identically whatever the library version.

Creating a study whose name is stored already resumes it when the spec is the
same. Raising ``trials`` appends the next points of the same design (the
playbook's "sample more"); any other change is refused, with a new name
suggested.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Mapping

from tunebook.designs import GENERATOR_VERSION, get_design
from tunebook.designs import length_probes
from tunebook.designs.replicates import DEFAULT_REPLICATES, MIN_REPLICATES, NOTE_KIND, ReplicatePlan, replicate_plan
from tunebook.errors import MissingExtraError, SpecError, StudyExists, is_objective_never_logged
from tunebook.space import SearchSpace
from tunebook.storage import local_files, open_storage, redact
from tunebook.storage.base import FINISHED, Storage, StudyRecord, TrialRecord
from tunebook.study.spec import DEFAULT_KEEP_TOP_TRIALS, StudySpec, allows_fixed_only, check_name, read_spec_file, spec_hash
from tunebook.study.train_ref import resolve_train, train_reference


def replicate_numbers(storage: Storage, study: str) -> set[int]:
    """Numbers of ``study``'s replicate trials: the notes stored with them list them."""
    return {int(n) for note in storage.get_notes(study=study, kind=NOTE_KIND) for n in note["evidence"].get("trials", ())}


def replicate_of(storage: Storage, study: str) -> dict[int, int]:
    """Each replicate trial's number -> the search trial it re-runs (from the notes stored with them)."""
    out: dict[int, int] = {}
    for note in storage.get_notes(study=study, kind=NOTE_KIND):
        out.update({int(k): int(v) for k, v in note["evidence"].get("of", {}).items()})
    return out


def probe_of(storage: Storage, study: str) -> dict[int, tuple[int, int]]:
    """Each length probe's number -> (the search trial it trains longer, its step budget), from the notes
    stored with them (:mod:`tunebook.designs.length_probes`)."""
    out: dict[int, tuple[int, int]] = {}
    for note in storage.get_notes(study=study, kind=length_probes.NOTE_KIND):
        steps = int(note["evidence"]["max_train_steps"])
        out.update({int(k): (int(v), steps) for k, v in note["evidence"].get("of", {}).items()})
    return out


def probe_steps(storage: Storage, study: str) -> dict[int, int]:
    """``study``'s length probes: trial number -> its step budget."""
    return {n: steps for n, (_, steps) in probe_of(storage, study).items()}


def searched_count(storage: Storage, study: str, stored: int) -> int:
    """How many of ``study``'s ``stored`` trials are search trials: not replicates, not length probes."""
    return stored - len(replicate_numbers(storage, study)) - len(probe_steps(storage, study))


def best_search_trial(storage: Storage, study_id: int, study: str, mode: str) -> TrialRecord | None:
    """The completed trial of ``study`` with the best value that is neither a replicate nor a length probe
    (ties: the lower number): the store's best first, read past those (at most as many as there are)."""
    skip = replicate_numbers(storage, study) | set(probe_steps(storage, study))
    page, _ = storage.trials_page(study_id, states=["completed"], order="value", descending=mode == "max",
                                  limit=len(skip) + 1)
    return next((t for t in page if t.value is not None and t.number not in skip), None)


def record_train(study: "Study", train: Callable[..., Any] | None) -> str | None:
    """Remember ``train`` with a study that stores no training function (what ``tb.run(study, train)`` calls).

    Kept as a ``train`` note of the study, so the CLI's procedures and
    ``tunebook run NAME`` find it; the spec (and its hash) stay as created.
    """
    if train is None or study.record.spec.get("train"):
        return None
    ref = train_reference(train)
    if ref is None or study.train_ref == ref:
        return ref
    study.storage.add_note("train", f"training function: {ref} (recorded by tb.run)", {"train": ref},
                           experiment=study.experiment, study=study.name)
    return ref


def outcome_lines(study: "Study") -> list[str]:
    """Counts, best trial and store of a study: the summary `tunebook run` and ``tb.run`` end with."""
    counts = study.counts()
    best = study.best_trial()
    metric, mode = study.objective
    lines = [f"{study.name}: {counts['completed']} completed, {counts['infeasible']} infeasible, "
             f"{counts['failed']} failed, {counts['pending'] + counts['running']} left of {sum(counts.values())}"]
    phases = study.phase_line()
    if phases:
        lines.append(phases)
    if best is not None:
        params = best.params or study.space.fixed  # a replicate study varies nothing: show what it holds fixed
        lines.append(f"best {metric} ({mode}) = {best.value:.6g} at step {best.best_step}, trial #{best.number}: {params}")
    total = sum(counts.values())
    missing = (counts["failed"] == total and total
               and all(is_objective_never_logged(t.error, metric)
                       for t in study.storage.get_trials(study.id, ["failed"])))
    if missing:  # the spec's objective cannot change under this name: say both ways out
        lines.append(f"every trial failed: the objective {metric!r} was never logged (see `tunebook status {study.name}`). "
                     f"Either log {metric!r} in the training function, then `tunebook run {study.name} --retry-failed`; "
                     "or fix objective.metric in the spec and give the study a new name (a stored study's objective "
                     "never changes)")
    elif total and counts["failed"] == total:
        lines.append(f"every trial failed: see the errors with `tunebook status {study.name}`, fix the cause (the training function or the spec), "
                     f"then `tunebook run {study.name} --retry-failed`")
    elif counts["failed"]:
        lines.append(f"{counts['failed']} trial(s) failed: see the errors with `tunebook status {study.name}`; after a fix, "
                     f"`tunebook run {study.name} --retry-failed` runs them again")
    lines.append(f"stored in {redact(study.storage.url)}")
    return lines


class Study:
    """A stored study. Make one with :func:`create_study`; open one with :func:`load_study`."""

    def __init__(self, record: StudyRecord, storage: Storage) -> None:
        self.record = record
        self.storage = storage
        spec = record.spec
        self.name: str = record.name
        self.goal: str = record.goal
        self.experiment: str = record.experiment
        self.space = SearchSpace.from_spec(spec["search_space"], allow_fixed_only=allows_fixed_only(spec["design"]))
        self.objective: tuple[str, str] = (record.objective_metric, record.objective_mode)
        self.max_train_steps: int = record.max_train_steps
        self.seed: int = record.seed
        self.design: str = spec["design"]
        self.scientific_design: str = spec["scientific_design"]
        self.infeasible_if: dict[str, dict[str, float]] = spec.get("infeasible_if") or {}
        self.keep_checkpoints: int = spec.get("keep_checkpoints", 3)
        #: How many of the best finished trials keep every checkpoint they kept (the others keep their best
        #: one); None keeps everything (see :mod:`tunebook.checkpoints.prune`).
        self.keep_top_trials: int | None = spec.get("keep_top_trials", DEFAULT_KEEP_TOP_TRIALS)
        #: The lineage of a study a procedure derived (``{"kind", "source", "trial"}``), else None.
        self.derived: dict[str, Any] | None = spec.get("derived")
        if "IPython" in sys.modules:  # a notebook: its stored trials and findings display as HTML
            from tunebook.display import register_notebook_display, remember

            remember(self)
            register_notebook_display()

    @property
    def train_ref(self) -> str | None:
        """The training function: the spec's ``train``, else the one ``tb.run`` recorded (a ``train`` note)."""
        if self.record.spec.get("train"):
            return self.record.spec["train"]
        notes = self.storage.get_notes(study=self.name, kind="train")
        return notes[-1]["evidence"].get("train") if notes else None

    def train_base_dir(self) -> Path:
        """The folder a ``file.py:function`` reference is resolved against: the spec's folder, else the current one.

        ``config_path`` is stored relative to a SQLite store's folder (when the spec lies under it) or
        absolute; an older store's path relative to where it ran is tried here too."""
        config = self.record.config_path
        if config:
            path = Path(config)
            candidates = [path] if path.is_absolute() else []
            if not path.is_absolute():
                candidates.extend(f.parent / path for f in self.storage.local_files()[:1])
                candidates.append(Path.cwd() / path)
            for candidate in candidates:
                if candidate.exists():
                    return candidate.resolve().parent
        return Path.cwd()

    @property
    def id(self) -> int:
        assert self.record.id is not None
        return self.record.id

    @property
    def spec(self) -> StudySpec:
        """The stored spec as a :class:`StudySpec`."""
        return StudySpec.from_mapping(self.record.spec)

    @property
    def trials_budget(self) -> int:
        return self.record.trials_budget

    def trials(self, states: list[str] | None = None) -> list[TrialRecord]:
        """The stored trials, by number."""
        return self.storage.get_trials(self.id, states)

    def counts(self) -> dict[str, int]:
        """Trials by state (counted by the store)."""
        out = {s: 0 for s in ("pending", "running", "completed", "infeasible", "failed")}
        out.update(self.storage.study_signature(self.id)["counts"])
        return out

    @property
    def replicate_plan(self) -> ReplicatePlan:
        """How the study's budget splits between search trials and the replicates of each group's best."""
        try:
            replicated = get_design(self.design).capabilities.replicated
        except SpecError:  # a design registered by a plugin not imported here
            replicated = False
        plan = replicate_plan(self.space, self.trials_budget, self.record.spec.get("replicates", DEFAULT_REPLICATES),
                              replicated=replicated)
        if not plan.per_group:
            return plan
        searched = self._searched()
        if searched <= plan.search:
            return plan
        # more search trials are stored than this budget's plan searches: they were stored when it skipped the
        # replicates (a smaller budget, since raised, or tunebook before 2026-12-07, which skipped them below 12
        # trials a group). What is stored stays; the replicates get the rest of the budget, if enough
        fit = min(plan.asked, (self.trials_budget - searched) // plan.groups)
        least = min(plan.asked, MIN_REPLICATES)
        if fit < least:
            return ReplicatePlan(plan.groups, 0, self.trials_budget, plan.asked, skipped=(
                f"its {searched} search trials were stored before the budget held replicates, and {self.trials_budget} "
                f"trials leave room for {max(fit, 0)} a group ({least} needed; trials: "
                f"{searched + plan.groups * least} or more)"))
        return ReplicatePlan(plan.groups, fit, searched, plan.asked)

    def _searched(self) -> int:
        """How many search trials are stored (not replicates, not length probes); read once per budget, as only
        a budget's change (an extension) adds search trials beyond what its plan searches."""
        known = self.__dict__.setdefault("_searched_by_budget", {})
        if self.trials_budget not in known:
            stored = sum(self.storage.study_signature(self.id)["counts"].values())
            known[self.trials_budget] = searched_count(self.storage, self.name, stored)
        return known[self.trials_budget]

    def replicate_numbers(self) -> set[int]:
        """Numbers of the study's replicate trials (recorded by the note stored with them)."""
        return replicate_numbers(self.storage, self.name)

    def probe_steps(self) -> dict[int, int]:
        """The study's length probes (:mod:`tunebook.designs.length_probes`): trial number -> its step budget."""
        return probe_steps(self.storage, self.name)

    def steps_of(self, number: int) -> int:
        """The step budget of trial ``number``: ``max_train_steps``, or a length probe's own."""
        return self.probe_steps().get(number, self.max_train_steps)

    @property
    def length_probes(self) -> int:
        """How many length probes the spec asks for (when the best trial's learning rate decays)."""
        return int(self.record.spec.get("length_probes", length_probes.DEFAULT_LENGTH_PROBES))

    def phase_line(self) -> str:
        """``"18 search + 6 replicates of 24"`` (and ``" + 2 length probes at 600 steps"``), or what the replicate
        phase is waiting for, or why it is off."""
        plan, stored = self.replicate_plan, self.counts()
        probes = self.probe_steps()
        total = sum(stored.values()) - len(probes)
        have = len(self.replicate_numbers())
        if plan.per_group == 0 and not have:
            if plan.skipped:
                return f"no replicates: {plan.skipped}"
            return "no replicates (replicates: 0)" if plan.asked == 0 else ""
        line = f"{total - have} search + {have} replicates of {self.trials_budget}"
        fewer = f", of the {plan.asked} asked: the budget's room" if 0 < plan.per_group < plan.asked else ""
        if fewer and (have >= plan.replicates or total >= self.trials_budget):
            line += f" ({plan.per_group} a group{fewer})"
        if probes:
            line += (f" + {len(probes)} length probe{'s' if len(probes) > 1 else ''} at {max(probes.values())} steps "
                     "(the learning rate decays: is training longer better?)")
        if have < plan.replicates and total < self.trials_budget:
            line += (f"; {plan.replicates - have} replicates of each group's best ({plan.per_group} each{fewer}) "
                     "are added once every search trial has finished")
            if self.length_probes and not probes:
                n = min(self.length_probes, plan.per_group)  # a probe pairs with a replicate of the best
                line += (f", then {n} length probe{'s' if n > 1 else ''} at "
                         f"{length_probes.probe_steps(self.max_train_steps)} steps if the best trial's learning rate decays")
        return line

    def best_trial(self) -> TrialRecord | None:
        """The completed search trial with the best value (ties: the lower number), found by the store.

        A replicate (a group's best re-run with a new seed after the search, :mod:`tunebook.designs.replicates`)
        is never it: it repeats a search trial's configuration, so a lucky seed of it says nothing the search
        found; its value counts in the trial variance, not here."""
        return best_search_trial(self.storage, self.id, self.name, self.objective[1])

    def is_finished(self) -> bool:
        return all(t.state in FINISHED for t in self.trials())

    def metrics(self, trial: TrialRecord | int, names: list[str] | None = None) -> dict[str, list[tuple[int, float]]]:
        """Curves of one trial of this study: ``{metric: [(step, value), ...]}``. ``trial``: a trial
        (anything with its store ``id``: a record, a report's row, a running ``Trial``) or its number
        in this study (``study.metrics(3)`` is trial #3; ``KeyError`` if there is none)."""
        if isinstance(trial, int) and not isinstance(trial, bool):
            record = self.storage.get_trial_by_number(self.id, trial)
            if record is None:
                raise KeyError(f"study {self.name!r} has no trial #{trial} (numbers 0..{self.trials_budget - 1})")
            trial_id = record.id
        else:
            trial_id = trial.id
        out: dict[str, list[tuple[int, float]]] = {}
        for row in self.storage.get_metrics(trial_id, names):
            out.setdefault(row.name, []).append((row.step, row.value))
        return out

    def trials_dataframe(self) -> Any:
        """The trials as a pandas DataFrame: one row per trial (``kind``: search, replicate or length probe, with
        its ``max_train_steps``), a column ``role.name`` per hyperparameter.

        Every hyperparameter of the space has its column; a trial without one (a
        conditional name of another group) has NaN there.
        """
        try:
            import pandas as pd
        except ImportError:
            raise MissingExtraError("pandas", "pandas", "Study.trials_dataframe()") from None
        roles, fixed = dict(self.space.roles), dict(self.space.fixed)
        base = ["number", "state", "value", "best_step", "infeasible_reason", "seed", "kind", "max_train_steps"]
        replicas, probes = self.replicate_numbers(), self.probe_steps()
        records = []
        for t in self.trials():
            kind = "length probe" if t.number in probes else "replicate" if t.number in replicas else "search"
            record: dict[str, Any] = {"number": t.number, "state": t.state, "value": t.value, "best_step": t.best_step,
                                      "infeasible_reason": t.infeasible_reason, "seed": t.seed, "kind": kind,
                                      "max_train_steps": probes.get(t.number, self.max_train_steps)}
            for name, value in {**fixed, **t.params}.items():
                record[f"{roles.get(name, 'fixed')}.{name}"] = value
            records.append(record)
        columns = base + [f"{roles.get(n, 'fixed')}.{n}" for n in [*self.space.params, *fixed]]
        extra = sorted({k for r in records for k in r} - set(columns))  # params stored but not in the space
        return pd.DataFrame.from_records(records, columns=columns + extra)

    def _repr_html_(self) -> str:
        from tunebook.display import study_html

        return study_html(self)

    def __repr__(self) -> str:
        return f"Study({self.name!r}, trials={self.trials_budget}, storage={redact(self.storage.url)!r})"


def _first_difference(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = "") -> tuple[str, Any, Any]:
    """The first field whose stored and new values differ as the spec hash sees them (JSON: ``-0.0`` is
    not ``0.0``, ``true`` is not ``1``), with both values."""
    for key in sorted(set(old) | set(new), key=str):
        if key in StudySpec.MUTABLE and not prefix:
            continue
        a, b = old.get(key), new.get(key)
        if a != b or json.dumps(a, sort_keys=True, default=str) != json.dumps(b, sort_keys=True, default=str):
            if isinstance(a, Mapping) and isinstance(b, Mapping):
                return _first_difference(a, b, f"{prefix}{key}.")
            return f"{prefix}{key}", a, b
    return "", None, None


def _suggest_name(storage: Storage, name: str) -> str:
    base = re.sub(r"-\d+$", "", name)
    i = 2
    while storage.get_study(f"{base}-{i}") is not None:
        i += 1
    return f"{base}-{i}"


def _script_command() -> str | None:
    """How the creating script was started (``python train.py --flag``), when it was a script."""
    import shlex
    import sys

    argv = list(sys.argv)
    if not argv or argv[0] in ("", "-c", "-m") or not Path(argv[0]).exists():
        return None
    return shlex.join(["python", *argv])


def _git_state(path: Path) -> tuple[str | None, bool | None]:
    """The commit of the repository holding ``path`` and whether its tree is dirty."""
    cwd = path if path.is_dir() else path.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10
        )
        if commit.returncode != 0:
            return None, None
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd, capture_output=True, text=True, timeout=10
        )
        return commit.stdout.strip(), bool(status.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return None, None


def create_study(
    name: str,
    *,
    space: SearchSpace | Mapping[str, Any],
    objective: Any,
    trials: int,
    max_train_steps: int,
    goal: str = "",
    storage: str | Storage | None = None,
    experiment: str | None = None,
    train: str | None = None,
    design: str = "quasi_random",
    scientific_design: str = "crossed",
    seed: int | None = None,
    infeasible_if: Mapping[str, Mapping[str, float]] | None = None,
    keep_checkpoints: int = 3,
    keep_top_trials: int | None = 5,
    grid_force: bool = False,
    config_path: str | None = None,
    config_hash: str | None = None,
    repro_command: str | None = None,
    parent: str | None = None,
    round: int = 1,
    sampler: str | None = None,
    derived: Mapping[str, Any] | None = None,
    replicates: int | None = None,
    length_probes: int | None = None,
) -> Study:
    """Create a study, or resume the stored one of the same name and spec.

    ``replicates``: seeds of each scientific group's best re-run after the
    search, within ``trials`` (default 3; 0 turns the replicate phase off; see
    :mod:`tunebook.designs.replicates` for how the budget splits).
    ``length_probes``: runs of the best at twice ``max_train_steps``, beyond
    ``trials``, when its logged learning rate decays (default 3; 0: none; see
    :mod:`tunebook.designs.length_probes`).

    Raising ``trials`` of a stored study appends the next design points; any
    other difference raises :class:`SpecError` suggesting a new name. Nothing
    is written unless the whole spec is valid.
    """
    if parent is not None:  # stored as the previous round even when it is not a proposing design's warm start
        check_name(parent, "parent")
    proposes = get_design(design).capabilities.proposes if isinstance(design, str) else False
    study_spec = StudySpec.from_mapping({
        "study": name, "search_space": space, "objective": objective, "trials": trials,
        "max_train_steps": max_train_steps, "goal": goal, "experiment": experiment, "train": train,
        "design": design, "scientific_design": scientific_design, "seed": seed, "infeasible_if": infeasible_if,
        "keep_checkpoints": keep_checkpoints, "keep_top_trials": keep_top_trials, "grid_force": grid_force,
        # the spec's parent warm-starts a proposing design; for others it is the record's lineage only
        "parent": parent if proposes else None, "sampler": sampler, "derived": derived, "replicates": replicates,
        "length_probes": length_probes,
    })
    return create_study_from_spec(
        study_spec, storage=storage, config_path=config_path, config_hash=config_hash,
        repro_command=repro_command, parent=parent, round=round,
    )


def create_study_from_spec(
    study_spec: StudySpec,
    *,
    storage: str | Storage | None = None,
    config_path: str | None = None,
    config_hash: str | None = None,
    repro_command: str | None = None,
    parent: str | None = None,
    round: int = 1,
) -> Study:
    """:func:`create_study` from a validated :class:`StudySpec` (``parent``: the round's lineage)."""
    spec = study_spec.to_mapping()
    name = study_spec.study
    parent = parent if parent is not None else study_spec.parent
    design = get_design(study_spec.design)
    store = storage if isinstance(storage, Storage) else open_storage(storage)
    # Validate the design (trial counts, grids) before touching the store; the designs are prefix-stable,
    # so the search trials are the first points of the whole budget (the replicates are added as it runs).
    points = design.materialize(
        study_spec.space, study_spec.trials, study_spec.seed,
        scientific_design=study_spec.scientific_design, grid_force=study_spec.grid_force,
    )[:study_spec.replicate_plan().search]
    if design.capabilities.proposes and study_spec.parent is not None and store.get_study(study_spec.parent) is None:
        raise SpecError("parent", f"no study named {study_spec.parent!r} to warm-start from",
                        "name the exploration study")
    existing = store.get_study(name)
    if existing is not None:
        return _resume(store, existing, study_spec)
    if study_spec.derived and study_spec.derived["kind"] == "next" and round == 1:  # a next study written to YAML:
        source = store.get_study(study_spec.derived["source"])  # one round after its source, which is its parent
        if source is not None:
            round, parent = source.round + 1, parent or source.name
    git_commit, git_dirty = _git_state(Path(config_path).resolve() if config_path else Path.cwd())
    if repro_command is None:
        repro_command = _script_command()
    record = StudyRecord(
        name=name,
        spec=spec,
        spec_hash=study_spec.hash,
        objective_metric=spec["objective"]["metric"],
        objective_mode=spec["objective"]["mode"],
        max_train_steps=spec["max_train_steps"],
        trials_budget=spec["trials"],
        seed=spec["seed"],
        generator_version=GENERATOR_VERSION,
        experiment=spec["experiment"],
        goal=spec["goal"],
        config_path=config_path,
        config_hash=config_hash,
        repro_command=repro_command,
        git_commit=git_commit,
        git_dirty=git_dirty,
        parent=parent,
        round=round,
    )
    trial_specs = [{"number": i, "params": p.params, "seed": p.seed} for i, p in enumerate(points)]
    try:
        store.create_study(record, trial_specs)
    except StudyExists:  # another process created it a moment ago
        existing = store.get_study(name)
        assert existing is not None
        return _resume(store, existing, study_spec)
    return Study(record, store)


def _resume(store: Storage, existing: StudyRecord, study_spec: StudySpec) -> Study:
    spec = study_spec.to_mapping()
    name = spec["study"]
    if existing.spec_hash != spec_hash(spec):
        field, old, new = _first_difference(existing.spec, spec)
        defaults = StudySpec.STORED_UNLESS_DEFAULT  # absent from a stored spec: the default
        old, new = (defaults[field] if v is None and field in defaults else v for v in (old, new))
        why = " (max_train_steps is never tuned inside a study)" if field == "max_train_steps" else ""
        raise SpecError(
            field or "study",
            f"study {name!r} is stored with {field} = {json.dumps(old)}, this spec says {json.dumps(new)}{why}",
            f"give the new round a new name, e.g. study: {_suggest_name(store, name)}",
        )
    have = existing.trials_budget
    want = spec["trials"]
    if want < have:
        raise SpecError(
            "trials",
            f"study {name!r} already has {have} trials; a study never shrinks",
            f"use trials: {have} (or more to sample more)",
        )
    if want > have:
        design = get_design(spec["design"])
        if not design.capabilities.extendable:
            raise SpecError("trials", f"a {design.name} study cannot be extended", f"use trials: {have}, or a new study name")
        # proposing designs store no points: raising the budget is all (proposed as the study runs). Else the
        # next search points, numbered after every stored trial (replicates included): the search part of the
        # new budget less the search trials stored.
        stored = len(store.get_trials(existing.id))
        searched = searched_count(store, name, stored)
        points = design.materialize(study_spec.space, want, study_spec.seed, scientific_design=study_spec.scientific_design,
                                    grid_force=study_spec.grid_force)[searched:study_spec.replicate_plan(want).search]
        new = [{"number": stored + i, "params": p.params, "seed": p.seed} for i, p in enumerate(points)]
        # atomic in the store: a concurrent extend of the same study adds nothing twice
        store.extend_study(existing.id, new, want)  # type: ignore[arg-type]
        existing = store.get_study(name)  # type: ignore[assignment]
    return Study(existing, store)


def load_study(name: str, storage: str | Storage | None = None) -> Study:
    """Open a stored study by name."""
    store = storage if isinstance(storage, Storage) else open_storage(storage)
    record = store.get_study(name)
    if record is None:
        known = [s.name for s in store.list_studies()]
        hint = f"known studies: {', '.join(known[:8])}" if known else "the store holds no study yet"
        raise SpecError("study", f"no study named {name!r} in {redact(store.url)}", hint)
    return Study(record, store)


def _stored_config_path(path: str | Path, storage: str | Storage | None) -> str:
    """The spec file as stored: relative to a SQLite store's folder when it lies under it, else absolute,
    so that every worker resolves it the same way whatever its working directory."""
    absolute = Path(path).resolve()
    try:
        files = storage.local_files() if isinstance(storage, Storage) else local_files(storage)
    except SpecError:
        return str(absolute)
    if files:
        try:
            return str(absolute.relative_to(files[0].parent))
        except ValueError:
            pass
    return str(absolute)


def study_from_spec_file(
    path: str | Path, storage: str | Storage | None = None, repro_command: str | None = None
) -> tuple[Study, Callable[..., Any]]:
    """Validate a YAML spec (the ``train`` function included), then create or resume its study."""
    data, digest = read_spec_file(path)
    base_dir = Path(path).resolve().parent
    train = resolve_train(data.get("train"), base_dir)
    storage = storage if storage is not None else data.get("storage")
    fields_ = {k: v for k, v in data.items() if k not in StudySpec.FILE_ONLY}
    parent = fields_.get("parent")
    design_name = fields_.get("design") or "quasi_random"
    if parent is not None:
        check_name(parent, "parent")
    if parent is not None and isinstance(design_name, str) and not get_design(design_name).capabilities.proposes:
        # only a proposing design is warm-started from its parent: anywhere else the field would do nothing
        raise SpecError("parent", f"design {design_name} does not use a parent (only a proposing design, "
                        "e.g. bayesian, is warm-started from one)", "remove parent:, or set design: bayesian")
    study = create_study_from_spec(
        StudySpec.from_mapping(fields_), storage=storage, config_path=_stored_config_path(path, storage), config_hash=digest,
        repro_command=repro_command, parent=parent,
    )
    return study, train
