"""Conditional nuisance spaces: each value of a scientific choice with its own nuisance subspace.

The playbook: "the learning rate of Nesterov and the learning rate of Adam are
different hyperparameters" (conditional hyperparameters). These tests cover the
spec (YAML and Python, one form), every bad conditional spec through the real
CLI, the crossed design (balanced, paired, extensible), the data layer, the
dashboard, and real digits studies through the CLI and Python.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import yaml

import tunebook as tb
from _store_dump import rows
from conftest import run_cli
from tunebook.analysis.data import load
from tunebook.analysis.figures import axis_plot
from tunebook.analysis.synthetic import exp_decay, write_study
from tunebook.designs import materialize
from tunebook.errors import SpecError
from tunebook.space import SearchSpace

SPACE_YAML = """
scientific: {optimizer: {choice: [adam, momentum, sgd]}}
nuisance:   {weight_decay: {min: 1.0e-6, max: 1.0e-2, scale: log}}
conditional:
  optimizer=adam:     {learning_rate: {min: 1.0e-4, max: 1.0e-2, scale: log}, beta1: {min: 0.8, max: 0.99}}
  optimizer=momentum: {learning_rate: {min: 1.0e-2, max: 1.0, scale: log}, momentum: {min: 0.8, max: 0.99}}
fixed: {batch_size: 32, eval_every: 10, hidden_units: 32}
"""
SPACE = yaml.safe_load(SPACE_YAML)
OWN = {
    "adam": {"optimizer", "weight_decay", "learning_rate", "beta1"},
    "momentum": {"optimizer", "weight_decay", "learning_rate", "momentum"},
    "sgd": {"optimizer", "weight_decay"},  # no entry: only the shared nuisance
}


def python_space() -> SearchSpace:
    return tb.SearchSpace(
        scientific={"optimizer": tb.Choice(["adam", "momentum", "sgd"])},
        nuisance={"weight_decay": tb.Float(1e-6, 1e-2, scale="log")},
        fixed={"batch_size": 32, "eval_every": 10, "hidden_units": 32},
        conditional={
            "optimizer=adam": {"learning_rate": tb.Float(1e-4, 1e-2, scale="log"), "beta1": tb.Float(0.8, 0.99)},
            "optimizer=momentum": {"learning_rate": tb.Float(1e-2, 1.0, scale="log"), "momentum": tb.Float(0.8, 0.99)},
        },
    )


# the spec ------------------------------------------------------------------------------
def test_yaml_and_python_forms_are_the_same_space_and_round_trip():
    from_yaml = SearchSpace.from_spec(SPACE)
    from_python = python_space()
    assert from_yaml == from_python
    assert from_yaml.to_spec() == from_python.to_spec()
    assert SearchSpace.from_spec(from_python.to_spec()) == from_python
    assert SearchSpace.from_spec(yaml.safe_load(yaml.safe_dump(from_python.to_spec()))) == from_python
    assert list(from_yaml.to_spec()["conditional"]) == ["optimizer=adam", "optimizer=momentum"]
    # roles: conditional names are nuisance; each group has its own ranges
    assert from_yaml.roles["beta1"] == from_yaml.roles["learning_rate"] == "nuisance"
    assert from_yaml.nuisance_for({"optimizer": "momentum"})["learning_rate"] == tb.Float(1e-2, 1.0, "log")
    assert from_yaml.nuisance_for({"optimizer": "adam"})["learning_rate"] == tb.Float(1e-4, 1e-2, "log")
    assert set(from_yaml.params_for({"optimizer": "sgd"})) == {"optimizer", "weight_decay"}
    assert from_yaml.groups_with("learning_rate") == ["optimizer=adam", "optimizer=momentum"]
    # the study-wide range of a shared name is the envelope of its groups' (axes of figures)
    assert from_yaml.params["learning_rate"] == tb.Float(1e-4, 1.0, "log")


def test_a_plain_space_keeps_its_stored_form():
    """No conditional key unless given: the spec hashes of stored studies do not change."""
    plain = {"scientific": {"wd": {"choice": [0.0, 0.1]}}, "nuisance": {"lr": {"min": 0.1, "max": 1.0}}, "fixed": {}}
    assert SearchSpace.from_spec(plain).to_spec() == plain


def test_numeric_and_boolean_choice_values_match_their_keys():
    space = SearchSpace.from_spec({
        "scientific": {"weight_decay": {"choice": [0.0, 1.0e-4]}, "nesterov": {"choice": [True, False]}},
        "conditional": {"weight_decay=1e-4": {"lr": {"min": 0.1, "max": 1.0}}},
    })
    assert list(space.conditional) == ["weight_decay=0.0001"]
    assert set(space.params_for({"weight_decay": 1e-4, "nesterov": True})) == {"weight_decay", "nesterov", "lr"}
    assert set(space.params_for({"weight_decay": 0.0, "nesterov": True})) == {"weight_decay", "nesterov"}
    flags = SearchSpace.from_spec({"scientific": {"nesterov": {"choice": [True, False]}},
                                   "conditional": {"nesterov=true": {"lr": {"min": 0.1, "max": 1.0}}}})
    assert list(flags.conditional) == ["nesterov=True"]


def _with(mutate):
    space = copy.deepcopy(SPACE)
    mutate(space)
    return space


BAD = {
    "unknown scientific": (
        lambda s: s["conditional"].update({"optimiser=adam": {"x": {"min": 0, "max": 1}}}),
        "search_space.conditional.optimiser=adam: no scientific hyperparameter 'optimiser'; key it by a scientific choice: optimizer"),
    "unknown value": (
        lambda s: s["conditional"].update({"optimizer=adamw": {"x": {"min": 0, "max": 1}}}),
        "search_space.conditional.optimizer=adamw: no such value of scientific 'optimizer'; use one of adam, momentum, sgd"),
    "not name=value": (
        lambda s: s["conditional"].update({"adam": {"x": {"min": 0, "max": 1}}}),
        "search_space.conditional.adam: a conditional key is name=value"),
    "nuisance, not scientific": (
        lambda s: s["conditional"].update({"weight_decay=0.001": {"x": {"min": 0, "max": 1}}}),
        "search_space.conditional.weight_decay=0.001: 'weight_decay' is nuisance, not scientific"),
    "clash with shared nuisance": (
        lambda s: s["conditional"]["optimizer=adam"].update({"weight_decay": {"min": 0, "max": 1}}),
        "search_space.conditional.optimizer=adam.weight_decay: 'weight_decay' is already a shared nuisance"),
    "clash with fixed": (
        lambda s: s["conditional"]["optimizer=momentum"].update({"batch_size": {"min": 8, "max": 64, "type": "int"}}),
        "search_space.conditional.optimizer=momentum.batch_size: 'batch_size' is already fixed"),
    "clash with scientific": (
        lambda s: s["conditional"]["optimizer=momentum"].update({"optimizer": {"choice": ["a", "b"]}}),
        "search_space.conditional.optimizer=momentum.optimizer: 'optimizer' is already scientific"),
    "non-choice scientific": (
        lambda s: (s["scientific"].update({"depth": {"min": 1, "max": 4, "type": "int"}}),
                   s["conditional"].update({"depth=2": {"x": {"min": 0, "max": 1}}})),
        "search_space.conditional.depth=2: scientific 'depth' is a range"),
    "empty subspace": (
        lambda s: s["conditional"].update({"optimizer=sgd": {}}),
        "search_space.conditional.optimizer=sgd: the subspace is empty"),
    "subspace not a mapping": (
        lambda s: s["conditional"].update({"optimizer=sgd": 0.1}),
        "search_space.conditional.optimizer=sgd: expected a mapping of names to ranges"),
    "conditional not a mapping": (
        lambda s: s.update({"conditional": ["optimizer=adam"]}),
        "search_space.conditional: expected a mapping of name=value"),
    "min above max": (
        lambda s: s["conditional"]["optimizer=adam"].update({"beta1": {"min": 0.99, "max": 0.8}}),
        "search_space.conditional.optimizer=adam.beta1: min (0.99) must be below max (0.8); swap them"),
    "log scale at zero": (
        lambda s: s["conditional"]["optimizer=adam"].update({"learning_rate": {"min": 0, "max": 1, "scale": "log"}}),
        "search_space.conditional.optimizer=adam.learning_rate.min: a log scale needs min > 0"),
    "range key": (
        lambda s: s["conditional"]["optimizer=adam"].update({"beta1": {"min": 0.8, "maximum": 0.99}}),
        "search_space.conditional.optimizer=adam.beta1.maximum: unknown key"),
    "kind differs between groups": (
        lambda s: s["conditional"]["optimizer=adam"].update({"learning_rate": {"choice": [1e-3, 1e-2]}}),
        "search_space.conditional.optimizer=momentum.learning_rate: is a float range here but a choice under optimizer=adam"),
    "two scientific names": (
        lambda s: (s["scientific"].update({"act": {"choice": ["relu", "gelu"]}}),
                   s["conditional"].update({"act=relu": {"x": {"min": 0, "max": 1}}})),
        "search_space.conditional.act=relu: every entry keys on one scientific hyperparameter, here 'optimizer'"),
    "same value twice": (
        lambda s: (s["scientific"].update({"optimizer": {"choice": [0.001, 0.01]}}),
                   s.update({"conditional": {"optimizer=0.001": {"x": {"min": 0, "max": 1}},
                                             "optimizer=1e-3": {"y": {"min": 0, "max": 1}}}})),
        "search_space.conditional.optimizer=1e-3: names the same value as optimizer=0.001"),
}
DESIGN_BAD = {
    "bayesian": ({"design": "bayesian"},
                 "design: bayesian does not support conditional spaces yet; use design: quasi_random"),
    "joint": ({"scientific_design": "joint"}, "scientific_design: joint does not support conditional spaces"),
    "grid": ({"design": "grid"}, "design: grid does not support conditional spaces; use design: quasi_random"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_conditional_specs_raise_one_line_naming_the_field(case):
    mutate, expected = BAD[case]
    with pytest.raises(SpecError) as err:
        SearchSpace.from_spec(_with(mutate))
    assert str(err.value).startswith(expected)
    assert "\n" not in str(err.value)


def test_bad_ranges_inside_a_subspace_read_as_plain_nuisance_ones():
    """The parameter validation is reused: same message, only the field differs."""
    bad = {"min": 0.99, "max": 0.8}
    with pytest.raises(SpecError) as plain:
        SearchSpace.from_spec({"nuisance": {"beta1": bad}})
    with pytest.raises(SpecError) as conditional:
        SearchSpace.from_spec(_with(lambda s: s["conditional"]["optimizer=adam"].update({"beta1": bad})))
    assert (plain.value.problem, plain.value.fix) == (conditional.value.problem, conditional.value.fix)


def test_python_refuses_the_designs_that_cannot_hold_a_conditional_space(tmp_path):
    storage = f"sqlite:///{tmp_path / 'py.db'}"
    for options, expected in DESIGN_BAD.values():
        trials = 9 if options.get("design") == "grid" else 6
        with pytest.raises(SpecError, match="^" + expected.split(";")[0]):
            tb.create_study("c", space=python_space(), objective=("val/error", "min"), trials=trials,
                            max_train_steps=10, storage=storage, **options)
    assert tb.open_storage(storage).list_studies() == []


@pytest.fixture(scope="module")
def cli_store(tmp_path_factory):
    """A store that already holds a study: a refused spec must leave every row as it was."""
    folder = tmp_path_factory.mktemp("cli")
    url = f"sqlite:///{folder / 'tunebook.db'}"
    tb.create_study("keep", space=python_space(), objective=("val/error", "min"), trials=6, max_train_steps=10,
                    storage=url)
    return folder, url


def snapshot(url: str) -> dict:
    return rows(url, ("tb_studies", "tb_trials", "tb_metrics"))


def spec_file(folder, search_space, name="cond", **fields):
    spec = {"study": name, "train": "tunebook.workloads.digits:train", "objective": {"metric": "val/error", "mode": "min"},
            "trials": 6, "max_train_steps": 10, "search_space": search_space, **fields}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


@pytest.mark.parametrize("case", sorted(BAD) + [f"design {k}" for k in sorted(DESIGN_BAD)])
def test_bad_conditional_specs_exit_2_through_the_cli_and_store_nothing(cli_store, case):
    folder, url = cli_store
    if case.startswith("design "):
        options, expected = DESIGN_BAD[case.split()[1]]
        options = {**options, **({"trials": 9} if options.get("design") == "grid" else {})}
        path = spec_file(folder, SPACE, **options)
    else:
        mutate, expected = BAD[case]
        path = spec_file(folder, _with(mutate))
    before = snapshot(url)
    result = run_cli("run", str(path), "--storage", url, "--quiet", "--workers", "0")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert expected in lines[0]
    assert snapshot(url) == before


# the design ----------------------------------------------------------------------------
@pytest.mark.parametrize("design", ["quasi_random", "random"])
def test_each_group_gets_the_same_number_of_trials_and_only_its_own_hyperparameters(design):
    points = materialize(python_space(), 24, seed=3, design=design)
    by_group: dict[str, list] = {}
    for p in points:
        by_group.setdefault(p.params["optimizer"], []).append(p)
        assert set(p.params) == OWN[p.params["optimizer"]]
        own = python_space().params_for(p.params)
        for name, value in p.params.items():
            if name != "optimizer":
                assert own[name].low <= value <= own[name].high  # its own group's range
    assert {k: len(v) for k, v in by_group.items()} == {"adam": 8, "momentum": 8, "sgd": 8}
    with pytest.raises(SpecError, match="multiple of the 3 scientific combinations"):
        materialize(python_space(), 10, seed=3)


def test_corresponding_dimensions_share_points_and_seeds_across_groups():
    """Same name in two groups = one coordinate of the sequence, mapped through each group's own range."""
    space = python_space()
    points = materialize(space, 30, seed=11)
    adam_lr, momentum_lr, adam_beta1, momentum_mom = [], [], [], []
    for i in range(0, 30, 3):
        adam, momentum, sgd = sorted(points[i:i + 3], key=lambda p: p.params["optimizer"] == "sgd")
        adam, momentum = sorted([adam, momentum], key=lambda p: p.params["optimizer"])
        assert adam.seed == momentum.seed == sgd.seed and adam.point == momentum.point == sgd.point
        assert adam.params["weight_decay"] == momentum.params["weight_decay"] == sgd.params["weight_decay"]
        u_adam = space.nuisance_for(adam.params)["learning_rate"].to_unit(adam.params["learning_rate"])
        u_mom = space.nuisance_for(momentum.params)["learning_rate"].to_unit(momentum.params["learning_rate"])
        assert u_adam == pytest.approx(u_mom, abs=1e-9)
        adam_lr.append(adam.params["learning_rate"])
        momentum_lr.append(momentum.params["learning_rate"])
        adam_beta1.append(adam.params["beta1"])
        momentum_mom.append(momentum.params["momentum"])
    # a different seed per point; beta1 and momentum are different dimensions (not copies of each other)
    assert len({p.seed for p in points}) == 10
    assert not np.allclose(adam_beta1, momentum_mom)
    # every group's own learning rates spread over its own range (a quasi-random projection)
    assert min(adam_lr) < 1e-3 < max(adam_lr) and min(momentum_lr) < 0.1 < max(momentum_lr)


