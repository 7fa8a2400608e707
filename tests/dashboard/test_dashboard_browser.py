"""The dashboard as an exploration tool, in a real browser (Debian's Chromium through Playwright).

Hover content, click-through to the trial, sorting by a hyperparameter, the CSV download, the infeasible
strip of a maximize study, zoom kept across a live refresh, no horizontal overflow at 390 px, dark mode.
Screenshots go to a folder printed by the test (and to $TUNEBOOK_SHOTS when set).
"""

from __future__ import annotations

import csv
import io
import os
import re
import tempfile
from pathlib import Path

import numpy as np
import pytest

import tunebook as tb
from test_dashboard import Server
from _browser import chromium
from tunebook.analysis.synthetic import exp_decay, write_study

pytest.importorskip("fastapi")
pytestmark = pytest.mark.slow  # a real browser: 5-20 s a test on a busy 2-core machine

SPACE = {"scientific": {"wd": {"choice": [0.0, 0.1]}},
         "nuisance": {"learning_rate": {"min": 1e-4, "max": 1.0, "scale": "log"}, "beta1": {"min": 0.8, "max": 0.99}}}


def loss_curve(params, steps, rng):
    if params["learning_rate"] > 0.3:
        return "train/loss was nan at step 4"
    floor = 0.05 + 0.1 * abs(params["learning_rate"] - 0.01) + 0.01 * params["wd"]
    val = exp_decay(steps, floor, 1.0, 60) + 0.001 * rng.standard_normal(len(steps))
    return {"val/error": val, "train/loss": 2 * val}


def accuracy_curve(params, steps, rng):
    if params["learning_rate"] > 0.2:
        return "loss diverged (nan)"
    ceiling = 0.95 - 0.2 * abs(np.log10(params["learning_rate"]) + 2) / 2
    acc = ceiling - exp_decay(steps, 0.0, 0.8, 60) + 0.002 * rng.standard_normal(len(steps))
    return {"val/accuracy": acc}


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('dashboard-browser') / 'tunebook.db'}"
    write_study(url, "min-study", loss_curve, space=SPACE, trials=40, goal="Does `wd` help?", experiment="e")
    write_study(url, "max-study", accuracy_curve, space={"nuisance": {"learning_rate": {"min": 1e-4, "max": 1.0, "scale": "log"}}},
                trials=30, objective=("val/accuracy", "max"), goal="Best accuracy", experiment="e")
    live = tb.create_study("live-study", space=tb.SearchSpace(nuisance={"lr": tb.Float(1e-3, 1.0, "log")}),
                           objective=("val/error", "min"), trials=8, max_train_steps=5, storage=url, goal="still running")
    for i in range(4):
        finish(live, 0.5 - 0.05 * i)
    return url


def finish(study, value: float) -> int:
    record = study.storage.claim_trial("w", study.id)
    study.storage.write_metrics(record.id, "w", [(1, "val/error", value * 2), (2, "val/error", value)])
    study.storage.finish_trial(record.id, "w", "completed", value=value, best_step=2)
    return record.number


