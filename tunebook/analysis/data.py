"""Plain data extracted from a stored study: what diagnostics and figures read.

Everything here is a plain object (dataclasses of lists and numbers) so that
tests can assert on it; figures only render these objects.

In a study with a conditional space a trial carries only its own group's
hyperparameters: ``TrialRow.params`` then lacks the other groups' names.
:meth:`StudyData.with_param` selects the trials that have one, and
:meth:`StudyData.param_for` gives the range it had in a trial's group;
``trials_dataframe`` fills the gaps with NaN.

Replicate trials (each group's best re-run with new seeds after the search, see
:mod:`tunebook.designs.replicates`) are kept out of ``trials`` and so out of
every search selection (``completed``, ``ranked``, the groups, best-of-k, the
curves the checks read): they are in ``replicates``, for the trial variance and
the answer. Length probes (the best configuration trained longer, see
:mod:`tunebook.designs.length_probes`) are kept out likewise, in ``probes``,
for the ``max_train_steps`` check.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Hashable, TypeVar

import numpy as np

from tunebook.space import Choice, Float, Int, Param, SearchSpace

if TYPE_CHECKING:
    from tunebook.study import Study

T = TypeVar("T")


@dataclass(frozen=True)
class TrialRow:
    """One trial, flattened: its parameters with their roles, state and value."""

    number: int
    id: int
    state: str
    params: dict[str, Any]
    value: float | None
    best_step: int | None
    infeasible_reason: str | None
    seed: int


@dataclass
class Curve:
    """One metric of one trial: steps and values, as NumPy arrays."""

    steps: np.ndarray
    values: np.ndarray

    def __len__(self) -> int:
        return len(self.steps)


@dataclass
class StudyData:
    """A study's trials and the means to load curves (loaded lazily, cached)."""

    study: Study
    trials: list[TrialRow]
    roles: dict[str, str]
    space: dict[str, Param]
    fixed: dict[str, Any]
    metric: str
    mode: str
    max_train_steps: int
    _curves: dict[int, dict[str, Curve]] = field(default_factory=dict, repr=False)
    search_space: SearchSpace | None = field(default=None, repr=False)
    #: single metrics of trials whose other metrics are not loaded: ``{(trial id, name): curve or None}``
    _partial: dict[tuple[int, str], Curve | None] = field(default_factory=dict, repr=False)
    #: what :meth:`once` computed, by function and arguments, for the list of trials it was computed from
    _memo: dict[tuple[Callable[..., Any], tuple[Hashable, ...]], Any] = field(
        default_factory=dict, init=False, repr=False, compare=False)
    _memo_trials: list[TrialRow] | None = field(default=None, init=False, repr=False, compare=False)
    #: the replicate trials (each group's best re-run with new seeds), never part of ``trials``
    replicates: list[TrialRow] = field(default_factory=list)
    #: replicate trial number -> the number of the search trial it re-runs
    replicate_of: dict[int, int] = field(default_factory=dict, repr=False)
    #: the length probes (the best configuration at a longer step budget), never part of ``trials``
    probes: list[TrialRow] = field(default_factory=list)
    #: length probe number -> (the number of the search trial it re-runs, its step budget)
    probe_of: dict[int, tuple[int, int]] = field(default_factory=dict, repr=False)

    # selections ------------------------------------------------------------
    def once(self, compute: Callable[..., T], *args: Hashable) -> T:
        """``compute(self, *args)``, computed once per StudyData and kept (keyed by the function and its
        arguments, which must be hashable). A StudyData is a snapshot: a view made by ``replace`` (or a
        replaced list of trials) starts again. ``compute`` is a module-level function, not a lambda made
        per call (whose identity would change at each call and never be found again)."""
        if self._memo_trials is not self.trials:
            self._memo.clear()
            self._memo_trials = self.trials
        key = (compute, args)
        if key not in self._memo:
            self._memo[key] = compute(self, *args)
        return self._memo[key]  # type: ignore[no-any-return]

    @property
    def completed(self) -> list[TrialRow]:
        return list(self.once(_completed))

    @property
    def infeasible(self) -> list[TrialRow]:
        return list(self.once(_infeasible))

    @property
    def finished(self) -> list[TrialRow]:
        return list(self.once(_finished))

    def sign(self) -> float:
        """+1 when lower is better, -1 when higher is better."""
        return 1.0 if self.mode == "min" else -1.0

    def ranked(self) -> list[TrialRow]:
        """Completed trials, best first (ties: lower number); sorted once per StudyData (a copy is returned)."""
        return list(self.once(_ranked))

    def best(self) -> TrialRow | None:
        ranked = self.once(_ranked)
        return ranked[0] if ranked else None

    def loss_like_values(self) -> np.ndarray:
        """Values of the finished trials, lower is better; +inf for an infeasible one (bootstraps)."""
        return self.once(_loss_like).copy()

    def numeric_params(self) -> dict[str, Float | Int]:
        return {k: p for k, p in self.space.items() if isinstance(p, (Float, Int))}

    def best_by_scientific(self) -> dict[tuple[Any, ...], TrialRow]:
        """The best trial for each combination of scientific values (isolation)."""
        return dict(self.once(_best_by_scientific))

    # curves ----------------------------------------------------------------
    def curves(self, trial: TrialRow) -> dict[str, Curve]:
        """Every metric of one trial (loaded once)."""
        if trial.id not in self._curves:
            grouped: dict[str, tuple[list[int], list[float]]] = {}
            for row in self.study.storage.get_metrics(trial.id):
                steps, values = grouped.setdefault(row.name, ([], []))
                steps.append(row.step)
                values.append(row.value)
            self._curves[trial.id] = {
                name: Curve(np.asarray(s, dtype=np.int64), np.asarray(v, dtype=np.float64))
                for name, (s, v) in grouped.items()
            }
        return self._curves[trial.id]

    def curve(self, trial: TrialRow, name: str) -> Curve | None:
        """One metric of one trial: from :meth:`preload` when loaded there, else from :meth:`curves`."""
        if trial.id not in self._curves and (trial.id, name) in self._partial:
            return self._partial[(trial.id, name)]
        return self.curves(trial).get(name)

    def preload(self, trials: list[TrialRow], name: str, chunk: int = 900) -> None:
        """Load one metric of many trials in a few store reads (``chunk`` trials each), for :meth:`curve`;
        a trial already loaded is left to :meth:`curves`."""
        bulk = _bulk_reader(self.study.storage)
        wanted = [t.id for t in trials if t.id not in self._curves and (t.id, name) not in self._partial]
        if not wanted:
            return
        for begin in range(0, len(wanted), chunk):
            ids = wanted[begin:begin + chunk]
            found = bulk(ids, name)
            for trial_id in ids:
                got = found.get(trial_id)
                self._partial[(trial_id, name)] = None if got is None else Curve(*got)

    def unit(self, name: str, value: Any, trial: TrialRow | None = None) -> float:
        """Position of a value in the scaled range of its hyperparameter (0 = low, 1 = high).

        With ``trial``, the range of that trial's group (a conditional name's own range);
        without, the study-wide range (for a conditional name, the envelope of its groups').
        """
        param = self.param_for(trial, name) if trial is not None else None
        return float((param or self.space[name]).to_unit(value))

    def units(self, name: str, trials: list[TrialRow]) -> list[float]:
        """:meth:`unit` of ``name`` for each trial (which must have it), each in its own group's range."""
        p = self.space.get(name)
        if isinstance(p, Float) and not (self.search_space is not None and self.search_space.conditional):
            a, b = p.scaled_bounds()  # Float.to_unit with its range computed once
            if p.scale == "log":
                log = math.log
                return [(log(t.params[name]) - a) / (b - a) for t in trials]
            return [(float(t.params[name]) - a) / (b - a) for t in trials]
        return [self.unit(name, t.params[name], t) for t in trials]

    def param_for(self, trial: TrialRow, name: str) -> Param | None:
        """The range ``name`` had in ``trial``'s group; None when the trial does not have it."""
        if name not in trial.params or name not in self.space:
            return None
        if self.search_space is not None and self.search_space.conditional:
            own = self.search_space.subspace(trial.params).get(name)
            if own is not None:
                return own
        return self.space[name]

    def with_param(self, name: str, trials: list[TrialRow] | None = None) -> list[TrialRow]:
        """The trials (default: all) that have ``name``; a conditional one is in some groups only."""
        return [t for t in (self.trials if trials is None else trials) if name in t.params]


