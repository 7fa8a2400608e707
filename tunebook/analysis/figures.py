"""The playbook's generically useful plots ("Automate generically useful plots").

Each figure has two halves: a function that computes a plain data object
(tests assert on it) and a renderer that draws it with Plotly. Every plotted
point carries its trial: ``customdata[0]`` is the trial number (the dashboard
opens the trial on a click) and the hover names the objective at its step and
the hyperparameters that vary. Infeasible trials are red x in their own strip
under the plot (they have no value, so they are never drawn at one); the best
trial is a star. A trial keeps one colour in every curve figure of a report.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from tunebook.analysis.data import StudyData, TrialRow
from tunebook.analysis.checks import Thresholds, bootstrap_ks, recommend_clipping
from tunebook.space import Choice, Float, Int

INFEASIBLE_COLOR = "#d62728"
BEST_COLOR = "#ff7f0e"
POINT_COLOR = "#1f77b4"
# one colour per trial across a report's curve figures (Plotly's D3 palette, then Dark24's)
PALETTE = ("#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f",
           "#ff7f0e", "#d62728", "#2e91e5", "#1ca71c", "#750d86", "#fb0d0d", "#222a2a", "#b68100")
NUMBER_FORMAT = ".4g"  # the one precision of numbers shown to people (see tunebook.analysis.notebook.fmt)
HOVER_FORMAT = ".4~g"  # the same in d3-format (Plotly's hovers): 4 significant digits, no trailing zeros
#: Plotly's mode bar, set explicitly on every figure (dashboard, report, Jupyter): no logo, and nothing a
#: user studies one click from a third party (this Plotly calls its upload button ``sendChartToCloud``
#: and shows it unless ``showSendToCloud`` is false; older ones ``sendDataToCloud``, and an
#: "Edit in Chart Studio" link). Only keys this Plotly knows (plotly.py warns on others).
PLOTLY_CONFIG: dict[str, Any] = {
    "responsive": True, "displaylogo": False, "showSendToCloud": False,
    "modeBarButtonsToRemove": ["sendDataToCloud", "sendChartToCloud", "editInChartStudio"],
}


def trial_color(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


@dataclass
class GroupColors:
    """One colour per scientific group (value or bucket), the same in every figure of a study: the axis
    plots, their infeasible strips, the isolation plot and the per-group curves."""

    colors: dict[str, str]  # group label ("wd=0.1") -> colour, in the order of the scientific values
    label_of: dict[int, str]  # trial number -> its group's label

    def of_trial(self, number: int) -> str | None:
        label = self.label_of.get(number)
        return None if label is None else self.colors.get(label)


def _group_colors(data: StudyData) -> GroupColors:
    from tunebook.analysis.checks.common import groups

    found = [g for g in groups(data) if g.label]
    if len(found) < 2:
        return GroupColors({}, {})
    return GroupColors({g.label: trial_color(i) for i, g in enumerate(found)},
                       {t.number: g.label for g in found for t in g.trials})


def group_colors(data: StudyData) -> GroupColors:
    """The study's :class:`GroupColors` (empty without two groups or more), computed once per StudyData."""
    return data.once(_group_colors)


def varying(data: StudyData) -> list[str]:
    """The hyperparameters that take more than one value among the study's trials (hovers and headlines name only these)."""
    cached = data.__dict__.get("_varying")
    if cached is not None:
        return list(cached)
    out = []
    for name in data.space:
        seen: set[str] = set()
        for t in data.trials:  # stops at the second distinct value
            if name in t.params:
                seen.add(repr(t.params[name]))
                if len(seen) > 1:
                    out.append(name)
                    break
    data.__dict__["_varying"] = out  # the trials of a StudyData do not change
    return list(out)


_POW10 = np.array([float(f"1e{i}") for i in range(23)])  # exact doubles


