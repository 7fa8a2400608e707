"""The per-trial fast paths keep their guarantees: the one-statement claim, the metric rows written by
the driver (binary COPY on PostgreSQL), the outcome stored with the last points and the best objective
in one transaction, the periodic re-queue of stale trials, the worker's threads reused across trials."""

from __future__ import annotations

import math
import multiprocessing as mp
import threading

import numpy as np
import pytest
import sqlalchemy as sa

import tunebook as tb
from _races import gather
from tunebook.execution.loop import run_trial, worker_loop
from tunebook.storage import open_storage
from tunebook.storage.base import ClaimLost, MetricBatch, MetricRows
from tunebook.storage.sql import SQLStorage
from tunebook.trial import Trial, TrialThreads

SPACE = tb.SearchSpace(nuisance={"lr": tb.Float(1e-3, 1, "log")})


def make_study(url: str, name: str = "s", trials: int = 4) -> tb.Study:
    # the claim's semantics, not the replicate phase (which adds trials once the search ones finished)
    return tb.create_study(name, space=SPACE, objective=("val/error", "min"), trials=trials, max_train_steps=10,
                           storage=url, replicates=0)


def rows_of(storage, trial_id: int) -> list[tuple[int, str, float]]:
    return [(r.step, r.name, r.value) for r in storage.get_metrics(trial_id)]


def set_heartbeat(storage, trial_id: int, at: float) -> None:
    engine = sa.create_engine(storage.url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE tb_trials SET heartbeat_at = :at WHERE id = :id"), {"at": at, "id": trial_id})
    engine.dispose()


# --- the claim ---------------------------------------------------------------------------------


def _claim_from(url: str, worker: str, scoped: bool, start, out) -> None:
    storage = open_storage(url)
    study_id = storage.get_study("a").id if scoped else None
    start.wait(60)  # every process claims at the same moment
    while (t := storage.claim_trial(worker, study_id, stale_after=3600.0)) is not None:
        out.put((t.id, t.study_id, worker, t.worker_id, t.attempts, t.state))
    out.put(None)


def test_the_one_statement_claim_hands_each_trial_to_one_process(storage_url):
    make_study(storage_url, "a", trials=30)
    make_study(storage_url, "b", trials=20)  # unscoped claimers take these too
    ctx = mp.get_context("spawn")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_claim_from, args=(storage_url, f"p{i}", i % 2 == 0, start, out)) for i in range(4)]
    for p in procs:
        p.start()
    start.set()
    claims = gather(procs, out, timeout=300, join_timeout=60)
    ids = [c[0] for c in claims]
    assert len(ids) == len(set(ids)) == 50  # every trial once, none twice
    assert all(worker == owner and attempts == 1 and state == "running" for _, _, worker, owner, attempts, state in claims)
    storage = open_storage(storage_url)
    stored = {t.id: t.worker_id for s in ("a", "b") for t in storage.get_trials(storage.get_study(s).id)}
    assert stored == {c[0]: c[2] for c in claims}  # the store agrees with what each process was handed
    a = storage.get_study("a").id
    assert all(c[2] in ("p1", "p3") for c in claims if c[1] != a)  # a scoped claim never leaves its study


def test_claims_follow_study_and_number_order(storage_url):
    first, second = make_study(storage_url, "a", trials=2), make_study(storage_url, "b", trials=2)
    storage = first.storage
    assert [storage.claim_trial("w", second.id).number for _ in range(2)] == [0, 1]
    assert [(t.study_id, t.number) for t in (storage.claim_trial("w"), storage.claim_trial("w"))] == [
        (first.id, 0), (first.id, 1)]
    assert storage.claim_trial("w") is None


