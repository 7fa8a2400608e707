"""Procedures that cannot mislead (issue 11): lineage, the training function, next-round, failures, summaries.

The fast half: tiny training functions; the real CLI where no training runs in it.
"""

from __future__ import annotations

import json
import math
import textwrap
from pathlib import Path

import numpy as np
import pytest

import _workloads as w
import tunebook as tb
from conftest import run_cli
from tunebook.procedures import _common, rounds, stability, variance
from tunebook.study import outcome_lines, train_reference


def _names(url):
    return sorted(s.name for s in tb.open_storage(url).list_studies())


def _noisy_study(url, tmp_path, name="base", shift=0.0, trials=4):
    space = tb.SearchSpace(nuisance={"lr": tb.Float(1e-3, 1e-1, "log")}, fixed={"shift": shift})
    study = tb.create_study(name, space=space, objective=("val/error", "min"), trials=trials, max_train_steps=5,
                            storage=url, experiment="exp")
    tb.run(study, w.noisy, workers=0, progress=False, checkpoint_dir=tmp_path)
    return study


# the training function travels with the study -----------------------------------------------
def test_tb_run_records_an_importable_function_not_a_lambda(sqlite_url, tmp_path):
    study = _noisy_study(sqlite_url, tmp_path)
    # _workloads is a top-level module found beside the tests: recorded by its path, importable from anywhere
    ref = f"{Path(w.__file__).resolve()}:noisy"
    assert study.record.spec["train"] is None and study.train_ref == ref
    assert tb.load_study("base", sqlite_url).train_ref == ref
    from tunebook.workloads import digits

    assert train_reference(digits.train) == "tunebook.workloads.digits:train"  # an installed module
    assert train_reference(lambda t: None) is None

    def local(trial):
        pass

    assert train_reference(local) is None
    other = tb.create_study("other", space=tb.SearchSpace(nuisance={"lr": tb.Float(1e-3, 1e-1, "log")}),
                            objective=("val/error", "min"), trials=1, max_train_steps=3, storage=sqlite_url)
    tb.run(other, lambda t: w.quadratic(t), workers=0, progress=False, checkpoint_dir=tmp_path)
    assert other.train_ref is None
    # re-creating the study from the same script still resumes it (the spec is unchanged)
    again = tb.create_study("base", space=study.space, objective=("val/error", "min"), trials=4, max_train_steps=5,
                            storage=sqlite_url, experiment="exp")
    assert again.id == study.id


def test_a_function_of_a_module_beside_the_script_is_recorded_by_its_path(tmp_path):
    """`python run.py` with `from mytrain import train`: mytrain is importable only from that folder, so
    the study records /abs/path/mytrain.py:train, which `tunebook retrain` run elsewhere can import."""
    job = tmp_path / "job"
    job.mkdir()
    (job / "mytrain.py").write_text(textwrap.dedent("""
        def train(trial):
            for step in range(1, trial.max_train_steps + 1):
                trial.log(step, **{"val/error": (trial.params["lr"] - 0.01) ** 2 + 1.0 / step})
    """))
    (job / "run.py").write_text(textwrap.dedent("""
        import tunebook as tb
        from mytrain import train

        if __name__ == "__main__":
            s = tb.create_study("beside", space=tb.SearchSpace(nuisance={"lr": tb.Float(1e-3, 1e-1, "log")}),
                                objective=("val/error", "min"), trials=2, max_train_steps=3, storage="sqlite:///tb.db")
            tb.run(s, train, workers=0)
    """))
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "run.py"], cwd=job, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    db = f"sqlite:///{job / 'tb.db'}"
    assert tb.load_study("beside", db).train_ref == f"{(job / 'mytrain.py').resolve()}:train"
    other = tmp_path / "elsewhere"
    other.mkdir()
    out = run_cli("run", "beside", "--storage", db, "--workers", "0", cwd=other)  # resolves it from another folder
    assert out.returncode == 0, out.stderr


