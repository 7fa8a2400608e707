"""The dashboard: a local, read-only web app over a tunebook store (``tunebook dashboard``).

Needs ``tunebook[dashboard]`` (FastAPI, Uvicorn, Jinja2). It binds 127.0.0.1
unless told otherwise, and another address requires a token. The token can come
from ``--token``, a file (``token_file``) or the ``TUNEBOOK_DASHBOARD_TOKEN``
environment variable; the last two keep it out of the process list.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any, Callable

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
TOKEN_ENV = "TUNEBOOK_DASHBOARD_TOKEN"


def resolve_token(token: str | None = None, token_file: str | Path | None = None) -> str | None:
    """The token: given, else read from ``token_file`` (first line), else ``$TUNEBOOK_DASHBOARD_TOKEN``, else None."""
    from tunebook.errors import SpecError

    if token is not None:
        return token
    if token_file is not None:
        try:
            text = Path(token_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise SpecError("--token-file", f"cannot read {str(token_file)!r} ({exc.__class__.__name__})",
                            "give a readable file holding the token on its first line") from None
        lines = text.strip().splitlines()
        if not lines or not lines[0].strip():
            raise SpecError("--token-file", f"{str(token_file)!r} is empty", "write the token on its first line")
        return lines[0].strip()
    return os.environ.get(TOKEN_ENV) or None


def check_bind(host: str, token: str | None) -> None:
    """Refuse to listen beyond this machine without a token (``$TUNEBOOK_DASHBOARD_TOKEN`` counts as one)."""
    from tunebook.errors import SpecError

    token = token if token is not None else os.environ.get(TOKEN_ENV) or None
    if host not in LOCAL_HOSTS and not token:
        raise SpecError("--host", f"listening on {host} exposes the store to the network",
                        f"pass --token-file FILE (or set {TOKEN_ENV}) as well (every request must then carry it), or keep 127.0.0.1")
    if token is not None and len(token) < 16:
        raise SpecError("--token", "is too short to guess-proof", "use at least 16 characters, e.g. `openssl rand -hex 16`")


def create_app(*args: Any, **kwargs: Any) -> Any:
    try:
        from tunebook.dashboard.app import create_app as make
    except ImportError as exc:
        from tunebook.errors import MissingExtraError

        raise MissingExtraError(getattr(exc, "name", None) or "fastapi", "dashboard", "tunebook dashboard") from exc
    return make(*args, **kwargs)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: the kernel picks a free one), or one clear SpecError."""
    from tunebook.errors import SpecError

    if not 0 <= port <= 65535:
        raise SpecError("--port", f"{port} is not a port", "give 0..65535 (0 picks a free one)")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise SpecError("--host", f"{host!r} is not an address of this machine ({exc})", "use 127.0.0.1 or a local name") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise SpecError("--port", f"cannot listen on {host}:{port} ({exc.strerror or exc})",
                        "pick another port (or --port 0 for a free one)") from None
    sock.set_inheritable(True)
    return sock


def url_of(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


def serve(storage: str | None, *, host: str = "127.0.0.1", port: int = 8080, token: str | None = None,
          token_file: str | Path | None = None, on_ready: Callable[[str], None] | None = None) -> None:
    """Run the dashboard until interrupted. ``port=0`` picks a free port; the URL printed (and passed to
    ``on_ready``) names the real one."""
    token = resolve_token(token, token_file)
    check_bind(host, token)
    app = create_app(storage, token=token, host=host)
    import uvicorn

    sock = bind(host, port)
    url = url_of(host, sock.getsockname()[1])
    print(f"tunebook dashboard on {url}" + ("?token=..." if token else ""), flush=True)
    if on_ready is not None:
        on_ready(url)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    server.run(sockets=[sock])
