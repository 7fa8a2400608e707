"""The explore page in a real browser (Debian's Chromium through Playwright): the parallel coordinates are
drawn as one SVG path per colour and hundred trials, every completed trial exactly once in its group's colour
and ending at its objective value; the importance names its method and puts the deciding hyperparameter
first; the page loads no Plotly; the drawing follows its box through a resize. Speed is measured in
benchmarks/bench_dashboard.py, never here."""

from __future__ import annotations

import math

import pytest

from test_dashboard import Server
from _browser import chromium
from tunebook.analysis.data import load
from tunebook.analysis.figures import group_colors
from tunebook.analysis.synthetic import exp_decay, write_study

pytest.importorskip("fastapi")
pytestmark = pytest.mark.slow

GROUPED = {"scientific": {"wd": {"choice": [0.0, 0.01, 0.1]}},
           "nuisance": {"lr": {"min": 1e-4, "max": 1.0, "scale": "log"}, "idle": {"min": 0.0, "max": 1.0}}}
#: long names and groups: at 390 px the legend wraps and the axis names must wrap between their axes
WIDE = {"scientific": {"weight_decay_of_the_optimizer": {"choice": [0.0, 0.0001, 0.001, 0.01]}},
        "nuisance": {"learning_rate_of_the_optimizer": {"min": 1e-4, "max": 1.0, "scale": "log"},
                     "beta1_of_adam": {"min": 0.8, "max": 0.99}, "label_smoothing": {"min": 0.0, "max": 0.2}}}
PLAIN = {"nuisance": {"lr": {"min": 1e-4, "max": 1.0, "scale": "log"}, "idle": {"min": 0.0, "max": 1.0}}}


def loss(params, steps, rng):
    lr = params.get("lr", params.get("learning_rate_of_the_optimizer"))
    floor = 0.05 + 0.2 * abs(math.log10(lr) + 2) + 0.02 * params.get("wd", 0) + 0.01 * rng.standard_normal()
    return {"val/error": exp_decay(steps, floor, 1.0, 60)}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('explore') / 'tunebook.db'}"
    write_study(url, "grouped", loss, space=GROUPED, trials=330)  # 110 a group: two paths each
    write_study(url, "plain", loss, space=PLAIN, trials=60)
    write_study(url, "wide", loss, space=WIDE, trials=40)
    s = Server(url)
    s.url = url
    yield s
    s.stop()


@pytest.fixture()
def page():
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        page.errors = []
        page.on("pageerror", lambda e: page.errors.append(str(e)))
        yield page


#: per path: its group, stroke, and each line's points as [x, y] in the 1000x1000 viewBox
LINES = """Array.from(document.querySelectorAll('#figure-parallel svg.pc-lines path')).map(p => ({
  group: +p.dataset.group, stroke: p.getAttribute('stroke'),
  lines: p.getAttribute('d').split('M').filter(Boolean).map(run => run.split('L').map(xy => xy.trim().split(' ').map(Number)))}))"""


def test_every_trial_is_one_line_in_its_groups_colour_ending_at_its_value(server, page):
    from tunebook.study import load_study

    study = load_study("grouped", storage=server.url)
    data = load(study)
    colors = group_colors(data)
    page.goto(server.base + "/study/grouped/explore")
    page.wait_for_selector("#figure-parallel[data-drawn]", timeout=30000)
    paths = page.evaluate(LINES)
    completed = [t for t in data.completed if t.value is not None]
    labels = list(colors.colors)
    # one path per colour and hundred trials, never one element per trial
    assert len(paths) == sum(math.ceil(sum(colors.label_of[t.number] == g for t in completed) / 100) for g in labels)
    for label in labels:
        members = [t for t in completed if colors.label_of[t.number] == label]
        drawn = [line for p in paths if labels[p["group"]] == label for line in p["lines"]]
        assert {p["stroke"] for p in paths if labels[p["group"]] == label} == {colors.colors[label]}
        assert len(drawn) == len(members)
        assert all(len(line) == 4 and [x for x, _ in line] == [0, 333, 667, 1000] for line in drawn)
        # the objective's axis: bottom is the lowest value in the study, top the highest
        lo, hi = min(t.value for t in completed), max(t.value for t in completed)
        ends = sorted(1000 - line[-1][1] for line in drawn)
        expected = sorted(round((t.value - lo) / (hi - lo) * 1000) for t in members)
        assert ends == pytest.approx(expected, abs=1.01)
    # the legend names each group in its colour with its count
    keys = page.evaluate("Array.from(document.querySelectorAll('#figure-parallel .pc-key')).map(k => k.textContent.trim())")
    assert keys == [f"■ {label} ({sum(colors.label_of[t.number] == label for t in completed)})" for label in labels]
    axes = page.evaluate("Array.from(document.querySelectorAll('#figure-parallel .pc-axis-label')).map(a => a.textContent)")
    assert axes[-1] == "val/error" and "lr (log)" in axes and "wd" in axes
    # importance: its method named, the hyperparameter that decides the objective first
    caption = page.text_content("#figure-importance caption")
    assert "main-effect share of the objective's ranks" in caption and "330 trials" in caption
    rows = page.evaluate("Array.from(document.querySelectorAll('#figure-importance tr[data-param]')).map(r => r.dataset.param)")
    assert rows[0] == "lr" and set(rows) == {"lr", "wd", "idle"}
    assert page.evaluate("typeof window.Plotly") == "undefined"  # the plain view loads no Plotly
    assert page.errors == []


