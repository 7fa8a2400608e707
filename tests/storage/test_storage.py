"""One storage suite, run against SQLite and PostgreSQL (a real throwaway server)."""

from __future__ import annotations

import math
import multiprocessing as mp
import threading
import time

import pytest
import sqlalchemy as sa

import tunebook as tb
from _races import gather, race
from tunebook.storage import open_storage
from tunebook.storage.base import CheckpointRecord, ClaimLost
from tunebook.storage.sql import SCHEMA_VERSION

CROSSED = tb.SearchSpace(scientific={"wd": tb.Choice([0.0, 0.1])}, nuisance={"lr": tb.Float(1e-3, 1, "log")})
SPACE = tb.SearchSpace(nuisance={"lr": tb.Float(1e-3, 1, "log")})


def make_study(url: str, name: str = "s", trials: int = 8, space: tb.SearchSpace = SPACE) -> tb.Study:
    # replicates=0: every trial of the budget is stored at creation (the storage contract's tests claim them all)
    return tb.create_study(name, space=space, objective=("val/error", "min"), trials=trials, max_train_steps=10, storage=url,
                           replicates=0)


def test_study_and_trials_round_trip(storage_url):
    study = make_study(storage_url, trials=6, space=CROSSED)
    again = tb.load_study("s", storage=storage_url)
    assert again.record.spec == study.record.spec
    assert [t.params for t in again.trials()] == [t.params for t in study.trials()]
    assert [t.number for t in again.trials()] == list(range(6))
    assert all(t.state == "pending" for t in again.trials())
    assert again.record.generator_version.startswith("tunebook-design/1")


def test_schema_version_is_recorded_and_newer_stores_are_refused(storage_url):
    storage = open_storage(storage_url)
    engine = sa.create_engine(storage.url)
    with engine.begin() as conn:
        assert conn.execute(sa.text("SELECT version FROM tb_schema")).scalar() == SCHEMA_VERSION
        conn.execute(sa.text("UPDATE tb_schema SET version = 99"))
    engine.dispose()
    from tunebook.storage.sql import SQLStorage

    with pytest.raises(tb.SpecError, match="newer tunebook"):
        SQLStorage(storage.url)


def test_a_schema_2_store_gains_params_used_in_place(storage_url):
    """A store written before schema 3 (no tb_trials.params_used) upgrades when opened; its trials keep
    everything and new outcomes record what the training function read."""
    space = tb.SearchSpace(nuisance={"lr": tb.Float(1e-3, 1.0, "log")})
    study = tb.create_study("old", space=space, objective=("val/error", "min"), trials=2, max_train_steps=1,
                            storage=storage_url)
    first = study.storage.claim_trial("w", study.id)
    study.storage.finish_trial(first.id, "w", "completed", value=0.5, best_step=1)
    engine = sa.create_engine(study.storage.url)
    with engine.begin() as conn:  # back to what tunebook wrote at schema 2
        conn.execute(sa.text("ALTER TABLE tb_trials DROP COLUMN params_used"))
        conn.execute(sa.text("ALTER TABLE tb_trials DROP COLUMN ended"))  # schema 4
        conn.execute(sa.text("UPDATE tb_schema SET version = 2"))
    engine.dispose()
    from tunebook.storage.sql import SQLStorage

    reopened = SQLStorage(study.storage.url)  # a new process's first open (open_storage caches per process)
    again = tb.load_study("old", reopened)
    assert [(t.state, t.value) for t in again.trials()] == [("completed", 0.5), ("pending", None)]
    second = reopened.claim_trial("w", again.id)
    reopened.finish_trial(second.id, "w", "completed", value=0.25, best_step=1,
                          params_used={"read": ["lr"], "missing": [], "bulk": False})
    assert reopened.params_used(again.id) == {1: {"read": ["lr"], "missing": [], "bulk": False}}
    assert reopened.get_trial(second.id).ended is None and again.trials()[0].ended is None  # schema 4's column
    engine = sa.create_engine(reopened.url)
    with engine.begin() as conn:
        assert conn.execute(sa.text("SELECT version FROM tb_schema")).scalar() == SCHEMA_VERSION
    engine.dispose()


