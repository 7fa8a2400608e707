"""The storage contract.

A :class:`Storage` holds experiments, studies, trials, metric curves and the
checkpoint manifest. Every implementation keeps these promises:

- Instances are safe to use from several threads of one process; each process
  opens its own (see :func:`tunebook.storage.open_storage`).
- ``create_study`` stores a study and its materialized trials in one
  transaction: a study is either there whole or not at all.
- ``claim_trial`` is atomic across processes and machines: a pending trial is
  handed to exactly one worker.
- Writes that belong to a running trial (metrics, heartbeats, the final state)
  name the worker; once another worker has taken the trial over, they raise
  :class:`ClaimLost` and change nothing, so a worker presumed dead cannot
  overwrite the trial.
- A finished trial (completed, infeasible, failed) never changes afterwards.
- Trial numbers and seeds are assigned inside the store's transactions
  (``extend_study``, ``propose_trial``): concurrent extends or proposals never
  add the same number twice and never fail on a unique constraint.
- Errors leave the store as :mod:`tunebook.errors` types only (translated at
  one boundary, :mod:`tunebook.storage.translate`): :class:`StudyNotFound`,
  :class:`StudyExists`, :class:`StorageUnavailable` (database away, locked too
  long, disk full: an infrastructure fault, retried) or :class:`StorageError`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

PENDING, RUNNING, COMPLETED, INFEASIBLE, FAILED = "pending", "running", "completed", "infeasible", "failed"
STATES = (PENDING, RUNNING, COMPLETED, INFEASIBLE, FAILED)
FINISHED = (COMPLETED, INFEASIBLE, FAILED)

#: Seconds between two scans for stale trials by one storage instance while trials are pending.
REQUEUE_EVERY = 5.0


from tunebook.errors import (  # noqa: E402,F401  (re-exported: the storage contract raises them)
    ClaimLost,
    StorageError,
    StorageUnavailable,
    StudyExists,
    StudyNotFound,
)


@dataclass
class StudyRecord:
    name: str
    spec: dict[str, Any]
    spec_hash: str
    objective_metric: str
    objective_mode: str
    max_train_steps: int
    trials_budget: int
    seed: int
    generator_version: str
    experiment: str
    goal: str = ""
    config_path: str | None = None
    config_hash: str | None = None
    repro_command: str | None = None
    git_commit: str | None = None
    git_dirty: bool | None = None
    parent: str | None = None
    round: int = 1
    created_at: float = 0.0
    id: int | None = None


@dataclass
class TrialRecord:
    id: int
    study_id: int
    number: int
    params: dict[str, Any]
    seed: int
    state: str
    value: float | None = None
    best_step: int | None = None
    infeasible_reason: str | None = None
    error: str | None = None
    worker_id: str | None = None
    heartbeat_at: float | None = None
    attempts: int = 0
    lost_workers: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: a completed trial whose training ended before max_train_steps: ``{"last_step", "max_train_steps",
    #: "reason"}`` (``reason`` None when the function did not say why); None when it ran to its end
    ended: dict[str, Any] | None = None


@dataclass(frozen=True)
class TrialOutcome:
    """A pending trial's result computed elsewhere (an import, a synthetic study): see ``record_outcomes``."""

    number: int
    state: str
    value: float | None = None
    best_step: int | None = None
    infeasible_reason: str | None = None
    error: str | None = None
    metrics: Sequence[tuple[int, str, float]] = ()  # (step, name, value) rows


@dataclass(frozen=True)
class CheckpointRecord:
    trial_id: int
    step: int
    path: str
    value: float | None


class MetricRows(list):
    """Metric rows ``(step, name, value)`` with ``int`` steps, ``str`` names and ``float`` values (NaN
    allowed), as the store writer makes them: a store may write them as they are (other sequences of
    rows are converted first)."""

    __slots__ = ()


@dataclass(frozen=True)
class MetricBatch:
    """Metric points a trial has not stored yet, written in one transaction (see ``write_metrics``):
    ``rows`` (step, name, value) are inserted after the points at or after ``drop_from_step`` and
    the (step, name) points in ``replace`` are deleted."""

    rows: Sequence[tuple[int, str, float]]
    replace: Sequence[tuple[int, str]] = ()
    drop_from_step: int | None = None


