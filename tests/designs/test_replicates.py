"""The replicate phase: each group's best re-run with new seeds after the search, within the budget."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import _workloads as w
import tunebook as tb
from _races import race
from tunebook.analysis.data import load
from tunebook.designs.replicates import replicate_plan
from tunebook.proposing import add_replicates
from tunebook.storage.base import TrialOutcome
from tunebook.study import spec_hash

SPACE = tb.SearchSpace(scientific={"shift": tb.Choice([0.0, 0.05])}, nuisance={"lr": tb.Float(1e-3, 1.0, "log")})
OBJ = ("val/error", "min")


def make(url, name="rep", trials=24, space=SPACE, **options):
    return tb.create_study(name, space=space, objective=OBJ, trials=trials, max_train_steps=5, storage=url, **options)


def finish_search(study, value=lambda t: t.params["lr"]):
    """Record every pending trial as completed (value: a function of the trial), as a run would."""
    pending = study.trials(["pending"])
    study.storage.record_outcomes(study.id, [
        TrialOutcome(t.number, "completed", value=value(t), best_step=5, metrics=[(5, "val/error", value(t))])
        for t in pending])


# --- the budget -----------------------------------------------------------------------


def test_the_budget_splits_between_search_and_replicates_by_one_rule():
    plan = replicate_plan(SPACE, 24, 3, replicated=True)
    assert (plan.groups, plan.per_group, plan.search, plan.replicates) == (2, 3, 18, 6)
    eight = replicate_plan(SPACE, 22, 3, replicated=True)  # 11 a group: 8 search trials and 3 replicates
    assert (eight.per_group, eight.search, eight.skipped) == (3, 16, "")
    fewer = replicate_plan(SPACE, 16, 3, replicated=True)  # 8 a group: 6 search trials leave room for 2 replicates
    assert (fewer.per_group, fewer.search, fewer.asked) == (2, 12, 3)
    small = replicate_plan(SPACE, 15, 3, replicated=True)  # 7 a group: not 6 search trials and 2 replicates
    assert small.per_group == 0 and small.search == 15 and "trials: 16 or more" in small.skipped
    assert replicate_plan(SPACE, 24, 0, replicated=True).search == 24  # replicates: 0
    assert replicate_plan(SPACE, 24, 3, replicated=False).per_group == 0  # a grid
    one = tb.SearchSpace(nuisance={"lr": tb.Float(1e-3, 1.0, "log")})
    assert replicate_plan(one, 12, 3, replicated=True).search == 9  # one group: its best, 3 times
    assert replicate_plan(one, 16, 2, replicated=True).search == 14  # as many as asked when they fit
    assert replicate_plan(one, 8, 2, replicated=True).per_group == 2  # 2 asked, room for 2
    assert replicate_plan(one, 7, 3, replicated=True).skipped  # 3 asked, room for 1: skipped, not 1


def test_a_small_budget_gets_the_replicates_it_has_room_for_and_says_so(sqlite_url):
    study = make(sqlite_url, "small", trials=16)
    assert len(study.trials()) == 12
    assert "4 replicates of each group's best (2 each, of the 3 asked: the budget's room)" in study.phase_line()
    assert "then 2 length probes at 10 steps" in study.phase_line()  # one per replicate of the best, to pair with
    finish_search(study)
    assert len(add_replicates(study)) == 4
    finish_search(study)  # the replicates
    assert study.phase_line().startswith("12 search + 4 replicates of 16 (2 a group, of the 3 asked: the budget's room)")


def test_search_trials_stored_before_the_budget_held_replicates_stay_and_the_replicates_get_the_rest(sqlite_url, tmp_path):
    # a study of 2 groups created with 14 trials skips its replicates and stores 14 search trials (as tunebook
    # before 2026-12-07 did up to 23): what is stored is kept; raised to 16 there is room for 1 replicate a group,
    # fewer than 2 (skipped, and it says how many trials would do); raised to 18, 2 a group
    small = make(sqlite_url, "older", trials=14)
    assert small.replicate_plan.per_group == 0 and len(small.trials()) == 14
    tb.run(small, w.noisy, workers=0, progress=False, checkpoint_dir=tmp_path)
    sixteen = make(sqlite_url, "older", trials=16)
    plan = sixteen.replicate_plan
    assert (plan.per_group, plan.search) == (0, 16) and len(sixteen.trials()) == 14
    assert "its 14 search trials were stored before the budget held replicates" in plan.skipped
    assert "room for 1 a group (2 needed; trials: 18 or more)" in plan.skipped
    assert add_replicates(sixteen) == []
    assert "raise trials" in tb.analyze(sixteen).answer.verdict and "trials: 18 or more" in tb.analyze(sixteen).answer.verdict
    eighteen = make(sqlite_url, "older", trials=18)
    assert (eighteen.replicate_plan.per_group, eighteen.replicate_plan.search) == (2, 14)
    tb.run(eighteen, w.noisy, workers=0, progress=False, checkpoint_dir=tmp_path)
    assert len(eighteen.replicate_numbers()) == 4 and len(eighteen.trials()) == 18
    data = load(eighteen)
    assert tb.analyze(eighteen).answer.trial_sd is not None and len(data.trials) == 14


def test_an_extended_study_with_length_probes_still_spends_its_budget(sqlite_url, tmp_path):
    # the probes are beyond the budget: raising 16 (12 search + 2 replicates a group) to 22 adds 4 search trials and
    # a third replicate a group, and no probe is ever taken for a search trial or replicated
    space = tb.SearchSpace(scientific={"shift": tb.Choice([0.0, 0.05])}, nuisance={"lr": tb.Float(1e-3, 1.0, "log")})
    study = tb.create_study("grown", space=space, objective=OBJ, trials=16, max_train_steps=20, storage=sqlite_url)
    tb.run(study, w.rate_schedule, workers=0, progress=False, checkpoint_dir=tmp_path)
    probes = study.probe_steps()
    assert len(probes) == 2 and len(study.replicate_numbers()) == 4  # paired with the best's 2 replicates
    grown = tb.create_study("grown", space=space, objective=OBJ, trials=22, max_train_steps=20, storage=sqlite_url)
    tb.run(grown, w.rate_schedule, workers=0, progress=False, checkpoint_dir=tmp_path)
    reps = grown.replicate_numbers()
    assert len(grown.trials()) == 22 + len(probes) and grown.probe_steps() == probes
    assert len(reps) == 6 and not set(reps) & set(probes)
    of = load(grown).replicate_of
    assert not set(of.values()) & set(probes)  # a probe (trained longer) is never a group's best
    assert "6 replicates of 22" in grown.phase_line() and "added once" not in grown.phase_line()
    # the length finding quotes the runs it compares: the 2 pairs, not a third replicate an extension added (one
    # group, 8 trials -> 16: 13 search + 3 replicates; with this seed the best, the probed trial, stays the best)
    one = tb.SearchSpace(nuisance={"lr": tb.Float(0.1, 10.0, "log")})
    for trials in (8, 16):
        lone = tb.create_study("lone", space=one, objective=OBJ, trials=trials, max_train_steps=20, seed=1, storage=sqlite_url)
        tb.run(lone, w.rate_schedule, workers=0, progress=False, checkpoint_dir=tmp_path)
    (f,) = [f for f in tb.analyze(lone).findings if f.check == "max_train_steps" and "probe_mean" in f.evidence]
    trials = {t.number: t for t in lone.trials()}
    source, of, probes = f.evidence["source"], load(lone).replicate_of, lone.probe_steps()
    assert sum(o == source for o in of.values()) == 3  # the extension added a third replicate of the probed trial
    paired = [n for n, o in of.items() if o == source and trials[n].seed in {trials[p].seed for p in probes}]
    assert f.evidence["n_replicates"] == len(paired) == 2 and "2 replicates of the same seeds" in f.message
    assert abs(f.evidence["replicate_mean"] - sum(trials[n].value for n in paired) / 2) < 1e-12


def test_the_study_stores_only_its_search_trials_and_counts_the_replicates_in_its_budget(sqlite_url):
    study = make(sqlite_url)
    assert study.trials_budget == 24 and len(study.trials()) == 18
    from tunebook.designs import materialize

    assert [t.params for t in study.trials()] == [p.params for p in materialize(SPACE, 24, study.seed)[:18]]
    assert "18 search + 0 replicates of 24" in study.phase_line() and "once every search trial" in study.phase_line()
    assert "no replicates: 14 trials give each of 2 groups 7" in make(sqlite_url, "small", trials=14).phase_line()
    assert make(sqlite_url, "off", replicates=0).phase_line() == "no replicates (replicates: 0)"


def test_the_spec_field_is_validated_in_one_line_and_leaves_older_hashes_alone(sqlite_url):
    for bad in (-1, 1.5, True, "3", 101):
        with pytest.raises(tb.SpecError, match=r"^replicates: expected an integer from 0 to 100, got .*; e\.g\. replicates: 3"):
            make(sqlite_url, replicates=bad)
    with pytest.raises(tb.SpecError, match=r"^replicates: 1 replicate of each group's best measures no trial variance"):
        make(sqlite_url, replicates=1)
    assert tb.open_storage(sqlite_url).list_studies() == []  # nothing stored
    default = make(sqlite_url, "a")
    assert "replicates" not in default.record.spec  # a study that does not set it hashes as before the field existed
    assert default.record.spec_hash == spec_hash(default.record.spec)
    explicit = tb.StudySpec.from_mapping({**default.record.spec, "replicates": 3})
    assert explicit.hash == default.record.spec_hash and "replicates" not in explicit.to_mapping()
    off = make(sqlite_url, "c", replicates=0)
    assert off.record.spec["replicates"] == 0 and len(off.trials()) == 24
    with pytest.raises(tb.SpecError, match="^replicates: study 'a' is stored with replicates = 3, this spec says 0"):
        make(sqlite_url, "a", replicates=0)  # another study: a new name


def test_ls_says_how_each_study_split_its_budget_and_why_one_has_no_replicates(tmp_path):
    import json

    from conftest import run_cli

    url = f"sqlite:///{tmp_path / 'ls.db'}"
    make(url, "skipped", trials=14)
    make(url, "fewer", trials=16)
    proc = run_cli("ls", "--format", "json", "--storage", url, cwd=tmp_path)
    phases = {r["study"]: r["phases"] for r in json.loads(proc.stdout)}
    assert phases["skipped"].startswith("no replicates: 14 trials give each of 2 groups 7") and "trials: 16 or more" in phases["skipped"]
    assert phases["fewer"].startswith("12 search + 0 replicates of 16; 4 replicates of each group's best (2 each, of the 3")
    for width in ("200", "80"):  # the table, and the narrow terminal's blocks
        text = run_cli("ls", "--storage", url, cwd=tmp_path, env={"COLUMNS": width}).stdout
        assert "no replicates: 14 trials give each of 2 groups" in " ".join(text.split()), (width, text)


def test_a_bad_replicates_in_a_spec_file_exits_2_and_stores_nothing(tmp_path):
    from conftest import run_cli

    spec = tmp_path / "spec.yaml"
    spec.write_text("study: s\nobjective: {metric: val/error, mode: min}\ntrials: 24\nmax_train_steps: 5\n"
                    "train: tunebook.workloads.digits:train\nreplicates: -2\n"
                    "search_space: {nuisance: {lr: {min: 0.001, max: 1.0, scale: log}}}\n")
    proc = run_cli("run", str(spec), "--storage", f"sqlite:///{tmp_path / 's.db'}", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("tunebook: error: replicates: expected an integer from 0 to 100")
    assert tb.open_storage(f"sqlite:///{tmp_path / 's.db'}").list_studies() == []


# --- adding them: once, atomically --------------------------------------------------------


def test_nothing_is_added_until_every_search_trial_has_finished(sqlite_url):
    study = make(sqlite_url)
    first = study.trials()[0]
    study.storage.record_outcomes(study.id, [TrialOutcome(first.number, "completed", value=0.5, best_step=5)])
    assert add_replicates(study) == []
    finish_search(study)
    added = add_replicates(study)
    assert added == list(range(18, 24)) and add_replicates(study) == []


def test_workers_racing_add_the_replicates_exactly_once(storage_url):
    study = make(storage_url)
    finish_search(study)
    got: list[list[int]] = []

    def add(_: int) -> None:
        own = tb.load_study("rep", storage=storage_url)  # each thread: its own store connection
        got.append(add_replicates(own))

    assert race(add, 4) == []
    assert sorted(map(len, got)) == [0, 0, 0, 6]
    trials = study.trials()
    assert len(trials) == 24 and study.replicate_numbers() == set(range(18, 24))
    notes = study.storage.get_notes(study="rep", kind="replicates")
    assert len(notes) == 1 and notes[0]["evidence"]["trials"] == list(range(18, 24))
    search_seeds = {t.seed for t in trials if t.number < 18}
    replicas = [t for t in trials if t.number >= 18]
    assert len({t.seed for t in replicas}) == 6 and not search_seeds & {t.seed for t in replicas}
    # each group's best (lowest lr here) three times, with exactly its hyperparameters
    for shift in (0.0, 0.05):
        best = min((t for t in trials if t.number < 18 and t.params["shift"] == shift), key=lambda t: t.params["lr"])
        assert [t.params for t in replicas if t.params["shift"] == shift] == [best.params] * 3


def test_a_local_run_with_two_workers_runs_the_replicates_as_part_of_the_study(sqlite_url, tmp_path):
    study = make(sqlite_url)
    result = tb.run(study, w.noisy, workers=2, progress=False, checkpoint_dir=tmp_path)
    assert result.finished and result.counts["completed"] == 24
    assert study.replicate_numbers() == set(range(18, 24))
    assert study.phase_line() == "18 search + 6 replicates of 24"
    data = load(study)
    # out of every search selection, apart
    assert {t.number for t in data.trials} == set(range(18)) and {t.number for t in data.replicates} == set(range(18, 24))
    assert all(t.number < 18 for t in data.completed + data.ranked())
    assert set(data.replicate_of.values()) == {t.number for t in data.best_by_scientific().values()}
    from tunebook.analysis.checks.common import groups

    assert sorted(len(g.trials) for g in groups(data)) == [9, 9]
    from tunebook.analysis.notebook import notebook_rows

    row = next(r for r in notebook_rows(study.storage) if r["study"] == "rep")
    assert row["replicates"] == 6 and row["total"] == 24


RUN_AND_DIE = """
import sys, tunebook as tb, _workloads as w
if __name__ == "__main__":
    study = tb.load_study("rep", storage=sys.argv[1])
    tb.run(study, w.slow_noisy, workers=0, progress=False, checkpoint_dir=sys.argv[2])
