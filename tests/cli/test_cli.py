"""The `tunebook` command, run as a real subprocess."""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import pytest

import tunebook as tb
from _store_dump import rows
from conftest import ROOT, run_cli

WORKLOADS = ROOT / "tests" / "_workloads.py"

GOOD = f"""\
study: wd
goal: does wd help?
train: {WORKLOADS}:quadratic
objective: {{metric: val/error, mode: min}}
trials: 4
max_train_steps: 10
search_space:
  scientific: {{wd: {{choice: [0.0, 1.0e-3]}}}}
  nuisance: {{lr: {{min: 1.0e-4, max: 1.0, scale: log}}}}
  fixed: {{batch_size: 32}}
"""


def store_snapshot(db: Path) -> dict:
    return rows(f"sqlite:///{db}")


BAD_SPECS = [
    ("trails: 24\n", "trails", "unknown field"),
    (GOOD.replace("max_train_steps:", "max_train_step:"), "max_train_step", "did you mean max_train_steps?"),
    (GOOD.replace("objective: {metric: val/error, mode: min}\n", ""), "objective", "is missing"),
    (GOOD.replace("mode: min", "mode: lowest"), "objective.mode", "use 'min' or 'max'"),
    (GOOD.replace("trials: 4", "trials: 0"), "trials", "positive integer"),
    (GOOD.replace("max_train_steps: 10", "max_train_steps: long"), "max_train_steps", "positive integer"),
    (GOOD.replace("min: 1.0e-4, max: 1.0", "min: 1.0, max: 1.0e-4"), "search_space.nuisance.lr", "must be below max"),
    (GOOD.replace("min: 1.0e-4, max: 1.0, scale: log", "min: 0.0, max: 1.0, scale: log"), "search_space.nuisance.lr.min", "log scale"),
    (GOOD.replace("choice: [0.0, 1.0e-3]", "choice: []"), "search_space.scientific.wd.choice", "is empty"),
    (GOOD.replace("fixed: {batch_size: 32}", "fixed: {lr: 0.1}"), "search_space.fixed.lr", "already nuisance"),
    (GOOD.replace("scale: log", "scale: logarithmic"), "search_space.nuisance.lr.scale", "unknown scale"),
    (GOOD.replace("scale: log}", "scale: log, step: 2}"), "search_space.nuisance.lr.step", "unknown key"),
    (GOOD.replace("min: 1.0e-4", "min: tiny"), "search_space.nuisance.lr.min", "expected a number"),
    (GOOD.replace(f"train: {WORKLOADS}:quadratic", "train: no_such_module_xyz:train"), "train", "cannot import"),
    (GOOD.replace(f"train: {WORKLOADS}:quadratic", f"train: {WORKLOADS}:nope"), "train", "no function 'nope'"),
    (GOOD.replace("study: wd", "study: my study"), "study", "invalid name"),
    (GOOD.replace("trials: 4", "trials: 5"), "trials", "multiple of the 2 scientific"),
    (GOOD + "infeasible_if: {train/loss: 10}\n", "infeasible_if.train/loss", "above"),
    (GOOD + "design: bayes\n", "design", "unknown design"),
    ("study: [unclosed\n", "spec", "not valid YAML"),
    (GOOD.replace("max_train_steps: 10", "max_train_steps: 20"), "max_train_steps", "never tuned inside a study"),
]


