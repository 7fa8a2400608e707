"""Issue 24: one tracker registry read by `export`, `--write-to` and the command line; and issue 22: a tracker's
target is checked before anything runs (a URI MLflow refuses, a server that does not answer: one line, exit 2,
nothing stored, in seconds rather than MLflow's minutes of retries)."""

from __future__ import annotations

import contextlib
import io
import json
import socket

import pytest

import tunebook as tb
from conftest import run_cli
from tunebook.cli import main
from tunebook.errors import SpecError
from tunebook.integrations import trackers
from tunebook.integrations.export import export, live_writers


@pytest.fixture
def toy():
    import _toy_tracker

    trackers.register_tracker(_toy_tracker.TOY)
    yield _toy_tracker
    trackers.unregister_tracker("toy")


def _train(trial):
    for step in range(3):
        trial.log(step, **{"val/error": trial.params["lr"] / (step + 1)})


def _study(url, name="toyed"):
    return tb.create_study(name, space={"nuisance": {"lr": {"min": 0.1, "max": 1.0}}}, objective=("val/error", "min"),
                           trials=2, max_train_steps=3, storage=url)


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_toy_tracker_in_one_file_is_live_exported_and_on_the_command_line(toy, tmp_path, sqlite_url):
    study = _study(sqlite_url)
    tb.run(study, _train, workers=0, progress=False, writers=live_writers([("toy", str(tmp_path / "live"))]))
    stored = study.metrics(study.trials()[0])["val/error"]
    live = _lines(tmp_path / "live" / "toyed-0.jsonl")
    assert [(r["step"], r["val/error"]) for r in live if "step" in r] == stored
    assert export(study, to="toy", target=tmp_path / "after") == tmp_path / "after"
    assert _lines(tmp_path / "after" / "toyed-0.jsonl") == live  # exported after the fact = streamed live

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["export", "toyed", "--to", "toy", str(tmp_path / "cli"), "--storage", sqlite_url])
    assert code == 0 and "exported study 'toyed' (2 trials) to toy" in out.getvalue()
    assert (tmp_path / "cli" / "toyed-1.jsonl").exists()
    with contextlib.redirect_stdout(io.StringIO()) as help_text, pytest.raises(SystemExit):
        main(["run", "--help"])
    assert "toy DIR" in help_text.getvalue()


def test_the_toy_trackers_own_check_runs_before_anything(toy, tmp_path, sqlite_url):
    study = _study(sqlite_url)
    with pytest.raises(SpecError, match="--write-to: toy .*forbidden-x' is a forbidden folder"):
        live_writers([("toy", str(tmp_path / "forbidden-x"))])
    with pytest.raises(SpecError, match="target: toy .* is a forbidden folder"):
        export(study, to="toy", target=tmp_path / "forbidden-y")
    assert not (tmp_path / "forbidden-y").exists()


def test_unknown_and_after_the_fact_kinds_are_one_line():
    with pytest.raises(SpecError, match="unknown tracker 'nope'; use one of tensorboard, mlflow, wandb, csv, parquet"):
        live_writers([("nope", "x")])
    with pytest.raises(SpecError, match="'csv' is not a live writer; csv is written after the fact"):
        live_writers([("csv", "x.csv")])


def test_the_registry_is_the_only_list():
    from tunebook.integrations import cli_export, export as export_module

    assert not hasattr(export_module, "TARGETS") and not hasattr(export_module, "LIVE")
    assert not hasattr(cli_export, "TARGETS")
    assert list(trackers.TRACKERS) == ["tensorboard", "mlflow", "wandb", "csv", "parquet"]
    assert trackers.live_kinds() == ["tensorboard", "mlflow", "wandb"]
    for t in trackers.TRACKERS.values():  # every function named by the registry exists
        for ref in (t.exporter, t.live, t.check):
            if ref is not None:
                assert callable(trackers.function(ref)), ref


# MLflow targets: checked with a timeout -------------------------------------------------------------------
@pytest.fixture
def silent_server():
    """A TCP port that accepts connections and never answers (a hung server, a firewall that drops replies)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


@pytest.fixture
def refused():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    return f"http://127.0.0.1:{port}"


SPEC = """study: tracked
train: train.py:train
objective: {metric: val/error, mode: min}
trials: 2
max_train_steps: 2
search_space:
  nuisance: {lr: {min: 0.1, max: 1.0}}
"""


def _refused_in_one_line(result, field, expected):
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stdout + result.stderr
    assert len(lines) == 1 and lines[0].startswith(f"tunebook: error: {field}") and expected in lines[0], result.stderr


@pytest.mark.parametrize("where", ["bogus", "silent", "refused"])
def test_mlflow_targets_are_checked_before_export_and_run(where, tmp_path, silent_server, refused):
    pytest.importorskip("mlflow")
    from _store_dump import dump

    uri = {"bogus": "bogus://x", "silent": silent_server, "refused": refused}[where]
    expected = {"bogus": "'bogus://x': ", "silent": "did not answer within 5 s",
                "refused": "cannot be reached"}[where]
    url = f"sqlite:///{tmp_path / 'store.db'}"
    study = _study(url, "keep")
    tb.run(study, _train, workers=0, progress=False)
    (tmp_path / "train.py").write_text("def train(trial):\n    trial.log(1, **{'val/error': 0.5})\n")
    (tmp_path / "spec.yaml").write_text(SPEC)
    before = dump(tmp_path)
    # MLflow's own client retries for minutes; the check answers within its timeout (the limit here is generous)
    _refused_in_one_line(run_cli("export", "keep", "--to", "mlflow", uri, "--storage", url, cwd=tmp_path, timeout=150),
                         "target: mlflow ", expected)
    _refused_in_one_line(run_cli("run", "spec.yaml", "--write-to", "mlflow", uri, "--storage", url, cwd=tmp_path,
                                 timeout=150), "--write-to: mlflow ", expected)
    assert dump(tmp_path) == before
