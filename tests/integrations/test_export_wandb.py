"""W&B export and live writer in offline mode, read back from the offline run files (no network)."""

from __future__ import annotations

import pytest

wandb = pytest.importorskip("wandb")

from _exports import make_study  # noqa: E402
from tunebook.errors import SpecError  # noqa: E402
from tunebook.integrations import export  # noqa: E402
from tunebook.integrations.wandb import offline_runs, read_offline_run, writer_factory  # noqa: E402
from tunebook.writers import TrialInfo  # noqa: E402


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")


def test_export_writes_one_offline_run_per_trial_grouped_by_study(sqlite_url, tmp_path):
    study = make_study(sqlite_url, trials=4)
    export.export(study, to="wandb", target=tmp_path / "wb")
    runs = {r["name"]: r for r in map(read_offline_run, offline_runs(tmp_path / "wb"))}
    trials = study.trials()
    assert sorted(runs) == [f"trial-{t.number:04d}" for t in trials]
    for t in trials:
        run = runs[f"trial-{t.number:04d}"]
        assert run["group"] == "wd"
        assert run["config"]["scientific"] == {"optimizer": t.params["optimizer"]}
        assert run["config"]["nuisance"]["learning_rate"] == pytest.approx(t.params["learning_rate"])
        assert run["config"]["fixed"] == {"batch_size": 32}
        assert run["config"]["tunebook"]["roles"] == {"optimizer": "scientific", "learning_rate": "nuisance",
                                                      "batch_size": "fixed"}
        assert run["config"]["tunebook"]["seed"] == t.seed
        assert run["summary"]["tunebook/state"] == t.state
        assert run["exit_code"] == 0
        if t.state == "completed":
            assert run["history"]["val/error"] == study.metrics(t)["val/error"]
            assert run["summary"]["tunebook/value"] == pytest.approx(t.value)
            assert run["summary"]["tunebook/best_step"] == t.best_step
        else:
            assert run["summary"]["tunebook/infeasible_reason"] == t.infeasible_reason


def test_live_writer_writes_a_failed_trial(tmp_path):
    info = TrialInfo(study="live", number=2, seed=5, params={"lr": 0.5, "opt": "sgd"},
                     roles={"lr": "nuisance", "opt": "scientific"}, objective=("acc", "max"), attempt=2)
    writer = writer_factory(tmp_path)(info)
    writer.write_hparams(info.params)
    writer.write_scalars(1, {"acc": 0.25})
    writer.write_scalars(2, {"acc": 0.5, "loss": 1.5})
    writer.write_summary({"state": "failed", "error": "RuntimeError: boom"})
    writer.close()
    wandb.teardown()  # wandb flushes the run file when its service stops
    [path] = offline_runs(tmp_path)
    run = read_offline_run(path)
    assert run["name"] == "trial-0002-attempt-2" and run["group"] == "live"
    assert run["history"] == {"acc": [(1, 0.25), (2, 0.5)], "loss": [(2, 1.5)]}
    assert run["config"]["nuisance"] == {"lr": 0.5} and run["config"]["scientific"] == {"opt": "sgd"}
    assert run["config"]["tunebook"]["objective"] == {"metric": "acc", "mode": "max"}
    assert run["summary"]["tunebook/error"] == "RuntimeError: boom"
    assert run["exit_code"] == 1


def test_unknown_mode_is_refused(tmp_path):
    with pytest.raises(SpecError, match="mode"):
        writer_factory(tmp_path, mode="cloud")