def test_the_order_of_entries_and_names_does_not_change_the_points():
    """The stored spec's hash ignores key order, so the design must too (resuming extends the same sequence)."""
    reordered = copy.deepcopy(SPACE)
    reordered["conditional"] = {
        "optimizer=momentum": {"momentum": SPACE["conditional"]["optimizer=momentum"]["momentum"],
                               "learning_rate": SPACE["conditional"]["optimizer=momentum"]["learning_rate"]},
        "optimizer=adam": dict(reversed(list(SPACE["conditional"]["optimizer=adam"].items()))),
    }
    a = materialize(SearchSpace.from_spec(SPACE), 12, seed=2)
    b = materialize(SearchSpace.from_spec(reordered), 12, seed=2)
    assert [(p.params, p.seed) for p in a] == [(p.params, p.seed) for p in b]


def test_a_plain_space_keeps_its_points():
    """The crossed design of a space without conditional entries is what it was (stored studies extend alike)."""
    plain = SearchSpace.from_spec({"scientific": {"wd": {"choice": [0.0, 0.1]}},
                                   "nuisance": {"lr": {"min": 1e-4, "max": 1.0, "scale": "log"},
                                                "act": {"choice": ["relu", "gelu", "tanh"]}}})
    from tunebook.designs import trial_seed
    from tunebook.designs.sequences import halton, sequence

    rows = sequence(plain.nuisance, 5, 7, 0, halton)
    expected = [({"wd": wd, **row}, trial_seed(7, i)) for i, row in enumerate(rows) for wd in (0.0, 0.1)]
    assert [(p.params, p.seed) for p in materialize(plain, 10, seed=7)] == expected


