"""Exploration views over every trial: parallel coordinates and hyperparameter importance.

:func:`parallel_spec` draws each completed trial as a line across one axis per hyperparameter and the
objective, coloured by its scientific group (the colours of every other figure of the study), or by fifth
of the objective when there is no group: plain SVG lines, drawn in 2-4 s for 6,000 trials in headless
Chromium on two busy cores, where Plotly's WebGL parcoords (:func:`parallel_webgl_spec`, interactive:
drag on an axis to keep a range) took 35-54 s without a GPU. :func:`importance` estimates how much each hyperparameter matters to
the objective and names the method it used:

- by default the **main-effect share of the objective's ranks** (tunebook's own, no dependency, a few
  milliseconds for 10,000 trials): the objective's ranks are binned by each hyperparameter (quantile bins
  of its scaled values, or its choices) and the between-bin variance is taken as a share of the total
  (η²), adjusted for the number of bins as R² is (pure noise gives about 0). Ranks, so that a few diverged
  trials do not decide it;
- on request, Optuna's **PED-ANOVA** (``method="ped-anova"``: how far each hyperparameter's distribution
  among the best 10% of trials is from all trials') or **fANOVA** (``method="fanova"``, needs
  scikit-learn: the variance each explains alone in a random forest's fit). Both are slow in a page:
  fANOVA took 54 s and PED-ANOVA 16 s for 400 trials on the 2-core test machine.

Each estimates first-order effects only from the trials run so far: a small study or a narrow range makes
any of them unreliable, which the page says.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tunebook.analysis.data import StudyData, TrialRow
from tunebook.analysis.figures import HOVER_FORMAT, group_colors
from tunebook.space import Choice, Float, Int

MIN_TRIALS = 8  # fewer completed trials: no importance estimate


@dataclass
class Importance:
    method: str  # the method's name, shown with the figure
    detail: str  # what it measures, one line
    values: dict[str, float] = field(default_factory=dict)  # hyperparameter -> importance, largest first
    trials: int = 0  # the completed trials it used
    note: str = ""  # why there is no estimate, or what was left out


def _usable(data: StudyData) -> tuple[list[TrialRow], list[str]]:
    """Completed trials with a finite value, and the varying hyperparameters every one of them has."""
    rows = [t for t in data.completed if t.value is not None and math.isfinite(t.value)]
    names = []
    for name in data.space:
        if not rows or any(name not in t.params for t in rows):
            continue
        if len({repr(t.params[name]) for t in rows[:2000]}) > 1:
            names.append(name)
    return rows, names


def _column(data: StudyData, name: str, rows: list[TrialRow]) -> tuple[np.ndarray, bool]:
    """A hyperparameter's values as numbers: its scaled position (0..1) or its choice's index; and whether categorical."""
    p = data.space[name]
    if isinstance(p, Choice):
        index = {repr(v): i for i, v in enumerate(p.values)}
        return np.asarray([index.get(repr(t.params[name]), -1) for t in rows], dtype=float), True
    return np.asarray(data.units(name, rows), dtype=float), False


def _ranks(values: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values), dtype=float)
    ranks[order] = np.arange(len(values), dtype=float)
    return ranks


def main_effect_share(x: np.ndarray, y: np.ndarray, categorical: bool, bins: int | None = None) -> float:
    """Adjusted η² of ``y`` binned by ``x`` (quantile bins, or one bin per category), clipped at 0."""
    n = len(y)
    if categorical:
        labels = x.astype(int)
    else:
        k = bins or max(2, min(10, int(math.sqrt(n / 5))))
        edges = np.unique(np.quantile(x, np.linspace(0, 1, k + 1)[1:-1]))
        labels = np.searchsorted(edges, x, side="right")
    groups = np.unique(labels)
    k = len(groups)
    if k < 2 or n <= k:
        return 0.0
    total = float(((y - y.mean()) ** 2).sum())
    if total == 0:
        return 0.0
    between = sum(float((labels == g).sum()) * float(y[labels == g].mean() - y.mean()) ** 2 for g in groups)
    eta2 = between / total
    return max(0.0, 1.0 - (1.0 - eta2) * (n - 1) / (n - k))


def _own(data: StudyData, rows: list[TrialRow], names: list[str]) -> dict[str, float]:
    y = _ranks(np.asarray([data.sign() * t.value for t in rows], dtype=float))  # type: ignore[operator]
    out = {}
    for name in names:
        x, categorical = _column(data, name, rows)
        out[name] = main_effect_share(x, y, categorical)
    return out


def _distributions(data: StudyData, names: list[str]) -> dict[str, Any]:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    out: dict[str, Any] = {}
    for name in names:
        p = data.space[name]
        if isinstance(p, Choice):
            out[name] = CategoricalDistribution([v if isinstance(v, (str, int, float, bool)) or v is None else repr(v)
                                                 for v in p.values])
        elif isinstance(p, Int):
            out[name] = IntDistribution(int(p.low), int(p.high), log=p.scale == "log")
        elif isinstance(p, Float):
            out[name] = FloatDistribution(float(p.low), float(p.high), log=p.scale == "log")
    return out


def _optuna(data: StudyData, rows: list[TrialRow], names: list[str], evaluator: Any) -> dict[str, float]:
    import optuna

    distributions = _distributions(data, names)
    names = [n for n in names if n in distributions]
    study = optuna.create_study(direction="minimize" if data.mode == "min" else "maximize")
    study.add_trials([optuna.trial.create_trial(params={n: t.params[n] for n in names},
                                                distributions={n: distributions[n] for n in names}, value=float(t.value))  # type: ignore[arg-type]
                      for t in rows])
    found = optuna.importance.get_param_importances(study, evaluator=evaluator, params=names, normalize=False)
    return {k: float(v) for k, v in found.items()}


OWN = ("main-effect share of the objective's ranks (tunebook)",
       "adjusted η²: the share of the objective's rank variance explained by binning on each hyperparameter alone")
METHODS = ("main-effect", "ped-anova", "fanova")


def _method(name: str) -> tuple[str, str, Any]:
    """``(name shown, what it measures, Optuna evaluator or None)`` for one of :data:`METHODS`."""
    if name not in METHODS:
        raise ValueError(f"unknown importance method {name!r}; use one of {', '.join(METHODS)}")
    if name == "main-effect":
        return (*OWN, None)
    import optuna  # the dev/bo extra: ImportError when absent, which the caller reports

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if name == "ped-anova":
        return ("PED-ANOVA (Optuna)", "how far each hyperparameter's distribution among the best 10% of trials is from all trials'",
                optuna.importance.PedAnovaImportanceEvaluator())
    return ("fANOVA (Optuna)", "the share of the objective's variance each hyperparameter explains alone in a random-forest fit",
            optuna.importance.FanovaImportanceEvaluator(seed=0))


def importance(data: StudyData, method: str = "main-effect") -> Importance:
    """Each varying hyperparameter's importance to the objective by ``method`` (module docstring); a method
    whose package is missing gives an empty result that says so."""
    rows, names = _usable(data)
    try:
        shown, detail, evaluator = _method(method)
    except ImportError as exc:
        return Importance(method, "", trials=len(rows), note=f"{method} needs {exc.name or 'optuna'} (pip install optuna scikit-learn)")
    result = Importance(shown, detail, trials=len(rows))
    if len(rows) < MIN_TRIALS or not names:
        result.note = (f"needs {MIN_TRIALS} completed trials with a value and a hyperparameter that varies "
                       f"({len(rows)} completed so far)")
        return result
    if evaluator is None:
        values = _own(data, rows, names)
    else:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Optuna's ExperimentalWarning and friends: its own business
            try:
                values = _optuna(data, rows, names, evaluator)
            except ImportError as exc:  # fANOVA's scikit-learn
                result.note = f"{method} needs {exc.name or 'scikit-learn'} (pip install scikit-learn)"
                return result
    result.values = dict(sorted(values.items(), key=lambda kv: -kv[1]))
    absent = [n for n in data.space if n not in names and any(n in t.params for t in rows)]
    if absent:
        result.note = f"left out (not in every completed trial, or one value only): {', '.join(absent)}"
    return result


def importance_spec(result: Importance) -> dict[str, Any]:
    """A horizontal bar per hyperparameter, largest on top, the method in the title."""
    names = list(result.values)[::-1]
    data = [{"type": "bar", "orientation": "h", "x": [result.values[n] for n in names], "y": names, "name": result.method,
             "hovertemplate": f"%{{y}}: %{{x:{HOVER_FORMAT}}}<extra></extra>", "marker": {"color": "#1f77b4"}}]
    return {"data": data, "layout": {
        "title": {"text": f"Hyperparameter importance: {result.method}, {result.trials} trials", "font": {"size": 14}},
        "height": max(260, 90 + 32 * len(names)), "template": "plotly_white", "margin": {"t": 50, "l": 140, "r": 20, "b": 50},
        "xaxis": {"title": {"text": "importance"}, "rangemode": "tozero"}, "yaxis": {"automargin": True}}}


def _dimension(data: StudyData, name: str, rows: list[TrialRow]) -> dict[str, Any]:
    p = data.space[name]
    if isinstance(p, Choice):
        text = [str(v) for v in p.values]
        index = {repr(v): i for i, v in enumerate(p.values)}
        return {"label": name, "values": [index.get(repr(t.params[name]), 0) for t in rows],
                "tickvals": list(range(len(text))), "ticktext": text, "range": [-0.2, len(text) - 0.8]}
    values = [float(t.params[name]) for t in rows]
    if isinstance(p, (Float, Int)) and p.scale == "log":
        return {"label": f"log10 {name}", "values": [round(math.log10(v), 5) for v in values]}
    return {"label": name, "values": [float(f"{v:.6g}") for v in values]}


def parallel_webgl_spec(data: StudyData) -> dict[str, Any] | None:
    """Plotly's interactive parallel coordinates (drag on an axis to keep a range) over the completed trials
    (None with fewer than two). WebGL: fast with a GPU, slow in software (a 6,000-trial study took 35 s in
    headless Chromium on two busy cores)."""
    rows, names = _usable(data)
    if len(rows) < 2:
        return None
    dims = [_dimension(data, n, rows) for n in names]
    dims.append({"label": data.metric, "values": [float(f"{t.value:.6g}") for t in rows]})  # type: ignore[str-format]
    colors = group_colors(data)
    if colors.colors:
        order = list(colors.colors)
        index = {label: i for i, label in enumerate(order)}
        color_values = [index.get(colors.label_of.get(t.number, ""), 0) for t in rows]
        n = len(order)
        scale = [[i / max(1, n - 1) if n > 1 else 0, colors.colors[label]] for i, label in enumerate(order)]
        line: dict[str, Any] = {"color": color_values, "colorscale": scale, "cmin": 0, "cmax": max(1, n - 1), "showscale": False}
        legend = [{"label": label, "color": colors.colors[label]} for label in order]
    else:
        line = {"color": dims[-1]["values"], "colorscale": "Viridis", "reversescale": data.mode == "min", "showscale": True,
                "colorbar": {"title": {"text": data.metric}}}
        legend = []
    return {"data": [{"type": "parcoords", "dimensions": dims, "line": line, "labelangle": -20}],
            "layout": {"title": {"text": f"Parallel coordinates: {len(rows)} completed trials", "font": {"size": 14}},
                       "height": 480, "template": "plotly_white", "margin": {"t": 90, "l": 70, "r": 70, "b": 40}},
            "groups": legend}


def _unit(values: list[float]) -> list[float]:
    lo, hi = min(values), max(values)
    return [0.5] * len(values) if hi <= lo else [round((v - lo) / (hi - lo), 4) for v in values]


def _axis_labels(i: int, dim: dict[str, Any]) -> list[dict[str, Any]]:
    """Tick labels beside axis ``i``: a choice's values, or five values of a numeric axis."""
    if "ticktext" in dim:
        k = len(dim["ticktext"])
        marks = [(j / (k - 1) if k > 1 else 0.5, text) for j, text in enumerate(dim["ticktext"])]
    else:
        lo, hi = min(dim["values"]), max(dim["values"])
        marks = [(f, f"{lo + f * (hi - lo):.3g}") for f in (0.0, 0.25, 0.5, 0.75, 1.0)]
    return [{"x": i, "y": y, "text": text, "xanchor": "right", "xshift": -4, "showarrow": False, "font": {"size": 10}}
            for y, text in marks]


