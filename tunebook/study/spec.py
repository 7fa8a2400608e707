"""The study spec: :class:`StudySpec` (the one list of a spec's fields, validated), building one from
keywords (:func:`build_spec`) or a YAML file (:func:`read_spec_file`), and its hash (:func:`spec_hash`).

A spec is plain data: the fields that never change under a study's name (everything but ``trials``,
:attr:`StudySpec.MUTABLE`) make its hash, and a stored study is re-opened only by the same hash.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, Mapping

from tunebook import specio
from tunebook.designs import check_space, get_design, sampler_for
from tunebook.designs.length_probes import DEFAULT_LENGTH_PROBES, check_length_probes
from tunebook.designs.replicates import DEFAULT_REPLICATES, ReplicatePlan, check_replicates, replicate_plan
from tunebook.errors import SpecError
from tunebook.space import SearchSpace, spec_number

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")


#: Kinds of derived studies (``spec["derived"]["kind"]``), made by the procedures from a source study.
DERIVED_KINDS = ("retrain", "early-instability", "warmup", "next-round", "bayesian-exploitation", "study-variance",
                 "next")


def allows_fixed_only(design: str) -> bool:
    """May a study of ``design`` fix every value (a registration capability; False for a design not registered here)?"""
    try:
        return get_design(design).capabilities.fixed_only
    except SpecError:
        return False


def check_name(name: Any, field: str) -> str:
    """``name`` when it is a valid study or experiment name, else a :class:`SpecError` naming ``field``."""
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
    #: runs of the best at twice max_train_steps when the logged learning rate decays (:mod:`tunebook.designs.length_probes`)
    length_probes: int = DEFAULT_LENGTH_PROBES

    #: Fields a spec must give.
    REQUIRED: ClassVar[tuple[str, ...]] = ("study", "objective", "trials", "max_train_steps", "search_space")
    #: Keys a YAML spec may hold that are not part of the study (where it is stored).
    FILE_ONLY: ClassVar[tuple[str, ...]] = ("storage",)
    #: Fields that may change between two runs of the same study.
    MUTABLE: ClassVar[tuple[str, ...]] = ("trials", "storage")
    #: Fields added after studies were first stored: kept out of the stored spec (and its hash) at these defaults.
    STORED_UNLESS_DEFAULT: ClassVar[dict[str, Any]] = {
        "keep_top_trials": DEFAULT_KEEP_TOP_TRIALS, "replicates": DEFAULT_REPLICATES,
        "length_probes": DEFAULT_LENGTH_PROBES}

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
            raise SpecError(str(unknown[0]), "unknown field", _fields_hint(str(unknown[0]), cls.file_keys()))
        for key in cls.REQUIRED:
            if key not in data:
                raise SpecError(key, "is missing", "see `tunebook init` for a complete example")
        name = check_name(data["study"], "study")
        goal = data.get("goal")
        goal = "" if goal is None else goal
        if not isinstance(goal, str):
            raise SpecError("goal", f"expected text, got {goal!r}", "write the question this study answers")
        experiment = data.get("experiment")
        experiment = check_name(experiment, "experiment") if experiment else name
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
            check_name(parent, "parent")
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
            length_probes=check_length_probes(data.get("length_probes")),
        )

    def to_mapping(self) -> dict[str, Any]:
        """The canonical form (what is stored; ``parent``, ``sampler`` and ``derived`` only when set,
        ``keep_top_trials``, ``replicates`` and ``length_probes`` only when not the default, so older studies keep their hash)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("parent", "sampler", "derived") and value is None:
                continue
            if f.name in self.STORED_UNLESS_DEFAULT and value == self.STORED_UNLESS_DEFAULT[f.name]:
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
        return SearchSpace.from_spec(self.search_space, allow_fixed_only=allows_fixed_only(self.design))

    def replicate_plan(self, budget: int | None = None) -> ReplicatePlan:
        """How ``budget`` (default: ``trials``) splits between search trials and replicates."""
        return replicate_plan(self.space, self.trials if budget is None else budget, self.replicates,
                              replicated=get_design(self.design).capabilities.replicated)

    def replace(self, **changes: Any) -> "StudySpec":
        """A copy with ``changes``, validated again."""
        return StudySpec.from_mapping({**self.to_mapping(), **changes})


#: Every key a YAML spec may hold (kept for old imports; the source is :class:`StudySpec`).
SPEC_KEYS = StudySpec.file_keys()


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
    fixed_part = {k: v for k, v in spec.items() if k not in StudySpec.MUTABLE}
    return hashlib.sha256(json.dumps(fixed_part, sort_keys=True, default=str).encode()).hexdigest()


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
        raise SpecError(str(unknown[0]), "unknown field", _fields_hint(str(unknown[0]), SPEC_KEYS))
    for key in (*StudySpec.REQUIRED, "train"):
        if key not in data:
            raise SpecError(key, "is missing", "see `tunebook init` for a complete example")
    return dict(data), hashlib.sha256(raw).hexdigest()[:12]


def _fields_hint(name: str, fields: Any) -> str:
    """'did you mean max_train_steps?' for a near miss, then the fields a spec takes."""
    import difflib

    known = list(fields)
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.75)
    return (f"did you mean {close[0]}? " if close else "") + f"the fields are: {', '.join(known)}"