def test_raising_trials_appends_points_and_leaves_existing_ones(tmp_path):
    storage = f"sqlite:///{tmp_path / 'ext.db'}"
    first = tb.create_study("ext", space=SPACE, objective=("val/error", "min"), trials=6, max_train_steps=10,
                            storage=storage, seed=5)
    before = [(t.number, t.params, t.seed) for t in first.trials()]
    again = tb.create_study("ext", space=python_space(), objective=("val/error", "min"), trials=6, max_train_steps=10,
                            storage=storage, seed=5)  # the Python form resumes the YAML-made study
    assert [(t.number, t.params, t.seed) for t in again.trials()] == before
    more = tb.create_study("ext", space=SPACE, objective=("val/error", "min"), trials=15, max_train_steps=10,
                           storage=storage, seed=5)
    after = [(t.number, t.params, t.seed) for t in more.trials()]
    assert after[:6] == before
    expected = materialize(python_space(), 15, seed=5)
    assert [(p.params, p.seed) for p in expected] == [(params, seed) for _, params, seed in after]
    groups = [params["optimizer"] for _, params, _ in after]
    assert {g: groups.count(g) for g in set(groups)} == {"adam": 5, "momentum": 5, "sgd": 5}
    # any change of a group's range is refused, naming the field
    wider = _with(lambda s: s["conditional"]["optimizer=adam"]["learning_rate"].update({"max": 0.1}))
    with pytest.raises(SpecError) as err:
        tb.create_study("ext", space=wider, objective=("val/error", "min"), trials=15, max_train_steps=10,
                        storage=storage, seed=5)
    assert err.value.field == "search_space.conditional.optimizer=adam.learning_rate.max"
    assert "ext-2" in err.value.fix


