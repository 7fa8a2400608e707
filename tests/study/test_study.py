"""Studies: materialized at creation, resumed by name, extended, and refused when changed."""

from __future__ import annotations

import json
import pytest

import tunebook as tb
from _store_dump import rows

SPACE = tb.SearchSpace(
    scientific={"wd": tb.Choice([0.0, 1e-3])},
    nuisance={"lr": tb.Float(1e-4, 1.0, "log"), "opt": tb.Choice(["adam", "sgd"])},
    fixed={"batch_size": 64},
)


def create(url, name="wd", **overrides):
    kwargs = dict(space=SPACE, objective=("val/error", "min"), trials=8, max_train_steps=100, goal="wd?", storage=url)
    kwargs.update(overrides)
    return tb.create_study(name, **kwargs)


def snapshot(url: str) -> dict:
    """Everything stored, table by table (to prove that a refused change wrote nothing)."""
    return rows(tb.open_storage(url).url, ("tb_experiments", "tb_studies", "tb_trials"))


def test_same_name_and_spec_resumes_identically(storage_url):
    first = create(storage_url)
    again = create(storage_url)
    assert again.id == first.id
    assert [t.params for t in again.trials()] == [t.params for t in first.trials()]


def test_default_seed_comes_from_the_name(sqlite_url):
    a = create(sqlite_url, name="a")
    b = create(sqlite_url, name="b")
    assert a.seed != b.seed
    assert [t.params for t in a.trials()] != [t.params for t in b.trials()]


def test_raising_trials_appends_the_next_points_and_keeps_earlier_ones(storage_url):
    small = create(storage_url, trials=6)
    before = [(t.number, t.params, t.seed) for t in small.trials()]
    big = create(storage_url, trials=10)
    after = [(t.number, t.params, t.seed) for t in big.trials()]
    assert after[:6] == before
    assert len(after) == 10 and big.trials_budget == 10
    # the same as a study created at 10 trials from the start
    fresh = create(storage_url, name="fresh", trials=10, seed=small.seed)
    assert [t.params for t in fresh.trials()] == [p for _, p, _ in after]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"max_train_steps": 200}, "max_train_steps"),
        ({"objective": ("val/error", "max")}, "objective.mode"),
        ({"goal": "another question"}, "goal"),
        (
            {
                "space": tb.SearchSpace(
                    scientific={"wd": tb.Choice([0.0, 1e-3])},
                    nuisance={"lr": tb.Float(1e-4, 1.0, "log")},
                    fixed={"batch_size": 64},
                )
            },
            "search_space.nuisance.opt",
        ),
    ],
)
def test_other_changes_are_refused_with_a_new_name_and_nothing_stored(storage_url, change, field):
    create(storage_url)
    before = snapshot(storage_url)
    with pytest.raises(tb.SpecError) as info:
        create(storage_url, **change)
    assert info.value.field == field
    assert "new name, e.g. study: wd-2" in str(info.value)
    assert snapshot(storage_url) == before


def test_shrinking_is_refused(sqlite_url):
    create(sqlite_url, trials=8)
    with pytest.raises(tb.SpecError, match="never shrinks"):
        create(sqlite_url, trials=4)


def test_load_unknown_study_lists_known_ones(sqlite_url):
    create(sqlite_url)
    with pytest.raises(tb.SpecError, match="known studies: wd"):
        tb.load_study("nope", storage=sqlite_url)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": "bad name!"}, "study"),
        ({"trials": 0}, "trials"),
        ({"max_train_steps": 2.5}, "max_train_steps"),
        ({"objective": ("val/error", "lowest")}, "objective.mode"),
        ({"design": "bayes"}, "design"),
        ({"seed": -1}, "seed"),
        ({"infeasible_if": {"train/loss": {"over": 3}}}, "infeasible_if.train/loss"),
        ({"trials": 7}, "trials"),
    ],
)
def test_bad_arguments_store_nothing(sqlite_url, overrides, field):
    with pytest.raises(tb.SpecError) as info:
        create(sqlite_url, **overrides)
    assert info.value.field == field
    assert tb.open_storage(sqlite_url).list_studies() == []


@pytest.mark.parametrize("stored, given", [([0.0, 0.1], [-0.0, 0.1]), ([1, 2], [True, 2])])
def test_a_spec_differing_only_as_json_sees_it_names_the_field(sqlite_url, stored, given):
    """-0.0 == 0.0 and True == 1 in Python, but not in the stored spec: the refusal still names the field."""
    def make(values):
        return tb.create_study("same", space=tb.SearchSpace(scientific={"wd": tb.Choice(values)},
                                                            nuisance={"lr": tb.Float(1e-3, 1.0, "log")}),
                               objective=("val/error", "min"), trials=2, max_train_steps=5, storage=sqlite_url)

    make(stored)
    with pytest.raises(tb.SpecError) as info:
        make(given)
    assert info.value.field == "search_space.scientific.wd.choice"
    assert json.dumps(stored) in str(info.value) and json.dumps(given) in str(info.value)


def test_metrics_by_number_means_this_studys_trial(sqlite_url):
    """study.metrics(3) is trial #3 of this study, never a trial of another study with that store id."""
    space = tb.SearchSpace(nuisance={"lr": tb.Float(1e-3, 1.0, "log")})
    first = tb.create_study("first", space=space, objective=("val/error", "min"), trials=4, max_train_steps=2,
                            storage=sqlite_url)
    second = tb.create_study("second", space=space, objective=("val/error", "min"), trials=2, max_train_steps=2,
                             storage=sqlite_url)
    for study, value in ((first, 1.0), (second, 2.0)):
        for t in study.trials():
            study.storage.claim_trial("w", study.id)
            study.storage.write_metrics(t.id, "w", [(1, "val/error", value + t.number)])
    assert second.metrics(1) == {"val/error": [(1, 3.0)]} and first.metrics(0) == {"val/error": [(1, 1.0)]}
    assert second.metrics(second.trials()[0]) == {"val/error": [(1, 2.0)]}
    with pytest.raises(KeyError, match="no trial #2"):
        second.metrics(2)