def test_a_script_function_is_recorded_by_its_absolute_path(tmp_path):
    script = tmp_path / "job" / "train_script.py"
    script.parent.mkdir()
    script.write_text(textwrap.dedent("""
        import tunebook as tb

        def train(trial):
            for step in range(1, trial.max_train_steps + 1):
                trial.log(step, **{"val/error": (trial.params["lr"] - 0.01) ** 2 + 1.0 / step})

        if __name__ == "__main__":
            s = tb.create_study("scripted", space=tb.SearchSpace(nuisance={"lr": tb.Float(1e-3, 1e-1, "log")}),
                                objective=("val/error", "min"), trials=3, max_train_steps=4, storage="sqlite:///tb.db")
            tb.run(s, train, workers=0)
    """))
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, str(script)], cwd=script.parent, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    # tb.run printed the same summary `tunebook run` ends with
    assert "scripted: 3 completed, 0 infeasible, 0 failed, 0 left of 3" in proc.stdout and "best val/error (min)" in proc.stdout
    study = tb.load_study("scripted", f"sqlite:///{script.parent / 'tb.db'}")
    assert study.train_ref == f"{script.resolve()}:train"
    # another folder: retrain through the CLI finds it (no --train), and the derived study runs by name
    other = tmp_path / "elsewhere"
    other.mkdir()
    url = f"sqlite:///{script.parent / 'tb.db'}"
    proc = run_cli("retrain", "scripted", "--n", "2", "--workers", "0", "--quiet", "--storage", url, cwd=other)
    assert proc.returncode == 0, proc.stderr
    best = study.best_trial().number
    assert f"tunebook run scripted-retrain-{best} --storage" in proc.stdout
    proc = run_cli("run", f"scripted-retrain-{best}", "--workers", "0", "--storage", url, cwd=other)
    assert proc.returncode == 0 and f"scripted-retrain-{best}: 2 completed" in proc.stdout, proc.stderr


def test_a_script_without_a_main_guard_is_not_recorded(tmp_path):
    """Importing such a script again (in a worker, in `tunebook retrain`) would run the whole script again."""
    script = tmp_path / "unguarded.py"
    script.write_text(textwrap.dedent("""
        import tunebook as tb

        def train(trial):
            for step in range(1, trial.max_train_steps + 1):
                trial.log(step, **{"val/error": 1.0 / step})

        s = tb.create_study("unguarded", space=tb.SearchSpace(nuisance={"lr": tb.Float(1e-3, 1e-1, "log")}),
                            objective=("val/error", "min"), trials=1, max_train_steps=2, storage="sqlite:///tb.db")
        tb.run(s, train, workers=0, progress=False)
    """))
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert tb.load_study("unguarded", f"sqlite:///{tmp_path / 'tb.db'}").train_ref is None


def test_tb_run_prints_and_returns_the_cli_summary(sqlite_url, tmp_path, capsys):
    study = tb.create_study("s", space=tb.SearchSpace(nuisance={"lr": tb.Float(1e-3, 1e-1, "log")}),
                            objective=("val/error", "min"), trials=2, max_train_steps=5, storage=sqlite_url)
    result = tb.run(study, w.quadratic, workers=0, checkpoint_dir=tmp_path)
    out = capsys.readouterr().out
    assert out.rstrip().endswith("\n".join(outcome_lines(study)))
    assert result.counts["completed"] == 2 and result.finished


def test_retry_failed_in_python_keeps_infeasible_trials_as_data(sqlite_url, tmp_path, monkeypatch):
    space = tb.SearchSpace(nuisance={"lr": tb.Choice([0.01, 0.5])})
    study = tb.create_study("flaky", space=space, objective=("val/error", "min"), trials=2, max_train_steps=5,
                            storage=sqlite_url, design="grid")
    tb.run(study, _diverges_or_bug, workers=0, progress=False, checkpoint_dir=tmp_path)
    states = {t.params["lr"]: t.state for t in study.trials()}
    assert states == {0.01: "failed", 0.5: "infeasible"}
    assert any("1 trial(s) failed" in line and "--retry-failed" in line for line in outcome_lines(study))
    monkeypatch.setenv("TB_TEST_FIXED", "1")
    tb.run(study, _diverges_or_bug, workers=0, progress=False, checkpoint_dir=tmp_path, retry_failed=True)
    trials = {t.params["lr"]: t for t in study.trials()}
    assert trials[0.01].state == "completed" and trials[0.01].attempts == 2
    assert trials[0.5].state == "infeasible" and trials[0.5].attempts == 1


