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

import hashlib
import json
import re
import subprocess
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping

from tunebook import specio
from tunebook.designs import GENERATOR_VERSION, check_space, get_design, sampler_for
from tunebook.designs.replicates import DEFAULT_REPLICATES, NOTE_KIND, ReplicatePlan, check_replicates, replicate_plan
from tunebook.errors import MissingExtraError, SpecError, StudyExists, is_objective_never_logged
from tunebook.space import SearchSpace, spec_number
from tunebook.storage import normalize_url, open_storage, redact
from tunebook.storage.base import FINISHED, Storage, StudyRecord, TrialRecord

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
#: Kinds of derived studies (``spec["derived"]["kind"]``), made by the procedures from a source study.
DERIVED_KINDS = ("retrain", "early-instability", "warmup", "next-round", "bayesian-exploitation", "study-variance",
                 "next")


def _fixed_only(design: str) -> bool:
    """May a study of ``design`` fix every value (a registration capability; False for a design not registered here)?"""
    try:
        return get_design(design).capabilities.fixed_only
    except SpecError:
        return False


def replicate_numbers(storage: Storage, study: str) -> set[int]:
    """Numbers of ``study``'s replicate trials: the notes stored with them list them."""
    return {int(n) for note in storage.get_notes(study=study, kind=NOTE_KIND) for n in note["evidence"].get("trials", ())}


def _check_name(name: Any, field: str) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):  # fullmatch: "$" would let a trailing newline in
        raise SpecError(
            field,
            f"invalid name {name!r}",
            "use letters, digits, '.', '_' and '-' (at most 200, starting with a letter or digit)",
        )
    return name


#: The finished trials that keep every checkpoint they kept: the study's best five.
DEFAULT_KEEP_TOP_TRIALS = 5


def _keep_top_trials(value: Any) -> int | None:
    if value is None or value == "all":
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SpecError("keep_top_trials", f"expected a non-negative integer or 'all', got {value!r}",
                        "e.g. keep_top_trials: 5 (the best 5 finished trials keep all their checkpoints, the others "
                        "their best one), or 'all' to prune nothing")
    return value


def _positive_int(value: Any, field: str, example: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SpecError(field, f"expected a positive integer, got {value!r}", f"e.g. {field}: {example}")
    return value


def _objective(value: Any) -> tuple[str, str]:
    if isinstance(value, Mapping):
        unknown = set(value) - {"metric", "mode"}
        if unknown:
            raise SpecError(f"objective.{sorted(unknown)[0]}", "unknown key", "the objective takes metric and mode")
        metric, mode = value.get("metric"), value.get("mode", "min")
    elif isinstance(value, (tuple, list)) and len(value) == 2:
        metric, mode = value
    else:
        raise SpecError("objective", f"expected {{metric, mode}}, got {value!r}", "e.g. objective: {metric: val/error, mode: min}")
    if not isinstance(metric, str) or not metric:
        raise SpecError("objective.metric", f"expected a metric name, got {metric!r}", "e.g. metric: val/error")
    if mode not in ("min", "max"):
        raise SpecError("objective.mode", f"unknown mode {mode!r}", "use 'min' or 'max'")
    return metric, mode


def _rules(value: Any) -> dict[str, dict[str, float]]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise SpecError("infeasible_if", f"expected a mapping, got {value!r}", "e.g. infeasible_if: {train/loss: {above: 10}}")
    rules: dict[str, dict[str, float]] = {}
    for metric, rule in value.items():
        field = f"infeasible_if.{metric}"
        if not isinstance(metric, str) or not metric:
            raise SpecError("infeasible_if", f"invalid metric name {metric!r}", "name a logged metric")
        if not isinstance(rule, Mapping) or not rule or set(rule) - {"above", "below"}:
            raise SpecError(field, f"expected {{above: x}} and/or {{below: y}}, got {rule!r}", "e.g. {above: 10}")
        rules[metric] = {k: spec_number(v, f"{field}.{k}") for k, v in rule.items()}
    return rules


def _default_seed(name: str) -> int:
    return int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) & 0x7FFFFFFF


