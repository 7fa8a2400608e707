"""The dashboard's HTTP rules: Host header, out-of-range numbers, the session cookie, the token kept out of
the process list, gzip and Plotly only where there are plots; servers bind port 0 and report their port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tunebook.analysis.synthetic import exp_decay, write_study

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from tunebook.dashboard import TOKEN_ENV, bind, resolve_token  # noqa: E402
from tunebook.dashboard.app import host_name  # noqa: E402
from tunebook.dashboard import create_app  # noqa: E402
from tunebook.errors import SpecError  # noqa: E402

TOKEN = "0123456789abcdef0123"


def curve(params, steps, rng):
    floor = 0.05 + 0.1 * abs(params["lr"] - 0.01)
    val = exp_decay(steps, floor, 1.0, 60) + 0.001 * rng.standard_normal(len(steps))
    return {"val/error": val}


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('dashboard-security') / 'tunebook.db'}"
    write_study(url, "s", curve, space={"nuisance": {"lr": {"min": 1e-4, "max": 1.0, "scale": "log"}}}, trials=6)
    return url


def client(url: str, base: str = "http://127.0.0.1", **options) -> TestClient:
    return TestClient(create_app(url, **options), base_url=base)


def test_host_names_are_parsed_without_their_port():
    assert host_name("localhost:8080") == "localhost" and host_name("[::1]:8080") == "::1"
    assert host_name("127.0.0.1") == "127.0.0.1" and host_name("Example.COM:80") == "example.com"


def test_only_requests_addressed_to_the_dashboard_are_answered(store):
    app = create_app(store)
    for host in ("127.0.0.1:8080", "localhost", "localhost:1", "[::1]:8080"):
        assert TestClient(app, base_url=f"http://{host}").get("/").status_code == 200, host
    for host in ("evil.example", "evil.example:8080", "127.0.0.1.evil.example", "localhost.evil.example", "testserver"):
        response = TestClient(app, base_url=f"http://{host}").get("/")
        assert response.status_code == 400, host  # DNS rebinding: a page on evil.example cannot read the store
        assert "Host" in response.text
    named = create_app(store, host="box.lan", token=TOKEN)
    assert TestClient(named, base_url="http://box.lan:8080").get(f"/?token={TOKEN}").status_code == 200
    assert TestClient(named, base_url="http://other.lan:8080").get(f"/?token={TOKEN}").status_code == 400
    anywhere = create_app(store, host="0.0.0.0", token=TOKEN)  # every interface: the token is the guard
    assert TestClient(anywhere, base_url="http://10.1.2.3:8080").get(f"/?token={TOKEN}").status_code == 200
    assert TestClient(anywhere, base_url="http://10.1.2.3:8080").get("/").status_code == 401


@pytest.mark.parametrize("path", [
    "/study/s/trial/9223372036854775808", "/study/s/trial/9223372036854775807", "/study/s/trial/2147483648",
    "/study/s/trial/-1", "/study/s/trial/x", "/compare?study=s&trials=9223372036854775808,1",
])
def test_out_of_range_numbers_are_404_never_500(store, path):
    response = client(store).get(path)
    assert response.status_code == 404, (path, response.status_code, response.text[:200])
    assert "Not found" in response.text


@pytest.mark.parametrize("path", [
    "/study/s?page=9223372036854775807", "/study/s?page=99999999999999999999999", "/study/s?page=2", "/study/s?page=0",
    "/study/s?page=-3", "/study/s?page=abc", "/study/s/table?page=9223372036854775807", "/study/s?order=p.nope",
    "/study/s?p.lr=abc", "/study/s?p.lr=nan..1", "/study/s?state=nosuch", "/study/s/trials.csv?order=params",
])
def test_a_table_query_out_of_range_or_unknown_is_a_400_that_names_it_never_500(store, path):
    response = client(store).get(path)
    assert response.status_code == 400, (path, response.status_code, response.text[:200])
    assert "Not found" not in response.text
    assert ("Filter not applied: " in response.text) or (path.startswith("/study/s/trials.csv") and response.text.startswith("400: order"))


def test_responses_are_gzipped_and_plotly_loads_only_where_there_are_plots(store):
    c = client(store)
    page = c.get("/study/s", headers={"Accept-Encoding": "gzip"})
    assert page.headers["content-encoding"] == "gzip" and "/static/plotly.min.js" in page.text
    js = c.get("/static/plotly.min.js", headers={"Accept-Encoding": "gzip"})
    assert js.headers["content-encoding"] == "gzip" and len(js.content) > 1_000_000  # decoded by the client
    assert int(js.headers["content-length"]) < len(js.content) / 3  # sent compressed
    assert "/static/plotly.min.js" not in c.get("/").text
    plots = c.get("/static/plots.js").text
    assert "displaylogo: false" in plots and "sendDataToCloud" in plots and "TUNEBOOK_DARK_TEMPLATE" in plots


def test_the_token_comes_from_a_file_or_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    assert resolve_token() is None
    (tmp_path / "token").write_text(TOKEN + "\n")
    assert resolve_token(token_file=tmp_path / "token") == TOKEN
    monkeypatch.setenv(TOKEN_ENV, "from-the-environment-0123")
    assert resolve_token() == "from-the-environment-0123"
    assert resolve_token(token_file=tmp_path / "token") == TOKEN  # a file named on the command line wins
    (tmp_path / "empty").write_text("\n")
    for path in (tmp_path / "empty", tmp_path / "missing"):
        with pytest.raises(SpecError, match="--token-file"):
            resolve_token(token_file=path)


def test_bind_reports_its_port_and_refuses_bad_ones_in_one_line():
    sock = bind("127.0.0.1", 0)
    try:
        port = sock.getsockname()[1]
        assert port > 0
        with pytest.raises(SpecError, match="--port: cannot listen"):
            bind("127.0.0.1", port)  # in use
    finally:
        sock.close()
    with pytest.raises(SpecError, match="--port: 70000 is not a port"):
        bind("127.0.0.1", 70000)
    with pytest.raises(SpecError, match="--host"):
        bind("no such host.invalid", 0)


def _serve(store: str, tmp_path: Path, env: dict[str, str], **options) -> tuple[subprocess.Popen, int]:
    code = ("import sys; from tunebook.dashboard import serve; "
            f"serve({store!r}, port=0, **{options!r})")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **env}, cwd=tmp_path)
    line = proc.stdout.readline()
    assert line.startswith("tunebook dashboard on http://127.0.0.1:"), (line, proc.stderr.read() if proc.poll() is not None else "")
    assert TOKEN not in line
    port = int(line.rsplit(":", 1)[1].split("/")[0])
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, port
        except OSError:
            assert time.monotonic() < deadline
            time.sleep(0.1)


def _status(url: str) -> int:
    try:
        return urllib.request.urlopen(url, timeout=30).status
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.mark.parametrize("source", ["file", "environment"])
def test_a_token_from_a_file_or_the_environment_stays_out_of_the_process_list(store, tmp_path, source):
    env = {"PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    options = {}
    if source == "file":
        (tmp_path / "token").write_text(TOKEN)
        options["token_file"] = str(tmp_path / "token")
    else:
        env[TOKEN_ENV] = TOKEN
    proc, port = _serve(store, tmp_path, env, **options)
    try:
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().decode(errors="replace")
        assert TOKEN not in cmdline
        assert _status(f"http://127.0.0.1:{port}/study/s") == 401
        assert _status(f"http://127.0.0.1:{port}/study/s?token={TOKEN}") == 200
    finally:
        proc.terminate()
        proc.wait(timeout=30)
