"""A hyperparameter the training function never reads: noted by ``trial.params``, stored with the
outcome, and judged by the ``unused_hyperparameter`` check (a typo in the training function makes a
scientific comparison meaningless, silently)."""

from __future__ import annotations

import copy
import json
import pickle

import pytest

import tunebook as tb
from tunebook.execution.loop import worker_loop
from tunebook.trial import Params
from tunebook.workloads import digits

# --- what trial.params notes -------------------------------------------------------------------


def test_reads_by_key_and_names_asked_for_but_absent_are_noted():
    p = Params({"lr": 0.1, "wd": 0.0, "optimizer": "adam"})
    assert p["lr"] == 0.1 and p.get("weight_decay", 0.5) == 0.5 and "optimizer" in p
    with pytest.raises(KeyError):
        p["momentum"]
    assert p.usage() == {"read": ["lr", "optimizer"], "missing": ["momentum", "weight_decay"], "bulk": False,
                         "unknown": None}
    assert p == {"lr": 0.1, "wd": 0.0, "optimizer": "adam"} and isinstance(p, dict)
    assert p.usage()["bulk"] is False  # comparing or printing is not using


@pytest.mark.parametrize("hand_on", [
    lambda p: dict(p), lambda p: {**p}, lambda p: (lambda **kw: kw)(**p), lambda p: list(p), lambda p: p.items(),
    lambda p: json.dumps(p), lambda p: pickle.loads(pickle.dumps(p)), lambda p: copy.deepcopy(p), lambda p: p | {},
    lambda p: p.copy(),
], ids=["dict", "unpack", "kwargs", "iter", "items", "json", "pickle", "deepcopy", "or", "copy"])
def test_handing_the_whole_dict_on_counts_as_bulk(hand_on):
    p = Params({"lr": 0.1})
    out = hand_on(p)
    assert p.usage()["bulk"] is True
    if isinstance(out, dict):
        assert out == {"lr": 0.1} and type(out) is dict  # the copy is a plain dict


# --- stored with the outcome -------------------------------------------------------------------


def _space(wd_name: str = "weight_decay") -> tb.SearchSpace:
    return tb.SearchSpace(scientific={wd_name: tb.Choice([0.0, 0.3])},
                          nuisance={"learning_rate": tb.Float(3e-3, 3e-2, "log")}, fixed={"optimizer": "adam"})


def _study(url: str, name: str, space: tb.SearchSpace, trials: int = 4, steps: int = 40) -> tb.Study:
    return tb.create_study(name, space=space, objective=("val/error", "min"), trials=trials, max_train_steps=steps,
                           storage=url, goal="does weight decay help?")


def _digits(trial) -> None:
    digits.train(trial)


def test_the_worker_stores_what_each_trial_read(sqlite_url, tmp_path):
    study = _study(sqlite_url, "stored", _space(), trials=2, steps=5)

    def train(trial):
        lr = trial.params["learning_rate"]
        trial.params.get("warmup", 0)
        trial.log(1, **{"val/error": lr})

    assert worker_loop(study, train, tmp_path) == {"completed": 2}
    used = study.storage.params_used(study.id)
    assert set(used) == {0, 1}
    assert used[0] == {"read": ["learning_rate"], "missing": ["warmup"], "bulk": False, "unknown": None}


# --- the judgment, on the digits workload ------------------------------------------------------


def _analyze(study: tb.Study):
    return tb.analyze(study)


def unused(report) -> list:
    return [f for f in report.findings if f.check == "unused_hyperparameter"]


def test_a_misnamed_scientific_hyperparameter_is_caught_and_the_answer_is_not_fair(sqlite_url, tmp_path):
    # The spec calls it "wd"; the digits workload reads "weight_decay" (default 0.0): a typo.
    study = _study(sqlite_url, "typo", _space("wd"))
    tb.run(study, _digits, workers=0, progress=False, checkpoint_dir=str(tmp_path))
    # The known answer, established first: paired trials (same nuisance point and seed) of the two
    # "weight decay" values trained identically, so the scientific value had no effect at all.
    by_group: dict[float, list[float]] = {}
    for t in sorted(study.trials(), key=lambda t: t.number):
        by_group.setdefault(t.params["wd"], []).append(t.value)
    assert by_group[0.0] == by_group[0.3] and len(by_group[0.0]) == 2

    report = _analyze(study)
    (f,) = unused(report)
    assert f.severity == "warning" and f.evidence["param"] == "wd" and f.evidence["role"] == "scientific"
    assert f.evidence["asked_for"] == "weight_decay" and f.evidence["trials"] == 4
    assert "'wd'" in f.message and "'weight_decay'" in f.message and "cannot answer its goal" in f.message
    assert report.answer is not None and report.answer.fair is False
    assert any("'wd'" in r for r in report.answer.reasons)
    verdict = report.answer.verdict
    assert "tie on the best val/error" in verdict  # paired trials trained identically: no "ahead by 0"
    assert "cannot answer its goal" in verdict and "under a new name" in verdict and "not yet fair" not in verdict
    assert report.findings[0].check == "unused_hyperparameter"  # warnings first, this one leads