# the data layer and the dashboard ------------------------------------------------------------
def curve(params, steps, rng):
    """Adam's error falls with beta1 near 0.9; momentum's with the learning rate near 0.1."""
    if params["optimizer"] == "adam":
        floor = 0.05 + abs(params["beta1"] - 0.9)
    elif params["optimizer"] == "momentum":
        floor = 0.04 + 0.05 * abs(math.log10(params["learning_rate"]) + 1)
    else:
        return "train/loss was nan at step 3"
    val = exp_decay(steps, floor, 1.0, 50) + 0.001 * rng.standard_normal(len(steps))
    return {"val/error": val, "train/loss": 2 * val}


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('syn') / 'tunebook.db'}"
    write_study(url, "cond-syn", curve, space=SPACE, trials=12, max_train_steps=200, evals=10,
                goal="Adam or momentum, each tuned in its own range?")
    return url


def test_the_dataframe_has_every_hyperparameter_with_nan_where_a_trial_lacks_it(synthetic):
    df = tb.load_study("cond-syn", storage=synthetic).trials_dataframe()
    assert len(df) == 12
    for column in ("scientific.optimizer", "nuisance.weight_decay", "nuisance.learning_rate", "nuisance.beta1",
                   "nuisance.momentum", "fixed.batch_size"):
        assert column in df.columns
    adam = df[df["scientific.optimizer"] == "adam"]
    momentum = df[df["scientific.optimizer"] == "momentum"]
    sgd = df[df["scientific.optimizer"] == "sgd"]
    assert adam["nuisance.beta1"].notna().all() and adam["nuisance.momentum"].isna().all()
    assert momentum["nuisance.momentum"].notna().all() and momentum["nuisance.beta1"].isna().all()
    assert sgd[["nuisance.learning_rate", "nuisance.beta1", "nuisance.momentum"]].isna().all().all()
    assert (adam["nuisance.learning_rate"] <= 1e-2).all() and (momentum["nuisance.learning_rate"] >= 1e-2).all()
    assert df["nuisance.weight_decay"].notna().all()


