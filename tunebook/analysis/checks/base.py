"""The registry of checks: :class:`Finding`, :class:`Thresholds` and the :func:`check` decorator.

A check is a function ``(data: StudyData, th: Thresholds) -> list[Finding]``.
Decorating it with ``@check("id", family=..., order=..., figure=..., uses=(...), thresholds={...})``
registers it under its stable id with everything the rest of the package reads about it: the family
(the module it lives in), where the report lists its findings (``order``), the figure its findings
are about (``figure``, read by the report through :data:`FIGURE_OF_CHECK`), the shared thresholds it
reads (fields of :class:`Thresholds`) and thresholds of its own with their defaults (read as
``th.name`` like the others, set with :meth:`Thresholds.with_values`). Adding a check is one
decorated function (plus its test); no list elsewhere is kept in step by hand.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from typing import Any, Callable, Iterable, Iterator, Mapping, Union

INFO, WARNING = "info", "warning"


@dataclass(frozen=True)
class Finding:
    """One answer of the checklist: ``check`` is a stable id from :data:`CHECKS` (or a custom check's name).

    A finding about the best trials of one scientific value names its group in its
    message and in ``evidence["group"]`` (e.g. ``"optimizer=sgd"``; ``""`` when the
    study has no scientific hyperparameter).
    """

    check: str
    severity: str
    message: str
    action: str
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Thresholds:
    """The checklist's defaults. Fractions of a range are in the scaled (log or linear) axis.

    Curve judgments compare a change against the curve's own noise (``noise_z``
    standard errors, see :func:`tunebook.analysis.checks.noise.curve_noise`) *and*
    against the curve's scale (the share thresholds below): both must be exceeded.
    """

    #: boundary: the best trial lies in this outer share of a numeric range...
    boundary_fraction: float = 0.1
    #: ...and at least this share of the top trials lies in twice that outer share.
    boundary_top_share: float = 1 / 3
    #: boundary, few trials: the best lies in this outer share and no finished trial of its group (completed
    #: or infeasible) was sampled beyond it on that side: nothing shows the optimum inside the range.
    boundary_extreme_fraction: float = 0.15
    #: ...judged once the group has at least this many finished trials with the hyperparameter.
    boundary_extreme_min_trials: int = 4
    #: top trials (of a group): max(top_k_min, top_k_share * completed).
    top_k_min: int = 3
    top_k_share: float = 0.1
    #: infeasible share above which the study warns (below: info).
    infeasible_share: float = 0.25
    #: infeasible region: look this far (scaled range) beyond the best value...
    infeasible_window: float = 0.2
    #: ...and warn when at least this share of the trials there is infeasible.
    infeasible_region_share: float = 0.5
    #: curves: how many of each group's best trials to examine.
    curve_top_k: int = 3
    #: continuous scientific hyperparameters are cut into this many equal-width buckets (scaled axis).
    scientific_buckets: int = 5
    #: a change is material when it exceeds this many standard errors of the curve's noise.
    noise_z: float = 2.5
    #: overfitting: the validation curve ends this share of its improvement above its best...
    overfit_rise: float = 0.2
    #: ...or, for a loss or error (``min`` objective with a positive best), this share of its best value.
    overfit_rise_relative: float = 0.3
    #: step variance: noise (from step-to-step differences) over the curve's range.
    step_noise: float = 0.03
    #: still improving: the trend over the last 25% of steps gains this share of the whole improvement.
    still_improving: float = 0.02
    #: saturated early: within noise (or `saturation_tol` of its improvement) of its best before this
    #: share of max_train_steps.
    saturated_share: float = 0.2
    saturation_tol: float = 0.02
    #: training loss rising: its last 20% sits this share of its improvement above its minimum.
    train_rise: float = 0.25
    #: the training metric the curve checks read.
    train_metric: str = "train/loss"
    #: periodic validation: Fisher's g-test on the detrended curve rejects white noise at this p-value,
    periodic_pvalue: float = 0.01
    #: the residual is at least this large relative to the curve's range,
    periodic_amplitude: float = 0.02
    #: and the period repeats at least this many times.
    periodic_cycles: float = 3.0
    #: max_train_steps: this share of a group's top-half trials reaches its best (within noise) in the
    #: first 10% (too long) or the last 25% (train longer).
    best_step_share: float = 0.8
    best_step_early: float = 0.1
    best_step_late: float = 0.75
    #: ...judged from at most this many curves per group (evenly spaced in rank over the better half).
    best_step_curves: int = 500
    #: sampled enough (no trial variance known): the expected best still improves, from n/2 to n
    #: trials, by this share of (median trial value - best value).
    sampled_enough_tol: float = 0.05
    #: bootstrap samples of the "have we sampled enough" figure.
    bootstrap_samples: int = 500
    #: fairness: fewer completed trials than this in a group make its comparison unreliable.
    min_group_trials: int = 3
    #: input-bound: share of step time spent waiting for data (metric `input/wait_fraction`).
    input_bound: float = 0.2
    #: gradient clipping: metric names of the unclipped total norm and the clipping threshold parameter.
    grad_norm_metric: str = "grad/norm"
    clip_params: tuple[str, ...] = ("grad_clip", "clip_norm", "max_grad_norm", "gradient_clipping")
    #: clipping more than this share of updates is "extremely aggressive".
    clipped_share: float = 0.5
    #: instability: after the first 10% of steps, a spike exceeds three times the rolling median
    #: and this share of the loss's improvement.
    spike_fraction: float = 0.5
    #: hyperparameters that set the batch size, and prefixes of test-set metrics (fairness checks).
    batch_size_params: tuple[str, ...] = ("batch_size", "global_batch_size", "per_device_batch_size")
    test_prefixes: tuple[str, ...] = ("test/", "test_")
    #: failed trials: a group that lost at least this share of its ended trials to failures was tuned less
    #: than the others (the comparison is not yet fair).
    failed_group_share: float = 0.25
    #: unused hyperparameters: how close (difflib ratio) a name the training function asked for must be to
    #: an unread one to be named as its likely typo.
    unused_name_cutoff: float = 0.6
    #: values given (with :meth:`with_values`) to thresholds that checks declare on their ``@check``
    overrides: tuple[tuple[str, Any], ...] = ()

    def __getattr__(self, name: str) -> Any:
        """A threshold a check declared on its registration: its override, else its default."""
        if name.startswith("__"):
            raise AttributeError(name)
        for key, value in self.__dict__.get("overrides", ()):
            if key == name:
                return value
        for c in REGISTRY.values():
            if name in c.defaults:
                return c.defaults[name]
        raise AttributeError(f"{type(self).__name__} has no threshold {name!r} (no registered check declares it)")

    def with_values(self, **values: Any) -> "Thresholds":
        """These thresholds with some replaced: shared fields and any registered check's own thresholds."""
        own = {k: v for k, v in values.items() if k not in _KNOWN}
        unknown = [k for k in own if not any(k in c.defaults for c in REGISTRY.values())]
        if unknown:
            raise ValueError(f"no threshold named {unknown}: use a field of Thresholds or one a registered check declares")
        merged = {**dict(self.overrides), **own}
        return replace(self, **{k: v for k, v in values.items() if k in _KNOWN}, overrides=tuple(sorted(merged.items())))