@pytest.mark.parametrize(("text", "field", "words"), BAD_SPECS, ids=[f"{i}-{b[1]}" for i, b in enumerate(BAD_SPECS)])
def test_bad_spec_exits_2_with_one_line_and_changes_nothing(tmp_path, text, field, words):
    db = tmp_path / "tunebook.db"
    # an existing study in the store, which a bad spec must not touch
    tb.create_study(
        "wd", space={"scientific": {"wd": {"choice": [0.0, 1.0e-3]}}, "nuisance": {"lr": {"min": 1.0e-4, "max": 1.0, "scale": "log"}}, "fixed": {"batch_size": 32}},
        objective={"metric": "val/error", "mode": "min"}, trials=4, max_train_steps=10, goal="does wd help?",
        train=f"{WORKLOADS}:quadratic", storage=f"sqlite:///{db}",
    )
    before = store_snapshot(db)
    spec = tmp_path / "bad.yaml"
    spec.write_text(text)
    proc = run_cli("run", str(spec), "--storage", f"sqlite:///{db}", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr + proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"tunebook: error: {field}: "), lines[0]
    assert words in lines[0]
    assert store_snapshot(db) == before


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["run", "missing.yaml"], "spec: no such file"),
        (["run", "x.yaml", "--workers", "-1"], "argument --workers"),
        (["ls", "--storage", "mysql://h/db"], "storage: unknown storage scheme"),
        (["status", "nope"], "--storage: no store at"),  # a read-only verb never creates the store it was given
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(tmp_path, args, words):
    proc = run_cli(*args, cwd=tmp_path)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and words in proc.stderr, proc.stderr


def commit_spec(folder: Path, text: str) -> str:
    """A git repository in ``folder`` with study.yaml committed; returns the commit."""
    subprocess.run(["git", "init", "-q"], cwd=folder, check=True)
    (folder / "study.yaml").write_text(text)
    subprocess.run(["git", "add", "study.yaml"], cwd=folder, check=True)
    subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "spec"], cwd=folder, check=True)
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True).stdout.strip()


