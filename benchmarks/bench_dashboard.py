"""Server time of the dashboard on a 10,000-trial study, against optuna-dashboard.

The synthetic study of ``bench_analysis.py`` (10,000 trials x 200 evaluations
x 2 metrics) is written to SQLite. tunebook's dashboard answers in-process
(FastAPI's test client); the server time is its ``Server-Timing`` header:

- the studies table (``/``);
- the study page, first load (computes findings and figures) and again (cached);
- the trial table sorted by value, and its 100th page;
- one trial's page; the live-refresh state call;
- the explore page (parallel coordinates and importance; analysis cached);
- the study page in Chromium (Playwright, loopback HTTP), analysis cached:
  navigation until every figure is drawn; the explore page the same, and the
  time from its HTML (which carries the figures' data) having arrived to the
  parallel coordinates and the importance drawn.

optuna-dashboard (if installed) serves the same trials (params, values and the
objective's 200 intermediate values) from an Optuna RDB on SQLite; its study
page loads ``/api/studies/{id}``, timed over loopback HTTP.

Run: python benchmarks/bench_dashboard.py [--trials 10000] [--evals 200] [--skip-optuna]
Target: every page under 2 s of server time.
"""

from __future__ import annotations

import argparse
import socket
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_analysis import build  # noqa: E402


def server_ms(response) -> float:
    timing = response.headers["Server-Timing"]
    return float(timing.split("dur=")[1])


def bench_tunebook(db: Path, trials: int) -> dict[str, float]:
    from fastapi.testclient import TestClient

    from tunebook.dashboard import create_app

    client = TestClient(create_app(f"sqlite:///{db}"), base_url="http://127.0.0.1")
    out = {}
    for label, path in (
        ("studies table /", "/"),
        ("study page, first load", "/study/bench"),
        ("study page, cached", "/study/bench"),
        ("trials sorted by value", "/study/bench?order=value"),
        (f"trials page {min(100, trials // 50)}", f"/study/bench?order=value&page={min(100, trials // 50)}"),
        ("trials sorted by a hyperparameter (learning_rate)", "/study/bench?order=p.learning_rate"),
        ("trials as CSV", "/study/bench/trials.csv"),
        ("trial page", "/study/bench/trial/123"),
        ("live-refresh state", "/api/study/bench/state"),
        ("explore: parallel coordinates + importance", "/study/bench/explore"),
    ):
        response = client.get(path)
        assert response.status_code == 200, (path, response.status_code)
        out[label] = server_ms(response)
        print(f"tunebook dashboard {label}: {out[label]:.0f} ms server time (target < 2000 ms)", flush=True)
    return out


