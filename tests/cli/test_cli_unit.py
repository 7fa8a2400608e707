"""The CLI's pieces in-process: the verb registry, the exit codes, argument types, stripping control characters."""

from __future__ import annotations

import argparse
import sys

import pytest

import tunebook.cli as cli
from tunebook.cli._base import at_least, port, positive_float, printable, trial_ref


@pytest.fixture
def plugged(monkeypatch):
    """tunebook.cli with one more verb group, added the way a new module is: one entry in MODULES."""
    import _cli_plugin  # tests/ is on sys.path

    monkeypatch.setitem(sys.modules, "tests.cli_plugin", _cli_plugin)  # a dotted name: a module outside tunebook.cli
    monkeypatch.setattr(cli, "MODULES", (*cli.MODULES, "tests.cli_plugin"))


def test_every_verb_has_help_and_an_example():
    verbs = cli.commands()
    names = [v.name for v in verbs]
    assert len(names) == len(set(names)) == 20
    assert {"run", "worker", "demo", "init", "status", "ls", "report", "dashboard", "retrain", "compare", "adopt",
            "lr-sweep", "batch-size", "stability", "warmup", "next-round", "study-variance", "next", "pursue", "prune"} == set(names)
    for v in verbs:
        assert v.example.startswith("tunebook ") and v.help


def test_a_new_module_plugs_in_by_one_line(plugged, capsys):
    assert cli.main(["raise", "none"]) == 0
    assert capsys.readouterr().out == "about to raise none\n"
    with pytest.raises(SystemExit):
        cli.main(["raise", "--help"])
    assert "example: tunebook raise spec" in capsys.readouterr().out


@pytest.mark.parametrize(("what", "code", "words"), [
    ("spec", 2, "tunebook: error: --what: is bad; pass a good one"),
    ("missing", 2, "tunebook: error: study: no study named 'x'"),
    ("unavailable", 3, "tunebook: error: storage: the database at db-host is unreachable"),
    ("interrupt", 130, None),
    ("multiline", 2, "tunebook: error: --what: line one line two"),
])
def test_errors_map_to_exit_codes_with_one_line(plugged, capsys, what, code, words):
    assert cli.main(["raise", what]) == code
    err = capsys.readouterr().err
    if words is None:
        assert err == ""
    else:
        assert err.splitlines() == [words]


def test_an_unknown_exception_keeps_its_traceback(plugged):
    with pytest.raises(RuntimeError, match="a bug"):
        cli.main(["raise", "bug"])


def test_two_verbs_of_one_name_are_refused(monkeypatch):
    monkeypatch.setattr(cli, "MODULES", (*cli.MODULES, "run"))
    with pytest.raises(ValueError, match="two verbs are named 'run'"):
        cli.build_parser()


def test_printable_strips_escape_sequences_and_control_characters():
    assert printable("a\x1b[31mred\x1b[0m b") == "ared b"
    assert printable("t\x1b]0;title\x07x") == "tx"
    assert printable("t\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\") == "tlink"
    assert printable("c\x9b2Jd\x00e\x7ff\x08\rg") == "cdefg"
    assert printable("keeps\ttabs\nand newlines, ünïcode") == "keeps\ttabs\nand newlines, ünïcode"


@pytest.mark.parametrize(("parse", "good", "bad"), [
    (trial_ref, {"best": "best", "3": 3}, ["abc", "-1", "1.5"]),
    (port, {"0": 0, "8080": 8080, "65535": 65535}, ["70000", "-1", "http"]),
    (positive_float, {"0.5": 0.5, "2": 2.0}, ["0", "-1", "nan", "inf", "x"]),
    (at_least(2.0), {"2": 2.0, "60": 60.0}, ["0", "1.9", "nan"]),
])
def test_argument_types(parse, good, bad):
    for text, value in good.items():
        assert parse(text) == value
    for text in bad:
        with pytest.raises(argparse.ArgumentTypeError):
            parse(text)


def test_warmup_reads_the_last_recorded_unstable_rate(sqlite_url):
    """The logic `tunebook warmup` moved into tunebook.procedures.stability."""
    import tunebook as tb
    from tunebook.procedures.stability import recorded_unstable_rate

    study = tb.create_study("s", space=tb.SearchSpace(nuisance={"learning_rate": tb.Float(1e-3, 1.0, "log")}),
                            objective=("val/error", "min"), trials=2, max_train_steps=10, storage=sqlite_url)
    assert recorded_unstable_rate(study) is None
    note = study.storage.add_note
    note("stability", "unstable above 0.3", {"unstable_learning_rate": 0.3}, experiment=study.experiment, study="s")
    note("stability", "stable", {"unstable_learning_rate": None}, experiment=study.experiment, study="s")
    note("compare", "other kind", {"unstable_learning_rate": 9.0}, experiment=study.experiment, study="s")
    assert recorded_unstable_rate(study) == 0.3
    note("stability", "unstable above 0.1", {"unstable_learning_rate": 0.1}, experiment=study.experiment, study="s")
    assert recorded_unstable_rate(study) == 0.1
