"""The dashboard: a read-only FastAPI app over a tunebook store.

Pages (server-side templates, Jinja2 autoescaping every user string):

- ``/``: the experiment notebook: experiments and studies with the tracking columns;
- ``/study/{name}``: findings first, then the axis, isolation and curve figures,
  and the trial table (sorted, filtered and paginated in SQL);
- ``/study/{name}/trial/{number}``: parameters by role, curves, checkpoints,
  the reproduction command, the infeasible reason or the traceback;
- ``/compare?studies=a,b`` and ``/compare?study=s&trials=3,7``.

Only GET (and HEAD) routes exist, so nothing can change the store. Plotly's
JavaScript is served by the app (``/static/plotly.min.js``), never from a CDN.
A study page polls ``/api/study/{name}/state`` and swaps in the new content
when the study moves. With a ``token``, every request must carry it
(``?token=``, a ``Authorization: Bearer`` header, or the cookie set on the
first visit with ``?token=``).
"""

from __future__ import annotations

import hmac
import json
import math
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from tunebook.analysis import analyze
from tunebook.analysis.notebook import ago, fmt, notebook_rows
from tunebook.analysis.figures import render
from tunebook.storage import open_storage, redact
from tunebook.storage.base import Storage
from tunebook.study import Study

HERE = Path(__file__).parent
PAGE_SIZE = 50
TOKEN_COOKIE = "tunebook_token"


@lru_cache(maxsize=1)
def _plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def script_safe(text: str) -> str:
    """JSON text that cannot close or open markup inside a ``<script>`` element."""
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def figure_json(figure: Any) -> str:
    """A computed figure, rendered by Plotly, as script-safe JSON."""
    import plotly.io as pio

    return script_safe(pio.to_json(render(figure), validate=False))


def lines_json(title: str, series: list[tuple[str, list[tuple[int, float]]]], max_step: int | None = None) -> str:
    """A line chart of ``(name, [(step, value), ...])`` series, as script-safe Plotly JSON."""
    data = [{"x": [s for s, _ in points], "y": [None if v != v else v for _, v in points], "mode": "lines", "name": name}
            for name, points in series]
    xaxis: dict[str, Any] = {"title": {"text": "step"}}
    if max_step:
        xaxis["range"] = [0, max_step]
    layout = {"title": {"text": title}, "height": 320, "template": "plotly_white", "xaxis": xaxis}
    return script_safe(json.dumps({"data": data, "layout": layout}))


class _AnalysisCache:
    """Each study's report and rendered figures, recomputed only when the study has moved."""

    def __init__(self) -> None:
        self._cache: dict[int, tuple[str, Any, list[tuple[str, str, str]]]] = {}

    def get(self, study: Study, signature: dict[str, Any]) -> tuple[Any, list[tuple[str, str, str]]]:
        """``(report, [(title, kind, figure JSON), ...])``."""
        key = json.dumps(signature, sort_keys=True, default=str)
        hit = self._cache.get(study.id)
        if hit is None or hit[0] != key:
            report = analyze(study)
            hit = (key, report, [(f.title, f.kind, figure_json(f)) for f in report.figures])
            self._cache[study.id] = hit
        return hit[1], hit[2]


