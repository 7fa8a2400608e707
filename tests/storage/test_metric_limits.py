"""Every backend stores the same things (issue 22, item 4), on real SQLite and PostgreSQL.

Before: on PostgreSQL a 300-character metric name or a step of 2**40 failed the finish, the
fallback dropped the trial's points and stored it failed with a NULL error ("failed #0: "); a
step of 2**70 raised OverflowError and left the trial running; SQLite kept all of it. Now both
refuse the same points at ``trial.log`` time with one line naming the metric and the step, keep
the points logged before, and store the cause.
"""

from __future__ import annotations

import os

import pytest

import tunebook as tb
from tunebook.errors import SpecError, failure_line
from tunebook.trial import MAX_STEP, as_step


def study_of(url: str, name: str) -> tb.Study:
    return tb.create_study(name, space={"nuisance": {"lr": {"min": 0.1, "max": 0.9}}},
                           objective=("val/error", "min"), trials=1, max_train_steps=10, storage=url)


def run_one(url: str, tmp_path, name: str, train) -> tuple[tb.Study, object]:
    study = study_of(url, name)
    tb.run(study, train, workers=0, progress=False, checkpoint_dir=tmp_path / "ckpt")
    (trial,) = study.storage.get_trials(study.id)
    return study, trial


def five_points(trial) -> None:
    for step in range(1, 6):
        trial.log(step, **{"val/error": 1.0 / step})


@pytest.mark.parametrize("bad", [2**31, 2**40, 2**70, -1])
def test_a_step_no_store_keeps_is_refused_at_log_time_with_one_line(storage_url, tmp_path, bad):
    seen: list[str] = []

    def train(trial):
        five_points(trial)
        try:
            trial.log(bad, **{"val/error": 0.1})
        except SpecError as exc:
            seen.append(str(exc))
            raise

    study, trial = run_one(storage_url, tmp_path, "steps", train)
    assert seen == [f"step: {bad} is outside the steps every store keeps (0 to {MAX_STEP:,}); "
                    "log at the training step, counted from 0"]
    assert trial.state == "failed" and failure_line(trial.error).endswith(seen[0])
    assert [r.step for r in study.storage.get_metrics(trial.id)] == [1, 2, 3, 4, 5]  # the points before stay


def test_the_step_bound_passes_the_largest_step_every_store_keeps(storage_url, tmp_path):
    assert as_step(MAX_STEP) == MAX_STEP and as_step(0) == 0

    def train(trial):
        five_points(trial)
        trial.log(MAX_STEP, **{"val/error": 0.01})

    study, trial = run_one(storage_url, tmp_path, "top", train)
    assert trial.state == "completed" and trial.value == 0.01 and trial.best_step == MAX_STEP


@pytest.mark.parametrize("name, problem", [
    ("m" * 300, "is 300 characters long (every store keeps at most 200); use at most 200 characters"),
    ("loss\x1b[31m", "contains the control character '\\x1b'"),
    ("a\nb", "contains the control character '\\n'"),
])
def test_a_metric_name_no_store_keeps_fails_the_trial_naming_it(storage_url, tmp_path, name, problem):
    def train(trial):
        five_points(trial)
        trial.log(6, **{name: 1.0, "val/error": 0.05})
        trial.flush()  # the name is checked in the writer thread: the next log, flush or the end raises

    study, trial = run_one(storage_url, tmp_path, "names", train)
    assert trial.state == "failed", trial
    line = failure_line(trial.error)
    assert line.startswith("tunebook.errors.SpecError: metric ") and "at step 6: " in line and problem in line, line
    rows = study.storage.get_metrics(trial.id)
    assert [(r.step, r.name) for r in rows][-1] == (6, "val/error")  # the rest of the batch is stored
    assert {r.name for r in rows} == {"val/error"}


def test_a_valid_long_name_is_kept_the_same_on_every_backend(storage_url, tmp_path):
    name = "n" * 200

    def train(trial):
        five_points(trial)
        trial.log(6, **{name: 2.0})

    study, trial = run_one(storage_url, tmp_path, "long", train)
    assert trial.state == "completed"
    assert [r.value for r in study.storage.get_metrics(trial.id, [name])] == [2.0]


@pytest.mark.filterwarnings("ignore:os.fork\\(\\) was called:RuntimeWarning")  # JAX's, third-party
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")  # CPython's
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_that_raises_does_not_change_its_parents_outcome(storage_url, tmp_path):
    """Before: the child's exception was recorded (failed, 0 metric rows) though the parent logged 5 points."""

    def train(trial):
        five_points(trial)
        trial.flush()
        pid = os.fork()
        if pid == 0:
            raise ValueError("raised in the forked child")
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 1  # the child ended there, with its own error

    study, trial = run_one(storage_url, tmp_path, "fork", train)
    assert trial.state == "completed" and trial.value == pytest.approx(0.2), trial
    assert len(study.storage.get_metrics(trial.id)) == 5


@pytest.mark.filterwarnings("ignore:os.fork\\(\\) was called:RuntimeWarning")  # JAX's, third-party
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")  # CPython's
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_that_returns_records_nothing(storage_url, tmp_path):
    def train(trial):
        trial.log(1, **{"val/error": 0.5})
        pid = os.fork()
        if pid == 0:
            return  # back into tunebook's frames, in the child
        os.waitpid(pid, 0)
        five_points(trial)

    study, trial = run_one(storage_url, tmp_path, "fork-return", train)
    assert trial.state == "completed" and trial.value == pytest.approx(0.2)