def test_run_then_ls_and_status_show_the_notebook_row(tmp_path):
    commit = commit_spec(tmp_path, GOOD)

    proc = run_cli("run", "study.yaml", "--workers", "2", "--quiet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "wd: 4 completed, 0 infeasible, 0 failed, 0 left of 4" in proc.stdout
    assert f"stored in sqlite:///{tmp_path}/tunebook.db" in proc.stdout

    rows = json.loads(run_cli("ls", "--format", "json", cwd=tmp_path).stdout)
    (row,) = rows
    study = tb.load_study("wd", storage=f"sqlite:///{tmp_path}/tunebook.db")
    assert row["study"] == "wd" and row["goal"] == "does wd help?"
    assert row["config"].startswith("study.yaml@") and len(row["config"].split("@")[1]) == 12
    assert (row["completed"], row["infeasible"], row["failed"], row["total"]) == (4, 0, 0, 4)
    assert row["best_value"] == pytest.approx(study.best_trial().value)
    assert row["best_step"] == 10
    assert row["reproduce"].startswith("tunebook run study.yaml --workers 2 --quiet  @ " + commit[:10])
    assert row["git_commit"] == commit and row["git_dirty"] is False

    table = run_cli("ls", cwd=tmp_path, env={"COLUMNS": "200"}).stdout  # a wide terminal: the table
    assert "wd" in table and "does wd help?" in table and "4/0/0/4" in table

    status = run_cli("status", "wd", cwd=tmp_path).stdout
    assert "completed 4" in status and "best val/error" in status


def test_dirty_tree_is_recorded(tmp_path):
    commit_spec(tmp_path, GOOD)
    spec = tmp_path / "study.yaml"
    spec.write_text(GOOD.replace("goal: does wd help?", "goal: edited"))
    assert run_cli("run", "study.yaml", "--workers", "0", "--quiet", cwd=tmp_path).returncode == 0
    (row,) = json.loads(run_cli("ls", "--format", "json", cwd=tmp_path).stdout)
    assert row["git_dirty"] is True and "(dirty tree)" in row["reproduce"]


def test_init_writes_an_example_that_runs(tmp_path):
    proc = run_cli("init", "--dir", str(tmp_path))
    assert proc.returncode == 0
    assert (tmp_path / "study.yaml").exists() and (tmp_path / "train.py").exists()
    again = run_cli("init", "--dir", str(tmp_path))
    assert again.returncode == 2 and "--force" in again.stderr
    spec = (tmp_path / "study.yaml").read_text().replace("trials: 12 ", "trials: 4 ").replace("max_train_steps: 200", "max_train_steps: 40")
    (tmp_path / "study.yaml").write_text(spec)
    proc = run_cli("run", "study.yaml", "--workers", "2", "--quiet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    study = tb.load_study("example-weight-decay", storage=f"sqlite:///{tmp_path}/tunebook.db")
    assert study.counts()["completed"] + study.counts()["infeasible"] == 4
    assert study.best_trial() is not None


def test_sampling_more_extends_the_same_study(tmp_path):
    spec = tmp_path / "study.yaml"
    spec.write_text(GOOD)
    assert run_cli("run", "study.yaml", "--workers", "0", "--quiet", cwd=tmp_path).returncode == 0
    study = tb.load_study("wd", storage=f"sqlite:///{tmp_path}/tunebook.db")
    first = [(t.params, t.value) for t in study.trials()]
    spec.write_text(GOOD.replace("trials: 4", "trials: 8"))
    assert run_cli("run", "study.yaml", "--workers", "0", "--quiet", cwd=tmp_path).returncode == 0
    after = tb.load_study("wd", storage=f"sqlite:///{tmp_path}/tunebook.db").trials()
    assert [(t.params, t.value) for t in after[:4]] == first
    assert len(after) == 8 and all(t.state == "completed" for t in after)


def test_help_shows_an_example():
    for verb in ("run", "status", "ls", "init", "demo", "report", "worker", "dashboard", "batch-size", "lr-sweep",
                 "stability", "warmup", "retrain", "compare", "adopt", "next-round"):
        proc = run_cli(verb, "--help")
        assert proc.returncode == 0 and "example: tunebook" in proc.stdout, verb


def test_yaml_one_e_minus_four_without_a_dot_is_a_number(tmp_path):
    spec = tmp_path / "study.yaml"
    spec.write_text(textwrap.dedent(GOOD).replace("min: 1.0e-4", "min: 1e-4"))
    proc = run_cli("run", "study.yaml", "--workers", "0", "--quiet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr


def test_markup_in_a_goal_is_printed_as_text(tmp_path):
    spec = tmp_path / "study.yaml"
    spec.write_text(GOOD.replace("goal: does wd help?", "goal: '[bold]wd[/] [/nope] help?'"))
    assert run_cli("run", "study.yaml", "--workers", "0", "--quiet", cwd=tmp_path).returncode == 0
    table = run_cli("ls", cwd=tmp_path)
    assert table.returncode == 0 and "[bold]wd[/] [/nope] help?" in table.stdout
    terminal = run_cli("report", "wd", "--format", "terminal", cwd=tmp_path)
    assert terminal.returncode == 0 and "[bold]wd[/]" in terminal.stdout


@pytest.mark.parametrize(("trials", "tuned", "fixed"), [
    (8, ["learning_rate"], ["beta1", "beta2", "epsilon"]),
    (30, ["learning_rate", "beta1"], ["beta2", "epsilon"]),
    (60, ["learning_rate", "beta1", "epsilon"], ["beta2"]),
    (300, ["learning_rate", "beta1", "epsilon", "beta2"], []),
])
def test_init_suggests_adam_hyperparameters_by_budget(tmp_path, trials, tuned, fixed):
    import yaml

    assert run_cli("init", "--dir", str(tmp_path), "--trials", str(trials)).returncode == 0
    spec = yaml.safe_load((tmp_path / "study.yaml").read_text())
    assert spec["trials"] == trials
    assert list(spec["search_space"]["nuisance"]) == tuned
    assert all(name in spec["search_space"]["fixed"] for name in fixed)
    tb.SearchSpace.from_spec(spec["search_space"])  # a valid space
