"""A study: ``/study/{name}`` (the headline, findings linked to their trial and figure, running trials'
curves, the figures, the trial table), ``/study/{name}/table`` (the table alone, paged, sorted and
filtered in place), ``/study/{name}/trials.csv`` and ``/api/study/{name}/state``, which the page polls.

The state says whether the analysis moved (``signature``: counts by state and the latest finish; ``analysed``:
the signature of the analysis a fetch of the page would show, behind ``signature`` while a large study's new
analysis is computed in the background), carries
the running trials' curves (a figure redrawn in place on every poll), the checkpoint disk use
(:mod:`tunebook.dashboard.disk`, its text swapped on every poll) and ``done`` once nothing is running
or pending and the analysis is current: the page then stops polling. When ``analysed`` moves, the page fetches itself and updates
every figure by its id (a figure that appeared is added in place, one that went is removed).

The study page's template is meant to grow: a new panel is a ``{% block %}`` override or a section with
``data-live="<name>"`` (swapped on each refresh).
"""

from __future__ import annotations

import math
import time
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from tunebook.analysis.data import probe_of, replicate_of
from tunebook.analysis.html import trials_csv
from tunebook.dashboard import table
from tunebook.dashboard.context import Context, analysis_signature, ctx, finished, study_done, trial_kinds, trial_url
from tunebook.dashboard.curves import running_figure
from tunebook.errors import TunebookError
from tunebook.space import Choice
from tunebook.study import Study

router = APIRouter()


def table_context(c: Context, request: Request, study: Study) -> dict[str, Any]:
    """The table's template context; a filter the table cannot apply is named in ``error`` above an unfiltered table."""
    qp = request.query_params
    error = None
    try:
        q = table.parse(qp, study.space.params, study.objective[1])
    except table.FilterError as exc:
        error, q = str(exc), table.parse({}, study.space.params, study.objective[1])
    rows, total = table.page(c.store, study.id, q)
    pages = max(1, math.ceil(total / q.limit))
    page = q.offset // q.limit + 1
    if page > pages and error is None:
        error = f"page: there is no page {page}; the table has {pages}"
        q.offset, page = (pages - 1) * q.limit, pages
        rows, total = table.page(c.store, study.id, q)
    best = study.best_trial()
    roles = study.space.roles
    groups = [(role, [n for n in study.space.params if roles.get(n) == role]) for role in ("scientific", "nuisance")]
    keep = {k: v for k, v in qp.items() if k not in ("page", "order", "desc", "token", "top")}
    return {"study": study, "trials": rows, "total": total, "page": page, "pages": pages, "order": q.order,
            "desc": int(q.descending), "state": qp.get("state") or "", "groups": [(r, n) for r, n in groups if n],
            "best_number": best.number if best else None, "keep": keep, "error": error, "top": qp.get("top") or "",
            "filters": {name: (qp.get("p." + name) or "") for name in study.space.params},
            "choices": {name: [str(v) for v in p.values] for name, p in study.space.params.items() if isinstance(p, Choice)},
            "columns": table.COLUMNS, "metric": study.objective[0], "mode": study.objective[1],
            "kinds": trial_kinds(study)}


def running_json(c: Context, study: Study, signature: dict[str, Any]) -> str | None:
    """The running trials' curves (None while no trial runs)."""
    if not signature["counts"].get("running"):
        return None
    return running_figure(study, c.store.get_trials(study.id, states=["running"]))


@router.get("/study/{name}", response_class=HTMLResponse)
def study_page(request: Request, name: str) -> Any:
    c = ctx(request)
    study = c.study(name)
    tab = table_context(c, request, study)
    analysed, key, signature = c.analysed(study)
    others = [r.name for r in c.store.list_studies() if r.name != study.name]
    return c.page(request, "study.html", {
        **tab, "report": analysed.report, "figures": analysed.figures, "headline": c.headline(study, analysed),
        "findings": c.findings(study, analysed), "signature": key,
        "done": study_done(signature) and key == analysis_signature(signature),  # else: poll until the analysis is current
        "running": running_json(c, study, signature), "counts": signature["counts"], "trial_url": trial_url(study),
        "others": others, "updated": time.strftime("%H:%M:%S"), "rounds": rounds(study, analysed.report),
        "disk": c.disk.line(study.name), "disk_folder": c.disk.folder(study.name),
    }, status_code=400 if tab["error"] else 200)


def rounds(study: Study, report: Any) -> dict[str, Any] | None:
    """The proposed next study and the chain of rounds (``tunebook next``), from the cached analysis."""
    from tunebook.procedures.next import rounds_panel

    try:
        return rounds_panel(study, report.findings, report.answer)
    except TunebookError:  # e.g. a source study deleted from the store: the page shows the rest
        return None


@router.get("/api/study/{name}/state")
def study_state(request: Request, name: str) -> Any:
    c = ctx(request)
    study = c.study(name)
    signature = c.store.study_signature(study.id)
    key = analysis_signature(signature)
    shown = c.cache.shown(study, key, finished(signature))  # a large study's new analysis may still be computing
    return JSONResponse({**signature, "signature": key, "analysed": shown, "done": study_done(signature) and shown == key,
                         "running": running_json(c, study, signature), "disk": {study.name: c.disk.line(study.name)}})


@router.get("/study/{name}/table", response_class=HTMLResponse)
def study_table(request: Request, name: str) -> Any:
    c = ctx(request)
    tab = table_context(c, request, c.study(name))
    return c.page(request, "table.html", tab, status_code=400 if tab["error"] else 200)


@router.get("/study/{name}/trials.csv")
def study_csv(request: Request, name: str) -> Any:
    c = ctx(request)
    study = c.study(name)
    try:
        q = table.parse(request.query_params, study.space.params, study.objective[1])
    except table.FilterError as exc:
        return Response(f"400: {exc}\n", status_code=400, media_type="text/plain")
    q.offset, q.limit = 0, 2**31 - 1
    rows, _ = table.page(c.store, study.id, q)
    return Response(trials_csv(rows, list(study.space.params), study.objective[0], replicate_of(study) or None, probe_of(study)),
                    media_type="text/csv",
                    headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(study.name, safe='')}-trials.csv"})
