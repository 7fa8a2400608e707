"""The dashboard: a local, read-only web app over a tunebook store (``tunebook dashboard``).

Needs ``tunebook[dashboard]`` (FastAPI, Uvicorn, Jinja2). It binds 127.0.0.1
unless told otherwise, and another address requires a token.
"""

from __future__ import annotations

from typing import Any

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def check_bind(host: str, token: str | None) -> None:
    """Refuse to listen beyond this machine without a token."""
    from tunebook._errors import SpecError

    if host not in LOCAL_HOSTS and not token:
        raise SpecError("--host", f"listening on {host} exposes the store to the network",
                        "pass --token SECRET as well (every request must then carry it), or keep 127.0.0.1")
    if token is not None and len(token) < 16:
        raise SpecError("--token", "is too short to guess-proof", "use at least 16 characters, e.g. `openssl rand -hex 16`")


def create_app(*args: Any, **kwargs: Any) -> Any:
    try:
        from tunebook.dashboard.app import create_app as make
    except ImportError as exc:
        from tunebook._errors import MissingExtraError

        raise MissingExtraError(getattr(exc, "name", None) or "fastapi", "dashboard", "tunebook dashboard") from exc
    return make(*args, **kwargs)


def serve(storage: str | None, *, host: str = "127.0.0.1", port: int = 8080, token: str | None = None) -> None:
    """Run the dashboard until interrupted."""
    check_bind(host, token)
    app = create_app(storage, token=token)
    import uvicorn

    shown = "[::1]" if host == "::1" else host
    print(f"tunebook dashboard on http://{shown}:{port}/" + (f"?token={token}" if token else ""), flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