@dataclass(frozen=True)
class MetricRow:
    step: int
    name: str
    value: float


class Storage(ABC):
    """Where studies live. See the module docstring for the promises."""

    url: str

    # studies ---------------------------------------------------------------
    @abstractmethod
    def create_study(self, study: StudyRecord, trials: Sequence[dict[str, Any]]) -> int:
        """Store the study and its trials (``{"number", "params", "seed"}``) atomically."""

    @abstractmethod
    def extend_study(self, study_id: int, trials: Sequence[dict[str, Any]], budget: int) -> None:
        """Append trials and raise the budget, atomically."""

    @abstractmethod
    def propose_trial(
        self, study_id: int, propose: Callable[[int, int], tuple[dict[str, Any], int] | None],
        *, beyond_budget: int = 0,
    ) -> int | None:
        """Add the study's next trial atomically; returns its number (None: budget reached or nothing proposed).
        ``beyond_budget``: stored trials the budget does not count (length probes), as in :meth:`add_trials`.

        In one transaction that excludes every other proposal and extend of the
        study: the next number ``n`` is chosen, ``propose(n, study_seed)``
        returns ``(params, seed)`` (or None), and the trial is stored pending.
        ``propose`` may read the store (committed trials) but must not write it.
        """

    @abstractmethod
    def add_trials(
        self, study_id: int,
        plan: Callable[[int, int, int], tuple[Sequence[dict[str, Any]], dict[str, Any] | None]],
        *, beyond_budget: int = 0,
    ) -> list[int]:
        """Add several trials of a study and a note about them atomically; returns their numbers.

        In one transaction that excludes every other proposal and extend of the
        study: ``plan(first, study_seed, room)`` gets the next number, the study's
        seed and how many trials the budget (plus ``beyond_budget``: trials the
        budget does not count, such as length probes) still takes, and returns trial specs
        (``{"params", "seed"}``, numbered ``first, first + 1, ...``; at most ``room``
        are stored) and a note (``{"kind", "conclusion", "evidence"}``) or None; a note with no
        trials is stored alone (a decision to add none).
        ``plan`` may read the store (committed state) but must not write it.
        """

    @abstractmethod
    def record_outcomes(self, study_id: int, outcomes: Sequence[TrialOutcome]) -> None:
        """Finish pending trials whose results were computed elsewhere (imports, synthetic studies),
        with their metric rows, in one transaction."""

    @abstractmethod
    def get_study(self, name: str) -> StudyRecord | None: ...

    @abstractmethod
    def list_studies(self) -> list[StudyRecord]: ...

    @abstractmethod
    def study_summaries(self) -> list[dict[str, Any]]:
        """Per study: counts by state and the best trial, aggregated in the database."""

    # trials ----------------------------------------------------------------
    @abstractmethod
    def get_trials(self, study_id: int, states: Iterable[str] | None = None) -> list[TrialRecord]: ...

    @abstractmethod
    def get_trial(self, trial_id: int) -> TrialRecord | None: ...

    @abstractmethod
    def get_trial_by_number(self, study_id: int, number: int) -> TrialRecord | None: ...

    @abstractmethod
    def trials_page(
        self,
        study_id: int,
        *,
        states: Iterable[str] | None = None,
        order: str = "number",
        descending: bool = False,
        offset: int = 0,
        limit: int = 50,
        params_equal: Mapping[str, Any] | None = None,
        params_between: Mapping[str, tuple[float | None, float | None]] | None = None,
    ) -> tuple[list[TrialRecord], int]:
        """One page of a study's trials, filtered and sorted by the store, and the filtered total.

        ``order``: a trial column (``TRIAL_ORDERS``) or ``"params.<name>"``, a hyperparameter; a trial
        without a value there (none yet, or a conditional hyperparameter it lacks) sorts last either way,
        ties by number. ``params_equal``: hyperparameter -> the value kept (typed, as stored);
        ``params_between``: hyperparameter -> ``(lo, hi)`` inclusive, either side None for open."""

    @abstractmethod
    def study_signature(self, study_id: int) -> dict[str, Any]:
        """Counts by state and the latest finish and heartbeat: changes whenever the study moves."""

    @abstractmethod
    def claim_trial(
        self,
        worker_id: str,
        study_id: int | None = None,
        stale_after: float | None = None,
        max_lost_workers: int = 3,
    ) -> TrialRecord | None:
        """Hand one pending trial to ``worker_id``.

        With ``stale_after``, running trials whose heartbeat is older than that
        many seconds go back to pending (their worker is presumed dead), or to
        failed once their workers died ``max_lost_workers`` times: before the
        claim when nothing is pending, otherwise at least every
        ``REQUEUE_EVERY`` seconds (or ``stale_after / 2`` if shorter) per
        storage instance, so that a busy queue does not pay for the scan on
        every claim.
        """

    @abstractmethod
    def requeue_stale(self, stale_after: float, study_id: int | None = None, max_lost_workers: int = 3) -> dict[str, int]:
        """Running trials without a heartbeat for ``stale_after`` seconds: back to pending (or failed)."""

    @abstractmethod
    def heartbeat(self, trial_id: int, worker_id: str) -> None: ...

    @abstractmethod
    def finish_trial(
        self,
        trial_id: int,
        worker_id: str,
        state: str,
        *,
        value: float | None = None,
        best_step: int | None = None,
        infeasible_reason: str | None = None,
        error: str | None = None,
        metrics: MetricBatch | None = None,
        objective: tuple[str, str] | None = None,
        params_used: Mapping[str, Any] | None = None,
        ended: Mapping[str, Any] | None = None,
    ) -> tuple[str, float | None, int | None]:
        """Store the trial's outcome; returns the ``(state, value, best_step)`` stored.

        One transaction: the ownership check (:class:`ClaimLost` otherwise, nothing
        changes), the trial's last metric points (``metrics``, as ``write_metrics``
        writes them) and the final state. With ``objective`` (``(metric, mode)``;
        ``state`` must be ``completed``), ``value`` and ``best_step`` are the best
        finite value of that metric stored for the trial and its first step, as
        :meth:`best_metric` computes it, once ``metrics`` are written; when there is
        none, the trial is stored ``failed`` with ``error``. ``params_used``: which
        hyperparameters the training function asked for (:meth:`tunebook.trial.Params.usage`),
        read back by :meth:`params_used`. ``ended``: how the training ended before ``max_train_steps``
        (:meth:`tunebook.trial.Trial.ended`), read back as :attr:`TrialRecord.ended`.
        """

    @abstractmethod
    def release_trial(self, trial_id: int, worker_id: str, cause: str | None = None,
                      metrics: MetricBatch | None = None) -> None:
        """Running → pending (the worker is stopping); checkpoints are kept for the resume.
        ``cause``: why (an infrastructure fault), kept in the trial's ``error`` until it finishes;
        ``metrics``: the trial's last metric points, written in the same transaction."""

    def params_used(self, study_id: int) -> dict[int, dict[str, Any]]:
        """Trial number -> which hyperparameters its training function asked for (``read``, ``missing``,
        ``bulk``), for the finished trials that recorded it."""
        return {}

    def lose_trial(self, trial_id: int, worker_id: str, cause: str, max_lost_workers: int = 3) -> str:
        """The trial's worker is lost (it died, or the training function killed it): count it in
        ``lost_workers``; back to pending with ``cause``, or failed with it once ``max_lost_workers``
        workers were lost. Only while ``worker_id`` runs the trial (else :class:`ClaimLost`).
        Returns the new state."""
        raise NotImplementedError

    @property
    def store_id(self) -> str | None:
        """The store's identity (checkpoint folders and files are keyed by it); None if it has none."""
        return None

    @property
    def checkpoint_key(self) -> bytes | None:
        """A secret only this store holds: checkpoint files are signed with it, and only a file signed
        with it is loaded in full (see :mod:`tunebook.checkpoints`); None: files are not signed."""
        return None

    @abstractmethod
    def release_worker_trials(self, worker_ids: Iterable[str]) -> int:
        """Put every trial still running under these (dead) workers back to pending."""

    def retry_failed(self, study_id: int) -> int:
        """Failed trials of the study back to pending (their attempts stay counted); returns how many.

        Infeasible trials are data and stay as they are.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot retry failed trials")

    # metrics ---------------------------------------------------------------
    @abstractmethod
    def write_metrics(
        self,
        trial_id: int,
        worker_id: str,
        rows: Sequence[tuple[int, str, float]],
        drop_from_step: int | None = None,
        replace: Sequence[tuple[int, str]] = (),
    ) -> None:
        """One transaction: heartbeat, drop rows at or after ``drop_from_step`` and the (step, name)
        points in ``replace``, insert ``rows``."""

    @abstractmethod
    def get_metrics(self, trial_id: int, names: Iterable[str] | None = None) -> list[MetricRow]: ...

    @abstractmethod
    def best_metric(self, trial_id: int, name: str, mode: str) -> tuple[float, int] | None:
        """Best finite value of ``name`` and its (first) step, computed in the database."""

    # bulk reads for analysis ------------------------------------------------
    def trial_rows(self, study_id: int) -> list[tuple[int, int, str, dict[str, Any], float | None, int | None,
                                                      str | None, int]]:
        """Every trial of a study as ``(number, id, state, params, value, best_step, infeasible_reason,
        seed)``, by number: what the analysis reads, without building records (a SQL store: one query)."""
        return [(t.number, t.id, t.state, t.params, t.value, t.best_step, t.infeasible_reason, t.seed)
                for t in self.get_trials(study_id)]

    def metric_rows(self, trial_ids: Sequence[int], name: str) -> list[tuple[int, int, float | None]]:
        """One metric of many trials as ``(trial id, step, value)``, by trial then step; ``None`` is NaN
        (a SQL store: one query)."""
        out: list[tuple[int, int, float | None]] = []
        for trial_id in sorted(trial_ids):
            out.extend((trial_id, r.step, None if r.value != r.value else r.value)
                       for r in self.get_metrics(trial_id, [name]))
        return out

    # notebook --------------------------------------------------------------
    @abstractmethod
    def add_note(self, kind: str, conclusion: str, evidence: dict[str, Any], *, experiment: str | None = None,
                 study: str | None = None) -> int:
        """Record a procedure's conclusion and its evidence (e.g. ``kind="lr-sweep"``)."""

    @abstractmethod
    def get_notes(self, *, experiment: str | None = None, study: str | None = None, kind: str | None = None) -> list[dict[str, Any]]: ...

    @abstractmethod
    def set_baseline(self, experiment: str, study: str) -> None:
        """Make ``study`` the adopted baseline of ``experiment``."""

    @abstractmethod
    def get_baselines(self) -> dict[str, str | None]:
        """Experiment name → its adopted baseline study (or None)."""

    # checkpoints -----------------------------------------------------------
    @abstractmethod
    def set_checkpoints(self, trial_id: int, worker_id: str, kept: Sequence[CheckpointRecord]) -> None:
        """Replace the trial's checkpoint manifest with ``kept``."""

    @abstractmethod
    def get_checkpoints(self, trial_id: int) -> list[CheckpointRecord]: ...

    def study_checkpoints(self, study_id: int) -> dict[int, list[CheckpointRecord]]:
        """Every trial's checkpoint manifest (trial id -> records in step order), for a whole study."""
        return {t.id: found for t in self.get_trials(study_id) if (found := self.get_checkpoints(t.id))}

    def replace_checkpoints(self, trial_id: int, kept: Sequence[CheckpointRecord]) -> bool:
        """Replace the manifest of a trial that no worker runs (pruning a finished trial); False, and
        nothing changed, when the trial is running."""
        raise NotImplementedError

    # where it lives ---------------------------------------------------------
    @classmethod
    def files_of(cls, url: str) -> tuple[Path, ...]:
        """The files a store of this backend at ``url`` keeps on this machine, the main one first (a
        SQLite file, its ``-wal`` and ``-shm``); none for a server. Checkpoints go beside the first."""
        return ()

    @classmethod
    def tables_of(cls, url: str) -> frozenset[str] | None:
        """The tables the database at ``url`` holds, read without creating or changing anything (a verb
        that only reads checks that a store is there before opening it); None when that cannot be told
        without opening it (a backend that does not say, a server that does not answer)."""
        return None

    def local_files(self) -> tuple[Path, ...]:
        """The files this store keeps on this machine (see :meth:`files_of`)."""
        return self.files_of(self.url)

    def close(self) -> None:  # pragma: no cover - default no-op
        """Release connections."""
