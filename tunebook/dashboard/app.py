"""The dashboard: a read-only FastAPI app over a tunebook store.

Pages (server-side templates, Jinja2 autoescaping every user string):

- ``/``: the experiment notebook: experiments and studies with the tracking
  columns; tick two studies to compare them;
- ``/study/{name}``: the headline (goal, answer, best trial, counts), findings
  linked to their trial and figure, the figures (a click on a point opens its
  trial), and the trial table: a column per hyperparameter grouped by role,
  sorted by any column and filtered in SQL, best first, paged in place
  (``/study/{name}/table``), tick two rows to compare, CSV (``/study/{name}/trials.csv``);
- ``/study/{name}/trial/{number}``: parameters by role, curves (objective first,
  its best step marked), checkpoints, the reproduction command, the reason or traceback;
- ``/compare?baseline=a&candidate=b`` (or ``?studies=a,b``): two studies overlaid
  on shared axes; ``/compare?study=s&trials=3,7``: two trials.

Only GET (and HEAD) routes exist, so nothing can change the store. Plotly's
JavaScript is served by the app (``/static/plotly.min.js``, gzipped), never from
a CDN, and only pages with figures load it. A study page polls
``/api/study/{name}/state`` and, when the study moves, redraws its figures in
place (``Plotly.react``, the user's zoom kept) and swaps the text parts.

Security: the Host header must name this server (loopback names, or the
``host`` it was started on), else 400, so a web page cannot reach it by DNS
rebinding. With a ``token``, every request must carry it (``?token=``, an
``Authorization: Bearer`` header, or the session cookie set on the first visit
with ``?token=``; the cookie holds an HMAC of the token under a per-process key,
never the token).
"""

from __future__ import annotations

import gzip
import hashlib
import hmac
import json
import math
import secrets
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.gzip import GZipMiddleware

from tunebook.analysis import analyze
from tunebook.analysis.figures import HOVER_FORMAT, PALETTE, curve_range, trial_color
from tunebook.analysis.html import STATES, figure_json, finding_html, headline, headline_html, num, plots_js, rich_text, \
    script_safe, trials_csv
from tunebook.analysis.notebook import ago, notebook_rows
from tunebook.dashboard.table import COLUMNS, MAX_NUMBER, TableQuery, choice_value, parse_range, trials_page
from tunebook.space import Choice
from tunebook.storage import open_storage, redact
from tunebook.storage.base import Storage
from tunebook.study import Study

HERE = Path(__file__).parent
PAGE_SIZE = 50
SESSION_COOKIE = "tunebook_session"
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
WILDCARDS = ("0.0.0.0", "::", "")


@lru_cache(maxsize=1)
def _plotly_js() -> tuple[bytes, bytes]:
    """Plotly's JavaScript, plain and gzipped (compressed once, not per request)."""
    from plotly.offline import get_plotlyjs

    raw = get_plotlyjs().encode()
    return raw, gzip.compress(raw, 6)


def host_name(header: str) -> str:
    """The name in a Host header, without its port (``[::1]:8080`` -> ``::1``)."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def allowed_hosts(host: str | None) -> set[str] | None:
    """The Host names the dashboard answers: loopback names, and ``host`` when it is a name; None means any (a wildcard bind)."""
    if host is not None and host.strip("[]") in WILDCARDS:
        return None  # bound to every interface: the token (required there) is the guard
    names = set(LOOPBACK_NAMES)
    if host:
        names.add(host.strip("[]").lower())
    return names


def session_value(key: bytes, token: str) -> str:
    """What the cookie holds: an HMAC of the token under the process's key (the token never leaves in a cookie)."""
    return hmac.new(key, token.encode(), hashlib.sha256).hexdigest()


