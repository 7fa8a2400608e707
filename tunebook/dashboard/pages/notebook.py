"""``/``: the experiment notebook (experiments and their studies with the tracking columns; tick two
studies to compare them), and ``/api/notebook/state``, which the page polls to refresh its counts and
each study's checkpoint disk use."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse

from tunebook.analysis.notebook import notebook_rows
from tunebook.dashboard.context import ctx

router = APIRouter()


def _state(rows: list[dict[str, Any]]) -> dict[str, Any]:
    text = json.dumps([[r["study"], r["completed"], r["infeasible"], r["failed"], r["total"], r["running"], r.get("best_value")]
                       for r in rows], default=str)
    return {"signature": hashlib.sha1(text.encode()).hexdigest(), "running": sum(r["running"] or 0 for r in rows)}


@router.get("/", response_class=HTMLResponse)
def index(request: Request) -> Any:
    c = ctx(request)
    rows = notebook_rows(c.store)
    experiments: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        experiments.setdefault(row["experiment"], []).append(row)
    return c.page(request, "index.html", {"experiments": experiments, "rows": rows, "state": _state(rows),
                                          "disk": c.disk.lines([r["study"] for r in rows])})


@router.get("/api/notebook/state")
def notebook_state(request: Request) -> Any:
    # the notebook never stops polling: a study may start at any time
    c = ctx(request)
    rows = notebook_rows(c.store)
    return JSONResponse({**_state(rows), "disk": c.disk.lines([r["study"] for r in rows]), "done": False})