def bench_browser(db: Path) -> dict[str, float] | None:
    """Milliseconds from navigation to every figure of the study and explore pages drawn, in Chromium over
    loopback HTTP (software rendering: ``--disable-gpu``, so parcoords' WebGL runs on the CPU)."""
    import shutil

    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    chromium = shutil.which("chromium")
    if chromium is None:
        return None
    import uvicorn

    from tunebook.dashboard import create_app

    from tunebook.dashboard import bind

    sock = bind("127.0.0.1", 0)  # port 0: the kernel picks, the socket is handed to uvicorn
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(f"sqlite:///{db}"), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    # a Plotly figure is drawn once Plotly has its full data (parcoords on canvases, the others in SVG
    # traces); the explore page's parallel coordinates once explore.js has painted them
    drawn = ("(() => { const f = Array.from(document.querySelectorAll('div.figure'));"
             " const p = Array.from(document.querySelectorAll('div.parallel'));"
             " return f.length + p.length > 0 && p.every(d => d.dataset.painted) && f.every(d => d._fullData"
             " && (d.querySelector('.main-svg g.trace') || d.querySelector('canvas'))); })()")
    # from the page's data arriving (the HTML holds every figure's JSON) to every figure drawn: the explore
    # page's drawing stamps the time of its paint; a Plotly page is timed when the poll sees it drawn
    arrived = ("(() => { const end = performance.getEntriesByType('navigation')[0].responseEnd;"
               " const p = Array.from(document.querySelectorAll('div.parallel')).map(d => +d.dataset.painted);"
               " const f = document.querySelectorAll('div.figure').length;"
               " return (f ? performance.now() : Math.max(...p)) - end; })()")
    out = {}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=["--headless", "--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1300, "height": 900})
            for label, path in (("study page", "/study/bench"), ("explore page", "/study/bench/explore")):
                page.goto(f"http://127.0.0.1:{port}{path}", timeout=600_000)  # warm: the analysis cache and Plotly's file
                page.wait_for_function(drawn, timeout=600_000)
                start = time.perf_counter()
                page.goto(f"http://127.0.0.1:{port}{path}", timeout=600_000)
                page.wait_for_function(drawn, timeout=600_000, polling=50)
                out[label] = (time.perf_counter() - start) * 1e3
                # from the page's data arriving (the HTML holds every figure's JSON) to every figure drawn
                out[label + ", data arrived to drawn"] = page.evaluate(arrived)
            browser.close()
    finally:
        server.should_exit = True
        thread.join(timeout=30)
    return out


def bench_optuna_dashboard(db: Path, folder: Path) -> float | None:
    try:
        import optuna
        import optuna_dashboard
        from optuna.distributions import CategoricalDistribution, FloatDistribution
    except ImportError:
        return None
    import tunebook as tb

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = tb.load_study("bench", storage=f"sqlite:///{db}")
    dists = {"weight_decay": CategoricalDistribution([0.0, 1.0e-4, 1.0e-3, 1.0e-2]),
             "learning_rate": FloatDistribution(1e-4, 1.0, log=True), "beta1": FloatDistribution(0.8, 0.99)}
    frozen = []
    for t in study.trials():
        params = {k: t.params[k] for k in dists}
        if t.state == "completed":
            points = dict(study.metrics(t, ["val/error"]).get("val/error", []))
            frozen.append(optuna.trial.create_trial(params=params, distributions=dists, value=t.value, intermediate_values=points))
        else:
            frozen.append(optuna.trial.create_trial(params=params, distributions=dists, state=optuna.trial.TrialState.FAIL))
    storage = optuna.storages.RDBStorage(f"sqlite:///{folder}/optuna.db")
    ostudy = optuna.create_study(storage=storage, study_name="bench")
    ostudy.add_trials(frozen)
    with socket.socket() as probe:  # optuna-dashboard takes a port number, not a socket
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    thread = threading.Thread(target=optuna_dashboard.run_server, args=(storage,),
                              kwargs={"host": "127.0.0.1", "port": port}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=5).read()
            break
        except OSError:
            assert time.monotonic() < deadline
            time.sleep(0.2)
    start = time.perf_counter()
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies/{ostudy._study_id}", timeout=600).read()
    elapsed = time.perf_counter() - start
    assert len(body) > 1000
    return elapsed * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--evals", type=int, default=200)
    parser.add_argument("--skip-optuna", action="store_true")
    parser.add_argument("--skip-browser", action="store_true", help="no Chromium timing of the study page")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        db = folder / "bench.db"
        built = build(db, args.trials, args.evals)
        print(f"synthetic study: {args.trials} trials x {args.evals} evals x 2 metrics, written in {built:.1f}s")
        ours = bench_tunebook(db, args.trials)
        if not args.skip_browser:
            browser_ms = bench_browser(db)
            for label, ms in (browser_ms or {}).items():
                what = label if "arrived" in label else label + ", navigation to every figure drawn"
                print(f"tunebook dashboard {what} in Chromium (cached analysis): {ms:.0f} ms", flush=True)
        theirs = None if args.skip_optuna else bench_optuna_dashboard(db, folder)
    if theirs is not None:
        page = ours["study page, first load"]
        print(f"optuna-dashboard /api/studies/<id> (its study page's data): {theirs:.0f} ms")
        print(f"ratio optuna-dashboard / tunebook study page (first load): {theirs / page:.2f}x; "
              f"(cached): {theirs / ours['study page, cached']:.1f}x")
    elif not args.skip_optuna:
        print("optuna-dashboard is not installed: pip install optuna-dashboard to compare")


if __name__ == "__main__":
    main()