def lines_figure(title: str, series: list[dict[str, Any]], max_step: int | None = None,
                 best: tuple[int, float] | None = None, height: int = 340, y_title: str | None = None) -> str:
    """A line chart as script-safe Plotly JSON. ``series``: ``{"name", "points", "color", "number", "meta"}``;
    ``best`` marks the objective's best step."""
    data: list[dict[str, Any]] = []
    ys = []
    for s in series:
        y = [None if (v is None or not math.isfinite(v)) else v for _, v in s["points"]]
        ys.append(y)
        trace = {"x": [st for st, _ in s["points"]], "y": y, "mode": "lines", "name": s["name"],
                 "line": {"color": s.get("color")}, "hovertemplate": f"%{{y:{HOVER_FORMAT}}}"}
        if s.get("number") is not None:
            trace["customdata"] = [s["number"]] * len(y)
        if s.get("meta"):
            trace["meta"] = s["meta"]
        data.append(trace)
    xaxis: dict[str, Any] = {"title": {"text": "step"}}
    if max_step:
        xaxis["range"] = [0, max_step * 1.02]  # room for a best-step star at the last step
    yaxis: dict[str, Any] = {"title": {"text": y_title or title}}
    y_range = curve_range(ys)
    shapes = []
    if best is not None:
        step, value = best
        data.append({"x": [step], "y": [value], "mode": "markers", "name": f"best: {num(value)} @ step {step}",
                     "marker": {"symbol": "star", "size": 14, "color": "#ff7f0e", "line": {"width": 1, "color": "#333"}},
                     "hovertemplate": f"best %{{y:{HOVER_FORMAT}}} @ step %{{x}}<extra></extra>"})
        shapes.append({"type": "line", "xref": "x", "yref": "paper", "x0": step, "x1": step, "y0": 0, "y1": 1,
                       "line": {"dash": "dot", "color": "#ff7f0e", "width": 1}})
        if y_range is not None:
            y_range = [min(y_range[0], value), max(y_range[1], value)]
    if y_range is not None:
        yaxis["range"] = y_range
    layout = {"title": {"text": title, "font": {"size": 14}}, "height": height, "template": "plotly_white", "xaxis": xaxis,
              "yaxis": yaxis, "hovermode": "x unified", "uirevision": "keep", "shapes": shapes,
              "margin": {"t": 50, "l": 60, "r": 20, "b": 40}, "legend": {"orientation": "h", "y": -0.25, "x": 0}}
    return script_safe(json.dumps({"data": data, "layout": layout}))


def metric_order(names: list[str], objective: str) -> list[str]:
    """The objective first, then the other metrics by name."""
    return sorted(names, key=lambda m: (m != objective, m))


class _AnalysisCache:
    """Each study's report, rendered figures and page parts, recomputed only when the study has moved."""

    def __init__(self) -> None:
        self._cache: dict[int, tuple[str, Any, list[tuple[str, str, str]], dict[str, Any]]] = {}

    def get(self, study: Study, signature: dict[str, Any]) -> tuple[Any, list[tuple[str, str, str]]]:
        """``(report, [(title, kind, figure JSON), ...])``."""
        hit = self._hit(study, signature)
        return hit[1], hit[2]

    def part(self, study: Study, signature: dict[str, Any], name: str, make: Any) -> Any:
        """``make(report)``, computed once per state of the study (the headline, the findings' markup)."""
        parts = self._hit(study, signature)[3]
        if name not in parts:
            parts[name] = make(self._hit(study, signature)[1])
        return parts[name]

    def _hit(self, study: Study, signature: dict[str, Any]) -> tuple[str, Any, list[tuple[str, str, str]], dict[str, Any]]:
        key = json.dumps(signature, sort_keys=True, default=str)
        hit = self._cache.get(study.id)
        if hit is None or hit[0] != key:
            report = analyze(study)
            hit = (key, report, [(f.title, f.kind, figure_json(f)) for f in report.figures], {})
            self._cache[study.id] = hit
        return hit