CheckFn = Callable[[Any, Thresholds], "list[Finding]"]
CheckSpec = Union[str, CheckFn]


@dataclass(frozen=True)
class Check:
    """A registered check: its stable id, family (module), function, the thresholds it reads (``uses``, its
    own ones included), where the report lists it (``order``, ascending), the figure its findings are
    about (a figure kind of :mod:`tunebook.analysis.figures`, or None) and its own thresholds' defaults."""

    id: str
    family: str
    fn: CheckFn
    uses: tuple[str, ...] = ()
    order: float = math.inf
    figure: str | None = None
    defaults: Mapping[str, Any] = field(default_factory=dict)

    def __call__(self, data: Any, th: Thresholds) -> list[Finding]:
        return self.fn(data, th)


#: every registered check (in registration order; :func:`check_ids` gives the report's order)
REGISTRY: dict[str, Check] = {}
_KNOWN = {f.name for f in fields(Thresholds)} - {"overrides"}


def check(id: str, *, family: str, order: float | None = None, figure: str | None = None,
          uses: Iterable[str] = (), thresholds: Mapping[str, Any] | None = None) -> Callable[[CheckFn], CheckFn]:
    """Register a check function under its stable ``id`` (the decorator returns the function unchanged).

    ``order``: where the report lists its findings among the checks (default: after every other);
    ``figure``: the figure kind its findings point at; ``uses``: the shared thresholds it reads;
    ``thresholds``: its own thresholds and their defaults (read as ``th.<name>``).
    """
    own = dict(thresholds or {})
    clash = [k for k in own if k in _KNOWN or any(k in c.defaults for c in REGISTRY.values() if c.id != id)]
    if clash:
        raise ValueError(f"check {id!r} declares thresholds {clash} that already exist")
    uses = tuple(dict.fromkeys([*uses, *own]))
    unknown = [u for u in uses if u not in _KNOWN and u not in own]
    if unknown:  # a typo in a threshold name is a bug in the check, found at import
        raise ValueError(f"check {id!r} uses unknown thresholds {unknown}")

    def register(fn: CheckFn) -> CheckFn:
        if id in REGISTRY and REGISTRY[id].fn is not fn:
            raise ValueError(f"a check with id {id!r} is already registered")
        REGISTRY[id] = Check(id, family, fn, uses, math.inf if order is None else float(order), figure, own)
        return fn

    return register


