"""The best trial a study shows (`Study.best_trial`, `tunebook status`, `tunebook ls`, the run summary) is the
best *search* trial: a replicate (a group's best re-run with a new seed after the search) repeats a searched
configuration, so its lucky seed is not a result of the search (issue 21). Before, each of them showed the
replicate whenever its seed landed better than the trial it repeats."""

from __future__ import annotations

import json

import numpy as np

import tunebook as tb
from conftest import run_cli
from tunebook.analysis import load
from tunebook.analysis.synthetic import exp_decay, write_study
from tunebook.study import outcome_lines

SPACE = {"nuisance": {"learning_rate": {"min": 1e-3, "max": 1.0, "scale": "log"}}}


def _study(url: str) -> tb.Study:
    """12 trials: 9 search trials, then 3 replicates of the best, each landing 0.05 better than anything searched
    (write_study fills the search trials first, then the replicates)."""
    filled = {"n": 0}

    def curve(params, steps, rng):
        filled["n"] += 1
        final = 0.1 + 0.05 * (np.log10(params["learning_rate"]) + 1.5) ** 2 - (0.05 if filled["n"] > 9 else 0.0)
        return {"val/error": exp_decay(steps, final, 0.9, 60)}

    return write_study(url, "rep", curve, space=SPACE, trials=12, replicates=3)


def test_the_best_trial_is_the_best_search_trial_not_a_replicate(sqlite_url):
    study = _study(sqlite_url)
    data = load(study)
    replicas = {t.number for t in data.replicates}
    assert len(replicas) == 3
    everything = min((t for t in study.trials() if t.state == "completed"), key=lambda t: (t.value, t.number))
    assert everything.number in replicas  # the case: a replicate holds the lowest value of the store
    best = study.best_trial()
    assert best is not None and best.number not in replicas
    search_best = min((t for t in study.trials() if t.number not in replicas), key=lambda t: (t.value, t.number))
    assert best.number == search_best.number and best.value == search_best.value
    assert data.replicate_of[everything.number] == best.number  # the replicates re-run it
    assert any(f"trial #{best.number}:" in line for line in outcome_lines(study))


def test_status_and_ls_show_the_best_search_trial(tmp_path):
    url = f"sqlite:///{tmp_path / 'tunebook.db'}"
    study = _study(url)
    best = study.best_trial()
    replicas = {t.number for t in load(study).replicates}
    status = run_cli("status", "rep", "--storage", url, env={"COLUMNS": "200"})
    assert status.returncode == 0, status.stderr
    assert f"trial #{best.number}:" in status.stdout
    assert not any(f"trial #{n}:" in status.stdout for n in replicas), status.stdout
    (row,) = json.loads(run_cli("ls", "--format", "json", "--storage", url).stdout)
    assert row["best_trial"] == best.number and row["best_value"] == best.value and row["replicates"] == 3
