"""End to end: tb.run(study, train, writers=[...]) streams real training to TensorBoard, MLflow and W&B.
"""

from __future__ import annotations

import pytest

import tunebook as tb

torch = pytest.importorskip("torch")



def train(trial: tb.Trial) -> None:
    torch.manual_seed(trial.seed)
    x = torch.linspace(-1, 1, 32).unsqueeze(1)
    y = 3 * x + 0.5
    model = torch.nn.Linear(1, 1)
    opt = torch.optim.SGD(model.parameters(), lr=trial.params["learning_rate"])
    for step in range(1, trial.max_train_steps + 1):
        loss = torch.nn.functional.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        trial.log(step, **{"train/loss": loss.detach()})
        if step % 5 == 0:
            trial.log(step, **{"val/error": loss.detach()})


def test_live_writers_receive_every_logged_value(tmp_path, sqlite_url):
    from tensorboard.backend.event_processing.plugin_event_multiplexer import EventMultiplexer
    from tensorboard.util import tensor_util

    from tunebook.integrations import mlflow, tensorboard, wandb

    wandb_module = pytest.importorskip("wandb")
    study = tb.create_study("live", space=tb.SearchSpace(nuisance={"learning_rate": tb.Float(0.01, 0.5, "log")}),
                            objective=("val/error", "min"), trials=3, max_train_steps=20, storage=sqlite_url)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tb.run(study, train, workers=0, progress=False, writers=[
        tensorboard.writer_factory(tmp_path / "tb"), mlflow.writer_factory(uri), wandb.writer_factory(tmp_path / "wb")])
    wandb_module.teardown()
    mux = EventMultiplexer()
    mux.AddRunsFromDirectory(str(tmp_path / "tb"))
    mux.Reload()
    client = mlflow._client(uri)
    runs = {r.data.tags["tunebook.trial"]: r for r in client.search_runs(
        [client.get_experiment_by_name("tunebook").experiment_id]) if r.data.tags.get("tunebook.kind") == "trial"}
    offline = {r["name"]: r for r in map(wandb.read_offline_run, wandb.offline_runs(tmp_path / "wb"))}
    for t in study.trials():
        stored = study.metrics(t)["val/error"]
        events = mux.Tensors(f"live/trial-{t.number:04d}", "val/error")
        assert [e.step for e in events] == [s for s, _ in stored]
        assert [float(tensor_util.make_ndarray(e.tensor_proto)) for e in events] == pytest.approx(
            [v for _, v in stored], rel=1e-6)
        history = client.get_metric_history(runs[str(t.number)].info.run_id, "val/error")
        assert sorted((m.step, m.value) for m in history) == stored
        assert runs[str(t.number)].data.tags["tunebook.state"] == "completed"
        assert offline[f"trial-{t.number:04d}"]["history"]["val/error"] == stored


# --- the command line: tunebook run|worker --write-to KIND TARGET --------------------------------

def _spec(tmp_path, name: str) -> "Path":  # noqa: F821
    from conftest import ROOT

    spec = tmp_path / f"{name}.yaml"
    spec.write_text(
        f"study: {name}\ntrain: {ROOT / 'tests' / '_workloads.py'}:quadratic\n"
        "objective: {metric: val/error, mode: min}\ntrials: 2\nmax_train_steps: 10\n"
        "search_space:\n  nuisance: {lr: {min: 1.0e-3, max: 1.0, scale: log}}\n"
    )
    return spec


def test_run_and_worker_stream_to_trackers_from_the_command_line(tmp_path):
    from tensorboard.backend.event_processing.plugin_event_multiplexer import EventMultiplexer

    from conftest import run_cli
    from tunebook.integrations import mlflow

    db, uri = tmp_path / "tb.db", f"sqlite:///{tmp_path / 'mlflow.db'}"
    out = run_cli("run", str(_spec(tmp_path, "cli-live")), "--storage", str(db), "--workers", "2", "--quiet",
                  "--write-to", "tensorboard", str(tmp_path / "tb"), "--write-to", "mlflow", uri)
    assert out.returncode == 0, out.stderr
    mux = EventMultiplexer()
    mux.AddRunsFromDirectory(str(tmp_path / "tb"))
    mux.Reload()
    study = tb.load_study("cli-live", str(db))
    for t in study.trials():
        steps = [e.step for e in mux.Tensors(f"cli-live/trial-{t.number:04d}", "val/error")]
        assert steps == [s for s, _ in study.metrics(t)["val/error"]] == [5, 10]
    client = mlflow._client(uri)
    runs = [r for r in client.search_runs([client.get_experiment_by_name("tunebook").experiment_id])
            if r.data.tags.get("tunebook.kind") == "trial"]
    assert sorted(r.data.tags["tunebook.trial"] for r in runs) == ["0", "1"]

    # a worker on the same store streams the study it serves
    created = run_cli("run", str(_spec(tmp_path, "cli-worker")), "--storage", str(db), "--create-only")
    assert created.returncode == 0, created.stderr
    out = run_cli("worker", "--storage", str(db), "--study", "cli-worker", "--write-to", "tensorboard",
                  str(tmp_path / "tb2"))
    assert out.returncode == 0, out.stderr
    mux = EventMultiplexer()
    mux.AddRunsFromDirectory(str(tmp_path / "tb2"))
    mux.Reload()
    assert sorted(mux.Runs()) == ["cli-worker/trial-0000", "cli-worker/trial-0001"]


@pytest.mark.parametrize("kind, target, says", [
    ("comet", "x", "unknown tracker 'comet'; use one of tensorboard, mlflow, wandb, csv, parquet"),
    ("csv", "out.csv", "csv is written after the fact: `tunebook export NAME --to csv trials.csv`"),
    ("tensorboard", "IS_A_FILE", "is a file"),
    ("tensorboard", "/proc/no-such-folder", "cannot write there"),
    ("wandb", "", "needs a folder, got an empty one"),
])
def test_a_bad_live_writer_is_one_line_exit_2_and_nothing_stored(tmp_path, kind, target, says):
    from conftest import run_cli

    (tmp_path / "IS_A_FILE").write_text("")
    target = str(tmp_path / target) if target == "IS_A_FILE" else target
    db = tmp_path / "tb.db"
    for argv in (["run", str(_spec(tmp_path, "bad-live")), "--storage", str(db)],
                 ["worker", "--storage", str(db)]):
        out = run_cli(*argv, "--write-to", kind, target)
        assert out.returncode == 2, out.stderr
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and "--write-to" in lines[0] and says in lines[0], out.stderr
    assert not db.exists() or tb.open_storage(str(db)).list_studies() == []


def test_an_export_after_live_mlflow_runs_adds_nothing_twice(tmp_path, sqlite_url):
    from tunebook.integrations import export, mlflow

    study = tb.create_study("live-then-export", space=tb.SearchSpace(nuisance={"learning_rate": tb.Float(0.01, 0.5, "log")}),
                            objective=("val/error", "min"), trials=2, max_train_steps=10, storage=sqlite_url)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tb.run(study, train, workers=0, progress=False, writers=[mlflow.writer_factory(uri)])
    export.to_mlflow(study, uri)
    client = mlflow._client(uri)
    runs = client.search_runs([client.get_experiment_by_name("tunebook").experiment_id])
    kinds = sorted(r.data.tags.get("tunebook.kind") for r in runs)
    assert kinds == ["study", "trial", "trial"], kinds