def parallel_spec(data: StudyData) -> dict[str, Any] | None:
    """Parallel coordinates over the completed trials as plain lines (SVG, no WebGL): each axis scaled to its
    range, one trace per scientific group in the group's colour (named in the legend), or per fifth of the
    objective without groups. None with fewer than two completed trials."""
    rows, names = _usable(data)
    if len(rows) < 2:
        return None
    dims = [_dimension(data, n, rows) for n in names]
    dims.append({"label": data.metric, "values": [float(f"{t.value:.6g}") for t in rows]})  # type: ignore[str-format]
    columns = [_unit([float(v) for v in d["values"]]) for d in dims]
    colors = group_colors(data)
    if colors.colors:
        parts = [(label, color, [i for i, t in enumerate(rows) if colors.label_of.get(t.number) == label])
                 for label, color in colors.colors.items()]
        legend = [{"label": label, "color": color} for label, color in colors.colors.items()]
    else:  # no groups: by fifth of the objective, best fifth darkest
        order = sorted(range(len(rows)), key=lambda i: data.sign() * rows[i].value)  # type: ignore[operator]
        shades = ("#08306b", "#2171b5", "#6baed6", "#bdd7e7", "#d9d9d9")
        fifth = max(1, math.ceil(len(rows) / 5))
        parts = [(f"{'best' if k == 0 else f'fifth {k + 1}'} by {data.metric}", shades[k], order[k * fifth:(k + 1) * fifth])
                 for k in range(5) if order[k * fifth:(k + 1) * fifth]]
        legend = []
    traces = []
    width = len(dims)
    for name, color, members in parts:
        x: list[Any] = []
        y: list[Any] = []
        for i in members:
            x += [*range(width), None]
            y += [*(column[i] for column in columns), None]
        traces.append({"type": "scatter", "mode": "lines", "x": x, "y": y, "name": f"{name} ({len(members)})",
                       "line": {"color": color, "width": 1}, "opacity": 0.5 if len(rows) > 200 else 0.7,
                       "hoverinfo": "skip", "legendgroup": name})
    shapes = [{"type": "line", "x0": i, "x1": i, "y0": 0, "y1": 1, "xref": "x", "yref": "y",
               "line": {"color": "#888", "width": 1}} for i in range(width)]
    annotations = [a for i, d in enumerate(dims) for a in _axis_labels(i, d)]
    layout = {"title": {"text": f"Parallel coordinates: {len(rows)} completed trials", "font": {"size": 14}},
              "height": 480, "template": "plotly_white", "margin": {"t": 60, "l": 60, "r": 30, "b": 60},
              "xaxis": {"tickvals": list(range(width)), "ticktext": [d["label"] for d in dims], "range": [-0.5, width - 0.7],
                        "showgrid": False, "zeroline": False},
              "yaxis": {"range": [-0.05, 1.05], "showticklabels": False, "showgrid": False, "zeroline": False},
              "shapes": shapes, "annotations": annotations, "showlegend": True, "hovermode": False,
              "legend": {"orientation": "h", "y": -0.15, "x": 0}}
    return {"data": traces, "layout": layout, "groups": legend}