def resolve_train(ref: str, base_dir: str | Path | None = None) -> Callable[..., Any]:
    """Import ``module:function`` or ``path/to/file.py:function``."""
    import importlib
    import importlib.util
    import sys

    if not isinstance(ref, str) or ref.count(":") != 1:
        raise SpecError("train", f"expected 'module:function', got {ref!r}", "e.g. train: tunebook.workloads.digits:train")
    specio.check_train_ref(ref)  # identifiers or a .py file, printable
    module_name, func_name = ref.split(":")
    base = Path(base_dir) if base_dir else Path.cwd()
    try:
        if module_name.endswith(".py"):
            path = (base / module_name).resolve()
            if not path.exists():
                raise SpecError("train", f"file {str(path)!r} does not exist", "fix the path before ':'")
            specio.check_train_path(path)
            # Importable by name too, so that worker processes can unpickle the function.
            if str(path.parent) not in sys.path:
                sys.path.insert(0, str(path.parent))
            spec = importlib.util.spec_from_file_location(path.stem, path)
            module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
            module.__tunebook_file__ = True  # type: ignore[attr-defined]  # executors ship it by value
            sys.modules.setdefault(path.stem, module)
            spec.loader.exec_module(module)  # type: ignore[union-attr]
        else:
            if str(base) not in sys.path:
                sys.path.insert(0, str(base))
            module = importlib.import_module(module_name)
    except SpecError:
        raise
    except (Exception, SystemExit) as exc:  # a syntax error, anything raised at import, sys.exit
        raise specio.import_error(exc, module_name, (base / module_name).resolve() if module_name.endswith(".py") else None) from None
    func = getattr(module, func_name, None)
    if not callable(func):
        raise SpecError("train", f"{module_name!r} has no function {func_name!r}", "name a function defined there")
    return func


def train_reference(func: Callable[..., Any]) -> str | None:
    """``module:function`` (or ``/abs/path/file.py:function``) that imports ``func`` again, or None (a lambda, a local)."""
    import importlib
    import sys

    name = getattr(func, "__name__", None)
    module_name = getattr(func, "__module__", None)
    if not name or not module_name or getattr(func, "__qualname__", name) != name or name.startswith("<"):
        return None
    module = sys.modules.get(module_name)
    file = getattr(module, "__file__", None)
    if module_name == "__main__" or getattr(module, "__tunebook_file__", False):
        if not file or not str(file).endswith(".py") or getattr(module, name, None) is not func:
            return None
        if module_name == "__main__" and not _has_main_guard(Path(file)):
            return None  # importing the script again would run it again
        return f"{Path(file).resolve()}:{name}"
    try:
        found = getattr(importlib.import_module(module_name), name, None)
    except Exception:  # noqa: BLE001 - not importable again: nothing to record
        return None
    if found is not func:
        return None
    if "." not in module_name and file and str(file).endswith(".py") and _found_beside(Path(file)):
        # a module found only because it sits in the working (or the script's) folder: by its path, so
        # that `tunebook retrain NAME` run from elsewhere imports it too
        return f"{Path(file).resolve()}:{name}"
    return f"{module_name}:{name}"


def _found_beside(file: Path) -> bool:
    """Is ``file`` a top-level module of the working folder or of the running script's folder?"""
    import sys

    folder = file.resolve().parent
    beside = {Path.cwd().resolve()}
    if sys.path and sys.path[0]:
        beside.add(Path(sys.path[0]).resolve())
    return folder in beside


