"""``/study/{name}/explore``: parallel coordinates over the completed trials (coloured by scientific
value, the colours of the study's other figures) and hyperparameter importance with its method named
(``?method=main-effect``, the default; ``ped-anova`` or ``fanova`` through Optuna, slower)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse

from tunebook.analysis.explore import METHODS, importance, importance_spec, parallel_spec, parallel_webgl_spec
from tunebook.analysis.html import script_safe
from tunebook.dashboard.context import ctx, trial_url

router = APIRouter()


@router.get("/study/{name}/explore", response_class=HTMLResponse)
def explore(request: Request, name: str, method: str = "main-effect", view: str = "lines") -> Any:
    c = ctx(request)
    study = c.study(name)
    if method not in METHODS:
        raise HTTPException(404, f"no importance method {method!r}: use one of {', '.join(METHODS)}")
    analysed, key, _ = c.analysed(study)
    data = analysed.report.data
    if view not in ("lines", "interactive"):
        raise HTTPException(404, f"no view {view!r}: use lines or interactive")
    build = parallel_webgl_spec if view == "interactive" else parallel_spec
    parallel = c.cache.part(study, key, f"parallel/{view}", lambda r: build(r.data))
    result = c.cache.part(study, key, f"importance/{method}", lambda r: importance(r.data, method))
    figures = []
    if parallel is not None:
        spec = {k: v for k, v in parallel.items() if k != "groups"}
        figures.append(("figure-parallel", "parallel", script_safe(json.dumps(spec))))
    if result.values:
        figures.append(("figure-importance", "importance", script_safe(json.dumps(importance_spec(result)))))
    return c.page(request, "explore.html", {
        "study": study, "figures": figures, "groups": parallel["groups"] if parallel else [], "importance": result,
        "method": method, "methods": METHODS, "view": view, "completed": len(data.completed), "trial_url": trial_url(study)})