def _diverges_or_bug(trial):
    import os

    for step in range(1, trial.max_train_steps + 1):
        if trial.params["lr"] > 0.1:
            trial.log(step, **{"val/error": float("nan")})
        elif not os.environ.get("TB_TEST_FIXED"):
            raise ValueError("a bug in user code")
        else:
            trial.log(step, **{"val/error": 1.0 / step})


# lineage and compare -------------------------------------------------------------------------
def test_compare_uses_the_retrains_of_each_best_trial_and_refuses_ambiguity(sqlite_url, tmp_path):
    base, cand = _noisy_study(sqlite_url, tmp_path, "base", 0.2), _noisy_study(sqlite_url, tmp_path, "cand", 0.0)
    worst = max(base.trials(["completed"]), key=lambda t: t.value).number
    best = base.best_trial().number
    assert worst != best
    # retrain the best trial, then another trial: the latest retrain is not the best trial's
    for trial in (best, worst):
        tb.run(variance.retrain(base, trial, 3), workers=0, progress=False, checkpoint_dir=tmp_path)
    tb.run(variance.retrain(cand, "best", 3), workers=0, progress=False, checkpoint_dir=tmp_path)
    # an early-instability run of the candidate's best trial, made later: never a retrain
    early = stability.early_instability_study(cand, param="lr", steps=5)
    tb.run(early, workers=0, progress=False, checkpoint_dir=tmp_path)
    assert _common.lineage(early) == {"kind": "early-instability", "source": "cand", "trial": cand.best_trial().number}
    # an empty retrain study of the same trial (a failed command's leftover) is ignored
    _common.derived_study(base, "base-retrain-empty", kind="retrain", trial=best, space=tb.SearchSpace(
        fixed={**base.space.fixed, **base.best_trial().params}, allow_fixed_only=True), trials=2, design="replicates",
        goal="empty")
    result = variance.compare(base, cand)
    assert result.evidence["baseline_retrains"] == f"base-retrain-{best}"
    assert result.evidence["candidate_retrains"] == f"cand-retrain-{cand.best_trial().number}"
    assert result.evidence["recommendation"] == "adopt"
    with pytest.raises(tb.SpecError, match="an early-instability study, not a retrain"):
        variance.compare(base, early)
    # a second complete retrain study of the best trial: compare names both and asks
    second = _common.derived_study(base, "base-retrain-again", kind="retrain", trial=best, space=tb.SearchSpace(
        fixed={**base.space.fixed, **base.best_trial().params}, allow_fixed_only=True), trials=2, design="replicates",
        goal="again")
    tb.run(second, workers=0, progress=False, checkpoint_dir=tmp_path)
    proc = run_cli("compare", "base", "cand", "--storage", sqlite_url)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert f"base-retrain-{best}" in proc.stderr and "base-retrain-again" in proc.stderr
    # naming the retrain study resolves it, and adopt finds the decision under the tuned study
    proc = run_cli("compare", f"base-retrain-{best}", "cand", "--storage", sqlite_url)
    assert proc.returncode == 0 and "Adopt the candidate" in proc.stdout, proc.stderr
    assert run_cli("adopt", "cand", "--storage", sqlite_url).returncode == 0


def test_adopt_message_is_proofread(sqlite_url, tmp_path):
    base, cand = _noisy_study(sqlite_url, tmp_path, "b", 0.0), _noisy_study(sqlite_url, tmp_path, "c", 0.0)
    for s in (base, cand):
        tb.run(variance.retrain(s, "best", 3), workers=0, progress=False, checkpoint_dir=tmp_path)
    decision = variance.compare(base, cand)
    assert decision.evidence["recommendation"] != "adopt"
    proc = run_cli("adopt", "c", "--storage", sqlite_url)
    assert proc.returncode == 2 and ".;" not in proc.stderr and "pass --force to adopt anyway" in proc.stderr


