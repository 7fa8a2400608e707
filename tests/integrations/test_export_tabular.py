"""CSV and Parquet exports: a trials table (role.name columns) and a long-form curves table."""

from __future__ import annotations

import csv

import pytest

import tunebook as tb
from _exports import make_study
from tunebook.errors import SpecError
from tunebook.integrations import export
from tunebook.integrations.tabular import curves_path


def _read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_csv_has_a_row_per_trial_and_curves_in_long_form(sqlite_url, tmp_path):
    study = make_study(sqlite_url)
    trials_file, curves_file = export.to_csv(study, tmp_path / "wd.csv")
    assert curves_file == tmp_path / "wd-curves.csv"
    rows = _read_csv(trials_file)
    assert list(rows[0]) == ["scientific.optimizer", "nuisance.learning_rate", "fixed.batch_size", "number", "state",
                             "value", "best_step", "seed", "infeasible_reason", "error", "attempts", "replicate_of",
                             "length_probe_of", "max_train_steps"]
    stored = study.trials()
    assert [int(r["number"]) for r in rows] == [t.number for t in stored]
    for row, t in zip(rows, stored):
        assert row["scientific.optimizer"] == t.params["optimizer"]
        assert float(row["nuisance.learning_rate"]) == t.params["learning_rate"]  # repr round-trips exactly
        assert row["fixed.batch_size"] == "32"
        assert row["state"] == t.state and int(row["seed"]) == t.seed
        if t.state == "completed":
            assert float(row["value"]) == t.value and int(row["best_step"]) == t.best_step
            assert row["infeasible_reason"] == ""
        else:
            assert row["value"] == "" and row["infeasible_reason"] == t.infeasible_reason
    curves = _read_csv(curves_file)
    expected = [(t.number, m, s, v) for t in stored for m, pts in sorted(study.metrics(t).items()) for s, v in pts]
    assert [(int(r["trial"]), r["metric"], int(r["step"]), float(r["value"])) for r in curves] == expected


def test_parquet_round_trips_with_types_and_blank_cells_for_missing_params(sqlite_url, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    study = make_study(sqlite_url)
    # A trial that lacks a hyperparameter (conditional spaces): its cell is blank (null).
    study.storage.extend_study(study.id, [{"number": 8, "params": {"optimizer": "adam"}, "seed": 1}], 9)
    trials_file, curves_file = export.export(study, to="parquet", target=tmp_path / "wd.parquet")
    table = pq.read_table(trials_file).to_pylist()
    assert len(table) == len(study.trials())
    assert table[-1]["nuisance.learning_rate"] is None and table[-1]["state"] == "pending"
    assert table[0]["nuisance.learning_rate"] == study.trials()[0].params["learning_rate"]
    assert table[0]["fixed.batch_size"] == 32 and isinstance(table[0]["value"], float)
    curves = pq.read_table(curves_file)
    assert curves.column_names == ["trial", "metric", "step", "value"]
    assert curves.num_rows == sum(len(p) for t in study.trials() for p in study.metrics(t).values())


def test_bad_targets_are_refused_before_writing(sqlite_url, tmp_path):
    study = make_study(sqlite_url, trials=2)
    with pytest.raises(SpecError, match="target: .* does not end in .csv"):
        export.to_csv(study, tmp_path / "wd.txt")
    with pytest.raises(SpecError, match="folder .* does not exist"):
        export.to_csv(study, tmp_path / "missing" / "wd.csv")
    with pytest.raises(SpecError, match="to: unknown tracker 'excel'"):
        export.export(study, to="excel", target=tmp_path / "x")
    assert not [p for p in tmp_path.iterdir() if not p.name.startswith("tunebook.db")]
    assert curves_path("a/b.parquet").as_posix() == "a/b-curves.parquet"
    assert isinstance(study, tb.Study)


def test_csv_marks_each_replicate_with_the_trial_it_re_runs(sqlite_url, tmp_path):
    from tunebook.analysis.data import load
    from tunebook.analysis.synthetic import exp_decay, write_study

    space = {"scientific": {"wd": {"choice": [0.0, 0.1]}}, "nuisance": {"lr": {"min": 1e-3, "max": 1.0, "scale": "log"}}}

    def curve(params, steps, rng):
        return {"val/error": exp_decay(steps, 0.2 + params["wd"] + 0.01 * rng.standard_normal(), 1.0, steps[-1] / 20)}

    study = write_study(sqlite_url, "reps", curve, space=space, trials=24, max_train_steps=200, evals=20, replicates=3)
    of = load(study).replicate_of
    assert len(of) == 6  # 18 search trials, then 3 replicates of each group's best
    rows = _read_csv(export.to_csv(study, tmp_path / "reps.csv")[0])
    assert len(rows) == 24
    assert {int(r["number"]): r["replicate_of"] for r in rows} == {n: str(of[n]) if n in of else "" for n in range(24)}
    for r in rows:  # a replicate re-runs its trial's configuration
        if r["replicate_of"]:
            source = rows[int(r["replicate_of"])]
            assert (r["scientific.wd"], r["nuisance.lr"]) == (source["scientific.wd"], source["nuisance.lr"])
