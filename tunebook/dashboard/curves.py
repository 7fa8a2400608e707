"""The dashboard's own line figures: a trial's curves, running trials' curves, and chosen trials overlaid.

Each is Plotly JSON, script-safe, built directly (no plotly.py objects); ``plots.js`` draws it. A trial
keeps one colour (by its number) in the running curves and in an overlay.
"""

from __future__ import annotations

import json
import math
from typing import Any

from tunebook.analysis.figures import HOVER_FORMAT, curve_range, trial_color
from tunebook.analysis.html import dom_id, num, script_safe

BEST_COLOR = "#ff7f0e"


def metric_order(names: list[str], objective: str) -> list[str]:
    """The objective first, then the other metrics by name."""
    return sorted(names, key=lambda m: (m != objective, m))


def _trace(s: dict[str, Any]) -> tuple[dict[str, Any], list[Any]]:
    y = [None if (v is None or not math.isfinite(v)) else v for _, v in s["points"]]
    trace = {"x": [st for st, _ in s["points"]], "y": y, "mode": "lines", "name": s["name"],
             "line": {"color": s.get("color")}, "hovertemplate": f"%{{y:{HOVER_FORMAT}}}"}
    if s.get("number") is not None:
        trace["customdata"] = [s["number"]] * len(y)
    if s.get("meta"):
        trace["meta"] = s["meta"]
    return trace, y


def best_marker(step: int, value: float, name: str, color: str = BEST_COLOR) -> dict[str, Any]:
    return {"x": [step], "y": [value], "mode": "markers", "name": name,
            "marker": {"symbol": "star", "size": 14, "color": color, "line": {"width": 1, "color": "#333"}},
            "hovertemplate": f"{name}: %{{y:{HOVER_FORMAT}}} @ step %{{x}}<extra></extra>"}


def lines_spec(title: str, series: list[dict[str, Any]], max_step: int | None = None,
               best: tuple[int, float] | None = None, height: int = 340, y_title: str | None = None,
               markers: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A line chart as Plotly data. ``series``: ``{"name", "points", "color", "number", "meta"}``; ``best``
    marks the objective's best step; ``markers``: more marker traces (each trial's best, in an overlay)."""
    data: list[dict[str, Any]] = []
    ys = []
    for s in series:
        trace, y = _trace(s)
        data.append(trace)
        ys.append(y)
    xaxis: dict[str, Any] = {"title": {"text": "step"}}
    if max_step:
        xaxis["range"] = [0, max_step * 1.02]  # room for a best-step star at the last step
    yaxis: dict[str, Any] = {"title": {"text": y_title or title}}
    y_range = curve_range(ys)
    shapes = []
    extra = list(markers or [])
    if best is not None:
        step, value = best
        extra.append(best_marker(step, value, f"best: {num(value)} @ step {step}"))
        shapes.append({"type": "line", "xref": "x", "yref": "paper", "x0": step, "x1": step, "y0": 0, "y1": 1,
                       "line": {"dash": "dot", "color": BEST_COLOR, "width": 1}})
    for m in extra:
        data.append(m)
        if y_range is not None and m["y"][0] is not None and math.isfinite(m["y"][0]):
            y_range = [min(y_range[0], m["y"][0]), max(y_range[1], m["y"][0])]
    if y_range is not None:
        yaxis["range"] = y_range
    layout = {"title": {"text": title, "font": {"size": 14}}, "height": height, "template": "plotly_white", "xaxis": xaxis,
              "yaxis": yaxis, "hovermode": "x unified", "uirevision": "keep", "shapes": shapes,
              "margin": {"t": 50, "l": 60, "r": 20, "b": 40}, "legend": {"orientation": "h", "y": -0.25, "x": 0}}
    return {"data": data, "layout": layout}


def lines_figure(*args: Any, **kwargs: Any) -> str:
    """:func:`lines_spec` as script-safe JSON."""
    return script_safe(json.dumps(lines_spec(*args, **kwargs)))


def step_axis(study: Any, numbers: list[int]) -> int | None:
    """The step axis's end for these trials: the study's ``max_train_steps``, or a length probe's longer budget."""
    probes = study.probe_steps()
    return max([probes[n] for n in numbers if n in probes] + [study.max_train_steps or 0]) or None


def running_figure(study: Any, running: list[Any]) -> str:
    """The objective's curve of each running trial, as it grows (``study.metrics`` reads the store)."""
    metric = study.objective[0]
    series = []
    for t in sorted(running, key=lambda t: t.number):
        points = study.metrics(t, [metric]).get(metric, [])
        last = f", step {points[-1][0]}" if points else ", no point yet"
        series.append({"name": f"#{t.number}{last}", "points": points, "color": trial_color(t.number), "number": t.number})
    steps = step_axis(study, [t.number for t in running])
    return lines_figure(f"{metric}: running trials ({len(series)})", series, steps, y_title=metric)


def overlay_figures(study: Any, trials: list[Any]) -> list[tuple[str, str, str]]:
    """Every metric of the chosen trials overlaid, objective first, each trial's best step starred:
    ``[(figure id, metric, JSON)]``."""
    curves = [study.metrics(t) for t in trials]
    objective = study.objective[0]
    names = metric_order(sorted(set().union(*(c.keys() for c in curves))), objective)
    steps = step_axis(study, [t.number for t in trials])
    out = []
    for metric in names:
        series = [{"name": f"#{t.number}", "points": c.get(metric, []), "color": trial_color(t.number), "number": t.number}
                  for t, c in zip(trials, curves)]
        markers = [best_marker(t.best_step, t.value, f"#{t.number} best", trial_color(t.number)) for t in trials
                   if metric == objective and t.best_step is not None and t.value is not None]
        out.append((dom_id("metric:" + metric), metric, lines_figure(metric, series, steps, markers=markers)))
    return out