def test_old_store_without_lineage_still_compares(sqlite_url, tmp_path):
    base, cand = _noisy_study(sqlite_url, tmp_path, "b", 0.2), _noisy_study(sqlite_url, tmp_path, "c", 0.0)
    for s in (base, cand):  # what the previous version stored: a replicate child, no "derived" key
        best = s.best_trial()
        legacy = tb.create_study(f"{s.name}-retrain-{best.number}", space=tb.SearchSpace(
            fixed={**s.space.fixed, **best.params}, allow_fixed_only=True), objective=s.objective, trials=3,
            max_train_steps=5, storage=sqlite_url, design="replicates", experiment="exp", parent=s.name,
            goal=f"Trial variance of {s.name} #{best.number}: 3 seeds of its configuration")
        assert _common.lineage(legacy) is None
        tb.run(legacy, w.noisy, workers=0, progress=False, checkpoint_dir=tmp_path)
    assert variance.compare(base, cand).evidence["recommendation"] == "adopt"


# a procedure that fails stores nothing --------------------------------------------------------
def test_a_failing_procedure_stores_nothing(sqlite_url, tmp_path):
    study = tb.create_study("anon", space=tb.SearchSpace(nuisance={"lr": tb.Float(1e-3, 1e-1, "log")}),
                            objective=("val/error", "min"), trials=3, max_train_steps=5, storage=sqlite_url)
    tb.run(study, lambda t: w.quadratic(t), workers=0, progress=False, checkpoint_dir=tmp_path)  # nothing recorded
    before = _names(sqlite_url)
    for args in (("retrain", "anon"), ("next-round", "anon", "--steps", "10"), ("stability", "anon", "--run"),
                 ("study-variance", "anon"), ("retrain", "anon", "--train", "no_such_module:train"),
                 ("warmup", "anon", "--param", "lr", "--unstable-lr", "0.1")):
        proc = run_cli(*args, "--storage", sqlite_url, cwd=tmp_path)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert "Traceback" not in proc.stderr and proc.stderr.strip().count("\n") == 0, proc.stderr
        assert _names(sqlite_url) == before, args
    assert "--train" in run_cli("retrain", "anon", "--storage", sqlite_url).stderr
    # the learning rate is found by name (lr): the early check stops at the missing training function, not at --param
    assert run_cli("stability", "anon", "--run", "--storage", sqlite_url).stderr.startswith("tunebook: error: --train")
    assert not tb.open_storage(sqlite_url).get_notes(study="anon", kind="stability")


# next-round ---------------------------------------------------------------------------------
def _lr_train(trial):
    lr = trial.params["lr"]
    for step in range(1, trial.max_train_steps + 1):
        trial.log(step, **{"val/error": (math.log10(lr) + 2) ** 2 + 1.0 / step})


