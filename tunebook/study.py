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
from pathlib import Path
from typing import Any, Callable, Mapping

from tunebook._errors import SpecError
from tunebook.design import DESIGNS, GENERATOR_VERSION, SCIENTIFIC_DESIGNS, materialize
from tunebook.space import SearchSpace, _number
from tunebook.storage import open_storage, redact
from tunebook.storage.base import FINISHED, Storage, StudyExists, StudyRecord, TrialRecord

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
SPEC_KEYS = (
    "study",
    "goal",
    "experiment",
    "train",
    "objective",
    "trials",
    "max_train_steps",
    "search_space",
    "design",
    "scientific_design",
    "seed",
    "infeasible_if",
    "keep_checkpoints",
    "grid_force",
    "storage",
    "parent",
    "sampler",
)
#: Kinds of derived studies (``spec["derived"]["kind"]``), made by the procedures from a source study.
DERIVED_KINDS = ("retrain", "early-instability", "warmup", "next-round", "bayesian-exploitation", "study-variance")
#: Designs a study can have: the materialized ones, and Bayesian optimization (proposed as it runs).
STUDY_DESIGNS = (*DESIGNS, "bayesian")
#: Fields that may change between two runs of the same study.
_MUTABLE = ("trials", "storage")


def _check_name(name: Any, field: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise SpecError(
            field,
            f"invalid name {name!r}",
            "use letters, digits, '.', '_' and '-' (at most 200, starting with a letter or digit)",
        )
    return name


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
        rules[metric] = {k: _number(v, f"{field}.{k}") for k, v in rule.items()}
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
    module_name, func_name = ref.split(":")
    base = Path(base_dir) if base_dir else Path.cwd()
    try:
        if module_name.endswith(".py"):
            path = (base / module_name).resolve()
            if not path.exists():
                raise SpecError("train", f"file {str(path)!r} does not exist", "fix the path before ':'")
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
    except ImportError as exc:
        raise SpecError("train", f"cannot import {module_name!r}: {exc}", "check the module path and the installed extras") from None
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
    return f"{module_name}:{name}" if found is func else None


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
    if best is not None:
        params = best.params or study.space.fixed  # a replicate study varies nothing: show what it holds fixed
        lines.append(f"best {metric} ({mode}) = {best.value:.6g} at step {best.best_step}, trial #{best.number}: {params}")
    total = sum(counts.values())
    if total and counts["failed"] == total:
        lines.append(f"every trial failed: see the errors with `tunebook status {study.name}`, fix the training function, "
                     f"then `tunebook run {study.name} --retry-failed`")
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
        self.space = SearchSpace.from_spec(spec["search_space"], allow_fixed_only=spec["design"] == "replicates")
        self.objective: tuple[str, str] = (record.objective_metric, record.objective_mode)
        self.max_train_steps: int = record.max_train_steps
        self.seed: int = record.seed
        self.design: str = spec["design"]
        self.scientific_design: str = spec["scientific_design"]
        self.infeasible_if: dict[str, dict[str, float]] = spec.get("infeasible_if") or {}
        self.keep_checkpoints: int = spec.get("keep_checkpoints", 3)
        #: The lineage of a study a procedure derived (``{"kind", "source", "trial"}``), else None.
        self.derived: dict[str, Any] | None = spec.get("derived")

    @property
    def train_ref(self) -> str | None:
        """The training function: the spec's ``train``, else the one ``tb.run`` recorded (a ``train`` note)."""
        if self.record.spec.get("train"):
            return self.record.spec["train"]
        notes = self.storage.get_notes(study=self.name, kind="train")
        return notes[-1]["evidence"].get("train") if notes else None

    def train_base_dir(self) -> Path:
        """The folder a ``file.py:function`` reference is resolved against: the spec's folder, else the current one."""
        config = self.record.config_path
        return Path(config).resolve().parent if config else Path.cwd()

    @property
    def id(self) -> int:
        assert self.record.id is not None
        return self.record.id

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

    def best_trial(self) -> TrialRecord | None:
        """The completed trial with the best value (ties: the lower number), found by the store."""
        page, _ = self.storage.trials_page(self.id, states=["completed"], order="value",
                                           descending=self.objective[1] == "max", limit=1)
        return page[0] if page and page[0].value is not None else None

    def is_finished(self) -> bool:
        return all(t.state in FINISHED for t in self.trials())

    def metrics(self, trial: TrialRecord | int, names: list[str] | None = None) -> dict[str, list[tuple[int, float]]]:
        """Curves of one trial: ``{metric: [(step, value), ...]}``."""
        trial_id = trial if isinstance(trial, int) else trial.id
        out: dict[str, list[tuple[int, float]]] = {}
        for row in self.storage.get_metrics(trial_id, names):
            out.setdefault(row.name, []).append((row.step, row.value))
        return out

    def trials_dataframe(self) -> Any:
        """The trials as a pandas DataFrame (columns ``role.name`` per hyperparameter)."""
        from tunebook.analysis.data import trials_dataframe

        return trials_dataframe(self)

    def __repr__(self) -> str:
        return f"Study({self.name!r}, trials={self.trials_budget}, storage={redact(self.storage.url)!r})"


def build_spec(
    name: str,
    *,
    space: SearchSpace | Mapping[str, Any],
    objective: Any,
    trials: Any,
    max_train_steps: Any,
    goal: str = "",
    experiment: str | None = None,
    train: str | None = None,
    design: str = "quasi_random",
    scientific_design: str = "crossed",
    seed: Any = None,
    infeasible_if: Any = None,
    keep_checkpoints: Any = 3,
    grid_force: bool = False,
    parent: str | None = None,
    sampler: str | None = None,
    derived: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Validate everything and return the canonical spec (what is stored)."""
    name = _check_name(name, "study")
    if not isinstance(goal, str):
        raise SpecError("goal", f"expected text, got {goal!r}", "write the question this study answers")
    experiment = _check_name(experiment, "experiment") if experiment is not None else name
    if not isinstance(space, SearchSpace):
        space = SearchSpace.from_spec(space, allow_fixed_only=design == "replicates")
    elif design != "replicates" and not space.params:
        raise SpecError("search_space", "nothing varies", "give at least one scientific or nuisance hyperparameter")
    metric, mode = _objective(objective)
    trials = _positive_int(trials, "trials", 24)
    max_train_steps = _positive_int(max_train_steps, "max_train_steps", 2000)
    if design not in STUDY_DESIGNS:
        raise SpecError("design", f"unknown design {design!r}", f"use one of {', '.join(STUDY_DESIGNS)}")
    if design == "bayesian" and space.conditional:
        raise SpecError("design", "bayesian does not support conditional spaces yet", "use design: quasi_random")
    if scientific_design not in SCIENTIFIC_DESIGNS:
        raise SpecError("scientific_design", f"unknown value {scientific_design!r}", "use 'crossed' or 'joint'")
    if sampler is not None and design != "bayesian":
        raise SpecError("sampler", "only a bayesian study has a sampler", "add design: bayesian, or remove sampler")
    if design == "bayesian":
        sampler = sampler or "gp"
        if sampler not in ("gp", "tpe"):
            raise SpecError("sampler", f"unknown sampler {sampler!r}", "use 'gp' (Optuna's GPSampler) or 'tpe'")
    if parent is not None:
        _check_name(parent, "parent")
    if seed is None:
        seed = _default_seed(name)
    elif isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise SpecError("seed", f"expected a non-negative integer, got {seed!r}", "e.g. seed: 0")
    keep = _positive_int(keep_checkpoints, "keep_checkpoints", 3)
    if not isinstance(grid_force, bool):
        raise SpecError("grid_force", f"expected true or false, got {grid_force!r}", "write grid_force: true")
    if train is not None and (not isinstance(train, str) or train.count(":") != 1):
        raise SpecError("train", f"expected 'module:function', got {train!r}", "e.g. train: tunebook.workloads.digits:train")
    return {
        "study": name,
        "goal": goal,
        "experiment": experiment,
        "train": train,
        "objective": {"metric": metric, "mode": mode},
        "trials": trials,
        "max_train_steps": max_train_steps,
        "search_space": space.to_spec(),
        "design": design,
        "scientific_design": scientific_design,
        "seed": seed,
        "infeasible_if": _rules(infeasible_if),
        "keep_checkpoints": keep,
        "grid_force": grid_force,
        **({"parent": parent} if parent is not None else {}),
        **({"sampler": sampler} if sampler is not None else {}),
        **({"derived": _derived(derived)} if derived is not None else {}),
    }


def _derived(value: Mapping[str, Any]) -> dict[str, Any]:
    """The lineage of a derived study: ``{"kind", "source", "trial"}`` (trial: a number or None)."""
    if not isinstance(value, Mapping) or value.get("kind") not in DERIVED_KINDS or not isinstance(value.get("source"), str):
        raise SpecError("derived", f"expected {{kind, source, trial}}, got {value!r}", f"kind is one of {', '.join(DERIVED_KINDS)}")
    trial = value.get("trial")
    if trial is not None and (isinstance(trial, bool) or not isinstance(trial, int)):
        raise SpecError("derived.trial", f"expected a trial number, got {trial!r}", "e.g. trial: 3")
    return {"kind": value["kind"], "source": value["source"], "trial": trial}


def spec_hash(spec: Mapping[str, Any]) -> str:
    """Hash of everything that defines the study except the budget."""
    fixed_part = {k: v for k, v in spec.items() if k not in _MUTABLE}
    return hashlib.sha256(json.dumps(fixed_part, sort_keys=True, default=str).encode()).hexdigest()


def _first_difference(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = "") -> tuple[str, Any, Any]:
    for key in sorted(set(old) | set(new), key=str):
        if key in _MUTABLE and not prefix:
            continue
        a, b = old.get(key), new.get(key)
        if a != b:
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
    grid_force: bool = False,
    config_path: str | None = None,
    config_hash: str | None = None,
    repro_command: str | None = None,
    parent: str | None = None,
    round: int = 1,
    sampler: str | None = None,
    derived: Mapping[str, Any] | None = None,
) -> Study:
    """Create a study, or resume the stored one of the same name and spec.

    Raising ``trials`` of a stored study appends the next design points; any
    other difference raises :class:`SpecError` suggesting a new name. Nothing
    is written unless the whole spec is valid.
    """
    spec = build_spec(
        name,
        space=space,
        objective=objective,
        trials=trials,
        max_train_steps=max_train_steps,
        goal=goal,
        experiment=experiment,
        train=train,
        design=design,
        scientific_design=scientific_design,
        seed=seed,
        infeasible_if=infeasible_if,
        keep_checkpoints=keep_checkpoints,
        grid_force=grid_force,
        parent=parent if design == "bayesian" else None,
        sampler=sampler,
        derived=derived,
    )
    design_space = SearchSpace.from_spec(spec["search_space"], allow_fixed_only=spec["design"] == "replicates")
    store = storage if isinstance(storage, Storage) else open_storage(storage)
    # Validate the design (trial counts, grids) before touching the store.
    if spec["design"] == "bayesian":
        points = []  # proposed one at a time as the study runs (tunebook.bayesian)
        if parent is not None and store.get_study(parent) is None:
            raise SpecError("parent", f"no study named {parent!r} to warm-start from", "name the exploration study")
    else:
        points = materialize(
            design_space, spec["trials"], spec["seed"], design=spec["design"],
            scientific_design=spec["scientific_design"], grid_force=spec["grid_force"],
        )
    existing = store.get_study(name)
    if existing is not None:
        return _resume(store, existing, spec, points)
    git_commit, git_dirty = _git_state(Path(config_path).resolve() if config_path else Path.cwd())
    if repro_command is None:
        repro_command = _script_command()
    record = StudyRecord(
        name=name,
        spec=spec,
        spec_hash=spec_hash(spec),
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
        return _resume(store, existing, spec, points)
    return Study(record, store)


def _resume(store: Storage, existing: StudyRecord, spec: dict[str, Any], points: list[Any]) -> Study:
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
        if spec["design"] == "bayesian":
            store.extend_study(existing.id, [], want)  # type: ignore[arg-type]
            return Study(store.get_study(name), store)  # type: ignore[arg-type]
        if spec["design"] == "grid":
            raise SpecError("trials", "a grid study cannot be extended", f"use trials: {have}, or a new study name")
        new = [{"number": i, "params": p.params, "seed": p.seed} for i, p in enumerate(points)][have:]
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
    import yaml

    path = Path(path)
    if not path.is_file():
        raise SpecError("spec", f"no such file: {str(path)!r}", "give the path of a study YAML (see `tunebook init`)")
    raw = path.read_bytes()
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError("spec", f"{path.name} is not valid YAML{where}: {problem}", "fix the YAML syntax") from None
    if not isinstance(data, Mapping):
        raise SpecError("spec", f"{path.name} must be a mapping of fields", "see `tunebook init` for an example")
    unknown = [k for k in data if k not in SPEC_KEYS]
    if unknown:
        raise SpecError(str(unknown[0]), "unknown field", f"the fields are: {', '.join(SPEC_KEYS)}")
    for key in ("study", "objective", "trials", "max_train_steps", "search_space", "train"):
        if key not in data:
            raise SpecError(key, "is missing", "see `tunebook init` for a complete example")
    return dict(data), hashlib.sha256(raw).hexdigest()[:12]


def study_from_spec_file(
    path: str | Path, storage: str | Storage | None = None, repro_command: str | None = None
) -> tuple[Study, Callable[..., Any]]:
    """Validate a YAML spec (the ``train`` function included), then create or resume its study."""
    data, digest = read_spec_file(path)
    base_dir = Path(path).resolve().parent
    train = resolve_train(data.get("train"), base_dir)
    storage = storage if storage is not None else data.get("storage")
    study = create_study(
        data["study"],
        space=data["search_space"],
        objective=data["objective"],
        trials=data["trials"],
        max_train_steps=data["max_train_steps"],
        goal=data.get("goal") or "",
        storage=storage,
        experiment=data.get("experiment"),
        train=data["train"],
        design=data.get("design", "quasi_random"),
        scientific_design=data.get("scientific_design", "crossed"),
        seed=data.get("seed"),
        infeasible_if=data.get("infeasible_if"),
        keep_checkpoints=data.get("keep_checkpoints", 3),
        grid_force=data.get("grid_force", False),
        parent=data.get("parent"),
        sampler=data.get("sampler"),
        config_path=str(path),
        config_hash=digest,
        repro_command=repro_command,
    )
    return study, train
