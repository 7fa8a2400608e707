"""TensorBoard export and live writer, read back with TensorBoard's own event reader and HParams metadata."""

from __future__ import annotations

import pytest

pytest.importorskip("tensorboard")

from tensorboard.backend.event_processing.plugin_event_multiplexer import EventMultiplexer  # noqa: E402
from tensorboard.plugins.hparams import api_pb2, metadata  # noqa: E402
from tensorboard.util import tensor_util  # noqa: E402

from _exports import make_study  # noqa: E402
from tunebook.errors import SpecError  # noqa: E402
from tunebook.integrations import export  # noqa: E402
from tunebook.integrations.tensorboard import VALUE_TAG, TensorBoardWriter, writer_factory  # noqa: E402
from tunebook.writers import TrialInfo  # noqa: E402


def _load(logdir) -> EventMultiplexer:
    mux = EventMultiplexer()
    mux.AddRunsFromDirectory(str(logdir))
    mux.Reload()
    return mux


def _scalars(mux: EventMultiplexer, run: str, tag: str) -> list[tuple[int, float]]:
    return [(e.step, float(tensor_util.make_ndarray(e.tensor_proto))) for e in mux.Tensors(run, tag)]


def _same(got, expected) -> bool:
    """Same steps, values equal to float32 precision (TensorBoard stores simple values as float32)."""
    return [s for s, _ in got] == [s for s, _ in expected] and \
        [v for _, v in got] == pytest.approx([v for _, v in expected], rel=1e-6)


def test_export_puts_scalars_and_hparams_session_in_one_run_directory(sqlite_url, tmp_path):
    study = make_study(sqlite_url)
    root = export.export(study, to="tensorboard", target=tmp_path / "tb")
    assert root == tmp_path / "tb" / "wd"
    mux = _load(tmp_path / "tb")
    hparams = mux.PluginRunToTagToContent(metadata.PLUGIN_NAME)

    # The experiment: every hyperparameter named role.name with its domain, the objective as a metric.
    experiment = metadata.parse_experiment_plugin_data(hparams["wd"][metadata.EXPERIMENT_TAG])
    infos = {h.name: h for h in experiment.hparam_infos}
    assert set(infos) == {"scientific.optimizer", "nuisance.learning_rate", "fixed.batch_size"}
    assert [v.string_value for v in infos["scientific.optimizer"].domain_discrete.values] == ["adam", "sgd"]
    assert infos["nuisance.learning_rate"].domain_interval.min_value == pytest.approx(1e-4)
    assert "log scale" in infos["nuisance.learning_rate"].description
    assert {m.name.tag for m in experiment.metric_infos} == {"val/error", VALUE_TAG}

    for trial in study.trials():
        run = f"wd/trial-{trial.number:04d}"
        tags = hparams[run]  # the session lives in the trial's own run, beside its scalars
        start = metadata.parse_session_start_info_plugin_data(tags[metadata.SESSION_START_INFO_TAG])
        assert start.hparams["nuisance.learning_rate"].number_value == pytest.approx(trial.params["learning_rate"])
        assert start.hparams["scientific.optimizer"].string_value == trial.params["optimizer"]
        assert start.hparams["fixed.batch_size"].number_value == 32
        end = metadata.parse_session_end_info_plugin_data(tags[metadata.SESSION_END_INFO_TAG])
        expected = api_pb2.STATUS_SUCCESS if trial.state == "completed" else api_pb2.STATUS_FAILURE
        assert end.status == expected
        stored = study.metrics(trial)
        if trial.state == "completed":
            assert _same(_scalars(mux, run, "val/error"), stored["val/error"])
            assert _same(_scalars(mux, run, "train/loss"), stored["train/loss"])
            assert _same(_scalars(mux, run, VALUE_TAG), [(trial.best_step, trial.value)])
        else:
            text = mux.Tensors(run, "tunebook/state")[0].tensor_proto.string_val[0].decode()
            assert text == f"state: infeasible\ninfeasible_reason: {trial.infeasible_reason}"


def test_live_writer_streams_one_trial(tmp_path):
    info = TrialInfo(study="live", number=3, seed=7, params={"lr": 0.1, "opt": "adam", "depth": 4},
                     roles={"lr": "nuisance", "opt": "scientific", "depth": "fixed"}, objective=("val/error", "min"))
    writer = writer_factory(tmp_path)(info)
    assert isinstance(writer, TensorBoardWriter)
    writer.write_hparams(info.params)
    for step in range(1, 6):
        writer.write_scalars(step, {"train/loss": 1.0 / step, "val/error": 0.5 + 0.01 * step})
    writer.write_summary({"state": "completed", "value": 0.51, "best_step": 1})
    writer.close()
    writer.close()  # idempotent
    mux = _load(tmp_path)
    run = "live/trial-0003"
    assert _same(_scalars(mux, run, "train/loss"), [(s, 1.0 / s) for s in range(1, 6)])
    assert _same(_scalars(mux, run, VALUE_TAG), [(1, 0.51)])
    start = metadata.parse_session_start_info_plugin_data(
        mux.PluginRunToTagToContent(metadata.PLUGIN_NAME)[run][metadata.SESSION_START_INFO_TAG])
    assert start.hparams["nuisance.lr"].number_value == pytest.approx(0.1)
    assert start.hparams["scientific.opt"].string_value == "adam"


def test_exporting_twice_into_one_folder_is_refused(sqlite_url, tmp_path):
    study = make_study(sqlite_url, trials=2)
    export.to_tensorboard(study, tmp_path)
    before = sorted(p for p in tmp_path.rglob("*"))
    with pytest.raises(SpecError, match="already holds study 'wd'"):
        export.to_tensorboard(study, tmp_path)
    assert sorted(p for p in tmp_path.rglob("*")) == before


def test_a_file_is_not_a_log_directory(tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(SpecError, match="target"):
        writer_factory(target)
