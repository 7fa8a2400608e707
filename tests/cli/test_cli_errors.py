"""Bad CLI inputs that used to give tracebacks: one line naming the field, exit 2, the store unchanged.

Each runs the real `tunebook` command in a subprocess against a store that holds
one completed study.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

import tunebook as tb
from _store_dump import rows
from conftest import ROOT, run_cli

WORKLOADS = ROOT / "tests" / "_workloads.py"


def snapshot(db: Path) -> dict:
    """Every row of every table of a SQLite store."""
    return rows(f"sqlite:///{db}")


@pytest.fixture
def store(tmp_path) -> str:
    """A store with study 'wd' (4 completed trials, nuisance lr, fixed batch_size)."""
    url = f"sqlite:///{tmp_path / 'tunebook.db'}"
    study = tb.create_study(
        "wd", space={"nuisance": {"lr": {"min": 1e-4, "max": 1.0, "scale": "log"}}, "fixed": {"batch_size": 32}},
        objective=("val/error", "min"), trials=4, max_train_steps=10, goal="g", storage=url,
        train=f"{WORKLOADS}:quadratic",
    )
    tb.run(study, workers=0, progress=False)
    assert study.counts()["completed"] == 4
    return url


def fails_with_one_line(store: str, cwd: Path, *args: str, field: str) -> str:
    """Run the command; assert exit 2, one stderr line naming ``field``, nothing on stdout, the store unchanged."""
    db = Path(store.removeprefix("sqlite:///"))
    before = snapshot(db)
    proc = run_cli(*args, "--storage", store, cwd=cwd, timeout=60)
    assert proc.returncode == 2, proc.stderr + proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("tunebook: error: ") and field in lines[0], lines[0]
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert snapshot(db) == before
    return lines[0]


def test_report_into_a_missing_folder(store, tmp_path):
    line = fails_with_one_line(store, tmp_path, "report", "wd", "-o", str(tmp_path / "nope" / "r.html"), field="--output")
    assert "does not exist" in line
    assert not (tmp_path / "nope").exists()


def test_report_onto_a_folder(store, tmp_path):
    line = fails_with_one_line(store, tmp_path, "report", "wd", "-o", str(tmp_path), field="--output")
    assert "is a folder" in line


def test_retrain_trial_must_be_a_number_or_best(store, tmp_path):
    line = fails_with_one_line(store, tmp_path, "retrain", "wd", "--trial", "abc", field="--trial")
    assert "expected 'best' or a trial number" in line


def test_dashboard_port_out_of_range(store, tmp_path):
    line = fails_with_one_line(store, tmp_path, "dashboard", "--port", "70000", field="--port")
    assert "0 to 65535" in line


@pytest.mark.parametrize("host", ["nosuch.invalid", "192.0.2.1"])  # no such name; an address of no interface here
def test_dashboard_bad_host(store, tmp_path, host):
    fails_with_one_line(store, tmp_path, "dashboard", "--host", host, "--token", "x" * 32, "--port", "0", field="--host")


def test_dashboard_port_in_use_is_refused_before_the_url_is_printed(store, tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        line = fails_with_one_line(store, tmp_path, "dashboard", "--port", str(port), field="--port")
    assert f"port {port}" in line and "in use" in line


def test_worker_negative_poll_interval(store, tmp_path):
    fails_with_one_line(store, tmp_path, "worker", "--poll-interval", "-1", field="--poll-interval")


@pytest.mark.parametrize("value", ["0", "1", "nan"])
def test_worker_stale_after_has_a_safe_minimum(store, tmp_path, value):
    line = fails_with_one_line(store, tmp_path, "worker", "--stale-after", value, field="--stale-after")
    assert "expected at least 2" in line or "finite" in line


def test_next_round_retune_names_a_tuned_hyperparameter(store, tmp_path):
    line = fails_with_one_line(store, tmp_path, "next-round", "wd", "--steps", "20", "--retune", "nosuch", field="--retune")
    assert "'nosuch'" in line and "lr" in line


def test_next_round_retune_of_a_fixed_value(store, tmp_path):
    line = fails_with_one_line(store, tmp_path, "next-round", "wd", "--steps", "20", "--retune", "batch_size", field="--retune")
    assert "a fixed value" in line


def test_next_round_retune_of_a_tuned_name_still_works(store, tmp_path):
    proc = run_cli("next-round", "wd", "--steps", "20", "--retune", "lr", "--storage", store, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "learning rate re-tuned (lr)" in proc.stdout
    assert list(tb.load_study("wd-r2", storage=store).space.params) == ["lr"]