def test_claims_are_exclusive_across_threads(storage_url):
    study = make_study(storage_url, trials=40)
    storage = study.storage
    claimed: list[int] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        while (t := storage.claim_trial(f"w{i}", study.id)) is not None:
            with lock:
                claimed.append(t.number)

    assert race(worker, 8) == []
    assert sorted(claimed) == list(range(40))


def _claim_all(url: str, worker: str, out) -> None:
    storage = open_storage(url)
    study = storage.get_study("s")
    while (t := storage.claim_trial(worker, study.id)) is not None:
        out.put(t.number)
    out.put(None)


def test_claims_are_exclusive_across_processes(storage_url):
    make_study(storage_url, trials=60)
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_claim_all, args=(storage_url, f"p{i}", out)) for i in range(4)]
    for p in procs:
        p.start()
    numbers = gather(procs, out, timeout=120)
    assert sorted(numbers) == list(range(60))


def test_metrics_batch_nan_and_best(storage_url):
    study = make_study(storage_url)
    storage = study.storage
    t = storage.claim_trial("w", study.id)
    storage.write_metrics(t.id, "w", [(1, "val/error", 0.5), (2, "val/error", 0.2), (3, "val/error", 0.2), (3, "train/loss", math.nan)])
    storage.write_metrics(t.id, "w", [(4, "val/error", math.inf), (5, "val/error", 0.3)])
    rows = storage.get_metrics(t.id)
    assert len(rows) == 6
    assert math.isnan([r for r in rows if r.name == "train/loss"][0].value)
    assert storage.best_metric(t.id, "val/error", "min") == (0.2, 2)
    assert storage.best_metric(t.id, "val/error", "max") == (0.5, 1)
    # a resumed attempt drops the steps it will log again
    storage.write_metrics(t.id, "w", [(3, "val/error", 0.1)], drop_from_step=3)
    assert [(r.step, r.value) for r in storage.get_metrics(t.id, ["val/error"])] == [(1, 0.5), (2, 0.2), (3, 0.1)]


def test_writes_of_a_worker_that_lost_its_trial_change_nothing(storage_url):
    study = make_study(storage_url, trials=1)
    storage = study.storage
    t = storage.claim_trial("old", study.id)
    storage.release_worker_trials(["old"])  # presumed dead
    t2 = storage.claim_trial("new", study.id)
    assert t2.id == t.id and t2.attempts == 2
    with pytest.raises(ClaimLost):
        storage.write_metrics(t.id, "old", [(1, "val/error", 0.0)])
    with pytest.raises(ClaimLost):
        storage.finish_trial(t.id, "old", "completed", value=0.0, best_step=1)
    assert storage.get_metrics(t.id) == []
    storage.finish_trial(t.id, "new", "completed", value=0.5, best_step=3)
    done = storage.get_trial(t.id)
    assert (done.state, done.value, done.best_step) == ("completed", 0.5, 3)
    with pytest.raises(ClaimLost):  # a finished trial never changes
        storage.finish_trial(t.id, "new", "failed", error="late")


def test_stale_trials_are_reclaimed_then_failed_after_too_many_lost_workers(storage_url):
    study = make_study(storage_url, trials=1)
    storage = study.storage
    first = storage.claim_trial("a", study.id)
    assert storage.claim_trial("b", study.id, stale_after=30) is None  # heartbeat is fresh
    time.sleep(0.3)
    second = storage.claim_trial("b", study.id, stale_after=0.1, max_lost_workers=3)
    assert second.id == first.id and second.worker_id == "b" and second.lost_workers == 1
    time.sleep(0.3)
    third = storage.claim_trial("c", study.id, stale_after=0.1, max_lost_workers=3)
    assert third.lost_workers == 2
    time.sleep(0.3)
    assert storage.claim_trial("d", study.id, stale_after=0.1, max_lost_workers=3) is None
    failed = storage.get_trial(first.id)
    assert failed.state == "failed" and "failed after 3 lost workers" in failed.error


