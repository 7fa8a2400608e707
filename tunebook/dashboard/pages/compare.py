"""``/compare``: two studies on shared axes (``?baseline=a&candidate=b`` or ``?studies=a,b``), or any
number of one study's trials overlaid (``?study=s&trials=10,5,6,0``: every metric, each trial's best
step starred, the hyperparameters side by side with the ones that differ marked)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse

from tunebook.analysis.figures import HOVER_FORMAT, trial_color
from tunebook.analysis.html import script_safe
from tunebook.dashboard.context import Context, ctx, trial_kinds, trial_url
from tunebook.dashboard.curves import lines_figure, overlay_figures
from tunebook.study import Study

router = APIRouter()
MAX_TRIALS = 24  # overlaid at once: more lines than colours tell apart


def _axis_overlay(metric: str, param: str, items: list[tuple[dict[str, Any], Any]]) -> str:
    data = []
    for c, d in items:
        data.append({"x": [str(v) for v in d.x] if d.categorical else d.x, "y": d.y, "mode": "markers",
                     "name": f"{c['role']}: {c['study'].name}", "marker": {"color": c["color"], "opacity": 0.55, "size": 6},
                     "customdata": [[n] for n in d.numbers], "meta": {"trialUrl": trial_url(c["study"])},
                     "hovertemplate": f"#%{{customdata[0]}} · {metric} %{{y:{HOVER_FORMAT}}}<br>{param} = %{{x}}<extra>%{{fullData.name}}</extra>"})
    log = any(d.log_x for _, d in items)
    layout = {"title": {"text": f"{metric} against {param}", "font": {"size": 14}}, "height": 360, "template": "plotly_white",
              "xaxis": {"title": {"text": param}, "type": "log" if log else ("category" if items[0][1].categorical else "linear")},
              "yaxis": {"title": {"text": metric}}, "uirevision": "keep", "legend": {"orientation": "h", "y": -0.3, "x": 0},
              "margin": {"t": 50, "l": 60, "r": 20, "b": 40}}
    ranges = [d.y_range for _, d in items if d.y_range is not None]
    if ranges and len(ranges) == len(items):
        layout["yaxis"]["range"] = [min(r[0] for r in ranges), max(r[1] for r in ranges)]
    return script_safe(json.dumps({"data": data, "layout": layout}))


def studies_overlay(columns: list[dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    """The two studies on shared axes: objective against each shared hyperparameter, the best trials' curves."""
    out = []
    metrics = {c["study"].objective[0] for c in columns}
    metric = columns[0]["study"].objective[0] if len(metrics) == 1 else "objective"
    by_param: dict[str, list[tuple[dict[str, Any], Any]]] = {}
    for c in columns:
        for f in c["report"].figures:
            if f.kind == "axis":
                by_param.setdefault(f.data.param, []).append((c, f.data))
    for i, (param, items) in enumerate(by_param.items()):
        if len(items) >= 2:
            out.append((f"figure-axis-{i}", f"{metric} against {param}", "axis", _axis_overlay(metric, param, items)))
    series = []
    for c in columns:
        s = c["study"]
        best = s.best_trial()
        if best is not None:
            points = s.metrics(best, [s.objective[0]]).get(s.objective[0], [])
            series.append({"name": f"{c['role']}: {s.name} #{best.number}", "points": points, "color": c["color"],
                           "number": best.number, "meta": {"trialUrl": trial_url(s)}})
    if series:
        steps = max(c["study"].max_train_steps or 0 for c in columns) or None
        out.append(("figure-best-curves", "best trials' curves", "curves",
                    lines_figure(f"{metric}: each study's best trial", series, steps, y_title=metric)))
    return out


def compare_studies(c: Context, request: Request, names: list[str]) -> Any:
    columns = []
    for i, name in enumerate(names):
        s = c.study(name)
        analysed, _, _ = c.analysed(s)
        columns.append({"study": s, "report": analysed.report, "headline": c.headline(s, analysed), "color": trial_color(i),
                        "role": ("baseline", "candidate")[i]})
    return c.page(request, "compare.html", {"mode": "studies", "columns": columns, "figures": studies_overlay(columns)})


def compare_trials(c: Context, request: Request, s: Study, trials: str) -> Any:
    try:
        numbers = list(dict.fromkeys(int(n) for n in trials.split(",") if n.strip()))
    except ValueError:
        raise HTTPException(404, f"trials are numbers: /compare?study={s.name}&trials=10,5,6,0") from None
    if not 1 <= len(numbers) <= MAX_TRIALS:
        raise HTTPException(404, f"overlay 1 to {MAX_TRIALS} trials of {s.name!r}: /compare?study={s.name}&trials=10,5,6,0")
    chosen = [c.trial(s, n) for n in numbers]
    roles = s.space.roles
    names = sorted(set().union(*(({**s.space.fixed, **t.params}).keys() for t in chosen)),
                   key=lambda k: (("scientific", "nuisance", "fixed").index(roles.get(k, "fixed")), k))
    rows = []
    for k in names:
        values = [({**s.space.fixed, **t.params}).get(k) for t in chosen]
        rows.append((k, roles.get(k, "-"), values, len({repr(v) for v in values}) > 1))
    return c.page(request, "compare.html", {
        "mode": "trials", "study": s, "trials": chosen, "rows": rows, "figures": overlay_figures(s, chosen),
        "colors": [trial_color(t.number) for t in chosen], "trial_url": trial_url(s), "kinds": trial_kinds(s)})


@router.get("/compare", response_class=HTMLResponse)
def compare(request: Request, studies: str = "", study: str = "", trials: str = "", baseline: str = "",
            candidate: str = "") -> Any:
    c = ctx(request)
    if baseline or candidate:
        if not (baseline and candidate):
            raise HTTPException(404, "compare two studies: /compare?baseline=a&candidate=b")
        return compare_studies(c, request, [baseline, candidate])
    if studies:
        names = [n for n in studies.split(",") if n]
        if len(names) != 2:
            raise HTTPException(404, "compare two studies: /compare?studies=a,b")
        return compare_studies(c, request, names)
    if study and trials:
        return compare_trials(c, request, c.study(study), trials)
    raise HTTPException(404, "compare two studies (/compare?baseline=a&candidate=b) or trials (/compare?study=s&trials=10,5,6,0)")
