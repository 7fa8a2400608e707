"""The dashboard's analysis cache: a study's analysis is computed once however many requests ask for it at
the same time, and a large study whose analysis moved keeps showing its last one while the new one is
computed in the background (its pages answer at once; the live page moves when the new one is ready)."""

from __future__ import annotations

import re
import threading
import time

import pytest

import tunebook as tb
import tunebook.dashboard.context as context

pytest.importorskip("fastapi")


def running_study(url: str, finished: int):
    study = tb.create_study("s", space=tb.SearchSpace(nuisance={"lr": tb.Float(1e-3, 1.0, "log")}),
                            objective=("val/error", "min"), trials=8, max_train_steps=5, storage=url)
    for _ in range(finished):
        finish(study)
    return study


def finish(study) -> None:
    record = study.storage.claim_trial("w", study.id)
    value = 1.0 / (record.number + 2)
    study.storage.write_metrics(record.id, "w", [(1, "val/error", 2 * value), (2, "val/error", value)])
    study.storage.finish_trial(record.id, "w", "completed", value=value, best_step=2)


class Spy:
    """``analyze`` as the dashboard calls it, counted by thread; a background computation waits for ``gate``."""

    def __init__(self, monkeypatch, delay: float = 0.0) -> None:
        self.real, self.delay = context.analyze, delay
        self.calls: list[str] = []
        self.gate = threading.Event()
        self.gate.set()
        monkeypatch.setattr(context, "analyze", self)

    def __call__(self, study):
        name = threading.current_thread().name
        self.calls.append(name)
        if name.startswith("tunebook-analysis-"):
            assert self.gate.wait(120)
        time.sleep(self.delay)  # long enough for a second request to arrive meanwhile
        return self.real(study)


def page_signature(html: str) -> str:
    return re.search(r'data-signature="([^"]*)"', html).group(1).replace("&#34;", '"')


def test_concurrent_requests_compute_one_analysis(sqlite_url, monkeypatch):
    from tunebook.dashboard import create_app

    study = running_study(sqlite_url, finished=3)
    spy = Spy(monkeypatch, delay=0.5)
    c = create_app(sqlite_url).state.ctx
    got = []
    threads = [threading.Thread(target=lambda: got.append(c.analysed(c.study("s"))[0])) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(spy.calls) == 1 and len(got) == 3 and got[0] is got[1] is got[2]
    assert study.name == "s"


def test_a_large_study_shows_its_last_analysis_while_the_new_one_is_computed(sqlite_url, monkeypatch):
    from fastapi.testclient import TestClient

    from tunebook.dashboard import create_app

    study = running_study(sqlite_url, finished=3)
    spy = Spy(monkeypatch)
    client = TestClient(create_app(sqlite_url, background_from=3), base_url="http://127.0.0.1")
    first = client.get("/study/s").text  # a study's first analysis: computed in the request
    old = page_signature(first)
    assert spy.calls == [spy.calls[0]] and not spy.calls[0].startswith("tunebook-analysis-")
    finish(study)
    spy.gate.clear()  # the background computation waits
    state = client.get("/api/study/s/state").json()
    assert state["analysed"] == old != state["signature"] and state["done"] is False
    page = client.get("/study/s").text  # answers at once, with the last analysis
    assert page_signature(page) == old and "completed 4" in page  # the counts are current
    assert [n for n in spy.calls if not n.startswith("tunebook-analysis-")] == spy.calls[:1]  # no request computed it
    spy.gate.set()
    deadline = time.monotonic() + 120
    while (state := client.get("/api/study/s/state").json())["analysed"] != state["signature"]:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert page_signature(client.get("/study/s").text) == state["signature"]
    assert len(spy.calls) == 2  # one background computation, however often the state was asked


def test_a_small_study_is_analysed_in_the_request(sqlite_url, monkeypatch):
    from fastapi.testclient import TestClient

    from tunebook.dashboard import create_app

    study = running_study(sqlite_url, finished=3)
    spy = Spy(monkeypatch)
    client = TestClient(create_app(sqlite_url), base_url="http://127.0.0.1")  # background from 2,000 trials
    client.get("/study/s")
    finish(study)
    state = client.get("/api/study/s/state").json()
    assert state["analysed"] == state["signature"]
    assert page_signature(client.get("/study/s").text) == state["signature"]
    assert len(spy.calls) == 2 and not any(n.startswith("tunebook-analysis-") for n in spy.calls)