def test_the_same_study_spelled_right_is_silent(sqlite_url, tmp_path):
    study = _study(sqlite_url, "clean", _space("weight_decay"))
    tb.run(study, _digits, workers=0, progress=False, checkpoint_dir=str(tmp_path))
    values = {t.params["weight_decay"]: t.value for t in study.trials() if t.number in (0, 1)}
    assert len(set(values.values())) == 2  # weight decay now changes training
    report = _analyze(study)
    assert unused(report) == []
    assert not any("never reads" in r for r in report.answer.reasons)


def test_a_misnamed_nuisance_hyperparameter_is_caught(sqlite_url, tmp_path):
    space = tb.SearchSpace(nuisance={"lr": tb.Float(1e-3, 1e-1, "log"), "warmup_steps": tb.Int(0, 10)})
    study = tb.create_study("nuisance", space=space, objective=("val/error", "min"), trials=4, max_train_steps=5,
                            storage=sqlite_url)

    def train(trial):
        warm = trial.params.get("warmup", 0)  # the spec says warmup_steps
        for step in range(1, 6):
            trial.log(step, **{"val/error": trial.params["lr"] + warm + 1.0 / step})

    tb.run(study, train, workers=0, progress=False, checkpoint_dir=str(tmp_path))
    (f,) = unused(_analyze(study))
    assert (f.severity, f.evidence["param"], f.evidence["role"], f.evidence["asked_for"]) == (
        "warning", "warmup_steps", "nuisance", "warmup")


def test_a_function_that_hands_params_on_whole_is_not_judged(sqlite_url, tmp_path):
    study = _study(sqlite_url, "bulk", _space("wd"), trials=2, steps=5)

    def train(trial):
        config = {**trial.params}  # a config object built from them: which names it uses is not known
        for step in range(1, 6):
            trial.log(step, **{"val/error": config["learning_rate"] + 1.0 / step})

    tb.run(study, train, workers=0, progress=False, checkpoint_dir=str(tmp_path))
    assert unused(_analyze(study)) == []


def test_a_fixed_value_is_named_only_when_the_function_asked_for_a_near_miss(sqlite_url, tmp_path):
    space = tb.SearchSpace(nuisance={"lr": tb.Float(1e-3, 1e-1, "log")},
                           fixed={"batch_size": 64, "dataset": "digits"})
    study = tb.create_study("fixed", space=space, objective=("val/error", "min"), trials=2, max_train_steps=3,
                            storage=sqlite_url)

    def train(trial):
        bs = trial.params.get("batchsize", 32)  # the spec's batch_size is not the one used; "dataset" is a label
        for step in range(1, 4):
            trial.log(step, **{"val/error": trial.params["lr"] * bs / step})

    tb.run(study, train, workers=0, progress=False, checkpoint_dir=str(tmp_path))
    (f,) = unused(_analyze(study))
    assert (f.severity, f.evidence["param"], f.evidence["asked_for"]) == ("warning", "batch_size", "batchsize")
    assert "its value in the spec is not the one used" in f.message


# --- reads that happen out of sight: never a false warning -------------------------------------


def test_yaml_dumps_params_as_a_plain_mapping():
    import yaml

    p = Params({"lr": 0.1, "optimizer": "adam"})
    assert yaml.safe_load(yaml.safe_dump(p)) == {"lr": 0.1, "optimizer": "adam"}
    assert yaml.safe_load(yaml.dump(p)) == {"lr": 0.1, "optimizer": "adam"}  # no python/object tag
    assert p.usage()["bulk"] is True