def test_data_layer_and_figures_read_each_trial_in_its_own_group(synthetic):
    data = load(tb.load_study("cond-syn", storage=synthetic))
    with_beta1 = data.with_param("beta1")
    assert {t.params["optimizer"] for t in with_beta1} == {"adam"} and len(with_beta1) == 4
    momentum = data.with_param("momentum")[0]
    assert data.param_for(momentum, "learning_rate") == tb.Float(1e-2, 1.0, "log")
    assert data.param_for(momentum, "beta1") is None
    # position within the trial's own range, against the study-wide envelope
    assert data.unit("learning_rate", 1.0, momentum) == pytest.approx(1.0)
    assert data.unit("learning_rate", 1.0) == pytest.approx(1.0)
    assert data.unit("learning_rate", 1e-2, momentum) == pytest.approx(0.0)
    plot = axis_plot(data, "beta1")
    assert len(plot.x) == 4 and plot.infeasible_x == [] and plot.best_x in plot.x
    lr = axis_plot(data, "learning_rate")
    assert len(lr.x) == 8 and len(lr.infeasible_x) == 0  # sgd's trials (all infeasible) have no learning rate
    report = tb.analyze(tb.load_study("cond-syn", storage=synthetic))
    assert report.findings  # the checklist runs over trials that lack some hyperparameters


