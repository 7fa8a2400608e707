"""``/study/{name}/explore``: parallel coordinates over the completed trials (coloured by scientific
value, the colours of the study's other figures) and hyperparameter importance with its method named
(``?method=main-effect``, the default; ``ped-anova`` or ``fanova`` through Optuna, slower).

The default view loads no Plotly: the parallel coordinates come as compact columns
(:func:`tunebook.analysis.explore.parallel_spec`) that ``/static/explore.js`` draws as one SVG path per
colour and hundred trials, and the importance is an HTML bar table. ``?view=interactive`` is Plotly's
WebGL parcoords (drag on an axis to keep a range; slow without a GPU). Both are computed once per state
of the study (the analysis cache)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse

from tunebook.analysis.explore import METHODS, importance, parallel_spec, parallel_webgl_spec
from tunebook.analysis.html import script_safe
from tunebook.dashboard.context import ctx, trial_url

router = APIRouter()


def _bars(values: dict[str, float]) -> list[tuple[str, float, float]]:
    """``(name, importance, bar width in %)``: a share (at most 1) on an absolute 0..1 scale, so that noise
    draws short bars; a larger estimate (PED-ANOVA's divergence) on its largest."""
    top = max([1.0, *values.values()])
    return [(name, value, round(100 * max(0.0, value) / top, 1)) for name, value in values.items()]


@router.get("/study/{name}/explore", response_class=HTMLResponse)
def explore(request: Request, name: str, method: str = "main-effect", view: str = "lines") -> Any:
    c = ctx(request)
    study = c.study(name)
    if method not in METHODS:
        raise HTTPException(404, f"no importance method {method!r}: use one of {', '.join(METHODS)}")
    if view not in ("lines", "interactive"):
        raise HTTPException(404, f"no view {view!r}: use lines or interactive")
    analysed, _, _ = c.analysed(study)
    result = analysed.part(f"importance/{method}", lambda r: importance(r.data, method))
    lines = analysed.part("parallel/lines", lambda r: parallel_spec(r.data))
    figures, parallel = [], None
    if view == "interactive":
        webgl = analysed.part("parallel/interactive", lambda r: parallel_webgl_spec(r.data))
        if webgl is not None:
            spec = {k: v for k, v in webgl.items() if k != "groups"}
            figures.append(("figure-parallel", "parallel", script_safe(json.dumps(spec))))
    elif lines is not None:
        parallel = analysed.part("parallel/lines.json", lambda r: script_safe(json.dumps(lines, separators=(",", ":"))))
    groups = lines["groups"] if lines is not None and lines["by"] == "scientific" else []
    return c.page(request, "explore.html", {
        "study": study, "figures": figures, "parallel": parallel, "drawable": lines is not None, "groups": groups,
        "importance": result, "bars": _bars(result.values), "method": method, "methods": METHODS, "view": view,
        "completed": len(analysed.report.data.completed), "trial_url": trial_url(study)})
