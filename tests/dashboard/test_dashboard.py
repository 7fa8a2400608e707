"""The dashboard: HTTP rules, and a real browser (Debian's Chromium through Playwright) against a real store."""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

import tunebook as tb
from _store_dump import rows
from conftest import run_cli
from _browser import CHROMIUM_FLAGS, browser_or_skip, CHROMIUM
from tunebook.analysis.synthetic import exp_decay, write_study

fastapi = pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from tunebook.dashboard import create_app  # noqa: E402

EVIL = "<script>window.__pwned = 1</script>"
TOKEN = "0123456789abcdef0123"
LR = {"learning_rate": {"min": 1e-4, "max": 1.0, "scale": "log"}}


def curve(params, steps, rng):
    if params["learning_rate"] > 0.3:
        return "train/loss was nan at step 4"
    floor = 0.05 + 0.1 * abs(params["learning_rate"] - 0.01)
    val = exp_decay(steps, floor, 1.0, 60) + 0.001 * rng.standard_normal(len(steps))
    return {"val/error": val, "train/loss": 2 * val}


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("dashboard")
    url = f"sqlite:///{folder / 'tunebook.db'}"
    write_study(url, "wd-study", curve, space={"scientific": {"wd": {"choice": [0.0, 0.1]}}, "nuisance": LR},
                trials=16, goal="Does weight decay help?", experiment="exp-a")
    write_study(url, "evil-study", curve, space={"nuisance": LR, "fixed": {"note": EVIL}}, trials=4, goal=f"Goal {EVIL}",
                experiment="exp-b")
    tb.create_study("live-study", space=tb.SearchSpace(nuisance={"lr": tb.Float(1e-3, 1.0, "log")}),
                    objective=("val/error", "min"), trials=3, max_train_steps=5, storage=url, goal="still running")
    return url


def client_for(url: str, **options) -> TestClient:
    """An in-process client addressed as the browser would (Host 127.0.0.1)."""
    return TestClient(create_app(url, **options), base_url="http://127.0.0.1")


def test_a_bad_table_filter_is_named_above_the_table_and_the_page_stays(store):
    client = client_for(store)
    for query, said in (("order=params", "order: no column 'params'"),
                        ("p.learning_rate=abc", "learning_rate: 'abc' is not a range; write lo..hi"),
                        ("p.wd=0.5", "wd: has no value '0.5'; pick one of 0.0, 0.1"),
                        ("state=done", "state: no trial state 'done'"),
                        ("page=x", "page: 'x' is not a whole number"),
                        ("page=99", "page: there is no page 99; the table has 1")):
        page = client.get(f"/study/wd-study?{query}")
        assert page.status_code == 400, query
        assert "Filter not applied: " + said in page.text.replace("&#39;", "'"), (query, page.text[-3000:])
        assert "Not found" not in page.text and 'class="headline' in page.text.replace("'", '"')  # the study page stays
        assert page.text.count('class="trial-row') == 16  # the table, unfiltered
        fragment = client.get(f"/study/wd-study/table?{query}")
        assert fragment.status_code == 400 and "Filter not applied" in fragment.text and "<html" not in fragment.text
    csv = client.get("/study/wd-study/trials.csv?p.learning_rate=abc")
    assert csv.status_code == 400 and "learning_rate" in csv.text


def test_the_best_n_and_a_page_jump(store):
    client = client_for(store)
    page = client.get("/study/wd-study/table?top=3")
    assert page.status_code == 200 and page.text.count('class="trial-row') == 3
    study = tb.load_study("wd-study", storage=store)
    best = sorted((t for t in study.trials() if t.value is not None), key=lambda t: (t.value, t.number))[:3]
    rows = [int(n) for n in __import__("re").findall(r'class="trial-row[^"]*" data-number="(\d+)"', page.text)]
    assert rows == [t.number for t in best]


def snapshot(url: str) -> dict:
    return rows(url, ("tb_experiments", "tb_studies", "tb_trials", "tb_metrics", "tb_checkpoints"))