def test_stale_trials_are_requeued_periodically_and_whenever_nothing_is_pending(storage_url, monkeypatch):
    monkeypatch.setattr("tunebook.storage.sql.REQUEUE_EVERY", 3600.0)  # no periodic scan during the test
    study = make_study(storage_url, trials=3)
    storage = study.storage
    dead = storage.claim_trial("dead", study.id, stale_after=60.0)  # the first claim scans (nothing stale yet)
    set_heartbeat(storage, dead.id, 0.0)  # its worker died long ago
    # Pending trials first, without a scan on every claim...
    assert [storage.claim_trial("live", study.id, stale_after=60.0).number for _ in range(2)] == [1, 2]
    assert storage.get_trial(dead.id).state == "running"
    # ...and once nothing is pending, the scan runs before giving up: the dead worker's trial comes back.
    again = storage.claim_trial("live", study.id, stale_after=60.0)
    assert (again.id, again.worker_id, again.lost_workers, again.attempts) == (dead.id, "live", 1, 2)
    assert storage.claim_trial("live", study.id, stale_after=60.0) is None


def test_the_periodic_scan_requeues_while_trials_are_pending(storage_url, monkeypatch):
    monkeypatch.setattr("tunebook.storage.sql.REQUEUE_EVERY", 0.0)  # a scan before every claim
    study = make_study(storage_url, trials=3)
    storage = study.storage
    dead = storage.claim_trial("dead", study.id, stale_after=60.0)
    set_heartbeat(storage, dead.id, 0.0)
    again = storage.claim_trial("live", study.id, stale_after=60.0)  # trial 0 again, ahead of 1 and 2
    assert (again.id, again.lost_workers) == (dead.id, 1)


# --- metric rows -----------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [3, SQLStorage.COPY_FROM, 500])  # PostgreSQL: INSERT below COPY_FROM rows, COPY from it
def test_metric_rows_are_written_exactly(storage_url, count):
    study = make_study(storage_url)
    storage = study.storage
    t = storage.claim_trial("w", study.id)
    special = {0: math.nan, 1: math.inf, 2: -math.inf}
    checked = MetricRows([(s, "val/error", special.get(s, 0.5 + s)) for s in range(count)])
    storage.write_metrics(t.id, "w", checked)
    plain = [(np.int64(s), "train/loss", np.float32(s) / 4) for s in range(count)]  # converted by the store
    storage.write_metrics(t.id, "w", plain)
    got = rows_of(storage, t.id)
    assert len(got) == 2 * count
    assert [(s, v) for s, n, v in got if n == "train/loss"] == [(s, s / 4) for s in range(count)]
    curve = [(s, v) for s, n, v in got if n == "val/error"]
    assert [s for s, _ in curve] == list(range(count)) and all(type(s) is int for s, _ in curve)
    assert math.isnan(curve[0][1]) and curve[1][1] == math.inf and curve[2][1] == -math.inf
    assert [v for _, v in curve[3:]] == [0.5 + s for s in range(3, count)]
    assert storage.best_metric(t.id, "val/error", "min") == ((0.5 + 3, 3) if count > 3 else None)


@pytest.mark.parametrize("count", [2, 100])
def test_rows_of_a_worker_that_lost_its_trial_change_nothing(storage_url, count):
    study = make_study(storage_url)
    storage = study.storage
    t = storage.claim_trial("old", study.id)
    storage.release_worker_trials(["old"])
    storage.claim_trial("new", study.id)
    rows = MetricRows([(s, "val/error", 0.1) for s in range(count)])
    with pytest.raises(ClaimLost):
        storage.write_metrics(t.id, "old", rows)
    with pytest.raises(ClaimLost):
        storage.finish_trial(t.id, "old", "completed", metrics=MetricBatch(rows), objective=("val/error", "min"))
    with pytest.raises(ClaimLost):
        storage.release_trial(t.id, "old", metrics=MetricBatch(rows))
    assert rows_of(storage, t.id) == []
    assert storage.get_trial(t.id).worker_id == "new"


# --- the outcome with the last points ---------------------------------------------------------