def _has_main_guard(path: Path) -> bool:
    """Does the script keep its top-level work under ``if __name__ == "__main__":``?"""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return False
    return re.search(r"^if\s+__name__\s*==\s*['\"]__main__['\"]\s*:", text, re.MULTILINE) is not None


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
        self.space = SearchSpace.from_spec(spec["search_space"], allow_fixed_only=_fixed_only(spec["design"]))
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
                url = self.storage.url
                if url.startswith("sqlite:///"):
                    candidates.append(Path(url[len("sqlite:///"):]).parent / path)
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
        return replicate_plan(self.space, self.trials_budget, self.record.spec.get("replicates", DEFAULT_REPLICATES),
                              replicated=replicated)

    def replicate_numbers(self) -> set[int]:
        """Numbers of the study's replicate trials (recorded by the note stored with them)."""
        return replicate_numbers(self.storage, self.name)

    def phase_line(self) -> str:
        """``"18 search + 6 replicates of 24"``, or what the replicate phase is waiting for, or why it is off."""
        plan, stored = self.replicate_plan, self.counts()
        total = sum(stored.values())
        have = len(self.replicate_numbers())
        if plan.per_group == 0 and not have:
            if plan.skipped:
                return f"no replicates: {plan.skipped}"
            return "no replicates (replicates: 0)" if plan.asked == 0 else ""
        line = f"{total - have} search + {have} replicates of {self.trials_budget}"
        if have < plan.replicates and total < self.trials_budget:
            line += (f"; {plan.replicates - have} replicates of each group's best ({plan.per_group} each) "
                     "are added once every search trial has finished")
        return line

    def best_trial(self) -> TrialRecord | None:
        """The completed trial with the best value (ties: the lower number), found by the store."""
        page, _ = self.storage.trials_page(self.id, states=["completed"], order="value",
                                           descending=self.objective[1] == "max", limit=1)
        return page[0] if page and page[0].value is not None else None

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
        """The trials as a pandas DataFrame: one row per trial, a column ``role.name`` per hyperparameter.

        Every hyperparameter of the space has its column; a trial without one (a
        conditional name of another group) has NaN there.
        """
        try:
            import pandas as pd
        except ImportError:
            raise MissingExtraError("pandas", "pandas", "Study.trials_dataframe()") from None
        roles, fixed = dict(self.space.roles), dict(self.space.fixed)
        base = ["number", "state", "value", "best_step", "infeasible_reason", "seed"]
        records = []
        for t in self.trials():
            record: dict[str, Any] = {"number": t.number, "state": t.state, "value": t.value, "best_step": t.best_step,
                                      "infeasible_reason": t.infeasible_reason, "seed": t.seed}
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


