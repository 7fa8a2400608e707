"""The dashboard's study page shows the proposed next study (its changes, the findings behind them, the diff) and
the chain of rounds, on a real rings study (see _cases.py)."""

from __future__ import annotations

import html

import pytest
from _next_cases import build, optimizers

import tunebook as tb

fastapi = pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from tunebook.dashboard import create_app  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("next-loop")]


def test_the_study_page_shows_the_next_study_and_the_chain(tmp_path):
    url = f"sqlite:///{tmp_path / 'd.db'}"
    study = build({**optimizers("rings-page", trials=8), "seed": 1693594209}, url)  # SGD's rate in its range's top quarter
    proposal = tb.next_study(study)
    assert proposal.action == "widen"
    client = TestClient(create_app(url), base_url="http://127.0.0.1")
    page = html.unescape(client.get("/study/rings-page").text)
    assert "Next study" in page and proposal.decision in page
    assert "[still_improving]" in page and "search_space.conditional.optimizer=sgd.learning_rate" in page
    assert "+++ rings-page-n2 (next)" in page  # the diff
    assert "Rounds" not in page  # a study with no round before or after it has no chain to show
    tb.create_next(study, proposal)
    first = html.unescape(client.get("/study/rings-page").text)
    assert 'href="/study/rings-page-n2"' in first and "next: still_improving" in first
    second = html.unescape(client.get("/study/rings-page-n2").text)
    assert 'href="/study/rings-page"' in second
    assert "rings-page-n2 has not run yet: run it first." in second and "tunebook run rings-page-n2" in second
