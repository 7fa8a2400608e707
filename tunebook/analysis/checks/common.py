"""What the checks share: groups of trials, curve noise, and small numerical helpers.

Groups. The playbook compares scientific values by each value's best trial
over the nuisance hyperparameters; a comparison is fair only when every
value's nuisance hyperparameters were tuned well enough. So every check about
"the best trials" runs on each :class:`Group` (the trials sharing one
scientific value; equal-width buckets of the scaled axis for a continuous
scientific hyperparameter), through :func:`group_view`, a :class:`StudyData`
restricted to the group's trials.

Noise. A curve's noise is estimated from its second differences
(:func:`curve_noise`): robust to the trend (they vanish on a straight line, so
a noise-free line has zero noise) and to single outliers. A
metric that moves in steps of one validation example has a *resolution*
(:func:`resolution`), a floor under its noise: one example flipping is never
material.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from typing import Any, Callable

import numpy as np

from tunebook.analysis.data import Curve, StudyData, TrialRow
from tunebook.space import Choice

from .base import WARNING, Finding, Thresholds

MISSING = object()


# groups ----------------------------------------------------------------------
@dataclass
class Group:
    """The trials that share one scientific value (or bucket)."""

    label: str  # "optimizer=sgd", "wd=[0, 0.02)", "" without scientific hyperparameters
    values: dict[str, Any]  # {"optimizer": "sgd"}; a bucket's (lo, hi) for a continuous one
    trials: list[TrialRow]


def scientific_names(data: StudyData) -> list[str]:
    return [k for k, r in data.roles.items() if r == "scientific"]


def _bucket(data: StudyData, name: str, value: Any, buckets: int) -> tuple[str, Any]:
    p = data.space[name]
    i = min(int(data.unit(name, value) * buckets), buckets - 1)
    lo, hi = p.from_unit(i / buckets), p.from_unit((i + 1) / buckets)
    return f"[{lo:.3g}, {hi:.3g}{']' if i == buckets - 1 else ')'}", (lo, hi)


def groups(data: StudyData, buckets: int = 5) -> list[Group]:
    """The study's groups in the order of the scientific values (one group without scientific hyperparameters)."""
    return list(data.once(_groups, buckets))


def _groups(data: StudyData, buckets: int) -> list[Group]:
    names = scientific_names(data)
    if not names:
        return [Group("", {}, list(data.trials))]
    out: dict[tuple[Any, ...], Group] = {}
    seen: dict[tuple[Any, ...], tuple[tuple[str, ...], dict[str, Any]]] = {}  # the labels of each distinct value
    for t in data.trials:
        raw = tuple(t.params.get(name, MISSING) for name in names)
        try:  # equal values label alike unless their type or the sign of a zero differs (1, 1.0, True; 0.0, -0.0)
            same: tuple[Any, ...] | None = tuple((type(v), v, v == 0 and str(v)) for v in raw)
            known = seen.get(same)  # type: ignore[arg-type]
        except TypeError:  # an unhashable value
            same, known = None, None
        if known is None:
            parts, values = [], {}
            for name, value in zip(names, raw):
                if value is MISSING:
                    parts.append(f"{name}=?")
                    values[name] = None
                elif isinstance(data.space.get(name), Choice) or name not in data.space:
                    parts.append(f"{name}={value}")
                    values[name] = value
                else:
                    label, span = _bucket(data, name, value, buckets)
                    parts.append(f"{name}={label}")
                    values[name] = span
            known = (tuple(parts), values)
            if same is not None:
                seen[same] = known
        key, values = known
        group = out.get(key)
        if group is None:
            group = out[key] = Group(", ".join(key), dict(values), [])
        group.trials.append(t)

    def order(g: Group) -> tuple[Any, ...]:
        key = []
        for name in names:
            p = data.space.get(name)
            v = g.values.get(name)
            if isinstance(p, Choice) and v in p.values:
                key.append(p.values.index(v))
            elif isinstance(v, tuple):
                key.append(v[0])
            else:
                key.append(math.inf)
        return tuple(key)

    return sorted(out.values(), key=order)


def _no_views(data: StudyData) -> dict[tuple[str, int], StudyData]:
    return {}  # filled by group_view, once per StudyData


def group_view(data: StudyData, group: Group) -> StudyData:
    """The study restricted to one group's trials (sharing the curve cache; one view per group, made once)."""
    views = data.once(_no_views)
    key = (group.label, id(group.trials))
    view = views.get(key)
    if view is None or view.trials is not group.trials:
        view = views[key] = replace(data, trials=group.trials)
    return view