"""


def test_a_killed_worker_leaves_the_replicates_stored_and_a_new_run_finishes_them(sqlite_url, tmp_path):
    study = make(sqlite_url)
    finish_search(study, value=lambda t: t.params["lr"] + 0.1)
    script = tmp_path / "die.py"
    script.write_text(RUN_AND_DIE)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[2]),
                                                         str(Path(__file__).resolve().parents[1])])}
    proc = subprocess.Popen([sys.executable, str(script), sqlite_url, str(tmp_path / "ck")], env=env)
    try:
        deadline = time.monotonic() + 300
        while not study.trials(["running"]):  # the worker added the replicates and started one
            assert proc.poll() is None and time.monotonic() < deadline, "the worker never started a replicate"
            time.sleep(0.2)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert study.replicate_numbers() == set(range(18, 24)) and len(study.trials()) == 24
    assert len(study.trials(["running"])) == 1  # its trial, still claimed by the dead worker
    result = tb.run(study, w.noisy, workers=0, progress=False, checkpoint_dir=tmp_path / "ck")
    assert result.finished and study.counts()["completed"] == 24  # the dead worker's trial came back and ran
    assert len(study.trials()) == 24 and len(study.storage.get_notes(study="rep", kind="replicates")) == 1


# --- with the other features -------------------------------------------------------------


def test_extending_a_replicated_study_adds_search_trials_after_the_replicates(sqlite_url):
    study = make(sqlite_url)
    finish_search(study)
    add_replicates(study)
    before = [(t.number, t.params, t.seed) for t in study.trials()]
    grown = make(sqlite_url, trials=36)
    after = [(t.number, t.params, t.seed) for t in grown.trials()]
    assert after[:24] == before and len(after) == 36
    from tunebook.designs import materialize

    assert [p for _, p, _ in after[24:]] == [p.params for p in materialize(SPACE, 36, study.seed)[18:30]]
    assert grown.replicate_numbers() == set(range(18, 24))
    assert grown.phase_line().startswith("30 search + 6 replicates of 36")


def test_retry_failed_reruns_a_failed_replicate_as_a_replicate(sqlite_url, tmp_path):
    study = make(sqlite_url)
    finish_search(study)
    added = add_replicates(study)
    study.storage.record_outcomes(study.id, [TrialOutcome(n, "failed", error="boom") for n in added[:2]]
                                  + [TrialOutcome(n, "completed", value=0.01, best_step=5) for n in added[2:]])
    tb.run(study, w.noisy, workers=0, progress=False, checkpoint_dir=tmp_path, retry_failed=True)
    assert study.counts()["completed"] == 24 and study.replicate_numbers() == set(added) and len(study.trials()) == 24


def test_a_bayesian_study_replicates_its_best_once_its_proposals_are_spent(sqlite_url, tmp_path):
    pytest.importorskip("optuna")
    space = tb.SearchSpace(nuisance={"lr": tb.Float(1e-4, 1.0, "log")})
    study = make(sqlite_url, "bo", trials=12, space=space, design="bayesian", sampler="tpe")
    assert study.replicate_plan.search == 9 and study.trials() == []
    tb.run(study, w.noisy, workers=0, progress=False, checkpoint_dir=tmp_path)
    trials = study.trials()
    assert len(trials) == 12 and study.replicate_numbers() == {9, 10, 11}
    best = min(trials[:9], key=lambda t: t.value)
    assert [t.params for t in trials[9:]] == [best.params] * 3
    assert len({t.seed for t in trials}) == 12


def test_a_conditional_study_replicates_each_group_best_with_its_own_hyperparameters(sqlite_url, tmp_path):
    space = tb.SearchSpace(scientific={"optimizer": tb.Choice(["adam", "sgd"])},
                           nuisance={"lr": tb.Float(1e-3, 1.0, "log")},
                           conditional={"optimizer=adam": {"beta1": tb.Float(0.8, 0.99)},
                                        "optimizer=sgd": {"momentum": tb.Float(0.0, 0.9)}})
    study = make(sqlite_url, "cond", space=space)
    tb.run(study, w.noisy, workers=0, progress=False, checkpoint_dir=tmp_path)
    replicas = [t for t in study.trials() if t.number in study.replicate_numbers()]
    assert len(replicas) == 6
    for opt, own, other in (("adam", "beta1", "momentum"), ("sgd", "momentum", "beta1")):
        mine = [t for t in replicas if t.params["optimizer"] == opt]
        best = min((t for t in study.trials()[:18] if t.params["optimizer"] == opt), key=lambda t: t.value)
        assert len(mine) == 3 and all(t.params == best.params and own in t.params and other not in t.params for t in mine)


@pytest.mark.xdist_group("ray")  # one local Ray at a time (tests/execution/test_ray.py)
def test_ray_tasks_run_the_replicates_through_the_same_loop(sqlite_url, tmp_path):
    ray = pytest.importorskip("ray")
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="warning",
             runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[2]),
                                                                      str(Path(__file__).resolve().parents[1])])}})
    try:
        study = make(sqlite_url, "ray", trials=12, space=tb.SearchSpace(nuisance={"lr": tb.Float(1e-3, 1.0, "log")}))
        result = tb.run(study, w.noisy, executor="ray", cpus_per_trial=1, progress=False, checkpoint_dir=tmp_path)
    finally:
        ray.shutdown()
    assert result.finished and study.counts()["completed"] == 12
    assert study.replicate_numbers() == {9, 10, 11} and all(t.worker_id.startswith("ray:") for t in study.trials())
