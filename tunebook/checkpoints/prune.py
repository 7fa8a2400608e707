"""Bounded checkpoint disk: what a finished study keeps, and the disk its checkpoints take.

While a trial runs it keeps its ``keep_checkpoints`` best plus its latest (for resuming). Once it is
finished (completed or infeasible) the latest is no longer needed to resume it, and most trials will
never be looked at again. The policy (:class:`KeepPolicy`): each of the study's ``top_trials`` best
completed trials keeps every checkpoint it kept; every other finished trial keeps only its best one.
Trials that can still run (pending, running, failed: ``--retry-failed`` resumes them) are never touched.

:func:`after_trial` applies the policy when a trial finishes, touching at most two trials (the one that
finished and the one it pushed out of the top); :func:`plan` computes the whole study's plan (``tunebook
prune``: a dry run unless ``--apply``), including files in the study's folder that no manifest names
(left by a killed writer, or by trials since deleted); :func:`usage` measures the disk.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from tunebook.storage.base import CheckpointRecord, Storage, TrialRecord

#: Finished trials: their checkpoints are no longer needed to resume them.
FINISHED = ("completed", "infeasible")


@dataclass(frozen=True)
class KeepPolicy:
    """What a finished study keeps: every kept checkpoint of its ``top_trials`` best trials, the best
    checkpoint of each other finished trial. ``top_trials=None``: keep everything (no pruning)."""

    top_trials: int | None = 5

    def __post_init__(self) -> None:
        if self.top_trials is not None and (isinstance(self.top_trials, bool) or self.top_trials < 0):
            raise ValueError("top_trials: expected a non-negative integer or None")


@dataclass
class Plan:
    """What :func:`apply` would do: the manifests it would write and the files it would delete."""

    manifests: dict[int, list[CheckpointRecord]] = field(default_factory=dict)  # trial id -> what it keeps
    remove: list[Path] = field(default_factory=list)
    orphans: list[Path] = field(default_factory=list)  # files no manifest names
    trials: int = 0  # trials whose manifest shrinks

    @property
    def files(self) -> int:
        return len(self.remove) + len(self.orphans)

    @property
    def bytes(self) -> int:
        return sum(_size(p) for p in (*self.remove, *self.orphans))


@dataclass(frozen=True)
class Usage:
    """The disk a study's checkpoints take: bytes and files under ``folder``, in how many trial folders."""

    folder: Path
    bytes: int
    files: int
    trials: int

    def summary(self) -> str:
        """``84.3 MB in 12 files of 4 trials`` (what `status` and the dashboard show)."""
        return f"{human(self.bytes)} in {self.files} files of {self.trials} trials"


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _best_only(records: Sequence[CheckpointRecord], mode: str) -> list[CheckpointRecord]:
    """The best-valued record (earliest on ties); the latest when none has a value."""
    if not records:
        return []
    sign = 1.0 if mode == "min" else -1.0
    scored = [c for c in records if c.value is not None and not math.isnan(c.value)]
    if scored:
        return [min(scored, key=lambda c: (sign * c.value, c.step))]  # type: ignore[operator]
    return [max(records, key=lambda c: c.step)]


def _ranked(trials: Sequence[TrialRecord], mode: str) -> list[TrialRecord]:
    sign = 1.0 if mode == "min" else -1.0
    done = [t for t in trials if t.state == "completed" and t.value is not None and not math.isnan(t.value)]
    return sorted(done, key=lambda t: (sign * t.value, t.number))  # type: ignore[operator]


def _shrink(plan: Plan, trial: TrialRecord, records: Sequence[CheckpointRecord], mode: str) -> None:
    keep = _best_only(records, mode)
    if len(keep) == len(records):
        return
    plan.manifests[trial.id] = keep
    plan.trials += 1
    kept_paths = {c.path for c in keep}
    plan.remove += [Path(c.path) for c in records if c.path not in kept_paths]


def plan(storage: Storage, study_id: int, mode: str, policy: KeepPolicy, folder: Path | None = None) -> Plan:
    """The whole study's plan under ``policy``; with ``folder`` (the study's checkpoint folder), also the
    files in it that no manifest names and that belong to no trial that can still run."""
    out = Plan()
    trials = storage.get_trials(study_id)
    manifests = storage.study_checkpoints(study_id)
    top = {t.id for t in _ranked(trials, mode)[: policy.top_trials]} if policy.top_trials is not None else None
    for t in trials:
        if top is not None and t.state in FINISHED and t.id not in top:
            _shrink(out, t, manifests.get(t.id, []), mode)
    if folder is not None and folder.is_dir():
        named = {os.path.abspath(c.path) for records in manifests.values() for c in records}
        live = {f"trial-{t.number:05d}" for t in trials if t.state not in FINISHED}
        for trial_dir in sorted(folder.glob("trial-*")):
            if trial_dir.name in live:
                continue  # a running trial's writer may be between its file and its manifest
            for path in sorted(trial_dir.glob("*.ckpt")) + sorted(trial_dir.glob(".step-*.tmp")):
                if os.path.abspath(path) not in named:
                    out.orphans.append(path)
    return out


def apply(storage: Storage, plan_: Plan) -> int:
    """Write the plan's manifests (only for trials still finished), then delete the files no manifest names
    any more; the bytes freed."""
    freed = 0
    skipped: set[str] = set()
    for trial_id, keep in plan_.manifests.items():
        if not storage.replace_checkpoints(trial_id, keep):  # it started running again: leave it whole
            skipped |= {c.path for c in storage.get_checkpoints(trial_id)}
    for path in (*plan_.remove, *plan_.orphans):
        if str(path) in skipped:
            continue
        size = _size(path)
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        freed += size
    return freed


def after_trial(storage: Storage, study_id: int, trial_id: int, mode: str, policy: KeepPolicy) -> int:
    """Apply ``policy`` once trial ``trial_id`` has finished: it keeps its best only unless it is among the
    study's top trials, and the trial it pushed out of the top keeps its best only. The bytes freed."""
    if policy.top_trials is None:
        return 0
    trials = storage.get_trials(study_id, ["completed", "infeasible"])
    ranked = _ranked(trials, mode)
    top = {t.id for t in ranked[: policy.top_trials]}
    candidates = [t for t in trials if t.id == trial_id and t.id not in top]
    if len(ranked) > policy.top_trials and trial_id in top:
        candidates.append(ranked[policy.top_trials])  # the trial this one pushed out of the top
    out = Plan()
    for t in candidates:
        _shrink(out, t, storage.get_checkpoints(t.id), mode)
    return apply(storage, out) if out.manifests else 0


def usage(folder: Path) -> Usage:
    """Bytes and checkpoint files under a study's checkpoint folder (every trial folder in it)."""
    total = files = trials = 0
    if folder.is_dir():
        for trial_dir in folder.glob("trial-*"):
            found = [p for p in trial_dir.iterdir() if p.is_file()]
            trials += bool(found)
            files += len(found)
            total += sum(_size(p) for p in found)
    return Usage(folder, total, files, trials)


def human(n: int) -> str:
    """A byte count for people: 848.2 MB."""
    size = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"  # pragma: no cover