def round_sig(values: list[Any], digits: int) -> list[Any]:
    """``float(f"{v:.{digits}g}")`` for each finite float (others unchanged), vectorized for long lists of floats.

    NumPy rounds ``v * 10^k`` to an integer and divides by the exact ``10^k``: the nearest double to the
    rounded decimal, as the formatted text gives, except for a value within an ulp of a rounding tie.
    """
    if len(values) < 256 or not all(type(v) is float for v in values):
        return [float(f"{v:.{digits}g}") if isinstance(v, float) and math.isfinite(v) else v for v in values]
    a = np.asarray(values, dtype=float)
    out = a.copy()
    ok = np.isfinite(a) & (a != 0)
    v = a[ok]
    lg = np.log10(np.abs(v))
    e = np.floor(lg)
    k = np.clip(digits - 1 - e, -22, 22).astype(np.int64)
    up = _POW10[np.abs(k)]
    r = np.where(k >= 0, np.round(v * up) / up, np.round(v / up) * up)
    # formatted one by one: near a power of ten (log10 may floor to the wrong exponent) or beyond 10^+-22
    exact = (np.abs(lg - np.round(lg)) < 1e-9) | (np.abs(digits - 1 - e) > 22) | ~np.isfinite(r)
    result = r.tolist()
    flat = v.tolist()
    for i in np.flatnonzero(exact).tolist():
        result[i] = float(f"{flat[i]:.{digits}g}")
    out[ok] = result
    return out.tolist()


def _hover_value(value: Any) -> Any:
    """A hyperparameter's value for a hover: floats at the hover's 4 significant digits (smaller pages)."""
    if isinstance(value, float):
        return float(f"{value:.4g}") if math.isfinite(value) else str(value)
    return "-" if value is None else value


def hover_values(data: StudyData) -> dict[int, tuple[Any, ...]]:
    """Each trial's varying hyperparameters as shown in hovers, by trial number (computed once per StudyData)."""
    return data.once(_hover_values)


def _hover_values(data: StudyData) -> dict[int, tuple[Any, ...]]:
    columns = []
    for k in varying(data):
        column = [t.params.get(k) for t in data.trials]
        if all(type(v) is float and math.isfinite(v) for v in column):
            columns.append(round_sig(column, 4))  # what _hover_value gives, a column at a time
        else:
            columns.append([_hover_value(v) for v in column])
    return {t.number: row for t, row in zip(data.trials, zip(*columns))} if columns else {t.number: () for t in data.trials}


def customdata_rows(data: StudyData) -> dict[int, list[Any]]:
    """Each trial's hover data, by number: ``[number, best step, *varying]`` for a completed trial,
    ``[number, reason, *varying]`` for an infeasible one. One list per trial, shared by every axis figure."""
    return data.once(_customdata_rows)


def _customdata_rows(data: StudyData) -> dict[int, list[Any]]:
    hovers = hover_values(data)
    return {t.number: [t.number, t.infeasible_reason or "infeasible" if t.state == "infeasible" else t.best_step,
                       *hovers[t.number]] for t in data.trials}


def _short(values: list[Any], digits: int = 7) -> list[Any]:
    """Plotted floats at 7 significant digits: the page carries no more precision than a plot can show."""
    return round_sig(values, digits)


def hover_template(metric: str, params: list[str], numeric: set[str], first: str = "") -> str:
    """A Plotly hover template over ``customdata = [number, step, *params]`` (and ``y``, the objective)."""
    lines = [f"<b>#%{{customdata[0]}}</b> · {first or metric + ' %{y:' + HOVER_FORMAT + '} @ step %{customdata[1]}'}"]
    for i, name in enumerate(params):
        spec = f":{HOVER_FORMAT}" if name in numeric else ""
        lines.append(f"{name} = %{{customdata[{i + 2}]{spec}}}")
    return "<br>".join(lines) + "<extra></extra>"


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
    categories: list[str] = field(default_factory=list)  # a choice's values, in the space's order
    hover_params: list[str] = field(default_factory=list)  # the varying hyperparameters, named in hovers
    numeric_params: set[str] = field(default_factory=set)
    customdata: list[list[Any]] = field(default_factory=list)  # per completed point: [number, step, *hover_params]
    infeasible_customdata: list[list[Any]] = field(default_factory=list)  # [number, reason, *hover_params]
    best_number: int | None = None
    y_range: tuple[float, float] | None = None  # the useful range when a long tail of bad trials would flatten it
    outliers: int = 0  # completed points outside y_range
    mode: str = "min"
    #: per completed point, its scientific group's label ("optimizer=sgd"); empty without two groups
    group_of: list[str] = field(default_factory=list)
    group_order: list[str] = field(default_factory=list)  # the groups, in the order of their values
    group_colors: dict[str, str] = field(default_factory=dict)  # group label -> its colour in every figure
    infeasible_group_of: list[str] = field(default_factory=list)  # per infeasible point, its group's label