def create_app(storage: str | Storage | None = None, *, token: str | None = None, refresh_seconds: float = 3.0) -> Any:
    """The dashboard's ASGI app over ``storage``."""
    store = storage if isinstance(storage, Storage) else open_storage(storage)
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.filters["fmt"] = fmt
    templates.env.filters["ago"] = ago
    templates.env.globals["store_url"] = redact(store.url)
    cache = _AnalysisCache()
    app = FastAPI(title="tunebook dashboard", docs_url=None, redoc_url=None, openapi_url=None)

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Any:
        started = time.perf_counter()
        given = None
        if token is not None:
            header = request.headers.get("authorization", "")
            given = request.query_params.get("token") or request.cookies.get(TOKEN_COOKIE) or (
                header[7:] if header.lower().startswith("bearer ") else None
            )
            if given is None or not hmac.compare_digest(given.encode(), token.encode()):
                return PlainTextResponse("401: this dashboard needs its token (?token=...)", status_code=401)
        response = await call_next(request)
        if token is not None and request.query_params.get("token"):
            response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict")
        response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1e3:.1f}"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    @app.exception_handler(StarletteHTTPException)
    async def not_found(request: Request, exc: StarletteHTTPException) -> Any:
        if exc.status_code == 404:
            return templates.TemplateResponse(request, "404.html", {"detail": exc.detail}, status_code=404)
        return PlainTextResponse(f"{exc.status_code}: {exc.detail}", status_code=exc.status_code)

    def study_or_404(name: str) -> Study:
        record = store.get_study(name)
        if record is None:
            raise HTTPException(404, f"no study named {name!r}")
        return Study(record, store)

    @app.get("/static/plotly.min.js")
    def plotly_js() -> Response:
        return Response(_plotly_js(), media_type="application/javascript", headers={"Cache-Control": "max-age=86400"})

    @app.get("/static/dashboard.js")
    def dashboard_js() -> Response:
        return Response((HERE / "static" / "dashboard.js").read_text(), media_type="application/javascript")

    @app.get("/", response_class=HTMLResponse)
    def index(request: Request) -> Any:
        rows = notebook_rows(store)
        experiments: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            experiments.setdefault(row["experiment"], []).append(row)
        return templates.TemplateResponse(request, "index.html", {"experiments": experiments, "rows": rows})

    @app.get("/api/study/{name}/state")
    def study_state(name: str) -> Any:
        study = study_or_404(name)
        signature = store.study_signature(study.id)
        return JSONResponse({**signature, "signature": json.dumps(signature, sort_keys=True, default=str)})

    @app.get("/study/{name}", response_class=HTMLResponse)
    def study_page(request: Request, name: str, state: str = "", order: str = "number", desc: int = 0, page: int = 1) -> Any:
        study = study_or_404(name)
        if order not in store.TRIAL_ORDERS:  # type: ignore[attr-defined]
            raise HTTPException(404, f"no trial column {order!r}")
        states = [s for s in state.split(",") if s] or None
        page = max(page, 1)
        trials, total = store.trials_page(study.id, states=states, order=order, descending=bool(desc),
                                          offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE)
        signature = store.study_signature(study.id)
        report, figures = cache.get(study, signature)
        return templates.TemplateResponse(request, "study.html", {
            "study": study, "report": report, "figures": figures, "trials": trials, "total": total,
            "page": page, "pages": max(1, math.ceil(total / PAGE_SIZE)), "state": state, "order": order, "desc": desc,
            "signature": json.dumps(signature, sort_keys=True, default=str), "refresh_ms": int(refresh_seconds * 1000),
            "counts": signature["counts"], "orders": store.TRIAL_ORDERS,  # type: ignore[attr-defined]
        })

    @app.get("/study/{name}/trial/{number}", response_class=HTMLResponse)
    def trial_page(request: Request, name: str, number: int) -> Any:
        study = study_or_404(name)
        trial = store.get_trial_by_number(study.id, number)
        if trial is None:
            raise HTTPException(404, f"study {name!r} has no trial #{number}")
        curves = study.metrics(trial)
        figures = [(metric, lines_json(metric, [(metric, points)], study.max_train_steps)) for metric, points in sorted(curves.items())]
        roles = study.space.roles
        params = {role: {k: v for k, v in {**study.space.fixed, **trial.params}.items() if roles.get(k) == role}
                  for role in ("scientific", "nuisance", "fixed")}
        return templates.TemplateResponse(request, "trial.html", {
            "study": study, "trial": trial, "params": params, "figures": figures,
            "checkpoints": store.get_checkpoints(trial.id),
        })

    @app.get("/compare", response_class=HTMLResponse)
    def compare(request: Request, studies: str = "", study: str = "", trials: str = "") -> Any:
        if studies:
            names = [n for n in studies.split(",") if n]
            if len(names) != 2:
                raise HTTPException(404, "compare two studies: /compare?studies=a,b")
            pair = [study_or_404(n) for n in names]
            columns = []
            for s in pair:
                r, rendered = cache.get(s, store.study_signature(s.id))
                figures = [f for f in rendered if f[1] in ("isolation", "curves", "axis")][:4]
                best = s.best_trial()
                columns.append({"study": s, "report": r, "figures": figures, "best": best, "counts": s.counts()})
            return templates.TemplateResponse(request, "compare.html", {"mode": "studies", "columns": columns})
        if study and trials:
            s = study_or_404(study)
            try:
                numbers = [int(n) for n in trials.split(",") if n]
            except ValueError:
                raise HTTPException(404, "trials are numbers: /compare?study=s&trials=3,7") from None
            by_number = {t.number: t for t in s.trials()}
            if len(numbers) != 2 or any(n not in by_number for n in numbers):
                raise HTTPException(404, f"compare two trials of {study!r}: /compare?study={study}&trials=3,7")
            pair_t = [by_number[n] for n in numbers]
            curves = [s.metrics(t) for t in pair_t]
            metrics = sorted(set().union(*(c.keys() for c in curves)))
            figures = [(metric, lines_json(metric, [(f"#{t.number}", c.get(metric, [])) for t, c in zip(pair_t, curves)]))
                       for metric in metrics]
            names = sorted(set().union(*(({**s.space.fixed, **t.params}).keys() for t in pair_t)))
            rows = [(k, s.space.roles.get(k, "-"), [({**s.space.fixed, **t.params}).get(k) for t in pair_t]) for k in names]
            return templates.TemplateResponse(request, "compare.html", {
                "mode": "trials", "study": s, "trials": pair_t, "rows": rows, "figures": figures})
        raise HTTPException(404, "compare two studies (/compare?studies=a,b) or two trials (/compare?study=s&trials=3,7)")

    app.state.store = store
    return app