_LR = re.compile(r"(^|_)(learning_rate|lr)($|_)")


def is_learning_rate(name: str) -> bool:
    """Whether a hyperparameter's name says it is a learning rate (``learning_rate``, ``lr``, ``base_lr``...)."""
    return bool(_LR.search(name.lower()))


def has(t: TrialRow, name: str) -> bool:
    return name in t.params and t.params[name] is not None


def numeric_params(data: StudyData) -> dict[str, Any]:
    """Numeric hyperparameters that vary in the study (scientific ones included)."""
    return data.numeric_params()


def in_group(label: str) -> str:
    """A message prefix naming the group ("" for a study without scientific hyperparameters)."""
    return f"[{label}] " if label else ""


def top_k(data: StudyData, th: Thresholds) -> list[TrialRow]:
    ranked = data.ranked()
    k = max(th.top_k_min, int(math.ceil(th.top_k_share * len(ranked))))
    return ranked[:k]


def curve_trials(data: StudyData, th: Thresholds) -> list[TrialRow]:
    """The trials whose curves the checklist reads: the best few and the best of each scientific value."""
    chosen = {t.number: t for t in data.ranked()[: th.curve_top_k]}
    for t in data.best_by_scientific().values():
        chosen.setdefault(t.number, t)
    return [chosen[n] for n in sorted(chosen)]


# curves ----------------------------------------------------------------------
def moving_average(y: np.ndarray, window: int) -> np.ndarray:
    """Centered moving average with shrinking windows at the ends (same length)."""
    if len(y) == 0 or window <= 1:
        return y.astype(float)
    half = window // 2
    cumsum = np.concatenate([[0.0], np.cumsum(y, dtype=float)])
    idx = np.arange(len(y))
    lo, hi = np.maximum(idx - half, 0), np.minimum(idx + half + 1, len(y))
    return (cumsum[hi] - cumsum[lo]) / (hi - lo)


def running_median(y: np.ndarray, window: int = 5) -> np.ndarray:
    """Centered running median with shrinking windows at the ends: a smooth robust to single outliers."""
    y = np.asarray(y, dtype=float)
    half = window // 2
    n = len(y)
    if n < 2 * half + 1 or half == 0 or np.isnan(y).any():
        return np.array([np.median(y[max(0, i - half): i + half + 1]) for i in range(n)])
    out = np.empty(n)
    out[half:n - half] = np.median(np.lib.stride_tricks.sliding_window_view(y, 2 * half + 1), axis=1)
    for i in (*range(half), *range(n - half, n)):  # the shrinking windows at the ends (np.median's result)
        w = sorted(y[max(0, i - half): i + half + 1].tolist())
        m = len(w) // 2
        out[i] = w[m] if len(w) % 2 else (w[m - 1] + w[m]) / 2
    return out


def initial_level(y: np.ndarray) -> float:
    """Where a curve starts: the median of its first three points (robust to one outlier)."""
    return float(np.median(y[:3]))


def resolution(y: np.ndarray) -> float:
    """The step of a quantized metric (one validation example of an error rate), or 0 for a continuous one.

    A curve is quantized when at least a fifth of its consecutive values repeat exactly;
    its resolution is then the smallest nonzero difference between its values.
    """
    d = np.abs(np.diff(np.asarray(y, dtype=float)))
    if len(d) < 4 or np.mean(d == 0) < 0.2:
        return 0.0
    nonzero = d[d > 0]
    return float(nonzero.min()) if len(nonzero) else 0.0


#: the fewest evaluations a noise estimate is computed from (after the early transient is left out)
MIN_NOISE_EVALS = 5