def test_a_bayesian_study_warm_starts_from_the_matching_group_of_a_conditional_study(synthetic):
    """Exploit one group with Optuna: only the parent's trials inside the new space seed it."""
    pytest.importorskip("optuna")
    from tunebook.designs.bayesian import propose, refined_space
    from tunebook.proposing import history

    parent = tb.load_study("cond-syn", storage=synthetic)
    refined = refined_space(parent)
    assert set(refined) >= {"beta1", "momentum", "learning_rate", "weight_decay"}
    assert 0.8 <= refined["beta1"]["min"] < refined["beta1"]["max"] <= 0.99
    bo = tb.create_study("adam-bo", space={"nuisance": {"beta1": {"min": 0.8, "max": 0.99}},
                                           "fixed": {"optimizer": "adam"}},
                         objective=("val/error", "min"), trials=2, max_train_steps=200, storage=synthetic,
                         design="bayesian", sampler="tpe", parent="cond-syn")
    point = propose(history(bo), sampler="tpe")
    assert set(point) == {"beta1"} and 0.8 <= point["beta1"] <= 0.99


def test_the_dashboard_renders_a_conditional_study(synthetic):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from tunebook.dashboard import create_app

    client = TestClient(create_app(synthetic), base_url="http://127.0.0.1")
    study = tb.load_study("cond-syn", storage=synthetic)
    numbers = {t.params["optimizer"]: t.number for t in study.trials()}
    for path in ("/", "/study/cond-syn", "/study/cond-syn?order=value", f"/study/cond-syn/trial/{numbers['adam']}",
                 f"/study/cond-syn/trial/{numbers['sgd']}", f"/compare?study=cond-syn&trials={numbers['adam']},{numbers['momentum']}",
                 "/api/study/cond-syn/state"):
        response = client.get(path)
        assert response.status_code == 200, path
    assert "beta1" in client.get(f"/study/cond-syn/trial/{numbers['adam']}").text
    assert "beta1" not in client.get(f"/study/cond-syn/trial/{numbers['sgd']}").text