def test_without_groups_lines_are_coloured_by_fifth_with_the_best_on_top(server, page):
    page.goto(server.base + "/study/plain/explore")
    page.wait_for_selector("#figure-parallel[data-drawn]", timeout=30000)
    paths = page.evaluate(LINES)
    keys = page.evaluate("Array.from(document.querySelectorAll('#figure-parallel .pc-key')).map(k => k.textContent.trim())")
    assert keys[0] == "■ best by val/error (12)" and len(keys) == 5
    assert paths[-1]["group"] == 0  # drawn last: on top
    best = sorted(1000 - line[-1][1] for line in paths[-1]["lines"])
    others = [1000 - line[-1][1] for p in paths[:-1] for line in p["lines"]]
    assert len(best) == 12 and max(best) <= min(others)  # minimize: the best fifth ends lowest
    assert page.errors == []


def test_the_drawing_follows_its_box_through_a_resize(server, page):
    page.goto(server.base + "/study/wide/explore")
    page.wait_for_selector("#figure-parallel[data-drawn]", timeout=30000)
    inside = """(() => { const box = document.getElementById('figure-parallel').getBoundingClientRect();
      const plot = document.querySelector('#figure-parallel .pc-plot').getBoundingClientRect();
      const svg = document.querySelector('#figure-parallel svg.pc-lines').getBoundingClientRect();
      const labels = Array.from(document.querySelectorAll('#figure-parallel .pc-axis-label, #figure-parallel .pc-tick'))
        .map(l => l.getBoundingClientRect());
      const names = Array.from(document.querySelectorAll('#figure-parallel .pc-axis-label')).map(l => l.getBoundingClientRect());
      const legend = document.querySelector('#figure-parallel .pc-legend').getBoundingClientRect();
      const meet = (a, b) => Math.min(a.right, b.right) - Math.max(a.left, b.left) >= 1 && Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top) >= 1;
      return {fills: Math.abs(svg.width - plot.width) < 1 && Math.abs(svg.height - plot.height) < 1, width: box.width,
              outside: labels.filter(l => l.left < box.left - 1 || l.right > box.right + 1 || l.bottom > box.bottom + 1).length,
              names: names.filter((a, i) => names.some((b, j) => j > i && meet(a, b))).length,
              legend: meet(legend, plot)}; })()"""
    wide = page.evaluate(inside)
    page.set_viewport_size({"width": 390, "height": 800})  # a phone: the legend wraps, the axis names too
    page.wait_for_function(f"{inside}.width < {wide['width'] - 100}", timeout=10000)
    # the names re-fit in a ResizeObserver callback, delivered in the rendering step of the frame whose layout
    # changed: measured after two more frames, that step has run however busy the machine is
    narrow = page.evaluate(f"new Promise(done => requestAnimationFrame(() => requestAnimationFrame(() => done({inside}))))")
    for seen in (wide, narrow):
        assert seen["fills"] and seen["outside"] == seen["names"] == 0 and not seen["legend"], (wide, narrow)


def test_the_interactive_view_still_draws_plotlys_parcoords(server, page):
    page.goto(server.base + "/study/grouped/explore?view=interactive")
    page.wait_for_function("document.getElementById('figure-parallel') && document.getElementById('figure-parallel')._fullData",
                           timeout=120000)
    assert page.evaluate("document.getElementById('figure-parallel')._fullData[0].type") == "parcoords"
    assert page.errors == []