def test_next_round_defaults_to_a_few_long_runs_with_the_rate_kept(sqlite_url, tmp_path):
    space = tb.SearchSpace(nuisance={"lr": tb.Float(1e-3, 1e-1, "log")}, fixed={"hidden": 8})
    study = tb.create_study("r1", space=space, objective=("val/error", "min"), trials=4, max_train_steps=10,
                            storage=sqlite_url, train="_workloads:quadratic")
    tb.run(study, workers=0, progress=False, checkpoint_dir=tmp_path)
    best = study.best_trial()
    result = rounds.next_round(study, 30)
    new = tb.load_study(result.studies[0], sqlite_url)
    assert new.design == "replicates" and new.trials_budget == rounds.DEFAULT_RUNS and new.max_train_steps == 30
    assert new.space.fixed == {"hidden": 8, "lr": best.params["lr"]} and len({t.seed for t in new.trials()}) == 3
    assert "base learning rate kept (lr=" in result.conclusion and "Re-tuned: nothing" in result.conclusion
    # no schedule hyperparameter: tunebook cannot know the schedule, and says so
    assert "no 'schedule' hyperparameter" in result.conclusion and "unknown" in result.conclusion
    assert "extended" not in result.conclusion.split("Frozen")[0].replace("not extended", "")
    assert f"Run it: tunebook run {new.name} --storage" in result.conclusion
    assert new.record.repro_command.startswith(f"tunebook run {new.name} --storage")
    # opt-in re-tuning: a narrowed range, a reduced budget
    retuned = tb.load_study(rounds.next_round(study, 30, retune=("lr",)).studies[0], sqlite_url)
    assert retuned.name == "r1-r2-2" and retuned.trials_budget == 2
    lr = retuned.space.nuisance["lr"]
    assert lr.low <= best.params["lr"] <= lr.high and math.log10(lr.high / lr.low) <= 0.5 + 1e-9


def test_next_round_names_unknown_schedules_and_rates_by_name():
    assert rounds.schedule_note({"schedule": "steplr"}) == (
        "schedule 'steplr' is unknown to tunebook: kept as it is, not extended; check that it follows trial.max_train_steps",
        False)
    assert rounds.schedule_note({"schedule": "cosine"})[1]

    class S:  # the parts of a study learning_rates reads
        space = tb.SearchSpace(nuisance={"head_lr": tb.Float(1e-3, 1e-1, "log"), "wd": tb.Float(1e-5, 1e-2, "log")},
                               fixed={"lr": 0.1, "learning_rate": 0.2, "blr": 1, "flr_x": 2})

    assert rounds.learning_rates(S) == ["head_lr", "lr", "learning_rate"]


def test_next_round_of_a_conditional_study_keeps_the_best_groups_values(sqlite_url, tmp_path):
    space = tb.SearchSpace(
        scientific={"optimizer": tb.Choice(["adam", "momentum"])},
        conditional={"optimizer=adam": {"lr": tb.Float(1e-4, 1e-2, "log"), "beta1": tb.Float(0.8, 0.99)},
                     "optimizer=momentum": {"lr": tb.Float(1e-3, 1.0, "log"), "momentum": tb.Float(0.8, 0.99)}},
        fixed={"schedule": "linear"},
    )
    study = tb.create_study("cond", space=space, objective=("val/error", "min"), trials=8, max_train_steps=10,
                            storage=sqlite_url, train="_workloads:quadratic")
    tb.run(study, _conditional_train, workers=0, progress=False, checkpoint_dir=tmp_path)
    best = study.best_trial()
    assert best.params["optimizer"] == "momentum"  # _conditional_train favours it
    new = tb.load_study(rounds.next_round(study, 20).studies[0], sqlite_url)
    assert "beta1" not in new.space.fixed and new.space.fixed["momentum"] == best.params["momentum"]
    assert new.space.fixed["optimizer"] == "momentum" and new.space.fixed["constant_steps"] == 10
    retuned = tb.load_study(rounds.next_round(study, 20, retune=("lr",)).studies[0], sqlite_url)
    assert retuned.space.nuisance["lr"].high <= 1.0 and retuned.space.nuisance["lr"].low >= 1e-3  # momentum's range
    with pytest.raises(tb.SpecError, match="beta1.*best trial's group"):
        rounds.next_round(study, 20, retune=("beta1",))
    with pytest.raises(tb.SpecError, match="scientific"):
        rounds.next_round(study, 20, retune=("optimizer",))


def _conditional_train(trial):
    p = trial.params
    floor = (math.log10(p["lr"]) + 1) ** 2 + (0.0 if p["optimizer"] == "momentum" else 5.0)
    for step in range(1, trial.max_train_steps + 1):
        trial.log(step, **{"val/error": floor + 1.0 / step})


