"""The real browser for UI tests: Debian's Chromium driven by Playwright (its own browser download fails here)."""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import pytest

CHROMIUM = os.environ.get("TUNEBOOK_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def browser_or_skip():
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI") == "true":
            pytest.fail("Chromium is missing in CI: .ci/run should have installed it")
        pytest.skip("Chromium not found (apt-get install chromium)")
    playwright = pytest.importorskip("playwright.sync_api")
    return playwright


@contextmanager
def chromium() -> Iterator[Any]:
    """Debian's Chromium launched headless through Playwright (skipped where it is missing, failed in CI)."""
    sync_api = browser_or_skip()
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            browser.close()