def _typo_train(trial) -> None:
    wd = trial.params.get("weight_decay", 0.0)  # the spec says wd
    for step in range(1, 4):
        trial.log(step, **{"val/error": trial.params["learning_rate"] + wd + 1.0 / step})


def test_live_writers_do_not_hide_a_typo(sqlite_url, tmp_path):
    """Writers get the hyperparameters as a copy: their iterating them is not the function reading them."""
    from tunebook.writers import MetricWriter

    class Keep(MetricWriter):
        def write_hparams(self, hparams):
            assert type(hparams) is dict
            list(hparams.items())

        def write_scalars(self, step, scalars):
            pass

    study = _study(sqlite_url, "typo-writers", _space("wd"), trials=2, steps=3)
    tb.run(study, _typo_train, workers=0, progress=False, checkpoint_dir=str(tmp_path), writers=[lambda info: Keep()])
    (f,) = unused(_analyze(study))
    assert (f.evidence["param"], f.evidence["asked_for"]) == ("wd", "weight_decay")


def _forking_train(trial) -> None:
    """Reads wd only in a forked child (as a forking DataLoader worker does)."""
    import os

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(write, str(trial.params["wd"]).encode())
        os._exit(0)
    os.waitpid(pid, 0)
    wd = float(os.read(read, 64))
    for step in range(1, 4):
        trial.log(step, **{"val/error": trial.params["learning_rate"] + wd + 1.0 / step})


def test_reads_in_a_forked_child_make_the_check_say_nothing(sqlite_url, tmp_path):
    study = _study(sqlite_url, "forked", _space("wd"), trials=2, steps=3)
    tb.run(study, _forking_train, workers=0, progress=False, checkpoint_dir=str(tmp_path))
    assert {u["unknown"] for u in study.storage.params_used(study.id).values()} == {"forked"}
    assert unused(_analyze(study)) == []
    assert not any("never reads" in r for r in _analyze(study).answer.reasons)


def test_a_resumed_attempt_that_reads_its_settings_from_the_checkpoint_is_not_judged(sqlite_url, tmp_path):
    from tunebook.execution.loop import run_trial

    study = _study(sqlite_url, "resumed", _space("wd"), trials=2, steps=3)
    storage = study.storage

    def train(trial):
        if trial.restore() is None:  # a first attempt reads its hyperparameters and checkpoints them
            trial.checkpoint(1, {"wd": trial.params["wd"], "lr": trial.params["learning_rate"]})
            raise KeyboardInterrupt
        config = trial.restore().state  # resumed: its settings come from the checkpoint
        for step in range(2, 4):
            trial.log(step, **{"val/error": config["lr"] + config["wd"] + 1.0 / step})

    for record in [storage.claim_trial("w", study.id), storage.claim_trial("w", study.id)]:
        with pytest.raises(KeyboardInterrupt):
            run_trial(study, record, train, "w", tmp_path)
    assert worker_loop(study, train, tmp_path) == {"completed": 2}
    assert {u["unknown"] for u in storage.params_used(study.id).values()} == {"resumed"}
    assert unused(_analyze(study)) == []


def test_tunebook_run_warns_at_once_when_a_varied_name_went_unread(tmp_path):
    from conftest import ROOT, run_cli

    spec = tmp_path / "s.yaml"
    spec.write_text(
        f"study: cli-typo\ntrain: {ROOT / 'tests' / 'analysis' / 'test_unused_params.py'}:_typo_train\n"
        "objective: {metric: val/error, mode: min}\ntrials: 2\nmax_train_steps: 3\n"
        "search_space:\n  scientific: {wd: {choice: [0.0, 0.3]}}\n"
        "  nuisance: {learning_rate: {min: 1.0e-3, max: 1.0e-1, scale: log}}\n"
    )
    out = run_cli("run", str(spec), "--storage", str(tmp_path / "tb.db"), "--workers", "0", "--quiet")
    assert out.returncode == 0, out.stderr
    assert "warning: The training function never read the scientific hyperparameter 'wd'" in out.stderr
    assert "asked for 'weight_decay'" in out.stderr
    clean = tmp_path / "clean.yaml"
    clean.write_text(spec.read_text().replace("cli-typo", "cli-clean").replace("wd:", "weight_decay:"))
    out = run_cli("run", str(clean), "--storage", str(tmp_path / "tb.db"), "--workers", "0", "--quiet")
    assert out.returncode == 0 and "never read" not in out.stderr, out.stderr
