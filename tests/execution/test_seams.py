"""The core's seams: the design registry, StudySpec, per-trial writers, storage errors at one boundary."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event

import _workloads as w
import tunebook as tb
from _races import race
from tunebook.designs import History, MaterializedDesign, ProposingDesign, design_names, unregister_design
from tunebook.proposing import history, propose_next
from tunebook.storage.base import TrialOutcome
from tunebook.storage.translate import classify
from tunebook.writers import MetricWriter, TrialInfo

SPACE = tb.SearchSpace(scientific={"wd": tb.Choice([0.0, 0.1])}, nuisance={"lr": tb.Float(1e-3, 1.0, "log")},
                       fixed={"batch": 8})


# --- designs -------------------------------------------------------------------------


def test_the_registry_holds_the_five_designs_and_refuses_others_in_one_line():
    assert set(design_names()) >= {"quasi_random", "random", "grid", "replicates", "bayesian"}
    for name in ("quasi_random", "random", "grid", "replicates"):
        design = tb.get_design(name)
        assert isinstance(design, tb.Design) and not design.capabilities.proposes
    bayesian = tb.get_design("bayesian").capabilities
    assert bayesian.proposes and bayesian.extendable and bayesian.samplers == ("gp", "tpe")
    assert not tb.get_design("grid").capabilities.extendable
    assert [n for n in design_names() if tb.get_design(n).capabilities.conditional] == ["quasi_random", "random"]
    assert [n for n in design_names() if tb.get_design(n).capabilities.fixed_only] == ["replicates"]
    with pytest.raises(tb.SpecError, match="design: unknown design 'sobol'; use one of quasi_random"):
        tb.get_design("sobol")


def test_a_registry_design_materializes_what_the_old_function_did():
    from tunebook.designs import materialize

    for name in ("quasi_random", "random"):
        assert tb.get_design(name).materialize(SPACE, 8, 3) == materialize(SPACE, 8, 3, design=name)


class _Ladder(ProposingDesign):
    """A proposing design made outside tunebook: lr = 10^-(number+1)."""

    def propose(self, history: History, number: int) -> dict[str, Any]:
        assert [t.number for t in history.trials] == list(range(number))  # it sees the trials so far
        return {"lr": 10.0 ** -(number + 1)}


def test_a_new_proposing_design_runs_through_the_worker_loop_unnamed(sqlite_url, tmp_path):
    tb.register_design("ladder", proposes=True)(_Ladder)
    try:
        space = tb.SearchSpace(nuisance={"lr": tb.Float(1e-6, 1.0, "log")})
        study = tb.create_study("ladder", space=space, objective=("val/error", "min"), trials=3, max_train_steps=5,
                                storage=sqlite_url, design="ladder")
        assert study.trials() == []
        result = tb.run(study, w.quadratic, workers=0, progress=False, checkpoint_dir=tmp_path)
        assert result.finished
        assert [t.params["lr"] for t in study.trials()] == [0.1, 0.01, 0.001]
        assert propose_next(study) is None  # the budget is reached
    finally:
        unregister_design("ladder")


def test_a_materialized_design_never_proposes(sqlite_url):
    study = tb.create_study("qr", space=SPACE, objective=("val/error", "min"), trials=4, max_train_steps=5,
                            storage=sqlite_url)
    assert propose_next(study) is None and len(study.trials()) == 4
    with pytest.raises(NotImplementedError):
        MaterializedDesign().propose(history(study), 4)


def test_concurrent_proposals_in_threads_never_repeat_a_number_seed_or_point(storage_url):
    space = tb.SearchSpace(nuisance={"lr": tb.Float(1e-4, 1.0, "log")})
    tb.create_study("bo", space=space, objective=("val/error", "min"), trials=12, max_train_steps=5,
                    storage=storage_url, design="bayesian", sampler="tpe", replicates=0)  # every trial proposed

    def ask(_: int) -> None:
        study = tb.load_study("bo", storage=storage_url)
        while propose_next(study) is not None:
            pass

    assert race(ask, 4) == []
    trials = tb.load_study("bo", storage=storage_url).trials()
    assert [t.number for t in trials] == list(range(12))
    assert len({t.seed for t in trials}) == 12
    assert len({t.params["lr"] for t in trials}) == 12


# --- StudySpec ------------------------------------------------------------------------


def test_study_spec_round_trips_and_its_hash_is_the_stored_one(sqlite_url):
    study = tb.create_study("spec", space=SPACE, objective=("val/error", "min"), trials=4, max_train_steps=5,
                            storage=sqlite_url, goal="why", infeasible_if={"train/loss": {"above": 10}})
    spec = study.spec
    assert spec == tb.StudySpec.from_mapping(study.record.spec) and len({spec, study.spec}) == 1
    assert spec.to_mapping() == study.record.spec
    assert spec.hash == study.record.spec_hash
    assert spec.replace(trials=40).hash == spec.hash  # the budget is not part of the identity
    assert spec.replace(max_train_steps=6).hash != spec.hash
    assert spec.experiment == "spec" and spec.objective == ("val/error", "min")
    assert tb.StudySpec.from_mapping({**spec.to_mapping(), "search_space": SPACE}) == spec


def test_study_spec_is_the_one_list_of_fields():
    from tunebook.study import SPEC_KEYS

    assert set(SPEC_KEYS) == {*tb.StudySpec.field_names(), "storage"}
    with pytest.raises(tb.SpecError, match="^trail: unknown field"):
        tb.StudySpec.from_mapping({"trail": 3})
    with pytest.raises(tb.SpecError, match="^trials: is missing"):
        tb.StudySpec.from_mapping({"study": "x", "objective": ("m", "min"), "max_train_steps": 3,
                                   "search_space": SPACE})
    with pytest.raises(tb.SpecError, match="^sampler: only a bayesian study"):
        tb.StudySpec.from_mapping({"study": "x", "objective": ("m", "min"), "trials": 2, "max_train_steps": 3,
                                   "search_space": SPACE, "sampler": "tpe"})


# --- writers --------------------------------------------------------------------------


class Recorder(MetricWriter):
    def __init__(self, info: TrialInfo, calls: list, fail_at: str | None = None) -> None:
        self.info, self.calls, self.fail_at = info, calls, fail_at

    def _record(self, what: str, *args: Any) -> None:
        self.calls.append((self.info.number, what, *args))
        if what == self.fail_at:
            raise OSError(f"exporter broke in {what}")

    def write_hparams(self, hparams):
        self._record("hparams", dict(hparams))

    def write_scalars(self, step, scalars):
        self._record("scalars", step)

    def write_summary(self, summary):
        self._record("summary", dict(summary))

    def close(self):
        self._record("close")


def test_each_trial_gets_its_writers_and_is_told_how_it_ended(sqlite_url, tmp_path):
    calls: list = []
    infos: list[TrialInfo] = []

    def factory(info: TrialInfo) -> MetricWriter:
        infos.append(info)
        return Recorder(info, calls)

    study = tb.create_study("wr", space=SPACE, objective=("val/error", "min"), trials=2, max_train_steps=5,
                            storage=sqlite_url, goal="g")
    tb.run(study, w.quadratic, workers=0, progress=False, checkpoint_dir=tmp_path, writers=[factory])
    assert [i.number for i in infos] == [0, 1]
    info = infos[0]
    assert info.study == "wr" and info.goal == "g" and info.objective == ("val/error", "min") and info.attempt == 1
    assert info.roles == {"wd": "scientific", "lr": "nuisance", "batch": "fixed"}
    assert info.params["batch"] == 8 and info.seed == study.trials()[0].seed
    summaries = [c[2] for c in calls if c[1] == "summary"]
    stored = study.trials()
    assert [s["state"] for s in summaries] == ["completed", "completed"]
    assert [(s["value"], s["best_step"]) for s in summaries] == [(t.value, t.best_step) for t in stored]
    assert set(summaries[0]) == {"state", "value", "best_step", "infeasible_reason", "error"}
    order = [c[1] for c in calls if c[0] == 0]  # hparams, the logged scalars (host floats), then how it ended
    assert order[0] == "hparams" and order[-2:] == ["summary", "close"]
    assert set(order[1:-2]) == {"scalars"} and len(order) > 3


@pytest.mark.parametrize("fail_at", ["factory", "hparams", "summary", "close"])
def test_a_failing_exporter_never_changes_the_outcome(sqlite_url, tmp_path, fail_at):
    calls: list = []

    def factory(info: TrialInfo) -> MetricWriter:
        if fail_at == "factory":
            raise RuntimeError("cannot reach the tracking server")
        return Recorder(info, calls, fail_at)

    study = tb.create_study("wf", space=SPACE, objective=("val/error", "min"), trials=2, max_train_steps=5,
                            storage=sqlite_url)
    tb.run(study, w.quadratic, workers=0, progress=False, checkpoint_dir=tmp_path, writers=[factory])
    assert [t.state for t in study.trials()] == ["completed", "completed"]
    assert all(t.error is None for t in study.trials())


def test_failed_and_infeasible_trials_reach_the_writers_too(sqlite_url, tmp_path):
    calls: list = []
    space = tb.SearchSpace(nuisance={"lr": tb.Float(0.01, 1.0, "log")})
    study = tb.create_study("nan", space=space, objective=("val/error", "min"), trials=4, max_train_steps=6,
                            storage=sqlite_url)
    tb.run(study, w.diverges, workers=0, progress=False, checkpoint_dir=tmp_path,
           writers=[lambda info: Recorder(info, calls)])
    summaries = {c[0]: c[2] for c in calls if c[1] == "summary"}
    for t in study.trials():
        assert summaries[t.number]["state"] == t.state
        assert summaries[t.number]["infeasible_reason"] == t.infeasible_reason
    study = tb.create_study("bug", space=space, objective=("val/error", "min"), trials=1, max_train_steps=2,
                            storage=sqlite_url)
    tb.run(study, w.user_bug, workers=0, progress=False, checkpoint_dir=tmp_path,
           writers=[lambda info: Recorder(info, calls)])
    (failed,) = study.trials()
    assert failed.state == "failed" and "a bug in user code" in calls[-2][2]["error"]


# --- storage errors ---------------------------------------------------------------------


def test_a_full_sqlite_store_is_storage_unavailable_not_the_users_fault(sqlite_url):
    study = tb.create_study("full", space=SPACE, objective=("val/error", "min"), trials=2, max_train_steps=5,
                            storage=sqlite_url)
    storage = study.storage
    trial = storage.claim_trial("w", study.id)
    engine = storage._writer  # cap the file's size for new connections: a real "database or disk is full"
    engine.dispose()

    @event.listens_for(engine, "connect")
    def cap(dbapi_connection, _record):
        pages = dbapi_connection.execute("PRAGMA page_count").fetchone()[0]
        dbapi_connection.execute(f"PRAGMA max_page_count = {pages + 1}")

    try:
        with pytest.raises(tb.StorageUnavailable, match="database or disk is full"):
            storage.write_metrics(trial.id, "w", [(s, "val/error" + "x" * 200, 1.0) for s in range(5000)])
    finally:
        event.remove(engine, "connect", cap)
        engine.dispose()
    assert storage.get_metrics(trial.id) == []  # the transaction rolled back whole


def test_driver_errors_are_classified_by_kind(tmp_path):
    locked = sqlite3.connect(tmp_path / "x.db", timeout=0)
    locked.execute("CREATE TABLE t (x)")
    locked.execute("BEGIN EXCLUSIVE")
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'x.db'}", connect_args={"timeout": 0})
    with pytest.raises(sa.exc.OperationalError) as info:
        with engine.begin() as conn:
            conn.exec_driver_sql("INSERT INTO t VALUES (1)")
    assert isinstance(classify(info.value), tb.StorageUnavailable)
    locked.rollback()
    engine.dispose()
    (tmp_path / "bad.db").write_bytes(b"this is not a database" * 100)
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'bad.db'}")
    with pytest.raises(sa.exc.DatabaseError) as info:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT * FROM sqlite_master").all()
    error = classify(info.value, "store x")
    assert type(error) is tb.StorageError and ".recover" in str(error)
    engine.dispose()


def test_connection_refused_is_storage_unavailable():
    pytest.importorskip("psycopg")
    engine = sa.create_engine("postgresql+psycopg://u:p@127.0.0.1:1/db", connect_args={"connect_timeout": 5})
    with pytest.raises(sa.exc.OperationalError) as info:
        engine.connect()
    assert isinstance(classify(info.value), tb.StorageUnavailable)


def test_storage_raises_tunebook_errors_only(storage_url):
    study = tb.create_study("e", space=SPACE, objective=("val/error", "min"), trials=2, max_train_steps=5,
                            storage=storage_url)
    storage = study.storage
    with pytest.raises(tb.StudyNotFound, match="no experiment named 'missing'"):
        storage.set_baseline("missing", "e")
    with pytest.raises(tb.SpecError, match="^order: unknown order"):
        storage.trials_page(study.id, order="nope")
    trial = storage.claim_trial("w", study.id)
    with pytest.raises(tb.SpecError, match="^state: not a finished state"):
        storage.finish_trial(trial.id, "w", "running")
    with pytest.raises(tb.StudyExists):
        storage.create_study(study.record, [])


def test_results_computed_elsewhere_are_recorded_through_the_contract(storage_url):
    from tunebook.analysis.synthetic import exp_decay, write_study

    def curve(params, steps, rng):
        if params["lr"] > 0.5:
            return "diverged"
        return {"val/error": exp_decay(steps, params["lr"], 1.0, 100.0)}

    study = write_study(storage_url, "synthetic", curve, space=SPACE, trials=8, max_train_steps=400, evals=4)
    trials = study.trials()
    assert {t.state for t in trials} <= {"completed", "infeasible"} and len(trials) == 8
    for t in trials:
        if t.state == "infeasible":
            assert t.infeasible_reason == "diverged" and study.metrics(t) == {}
        else:
            curve_points = study.metrics(t)["val/error"]
            assert [s for s, _ in curve_points] == [100, 200, 300, 400]
            assert (t.value, t.best_step) == (curve_points[-1][1], 400) and t.attempts == 1
    with pytest.raises(tb.StudyNotFound):  # a finished trial is never recorded again
        study.storage.record_outcomes(study.id, [TrialOutcome(0, "completed", value=1.0)])


def test_an_unhashable_design_name_is_one_line():
    with pytest.raises(tb.SpecError, match="^design: unknown design"):
        tb.get_design(["grid"])


def store_goes_away(trial) -> None:
    trial.log(1, **{"val/error": 1.0})
    raise tb.StorageUnavailable("store x: database or disk is full")


def test_an_unavailable_store_is_never_blamed_on_the_training_function(sqlite_url, tmp_path, monkeypatch):
    from tunebook.execution import loop

    monkeypatch.setattr(loop, "backoff", lambda n, cap=0.0: 0.0)  # retried INFRA_RETRIES times, then raised
    calls: list = []
    study = tb.create_study("away", space=SPACE, objective=("val/error", "min"), trials=2, max_train_steps=5,
                            storage=sqlite_url)
    with pytest.raises(tb.StorageUnavailable):
        tb.run(study, store_goes_away, workers=0, progress=False, checkpoint_dir=tmp_path,
               writers=[lambda info: Recorder(info, calls)])
    first = study.trials()[0]
    assert first.state == "pending" and first.lost_workers == 0  # resumed by the next run
    assert first.error.startswith("infrastructure fault, retried: ") and first.attempts == loop.INFRA_RETRIES + 1
    assert {c[2]["state"] for c in calls if c[1] == "summary"} == {"pending"}
