"""The run's progress fits an 80-column terminal: done/total, rate and time left, no word broken."""

from __future__ import annotations

import re
from types import SimpleNamespace

from rich.console import Console, Group

from conftest import run_cli
from tunebook.execution.progress import Reporter, duration

NAME = "a-rather-long-study-name-for-an-eighty-column-terminal"


def test_the_run_line_wraps_at_spaces_within_80_columns(tmp_path):
    (tmp_path / "study.yaml").write_text(f"""
study: {NAME}
objective: {{metric: val/error, mode: min}}
trials: 4
max_train_steps: 30
train: tunebook.workloads.digits:train
search_space:
  nuisance:
    learning_rate: {{type: float, min: 0.01, max: 0.5, scale: log}}
  fixed: {{eval_every: 10, hidden: 16}}
""")
    out = run_cli("run", "study.yaml", "--storage", f"sqlite:///{tmp_path / 'a.db'}", "--workers", "1",
                  cwd=tmp_path, env={"COLUMNS": "80"})
    assert out.returncode == 0, out.stderr
    progress = [line for line in out.stdout.splitlines() if line.startswith("[") or line.startswith("  ")]
    assert progress, out.stdout
    # a token wider than the line (the store's URL under pytest's long temporary path) stays whole on its own line
    assert all(len(line) <= 80 or " " not in line.strip() for line in out.stdout.splitlines()), out.stdout
    text = " ".join(line.strip() for line in progress)
    assert NAME in text  # never cut inside the name
    assert re.search(r"\[4/4\] " + re.escape(NAME), text)
    assert re.search(r"best val/error \d\.\d+ \(#\d\)", text)  # the best value whole
    assert re.search(r"\d[\d.]*/min, about \d+(\.\d+)?(m\d\ds| s)", text)  # a rate and the time left


def test_the_bar_fits_80_columns_with_rate_and_time_left():
    counts = {"completed": 0, "infeasible": 0, "failed": 0, "running": 2, "pending": 6}
    best = SimpleNamespace(value=0.123456, number=3)
    study = SimpleNamespace(name=NAME, trials_budget=8, objective=("val/error", "min"),
                            counts=lambda: dict(counts), best_trial=lambda: best)
    now = [0.0]
    console = Console(width=80, record=True, force_terminal=True, color_system=None)
    reporter = Reporter(study, True, console=console, clock=lambda: now[0])
    reporter.update()
    counts.update(completed=3, pending=3)
    now[0] = 90.0  # 3 trials in 90 s: 2 a minute, 5 left: 2m30s
    reporter.update()
    reporter.close()
    screen = Console(width=80, color_system=None)  # what the live display draws, drawn once
    with screen.capture() as capture:
        screen.print(Group(*reporter.progress.get_renderables()))
    text = capture.get()
    lines = [line for line in text.splitlines() if line.strip()]
    assert all(len(line) <= 80 for line in lines), text
    assert "a-rather-long-study-nam…" in text and "3/8" in text and "2/min" in text and "2m30s left" in text
    assert "best val/error 0.1235 (#3)" in text


def test_durations_read_as_people_write_them():
    assert [duration(s) for s in (4.2, 65, 3725)] == ["4 s", "1m05s", "1h02m"]
