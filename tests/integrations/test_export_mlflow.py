"""MLflow export and live writer against a real tracking store (SQLite), read back through MlflowClient."""

from __future__ import annotations

import multiprocessing

import pytest

pytest.importorskip("mlflow")

from mlflow.entities import ViewType  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

from _exports import make_study  # noqa: E402
from tunebook.integrations import export  # noqa: E402
from tunebook.integrations.mlflow import DEFAULT_EXPERIMENT, PARENT_RUN_ID, writer_factory  # noqa: E402
from tunebook.writers import TrialInfo  # noqa: E402


@pytest.fixture(scope="module")
def mlflow_uri(tmp_path_factory) -> str:
    """One tracking store for the module (MLflow's schema migrations take seconds); tests use their own experiments."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


def _runs(client: MlflowClient, experiment: str = DEFAULT_EXPERIMENT, view=ViewType.ACTIVE_ONLY):
    experiment_id = client.get_experiment_by_name(experiment).experiment_id
    return client.search_runs([experiment_id], run_view_type=view, max_results=1000)


def test_export_makes_a_parent_run_and_a_child_run_per_trial(sqlite_url, mlflow_uri):
    study = make_study(sqlite_url)
    uri = mlflow_uri
    parent_id = export.export(study, to="mlflow", target=uri)
    client = MlflowClient(uri)
    runs = _runs(client)
    parents = [r for r in runs if r.data.tags.get("tunebook.kind") == "study"]
    assert [p.info.run_id for p in parents] == [parent_id]
    assert parents[0].data.tags["tunebook.study"] == "wd"
    assert parents[0].data.tags["tunebook.objective"] == "val/error (min)"
    assert parents[0].info.status == "FINISHED"
    children = {int(r.data.tags["tunebook.trial"]): r for r in runs if r.data.tags.get("tunebook.kind") == "trial"}
    trials = study.trials()
    assert sorted(children) == [t.number for t in trials]
    for t in trials:
        run = children[t.number]
        assert run.data.tags[PARENT_RUN_ID] == parent_id
        assert run.data.params == {"optimizer": t.params["optimizer"], "learning_rate": str(t.params["learning_rate"]),
                                   "batch_size": "32"}
        assert run.data.tags["tunebook.role.optimizer"] == "scientific"
        assert run.data.tags["tunebook.role.learning_rate"] == "nuisance"
        assert run.data.tags["tunebook.role.batch_size"] == "fixed"
        assert run.data.tags["tunebook.seed"] == str(t.seed)
        assert run.data.tags["tunebook.state"] == t.state
        assert run.info.status == "FINISHED"
        if t.state == "completed":
            history = client.get_metric_history(run.info.run_id, "val/error")
            assert sorted((m.step, m.value) for m in history) == study.metrics(t)["val/error"]
            value = client.get_metric_history(run.info.run_id, "tunebook.value")
            assert [(m.step, m.value) for m in value] == [(t.best_step, t.value)]
            assert run.data.tags["tunebook.best_step"] == str(t.best_step)
        else:
            assert run.data.tags["tunebook.infeasible_reason"] == t.infeasible_reason

    # Exporting again finds the parent by its tags and adds nothing.
    assert export.to_mlflow(study, uri) == parent_id
    assert len(_runs(client)) == len(runs)


def _worker(uri: str, number: int, barrier) -> str:
    info = TrialInfo(study="par", number=number, seed=number, params={"lr": 0.1 * (number + 1)},
                     roles={"lr": "nuisance"}, objective=("loss", "min"), storage_id="sqlite:///same.db")
    factory = writer_factory(uri)
    barrier.wait()  # both workers look for the parent at the same moment
    writer = factory(info)
    writer.write_hparams(info.params)
    writer.write_scalars(1, {"loss": 1.0 + number})
    writer.write_summary({"state": "completed", "value": 1.0 + number, "best_step": 1})
    writer.close()
    return writer.run_id


@pytest.mark.slow
def test_parallel_workers_share_one_parent_run(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    client.create_experiment(DEFAULT_EXPERIMENT)  # the schema exists before the workers race
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager:
        barrier = manager.Barrier(2)
        with ctx.Pool(2) as pool:
            children = pool.starmap(_worker, [(uri, 0, barrier), (uri, 1, barrier)])
    parents = [r for r in _runs(client) if r.data.tags.get("tunebook.kind") == "study"]
    assert len(parents) == 1
    for run_id in children:
        run = client.get_run(run_id)
        assert run.data.tags[PARENT_RUN_ID] == parents[0].info.run_id
        assert run.info.status == "FINISHED"


def test_a_trial_stopped_without_summary_is_killed_and_resumes_as_a_new_attempt(mlflow_uri):
    uri = mlflow_uri
    factory = writer_factory(uri, experiment="killed")
    info = TrialInfo(study="s", number=0, seed=1, params={"lr": 0.1}, roles={"lr": "nuisance"})
    first = factory(info)
    first.write_scalars(1, {"loss": 2.0})
    first.close()
    second = factory(TrialInfo(**{**info.__dict__, "attempt": 2}))
    second.write_summary({"state": "failed", "error": "ValueError: boom"})
    second.close()
    client = MlflowClient(uri)
    a, b = client.get_run(first.run_id), client.get_run(second.run_id)
    assert (a.info.status, b.info.status) == ("KILLED", "FAILED")
    assert b.data.tags["tunebook.attempt"] == "2" and b.data.tags["tunebook.error"] == "ValueError: boom"
    assert a.data.tags[PARENT_RUN_ID] == b.data.tags[PARENT_RUN_ID]


def test_two_parents_made_at_once_settle_on_the_earliest(mlflow_uri):
    from tunebook.integrations.mlflow import MLflowWriter, settle_parent

    uri = mlflow_uri
    client = MlflowClient(uri)
    experiment_id = client.create_experiment("settle")
    tags = {"tunebook.kind": "study", "tunebook.study": "race", "tunebook.storage": "-"}
    # Two workers each found no parent and made one (the race the search cannot prevent).
    first = client.create_run(experiment_id, tags=tags, start_time=1000).info.run_id
    second = client.create_run(experiment_id, tags=tags, start_time=1000).info.run_id
    winner, loser = sorted([first, second])
    info = TrialInfo(study="race", number=1, seed=1, params={"lr": 0.1}, roles={"lr": "nuisance"})
    child = MLflowWriter(uri, info, experiment="settle", client=client, parent_id=loser)  # a trial started under the losing parent
    assert client.get_run(child.run_id).data.tags[PARENT_RUN_ID] == loser
    child.write_summary({"state": "completed", "value": 1.0, "best_step": 1})
    child.close()  # closing settles: the child moves to the winner, the losing parent is deleted
    assert client.get_run(child.run_id).data.tags[PARENT_RUN_ID] == winner
    assert client.get_run(loser).info.lifecycle_stage == "deleted"
    assert settle_parent(client, experiment_id, "race", "-", winner) == winner
    assert [r.info.run_id for r in _runs(client, "settle") if r.data.tags.get("tunebook.kind") == "study"] == [winner]
