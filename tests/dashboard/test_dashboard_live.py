"""Pages that watch a real run, in a real browser (Debian's Chromium through Playwright).

A study runs in another process (``tunebook.run`` over ``_workloads.slow_curve``: a point every 0.2 s) while
the study page, the notebook and a trial's page are open. The running trial's curve grows on the study page
without a reload, the figure set stays the one a fresh load shows as trials complete (figures matched by id,
not position), the counts follow on every page, the trial page follows its trial, and once the study is done
its page stops polling. Screenshots go to a folder the test prints (or $TUNEBOOK_SHOTS).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import tunebook as tb
from test_dashboard import Server
from _browser import CHROMIUM, CHROMIUM_FLAGS, browser_or_skip

pytest.importorskip("fastapi")
pytestmark = pytest.mark.slow

TESTS = Path(__file__).resolve().parents[1]
TRIALS, STEPS = 4, 40  # 40 points 0.2 s apart: about 8 s a trial
FIGURE_IDS = "Array.from(document.querySelectorAll('#figures div.figure')).map(d => d.id)"
RUNNING_POINTS = """(() => { const d = document.getElementById('figure-running');
  return d && d.data ? d.data.filter(t => t.mode === 'lines').map(t => t.x.length) : null; })()"""


def start_run(url: str, folder: Path) -> subprocess.Popen:
    code = ("import tunebook as tb, _workloads as w; "
            f"tb.run(tb.load_study('watched', storage={url!r}), w.slow_curve, workers=0, progress=False, "
            f"checkpoint_dir={str(folder / 'ckpt')!r})")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def fresh_ids(page, url: str) -> list[str]:
    """The figure ids a fresh load of the study page shows now."""
    html = page.request.get(url).text()
    section = html[html.index('id="figures"'):html.index('id="trials-section"')]
    return re.findall(r'<div class="figure" id="([^"]+)"', section)


def same_figures(page, url: str, tries: int = 60) -> list[str]:
    """Wait until the live page's figures are those of a fresh load (both read again each try: the run goes on)."""
    for _ in range(tries):
        ids, expected = page.evaluate(FIGURE_IDS), fresh_ids(page, url)
        if ids == expected:
            return ids
        page.wait_for_timeout(500)
    raise AssertionError(f"the live page shows {ids}, a fresh load {expected}")


def test_a_running_study_is_watched_live(tmp_path):
    url = f"sqlite:///{tmp_path / 'tunebook.db'}"
    tb.create_study("watched", space=tb.SearchSpace(scientific={"wd": tb.Choice([0.0, 0.1])},
                                                    nuisance={"lr": tb.Float(1e-3, 1.0, "log")}),
                    objective=("val/error", "min"), trials=TRIALS, max_train_steps=STEPS, storage=url, goal="Does `wd` help?")
    shots = Path(os.environ.get("TUNEBOOK_SHOTS") or tempfile.mkdtemp(prefix="tunebook-live-"))
    shots.mkdir(parents=True, exist_ok=True)
    print(f"\nlive screenshots: {shots}")
    sync_api = browser_or_skip()
    server = Server(url, refresh_seconds=0.5)
    run = None
    study_url = server.base + "/study/watched"
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
            def window():  # each page in its own context: a page behind another gets no animation frames
                return browser.new_context(viewport={"width": 1300, "height": 900}).new_page()

            page = window()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(study_url)
            page.evaluate("window.__same_page = true")
            # the running trial's curve grows, with no reload (the page records what its running figure shows)
            page.evaluate("""window.__running = {}; setInterval(() => { const d = document.getElementById('figure-running');
                (d && d.data ? d.data : []).filter(t => t.mode === 'lines').forEach(t => { const seen = window.__running[t.customdata[0]] || [];
                  if (seen[seen.length - 1] !== t.x.length) seen.push(t.x.length); window.__running[t.customdata[0]] = seen; }); }, 100)""")
            notebook = window()
            notebook.goto(server.base + "/")
            # the last trial's page, open before the trial starts: it records the lengths of its curve it shows
            trial = window()
            trial.goto(f"{study_url}/trial/{TRIALS - 1}")
            trial.evaluate("""window.__seen = []; setInterval(() => { const d = document.querySelector('div.figure');
                const n = d && d.data ? d.data[0].x.length : 0; if (window.__seen[window.__seen.length - 1] !== n) window.__seen.push(n); }, 100)""")
            run = start_run(url, tmp_path)  # every page open and recording: the run starts

            page.wait_for_function(f"(() => {{ const n = {RUNNING_POINTS}; return n && n.length === 1 && n[0] >= 3; }})()",
                                   timeout=60000, polling=250)
            page.screenshot(path=str(shots / "running-curve.png"), full_page=True)

            # two trials complete: the figures are the ones a fresh load shows, each drawn
            page.wait_for_function("/completed [2-9]/.test(document.querySelector('span.counts').innerText)", timeout=120000, polling=250)
            same_figures(page, study_url)
            empty = page.evaluate("Array.from(document.querySelectorAll('#figures div.figure'))"
                                  ".filter(d => !d.data || d.data.every(t => !(t.x || t.y || t.median || []).length)).map(d => d.id)")
            assert empty == [], empty
            page.screenshot(path=str(shots / "study-two-completed.png"), full_page=True)
            notebook.wait_for_function("document.querySelector('[data-live=notebook]').innerText.match(/[2-4] \\/ 0 \\/ 0 \\/ 4/)",
                                       timeout=60000, polling=250)

            # the run ends: the page shows every trial, the figure set is right, polling stops
            assert run.wait(timeout=300) == 0, run.stdout.read().decode()[-2000:]
            page.wait_for_function(f"document.querySelector('span.counts').innerText.includes('completed {TRIALS}')", timeout=30000, polling=250)
            page.wait_for_function("document.getElementById('study').dataset.done === '1'", timeout=30000, polling=250)
            ids = same_figures(page, study_url, tries=1)
            assert [i for i in ids if i.startswith("figure-curves")] and "figure-best_steps" in ids
            best_steps = page.evaluate("document.getElementById('figure-best_steps').data[0].x.length")
            assert best_steps == TRIALS
            assert page.locator("#running-section").is_hidden()
            polls: list[str] = []
            page.on("request", lambda r: polls.append(r.url) if "/api/" in r.url else None)
            page.wait_for_timeout(2000)  # four poll intervals
            assert polls == []
            assert page.evaluate("window.__same_page") is True  # never reloaded
            grew = {n: seen for n, seen in page.evaluate("window.__running").items() if len(seen) >= 3}
            assert grew and all(seen == sorted(seen) for seen in grew.values()), page.evaluate("window.__running")
            # the trial page followed its trial: its curve appeared, grew while it ran, and it shows it completed
            trial.wait_for_function("document.querySelector('[data-live=trial-head]').innerText.includes('completed')",
                                    timeout=60000, polling=250)
            seen = trial.evaluate("window.__seen")
            assert seen[0] == 0 and len([n for n in seen if 0 < n < STEPS]) >= 2 and seen[-1] == STEPS, seen
            assert trial.evaluate("window.__seen") == seen  # done: no more redraws
            notebook.wait_for_function("document.querySelector('[data-live=notebook]').innerText.includes('4 / 0 / 0 / 4')",
                                       timeout=30000, polling=250)
            notebook.screenshot(path=str(shots / "notebook-done.png"), full_page=True)
            page.screenshot(path=str(shots / "study-done.png"), full_page=True)
            assert errors == []
            browser.close()
    finally:
        if run is not None and run.poll() is None:
            run.kill()
        server.stop()
