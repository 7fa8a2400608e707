"""The JavaScript the pages load, served by the app (never from a CDN): Plotly (gzipped once), the
figure drawing shared with the report (``plots.js``), the pages' own script (``dashboard.js``) and the
explore page's parallel coordinates (``explore.js``)."""

from __future__ import annotations

import gzip
from functools import lru_cache

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from tunebook.analysis.html import plots_js
from tunebook.dashboard.context import HERE

router = APIRouter()


@lru_cache(maxsize=1)
def _plotly_js() -> tuple[bytes, bytes]:
    """Plotly's JavaScript, plain and gzipped (compressed once, not per request)."""
    from plotly.offline import get_plotlyjs

    raw = get_plotlyjs().encode()
    return raw, gzip.compress(raw, 6)


@router.get("/static/plotly.min.js")
def plotly_js(request: Request) -> Response:
    raw, packed = _plotly_js()
    headers = {"Cache-Control": "max-age=86400", "Vary": "Accept-Encoding"}
    if "gzip" in request.headers.get("accept-encoding", ""):
        return Response(packed, media_type="application/javascript", headers={**headers, "Content-Encoding": "gzip"})
    return Response(raw, media_type="application/javascript", headers=headers)


@router.get("/static/plots.js")
def plots_script() -> Response:
    return Response(plots_js(), media_type="application/javascript", headers={"Cache-Control": "max-age=3600"})


@router.get("/static/{script}.js")
def page_script(script: str) -> Response:
    if script not in ("dashboard", "explore"):
        raise HTTPException(404, f"no script {script}.js")
    return Response((HERE / "static" / f"{script}.js").read_text(encoding="utf-8"), media_type="application/javascript")
