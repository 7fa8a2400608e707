"""Checkpoint disk use on the dashboard, as ``tunebook status`` shows it: the study page and the notebook's
row show the bytes, files and trials under the study's checkpoint folder, and follow it while the page
is open (no reload), in a real browser (Debian's Chromium through Playwright)."""

from __future__ import annotations

from pathlib import Path

import pytest

import tunebook as tb
from test_dashboard import Server
from _browser import CHROMIUM, CHROMIUM_FLAGS, browser_or_skip
from tunebook.checkpoints import checkpoint_dir, prune

pytest.importorskip("fastapi")


def running_study(url: str, name: str, finished: int):
    """A study with trials still pending (its page keeps polling) and ``finished`` completed."""
    study = tb.create_study(name, space=tb.SearchSpace(nuisance={"lr": tb.Float(1e-3, 1.0, "log")}),
                            objective=("val/error", "min"), trials=6, max_train_steps=5, storage=url)
    for i in range(finished):
        record = study.storage.claim_trial("w", study.id)
        study.storage.write_metrics(record.id, "w", [(1, "val/error", 1.0 - 0.1 * i)])
        study.storage.finish_trial(record.id, "w", "completed", value=1.0 - 0.1 * i, best_step=1)
    return study


def save(root: Path, study, number: int, name: str, size: int) -> None:
    """A checkpoint file where the runner puts trial ``number``'s (``<root>/<store id>/<study>/trial-NNNNN``)."""
    folder = checkpoint_dir(root, study.storage.store_id, study.name, number)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(b"\0" * size)


def expected(root: Path, study) -> str:
    used = prune.usage(checkpoint_dir(root, study.storage.store_id, study.name, 0).parent)
    return f"{prune.human(used.bytes)} in {used.files} files of {used.trials} trials"


def test_the_state_and_the_pages_carry_the_disk_use_from_the_given_folder(tmp_path):
    from fastapi.testclient import TestClient

    from tunebook.dashboard import create_app

    url = f"sqlite:///{tmp_path / 'tunebook.db'}"
    study = running_study(url, "s", finished=2)
    elsewhere = tmp_path / "ckpts"
    save(elsewhere, study, 0, "step-10.pt", 3_000_000)
    save(elsewhere, study, 1, "step-10.pt", 1_000_000)
    default = TestClient(create_app(url), base_url="http://127.0.0.1")
    assert default.get("/api/study/s/state").json()["disk"] == {"s": "none"}  # nothing beside the SQLite file
    client = TestClient(create_app(url, checkpoint_dir=elsewhere), base_url="http://127.0.0.1")
    assert client.get("/api/study/s/state").json()["disk"] == {"s": "4.0 MB in 2 files of 2 trials"}
    assert client.get("/api/notebook/state").json()["disk"] == {"s": "4.0 MB in 2 files of 2 trials"}
    assert '<span data-disk="s">4.0 MB in 2 files of 2 trials</span>' in client.get("/study/s").text
    assert '<td class="disk" data-disk="s">4.0 MB in 2 files of 2 trials</td>' in client.get("/").text


@pytest.mark.slow
def test_the_study_page_and_the_notebook_follow_the_disk_use_live(tmp_path):
    url = f"sqlite:///{tmp_path / 'tunebook.db'}"
    study = running_study(url, "watched", finished=2)
    other = running_study(url, "other", finished=1)
    root = tmp_path / "tunebook_checkpoints"  # the runner's default: beside the SQLite file
    save(root, other, 0, "best.pt", 700_000)
    server = Server(url, refresh_seconds=0.3)
    sync_api = browser_or_skip()
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
            page = browser.new_page(viewport={"width": 1300, "height": 900})
            page.goto(server.base + "/study/watched")
            cell = '[data-disk="watched"]'
            assert page.text_content(cell) == "none"
            page.evaluate("window.notReloaded = true")
            save(root, study, 0, "step-00005.pt", 1_200_000)
            save(root, study, 0, "step-00010.pt", 1_200_000)
            save(root, study, 1, "step-00005.pt", 300_000)
            want = expected(root, study)
            assert want == "2.7 MB in 3 files of 2 trials"
            page.wait_for_function(f"document.querySelector('{cell}').textContent === '{want}'", timeout=30000)
            assert page.evaluate("window.notReloaded === true")
            assert page.get_attribute(".disk", "title") == str(root / study.storage.store_id / "watched")

            page.goto(server.base + "/")
            assert page.text_content(cell) == want
            assert page.text_content('[data-disk="other"]') == "700.0 kB in 1 files of 1 trials"
            page.evaluate("window.notReloaded = true")
            (checkpoint_dir(root, study.storage.store_id, study.name, 0) / "step-00005.pt").unlink()  # pruned
            want = expected(root, study)
            assert want == "1.5 MB in 2 files of 2 trials"
            page.wait_for_function(f"document.querySelector('{cell}').textContent === '{want}'", timeout=30000)
            assert page.evaluate("window.notReloaded === true")
            browser.close()
    finally:
        server.stop()