def test_finish_stores_the_last_points_and_the_best_objective_in_one_go(storage_url):
    study = make_study(storage_url)
    storage = study.storage
    t = storage.claim_trial("w", study.id)
    storage.write_metrics(t.id, "w", [(1, "val/error", 0.5), (2, "val/error", 0.3)])
    last = MetricBatch(MetricRows([(2, "val/error", 0.2), (3, "val/error", 0.2), (4, "val/error", math.inf)]),
                       replace=[(2, "val/error")])
    assert storage.finish_trial(t.id, "w", "completed", metrics=last, objective=("val/error", "min"),
                                error="never logged") == ("completed", 0.2, 2)
    done = storage.get_trial(t.id)
    assert (done.state, done.value, done.best_step, done.error) == ("completed", 0.2, 2, None)
    assert [(s, v) for s, _, v in rows_of(storage, t.id)] == [(1, 0.5), (2, 0.2), (3, 0.2), (4, math.inf)]
    with pytest.raises(ClaimLost):  # finished: never changes
        storage.finish_trial(t.id, "w", "failed", error="late")


def test_finish_without_the_objective_fails_the_trial_with_the_given_error(storage_url):
    study = make_study(storage_url)
    storage = study.storage
    t = storage.claim_trial("w", study.id)
    last = MetricBatch(MetricRows([(1, "train/loss", 1.0), (2, "val/error", math.nan)]))
    assert storage.finish_trial(t.id, "w", "completed", metrics=last, objective=("val/error", "max"),
                                error="the objective was never logged") == ("failed", None, None)
    done = storage.get_trial(t.id)
    assert (done.state, done.value, done.error) == ("failed", None, "the objective was never logged")
    assert len(rows_of(storage, t.id)) == 2


def test_release_keeps_the_last_points_for_the_next_attempt(storage_url):
    study = make_study(storage_url)
    storage = study.storage
    t = storage.claim_trial("w", study.id)
    storage.release_trial(t.id, "w", metrics=MetricBatch(MetricRows([(1, "val/error", 0.4)])))
    assert storage.get_trial(t.id).state == "pending"
    assert rows_of(storage, t.id) == [(1, "val/error", 0.4)]


def test_a_held_close_writes_nothing_until_the_outcome(sqlite_url, tmp_path):
    study = make_study(sqlite_url)
    storage = study.storage
    record = storage.claim_trial("w", study.id)
    trial = Trial(study, record, storage, "w", tmp_path, flush_interval=3600.0)
    trial.log(1, **{"val/error": 0.5})
    trial.log(2, **{"val/error": 0.25})
    trial.close(hold=True)
    assert rows_of(storage, record.id) == []
    batch = trial.take_held_metrics()
    assert list(batch.rows) == [(1, "val/error", 0.5), (2, "val/error", 0.25)] and trial.take_held_metrics() is None
    storage.finish_trial(record.id, "w", "completed", metrics=batch, objective=("val/error", "min"))
    assert (storage.get_trial(record.id).value, len(rows_of(storage, record.id))) == (0.25, 2)


def test_a_trial_taken_over_while_it_ran_stores_nothing_of_its_end(sqlite_url, tmp_path):
    study = make_study(sqlite_url, trials=1)
    storage = study.storage
    record = storage.claim_trial("old", study.id)

    def train(trial):
        trial.log(1, **{"val/error": 0.5})
        storage.release_worker_trials(["old"])  # presumed dead while it runs...
        storage.claim_trial("new", study.id)  # ...and its trial taken over

    assert run_trial(study, record, train, "old", tmp_path, flush_interval=3600.0) == "lost"
    after = storage.get_trial(record.id)
    assert (after.state, after.worker_id) == ("running", "new") and rows_of(storage, record.id) == []