@pytest.fixture(scope="module")
def shots() -> Path:
    folder = Path(os.environ.get("TUNEBOOK_SHOTS") or tempfile.mkdtemp(prefix="tunebook-dashboard-browser-"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\ndashboard screenshots: {folder}")
    return folder


@pytest.fixture(scope="module")
def server(store):
    s = Server(store, refresh_seconds=0.3)
    yield s
    s.stop()


@pytest.fixture()
def browser():
    with chromium() as b:
        yield b


DRAWN = "(() => { const f = Array.from(document.querySelectorAll('div.figure'));" \
        " return f.length > 0 && f.every(d => d.querySelector('.main-svg g.trace')); })()"


def open_page(browser, url: str, **context):
    page = browser.new_context(viewport={"width": 1300, "height": 900}, **context).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(url)
    if "/compare" in url or "/study/" in url:
        page.wait_for_function(DRAWN, timeout=30000)
    page.errors = errors  # type: ignore[attr-defined]
    return page


def axis_figure(page, param: str) -> str:
    """The id of the axis figure of ``param``."""
    return page.evaluate(f"""Array.from(document.querySelectorAll('div.figure[data-kind=axis]'))
        .find(d => d.layout.xaxis2 ? d.layout.xaxis2.title.text === '{param}' : d.layout.xaxis.title.text === '{param}').id""")


def hover_point(page, figure_id: str, trace: int, index: int) -> str:
    """Move the mouse onto one drawn point; return the hover label's text."""
    box = page.evaluate(f"""(() => {{
        const div = document.getElementById('{figure_id}');
        const path = div.querySelectorAll('.scatterlayer .trace')[{trace}].querySelectorAll('path.point')[{index}];
        const r = path.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; }})()""")
    page.mouse.move(box[0], box[1])
    page.wait_for_selector(f"#{figure_id} .hoverlayer .hovertext", timeout=10000)
    return page.evaluate(f"Array.from(document.querySelectorAll('#{figure_id} .hoverlayer .hovertext text'))"
                         ".map(t => Array.from(t.querySelectorAll('tspan.line')).map(l => l.textContent).join('\\n')"
                         " || t.textContent).join('\\n')")


def test_hover_names_the_trial_and_a_click_opens_it(server, store, browser, shots):
    page = open_page(browser, server.base + "/study/min-study")
    fid = axis_figure(page, "learning_rate")
    page.locator(f"#{fid}").scroll_into_view_if_needed()
    text = hover_point(page, fid, 0, 3)
    number = int(re.search(r"#(\d+)", text).group(1))
    study = tb.load_study("min-study", storage=store)
    record = next(t for t in study.trials() if t.number == number)
    assert f"val/error {record.value:.4g}" in text and f"step {record.best_step}" in text
    for name in ("wd", "learning_rate", "beta1"):  # the varying hyperparameters, 4 significant digits
        assert f"{name} = " in text
    assert f"learning_rate = {record.params['learning_rate']:.4g}" in text
    for value in re.findall(r" = (\S+)", text):  # no 17-digit floats: 4 significant digits at most
        assert len(re.sub(r"e.*$|[^0-9]", "", value).lstrip("0")) <= 4, text
    page.screenshot(path=str(shots / "hover.png"))
    page.mouse.down()
    page.mouse.up()
    page.wait_for_url(f"**/study/min-study/trial/{number}", timeout=15000)
    page.wait_for_function(DRAWN, timeout=30000)
    # the trial page: the objective first, its best step marked
    assert page.evaluate("document.querySelector('div.figure').layout.title.text") == "val/error"
    marked = page.evaluate("document.querySelector('div.figure').data.map(t => t.name).filter(n => n.startsWith('best'))")
    assert marked and f"step {record.best_step}" in marked[0]
    page.screenshot(path=str(shots / "trial.png"), full_page=True)
    assert page.errors == []


def test_findings_link_to_their_trial_and_figure(server, browser):
    page = open_page(browser, server.base + "/study/min-study")
    refs = page.evaluate("Array.from(document.querySelectorAll('.finding a')).map(a => a.getAttribute('href'))")
    for href in refs:
        if href.startswith("#figure-"):
            assert page.locator(href).count() == 1
        else:
            assert re.fullmatch(r"/study/min-study/trial/\d+", href), href
    assert page.locator(".headline a").first.get_attribute("href").startswith("/study/min-study/trial/")


def test_sorting_by_a_hyperparameter_in_place_and_the_csv(server, store, browser, shots, tmp_path):
    page = open_page(browser, server.base + "/study/min-study")
    page.evaluate("window.__same_page = true")
    page.click("th a[data-col='p.learning_rate']")
    page.wait_for_url("**order=p.learning_rate**")
    page.wait_for_function("document.querySelector('th a[data-col=\"p.learning_rate\"]').textContent.includes('▲')")
    values = [float(v) for v in page.eval_on_selector_all("td.param[data-param=learning_rate]", "els => els.map(e => e.textContent)")]
    assert values == sorted(values) and len(values) == 40
    study = tb.load_study("min-study", storage=store)
    assert values[0] == float(f"{min(t.params['learning_rate'] for t in study.trials()):.4g}")
    page.click("th a[data-col='p.learning_rate']")  # again: descending
    page.wait_for_function("document.querySelector('th a[data-col=\"p.learning_rate\"]').textContent.includes('▼')")
    values = [float(v) for v in page.eval_on_selector_all("td.param[data-param=learning_rate]", "els => els.map(e => e.textContent)")]
    assert values == sorted(values, reverse=True)
    assert page.evaluate("window.__same_page") is True
    # filter by a choice, in place
    page.select_option("select[name='p.wd']", "0.1")
    page.click("form.filter-form button[type=submit]")
    page.wait_for_url("**p.wd=0.1**")
    wds = page.eval_on_selector_all("td.param[data-param=wd]", "els => els.map(e => e.textContent)")
    assert wds and set(wds) == {"0.1"}
    page.screenshot(path=str(shots / "table-sorted-filtered.png"), full_page=True)
    with page.expect_download() as info:
        page.click("a.csv-link")
    path = tmp_path / "trials.csv"
    info.value.save_as(path)
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    expected = [t for t in study.trials() if t.params["wd"] == 0.1]
    assert list(rows[0].keys()) == ["number", "state", "val/error", "best_step", *study.space.params, "infeasible_reason"]
    assert set(study.space.params) == {"wd", "learning_rate", "beta1"}
    assert sorted(int(r["number"]) for r in rows) == sorted(t.number for t in expected)
    by_number = {t.number: t for t in expected}
    for r in rows:
        t = by_number[int(r["number"])]
        assert float(r["learning_rate"]) == t.params["learning_rate"]  # full precision in the data
        assert (r["val/error"] == "") == (t.value is None)
        if t.value is not None:
            assert float(r["val/error"]) == t.value
    lrs = [float(r["learning_rate"]) for r in rows]
    assert lrs == sorted(lrs, reverse=True)  # the table's order


def test_tick_two_trials_to_compare(server, browser, shots):
    page = open_page(browser, server.base + "/study/min-study")
    ticks = page.locator("input.tick")
    ticks.nth(0).check()
    assert page.locator("button.compare-ticked").is_disabled()
    ticks.nth(1).check()
    page.click("button.compare-ticked")
    page.wait_for_url("**/compare?study=min-study&trials=**")
    page.wait_for_function(DRAWN, timeout=30000)
    assert page.evaluate("document.querySelector('div.figure').layout.title.text") == "val/error"
    page.screenshot(path=str(shots / "compare-trials.png"), full_page=True)
    page.goto(server.base + "/")
    page.locator("input.tick-study[value='min-study']").check()
    page.locator("input.tick-study[value='max-study']").check()
    page.click("button.compare-studies")
    page.wait_for_url("**/compare?baseline=min-study&candidate=max-study")
    page.wait_for_function(DRAWN, timeout=30000)
    page.screenshot(path=str(shots / "compare-studies.png"), full_page=True)


def test_infeasible_trials_have_their_own_strip_in_a_maximize_study(server, store, browser, shots):
    page = open_page(browser, server.base + "/study/max-study")
    fid = axis_figure(page, "learning_rate")
    traces = page.evaluate(f"document.getElementById('{fid}').data.map(t => [t.name, t.yaxis || 'y', t.y.length])")
    names = {name.split(" ")[0]: (axis, n) for name, axis, n in traces}
    study = tb.load_study("max-study", storage=store)
    bad = [t for t in study.trials() if t.state == "infeasible"]
    assert bad and names["infeasible"] == ("y2", len(bad))  # own axis: the strip
    assert names["best"][0] == "y" and names["completed"][0] == "y"
    best = study.best_trial()
    strip = page.evaluate(f"document.getElementById('{fid}').layout.yaxis2.title.text")
    assert strip == "infeasible"
    # the best star is drawn at its own value, and no infeasible marker shares its axis
    star_y = page.evaluate(f"document.getElementById('{fid}').data.find(t => t.name === 'best').y[0]")
    assert star_y == pytest.approx(best.value)
    page.locator(f"#{fid}").scroll_into_view_if_needed()
    text = hover_point(page, fid, 2, 0)  # the strip's trace is drawn third
    assert "infeasible: loss diverged (nan)" in text
    page.locator(f"#{fid}").screenshot(path=str(shots / "infeasible-strip-max.png"))
    assert page.errors == []


def test_zoom_is_kept_across_a_live_refresh(server, store, browser, shots):
    page = open_page(browser, server.base + "/study/live-study")
    fid = axis_figure(page, "lr")
    page.evaluate(f"document.getElementById('{fid}').__same_element = true")
    page.locator(f"#{fid}").scroll_into_view_if_needed()
    drag = page.locator(f"#{fid} .nsewdrag").first.bounding_box()
    x0, y0 = drag["x"] + drag["width"] * 0.2, drag["y"] + drag["height"] * 0.2
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(x0 + drag["width"] * 0.4, y0 + drag["height"] * 0.5, steps=8)
    page.mouse.up()
    page.wait_for_function(f"document.getElementById('{fid}').layout.xaxis.autorange === false")
    zoomed = page.evaluate(f"document.getElementById('{fid}').layout.xaxis.range")
    before = page.evaluate(f"document.getElementById('{fid}').data[0].y.length")
    study = tb.load_study("live-study", storage=store)
    finish(study, 0.2)
    page.wait_for_function("document.querySelector('span.counts').innerText.includes('completed 5')", timeout=15000)
    page.wait_for_function(f"document.getElementById('{fid}').data[0].y.length === {before + 1}", timeout=15000)
    assert page.evaluate(f"document.getElementById('{fid}').__same_element") is True  # updated in place (Plotly.react)
    assert page.evaluate(f"document.getElementById('{fid}').layout.xaxis.range") == pytest.approx(zoomed)
    assert page.inner_text("[data-live=updated]")
    page.screenshot(path=str(shots / "live-zoom-kept.png"), full_page=True)
    assert page.errors == []


def test_no_horizontal_overflow_at_390_px(server, browser, shots):
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=1, is_mobile=True)
    page = context.new_page()
    for name, path in (("notebook", "/"), ("study", "/study/min-study"), ("trial", "/study/min-study/trial/0"),
                       ("compare-studies", "/compare?baseline=min-study&candidate=max-study"),
                       ("compare-trials", "/compare?study=min-study&trials=0,1")):
        page.goto(server.base + path)
        if path != "/":
            page.wait_for_function(DRAWN, timeout=30000)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, (path, width)
        page.screenshot(path=str(shots / f"phone-{name}.png"), full_page=True)


def test_dark_mode_follows_the_system(server, browser, shots):
    page = open_page(browser, server.base + "/study/min-study", color_scheme="dark")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(22, 25, 29)"
    assert page.evaluate("document.querySelector('div.figure')._fullLayout.paper_bgcolor") == "#16191d"
    assert page.evaluate("document.querySelector('div.figure')._fullLayout.font.color") != "#2a3f5f"  # plotly_white's
    assert page.locator(".modebar-btn[data-title*='Chart Studio']").count() == 0
    assert page.locator("a.modebar-btn[href*='plotly']").count() == 0  # no logo
    page.screenshot(path=str(shots / "dark-study.png"), full_page=True)
    light = open_page(browser, server.base + "/study/min-study", color_scheme="light")
    assert light.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(255, 255, 255)"
