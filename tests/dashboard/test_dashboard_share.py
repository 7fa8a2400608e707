"""No figure offers to send anything to a third party: no "Share chart" (Chart Studio upload), no "Edit in
Chart Studio" link, no Plotly logo, in the dashboard, the HTML report and the Jupyter output, in a real
browser (Debian's Chromium through Playwright). The mode bar itself is there (zoom, PNG download)."""

from __future__ import annotations

import pytest

from test_dashboard import Server
from _browser import CHROMIUM, CHROMIUM_FLAGS, browser_or_skip
from tunebook.analysis import analyze
from tunebook.analysis.jupyter import report_html as jupyter_html
from tunebook.analysis.synthetic import exp_decay, write_study

pytest.importorskip("fastapi")
pytestmark = pytest.mark.slow

SPACE = {"scientific": {"wd": {"choice": [0.0, 0.1]}}, "nuisance": {"lr": {"min": 1e-4, "max": 1.0, "scale": "log"}}}
#: what a third-party control is called in this Plotly or an older one (titles) and where it points (links)
THIRD_PARTY = r"/share|chart studio|cloud|edit in|plotly\.com|plot\.ly/i"
MODEBAR = """(() => {
  const plots = Array.from(document.querySelectorAll('.js-plotly-plot'));
  const buttons = plots.flatMap(p => Array.from(p.querySelectorAll('.modebar-btn')));
  const titles = buttons.map(b => b.getAttribute('data-title') || '');
  const links = plots.flatMap(p => Array.from(p.querySelectorAll('a'))).map(a => a.getAttribute('href') || '');
  return {plots: plots.length, titles: titles, links: links,
          sendToCloud: plots.map(p => p._context && p._context.showSendToCloud)};
})()"""


def curve(params, steps, rng):
    val = exp_decay(steps, 0.05 + 0.1 * abs(params["lr"] - 0.01) + 0.01 * params["wd"], 1.0, 60)
    return {"val/error": val + 0.001 * rng.standard_normal(len(steps)), "train/loss": 2 * val}


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('share') / 'tunebook.db'}"
    write_study(url, "s", curve, space=SPACE, trials=12, goal="Does `wd` help?")
    return url


def modebar_of(page) -> dict:
    page.wait_for_function("document.querySelectorAll('.js-plotly-plot .modebar-btn').length > 0", timeout=30000)
    return page.evaluate(MODEBAR)


def assert_no_third_party(found: dict) -> None:
    import re

    assert found["plots"] > 0 and found["titles"], found  # the mode bar is drawn: there was something to look at
    assert any(re.search("zoom", t, re.I) for t in found["titles"]), found["titles"]
    pattern = re.compile(THIRD_PARTY[1:-2], re.I)
    assert not [t for t in found["titles"] if pattern.search(t)], found["titles"]
    assert not [h for h in found["links"] if pattern.search(h)], found["links"]
    assert all(v is False for v in found["sendToCloud"]), found["sendToCloud"]


def test_no_share_or_chart_studio_control_in_the_dashboard_report_and_jupyter(store, tmp_path):
    from tunebook import load_study

    study = load_study("s", storage=store)
    report = analyze(study)
    report_file = tmp_path / "report.html"
    report_file.write_text(report.to_html(), encoding="utf-8")
    notebook_file = tmp_path / "jupyter.html"
    notebook_file.write_text(f"<!DOCTYPE html><html><head><meta charset='utf-8'></head><body>{jupyter_html(report)}</body></html>",
                             encoding="utf-8")
    sync_api = browser_or_skip()
    server = Server(store)
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
            page = browser.new_page(viewport={"width": 1300, "height": 900})
            for url in (server.base + "/study/s", server.base + "/study/s/trial/0",
                        server.base + "/compare?study=s&trials=0,1", report_file.as_uri(), notebook_file.as_uri()):
                page.goto(url)
                assert_no_third_party(modebar_of(page))
            browser.close()
    finally:
        server.stop()
