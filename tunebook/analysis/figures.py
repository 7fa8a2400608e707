"""The playbook's generically useful plots ("Automate generically useful plots").

Each figure has two halves: a function that computes a plain data object
(tests assert on it) and a renderer that draws it with Plotly. Infeasible
trials are red x; the best trial is a star.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tunebook.analysis.data import StudyData, TrialRow
from tunebook.analysis.diagnostics import Thresholds, bootstrap_best_of_k, bootstrap_ks, recommend_clipping
from tunebook.space import Choice, Float, Int

INFEASIBLE_COLOR = "#d62728"
BEST_COLOR = "#ff7f0e"
POINT_COLOR = "#1f77b4"


# data objects ----------------------------------------------------------------
@dataclass
class AxisPlotData:
    """Objective against one hyperparameter: feasible points, infeasible x's, the best trial."""

    param: str
    role: str
    log_x: bool
    categorical: bool
    x: list[Any]
    y: list[float]
    numbers: list[int]
    infeasible_x: list[Any]
    infeasible_numbers: list[int]
    best_x: Any
    best_y: float | None
    metric: str


@dataclass
class IsolationPlotData:
    """Best trial over the nuisance hyperparameters, for each scientific value (or bucket)."""

    param: str
    labels: list[str]
    best_values: list[float]
    best_numbers: list[int]
    metric: str
    baseline: float | None = None


@dataclass
class CurveSet:
    """Curves of chosen trials for one metric: ``{label: (steps, values)}``."""

    metric: str
    title: str
    curves: dict[str, tuple[list[int], list[float]]]
    max_train_steps: int


@dataclass
class BestStepData:
    steps: list[int]
    max_train_steps: int


@dataclass
class SampledEnoughData:
    """Bootstrapped best-of-k for growing k: quartiles per k."""

    ks: list[int]
    q1: list[float]
    median: list[float]
    q3: list[float]
    lo: list[float]
    hi: list[float]
    metric: str


@dataclass
class GradNormData:
    trial: int
    steps: list[int]
    norms: list[float]
    recommended_threshold: float


@dataclass
class Figure:
    """A computed figure: ``kind`` names the renderer, ``data`` is what tests read."""

    kind: str
    title: str
    data: Any
    notes: list[str] = field(default_factory=list)


# computing -------------------------------------------------------------------
def axis_plot(data: StudyData, param: str) -> AxisPlotData:
    p = data.space[param]
    # a conditional hyperparameter: only the trials of the groups that have it (the best among them)
    best = next(iter(data.with_param(param, data.ranked())), None)
    ok = data.with_param(param, data.completed)
    bad = data.with_param(param, data.infeasible)
    return AxisPlotData(
        param=param,
        role=data.roles[param],
        log_x=isinstance(p, (Float, Int)) and p.scale == "log",
        categorical=isinstance(p, Choice),
        x=[t.params[param] for t in ok],
        y=[float(t.value) for t in ok],  # type: ignore[arg-type]
        numbers=[t.number for t in ok],
        infeasible_x=[t.params[param] for t in bad],
        infeasible_numbers=[t.number for t in bad],
        best_x=None if best is None else best.params[param],
        best_y=None if best is None else best.value,
        metric=data.metric,
    )


def isolation_plot(data: StudyData, param: str, baseline: float | None = None, buckets: int = 5) -> IsolationPlotData:
    p = data.space[param]
    s = data.sign()
    groups: dict[str, list[TrialRow]] = {}
    order: list[str] = []
    if isinstance(p, Choice):
        for v in p.values:
            order.append(str(v))
            groups[str(v)] = []
        for t in data.completed:
            groups[str(t.params[param])].append(t)
    else:  # continuous scientific values: equal-width buckets of the scaled axis
        edges = np.linspace(0, 1, buckets + 1)
        for i in range(buckets):
            lo, hi = p.from_unit(edges[i]), p.from_unit(edges[i + 1])
            label = f"[{lo:.3g}, {hi:.3g}{']' if i == buckets - 1 else ')'}"
            order.append(label)
            groups[label] = []
        for t in data.completed:
            i = min(int(data.unit(param, t.params[param]) * buckets), buckets - 1)
            groups[order[i]].append(t)
    labels, values, numbers = [], [], []
    for label in order:
        if groups[label]:
            best = min(groups[label], key=lambda t: (s * t.value, t.number))  # type: ignore[operator]
            labels.append(label)
            values.append(float(best.value))  # type: ignore[arg-type]
            numbers.append(best.number)
    return IsolationPlotData(param, labels, values, numbers, data.metric, baseline)