@dataclass
class IsolationPlotData:
    """Best trial over the nuisance hyperparameters, for each scientific value (or bucket)."""

    param: str
    labels: list[str]
    best_values: list[float]
    best_numbers: list[int]
    metric: str
    baseline: float | None = None
    best_steps: list[int | None] = field(default_factory=list)
    #: trial variance as a standard deviation (error bars of +/- one sd around each best) and its source
    trial_sd: float | None = None
    trial_sd_source: str = ""
    categorical: bool = False  # a choice's values: drawn as categories (markers), never joined by a line
    colors: list[str | None] = field(default_factory=list)  # per label, its group's colour (None: no group)
    group_labels: list[str] = field(default_factory=list)  # per label, the group it is ("wd=0.1"), for the legend


@dataclass
class CurveSet:
    """Curves of chosen trials for one metric: ``{label: (steps, values)}``."""

    metric: str
    title: str
    curves: dict[str, tuple[list[int], list[float]]]
    max_train_steps: int
    numbers: dict[str, int] = field(default_factory=dict)  # label -> trial number
    colors: dict[str, str] = field(default_factory=dict)  # label -> colour, one per trial across the report
    #: the best trial of each scientific group (labels name the group), not the top trials overall
    by_group: bool = False


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
    #: what the figure shows, stable while the study runs (its title may count trials): pages address a
    #: figure by it (``figure_anchor``), a live page updates the figure of the same key
    key: str = ""


# computing -------------------------------------------------------------------
def useful_range(values: list[float], mode: str) -> tuple[tuple[float, float] | None, int]:
    """A y-range that leaves out a long tail of bad values (and how many it leaves out), or ``(None, 0)``."""
    finite = np.asarray([v for v in values if math.isfinite(v)], dtype=float)
    if len(finite) < 10:
        return None, 0
    lo, hi = float(finite.min()), float(finite.max())
    cut = float(np.percentile(finite, 90 if mode == "min" else 10))
    zlo, zhi = (lo, cut) if mode == "min" else (cut, hi)
    if zhi <= zlo or (hi - lo) < 1.5 * (zhi - zlo):
        return None, 0
    pad = 0.06 * (zhi - zlo)
    zlo, zhi = zlo - pad, zhi + pad
    return (zlo, zhi), int(((finite < zlo) | (finite > zhi)).sum())


def axis_plot(data: StudyData, param: str) -> AxisPlotData:
    p = data.space[param]
    # a conditional hyperparameter: only the trials of the groups that have it (the best among them)
    best = next((t for t in data.ranked() if param in t.params), None)
    ok = [t for t in data.completed if param in t.params]
    bad = [t for t in data.infeasible if param in t.params]
    hover = varying(data)
    numeric = {k for k in hover if not isinstance(data.space[k], Choice)
               or all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in data.space[k].values)}
    rows = customdata_rows(data)
    y = [float(t.value) for t in ok]  # type: ignore[arg-type]
    y_range, outliers = useful_range(y, data.mode)
    colors = group_colors(data)
    group_of: list[str] = []
    group_order: list[str] = []
    bad_group_of: list[str] = []
    if colors.colors:  # every point in its group's colour (also on a scientific value's own axis: one colour per value)
        bad_group_of = [colors.label_of.get(t.number, "") for t in bad]
        group_of = [colors.label_of.get(t.number, "") for t in ok]
        group_order = list(colors.colors)
    return AxisPlotData(
        param=param,
        role=data.roles[param],
        log_x=isinstance(p, (Float, Int)) and p.scale == "log",
        categorical=isinstance(p, Choice),
        x=[t.params[param] for t in ok],
        y=y,
        numbers=[t.number for t in ok],
        infeasible_x=[t.params[param] for t in bad],
        infeasible_numbers=[t.number for t in bad],
        best_x=None if best is None else best.params.get(param),
        best_y=None if best is None else best.value,
        metric=data.metric,
        categories=[str(v) for v in p.values] if isinstance(p, Choice) else [],
        hover_params=hover,
        numeric_params=numeric,
        customdata=[rows[t.number] for t in ok],
        infeasible_customdata=[rows[t.number] for t in bad],
        best_number=None if best is None else best.number,
        y_range=y_range,
        outliers=outliers,
        mode=data.mode,
        group_of=group_of,
        group_order=group_order,
        group_colors=dict(colors.colors),
        infeasible_group_of=bad_group_of,
    )


