"""Where output is wrapped: to $COLUMNS when set, to the terminal on a TTY, and not at all into a pipe."""

from __future__ import annotations

import io
import os
import subprocess
import sys

from tunebook import columns


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_pipe_without_columns_is_not_wrapped(monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    assert columns.width(stream=io.StringIO()) == columns.UNWRAPPED
    line = "no replicates: 4 trials leave 1 search trials per group after 3 replicates each; replicates need 9"
    assert columns.fill([line], columns.width(stream=io.StringIO())) == line


def test_columns_wins_over_the_stream_and_is_at_least_40(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    assert columns.width(stream=io.StringIO()) == 80
    monkeypatch.setenv("COLUMNS", "12")
    assert columns.width(stream=io.StringIO()) == 40
    monkeypatch.setenv("COLUMNS", "wide")  # not a number: as if unset
    assert columns.width(stream=io.StringIO()) == columns.UNWRAPPED
    assert columns.width(stream=_Tty()) < columns.UNWRAPPED


def test_wrapping_breaks_only_at_spaces_and_keeps_a_long_url_whole():
    url = "sqlite:////tmp/" + "x" * 90 + "/tunebook.db"
    lines = columns.wrap(f"stored in {url} and then some words after it", 40, indent="  ", first="")
    assert url in [line.strip() for line in lines]
    assert all(len(line) <= 40 for line in lines if url not in line)
    assert " ".join(line.strip() for line in lines) == f"stored in {url} and then some words after it"


def test_a_real_process_writing_into_a_pipe_is_not_wrapped():
    """`tunebook ... | grep` finds a whole message: a process whose stdout is a pipe, $COLUMNS unset."""
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    proc = subprocess.run([sys.executable, "-c", "from tunebook import columns; print(columns.width())"],
                          capture_output=True, text=True, env=env)
    assert int(proc.stdout) == columns.UNWRAPPED


def test_report_and_next_lines_are_whole_in_a_pipe_and_wrapped_at_spaces_on_a_terminal(tmp_path):
    """Before: `report --format terminal | grep Answer` cut the answer at 80 columns (Rich's default off a
    terminal), and `next` printed 400-character lines on an 80-column terminal."""
    from tunebook.analysis.synthetic import exp_decay, write_study

    url = f"sqlite:///{tmp_path / 'tb.db'}"
    space = {"scientific": {"wd": {"choice": [0.0, 0.1]}},
             "nuisance": {"lr": {"type": "float", "min": 1e-3, "max": 1e-1, "scale": "log"}}}

    def curve(params, steps, rng):
        return {"val/error": exp_decay(steps, 0.2 + 0.05 * (params["wd"] == 0.1) + 0.01 * rng.standard_normal(),
                                       1.0, steps[-1] / 20)}

    write_study(url, "pipe", curve, space=space, trials=24, max_train_steps=200, evals=20, seed=0, replicates=3)
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    for verb in (("report", "pipe", "--format", "terminal"), ("next", "pipe")):
        piped = subprocess.run([sys.executable, "-m", "tunebook", *verb, "--storage", url], capture_output=True,
                               text=True, env=env)
        assert piped.returncode in (0, 1), piped.stderr
        long_lines = [line for line in piped.stdout.splitlines() if len(line) > 80]
        assert long_lines, piped.stdout  # the answer (or the proposal's reasons) runs past 80 columns, whole
        narrow = subprocess.run([sys.executable, "-m", "tunebook", *verb, "--storage", url], capture_output=True,
                                text=True, env={**env, "COLUMNS": "80"})
        assert all(len(line) <= 80 or " " not in line.strip() for line in narrow.stdout.splitlines()), narrow.stdout
        if verb[0] == "next":  # the same words, only the line breaks differ (a report's table borders do too)
            assert narrow.stdout.split() == piped.stdout.split()