def _curve(data: StudyData, t: TrialRow, metric: str) -> tuple[list[int], list[float]] | None:
    c = data.curves(t).get(metric)
    if c is None:
        return None
    return c.steps.tolist(), [None if not math.isfinite(v) else v for v in c.values.tolist()]  # type: ignore[misc]


def curve_sets(data: StudyData, th: Thresholds, top: int = 5) -> list[CurveSet]:
    """Validation and training curves of the top trials and of the best trial of each scientific value."""
    sets = []
    ranked = data.ranked()[:top]
    scientific = [k for k, r in data.roles.items() if r == "scientific"]
    for metric in (data.metric, th.train_metric):
        chosen = {f"#{t.number} ({t.value:.4g})": t for t in ranked}
        curves = {label: c for label, t in chosen.items() if (c := _curve(data, t, metric)) is not None}
        if curves:
            sets.append(CurveSet(metric, f"{metric}: the {len(curves)} best trials", curves, data.max_train_steps))
        if scientific:
            per_value = {}
            for key, t in data.best_by_scientific().items():
                label = ", ".join(f"{k}={v}" for k, v in zip(scientific, key)) + f" (#{t.number})"
                if (c := _curve(data, t, metric)) is not None:
                    per_value[label] = c
            if per_value:
                sets.append(CurveSet(metric, f"{metric}: best trial of each scientific value", per_value, data.max_train_steps))
    return sets


def best_steps(data: StudyData) -> BestStepData:
    return BestStepData([int(t.best_step) for t in data.completed if t.best_step is not None], data.max_train_steps)


def sampled_enough(data: StudyData, th: Thresholds) -> SampledEnoughData | None:
    if len(data.completed) < 2:
        return None
    s = data.sign()
    values = data.loss_like_values()
    ks = bootstrap_ks(len(values))
    boot = bootstrap_best_of_k(values, ks, th.bootstrap_samples, np.random.default_rng(0))
    out = SampledEnoughData([], [], [], [], [], [], data.metric)
    for k in ks:
        # "nearest" keeps infeasible draws as +inf instead of interpolating into them
        quantiles = np.percentile(boot[k], [5, 25, 50, 75, 95], method="nearest")
        if not np.isfinite(quantiles[2]):
            continue  # most draws of k trials hold no feasible one
        lo, q1, med, q3, hi = (float(s * q) if np.isfinite(q) else None for q in quantiles)
        out.ks.append(k)
        out.lo.append(lo)
        out.q1.append(q1)
        out.median.append(med)
        out.q3.append(q3)
        out.hi.append(hi)
    return out


def grad_norms(data: StudyData, th: Thresholds) -> GradNormData | None:
    best = data.best()
    if best is None:
        return None
    c = data.curves(best).get(th.grad_norm_metric)
    if c is None or not len(c):
        return None
    rec = recommend_clipping(c.values)
    return GradNormData(best.number, c.steps.tolist(), c.values.tolist(), rec["recommended_threshold"])


def compute_figures(data: StudyData, th: Thresholds | None = None, baseline: float | None = None) -> list[Figure]:
    th = th or Thresholds()
    figures = []
    for name in data.space:
        figures.append(Figure("axis", f"{data.metric} against {name} ({data.roles[name]})", axis_plot(data, name)))
    for name, role in data.roles.items():
        if role == "scientific":
            figures.append(Figure("isolation", f"Isolation plot: best {data.metric} for each {name}", isolation_plot(data, name, baseline)))
    for cs in curve_sets(data, th):
        figures.append(Figure("curves", cs.title, cs))
    figures.append(Figure("best_steps", "Step of the best checkpoint, against max_train_steps", best_steps(data)))
    se = sampled_enough(data, th)
    if se is not None:
        figures.append(Figure("sampled_enough", "Have we sampled enough? Bootstrapped best of k trials", se))
    gn = grad_norms(data, th)
    if gn is not None:
        figures.append(Figure("grad_norms", f"Gradient norm of trial #{gn.trial}", gn))
    return figures