def create_app(storage: str | Storage | None = None, *, token: str | None = None, refresh_seconds: float = 3.0,
               host: str | None = None) -> Any:
    """The dashboard's ASGI app over ``storage``. ``host`` is the address it listens on (its name is accepted
    in the Host header besides the loopback names)."""
    store = storage if isinstance(storage, Storage) else open_storage(storage)
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.filters["num"] = num
    templates.env.filters["ago"] = ago
    templates.env.globals["store_url"] = redact(store.url)
    cache = _AnalysisCache()
    hosts = allowed_hosts(host)
    key = secrets.token_bytes(32)
    session = None if token is None else session_value(key, token)
    app = FastAPI(title="tunebook dashboard", docs_url=None, redoc_url=None, openapi_url=None)

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Any:
        started = time.perf_counter()
        if hosts is not None and host_name(request.headers.get("host", "")) not in hosts:
            return PlainTextResponse("400: this dashboard answers only requests addressed to it (Host header)", status_code=400)
        if token is not None and session is not None:
            header = request.headers.get("authorization", "")
            given = request.query_params.get("token") or (header[7:] if header.lower().startswith("bearer ") else None)
            cookie = request.cookies.get(SESSION_COOKIE)
            ok = (given is not None and hmac.compare_digest(given.encode(), token.encode())) or (
                given is None and cookie is not None and hmac.compare_digest(cookie.encode(), session.encode()))
            if not ok:
                return PlainTextResponse("401: this dashboard needs its token (?token=...)", status_code=401)
        response = await call_next(request)
        if session is not None and request.query_params.get("token"):
            response.set_cookie(SESSION_COOKIE, session, httponly=True, samesite="strict")
        response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1e3:.1f}"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    app.add_middleware(GZipMiddleware, minimum_size=1024, compresslevel=5)  # 9 costs ~1 s on a 10,000-trial page

    @app.exception_handler(StarletteHTTPException)
    async def not_found(request: Request, exc: StarletteHTTPException) -> Any:
        if exc.status_code == 404:
            return templates.TemplateResponse(request, "404.html", {"detail": exc.detail}, status_code=404)
        return PlainTextResponse(f"{exc.status_code}: {exc.detail}", status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def bad_parameter(request: Request, exc: Any) -> Any:
        # a path or query parameter of the wrong type (/trial/x, page=abc) names nothing that exists
        return templates.TemplateResponse(request, "404.html", {"detail": "no such page"}, status_code=404)

    def study_or_404(name: str) -> Study:
        record = store.get_study(name)
        if record is None:
            raise HTTPException(404, f"no study named {name!r}")
        return Study(record, store)

    def trial_url(study: Study) -> str:
        from urllib.parse import quote

        return f"/study/{quote(study.name, safe='')}/trial/{{number}}"

    def trial_href(study: Study) -> Any:
        template = trial_url(study)
        return lambda n: template.replace("{number}", str(n))

    @app.get("/static/plotly.min.js")
    def plotly_js(request: Request) -> Response:
        raw, packed = _plotly_js()
        headers = {"Cache-Control": "max-age=86400", "Vary": "Accept-Encoding"}
        if "gzip" in request.headers.get("accept-encoding", ""):
            return Response(packed, media_type="application/javascript", headers={**headers, "Content-Encoding": "gzip"})
        return Response(raw, media_type="application/javascript", headers=headers)

    @app.get("/static/plots.js")
    def plots_script() -> Response:
        return Response(plots_js(), media_type="application/javascript", headers={"Cache-Control": "max-age=3600"})

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

    def table_query(request: Request, study: Study) -> TableQuery:
        qp = request.query_params
        mode = study.objective[1]
        order = qp.get("order") or "value"
        if order not in COLUMNS and not (order.startswith("p.") and order[2:] in study.space.params):
            raise HTTPException(404, f"no trial column {order!r}")
        desc_text = qp.get("desc")
        descending = (mode == "max") if (desc_text in (None, "") and order == "value") else desc_text == "1"
        states = [s for s in (qp.get("state") or "").split(",") if s]
        if any(s not in STATES for s in states):
            raise HTTPException(404, f"no trial state {qp.get('state')!r}")
        q = TableQuery(states=states or None, order=order, descending=descending, limit=PAGE_SIZE)
        for name, p in study.space.params.items():
            text = (qp.get("p." + name) or "").strip()
            if not text:
                continue
            if isinstance(p, Choice):
                try:
                    q.choices[name] = choice_value(p, text)
                except KeyError:
                    raise HTTPException(404, f"{name} has no value {text!r}") from None
            else:
                bounds = parse_range(text)
                if bounds is None:
                    raise HTTPException(404, f"filter {name} with lo..hi, e.g. 0.001..0.1")
                q.ranges[name] = bounds
        try:
            page = int(qp.get("page") or 1)
        except ValueError:
            raise HTTPException(404, "page is a number") from None
        if not 1 <= page <= MAX_NUMBER:
            raise HTTPException(404, f"no page {page}")
        q.offset = (page - 1) * PAGE_SIZE
        return q

    def table_context(request: Request, study: Study) -> dict[str, Any]:
        q = table_query(request, study)
        rows, total = trials_page(store, study.id, q)
        pages = max(1, math.ceil(total / PAGE_SIZE))
        page = q.offset // PAGE_SIZE + 1
        if page > pages:
            raise HTTPException(404, f"no page {page}: the table has {pages}")
        best = study.best_trial()
        roles = study.space.roles
        groups = [(role, [n for n in study.space.params if roles.get(n) == role]) for role in ("scientific", "nuisance")]
        groups = [(role, names) for role, names in groups if names]
        qp = request.query_params
        keep = {k: v for k, v in qp.items() if k not in ("page", "order", "desc", "token")}
        filters = {name: (qp.get("p." + name) or "") for name in study.space.params}
        choices = {name: [str(v) for v in p.values] for name, p in study.space.params.items() if isinstance(p, Choice)}
        return {"study": study, "trials": rows, "total": total, "page": page, "pages": pages, "order": q.order,
                "desc": int(q.descending), "state": qp.get("state") or "", "groups": groups, "best_number": best.number if best else None,
                "keep": keep, "filters": filters, "choices": choices, "columns": COLUMNS, "metric": study.objective[0],
                "mode": study.objective[1]}

    @app.get("/study/{name}", response_class=HTMLResponse)
    def study_page(request: Request, name: str) -> Any:
        study = study_or_404(name)
        table = table_context(request, study)
        signature = store.study_signature(study.id)
        report, figures = cache.get(study, signature)
        href = trial_href(study)
        others = [r.name for r in store.list_studies() if r.name != study.name]
        return templates.TemplateResponse(request, "study.html", {
            **table, "report": report, "figures": figures,
            "headline": cache.part(study, signature, "headline", lambda r: Markup(headline_html(headline(r), href))),
            "findings": cache.part(study, signature, "findings",
                                   lambda r: [Markup(finding_html(f, r.figures, href)) for f in r.findings]),
            "signature": json.dumps(signature, sort_keys=True, default=str), "refresh_ms": int(refresh_seconds * 1000),
            "counts": signature["counts"], "trial_url": trial_url(study), "others": others,
            "updated": time.strftime("%H:%M:%S"),
        })

    @app.get("/study/{name}/table", response_class=HTMLResponse)
    def study_table(request: Request, name: str) -> Any:
        study = study_or_404(name)
        return templates.TemplateResponse(request, "table.html", table_context(request, study))

    @app.get("/study/{name}/trials.csv")
    def study_csv(request: Request, name: str) -> Any:
        study = study_or_404(name)
        q = table_query(request, study)
        q.offset, q.limit = 0, 2**31 - 1
        rows, _ = trials_page(store, study.id, q)
        from urllib.parse import quote

        return Response(trials_csv(rows, list(study.space.params), study.objective[0]), media_type="text/csv",
                        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(study.name, safe='')}-trials.csv"})

    def trial_or_404(study: Study, number: int) -> Any:
        trial = store.get_trial_by_number(study.id, number) if 0 <= number <= MAX_NUMBER else None
        if trial is None:
            raise HTTPException(404, f"study {study.name!r} has no trial #{number}")
        return trial

    @app.get("/study/{name}/trial/{number}", response_class=HTMLResponse)
    def trial_page(request: Request, name: str, number: int) -> Any:
        study = study_or_404(name)
        trial = trial_or_404(study, number)
        curves = study.metrics(trial)
        objective = study.objective[0]
        best = (trial.best_step, trial.value) if trial.best_step is not None and trial.value is not None else None
        figures = [(metric, lines_figure(metric, [{"name": metric, "points": curves[metric], "color": PALETTE[0]}],
                                         study.max_train_steps, best if metric == objective else None))
                   for metric in metric_order(list(curves), objective)]
        roles = study.space.roles
        params = {role: {k: v for k, v in {**study.space.fixed, **trial.params}.items() if roles.get(k) == role}
                  for role in ("scientific", "nuisance", "fixed")}
        return templates.TemplateResponse(request, "trial.html", {
            "study": study, "trial": trial, "params": params, "figures": figures, "error_html": None,
            "checkpoints": store.get_checkpoints(trial.id), "trial_url": trial_url(study),
            "reason": Markup(rich_text(trial.infeasible_reason or "", trial_href(study))),
        })

    def compare_studies(request: Request, names: list[str]) -> Any:
        pair = [study_or_404(n) for n in names]
        columns = []
        for i, s in enumerate(pair):
            signature = store.study_signature(s.id)
            r, _ = cache.get(s, signature)
            href = trial_href(s)
            columns.append({"study": s, "report": r,
                            "headline": cache.part(s, signature, "headline", lambda r, href=href: Markup(headline_html(headline(r), href))),
                            "color": trial_color(i), "role": ("baseline", "candidate")[i]})
        figures = overlay_figures(columns)
        return templates.TemplateResponse(request, "compare.html", {"mode": "studies", "columns": columns, "figures": figures})

    def overlay_figures(columns: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
        """The two studies on shared axes: objective against each shared hyperparameter, isolation, best curves."""
        out = []
        metrics = {c["study"].objective[0] for c in columns}
        metric = columns[0]["study"].objective[0] if len(metrics) == 1 else "objective"
        by_param: dict[str, list[tuple[dict[str, Any], Any]]] = {}
        for c in columns:
            for f in c["report"].figures:
                if f.kind == "axis":
                    by_param.setdefault(f.data.param, []).append((c, f.data))
        for param, items in by_param.items():
            if len(items) < 2:
                continue
            data = []
            for c, d in items:
                categorical = d.categorical
                data.append({"x": [str(v) for v in d.x] if categorical else d.x, "y": d.y, "mode": "markers",
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
            out.append((f"{metric} against {param}", "axis", script_safe(json.dumps({"data": data, "layout": layout}))))
        series = []
        for c in columns:
            s = c["study"]
            best = s.best_trial()
            if best is None:
                continue
            points = s.metrics(best, [s.objective[0]]).get(s.objective[0], [])
            series.append({"name": f"{c['role']}: {s.name} #{best.number}", "points": points, "color": c["color"],
                           "number": best.number, "meta": {"trialUrl": trial_url(s)}})
        if series:
            steps = max(c["study"].max_train_steps or 0 for c in columns) or None
            out.append(("best trials' curves", "curves", lines_figure(f"{metric}: each study's best trial", series, steps, y_title=metric)))
        return out

    @app.get("/compare", response_class=HTMLResponse)
    def compare(request: Request, studies: str = "", study: str = "", trials: str = "", baseline: str = "",
                candidate: str = "") -> Any:
        if baseline or candidate:
            if not (baseline and candidate):
                raise HTTPException(404, "compare two studies: /compare?baseline=a&candidate=b")
            return compare_studies(request, [baseline, candidate])
        if studies:
            names = [n for n in studies.split(",") if n]
            if len(names) != 2:
                raise HTTPException(404, "compare two studies: /compare?studies=a,b")
            return compare_studies(request, names)
        if study and trials:
            s = study_or_404(study)
            try:
                numbers = [int(n) for n in trials.split(",") if n]
            except ValueError:
                raise HTTPException(404, "trials are numbers: /compare?study=s&trials=3,7") from None
            if len(numbers) != 2:
                raise HTTPException(404, f"compare two trials of {study!r}: /compare?study={study}&trials=3,7")
            pair_t = [trial_or_404(s, n) for n in numbers]
            curves = [s.metrics(t) for t in pair_t]
            objective = s.objective[0]
            metrics = metric_order(sorted(set().union(*(c.keys() for c in curves))), objective)
            figures = []
            for metric in metrics:
                series = [{"name": f"#{t.number}", "points": c.get(metric, []), "color": trial_color(i), "number": t.number}
                          for i, (t, c) in enumerate(zip(pair_t, curves))]
                figures.append((metric, lines_figure(metric, series, s.max_train_steps)))
                if metric == objective:  # mark each trial's best step on the objective
                    spec = json.loads(figures[-1][1].replace("\\u003c", "<").replace("\\u003e", ">").replace("\\u0026", "&"))
                    for i, t in enumerate(pair_t):
                        if t.best_step is not None and t.value is not None:
                            spec["data"].append({"x": [t.best_step], "y": [t.value], "mode": "markers", "name": f"#{t.number} best",
                                                 "marker": {"symbol": "star", "size": 14, "color": trial_color(i)},
                                                 "hovertemplate": f"#{t.number} best %{{y:{HOVER_FORMAT}}} @ step %{{x}}<extra></extra>"})
                    figures[-1] = (metric, script_safe(json.dumps(spec)))
            names = sorted(set().union(*(({**s.space.fixed, **t.params}).keys() for t in pair_t)),
                           key=lambda k: (("scientific", "nuisance", "fixed").index(s.space.roles.get(k, "fixed")), k))
            rows = [(k, s.space.roles.get(k, "-"), [({**s.space.fixed, **t.params}).get(k) for t in pair_t]) for k in names]
            return templates.TemplateResponse(request, "compare.html", {
                "mode": "trials", "study": s, "trials": pair_t, "rows": rows, "figures": figures, "trial_url": trial_url(s)})
        raise HTTPException(404, "compare two studies (/compare?baseline=a&candidate=b) or two trials (/compare?study=s&trials=3,7)")

    app.state.store = store
    return app