def test_checkpoint_manifest(storage_url):
    study = make_study(storage_url, trials=1)
    storage = study.storage
    t = storage.claim_trial("w", study.id)
    kept = [CheckpointRecord(t.id, 10, "/x/10", 0.3), CheckpointRecord(t.id, 20, "/x/20", None)]
    storage.set_checkpoints(t.id, "w", kept)
    assert storage.get_checkpoints(t.id) == kept
    storage.set_checkpoints(t.id, "w", kept[1:])
    assert storage.get_checkpoints(t.id) == kept[1:]


def test_summaries_aggregate_counts_and_best(storage_url):
    study = make_study(storage_url, trials=4)
    storage = study.storage
    for value, state in ((0.4, "completed"), (0.2, "completed"), (None, "infeasible")):
        t = storage.claim_trial("w", study.id)
        storage.finish_trial(t.id, "w", state, value=value, best_step=7, infeasible_reason="x" if value is None else None)
    (summary,) = storage.study_summaries()
    assert summary["counts"] == {"completed": 2, "infeasible": 1, "pending": 1}
    assert summary["best"] == {"number": 1, "value": 0.2, "step": 7}


def test_bad_urls_are_one_clear_error(tmp_path):
    for url, words in (
        ("mysql://x/y", "unknown storage scheme"),
        ("sqlite:///:memory:", "in-memory"),
        (f"sqlite:///{tmp_path}/missing/dir/t.db", "does not exist"),
        ("tunebook", "not a storage URL"),
        ("postgresql://127.0.0.1:1/nothing", "cannot open"),
    ):
        with pytest.raises(tb.SpecError) as info:
            open_storage(url)
        assert info.value.field == "storage" and words in str(info.value), (url, str(info.value))