def _bulk_reader(storage: Any) -> Any:
    """``read(trial_ids, name) -> {trial id: (steps, values)}``: one store read per call
    (:meth:`~tunebook.storage.base.Storage.metric_rows`)."""

    def read(trial_ids: list[int], name: str) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        rows = storage.metric_rows(trial_ids, name)
        if not rows:
            return {}
        table = np.array(rows, dtype=float)  # NULL (a NaN) becomes NaN
        ids = table[:, 0].astype(np.int64)
        cuts = np.flatnonzero(np.diff(ids)) + 1
        out = {}
        for part in np.split(np.arange(len(ids)), cuts):
            out[int(ids[part[0]])] = (table[part, 1].astype(np.int64), table[part, 2].copy())
        return out

    return read


def _trial_rows(study: Study) -> list[TrialRow]:
    """The study's trials as rows (:meth:`~tunebook.storage.base.Storage.trial_rows`: no records built)."""
    fixed = study.space.fixed
    return [TrialRow(number, id_, state, {**fixed, **params}, value, best_step, reason, seed)
            for number, id_, state, params, value, best_step, reason, seed in study.storage.trial_rows(study.id)]


def load(study: Study) -> StudyData:
    """Extract a study's trials (one query) into plain rows: the search trials, and the replicates and
    length probes apart."""
    rows = _trial_rows(study)
    of = replicate_of(study)
    probes = probe_of(study)
    return StudyData(
        study=study,
        trials=[t for t in rows if t.number not in of and t.number not in probes],
        replicates=[t for t in rows if t.number in of],
        replicate_of=of,
        probes=[t for t in rows if t.number in probes],
        probe_of=probes,
        roles=dict(study.space.roles),
        space=study.space.params,
        fixed=dict(study.space.fixed),
        metric=study.objective[0],
        mode=study.objective[1],
        max_train_steps=study.max_train_steps,
        search_space=study.space,
    )


