"""The HTML report in a real browser (Debian's Chromium driven by Playwright), offline."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from _browser import CHROMIUM, CHROMIUM_FLAGS, browser_or_skip
from tunebook.analysis import analyze
from tunebook.analysis.synthetic import exp_decay, write_study


def open_offline(page_url: str, tmp_path: Path, screenshot: str):
    """Load a page with every network request refused; return console errors and the page's figure count."""
    sync_api = browser_or_skip()
    errors: list[str] = []
    blocked: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))

        def refuse(route):
            blocked.append(route.request.url)
            route.abort()

        page.route("http*://**/*", refuse)
        page.goto(page_url)
        drawn = "Array.from(document.querySelectorAll('div.figure')).map(d => d.querySelectorAll('.main-svg g.trace').length > 0)"
        try:
            page.wait_for_function(f"{drawn}.every(x => x)", timeout=30000)
        except sync_api.TimeoutError:
            pass  # the assertion below says which figure did not draw
        rendered = page.evaluate(drawn)
        kinds = page.evaluate("Array.from(document.querySelectorAll('div.figure')).map(d => d.dataset.kind)")
        findings = page.evaluate("Array.from(document.querySelectorAll('.finding')).map(d => d.dataset.check)")
        page.screenshot(path=str(tmp_path / screenshot), full_page=True)
        browser.close()
    return errors, blocked, rendered, kinds, findings


def test_report_renders_offline_with_no_console_errors(tmp_path):
    def curve(params, steps, rng):
        if params["learning_rate"] > 0.3:
            return "train/loss was nan at step 3"
        floor = 0.05 + 0.1 * (abs(params["learning_rate"] - 0.01))
        val = exp_decay(steps, floor, 1.0, 60) + 0.001 * rng.standard_normal(len(steps))
        return {"val/error": val, "train/loss": 2 * val, "grad/norm": 1 + rng.random(len(steps))}

    study = write_study(
        f"sqlite:///{tmp_path / 'tunebook.db'}", "browser-report",
        curve, space={"scientific": {"wd": {"choice": [0.0, 0.1]}}, "nuisance": {"learning_rate": {"min": 1e-4, "max": 1.0, "scale": "log"}}},
        trials=20, goal="Does <b>wd</b> help? <script>window.__pwned = 1</script>",
    )
    report = analyze(study)
    path = report.save(tmp_path / "report.html")
    errors, blocked, rendered, kinds, findings = open_offline(path.as_uri(), tmp_path, "report.png")
    assert errors == [], errors
    assert blocked == [], f"the report asked the network for {blocked}"
    assert kinds == [f.kind for f in report.figures]
    assert all(rendered), dict(zip(kinds, rendered))
    assert findings == [f.check for f in report.findings]
    assert (tmp_path / "report.png").stat().st_size > 10_000
    html = path.read_text()
    assert "<script>window.__pwned" not in html and "&lt;script&gt;window.__pwned" in html


def test_report_headline_contents_download_dark_mode_and_phones(tmp_path):
    import base64
    import csv
    import io

    from tunebook.analysis.html import rich_text

    def curve(params, steps, rng):
        if params["learning_rate"] > 0.3:
            return "loss diverged"
        acc = 0.9 - 0.1 * abs(params["learning_rate"] - 0.01) - exp_decay(steps, 0.0, 0.5, 60)
        return {"val/accuracy": acc + 0.001 * rng.standard_normal(len(steps))}

    study = write_study(f"sqlite:///{tmp_path / 'tunebook.db'}", "report-max", curve,
                        space={"scientific": {"wd": {"choice": [0.0, 0.1]}},
                               "nuisance": {"learning_rate": {"min": 1e-4, "max": 1.0, "scale": "log"}}},
                        trials=24, objective=("val/accuracy", "max"), goal="Does `wd` help?")
    report = analyze(study)
    path = report.save(tmp_path / "report.html")
    text = path.read_text()
    assert "<meta name='viewport'" in text and "Goal:</b> Does <code>wd</code> help?" in text
    assert rich_text("set `lr` (trial #3)", lambda n: f"#trial-{n}") == \
        "set <code>lr</code> (<a class='trial-ref' href='#trial-3'>trial #3</a>)"
    sync_api = browser_or_skip()
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page(color_scheme="dark", viewport={"width": 390, "height": 844})
        page.route("http*://**/*", lambda route: route.abort())
        page.goto(path.as_uri())
        page.wait_for_function("Array.from(document.querySelectorAll('div.figure')).every(d => d.querySelector('.main-svg g.trace'))",
                               timeout=30000)
        missing = page.evaluate("Array.from(document.querySelectorAll('a[href^=\"#\"]')).map(a => a.getAttribute('href'))"
                                ".filter(h => !document.getElementById(h.slice(1)))")
        assert missing == []  # every contents entry, trial and figure link has its anchor
        assert page.locator("nav.toc a").count() >= 4 + len(report.figures)
        best = study.best_trial()
        assert page.locator(f"tr#trial-{best.number}.best").count() == 1
        assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(22, 25, 29)"
        assert page.evaluate("document.querySelector('div.figure')._fullLayout.paper_bgcolor") == "#16191d"
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        href = page.get_attribute("a.download", "href")
        page.screenshot(path=str(tmp_path / "report-phone-dark.png"), full_page=True)
        browser.close()
    rows = list(csv.DictReader(io.StringIO(base64.b64decode(href.split(",", 1)[1]).decode())))
    assert len(rows) == 24 and {"wd", "learning_rate", "val/accuracy"} <= set(rows[0])
    assert {r["state"] for r in rows} == {t.state for t in study.trials()}
    shots = os.environ.get("TUNEBOOK_SHOTS")
    if shots:
        shutil.copy(tmp_path / "report-phone-dark.png", Path(shots) / "report-phone-dark.png")