# rendering -------------------------------------------------------------------
def render(figure: Figure) -> Any:
    """A Plotly figure for a computed :class:`Figure`."""
    import plotly.graph_objects as go

    d = figure.data
    fig = go.Figure()
    if figure.kind == "axis":
        fig.add_trace(go.Scatter(x=d.x, y=d.y, mode="markers", name="completed", marker={"color": POINT_COLOR},
                                 text=[f"#{n}" for n in d.numbers]))
        if d.infeasible_x:
            top = max(d.y) if d.y else 1.0
            fig.add_trace(go.Scatter(x=d.infeasible_x, y=[top] * len(d.infeasible_x), mode="markers", name="infeasible",
                                     marker={"color": INFEASIBLE_COLOR, "symbol": "x", "size": 10},
                                     text=[f"#{n}" for n in d.infeasible_numbers]))
        if d.best_y is not None:
            fig.add_trace(go.Scatter(x=[d.best_x], y=[d.best_y], mode="markers", name="best",
                                     marker={"color": BEST_COLOR, "symbol": "star", "size": 16}))
        fig.update_xaxes(title=d.param, type="log" if d.log_x else ("category" if d.categorical else "linear"))
        fig.update_yaxes(title=d.metric)
    elif figure.kind == "isolation":
        fig.add_trace(go.Scatter(x=d.labels, y=d.best_values, mode="lines+markers", name=f"best {d.metric}",
                                 text=[f"#{n}" for n in d.best_numbers]))
        if d.baseline is not None:
            fig.add_hline(y=d.baseline, line_dash="dash", annotation_text="baseline")
        fig.update_xaxes(title=d.param, type="category")
        fig.update_yaxes(title=f"best {d.metric}")
    elif figure.kind == "curves":
        for label, (steps, values) in d.curves.items():
            fig.add_trace(go.Scatter(x=steps, y=values, mode="lines", name=label))
        fig.update_xaxes(title="step", range=[0, d.max_train_steps])
        fig.update_yaxes(title=d.metric)
    elif figure.kind == "best_steps":
        fig.add_trace(go.Histogram(x=d.steps, nbinsx=20, name="best step"))
        fig.add_vline(x=d.max_train_steps, line_dash="dash", annotation_text="max_train_steps")
        fig.update_xaxes(title="step of the best checkpoint", range=[0, d.max_train_steps * 1.02])
        fig.update_yaxes(title="trials")
    elif figure.kind == "sampled_enough":
        fig.add_trace(go.Box(x=d.ks, q1=d.q1, median=d.median, q3=d.q3, lowerfence=d.lo, upperfence=d.hi,
                             name=f"best {d.metric} of k trials"))
        fig.update_xaxes(title="k (trials)", type="log" if max(d.ks) > 30 else "linear")
        fig.update_yaxes(title=f"best {d.metric}")
    elif figure.kind == "grad_norms":
        from plotly.subplots import make_subplots

        fig = make_subplots(rows=1, cols=2, subplot_titles=("norm against step", "histogram"))
        fig.add_trace(go.Scatter(x=d.steps, y=d.norms, mode="lines", name="total norm"), row=1, col=1)
        fig.add_trace(go.Histogram(x=d.norms, nbinsx=40, name="norms"), row=1, col=2)
        fig.add_hline(y=d.recommended_threshold, line_dash="dash", row=1, col=1,
                      annotation_text="90th percentile (clip here)")
    else:  # pragma: no cover - every kind above is rendered
        raise ValueError(f"unknown figure kind {figure.kind!r}")
    fig.update_layout(title=figure.title, template="plotly_white", height=420, margin={"t": 60, "l": 60, "r": 20, "b": 50})
    return fig