# the early-instability verdict -----------------------------------------------------------------
def test_early_decision_states_its_verdict():
    steps = np.arange(1, 101, dtype=float)
    falling = 2.0 * np.exp(-steps / 20) + 0.1
    bump = falling.copy()
    bump[10:25] += 3.0  # unstable early, then recovers
    rising = 0.5 + steps / 50
    decide = stability.early_decision
    assert decide([("completed", None, steps, falling)], learning_rate=0.2).evidence["verdict"] == "stable"
    recovers = decide([("completed", None, steps, bump)], learning_rate=0.2)
    assert recovers.evidence["verdict"] == "recovers" and "warmup recommended" in recovers.conclusion
    assert decide([("completed", None, steps, rising)], learning_rate=0.2).evidence["verdict"] == "diverges"
    nan = decide([("infeasible", "train/loss was nan at step 3", steps[:3], falling[:3])], learning_rate=0.2)
    assert nan.evidence["verdict"] == "diverges" and "nan" in nan.conclusion
    assert not decide([("failed", "x", steps[:2], falling[:2])], learning_rate=0.2).concluded


def _spiky_early(trial):
    """Loss falls; above lr = 0.015 it jumps to 5 between steps 10 and 20, then recovers."""
    lr = trial.params["lr"]
    for step in range(1, trial.max_train_steps + 1):
        loss = 0.1 + abs(math.log10(lr) + 2) + 2.0 * math.exp(-step / 30)
        if lr > 0.015 and 10 <= step < 20:
            loss = 5.0
        trial.log(step, **{"train/loss": loss})
        if step % trial.params.get("eval_every", 5) == 0:
            trial.log(step, **{"val/error": loss})


def test_the_early_check_runs_without_infeasible_if_and_records_its_verdict(sqlite_url, tmp_path):
    space = tb.SearchSpace(nuisance={"lr": tb.Choice([0.003, 0.01])}, fixed={"eval_every": 5})
    study = tb.create_study("sweep", space=space, objective=("val/error", "min"), trials=2, max_train_steps=100,
                            storage=sqlite_url, design="grid", infeasible_if={"train/loss": {"above": 3.0}})
    tb.run(study, _spiky_early, workers=0, progress=False, checkpoint_dir=tmp_path)
    early = stability.early_instability_study(study, param="lr", steps=100)
    assert early.infeasible_if == {} and early.space.fixed["lr"] == 0.02
    assert _common.lineage(early)["kind"] == "early-instability"
    tb.run(early, _spiky_early, workers=0, progress=False, checkpoint_dir=tmp_path)
    assert [t.state for t in early.trials()] == ["completed"]  # the study's rule (above 3) would have stopped it at step 10
    result = stability.analyze_early(study, early, param="lr")
    assert result.evidence["verdict"] == "recovers" and "warmup recommended" in result.conclusion
    notes = study.storage.get_notes(study="sweep", kind="early-instability")
    assert notes and notes[-1]["evidence"]["verdict"] == "recovers"


# lr-sweep premise -------------------------------------------------------------------------------
def test_lr_sweep_refuses_schedule_and_regularization_overrides(sqlite_url, tmp_path):
    for fixed in ("schedule=cosine", "weight_decay=0.1", "dropout=0.2", "label_smoothing=0.1", "warmup_steps=100"):
        proc = run_cli("lr-sweep", "--train", "tunebook.workloads.digits:train", "--fixed", fixed, "--storage", sqlite_url,
                       cwd=tmp_path)
        assert proc.returncode == 2 and "sweep's premise" in proc.stderr and "--force" in proc.stderr, proc.stderr
    assert _names(sqlite_url) == []
    from tunebook.procedures.lr_sweep import premise_overrides

    assert premise_overrides({"schedule": "constant", "weight_decay": 0.0, "batch_size": 64, "eval_every": 5}) == []


