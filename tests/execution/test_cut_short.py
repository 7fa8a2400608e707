"""A trial is completed only if it ran to its end (issue 22, item 2).

Real processes and real signals: a `tunebook run` and a `tb.run` script get SIGINT while a
training function that catches ``KeyboardInterrupt`` (as pytorch/examples' word-language
model does) is running; the trial must go back to pending, not be stored completed. A
trial that returns before ``max_train_steps`` is stored as ended early, with its reason
when it gave one, and the checklist names the ones that gave none.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import tunebook as tb
from _procs import wait_for
from conftest import ROOT
from tunebook.analysis.checks import run_checks
from tunebook.analysis.data import load

WORKLOADS = ROOT / "tests" / "_workloads.py"
STEPS = 400  # at 0.05 s a step, 20 s a trial: still running when the signal lands


def spec(function: str, trials: int = 2, steps: int = STEPS) -> str:
    return f"""\
study: cut
train: {WORKLOADS}:{function}
objective: {{metric: val/error, mode: min}}
trials: {trials}
max_train_steps: {steps}
search_space:
  nuisance: {{lr: {{min: 0.1, max: 0.9}}}}
"""


def logged_steps(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


@pytest.mark.slow
@pytest.mark.parametrize("workers", ["1", "0"])
def test_a_caught_ctrl_c_leaves_the_trial_pending_not_completed(tmp_path, workers):
    """Before: the trial was stored completed at the step Ctrl-C landed, and the next trial started."""
    (tmp_path / "study.yaml").write_text(spec("catches_interrupt"))
    events = tmp_path / "events.log"
    env = {**os.environ, "TB_TEST_LOG": str(events), "TB_TEST_DELAY": "0.05"}
    proc = subprocess.Popen([sys.executable, "-m", "tunebook", "run", "study.yaml", "--workers", workers],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: logged_steps(events) >= 5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, (out, err)
    assert "run the same command again to resume" in out, (out, err)
    study = tb.load_study("cut", storage=f"sqlite:///{tmp_path}/tunebook.db")
    counts = study.counts()
    assert counts["completed"] == 0 and counts["running"] == 0, counts
    started = {int(line.split()[1]) for line in events.read_text().splitlines()}
    assert started == {0}, started  # the worker did not go on to the next trial
    (first,) = [t for t in study.trials() if t.number == 0]
    assert first.state == "pending" and first.attempts == 1
    # the points it logged stay with it, for the resumed attempt to continue
    assert study.metrics(first)["val/error"]


QUICK_START = """\
import tunebook as tb
import _workloads

study = tb.create_study("cut", space={{"nuisance": {{"lr": {{"min": 0.1, "max": 0.9}}}}}},
                        objective=("val/error", "min"), trials=2, max_train_steps={steps}, storage={url!r})
tb.run(study, _workloads.catches_interrupt, workers=0, checkpoint_dir={ckpt!r})
print("ANSWER:", study.best_trial())
"""


@pytest.mark.slow
def test_tb_run_prints_the_interrupted_line_and_raises_keyboard_interrupt(tmp_path):
    """Before: tb.run returned normally (interrupted=True, nothing printed) and the script printed an answer."""
    url = f"sqlite:///{tmp_path}/tb.db"
    script = tmp_path / "quick.py"
    script.write_text(QUICK_START.format(steps=STEPS, url=url, ckpt=str(tmp_path / "ckpt")))
    events = tmp_path / "events.log"
    env = {**os.environ, "TB_TEST_LOG": str(events), "TB_TEST_DELAY": "0.05",
           "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: logged_steps(events) >= 5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode != 0, (out, err)
    assert "KeyboardInterrupt" in err, err
    assert "interrupted: running trials went back to pending" in out, out
    assert "ANSWER:" not in out, out
    study = tb.load_study("cut", storage=url)
    assert study.counts()["completed"] == 0 and study.counts()["pending"] == 2


def run_study(tmp_path: Path, function: str, steps: int = 30) -> tb.Study:
    import _workloads

    study = tb.create_study(f"ended-{function}", space={"nuisance": {"lr": {"min": 0.1, "max": 0.9}}},
                            objective=("val/error", "min"), trials=3, max_train_steps=steps,
                            storage=f"sqlite:///{tmp_path}/tb.db")
    tb.run(study, getattr(_workloads, function), workers=0, progress=False, checkpoint_dir=tmp_path / "ckpt")
    return study


def ended_findings(study: tb.Study) -> list:
    return [f for f in run_checks(load(study)) if f.check == "ended_early"]


def test_a_trial_that_returns_before_max_train_steps_is_stored_as_ended_early_and_named(tmp_path):
    study = run_study(tmp_path, "stops_at_a_third")
    trials = study.storage.get_trials(study.id)
    assert [t.state for t in trials] == ["completed"] * 3
    assert all(t.ended == {"last_step": 10, "max_train_steps": 30, "reason": None} for t in trials), trials
    (finding,) = ended_findings(study)
    assert finding.severity == "warning" and finding.evidence["trials"] == [0, 1, 2]
    assert "3 of 3 completed trials stopped before max_train_steps=30" in finding.message
    assert "#0 at step 10" in finding.message and "trial.end(reason)" in finding.action


def test_a_trial_that_says_why_it_stopped_is_stored_with_its_reason_and_not_named(tmp_path):
    study = run_study(tmp_path, "stops_at_a_third_saying_why")
    trials = study.storage.get_trials(study.id)
    assert all(t.ended == {"last_step": 10, "max_train_steps": 30, "reason": "early stopping: val/error stopped improving"}
               for t in trials), trials
    assert ended_findings(study) == []


@pytest.mark.parametrize("function, steps", [("quadratic", 30), ("evaluates_every_tenth_step", 100)])
def test_trials_that_ran_to_their_end_are_not_marked(tmp_path, function, steps):
    """Clean studies: every step logged up to max_train_steps, or a point every 10 steps from step 0."""
    study = run_study(tmp_path, function, steps)
    assert all(t.ended is None and t.state == "completed" for t in study.storage.get_trials(study.id))
    assert ended_findings(study) == []


def test_trial_end_wants_a_reason(tmp_path):
    import _workloads  # noqa: F401

    def bad(trial):
        trial.log(1, **{"val/error": 1.0})
        trial.end("")

    study = tb.create_study("bad-end", space={"nuisance": {"lr": {"min": 0.1, "max": 0.9}}},
                            objective=("val/error", "min"), trials=1, max_train_steps=30,
                            storage=f"sqlite:///{tmp_path}/tb.db")
    tb.run(study, bad, workers=0, progress=False, checkpoint_dir=tmp_path / "ckpt")
    (t,) = study.storage.get_trials(study.id)
    assert t.state == "failed" and "trial.end: expected a reason" in t.error
