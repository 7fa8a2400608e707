"""Figures fill their boxes and follow them through window resizes and a phone's rotation: each drawing is
its box's size (wider or narrower), none leaves its box or covers another element (the next row's figures, the curve controls, the table's filter
row), in a real browser (Debian's Chromium through Playwright)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from test_dashboard import Server
from _browser import CHROMIUM, CHROMIUM_FLAGS, browser_or_skip
from tunebook.analysis.synthetic import exp_decay, write_study

pytest.importorskip("fastapi")
pytestmark = pytest.mark.slow

SPACE = {"scientific": {"wd": {"choice": [0.0, 0.1]}},
         "nuisance": {"lr": {"min": 1e-4, "max": 1.0, "scale": "log"}, "beta": {"min": 0.8, "max": 0.99}}}
#: what overlaps: each figure's drawing against its own box, and the boxes, curve controls, filter row and
#: headings against each other (rectangles of one pixel or more in common)
OVERLAPS = """(() => {
  const r = e => e.getBoundingClientRect();
  const meet = (a, b) => Math.min(a.right, b.right) - Math.max(a.left, b.left) >= 1 && Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top) >= 1;
  const out = [];
  const figures = Array.from(document.querySelectorAll('div.figure'));
  figures.forEach(f => {
    const box = r(f);
    f.querySelectorAll('svg.main-svg').forEach(svg => { const s = r(svg);
      if (s.left < box.left - 1 || s.right > box.right + 1 || s.top < box.top - 1 || s.bottom > box.bottom + 1)
        out.push(`${f.id}: drawing ${Math.round(s.width)}x${Math.round(s.height)} leaves its box ${Math.round(box.width)}x${Math.round(box.height)}`);
      if (Math.abs(s.width - f.clientWidth) > 3 || Math.abs(s.height - f.clientHeight) > 3)
        out.push(`${f.id}: drawing ${Math.round(s.width)}x${Math.round(s.height)} does not fill its box ${f.clientWidth}x${f.clientHeight}`); });
  });
  const items = Array.from(document.querySelectorAll('.figures > *, .curve-controls, form.filter-form, h2, table.trials'));
  for (let i = 0; i < items.length; i++) for (let j = i + 1; j < items.length; j++) {
    const a = items[i], b = items[j];
    if (a.contains(b) || b.contains(a)) continue;
    if (meet(r(a), r(b))) out.push(`${a.id || a.className || a.tagName} overlaps ${b.id || b.className || b.tagName}`);
  }
  return {problems: out, figures: figures.length};
})()"""
DRAWN = "Array.from(document.querySelectorAll('div.figure')).every(d => d.querySelector('.main-svg g.trace'))"


def curve(params, steps, rng):
    val = exp_decay(steps, 0.05 + 0.1 * abs(params["lr"] - 0.01) + 0.01 * params["wd"], 1.0, 60)
    return {"val/error": val + 0.001 * rng.standard_normal(len(steps)), "train/loss": 2 * val}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('layout') / 'tunebook.db'}"
    write_study(url, "s", curve, space=SPACE, trials=24, goal="Does `wd` help?")
    s = Server(url)
    yield s
    s.stop()


def settled(page) -> dict:
    """The overlaps once the figures have followed their boxes (Plotly resizes after the box settles)."""
    try:
        page.wait_for_function(f"{OVERLAPS}.problems.length === 0", timeout=15000, polling=250)
    except Exception:  # noqa: BLE001 - the assertion that follows lists what overlaps
        pass
    return page.evaluate(OVERLAPS)


@pytest.mark.parametrize("path", ["/study/s", "/study/s/trial/0", "/compare?study=s&trials=0,1,2"])
def test_no_figure_overlaps_anything_at_two_widths_and_after_resizes(server, path):
    shots = Path(os.environ.get("TUNEBOOK_SHOTS") or tempfile.mkdtemp(prefix="tunebook-layout-"))
    sync_api = browser_or_skip()
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.goto(server.base + path)
        page.wait_for_function(DRAWN, timeout=30000, polling=250)
        name = path.strip("/").replace("/", "-").replace("?", "-").replace("&", "-").replace("=", "-").replace(",", "-")
        for width, height in ((1440, 900), (1366, 768), (390, 844), (844, 390), (1440, 900)):  # down, a phone, rotated, back
            page.set_viewport_size({"width": width, "height": height})
            found = settled(page)
            assert found["figures"] > 0
            assert found["problems"] == [], (path, width, found["problems"][:5])
            heights = page.evaluate("Array.from(document.querySelectorAll('div.figure')).map(d => [d.getBoundingClientRect().height,"
                                    " d.querySelector('svg.main-svg').getBoundingClientRect().height])")
            assert all(abs(box - svg) <= 2 for box, svg in heights), heights  # each drawing fills its box
            page.screenshot(path=str(shots / f"layout-{name}-{width}x{height}.png"), full_page=True)
        browser.close()