# tunebook run: all failed, --retry-failed, a study by name ------------------------------------------
def test_run_exits_non_zero_when_every_trial_failed_then_retries(tmp_path):
    folder = tmp_path / "proj"
    folder.mkdir()
    (folder / "train.py").write_text(textwrap.dedent("""
        import os

        def train(trial):
            if not os.path.exists(os.path.join(os.path.dirname(__file__), "fixed")):
                raise ValueError("a bug in user code")
            for step in range(1, trial.max_train_steps + 1):
                trial.log(step, **{"val/error": float("nan") if trial.params["lr"] > 0.1 else 1.0 / step})
    """))
    (folder / "study.yaml").write_text(textwrap.dedent("""
        study: bugged
        train: train.py:train
        objective: {metric: val/error, mode: min}
        trials: 2
        max_train_steps: 3
        design: grid
        search_space:
          nuisance: {lr: {choice: [0.01, 0.5]}}
    """))
    url = f"sqlite:///{tmp_path / 'tb.db'}"
    proc = run_cli("run", str(folder / "study.yaml"), "--workers", "0", "--storage", url, cwd=tmp_path)
    assert proc.returncode == 1 and "every trial of bugged failed" in proc.stderr, proc.stderr
    assert "tunebook run bugged --retry-failed" in proc.stdout
    (folder / "fixed").write_text("")
    # by name, from another folder: train.py is found beside the spec
    proc = run_cli("run", "bugged", "--retry-failed", "--workers", "0", "--storage", url, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "2 failed trial(s) of bugged back to pending" in proc.stdout
    trials = {t.params["lr"]: t for t in tb.load_study("bugged", url).trials()}
    assert trials[0.01].state == "completed" and trials[0.5].state == "infeasible"
    assert trials[0.01].attempts == 2
    # infeasible trials stay data: retrying again changes nothing
    proc = run_cli("run", "bugged", "--retry-failed", "--workers", "0", "--storage", url, cwd=tmp_path)
    assert proc.returncode == 0 and "0 failed trial(s)" in proc.stdout
    rows = json.loads(run_cli("ls", "--format", "json", "--storage", url).stdout)
    assert rows[0]["infeasible"] == 1


def test_storage_retry_failed_on_both_backends(storage_url):
    study = tb.create_study("r", space=tb.SearchSpace(nuisance={"lr": tb.Float(1e-3, 1e-1, "log")}),
                            objective=("val/error", "min"), trials=3, max_train_steps=5, storage=storage_url)
    store = study.storage
    states = ("failed", "infeasible", "completed")
    for state in states:
        claimed = store.claim_trial("w1", study.id)
        store.finish_trial(claimed.id, "w1", state, value=1.0 if state == "completed" else None, error="boom")
    assert store.retry_failed(study.id) == 1
    by_state = {t.state: t for t in study.trials()}
    assert set(by_state) == {"pending", "infeasible", "completed"}
    assert by_state["pending"].attempts == 1 and by_state["pending"].worker_id is None
    assert store.retry_failed(study.id) == 0


def test_more_retrains_extend_the_same_retrain_study(sqlite_url, tmp_path):
    s = _noisy_study(sqlite_url, tmp_path, "more", 0.0)
    first = variance.retrain(s, "best", 3)
    again = variance.retrain(s, "best", 5)  # `tunebook retrain STUDY --n 5` after `--n 3`
    assert again.name == first.name and again.trials_budget == 5 and len(again.trials()) == 5


def test_a_misnamed_objective_is_told_both_ways_out(sqlite_url, tmp_path):
    """Every trial failed because the spec's objective was never logged: --retry-failed alone would fail
    again, and a fixed spec needs a new name; the summary says so."""
    space = tb.SearchSpace(nuisance={"lr": tb.Float(1e-3, 1e-1, "log")})
    study = tb.create_study("typo-objective", space=space, objective=("val/los", "min"), trials=2,
                            max_train_steps=3, storage=sqlite_url)

    def train(trial):
        trial.log(1, **{"val/loss": trial.params["lr"]})

    tb.run(study, train, workers=0, progress=False, checkpoint_dir=tmp_path)
    hint = outcome_lines(study)[-2]
    assert "the objective 'val/los' was never logged" in hint and "--retry-failed" in hint
    assert "new name" in hint and "never changes" in hint