def _no_metric_writes(storage, monkeypatch) -> list[str]:
    """Make any write of metric points outside the outcome's transaction fail loudly."""
    calls: list[str] = []

    def refuse(*args, **kwargs):
        calls.append("write_metrics")
        raise AssertionError("metric points written in a transaction of their own")

    monkeypatch.setattr(storage, "write_metrics", refuse)
    monkeypatch.setattr(storage, "best_metric", lambda *a, **k: refuse())
    return calls


def test_the_worker_loop_stores_a_short_trials_points_with_its_outcome(sqlite_url, tmp_path, monkeypatch):
    study = make_study(sqlite_url, trials=3)
    calls = _no_metric_writes(study.storage, monkeypatch)

    def train(trial):
        for step in (1, 2, 3):
            trial.log(step, **{"val/error": trial.params["lr"] * step, "train/loss": 1.0 / step})

    assert worker_loop(study, train, tmp_path, flush_interval=3600.0) == {"completed": 3}
    assert calls == []
    for t in study.trials():
        assert (t.state, t.value, t.best_step) == ("completed", t.params["lr"], 1)
        assert len(rows_of(study.storage, t.id)) == 6


def test_a_failed_or_infeasible_trial_keeps_its_last_points(sqlite_url, tmp_path, monkeypatch):
    study = make_study(sqlite_url, trials=2)
    calls = _no_metric_writes(study.storage, monkeypatch)

    def train(trial):
        trial.log(1, **{"val/error": 0.5})
        if trial.number == 0:
            raise ValueError("a bug in the training code")
        trial.log(2, **{"val/error": float("nan")})

    assert worker_loop(study, train, tmp_path, flush_interval=3600.0) == {"failed": 1, "infeasible": 1}
    assert calls == []
    failed, infeasible = sorted(study.trials(), key=lambda t: t.number)
    assert failed.state == "failed" and "a bug in the training code" in failed.error
    assert infeasible.state == "infeasible" and "nan" in infeasible.infeasible_reason
    assert rows_of(study.storage, failed.id) == [(1, "val/error", 0.5)]
    assert rows_of(study.storage, infeasible.id)[0] == (1, "val/error", 0.5)


def test_an_objective_never_logged_names_the_held_metrics(sqlite_url, tmp_path):
    study = make_study(sqlite_url, trials=1)

    def train(trial):
        trial.log(1, **{"val/eror": 0.5})  # a typo, held until the outcome

    assert worker_loop(study, train, tmp_path, flush_interval=3600.0) == {"failed": 1}
    (t,) = study.trials()
    assert "did the spec mean objective.metric: val/eror?" in t.error
    assert rows_of(study.storage, t.id) == [(1, "val/eror", 0.5)]


def test_a_resumed_trial_that_logs_nothing_new_completes_with_its_stored_best(sqlite_url, tmp_path):
    study = make_study(sqlite_url, trials=1)
    storage = study.storage
    record = storage.claim_trial("first", study.id)
    storage.write_metrics(record.id, "first", [(1, "val/error", 0.25), (2, "val/error", 0.125)])
    storage.release_trial(record.id, "first")
    resumed = storage.claim_trial("second", study.id)
    assert resumed.attempts == 2
    assert run_trial(study, resumed, lambda trial: None, "second", tmp_path, flush_interval=3600.0) == "completed"
    after = storage.get_trial(record.id)
    assert (after.state, after.value, after.best_step) == ("completed", 0.125, 2)


def test_an_interrupted_trial_goes_back_with_its_last_points(sqlite_url, tmp_path):
    study = make_study(sqlite_url, trials=1)
    storage = study.storage
    record = storage.claim_trial("w", study.id)

    def train(trial):
        trial.log(1, **{"val/error": 0.5})
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_trial(study, record, train, "w", tmp_path, flush_interval=3600.0)
    after = storage.get_trial(record.id)
    assert after.state == "pending" and rows_of(storage, record.id) == [(1, "val/error", 0.5)]


# --- threads ---------------------------------------------------------------------------------------


def tunebook_threads() -> set[tuple[str, int]]:
    return {(t.name, t.ident) for t in threading.enumerate() if t.name.startswith("tunebook-") and t.is_alive()}