def replicate_of(study: Study) -> dict[int, int]:
    """Each replicate trial's number -> the search trial it re-runs (from the notes stored with them)."""
    from tunebook.study.handle import replicate_of as stored

    return stored(study.storage, study.name)


def probe_of(study: Study) -> dict[int, tuple[int, int]]:
    """Each length probe's number -> (the search trial it trains longer, its step budget)."""
    from tunebook.study.handle import probe_of as stored

    return stored(study.storage, study.name)


def trials_dataframe(study: Study) -> Any:
    """The trials as a pandas DataFrame (see :meth:`tunebook.study.Study.trials_dataframe`)."""
    return study.trials_dataframe()


__all__ = ["Choice", "Curve", "StudyData", "TrialRow", "load", "trials_dataframe"]


# what StudyData.once computes (module-level functions: the memo's keys) ------------------------------
def _completed(data: StudyData) -> list[TrialRow]:
    return [t for t in data.trials if t.state == "completed" and t.value is not None and math.isfinite(t.value)]


def _infeasible(data: StudyData) -> list[TrialRow]:
    return [t for t in data.trials if t.state == "infeasible"]


def _finished(data: StudyData) -> list[TrialRow]:
    return [t for t in data.trials if t.state in ("completed", "infeasible")]


def _ranked(data: StudyData) -> list[TrialRow]:
    s = data.sign()
    return sorted(data.once(_completed), key=lambda t: (s * t.value, t.number))  # type: ignore[operator]


def _loss_like(data: StudyData) -> np.ndarray:
    s = data.sign()
    return np.array([s * t.value if t.state == "completed" else np.inf for t in data.once(_finished)],  # type: ignore[operator]
                    dtype=float)


def _best_by_scientific(data: StudyData) -> dict[tuple[Any, ...], TrialRow]:
    names = [k for k, r in data.roles.items() if r == "scientific"]
    out: dict[tuple[Any, ...], TrialRow] = {}
    for t in data.once(_ranked):
        out.setdefault(tuple(t.params[k] for k in names), t)
    return out