def isolation_plot(data: StudyData, param: str, baseline: float | None = None, buckets: int = 5,
                   th: Thresholds | None = None) -> IsolationPlotData:
    """The best trial of each scientific value (or bucket), with +/- one trial standard deviation: two
    bests closer than that may differ by the luck of the seed alone."""
    p = data.space[param]
    s = data.sign()
    groups: dict[str, list[TrialRow]] = {}
    order: list[str] = []
    if isinstance(p, Choice):
        for v in p.values:
            order.append(str(v))
            groups[str(v)] = []
        for t in data.completed:
            if param in t.params:
                groups.setdefault(str(t.params[param]), []).append(t)
    else:  # continuous scientific values: equal-width buckets of the scaled axis
        edges = np.linspace(0, 1, buckets + 1)
        for i in range(buckets):
            lo, hi = p.from_unit(edges[i]), p.from_unit(edges[i + 1])
            label = f"[{lo:.3g}, {hi:.3g}{']' if i == buckets - 1 else ')'}"
            order.append(label)
            groups[label] = []
        for t in data.completed:
            if param not in t.params:
                continue
            i = min(int(data.unit(param, t.params[param]) * buckets), buckets - 1)
            groups[order[i]].append(t)
    labels, values, numbers, steps = [], [], [], []
    for label in order:
        if groups[label]:
            best = min(groups[label], key=lambda t: (s * t.value, t.number))  # type: ignore[operator]
            labels.append(label)
            values.append(float(best.value))  # type: ignore[arg-type]
            numbers.append(best.number)
            steps.append(best.best_step)
    from tunebook.analysis.checks.variance import trial_sd

    sd, source = trial_sd(data, th or Thresholds())
    colors = group_colors(data)
    group_labels = [colors.label_of.get(n, "") for n in numbers]
    # a group's colour only where the group is this hyperparameter's value (the only scientific one)
    alone = sum(r == "scientific" for r in data.roles.values()) == 1
    return IsolationPlotData(param, labels, values, numbers, data.metric, baseline, steps, sd, source,
                             categorical=isinstance(p, Choice),
                             colors=[colors.colors.get(g) if alone else None for g in group_labels],
                             group_labels=group_labels if alone else [])


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
        chosen = {f"#{t.number} ({t.value:{NUMBER_FORMAT}})": t for t in ranked}
        curves = {label: c for label, t in chosen.items() if (c := _curve(data, t, metric)) is not None}
        if curves:
            sets.append(CurveSet(metric, f"{metric}: the {len(curves)} best trials", curves, data.max_train_steps,
                                 {label: chosen[label].number for label in curves}))
        if scientific:
            per_value, numbers = {}, {}
            for key, t in data.best_by_scientific().items():
                label = ", ".join(f"{k}={v}" for k, v in zip(scientific, key)) + f" (#{t.number})"
                if (c := _curve(data, t, metric)) is not None:
                    per_value[label] = c
                    numbers[label] = t.number
            if per_value:
                sets.append(CurveSet(metric, f"{metric}: best trial of each scientific value", per_value, data.max_train_steps,
                                     numbers, by_group=True))
    return sets


