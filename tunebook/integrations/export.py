"""Export a stored study to the trackers users already have.

>>> from tunebook.integrations import export
>>> export.export(study, to="csv", target="trials.csv")          # doctest: +SKIP
>>> export.to_mlflow(study, "sqlite:///mlflow.db")               # doctest: +SKIP

Every exporter reads the study through :func:`study_rows` (one plain row per
trial, each hyperparameter with its role) and :func:`trial_curves`; the
targets are TensorBoard (event files, scalars and HParams in one run
directory per trial), MLflow (a parent run for the study, a child run per
trial), W&B (offline runs grouped by study), CSV and Parquet (a trials table
and a long-form curves table). Each target's library is imported lazily; a
missing one raises :class:`~tunebook.errors.MissingExtraError` naming the extra.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from tunebook.errors import MissingExtraError, SpecError
from tunebook.integrations.trackers import TRACKERS, Tracker, function, live_kinds
from tunebook.study import Study

def live_writers(pairs: Sequence[Sequence[str]], field: str = "--write-to") -> list[Any]:
    """Writer factories for ``[(kind, target), ...]`` (kinds of :data:`~tunebook.integrations.trackers.TRACKERS`),
    each checked now (a missing extra, a folder that cannot be written, a server that does not answer): one line
    naming ``field`` otherwise, before any trial runs."""
    out = []
    for kind, target in pairs:
        tracker = _tracker(kind, field)
        if tracker.live is None:
            fix = (f"{kind} is written after the fact: `tunebook export NAME --to {kind} {tracker.example or 'TARGET'}`; "
                   f"live: {', '.join(live_kinds())}")
            raise SpecError(field, f"{kind!r} is not a live writer", fix)
        check_target(tracker, target, field)
        try:
            out.append(function(tracker.live)(target))
        except MissingExtraError:
            raise
        except SpecError as exc:  # the tracker's own check of its target, told as the option's
            raise SpecError(field, f"{kind} {exc.problem}", exc.fix) from None
        except Exception as exc:  # noqa: BLE001 - a tracker's own error about the target
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise SpecError(field, f"{kind} {target!r}: {first}", "give a target the tracker can write to") from None
    return out


def _tracker(kind: str, field: str) -> Tracker:
    tracker = TRACKERS.get(kind) if isinstance(kind, str) else None
    if tracker is None:
        raise SpecError(field, f"unknown tracker {kind!r}", f"use one of {', '.join(TRACKERS)}")
    return tracker


def check_target(tracker: Tracker, target: Any, field: str) -> None:
    """What every tracker's target goes through before anything is written: not empty; a folder writable; the
    tracker's own check (e.g. a server answering within a few seconds), its errors told as ``field``'s."""
    if not str(target).strip():
        raise SpecError(field, f"{tracker.kind} needs a {tracker.target}, got an empty one",
                        f"e.g. {tracker.kind} {tracker.example or 'TARGET'}")
    if tracker.check is not None:  # first: it may refuse the target before a folder is made for it
        try:
            function(tracker.check)(target)
        except SpecError as exc:
            raise SpecError(field, f"{tracker.kind} {exc.problem}", exc.fix) from None
    if tracker.target == "folder":
        _writable_folder(tracker.kind, target, field)


def _writable_folder(kind: str, target: str, field: str) -> None:
    from tunebook.specio import writable_folder

    path = Path(target)
    if path.exists() and not path.is_dir():
        raise SpecError(field, f"{kind} {str(target)!r} is a file", "give a folder")
    try:
        writable_folder(path)
    except OSError as exc:
        raise SpecError(field, f"{kind} {str(target)!r}: cannot write there ({exc.strerror or exc})",
                        "give a folder this user can write") from None


@dataclass(frozen=True)
class TrialExport:
    """One trial as every exporter sees it (plain values, no store handles)."""

    id: int
    number: int
    state: str
    seed: int
    params: dict[str, Any]  # the trial's own hyperparameters plus the study's fixed ones
    value: float | None
    best_step: int | None
    infeasible_reason: str | None
    error: str | None
    attempts: int
    started_at: float | None
    finished_at: float | None


def roles_of(study: Study) -> dict[str, str]:
    """Hyperparameter name -> scientific | nuisance | fixed."""
    return dict(study.space.roles)


def study_rows(study: Study) -> list[TrialExport]:
    """Every stored trial of ``study``, by number (one query)."""
    fixed = dict(study.space.fixed)
    return [
        TrialExport(
            id=t.id, number=t.number, state=t.state, seed=t.seed, params={**fixed, **t.params},
            value=t.value, best_step=t.best_step, infeasible_reason=t.infeasible_reason, error=t.error,
            attempts=t.attempts, started_at=t.started_at, finished_at=t.finished_at,
        )
        for t in study.trials()
    ]


def trial_curves(study: Study, trial: TrialExport) -> dict[str, list[tuple[int, float]]]:
    """``{metric: [(step, value), ...]}`` of one trial, in step order."""
    return study.metrics(trial)


def summary_of(trial: TrialExport) -> dict[str, Any]:
    """What :meth:`tunebook.writers.MetricWriter.write_summary` receives for a finished trial."""
    return {"state": trial.state, "value": trial.value, "best_step": trial.best_step,
            "infeasible_reason": trial.infeasible_reason, "error": trial.error}


def trial_info(study: Study, trial: TrialExport) -> Any:
    """The :class:`tunebook.writers.TrialInfo` a live writer would have received for ``trial``."""
    from tunebook.writers import TrialInfo

    return TrialInfo(study=study.name, number=trial.number, seed=trial.seed, params=trial.params,
                     roles=roles_of(study), objective=study.objective, goal=study.goal,
                     attempt=max(1, trial.attempts), storage_id=storage_id(study))


def storage_id(study: Study) -> str:
    """A stable identity of the study's store (its URL without credentials)."""
    from tunebook.storage import redact

    return redact(study.storage.url)