def unregister(id: str) -> None:
    """Remove a registered check (a plugin's or a test's); unknown ids are ignored."""
    REGISTRY.pop(id, None)


def check_ids() -> tuple[str, ...]:
    """The registered checks' ids in the report's order (``order``, then registration)."""
    position = {k: i for i, k in enumerate(REGISTRY)}
    return tuple(sorted(REGISTRY, key=lambda k: (REGISTRY[k].order, position[k])))


class _FigureOfCheck(Mapping[str, str]):
    """``{check id: figure kind}`` read live from the registry (a check registered later is in it)."""

    def __getitem__(self, id: str) -> str:
        figure = REGISTRY[id].figure
        if figure is None:
            raise KeyError(id)
        return figure

    def __iter__(self) -> Iterator[str]:
        return (k for k in check_ids() if REGISTRY[k].figure is not None)

    def __len__(self) -> int:
        return sum(c.figure is not None for c in REGISTRY.values())


#: which figure a check's findings are about: each check's ``@check(figure=...)``
FIGURE_OF_CHECK: Mapping[str, str] = _FigureOfCheck()


def thresholds_of(id: str, th: Thresholds | None = None) -> dict[str, Any]:
    """The thresholds one check reads, with their values (defaults unless ``th`` is given)."""
    th = th or Thresholds()
    return {name: getattr(th, name) for name in REGISTRY[id].uses}


def resolve(checks: Iterable[CheckSpec] | None) -> list[Check]:
    """The checks to run: every registered one, or the given ids and custom functions.

    A custom function is registered nowhere; its findings carry whatever ``check`` id it gives them.
    """
    if checks is None:
        return list(REGISTRY.values())
    if isinstance(checks, str) or callable(checks):
        checks = [checks]
    out: list[Check] = []
    for spec in checks:
        if isinstance(spec, str):
            if spec not in REGISTRY:
                from tunebook.errors import SpecError

                raise SpecError("checks", f"no check named {spec!r}", f"use one of: {', '.join(REGISTRY)}, or pass a function")
            out.append(REGISTRY[spec])
        elif isinstance(spec, Check):
            out.append(spec)
        elif callable(spec):
            out.append(Check(getattr(spec, "__name__", "custom"), "custom", spec))
        else:
            from tunebook.errors import SpecError

            raise SpecError("checks", f"expected a check id or a function, got {spec!r}", "e.g. checks=['search_space_boundary']")
    return out
