"""Importing a real Optuna study (SQLite RDB storage) as a tunebook study, then its report."""

from __future__ import annotations

import math

import pytest

optuna = pytest.importorskip("optuna")

import tunebook as tb  # noqa: E402
from tunebook.errors import SpecError  # noqa: E402
from tunebook.integrations.optuna_import import import_study, plan_import  # noqa: E402
from tunebook.space import Choice, Float, Int  # noqa: E402


def _objective(trial: optuna.Trial) -> float:
    optimizer = trial.suggest_categorical("optimizer", ["adam", "sgd"])
    lr = trial.suggest_float("learning_rate", 1e-4, 1.0, log=True)
    layers = trial.suggest_int("layers", 1, 4)
    trial.suggest_int("batch_size", 64, 64)
    if trial.number == 5:
        raise RuntimeError("user bug")
    if trial.number == 6:
        trial.report(0.9, 1)
        trial.report(float("nan"), 2)  # diverged
        return float("nan")
    floor = 0.1 + 0.05 * abs(math.log10(lr) + 2) + (0.03 if optimizer == "sgd" else 0.0) + 0.01 * layers
    value = 1.0
    for step in range(1, 11):
        value = floor + (1.0 - floor) * math.exp(-step / 3)
        trial.report(value, step)
        if trial.should_prune():
            raise optuna.TrialPruned()
    return value


@pytest.fixture(scope="module")
def optuna_url(tmp_path_factory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('optuna') / 'optuna.db'}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name="lr", storage=url, direction="minimize",
                                sampler=optuna.samplers.RandomSampler(seed=0),
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=2))
    study.set_metric_names(["val/error"])
    study.optimize(_objective, n_trials=16, catch=(RuntimeError,))
    return url


def test_import_maps_params_states_values_and_curves(optuna_url, sqlite_url):
    source = optuna.load_study(study_name="lr", storage=optuna_url)
    study = import_study(optuna_url, "lr", to=sqlite_url, scientific="optimizer")
    assert study.objective == ("val/error", "min") and study.max_train_steps == 10
    assert study.space.scientific == {"optimizer": Choice(["adam", "sgd"])}
    assert study.space.nuisance == {"learning_rate": Float(1e-4, 1.0, "log"), "layers": Int(1, 4, "linear")}
    assert study.space.fixed == {"batch_size": 64}
    trials = study.trials()
    assert [t.seed for t in trials] == [t.number for t in source.trials]  # seed = Optuna's trial number
    states = {t.number: t for t in trials}
    for o in source.trials:
        t = states[o.number]
        assert t.params == {k: v for k, v in o.params.items() if k != "batch_size"}
        curve = study.metrics(t).get("val/error", [])
        if o.state == optuna.trial.TrialState.COMPLETE:
            assert t.state == "completed" and t.value == o.value and t.best_step == 10
            assert curve == sorted(o.intermediate_values.items())
        elif o.state == optuna.trial.TrialState.PRUNED:
            best_step, best = min(o.intermediate_values.items(), key=lambda kv: (kv[1], kv[0]))
            assert (t.state, t.value, t.best_step) == ("completed", best, best_step)
            assert curve == sorted(o.intermediate_values.items())
    assert states[5].state == "failed" and states[5].error == "failed in Optuna (no reason recorded)"
    assert states[6].state == "infeasible" and states[6].infeasible_reason == "val/error was nan at step 2"
    assert any(o.state == optuna.trial.TrialState.PRUNED for o in source.trials)  # the pruned path is exercised
    [note] = study.storage.get_notes(study="lr", kind="import")
    assert note["evidence"]["counts"] == {"completed": 14, "failed": 1, "infeasible": 1}

    # The playbook's checklist and figures run on it, and the report is saved.
    report = tb.analyze(study)
    assert report.figures and report.top_trials[0].value == min(t.value for t in trials if t.value is not None)
    assert {"optimizer=adam", "optimizer=sgd"} >= {f.evidence.get("group") for f in report.findings
                                                   if f.evidence.get("group")}
    path = report.save(study.storage.url.replace("sqlite:///", "").replace(".db", ".html"))
    assert "Study lr" in path.read_text()


def test_bad_input_names_the_field_and_stores_nothing(optuna_url, sqlite_url):
    with pytest.raises(SpecError, match="^study: no Optuna study named 'nope'.*known studies: lr"):
        import_study(optuna_url, "nope", to=sqlite_url)
    with pytest.raises(SpecError, match="^scientific: Optuna study 'lr' has no parameter 'momentum'"):
        import_study(optuna_url, "lr", to=sqlite_url, scientific="momentum")
    with pytest.raises(SpecError, match="^fixed: 'learning_rate' took 16 values"):
        import_study(optuna_url, "lr", to=sqlite_url, fixed=["learning_rate"])
    with pytest.raises(SpecError, match="^storage: cannot open Optuna storage"):
        import_study("notadb://x", "lr", to=sqlite_url)
    assert tb.open_storage(sqlite_url).list_studies() == []
    import_study(optuna_url, "lr", to=sqlite_url, name="lr-a")
    with pytest.raises(SpecError, match="^name: a study named 'lr-a' is already stored"):
        import_study(optuna_url, "lr", to=sqlite_url, name="lr-a")
    assert [s.name for s in tb.open_storage(sqlite_url).list_studies()] == ["lr-a"]


def test_multi_objective_and_dynamic_ranges(tmp_path):
    url = f"sqlite:///{tmp_path / 'o.db'}"
    multi = optuna.create_study(study_name="multi", storage=url, directions=["minimize", "maximize"])
    multi.optimize(lambda t: (t.suggest_float("x", 0, 1), 1.0), n_trials=2)
    with pytest.raises(SpecError, match="has 2 objectives"):
        plan_import(url, "multi")
    moving = optuna.create_study(study_name="moving", storage=url, direction="maximize")
    moving.optimize(lambda t: t.suggest_float("x", 0, 1 + t.number), n_trials=3)
    plan = plan_import(url, "moving")
    assert plan.space.nuisance == {"x": Float(0.0, 3.0)} and plan.objective == ("value", "max")
    assert [t.curve for t in plan.trials] == [[(1, t.value)] for t in moving.trials]  # no reports: one point