def best_steps(data: StudyData) -> BestStepData:
    return BestStepData([int(t.best_step) for t in data.completed if t.best_step is not None], data.max_train_steps)


def best_of_k_quantiles(values: np.ndarray, k: int, qs: tuple[float, ...] = (0.05, 0.25, 0.5, 0.75, 0.95)) -> np.ndarray:
    """Exact quantiles of the best (min) of ``k`` draws with replacement from ``values`` (loss-like; +inf infeasible).

    With the values sorted, ``P(best <= v_(j)) = 1 - (1 - j/n)^k``: the q-quantile is ``v_(j)`` for the
    smallest such j reaching q. The same distribution a bootstrap of best-of-k samples, with no resampling.
    """
    v = np.sort(np.asarray(values, dtype=float))
    n = len(v)
    q = np.asarray(qs, dtype=float)
    j = np.ceil(n * (1.0 - (1.0 - q) ** (1.0 / k)) - 1e-9).astype(int)
    return v[np.clip(j, 1, n) - 1]


def sampled_enough(data: StudyData, th: Thresholds) -> SampledEnoughData | None:
    if len(data.completed) < 2:
        return None
    s = data.sign()
    values = np.sort(data.loss_like_values())
    ks = bootstrap_ks(len(values))
    out = SampledEnoughData([], [], [], [], [], [], data.metric)
    for k in ks:
        quantiles = best_of_k_quantiles(values, k)  # an infeasible draw stays +inf (never interpolated into)
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
        figures.append(Figure("axis", f"{data.metric} against {name} ({data.roles[name]})", axis_plot(data, name),
                              key=f"axis:{name}"))
    for name, role in data.roles.items():
        if role == "scientific":
            figures.append(Figure("isolation", f"Isolation plot: best {data.metric} for each {name}",
                                  isolation_plot(data, name, baseline, th=th), key=f"isolation:{name}"))
    colors: dict[int, str] = {}  # one colour per trial across every curve figure
    groups = group_colors(data)
    for cs in curve_sets(data, th):
        for label, number in cs.numbers.items():
            by_group = groups.of_trial(number) if cs.by_group else None  # the best of each group: its group's colour
            cs.colors[label] = by_group or colors.setdefault(number, trial_color(len(colors)))
        figures.append(Figure("curves", cs.title, cs, key=f"curves:{cs.metric}:{'groups' if cs.by_group else 'top'}"))
    figures.append(Figure("best_steps", "Step of the best checkpoint, against max_train_steps", best_steps(data),
                          key="best_steps"))
    se = sampled_enough(data, th)
    if se is not None:
        figures.append(Figure("sampled_enough", "Have we sampled enough? Best of k trials (exact quantiles of k draws)", se,
                              key="sampled_enough"))
    gn = grad_norms(data, th)
    if gn is not None:
        figures.append(Figure("grad_norms", f"Gradient norm of trial #{gn.trial}", gn, key="grad_norms"))
    return figures


# rendering -------------------------------------------------------------------
def _jitter(number: int, width: float) -> float:
    """A fixed offset in ``[-width/2, width/2]`` for a trial (the same on every render)."""
    return ((number * 0.6180339887) % 1.0 - 0.5) * width


def curve_range(curves: list[list[float | None]], max_step_fraction: float = 0.1) -> list[float] | None:
    """A y-range over the curves once past their first steps (the first value would flatten the rest)."""
    tails = []
    for values in curves:
        finite = [v for v in values if v is not None and math.isfinite(v)]
        if finite:
            tails.extend(finite[int(len(finite) * max_step_fraction):] or finite)
    if len(tails) < 2:
        return None
    lo, hi = min(tails), max(tails)
    if hi <= lo:
        return None
    pad = 0.05 * (hi - lo)
    return [lo - pad, hi + pad]