# HTTP ---------------------------------------------------------------------------------
def test_pages_answer_and_unknown_ids_are_404_pages(store):
    client = client_for(store)
    for path in ("/", "/study/wd-study", "/study/wd-study/trial/0", "/study/wd-study?state=completed&order=value&desc=1",
                 "/compare?studies=wd-study,evil-study", "/compare?study=wd-study&trials=0,1", "/static/plotly.min.js",
                 "/api/study/wd-study/state"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert "Server-Timing" in response.headers
    for path in ("/study/nope", "/study/wd-study/trial/999", "/study/nope/trial/0", "/compare?studies=wd-study,nope",
                 "/compare?study=wd-study&trials=0,x", "/compare", "/nowhere"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert "Not found" in response.text and "<html" in response.text, path


def test_no_request_changes_the_store(store):
    client = client_for(store)
    before = snapshot(store)
    for path in ("/", "/study/wd-study", "/study/wd-study/trial/3", "/api/study/wd-study/state", "/compare?studies=wd-study,evil-study"):
        client.get(path)
        for method in ("post", "put", "delete", "patch"):
            assert getattr(client, method)(path).status_code == 405, (method, path)
    assert snapshot(store) == before


def test_user_strings_are_escaped(store):
    client = client_for(store)
    for path in ("/", "/study/evil-study", "/study/evil-study/trial/0"):
        html = client.get(path).text
        assert "<script>window.__pwned" not in html, path
    assert "&lt;script&gt;window.__pwned" in client.get("/study/evil-study").text


def test_the_study_table_paginates_and_sorts_in_sql(store):
    client = client_for(store)
    html = client.get("/study/wd-study?state=completed&order=value").text
    assert "page 1 of 1" in html and html.count('class="trial-row"') > 5
    first_value = tb.load_study("wd-study", storage=store).best_trial().number
    assert html.index(f">#{first_value}<") < html.index("</table>", html.index('class="trials"'))


def test_token_is_required_on_every_request_when_given(store):
    client = client_for(store, token=TOKEN)
    assert client.get("/").status_code == 401
    assert client.get("/study/wd-study").status_code == 401
    assert client.get("/?token=wrong-token-wrong-token").status_code == 401
    assert client.get("/", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    first = client.get(f"/?token={TOKEN}")
    cookie = first.cookies.get("tunebook_session")
    assert first.status_code == 200 and cookie and TOKEN not in cookie  # a derived session value, not the token
    assert client.get("/study/wd-study").status_code == 200  # the cookie carries it from here
    client.cookies.clear()
    client.cookies.set("tunebook_session", TOKEN)  # the token itself is no session
    assert client.get("/study/wd-study").status_code == 401
    other = client_for(store, token=TOKEN)  # another process: another key, the old session is void
    other.cookies.set("tunebook_session", cookie)
    assert other.get("/").status_code == 401


def test_cli_refuses_a_public_address_without_a_token(store, tmp_path):
    # an existing store: a read-only verb refuses a missing one first
    proc = run_cli("dashboard", "--storage", store, "--host", "0.0.0.0", cwd=tmp_path)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert proc.stderr.startswith("tunebook: error: --host: listening on 0.0.0.0") and "--token" in proc.stderr
    proc = run_cli("dashboard", "--storage", store, "--host", "0.0.0.0", "--token", "short", cwd=tmp_path)
    assert proc.returncode == 2 and "--token: is too short" in proc.stderr


def _other_local_address() -> str | None:
    try:
        out = subprocess.run(["hostname", "-I"], capture_output=True, text=True, timeout=5).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return None
    return next((a for a in out if ":" not in a and not a.startswith("127.")), None)


def test_cli_binds_loopback_by_default_on_a_port_it_reports(store, tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "tunebook", "dashboard", "--storage", store, "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()  # "tunebook dashboard on http://127.0.0.1:PORT/"
        assert line.startswith("tunebook dashboard on http://127.0.0.1:"), (line, proc.stderr.read() if proc.poll() is not None else "")
        port = int(line.rsplit(":", 1)[1].split("/")[0])
        assert port > 0
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        other = _other_local_address()
        if other is not None:
            with pytest.raises(OSError):
                socket.create_connection((other, port), timeout=1).close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)


# a real browser -------------------------------------------------------------------
class Server:
    """The dashboard under uvicorn in a thread, on a socket bound to port 0 (the kernel picks the port)."""

    def __init__(self, url: str, **options) -> None:
        import uvicorn

        from tunebook.dashboard import bind

        sock = bind("127.0.0.1", 0)
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(create_app(url, **options), log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline
            time.sleep(0.05)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@pytest.fixture(scope="module")
def shots() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="tunebook-dashboard-screenshots-"))
    print(f"\ndashboard screenshots: {folder}")
    return folder


def figures_drawn(page) -> list[bool]:
    script = "Array.from(document.querySelectorAll('div.figure')).map(d => d.querySelectorAll('.main-svg g.trace').length > 0)"
    try:
        page.wait_for_function(f"{script}.every(x => x) && {script}.length > 0", timeout=30000)
    except Exception:  # noqa: BLE001 - the assertion that follows says which figure did not draw
        pass
    return page.evaluate(script)


def test_click_through_the_notebook_in_a_browser(store, shots):
    sync_api = browser_or_skip()
    server = Server(store, refresh_seconds=0.5)
    errors: list[str] = []
    outside: list[str] = []
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
            page = browser.new_page(viewport={"width": 1300, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(server.base) else None)

            page.goto(server.base + "/")
            assert page.locator("table.studies").count() == 3  # one table per experiment
            assert "Does weight decay help?" in page.content()
            page.screenshot(path=str(shots / "1-notebook.png"), full_page=True)

            page.click("a.study-link:text('wd-study')")
            page.wait_for_url("**/study/wd-study")
            drawn = figures_drawn(page)
            assert drawn and all(drawn), drawn
            kinds = page.evaluate("Array.from(document.querySelectorAll('div.figure')).map(d => d.dataset.kind)")
            assert {"axis", "isolation", "curves", "sampled_enough"} <= set(kinds)
            assert page.locator(".finding").count() >= 1 and page.locator("tr.trial-row").count() == 16
            page.screenshot(path=str(shots / "2-study.png"), full_page=True)

            # best first by default (a min study: the lowest value), the best row marked
            best = tb.load_study("wd-study", storage=store).best_trial().number
            assert page.locator("tr.trial-row").first.get_attribute("data-number") == str(best)
            assert "best" in page.locator("tr.trial-row").first.get_attribute("class")
            page.evaluate("window.__same_page = true")
            page.click("th a[data-col='number']")  # sort by number, in SQL, in place
            page.wait_for_url("**order=number**")
            page.wait_for_function("document.querySelector('tr.trial-row').dataset.number === '0'")
            assert page.evaluate("window.__same_page") is True

            page.locator("a.trial-link").first.click()
            page.wait_for_url("**/trial/**")
            drawn = figures_drawn(page)
            assert drawn and all(drawn), drawn
            assert page.locator("table.params tr").count() >= 3 and "Reproduce" in page.content()
            page.screenshot(path=str(shots / "3-trial.png"), full_page=True)

            page.goto(server.base + "/compare?studies=wd-study,evil-study")
            drawn = figures_drawn(page)
            assert drawn and all(drawn)
            page.screenshot(path=str(shots / "4-compare.png"), full_page=True)

            page.goto(server.base + "/study/evil-study")
            figures_drawn(page)
            assert page.evaluate("typeof window.__pwned") == "undefined"  # the goal's <script> ran nothing
            assert EVIL in page.inner_text("p.goal")  # shown as text
            assert errors == [], errors
            page.goto(server.base + "/study/nope")
            assert "Not found" in page.content()
            browser.close()
    finally:
        server.stop()
    assert outside == [], f"the dashboard asked outside itself for {outside}"


def test_a_running_study_refreshes_without_reloading(store, shots):
    sync_api = browser_or_skip()
    server = Server(store, refresh_seconds=0.3)
    study = tb.load_study("live-study", storage=store)
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
            page = browser.new_page()
            page.goto(server.base + "/study/live-study")
            assert "completed 0" in page.inner_text("span.counts")
            page.evaluate("window.__same_page = true")
            record = study.storage.claim_trial("w", study.id)
            study.storage.write_metrics(record.id, "w", [(1, "val/error", 0.5), (2, "val/error", 0.25)])
            study.storage.finish_trial(record.id, "w", "completed", value=0.25, best_step=2)
            page.wait_for_function("document.querySelector('span.counts').innerText.includes('completed 1')", timeout=15000)
            assert page.evaluate("window.__same_page") is True  # updated in place, not reloaded
            assert page.locator("tr.trial-row td.state-completed").count() == 1
            page.screenshot(path=str(shots / "5-live.png"), full_page=True)
            browser.close()
    finally:
        server.stop()
