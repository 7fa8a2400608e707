"""What the procedures share: deriving a study from another (with its lineage), its training function,
and recording a conclusion.

Every study a procedure makes records where it comes from in its spec,
``spec["derived"] = {"kind", "source", "trial"}`` (kind: retrain,
early-instability, warmup, next-round, bayesian-exploitation, study-variance),
so that ``compare`` never mistakes an early-instability run for a retrain.
Stores written before this key existed still open: their derived studies
simply have no lineage (see :func:`lineage`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from tunebook.space import SearchSpace
from tunebook.storage import redact
from tunebook.study import Study, create_study, resolve_train


@dataclass
class Conclusion:
    """A procedure's answer in the playbook's words, its evidence, and the studies it made."""

    kind: str
    conclusion: str
    evidence: dict[str, Any] = field(default_factory=dict)
    studies: list[str] = field(default_factory=list)
    concluded: bool = True  # False: the procedure refuses to conclude (see the conclusion for why)


def record(study: Study, result: Conclusion) -> Conclusion:
    """Write the conclusion and its evidence to the notebook, under the study's experiment."""
    study.storage.add_note(result.kind, result.conclusion, {**result.evidence, "concluded": result.concluded,
                                                            "studies": result.studies},
                           experiment=study.experiment, study=study.name)
    return result


def best_params(study: Study, number: int | None = None) -> tuple[dict[str, Any], Any]:
    """Every hyperparameter (fixed included) of the best trial, or of trial ``number``."""
    from tunebook.errors import SpecError

    if number is None:
        trial = study.best_trial()
        if trial is None:
            raise SpecError("study", f"study {study.name!r} has no completed trial yet", "run it first")
    else:
        trial = next((t for t in study.trials() if t.number == number), None)
        if trial is None:
            raise SpecError("--trial", f"study {study.name!r} has no trial #{number}", "give a trial number it has, or 'best'")
    return {**study.space.fixed, **trial.params}, trial


# the training function ----------------------------------------------------------------
def portable_train_ref(study: Study, ref: str | None) -> str | None:
    """``ref`` with a ``file.py`` part made absolute against the study's spec folder (derived studies have none)."""
    if not ref or ref.count(":") != 1:
        return ref
    module, func = ref.split(":")
    if module.endswith(".py") and not Path(module).is_absolute():
        return f"{(study.train_base_dir() / module).resolve()}:{func}"
    return ref


def study_train(study: Study, override: str | None = None) -> tuple[str, Callable[..., Any]]:
    """The training function a procedure runs ``study``'s derived studies with: ``--train``, else the stored one.

    ``file.py:function`` is resolved against the spec's folder (as ``tunebook worker``
    does); raises :class:`SpecError` before anything is stored.
    """
    from tunebook.errors import SpecError

    if override is not None:  # typed on the command line: a file is relative to the current folder
        module, _, func = override.partition(":")
        ref = f"{Path(module).resolve()}:{func}" if module.endswith(".py") and ":" in override else override
        return ref, resolve_train(ref, Path.cwd())
    ref = study.train_ref
    if not ref:
        raise SpecError("--train", f"study {study.name!r} stores no training function",
                        "pass --train module:function (or path/to/file.py:function); tb.run(study, train) records a "
                        "module-level function for next time")
    ref = portable_train_ref(study, ref)
    return ref, resolve_train(ref, study.train_base_dir())


def run_command(name: str, storage: Any) -> str:
    """The command that runs a stored study (its ``reproduce`` column)."""
    return f"tunebook run {name} --storage {redact(storage.url)}"


# lineage --------------------------------------------------------------------------------
def lineage(study: Study) -> dict[str, Any] | None:
    """``{"kind", "source", "trial"}`` of a derived study; None for a study no procedure made (or an old store's)."""
    return _lineage(study.record.spec)


def _lineage(spec: dict[str, Any]) -> dict[str, Any] | None:
    if spec.get("derived"):
        return spec["derived"]
    if spec.get("design") == "bayesian" and spec.get("parent"):  # a YAML exploitation study names its exploration
        return {"kind": "bayesian-exploitation", "source": spec["parent"], "trial": None}
    return None


def derived_studies(source: Study, kind: str, *, trial: int | None = None, nonempty: bool = True) -> list[Study]:
    """The studies derived from ``source`` by ``kind`` (of trial ``trial`` when given), oldest first.

    ``nonempty``: only those with at least one completed trial (an empty one a
    failed command left behind is ignored).
    """
    out = []
    for record in source.storage.list_studies():
        derived = _lineage(record.spec)
        if not derived or derived.get("kind") != kind or derived.get("source") != source.name:
            continue
        if trial is not None and derived.get("trial") != trial:
            continue
        study = Study(record, source.storage)
        if nonempty and not study.counts()["completed"]:
            continue
        out.append(study)
    return sorted(out, key=lambda s: s.record.created_at or 0)


def derived_study(
    source: Study,
    name: str,
    *,
    kind: str,
    train: str | None = None,
    trial: int | None = None,
    space: SearchSpace | dict[str, Any],
    trials: int,
    goal: str,
    max_train_steps: int | None = None,
    design: str = "quasi_random",
    round: int | None = None,
    objective: tuple[str, str] | None = None,
    infeasible_if: dict[str, Any] | None = None,
    seed: int | None = None,
) -> Study:
    """A study in the same experiment, with the same objective and rules, recording its lineage.

    ``train`` (default: the source's) is stored with it, so ``tunebook run NAME``
    and ``tunebook worker`` run it; its reproduce column is that command.
    Create it only once everything the procedure needs is validated.
    """
    return create_study(
        name,
        space=space,
        objective=objective or source.objective,
        trials=trials,
        max_train_steps=max_train_steps or source.max_train_steps,
        goal=goal,
        storage=source.storage,
        experiment=source.experiment,
        train=train or portable_train_ref(source, source.train_ref),
        design=design,
        infeasible_if=source.infeasible_if if infeasible_if is None else infeasible_if,
        keep_checkpoints=source.keep_checkpoints,
        grid_force=design == "grid",
        parent=source.name,
        round=source.record.round if round is None else round,
        repro_command=run_command(name, source.storage),
        seed=seed,
        derived={"kind": kind, "source": source.name, "trial": trial},
    )


def free_name(source: Study, base: str) -> str:
    """``base``, or ``base-2``, ``base-3``... : the first name the store does not hold."""
    if source.storage.get_study(base) is None:
        return base
    i = 2
    while source.storage.get_study(f"{base}-{i}") is not None:
        i += 1
    return f"{base}-{i}"
