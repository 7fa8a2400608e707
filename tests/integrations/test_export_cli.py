"""The `export` and `import` verbs, through the real CLI's main()."""

from __future__ import annotations

import argparse
import csv

import pytest

import tunebook as tb
from _exports import make_study
from tunebook import cli
from tunebook.integrations import cli_export


@pytest.fixture
def tunebook_main():
    """The real CLI's ``main``: ``export`` and ``import`` are registered through ``tunebook.cli.MODULES``."""
    return cli.main


def test_export_csv_and_tensorboard_from_the_command_line(tunebook_main, sqlite_url, tmp_path, capsys):
    study = make_study(sqlite_url)
    assert tunebook_main(["export", "wd", "--to", "csv", str(tmp_path / "t.csv"), "--storage", sqlite_url]) == 0
    assert "exported study 'wd' (8 trials) to csv" in capsys.readouterr().out
    with open(tmp_path / "t.csv", newline="") as f:
        assert [int(r["number"]) for r in csv.DictReader(f)] == [t.number for t in study.trials()]
    assert (tmp_path / "t-curves.csv").exists()
    assert tunebook_main(["export", "wd", "--to", "tensorboard", str(tmp_path / "tb"), "--storage", sqlite_url]) == 0
    assert sorted(p.name for p in (tmp_path / "tb" / "wd").iterdir() if p.is_dir())[:2] == ["trial-0000", "trial-0001"]


def test_bad_input_is_one_line_exit_2_and_writes_nothing(tunebook_main, sqlite_url, tmp_path, capsys):
    make_study(sqlite_url, trials=2)
    assert tunebook_main(["export", "nope", "--to", "csv", str(tmp_path / "t.csv"), "--storage", sqlite_url]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tunebook: error: study: no study named 'nope'") and "\n" not in err
    assert tunebook_main(["export", "wd", "--to", "csv", str(tmp_path / "t.txt"), "--storage", sqlite_url]) == 2
    assert "target:" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        tunebook_main(["export", "wd", "--to", "excel", "x.xlsx"])
    assert exit_.value.code == 2 and "invalid choice: 'excel'" in capsys.readouterr().err
    assert not [p for p in tmp_path.iterdir() if not p.name.startswith("tunebook.db")]


def test_import_optuna_from_the_command_line(tunebook_main, tmp_path, capsys):
    optuna = pytest.importorskip("optuna")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    source = optuna.create_study(study_name="quad", storage=url, sampler=optuna.samplers.RandomSampler(seed=1))
    source.optimize(lambda t: (t.suggest_float("x", -2, 2) - 0.5) ** 2 + (t.suggest_categorical("c", ["a", "b"]) == "b"),
                    n_trials=6)
    target = f"sqlite:///{tmp_path / 'tb.db'}"
    bad = ["import", "optuna", "--storage", url, "--study", "quad", "--to", target, "--scientific", "y"]
    assert tunebook_main(bad) == 2
    assert "scientific: Optuna study 'quad' has no parameter 'y'; its parameters are: x, c" in capsys.readouterr().err
    assert tb.open_storage(target).list_studies() == []
    assert tunebook_main(["import", "optuna", "--storage", url, "--study", "quad", "--to", target,
                          "--scientific", "c", "--name", "quad-imported", "--goal", "Does c matter?"]) == 0
    out = capsys.readouterr().out
    assert "imported Optuna study 'quad' as 'quad-imported': 6 completed" in out
    study = tb.load_study("quad-imported", target)
    assert study.goal == "Does c matter?" and list(study.space.scientific) == ["c"]


def test_handlers_return_exit_codes_through_a_plain_argparse_harness(sqlite_url, tmp_path):
    make_study(sqlite_url, trials=2)
    parser = argparse.ArgumentParser(prog="tb")
    cli_export.add_parsers(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["export", "wd", "--to", "parquet", str(tmp_path / "t.parquet"), "--storage", sqlite_url])
    assert args.handler(args) == 0 and (tmp_path / "t-curves.parquet").exists()
    with pytest.raises(SystemExit):
        parser.parse_args(["import", "optuna", "--study", "x"])  # --storage is required
