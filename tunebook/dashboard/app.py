"""The dashboard: a read-only FastAPI app over a tunebook store.

Pages (server-side templates, Jinja2 autoescaping every user string), one router module each under
``tunebook.dashboard.pages``:

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
  on shared axes; ``/compare?study=s&trials=10,5,6,0``: any number of trials overlaid.

Only GET (and HEAD) routes exist, so nothing can change the store. Plotly's
JavaScript is served by the app (``/static/plotly.min.js``, gzipped), never from
a CDN, and only pages with figures load it. Pages poll their state
(``/api/notebook/state``, ``/api/study/{name}/state``, ``/api/study/{name}/trial/{n}/state``):
a running study's page redraws its running trials' curves and its checkpoint disk use on every poll and, when
the analysis moves, updates each figure by its id in place (``Plotly.react``, the
user's zoom kept) and swaps the text parts; a finished study or trial stops polling.

Security: the Host header must name this server (loopback names, or the
``host`` it was started on), else 400, so a web page cannot reach it by DNS
rebinding. With a ``token``, every request must carry it (``?token=``, an
``Authorization: Bearer`` header, or the session cookie set on the first visit
with ``?token=``; the cookie holds an HMAC of the token under a per-process key,
never the token).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import PlainTextResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.gzip import GZipMiddleware

from tunebook.dashboard.context import Context
from tunebook.dashboard.pages import ROUTERS
from tunebook.storage import open_storage
from tunebook.storage.base import Storage

SESSION_COOKIE = "tunebook_session"
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
WILDCARDS = ("0.0.0.0", "::", "")


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


def _authorized(request: Request, token: str, session: str) -> bool:
    header = request.headers.get("authorization", "")
    given = request.query_params.get("token") or (header[7:] if header.lower().startswith("bearer ") else None)
    cookie = request.cookies.get(SESSION_COOKIE)
    return (given is not None and hmac.compare_digest(given.encode(), token.encode())) or (
        given is None and cookie is not None and hmac.compare_digest(cookie.encode(), session.encode()))


def _guard(app: FastAPI, hosts: set[str] | None, token: str | None) -> None:
    """The Host-header check, the token, and the headers every response carries."""
    session = None if token is None else session_value(secrets.token_bytes(32), token)

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Any:
        started = time.perf_counter()
        if hosts is not None and host_name(request.headers.get("host", "")) not in hosts:
            return PlainTextResponse("400: this dashboard answers only requests addressed to it (Host header)", status_code=400)
        if token is not None and session is not None and not _authorized(request, token, session):
            return PlainTextResponse("401: this dashboard needs its token (?token=...)", status_code=401)
        response = await call_next(request)
        if session is not None and request.query_params.get("token"):
            response.set_cookie(SESSION_COOKIE, session, httponly=True, samesite="strict")
        response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1e3:.1f}"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response


def _errors(app: FastAPI, c: Context) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def not_found(request: Request, exc: StarletteHTTPException) -> Any:
        if exc.status_code == 404:
            return c.page(request, "404.html", {"detail": exc.detail}, status_code=404)
        return PlainTextResponse(f"{exc.status_code}: {exc.detail}", status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def bad_parameter(request: Request, exc: Any) -> Any:
        # a path or query parameter of the wrong type (/trial/x, page=abc) names nothing that exists
        return c.page(request, "404.html", {"detail": "no such page"}, status_code=404)


def create_app(storage: str | Storage | None = None, *, token: str | None = None, refresh_seconds: float = 2.0,
               host: str | None = None, checkpoint_dir: str | Path | None = None,
               background_from: int | None = 2000) -> Any:
    """The dashboard's ASGI app over ``storage``. ``host`` is the address it listens on (its name is accepted
    in the Host header besides the loopback names); pages poll their state every ``refresh_seconds``;
    ``checkpoint_dir`` is where the studies' checkpoints are, for their disk use (default: where the runner
    puts them, beside the SQLite file). A study of ``background_from`` finished trials or more (None: never)
    shows its last analysis while a new one is computed in the background (``context.AnalysisCache``)."""
    store = storage if isinstance(storage, Storage) else open_storage(storage)
    c = Context.make(store, refresh_seconds, checkpoint_dir, background_from)
    app = FastAPI(title="tunebook dashboard", docs_url=None, redoc_url=None, openapi_url=None)
    _guard(app, allowed_hosts(host), token)
    app.add_middleware(GZipMiddleware, minimum_size=1024, compresslevel=5)  # 9 costs ~1 s on a 10,000-trial page
    _errors(app, c)
    for router in ROUTERS:
        app.include_router(router)
    app.state.ctx = c
    app.state.store = store
    return app