def replay(study: Study, factory: Callable[[Any], Any], skip: Callable[[TrialExport], bool] | None = None) -> int:
    """Feed every finished or running trial of ``study`` through a live writer made by ``factory``.

    The exporters are their live writers replayed over the stored curves, so
    a study exported after the fact looks exactly like one streamed live.
    Returns the number of trials written.
    """
    written = 0
    for trial in study_rows(study):
        if trial.state == "pending" or (skip is not None and skip(trial)):
            continue
        writer = factory(trial_info(study, trial))
        try:
            writer.write_hparams(trial.params)
            by_step: dict[int, dict[str, float]] = {}
            for name, points in trial_curves(study, trial).items():
                for step, value in points:
                    by_step.setdefault(step, {})[name] = value
            for step in sorted(by_step):
                writer.write_scalars(step, by_step[step])
            if trial.state != "running":
                writer.write_summary(summary_of(trial))
        finally:
            writer.close()
        written += 1
    return written


def require(module: str, extra: str, purpose: str) -> Any:
    """Import ``module`` or raise :class:`MissingExtraError` naming ``tunebook[extra]``."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtraError(module.split(".")[0], extra, purpose) from None


def export(study: Study, *, to: str, target: str | Path) -> Any:
    """Export ``study`` to tracker ``to`` (a kind of :data:`~tunebook.integrations.trackers.TRACKERS`: tensorboard,
    mlflow, wandb, csv, parquet) at ``target`` (a folder, URI or file), after checking the target."""
    tracker = _tracker(to, "to")
    check_target(tracker, target, "target")
    return function(tracker.exporter)(study, target)


def to_tensorboard(study: Study, directory: str | Path) -> Path:
    """One run directory per trial under ``directory``: scalars and HParams together."""
    return export(study, to="tensorboard", target=directory)


def to_mlflow(study: Study, uri: str) -> str:
    """A parent run for the study and a child run per trial in the tracking store at ``uri``; returns the parent's id."""
    return export(study, to="mlflow", target=uri)


def to_wandb(study: Study, directory: str | Path) -> Path:
    """Offline W&B runs (one per trial, grouped by study) under ``directory``."""
    return export(study, to="wandb", target=directory)


def to_csv(study: Study, path: str | Path) -> tuple[Path, Path]:
    """The trials table at ``path`` and the curves in long form beside it (``-curves`` suffix)."""
    return export(study, to="csv", target=path)


def to_parquet(study: Study, path: str | Path) -> tuple[Path, Path]:
    """As :func:`to_csv`, in Parquet."""
    return export(study, to="parquet", target=path)
