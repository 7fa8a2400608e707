"""Staleness is judged by the store's clock, not each worker's (issue 22, item 3).

Real PostgreSQL and real worker processes: a second worker whose wall clock runs 120 s fast
(``time.time`` shifted in that process only) must not take a live worker's running trial as
stale (default ``--stale-after 60``). Before: it re-queued the trial (``lost_workers + 1``) and
the live worker lost its claim.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

import tunebook as tb
from conftest import ROOT
from tunebook.storage.sql import store_now

FAULTY = ROOT / "tests" / "_faulty.py"

FAST_CLOCK = ("import sys, time; real = time.time; time.time = lambda: real() + 120.0; "
              "from tunebook.cli import main; sys.exit(main(sys.argv[1:]))")


def worker(url: str, tmp_path, fast: bool = False) -> subprocess.Popen:
    head = [sys.executable, "-c", FAST_CLOCK] if fast else [sys.executable, "-m", "tunebook"]
    return subprocess.Popen([*head, "worker", "--storage", url, "--checkpoint-dir", str(tmp_path / "ckpt")],
                            env={**os.environ, "TB_STEP_DELAY": "0.1"}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_a_worker_whose_clock_runs_120_s_fast_never_requeues_a_live_trial(pg_server, tmp_path):
    url = pg_server.new_database()
    study = tb.create_study("skew", space=tb.SearchSpace(nuisance={"lr": tb.Float(0.1, 0.2)}),
                            objective=("val/error", "min"), trials=2, max_train_steps=60, storage=url,
                            train=f"{FAULTY}:slow_steps")
    live = worker(url, tmp_path)
    deadline = time.monotonic() + 300
    while not any(t.state == "running" and study.storage.get_metrics(t.id) for t in study.trials()):
        assert time.monotonic() < deadline and live.poll() is None, live.communicate()
        time.sleep(0.1)
    fast = worker(url, tmp_path, fast=True)  # its first claim scans for stale trials
    for proc in (fast, live):
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]
    trials = study.trials()
    assert [t.state for t in trials] == ["completed", "completed"]
    assert [(t.lost_workers, t.attempts) for t in trials] == [(0, 1), (0, 1)], trials


def test_heartbeats_are_stamped_by_the_stores_clock(storage_url):
    """The stamp is the store's time, whatever the claiming process's time.time says."""
    study = tb.create_study("stamp", space=tb.SearchSpace(nuisance={"lr": tb.Float(0.1, 0.2)}),
                            objective=("val/error", "min"), trials=1, max_train_steps=5, storage=storage_url)
    real = time.time
    try:
        time.time = lambda: real() + 3600.0  # this process's clock an hour fast
        record = study.storage.claim_trial("w", study.id)
        study.storage.heartbeat(record.id, "w")
    finally:
        time.time = real
    beat = study.storage.get_trial(record.id).heartbeat_at
    assert abs(beat - real()) < 60, beat - real()
    # judged by the same clock: fresh, not stale
    assert study.storage.requeue_stale(60.0, study.id) == {"requeued": 0, "failed": 0}
    assert "clock_timestamp" in store_now("postgresql") and "julianday" in store_now("sqlite")


@pytest.mark.slow
def test_after_an_outage_nothing_is_judged_dead_before_stale_after_has_passed(pg_server):
    """Before: once PostgreSQL came back, the first claim re-queued a live worker's trial (its heartbeat
    could not reach the store during the outage), counting it a lost worker."""
    import sqlalchemy as sa

    url = pg_server.new_database()
    study = tb.create_study("outage", space=tb.SearchSpace(nuisance={"lr": tb.Float(0.1, 0.2)}),
                            objective=("val/error", "min"), trials=1, max_train_steps=5, storage=url)
    judge = study.storage
    live = judge.claim_trial("live", study.id)
    engine = sa.create_engine(judge.url)
    with engine.begin() as conn:  # its last beat before the outage, as old as the outage was long
        conn.execute(sa.text("UPDATE tb_trials SET heartbeat_at = heartbeat_at - 30 WHERE id = :id"), {"id": live.id})
    engine.dispose()
    pg_server.down()
    try:
        with pytest.raises(tb.StorageUnavailable):
            judge.claim_trial("judge", study.id, stale_after=5.0)  # the judge meets the outage too
        time.sleep(6.0)  # an outage longer than stale_after: time alone must not make the live trial dead
    finally:
        pg_server.up()
    assert judge.claim_trial("judge", study.id, stale_after=5.0) is None  # back: not judged dead yet
    assert judge.get_trial(live.id).state == "running" and judge.get_trial(live.id).lost_workers == 0
    time.sleep(5.5)  # the live worker never beat again: now it is presumed dead, by the judge's own measure
    again = judge.claim_trial("judge", study.id, stale_after=5.0)
    assert again is not None and again.id == live.id and again.lost_workers == 1