@dataclass(frozen=True, eq=True)
class StudySpec:
    """What defines a study: the one list of the spec's fields, validated.

    ``StudySpec.from_mapping`` validates a mapping (a YAML file's, or
    :func:`create_study`'s keywords) and fills the defaults;
    ``to_mapping`` gives the canonical form that is stored; ``hash`` identifies
    the study whatever its budget (``trials`` may grow between two runs).

    >>> spec = StudySpec.from_mapping({"study": "s", "objective": {"metric": "loss", "mode": "min"},
    ...     "trials": 4, "max_train_steps": 10, "search_space": {"nuisance": {"lr": {"min": 0.1, "max": 1}}}})
    >>> spec.experiment, spec.design, StudySpec.from_mapping(spec.to_mapping()) == spec
    ('s', 'quasi_random', True)
    """

    study: str
    objective: tuple[str, str]
    trials: int
    max_train_steps: int
    search_space: dict[str, Any]
    goal: str = ""
    experiment: str = ""
    train: str | None = None
    design: str = "quasi_random"
    scientific_design: str = "crossed"
    seed: int = 0
    infeasible_if: dict[str, dict[str, float]] = field(default_factory=dict)
    keep_checkpoints: int = 3
    keep_top_trials: int | None = 5  # finished trials outside the top keep their best checkpoint only; None: all
    grid_force: bool = False
    parent: str | None = None
    sampler: str | None = None
    derived: dict[str, Any] | None = None  # lineage of a study a procedure made: {"kind", "source", "trial"}
    #: seeds of each group's best re-run after the search (the replicate phase); stored only when not the default
    replicates: int = DEFAULT_REPLICATES

    #: Fields a spec must give.
    REQUIRED: ClassVar[tuple[str, ...]] = ("study", "objective", "trials", "max_train_steps", "search_space")
    #: Keys a YAML spec may hold that are not part of the study (where it is stored).
    FILE_ONLY: ClassVar[tuple[str, ...]] = ("storage",)
    #: Fields that may change between two runs of the same study.
    MUTABLE: ClassVar[tuple[str, ...]] = ("trials", "storage")

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    @classmethod
    def file_keys(cls) -> tuple[str, ...]:
        """Every key a YAML spec may hold (the study's fields and ``storage``)."""
        return (*cls.field_names(), *cls.FILE_ONLY)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> "StudySpec":
        """Validate ``data`` (``search_space`` may be a :class:`SearchSpace`); :class:`SpecError` otherwise."""
        # plain JSON values, counts, names and bounds within the documented limits, before the field checks
        specio.check_inputs({("name" if k == "study" else "space" if k == "search_space" else k): v for k, v in data.items()})
        unknown = [k for k in data if k not in cls.file_keys()]
        if unknown:
            raise SpecError(str(unknown[0]), "unknown field", f"the fields are: {', '.join(cls.file_keys())}")
        for key in cls.REQUIRED:
            if key not in data:
                raise SpecError(key, "is missing", "see `tunebook init` for a complete example")
        name = _check_name(data["study"], "study")
        goal = data.get("goal")
        goal = "" if goal is None else goal
        if not isinstance(goal, str):
            raise SpecError("goal", f"expected text, got {goal!r}", "write the question this study answers")
        experiment = data.get("experiment")
        experiment = _check_name(experiment, "experiment") if experiment else name
        design_name = data.get("design") or "quasi_random"
        design = get_design(design_name)
        space = data["search_space"]
        allow_fixed_only = design.capabilities.fixed_only
        if not isinstance(space, SearchSpace):
            space = SearchSpace.from_spec(space, allow_fixed_only=allow_fixed_only)
        elif not allow_fixed_only and not space.params:
            raise SpecError("search_space", "nothing varies", "give at least one scientific or nuisance hyperparameter")
        specio.check_combinations(space, grid=design_name == "grid")  # before any design lists them
        scientific_design = data.get("scientific_design") or "crossed"
        check_space(design, space, scientific_design)
        metric, mode = _objective(data["objective"])
        trials = _positive_int(data["trials"], "trials", 24)
        max_train_steps = _positive_int(data["max_train_steps"], "max_train_steps", 2000)
        sampler = sampler_for(design, data.get("sampler"))
        derived = data.get("derived")
        derived = _derived(derived) if derived is not None else None
        parent = data.get("parent")
        if parent is not None:
            _check_name(parent, "parent")
        seed = data.get("seed")
        if seed is None:
            seed = _default_seed(name)
        elif isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise SpecError("seed", f"expected a non-negative integer, got {seed!r}", "e.g. seed: 0")
        keep = _positive_int(data.get("keep_checkpoints", 3), "keep_checkpoints", 3)
        keep_top = _keep_top_trials(data.get("keep_top_trials", DEFAULT_KEEP_TOP_TRIALS))
        grid_force = data.get("grid_force", False)
        if not isinstance(grid_force, bool):
            raise SpecError("grid_force", f"expected true or false, got {grid_force!r}", "write grid_force: true")
        train = data.get("train")
        if train is not None and (not isinstance(train, str) or train.count(":") != 1):
            raise SpecError("train", f"expected 'module:function', got {train!r}", "e.g. train: tunebook.workloads.digits:train")
        return cls(
            study=name, objective=(metric, mode), trials=trials, max_train_steps=max_train_steps,
            search_space=space.to_spec(), goal=goal, experiment=experiment, train=train, design=design_name,
            scientific_design=scientific_design, seed=seed, infeasible_if=_rules(data.get("infeasible_if")),
            keep_checkpoints=keep, keep_top_trials=keep_top, grid_force=grid_force, parent=parent, sampler=sampler, derived=derived,
            replicates=check_replicates(data.get("replicates")),
        )

    def to_mapping(self) -> dict[str, Any]:
        """The canonical form (what is stored; ``parent``, ``sampler`` and ``derived`` only when set,
        ``keep_top_trials`` and ``replicates`` only when not the default, so older studies keep their hash)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("parent", "sampler", "derived") and value is None:
                continue
            if f.name == "keep_top_trials" and value == DEFAULT_KEEP_TOP_TRIALS:
                continue
            if f.name == "replicates" and value == DEFAULT_REPLICATES:
                continue
            if f.name == "objective":
                value = {"metric": value[0], "mode": value[1]}
            out[f.name] = value
        return out

    @property
    def hash(self) -> str:
        """Identifies the study whatever its budget (see :func:`spec_hash`)."""
        return spec_hash(self.to_mapping())

    def __hash__(self) -> int:  # consistent with ==: every field, the budget included
        return hash(json.dumps(self.to_mapping(), sort_keys=True, default=str))

    @property
    def space(self) -> SearchSpace:
        return SearchSpace.from_spec(self.search_space, allow_fixed_only=_fixed_only(self.design))

    def replicate_plan(self, budget: int | None = None) -> ReplicatePlan:
        """How ``budget`` (default: ``trials``) splits between search trials and replicates."""
        return replicate_plan(self.space, self.trials if budget is None else budget, self.replicates,
                              replicated=get_design(self.design).capabilities.replicated)

    def replace(self, **changes: Any) -> "StudySpec":
        """A copy with ``changes``, validated again."""
        return StudySpec.from_mapping({**self.to_mapping(), **changes})


#: Every key a YAML spec may hold (kept for old imports; the source is :class:`StudySpec`).
SPEC_KEYS = StudySpec.file_keys()
#: Fields that may change between two runs of the same study.
_MUTABLE = StudySpec.MUTABLE


def build_spec(name: str, *, space: SearchSpace | Mapping[str, Any], **options: Any) -> dict[str, Any]:
    """Validate everything and return the canonical spec (what is stored); see :class:`StudySpec`."""
    data = {k: v for k, v in options.items() if v is not None or k in StudySpec.REQUIRED}
    return StudySpec.from_mapping({"study": name, "search_space": space, **data}).to_mapping()


def _derived(value: Mapping[str, Any]) -> dict[str, Any]:
    """The lineage of a derived study: ``{"kind", "source", "trial"}`` (trial: a number or None), and for
    ``next`` the ``findings`` that called for it."""
    if not isinstance(value, Mapping) or value.get("kind") not in DERIVED_KINDS or not isinstance(value.get("source"), str):
        raise SpecError("derived", f"expected {{kind, source, trial}}, got {value!r}", f"kind is one of {', '.join(DERIVED_KINDS)}")
    trial = value.get("trial")
    if trial is not None and (isinstance(trial, bool) or not isinstance(trial, int)):
        raise SpecError("derived.trial", f"expected a trial number, got {trial!r}", "e.g. trial: 3")
    out = {"kind": value["kind"], "source": value["source"], "trial": trial}
    findings = value.get("findings")
    if findings is not None:  # `tunebook next`: the check ids that called for the study
        if not isinstance(findings, (list, tuple)) or not all(isinstance(f, str) and f for f in findings):
            raise SpecError("derived.findings", f"expected a list of check ids, got {findings!r}",
                            "e.g. findings: [search_space_boundary]")
        out["findings"] = list(findings)
    return out


def spec_hash(spec: Mapping[str, Any]) -> str:
    """Hash of everything that defines the study except the budget."""
    fixed_part = {k: v for k, v in spec.items() if k not in _MUTABLE}
    return hashlib.sha256(json.dumps(fixed_part, sort_keys=True, default=str).encode()).hexdigest()


def _first_difference(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = "") -> tuple[str, Any, Any]:
    """The first field whose stored and new values differ as the spec hash sees them (JSON: ``-0.0`` is
    not ``0.0``, ``true`` is not ``1``), with both values."""
    for key in sorted(set(old) | set(new), key=str):
        if key in _MUTABLE and not prefix:
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
) -> Study:
    """Create a study, or resume the stored one of the same name and spec.

    ``replicates``: seeds of each scientific group's best re-run after the
    search, within ``trials`` (default 3; 0 turns the replicate phase off; see
    :mod:`tunebook.designs.replicates` for how the budget splits).

    Raising ``trials`` of a stored study appends the next design points; any
    other difference raises :class:`SpecError` suggesting a new name. Nothing
    is written unless the whole spec is valid.
    """
    if parent is not None:  # stored as the previous round even when it is not a proposing design's warm start
        _check_name(parent, "parent")
    proposes = get_design(design).capabilities.proposes if isinstance(design, str) else False
    study_spec = StudySpec.from_mapping({
        "study": name, "search_space": space, "objective": objective, "trials": trials,
        "max_train_steps": max_train_steps, "goal": goal, "experiment": experiment, "train": train,
        "design": design, "scientific_design": scientific_design, "seed": seed, "infeasible_if": infeasible_if,
        "keep_checkpoints": keep_checkpoints, "keep_top_trials": keep_top_trials, "grid_force": grid_force,
        # the spec's parent warm-starts a proposing design; for others it is the record's lineage only
        "parent": parent if proposes else None, "sampler": sampler, "derived": derived, "replicates": replicates,
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
    if study_spec.derived and study_spec.derived["kind"] == "next" and round == 1:  # a next study written to YAML
        source = store.get_study(study_spec.derived["source"])
        round = source.round + 1 if source is not None else round
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
        searched = stored - len(replicate_numbers(store, name))
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


def read_spec_file(path: str | Path) -> tuple[dict[str, Any], str]:
    """Parse a YAML study spec; returns the mapping and the file's content hash."""
    path = Path(path)
    if not path.is_file():
        raise SpecError("spec", f"no such file: {str(path)!r}", "give the path of a study YAML (see `tunebook init`)")
    raw = specio.read_limited(path, specio.MAX_SPEC_BYTES, "spec", "a study spec is a few kilobytes; move data out of it")
    data = specio.load_yaml(raw, path.name)  # no aliases, errors as one line
    if not isinstance(data, Mapping):
        raise SpecError("spec", f"{path.name} must be a mapping of fields", "see `tunebook init` for an example")
    specio.check_spec_mapping(data)  # plain JSON values, text keys, storage a URL
    unknown = [k for k in data if k not in SPEC_KEYS]
    if unknown:
        raise SpecError(str(unknown[0]), "unknown field", f"the fields are: {', '.join(SPEC_KEYS)}")
    for key in (*StudySpec.REQUIRED, "train"):
        if key not in data:
            raise SpecError(key, "is missing", "see `tunebook init` for a complete example")
    return dict(data), hashlib.sha256(raw).hexdigest()[:12]


def _stored_config_path(path: str | Path, storage: str | Storage | None) -> str:
    """The spec file as stored: relative to a SQLite store's folder when it lies under it, else absolute,
    so that every worker resolves it the same way whatever its working directory."""
    absolute = Path(path).resolve()
    try:
        url = storage.url if isinstance(storage, Storage) else normalize_url(storage)
    except SpecError:
        return str(absolute)
    if url.startswith("sqlite:///"):
        try:
            return str(absolute.relative_to(Path(url[len("sqlite:///"):]).parent))
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
        _check_name(parent, "parent")
    if parent is not None and isinstance(design_name, str) and not get_design(design_name).capabilities.proposes:
        # only a proposing design is warm-started from its parent: anywhere else the field would do nothing
        raise SpecError("parent", f"design {design_name} does not use a parent (only a proposing design, "
                        "e.g. bayesian, is warm-started from one)", "remove parent:, or set design: bayesian")
    study = create_study_from_spec(
        StudySpec.from_mapping(fields_), storage=storage, config_path=_stored_config_path(path, storage), config_hash=digest,
        repro_command=repro_command, parent=parent,
    )
    return study, train
