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