def _axis_spec(d: AxisPlotData) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Objective against a hyperparameter; infeasible trials on their own y-axis (``y2``), a strip under the plot."""
    strip = bool(d.infeasible_x)
    positions = {c: i for i, c in enumerate(d.categories)}

    def xs(values: list[Any], numbers: list[int]) -> list[Any]:
        if not d.categorical:
            return values
        return [positions.get(str(v), 0) + _jitter(n, 0.5) for v, n in zip(values, numbers)]

    many = len(d.x) > 300
    template = hover_template(d.metric, d.hover_params, d.numeric_params)
    marker = {"size": 5 if many else 7, "opacity": 0.45 if (d.categorical or many) else 0.8}
    if d.group_of:  # one trace (one colour) per scientific group: each group's optimum can sit elsewhere
        data: list[dict[str, Any]] = []
        for i, label in enumerate(d.group_order):
            at = [j for j, g in enumerate(d.group_of) if g == label]
            if at:
                data.append({
                    "type": "scatter", "x": _short(xs([d.x[j] for j in at], [d.numbers[j] for j in at])),
                    "y": _short([d.y[j] for j in at]), "mode": "markers", "name": label,
                    "customdata": [d.customdata[j] for j in at], "hovertemplate": template,
                    "marker": {**marker, "color": d.group_colors.get(label, trial_color(i))}, "legendgroup": label,
                })
    else:
        data = [{
            "type": "scatter", "x": _short(xs(d.x, d.numbers)), "y": _short(d.y), "mode": "markers", "name": "completed",
            "customdata": d.customdata, "hovertemplate": template, "marker": {**marker, "color": POINT_COLOR},
        }]
    if d.best_y is not None and d.best_x is not None:
        best = [c for n, c in zip(d.numbers, d.customdata) if n == d.best_number]
        data.append({"type": "scatter", "x": xs([d.best_x], [d.best_number or 0]), "y": [d.best_y], "mode": "markers",
                     "name": "best", "customdata": best, "hovertemplate": template,
                     "marker": {"color": BEST_COLOR, "symbol": "star", "size": 16, "line": {"width": 1, "color": "#333"}}})
    xaxis: dict[str, Any] = {"title": {"text": d.param}, "type": "log" if d.log_x else "linear"}
    if d.categorical:
        xaxis.update(tickvals=list(range(len(d.categories))), ticktext=d.categories, range=[-0.5, len(d.categories) - 0.5])
    yaxis: dict[str, Any] = {"title": {"text": d.metric}}
    layout: dict[str, Any] = {"xaxis": xaxis, "yaxis": yaxis}
    if strip:
        data.extend(_strip_traces(d, xs))
        yaxis["domain"] = [0.2, 1.0]
        xaxis["anchor"] = "y2"
        layout["yaxis2"] = {"domain": [0.0, 0.13], "anchor": "x", "range": [-1, 1], "showticklabels": False,
                            "showgrid": False, "zeroline": False, "fixedrange": True,
                            "title": {"text": "infeasible", "font": {"size": 11}}}
    if d.y_range is not None:
        yaxis["range"] = list(d.y_range)
        above = "above" if d.mode == "min" else "below"
        layout["annotations"] = [{"text": f"{d.outliers} trials {above} this range (double-click to see all)",
                                  "showarrow": False, "xref": "paper", "yref": "paper", "x": 1, "y": 1.0,
                                  "xanchor": "right", "yanchor": "bottom", "font": {"size": 11, "color": "#888"}}]
    return data, layout


def _strip_traces(d: AxisPlotData, xs: Any) -> list[dict[str, Any]]:
    """The infeasible strip (on ``y2``): one trace, red, or one per scientific group in the group's colour."""
    parts: list[tuple[str, str, list[int]]] = []
    if d.infeasible_group_of and d.group_colors:
        for label, color in d.group_colors.items():
            at = [j for j, g in enumerate(d.infeasible_group_of) if g == label]
            if at:
                parts.append((f"infeasible {label} ({len(at)})", color, at))
    else:
        parts.append((f"infeasible ({len(d.infeasible_x)})", INFEASIBLE_COLOR, list(range(len(d.infeasible_x)))))
    template = hover_template(d.metric, d.hover_params, d.numeric_params, first="infeasible: %{customdata[1]}")
    out = []
    for name, color, at in parts:
        numbers = [d.infeasible_numbers[j] for j in at]
        out.append({"type": "scatter", "x": _short(xs([d.infeasible_x[j] for j in at], numbers)), "yaxis": "y2",
                    "y": _short([_jitter(n, 1.6) for n in numbers], 3), "mode": "markers", "name": name,
                    "customdata": [d.infeasible_customdata[j] for j in at], "hovertemplate": template,
                    "marker": {"color": color, "symbol": "x", "size": 8, "opacity": 0.8}})
    return out