# end to end on digits ------------------------------------------------------------------------
@pytest.mark.slow
def test_a_conditional_digits_study_runs_and_reports_through_the_cli(tmp_path):
    space = _with(lambda s: (s["scientific"].update({"optimizer": {"choice": ["adam", "momentum"]}}),))
    path = spec_file(tmp_path, space, name="digits-cond", max_train_steps=30)
    url = f"sqlite:///{tmp_path / 'tunebook.db'}"
    env = {"OMP_NUM_THREADS": "1"}
    result = run_cli("run", str(path), "--storage", url, "--quiet", "--workers", "1", env=env)
    assert result.returncode == 0, result.stderr
    study = tb.load_study("digits-cond", storage=url)
    assert study.counts()["completed"] == 6
    for t in study.trials():
        assert set(t.params) == OWN[t.params["optimizer"]]
        assert t.value is not None and 0 <= t.value <= 1
    report = run_cli("report", "digits-cond", "--storage", url, "-o", str(tmp_path / "r.html"), env=env)
    assert report.returncode == 0, report.stderr
    html = (tmp_path / "r.html").read_text()
    assert "beta1" in html and "momentum" in html
    terminal = run_cli("report", "digits-cond", "--storage", url, "--format", "terminal", env=env)
    assert terminal.returncode == 0, terminal.stderr


def test_a_conditional_digits_study_runs_through_python(tmp_path, monkeypatch):
    from tunebook.workloads.digits import train

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    space = tb.SearchSpace(
        scientific={"optimizer": tb.Choice(["adam", "momentum"])},
        fixed={"batch_size": 16, "eval_every": 5, "hidden_units": 16},
        conditional={
            "optimizer=adam": {"learning_rate": tb.Float(1e-3, 1e-2, scale="log")},
            "optimizer=momentum": {"learning_rate": tb.Float(1e-2, 0.3, scale="log"), "momentum": tb.Float(0.8, 0.95)},
        },
    )
    study = tb.create_study("py-cond", space=space, objective=("val/error", "min"), trials=4, max_train_steps=10,
                            storage=f"sqlite:///{tmp_path / 'py.db'}", seed=1)
    result = tb.run(study, train, workers=0, progress=False, checkpoint_dir=str(tmp_path / "ck"))
    assert result is not None
    trials = study.trials()
    assert [t.state for t in trials] == ["completed"] * 4
    assert all(set(t.params) == ({"optimizer", "learning_rate", "momentum"} if t.params["optimizer"] == "momentum"
                                 else {"optimizer", "learning_rate"}) for t in trials)
    df = study.trials_dataframe()
    assert df["nuisance.momentum"].isna().sum() == 2
    assert tb.analyze(study).findings is not None
