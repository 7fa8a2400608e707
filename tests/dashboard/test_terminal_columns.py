"""The terminal at 80 columns: `tunebook ls` and `tunebook status STUDY` wrap at spaces, never inside a word
(captured from the real command with COLUMNS=80)."""

from __future__ import annotations

import re

import pytest

import tunebook as tb
from conftest import run_cli
from tunebook.analysis.synthetic import exp_decay, write_study

GOAL = "Does decoupled weight decay help a small experimental MLP on the digits classification benchmark?"


def curve(params, steps, rng):
    return {"val/error": exp_decay(steps, 0.05 + 0.1 * abs(params["learning_rate"] - 0.01) + params["weight_decay"], 1.0, 60)}


@pytest.fixture
def store(tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'a-rather-long-folder-name-for-the-experiment-store' / 'tunebook.db'}"
    (tmp_path / "a-rather-long-folder-name-for-the-experiment-store").mkdir()
    write_study(url, "weight-decay-experiment-round-one", curve, experiment="experiment-with-a-long-name",
                space={"scientific": {"weight_decay": {"choice": [0.0, 0.001]}},
                       "nuisance": {"learning_rate": {"min": 1e-4, "max": 1.0, "scale": "log"},
                                    "adam_beta1_momentum": {"min": 0.8, "max": 0.99}}},
                trials=12, goal=GOAL)
    return url


def words_whole(output: str, *texts: str) -> None:
    """Every word of ``texts`` appears whole in ``output`` (a word cut at a line end would not)."""
    tokens = set(output.split())
    for text in texts:
        for word in text.split():
            assert word in tokens or any(word in t for t in tokens if len(t) > len(word)), (word, output)


def test_ls_at_80_columns_wraps_between_words(store):
    result = run_cli("ls", "--storage", store, env={"COLUMNS": "80"})
    assert result.returncode == 0, result.stderr
    out = result.stdout
    study = tb.load_study("weight-decay-experiment-round-one", storage=store)
    reproduce = study.record.repro_command or ""
    words_whole(out, GOAL, "experiment-with-a-long-name", "weight-decay-experiment-round-one")
    for line in out.splitlines():  # a line wider than 80 is one unbreakable word (a path), never a cut one
        assert len(line) <= 80 or " " not in line.strip(), line
    assert "experime\n" not in out and "--storag\n" not in out
    assert re.search(r"trials\s+\d+/\d+/\d+/12", out)
    assert re.search(r"best\s+val/error \(min\) = [0-9.]+ @ step \d+ \(#\d+\)", out), out
    assert reproduce == "" or all(w in out.split() for w in reproduce.split())


def test_status_at_80_columns_lists_the_best_parameters_a_pair_at_a_time(store):
    result = run_cli("status", "weight-decay-experiment-round-one", "--storage", store, env={"COLUMNS": "80"})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines), [line for line in lines if len(line) > 80]
    best = tb.load_study("weight-decay-experiment-round-one", storage=store).best_trial()
    pairs = [p.strip().rstrip(",") for line in lines if line.startswith("    ") for p in line.split(", ")]
    for name, value in best.params.items():
        shown = f"{value:.6g}" if isinstance(value, float) else str(value)
        assert f"{name}={shown}" in pairs, (name, pairs)