def _isolation_spec(d: IsolationPlotData) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    steps = d.best_steps or [None] * len(d.best_numbers)
    customdata = [[n, "-" if s is None else s] for n, s in zip(d.best_numbers, steps)]
    # a choice's values are categories: markers only (a line would say they are ordered); buckets of a
    # continuous value keep the line
    trace: dict[str, Any] = {
        "type": "scatter", "x": d.labels, "y": d.best_values, "mode": "markers" if d.categorical else "lines+markers",
        "name": f"best {d.metric}", "customdata": customdata, "marker": {"size": 12 if d.categorical else 10},
        "hovertemplate": f"{d.param} %{{x}}<br>" + hover_template(d.metric, [], set()),
    }
    if d.trial_sd is not None:
        trace["error_y"] = {"type": "constant", "value": d.trial_sd, "visible": True, "thickness": 1.5, "width": 6}
        trace["name"] = f"best {d.metric} \u00b1 trial sd ({d.trial_sd:.3g}, from {d.trial_sd_source})"
    data: list[dict[str, Any]] = [trace]
    if any(d.colors):  # one trace per group, in its colour, named in the legend
        data = []
        for i, label in enumerate(d.labels):
            one = {**trace, "x": [label], "y": [d.best_values[i]], "customdata": [customdata[i]], "mode": "markers",
                   "name": d.group_labels[i] or label, "legendgroup": d.group_labels[i] or label,
                   "marker": {**trace["marker"], "color": d.colors[i]}}
            if "error_y" in one:
                one["error_y"] = {**one["error_y"], "color": d.colors[i]}
            data.append(one)
    layout: dict[str, Any] = {"xaxis": {"title": {"text": d.param}, "type": "category", "categoryorder": "array",
                                        "categoryarray": d.labels},
                              "yaxis": {"title": {"text": f"best {d.metric}"}},
                              "showlegend": d.trial_sd is not None or len(data) > 1}
    if d.trial_sd is not None and len(data) > 1:
        layout["annotations"] = [{"text": f"error bars: \u00b1 trial sd ({d.trial_sd:.3g}, from {d.trial_sd_source})",
                                  "showarrow": False, "xref": "paper", "yref": "paper", "x": 0, "y": 1.0,
                                  "xanchor": "left", "yanchor": "bottom", "font": {"size": 11, "color": "#888"}}]
    if d.baseline is not None:
        layout["shapes"] = [{"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": d.baseline, "y1": d.baseline,
                             "line": {"dash": "dash", "color": "#888"}}]
        layout["annotations"] = layout.get("annotations", []) + [{"text": "baseline", "xref": "paper", "x": 1, "y": d.baseline, "showarrow": False,
                                  "xanchor": "right", "yanchor": "bottom"}]
    return data, layout


def _curves_spec(d: CurveSet) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    data = []
    for label, (steps, values) in d.curves.items():
        number = d.numbers.get(label)
        trace: dict[str, Any] = {"type": "scatter", "x": steps, "y": values, "mode": "lines", "name": label,
                                 "hovertemplate": f"%{{y:{HOVER_FORMAT}}}"}
        if label in d.colors:
            trace["line"] = {"color": d.colors[label]}
        if number is not None:
            trace["customdata"] = [number] * len(steps)
        data.append(trace)
    yaxis: dict[str, Any] = {"title": {"text": d.metric}}
    y_range = curve_range([values for _, values in d.curves.values()])
    if y_range is not None:
        yaxis["range"] = y_range
    return data, {"xaxis": {"title": {"text": "step"}, "range": [0, d.max_train_steps]}, "yaxis": yaxis,
                  "hovermode": "x unified"}


