"""Exploration views over every trial: parallel coordinates and hyperparameter importance.

:func:`parallel_spec` gives each completed trial's position on one axis per hyperparameter and the
objective, and its colour: its scientific group (the colours of every other figure of the study), or its
fifth of the objective when there is no group. Compact columns that the dashboard draws as one SVG path
per colour and hundred trials (``tunebook/dashboard/static/explore.js``), where Plotly drew one element
per trial (2-4 s for 6,000 trials in headless Chromium on two busy cores) and its WebGL parcoords
(:func:`parallel_webgl_spec`, interactive: drag on an axis to keep a range) took 35-54 s without a GPU.

:func:`importance` estimates how much each hyperparameter matters to the objective and names the method
it used:

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
from tunebook.analysis.figures import group_colors
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


SCALE = 1000  # each axis position is sent as a whole number 0..SCALE (compact JSON; a pixel in 1,000)


def _axis(data: StudyData, name: str, rows: list[TrialRow]) -> tuple[dict[str, Any], np.ndarray]:
    """One axis of the parallel coordinates: its label and tick marks, and each trial's position on it
    (0..1): a choice's index over its choices, a number over the range the trials span (log scale for
    a log hyperparameter, the ticks then name values)."""
    p = data.space[name]
    if isinstance(p, Choice):
        index = {repr(v): i for i, v in enumerate(p.values)}
        k = len(p.values)
        at = np.asarray([index.get(repr(t.params[name]), 0) for t in rows], dtype=float)
        unit = at / (k - 1) if k > 1 else np.full(len(rows), 0.5)
        return {"label": name, "ticks": [[j / (k - 1) if k > 1 else 0.5, str(v)] for j, v in enumerate(p.values)]}, unit
    log = isinstance(p, (Float, Int)) and p.scale == "log"
    values = np.asarray([float(t.params[name]) for t in rows], dtype=float)
    return _numeric_axis(f"{name} (log)" if log else name, np.log10(values) if log else values, log)


def _numeric_axis(label: str, values: np.ndarray, log: bool = False) -> tuple[dict[str, Any], np.ndarray]:
    lo, hi = float(values.min()), float(values.max())
    if hi <= lo:
        return {"label": label, "ticks": [[0.5, f"{10 ** lo if log else lo:.3g}"]]}, np.full(len(values), 0.5)
    ticks = [[f, f"{10 ** (lo + f * (hi - lo)) if log else lo + f * (hi - lo):.3g}"] for f in (0.0, 0.25, 0.5, 0.75, 1.0)]
    return {"label": label, "ticks": ticks}, (values - lo) / (hi - lo)


def parallel_spec(data: StudyData) -> dict[str, Any] | None:
    """Parallel coordinates over the completed trials, as compact columns for the dashboard to draw (one
    SVG path per colour, no per-trial element): ``axes`` (label, ticks at positions 0..1), ``columns``
    (per axis, each trial's position as a whole number 0..:data:`SCALE`, 0 at the bottom), ``group`` (each
    trial's index into ``groups``: label, colour, count). Coloured by scientific group (the colours of every
    other figure of the study, ``by="scientific"``), or by fifth of the objective without groups
    (``by="objective"``, best first). None with fewer than two completed trials."""
    rows, names = _usable(data)
    if len(rows) < 2:
        return None
    built = [_axis(data, n, rows) for n in names]
    built.append(_numeric_axis(data.metric, np.asarray([t.value for t in rows], dtype=float)))
    colors = group_colors(data)
    if colors.colors:
        labels = list(colors.colors)
        index = {label: i for i, label in enumerate(labels)}
        group = np.asarray([index.get(colors.label_of.get(t.number, ""), -1) for t in rows])
        keep = group >= 0  # a trial outside every group (none in practice) is left out rather than misdrawn
        groups = [{"label": label, "color": colors.colors[label]} for label in labels]
        by = "scientific"
    else:  # no groups: by fifth of the objective, best fifth darkest
        order = np.argsort(data.sign() * np.asarray([t.value for t in rows], dtype=float), kind="stable")
        fifth = max(1, math.ceil(len(rows) / 5))
        group = np.empty(len(rows), dtype=int)
        group[order] = np.arange(len(rows)) // fifth
        keep = np.ones(len(rows), dtype=bool)
        shades = ("#08306b", "#2171b5", "#6baed6", "#bdd7e7", "#d9d9d9")
        groups = [{"label": f"{'best' if k == 0 else f'fifth {k + 1}'} by {data.metric}", "color": shades[k]}
                  for k in range(int(group.max()) + 1)]
        by = "objective"
    counts = np.bincount(group[keep], minlength=len(groups))
    for g, count in zip(groups, counts):
        g["count"] = int(count)
    return {"title": f"Parallel coordinates: {int(keep.sum())} completed trials", "by": by, "scale": SCALE,
            "axes": [axis for axis, _ in built], "groups": groups, "group": group[keep].tolist(),
            "columns": [np.rint(unit[keep] * SCALE).astype(int).tolist() for _, unit in built]}