def test_a_schema_1_store_is_upgraded_in_place(tmp_path):
    import shutil

    from conftest import ROOT

    db = tmp_path / "old.db"
    shutil.copy(ROOT / "tests" / "assets" / "store-v1.db", db)  # written by tunebook's first schema
    url = f"sqlite:///{db}"
    study = tb.load_study("old-study", storage=url)
    assert study.goal == "made by schema 1" and study.counts()["completed"] == 3
    assert study.best_trial().value == min(t.value for t in study.trials())
    storage = study.storage
    engine = sa.create_engine(storage.url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version FROM tb_schema")).scalar() == SCHEMA_VERSION
    engine.dispose()
    storage.add_note("test", "works", {"x": 1}, experiment="old-study")
    storage.set_baseline("old-study", "old-study")
    assert storage.get_baselines() == {"old-study": "old-study"}
    assert storage.get_notes(experiment="old-study")[0]["evidence"] == {"x": 1}


def test_notes_and_baselines(storage_url):
    study = make_study(storage_url, trials=2)
    storage = study.storage
    storage.add_note("compare", "adopt b", {"p": 0.01}, experiment="s", study="s")
    storage.add_note("lr-sweep", "max_train_steps = 300", {"steps": 300}, experiment="s")
    assert [n["kind"] for n in storage.get_notes(experiment="s")] == ["compare", "lr-sweep"]
    assert storage.get_notes(kind="lr-sweep")[0]["conclusion"] == "max_train_steps = 300"
    storage.set_baseline("s", "s")
    assert storage.get_baselines()["s"] == "s"
    with pytest.raises(KeyError):
        storage.set_baseline("missing", "s")


def test_concurrent_extends_and_proposals_never_collide(storage_url):
    study = make_study(storage_url, trials=4)
    storage = study.storage
    more = [{"number": i, "params": {"lr": 0.1}, "seed": i} for i in range(4, 10)]

    def extend(_: int) -> None:
        storage.extend_study(study.id, more, 10)

    assert race(extend, 6) == []
    assert [t.number for t in study.trials()] == list(range(10))
    assert storage.get_study("s").trials_budget == 10
    storage.extend_study(study.id, [], 8)  # a smaller budget never shrinks the study
    assert storage.get_study("s").trials_budget == 10
    assert storage.propose_trial(study.id, lambda n, seed: ({"lr": 0.2}, n)) is None  # the budget is reached
    storage.extend_study(study.id, [], 13)
    numbers: list[int | None] = []

    def propose(_: int) -> None:
        numbers.append(storage.propose_trial(study.id, lambda n, seed: ({"lr": 0.3}, 1000 + n)))

    assert race(propose, 5) == []
    assert sorted(n for n in numbers if n is not None) == [10, 11, 12] and numbers.count(None) == 2
    assert [t.seed for t in study.trials()][10:] == [1010, 1011, 1012]


def test_the_analysis_reads_agree_with_the_contracts_generic_ones(storage_url):
    """trial_rows/metric_rows: the SQL store's one-query versions return what the generic versions (any
    store implementing the abstract contract) build from get_trials/get_metrics, NaN included."""
    from tunebook.storage.base import Storage

    space = tb.SearchSpace(nuisance={"lr": tb.Float(1e-3, 1.0, "log")}, scientific={"wd": tb.Choice([0.0, 0.1])})
    study = tb.create_study("reads", space=space, objective=("val/error", "min"), trials=4, max_train_steps=3,
                            storage=storage_url)
    store = study.storage
    for n, value in ((0, 0.5), (1, float("nan"))):
        t = store.claim_trial("w", study.id)
        store.write_metrics(t.id, "w", [(1, "val/error", value), (2, "val/error", 0.25 * (n + 1)), (1, "x", 1.0)])
        store.finish_trial(t.id, "w", "completed", value=0.25, best_step=2)
    ids = [t.id for t in study.trials()]
    assert store.trial_rows(study.id) == Storage.trial_rows(store, study.id)
    fast, generic = store.metric_rows(ids, "val/error"), Storage.metric_rows(store, ids, "val/error")
    assert [tuple(r) for r in fast] == generic and len(generic) == 4
    assert generic[2][2] is None  # NaN is read back as None, as SQL's NULL


def test_add_trials_beyond_the_budget_and_a_note_alone(storage_url):
    """What the length probes rely on: ``beyond_budget`` lets trials past ``trials_budget`` be added (at most that
    many), and a plan returning a note and no trial stores the note alone (a decision to add none), atomically
    with the study's other additions (racing planners add the trials once)."""
    study = make_study(storage_url, trials=2)
    storage = study.storage
    assert storage.add_trials(study.id, lambda first, seed, room: ([{"params": {"lr": 0.5}, "seed": 7}], None)) == []

    def plan(first: int, seed: int, room: int):
        if storage.get_notes(study="s", kind="probe-test"):
            return [], None
        return ([{"params": {"lr": 0.5}, "seed": 100 + i} for i in range(3)],
                {"kind": "probe-test", "conclusion": "three more", "evidence": {"room": room}})

    assert race(lambda _: storage.add_trials(study.id, plan, beyond_budget=2), 4) == []
    assert [t.number for t in study.trials()] == [0, 1, 2, 3]  # 2 beyond the budget of 2, not 3
    (note,) = storage.get_notes(study="s", kind="probe-test")
    assert note["evidence"] == {"room": 2} and storage.get_study("s").trials_budget == 2
    out = storage.add_trials(study.id, lambda first, seed, room: ([], {"kind": "decided", "conclusion": "none",
                                                                        "evidence": {}}), beyond_budget=3)
    assert out == [] and [n["conclusion"] for n in storage.get_notes(study="s", kind="decided")] == ["none"]
    assert len(study.trials()) == 4