def _best_steps_spec(d: BestStepData) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    data = [{"type": "histogram", "x": d.steps, "nbinsx": 20, "name": "best step"}]
    return data, {
        "xaxis": {"title": {"text": "step of the best checkpoint"}, "range": [0, d.max_train_steps * 1.02]},
        "yaxis": {"title": {"text": "trials"}},
        "shapes": [{"type": "line", "x0": d.max_train_steps, "x1": d.max_train_steps, "xref": "x", "yref": "paper",
                    "y0": 0, "y1": 1, "line": {"dash": "dash", "color": "#888"}}],
        "annotations": [{"text": "max_train_steps", "x": d.max_train_steps, "xref": "x", "yref": "paper", "y": 1,
                         "showarrow": False, "xanchor": "right", "yanchor": "bottom"}],
    }


def _sampled_enough_spec(d: SampledEnoughData) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    data = [{"type": "box", "x": d.ks, "q1": d.q1, "median": d.median, "q3": d.q3, "lowerfence": d.lo,
             "upperfence": d.hi, "name": f"best {d.metric} of k trials"}]
    return data, {"xaxis": {"title": {"text": "k (trials)"}, "type": "log" if max(d.ks) > 30 else "linear"},
                  "yaxis": {"title": {"text": f"best {d.metric}"}}}


SPEC_KINDS = {"axis": _axis_spec, "isolation": _isolation_spec, "curves": _curves_spec,
              "best_steps": _best_steps_spec, "sampled_enough": _sampled_enough_spec}


@lru_cache(maxsize=1)
def _template() -> dict[str, Any]:
    import plotly.io as pio

    return pio.templates["plotly_white"].to_plotly_json()


def _layout(title: str, extra: dict[str, Any], height: int = 420) -> dict[str, Any]:
    return {"title": {"text": title, "font": {"size": 14}}, "height": height, "template": _template(),
            "margin": {"t": 60, "l": 60, "r": 20, "b": 50}, "uirevision": "keep",
            "legend": {"orientation": "h", "y": -0.22, "x": 0}, **extra}


def spec(figure: Figure) -> dict[str, Any] | None:
    """The figure as Plotly JSON data (``{"data", "layout"}``) built directly, for the kinds drawn from many
    points (no per-value validation by plotly.py: a 10,000-trial study renders in milliseconds); None for others."""
    build = SPEC_KINDS.get(figure.kind)
    if build is None:
        return None
    data, layout = build(figure.data)
    return {"data": data, "layout": _layout(figure.title, layout)}


def render(figure: Figure) -> Any:
    """A Plotly figure for a computed :class:`Figure`."""
    import plotly.graph_objects as go

    built = spec(figure)
    if built is not None:
        return go.Figure(built)
    d = figure.data
    fig = go.Figure()
    if figure.kind == "grad_norms":
        from plotly.subplots import make_subplots

        fig = make_subplots(rows=1, cols=2, subplot_titles=("norm against step", "histogram"))
        fig.add_trace(go.Scatter(x=d.steps, y=d.norms, mode="lines", name="total norm",
                                 customdata=[d.trial] * len(d.steps), hovertemplate=f"step %{{x}}: %{{y:{HOVER_FORMAT}}}"),
                      row=1, col=1)
        fig.add_trace(go.Histogram(x=d.norms, nbinsx=40, name="norms"), row=1, col=2)
        fig.add_hline(y=d.recommended_threshold, line_dash="dash", row=1, col=1,
                      annotation_text="90th percentile (clip here)")
    else:  # pragma: no cover - every kind above is rendered
        raise ValueError(f"unknown figure kind {figure.kind!r}")
    style(fig, figure.title)
    return fig


def style(fig: Any, title: str, height: int = 420) -> Any:
    """The layout every tunebook figure shares (zoom kept across live updates: ``uirevision``)."""
    fig.update_layout(title={"text": title, "font": {"size": 14}}, template="plotly_white", height=height,
                      margin={"t": 60, "l": 60, "r": 20, "b": 50}, uirevision="keep",
                      legend={"orientation": "h", "y": -0.22, "x": 0})
    return fig