def test_a_worker_runs_all_its_trials_on_the_same_two_threads(sqlite_url, tmp_path):
    study = make_study(sqlite_url, trials=5)
    before = tunebook_threads()
    seen: list[set[tuple[str, int]]] = []

    def train(trial):
        seen.append(tunebook_threads() - before)
        trial.log(1, **{"val/error": trial.params["lr"]})

    done = worker_loop(study, train, tmp_path, flush_interval=0.05)
    assert done == {"completed": 5}
    assert len(seen) == 5 and all(s == seen[0] for s in seen)  # the same threads for every trial
    assert sorted(name for name, _ in seen[0]) == ["tunebook-flush", "tunebook-heartbeat"]
    assert tunebook_threads() - before == set()  # stopped with the loop
    assert all(t.state == "completed" and t.value == t.params["lr"] for t in study.trials())


def test_shared_threads_still_flush_and_heartbeat_each_trial(sqlite_url, tmp_path):
    study = make_study(sqlite_url, trials=2)
    storage = study.storage
    with TrialThreads(flush_interval=0.05, heartbeat_interval=0.01) as threads:
        for _ in range(2):
            record = storage.claim_trial("w", study.id)
            trial = Trial(study, record, storage, "w", tmp_path, flush_interval=0.05, threads=threads)
            trial.log(1, **{"val/error": 0.5})
            first = storage.get_trial(record.id).heartbeat_at
            for _ in range(6000):  # durable and beating without a flush or close from this thread
                if rows_of(storage, record.id) and storage.get_trial(record.id).heartbeat_at > first:
                    break
                threading.Event().wait(0.01)
            assert rows_of(storage, record.id) == [(1, "val/error", 0.5)]
            assert storage.get_trial(record.id).heartbeat_at > first
            trial.close()
            beats = trial._heartbeat.beats
            threading.Event().wait(0.05)
            assert trial._heartbeat.beats == beats  # closed: no beat for it any more
            storage.finish_trial(record.id, "w", "completed", value=0.5, best_step=1)


def test_an_outcome_the_store_refuses_is_stored_plain_then_without_its_points(sqlite_url, tmp_path, monkeypatch):
    """The store refuses the text (first try): a plain one-line error is stored with the points; refuses the
    points too (second try): the outcome is stored without them, saying so. Never a worker crash, never a lost trial."""
    from tunebook.errors import StorageError

    study = make_study(sqlite_url, trials=2)
    storage = study.storage
    real = storage.finish_trial
    calls: list[tuple[str | None, bool]] = []

    def picky(trial_id, worker_id, state, *, metrics=None, refuse=0, **values):
        calls.append((values.get("error"), metrics is not None))
        if len(calls) <= picky.refuse:
            raise StorageError("the store refused it")
        return real(trial_id, worker_id, state, metrics=metrics, **values)

    monkeypatch.setattr(storage, "finish_trial", picky)

    def train(trial):
        trial.log(1, **{"val/error": 0.5})
        raise ValueError("line one\nline two \u00e9\ud800")

    for refuse, kept_points in ((1, True), (2, False)):
        calls.clear()
        picky.refuse = refuse
        record = storage.claim_trial("w", study.id)
        assert run_trial(study, record, train, "w", tmp_path, flush_interval=3600.0) == "failed"
        after = storage.get_trial(record.id)
        assert after.state == "failed" and after.error.startswith("ValueError: line one")  # the exception's line, plain
        # points refused too: stored without them, and the trial says so (never dropped silently)
        assert (after.error == "ValueError: line one") is kept_points
        assert ("the store refused its last 1 metric point(s)" in after.error) is not kept_points
        assert "Traceback" in calls[0][0] and [points for _, points in calls][-1] is kept_points
        assert (rows_of(storage, record.id) == [(1, "val/error", 0.5)]) is kept_points