def late_part(y: np.ndarray) -> np.ndarray:
    """The part of a curve its noise is read from: past the early transient (the initial drop, an early spike).

    The second half of a curve of 12 or more evaluations; of a shorter one, the evaluations from the
    first one that comes within half its total drop of its final level (at least the first quarter
    left out), keeping at least :data:`MIN_NOISE_EVALS` when the curve has them.
    """
    y = np.asarray(y, dtype=float)
    n = len(y)
    if n >= 12:
        return y[n // 2:]
    if n <= MIN_NOISE_EVALS:
        return y
    smooth = running_median(y, 3)
    end = float(np.median(y[-3:]))
    drop = float(np.max(smooth) - end)
    settled = int(np.argmax(np.abs(smooth - end) <= 0.5 * drop)) if drop > 0 else 0
    start = min(max(n // 4, settled), n - MIN_NOISE_EVALS)
    return y[start:]


def curve_noise(y: np.ndarray) -> float:
    """The standard deviation of a curve's noise, from its second differences.

    ``y[i-1] - 2 y[i] + y[i+1]`` is zero on a straight line and small on a smooth trend; on
    white noise of standard deviation s its spread is s * sqrt(6). Over the curve's :func:`late_part`
    (past the initial drop and any early spike; where the trial ends), their robust spread (the MAD;
    the RMS with the largest tenth trimmed when most are zero, as on a quantized metric) over sqrt(6)
    estimates the per-point noise; from fewer than 12 late evaluations, never more than the late part's
    own variation (its standard deviation: a few second differences across a bend overstate the noise). Zero on a noise-free
    straight line; floored at the metric's :func:`resolution`.
    """
    y = np.asarray(y, dtype=float)
    part = late_part(y)
    d2 = np.diff(part, 2)
    if len(d2) < 2:
        return resolution(y)
    spread = 1.4826 * float(np.median(np.abs(d2)))
    if spread == 0:  # most second differences are zero (a quantized, mostly flat metric)
        a = np.sort(np.abs(d2))[: max(1, int(math.ceil(0.9 * len(d2))))]
        spread = float(np.sqrt(np.mean(a**2)))
    noise = spread / math.sqrt(6)
    if len(part) < 12:  # a few second differences: across a bend they overstate the noise
        noise = min(noise, float(np.std(part, ddof=1)))
    return max(noise, resolution(y))


def scale(y: np.ndarray) -> float:
    """How much a loss-like curve improved: its initial level minus the minimum of its robust smooth."""
    return initial_level(y) - float(np.min(running_median(y)))


@dataclass(frozen=True)
class Window:
    """The evaluations a trend was fitted on: first and last step, how many, and their share of the run."""

    first_step: int
    last_step: int
    evals: int
    share: float  # (last - first step) / (last - first step of the whole curve)

    def words(self) -> str:
        """What was fitted, as a message says it: "the last 6 evaluations (steps 520-1000, 48% of the run)"."""
        return f"the last {self.evals} evaluations (steps {self.first_step}-{self.last_step}, {self.share:.0%} of the run)"


def tail_gain(steps: np.ndarray, y: np.ndarray, share: float = 0.25) -> tuple[float, float, Window]:
    """The improvement of a loss-like curve's linear trend over its last ``share`` of steps (at least its
    last 4 evaluations), its standard error, and the window actually fitted.

    The standard error uses the whole curve's noise (a few tail points estimate it badly).
    """
    start = steps[0] + (1 - share) * (steps[-1] - steps[0])
    tail = steps >= start
    if tail.sum() < 4:
        tail = np.zeros(len(steps), dtype=bool)
        tail[-4:] = True
    x, v = steps[tail].astype(float), y[tail]
    run = float(steps[-1] - steps[0])
    window = Window(int(x[0]), int(x[-1]), int(tail.sum()), float(x[-1] - x[0]) / run if run > 0 else 1.0)
    sxx = float(np.sum((x - x.mean()) ** 2))
    if sxx <= 0:
        return 0.0, math.inf, window
    slope = float(np.sum((x - x.mean()) * (v - v.mean())) / sxx)
    span = float(x[-1] - x[0])
    return -slope * span, curve_noise(y) * span / math.sqrt(sxx), window


def percent_of(part: float, base: float, noise: float = 0.0) -> str | None:
    """``part`` as a percentage of ``base``, or None when the base is zero or near zero (within its
    noise, or smaller than half of ``part``): a percentage of such a base says nothing measured."""
    if not math.isfinite(part) or not math.isfinite(base) or abs(base) <= max(noise, 1e-12) or abs(part) > 2 * abs(base):
        return None
    return f"{part / abs(base):.0%}"


def effective_best_step(steps: np.ndarray, y: np.ndarray, th: Thresholds) -> int:
    """The first step where a loss-like curve's robust smooth comes within its noise of its best.

    Retrospective checkpoint selection picks the minimum, which on a flat noisy curve is
    wherever noise put it; this is where the curve actually stopped improving.
    """
    smooth = running_median(y)
    improved = initial_level(y) - float(np.min(smooth))  # scale(y), with the smooth computed once
    band = max(th.noise_z * curve_noise(y), th.saturation_tol * max(improved, 0.0))
    return int(steps[first_within(y, smooth, band)])


def first_within(y: np.ndarray, smooth: np.ndarray, band: float) -> int:
    """The first evaluation from which a loss-like curve is within ``band`` of its best: its robust smooth
    *and* its measured value there (never later than the smooth's minimum).

    The smooth alone dates a fall too early: at the curve's start its window (shrunk to the first three
    evaluations) takes the median of the points after the first, so a first evaluation far above the
    best would read as already within the band. Its measured value must be within the band too.
    """
    best = float(np.min(smooth))
    ok = (smooth <= best + band) & (np.asarray(y, dtype=float) <= best + band)
    ok[int(np.argmin(smooth))] = True
    return int(np.argmax(ok))


def loss_like(curve: Curve, sign: float) -> tuple[np.ndarray, np.ndarray]:
    ok = np.isfinite(curve.values)
    return curve.steps[ok], sign * curve.values[ok]


def read_curve(data: StudyData, t: TrialRow, metric: str, sign: float, min_points: int = 4) -> tuple[np.ndarray, np.ndarray] | None:
    curve = data.curve(t, metric)
    if curve is None:
        return None
    steps, y = loss_like(curve, sign)
    return (steps, y) if len(y) >= min_points else None


def for_groups(
    data: StudyData, th: Thresholds, judge: Callable[[StudyData, Group], list[Finding]]
) -> list[Finding]:
    """Run ``judge`` on each group's view; name the group in each finding's evidence."""
    out = []
    for g in groups(data, th.scientific_buckets):
        for f in judge(group_view(data, g), g):
            out.append(replace(f, evidence={"group": g.label, **f.evidence}))
    return out


def curve_hits(
    view: StudyData,
    trials: list[TrialRow],
    metric: str,
    sign: float,
    test: Callable[[TrialRow, np.ndarray, np.ndarray], dict[str, Any] | None],
) -> tuple[list[tuple[TrialRow, dict[str, Any]]], int]:
    """The trials whose curve ``test`` flags, and how many curves were read."""
    hits, read = [], 0
    for t in trials:
        c = read_curve(view, t, metric, sign)
        if c is None:
            continue
        read += 1
        found = test(t, *c)
        if found is not None:
            hits.append((t, found))
    return hits, read


def curve_finding(
    check: str,
    group: Group,
    hits: list[tuple[TrialRow, dict[str, Any]]],
    read: int,
    message: Callable[[TrialRow, dict[str, Any]], str],
    action: str,
    severity: str = WARNING,
) -> list[Finding]:
    """One finding for a curve check in one group, worded from its first hit, listing every trial that hit."""
    if not hits:
        return []
    t, ev = hits[0]
    return [Finding(check, severity, in_group(group.label) + message(t, ev), action,
                    {"trials": [h.number for h, _ in hits], "examined": read, **ev})]


# best of k -------------------------------------------------------------------
def expected_best_of_k(values: np.ndarray, k: int) -> float:
    """E[min of k values drawn without replacement from ``values``] (loss-like; +inf for infeasible).

    With the values sorted, v_(i) is the minimum of the draw when it is drawn and the k-1
    others come from the n-i larger ones: P = C(n-i, k-1) / C(n, k). Exact; no resampling.
    """
    v = np.sort(np.asarray(values, dtype=float))
    n = len(v)
    if not 1 <= k <= n:
        raise ValueError(f"k must lie in 1..{n}, got {k}")
    # P_1 = k / n and P_(i+1) = P_i (n - i - k + 1) / (n - i): one cumulative product, O(n), no big integers
    i = np.arange(1, n - k + 1, dtype=float)
    w = np.empty(n - k + 1)
    w[0] = k / n
    w[1:] = (k / n) * np.cumprod((n - i - k + 1) / (n - i))
    used = w > 0
    head = v[: n - k + 1][used]
    if not np.all(np.isfinite(head)):
        return math.inf
    return float(np.dot(w[used], head))


def bootstrap_best_of_k(
    values: np.ndarray, ks: list[int], samples: int, rng: np.random.Generator
) -> dict[int, np.ndarray]:
    """Best-of-k of ``values`` (loss-like; +inf for infeasible) resampled with replacement (the figure's box plots).

    One draw of ``max(ks)`` trials per sample serves every k (a running minimum), so
    each sample's best-of-k never gets worse as k grows.
    """
    draws = values[rng.integers(0, len(values), size=(samples, max(ks)))]
    running = np.minimum.accumulate(draws, axis=1)
    return {k: running[:, k - 1] for k in ks}


def bootstrap_ks(n: int) -> list[int]:
    """k = 1..n, thinned geometrically beyond 30 points."""
    if n <= 30:
        return list(range(1, n + 1))
    return sorted({int(round(x)) for x in np.geomspace(1, n, 30)} | {n, max(1, n // 2)})


def fmt(x: float | None) -> str:
    return "-" if x is None or not math.isfinite(x) else f"{x:.3g}"
