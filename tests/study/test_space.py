"""Search spaces: mapping the unit interval to values, and one clear error per bad input."""

from __future__ import annotations

import math

import pytest

import tunebook as tb
from tunebook.space import SearchSpace, param_from_spec


def test_float_log_maps_unit_interval_geometrically():
    p = tb.Float(1e-4, 1.0, scale="log")
    assert p.from_unit(0.0) == pytest.approx(1e-4)
    assert p.from_unit(0.5) == pytest.approx(1e-2)
    assert p.from_unit(1.0) == pytest.approx(1.0)
    for u in (0.1, 0.37, 0.9):
        assert p.to_unit(p.from_unit(u)) == pytest.approx(u)


def test_float_linear_round_trip():
    p = tb.Float(-2.0, 6.0)
    assert p.from_unit(0.25) == pytest.approx(0.0)
    assert p.to_unit(4.0) == pytest.approx(0.75)


def test_int_linear_gives_each_integer_an_equal_share():
    p = tb.Int(1, 4)
    counts = {v: 0 for v in range(1, 5)}
    for i in range(4000):
        counts[p.from_unit((i + 0.5) / 4000)] += 1
    assert set(counts.values()) == {1000}


def test_int_log_stays_in_range_and_is_integer():
    p = tb.Int(16, 1024, scale="log")
    values = [p.from_unit(i / 100) for i in range(101)]
    assert min(values) == 16 and max(values) == 1024
    assert all(isinstance(v, int) for v in values)
    # log scale: as many values below 128 (the geometric middle) as above
    below = sum(v < 128 for v in values)
    assert 40 <= below <= 60


def test_choice_maps_equal_shares():
    p = tb.Choice(["a", "b", "c"])
    assert [p.from_unit(u) for u in (0.0, 0.34, 0.67, 0.999)] == ["a", "b", "c", "c"]
    assert p.to_unit("b") == pytest.approx(0.5)


def test_yaml_forms_parse_to_the_same_space():
    from_yaml = SearchSpace.from_spec(
        {
            "scientific": {"wd": {"choice": [0.0, 1e-4]}},
            "nuisance": {"lr": {"min": "1e-4", "max": 1.0, "scale": "log"}, "width": {"min": 8, "max": 64, "type": "int"}},
            "fixed": {"batch_size": 128},
        }
    )
    direct = SearchSpace(
        scientific={"wd": tb.Choice([0.0, 1e-4])},
        nuisance={"lr": tb.Float(1e-4, 1.0, "log"), "width": tb.Int(8, 64)},
        fixed={"batch_size": 128},
    )
    assert from_yaml == direct
    assert from_yaml.roles == {"wd": "scientific", "lr": "nuisance", "width": "nuisance", "batch_size": "fixed"}
    assert SearchSpace.from_spec(direct.to_spec()) == direct


@pytest.mark.parametrize(
    ("spec", "field", "words"),
    [
        ({"nuisance": {"lr": {"min": 1.0, "max": 0.1}}}, "search_space.nuisance.lr", "must be below max"),
        ({"nuisance": {"lr": {"min": 0.0, "max": 1.0, "scale": "log"}}}, "search_space.nuisance.lr.min", "log scale needs min > 0"),
        ({"nuisance": {"opt": {"choice": []}}}, "search_space.nuisance.opt.choice", "is empty"),
        ({"nuisance": {"lr": {"min": 0.1, "max": 1.0, "scale": "ln"}}}, "search_space.nuisance.lr.scale", "unknown scale"),
        ({"nuisance": {"lr": {"min": 0.1, "max": 1.0, "step": 2}}}, "search_space.nuisance.lr.step", "unknown key"),
        ({"nuisance": {"lr": {"min": "abc", "max": 1.0}}}, "search_space.nuisance.lr.min", "expected a number"),
        ({"nuisance": {"lr": {"max": 1.0}}}, "search_space.nuisance.lr.min", "is missing"),
        ({"nuisance": {"w": {"min": 1.5, "max": 8, "type": "int"}}}, "search_space.nuisance.w.min", "expected an integer"),
        ({"nuisance": {"w": {"min": 1, "max": 8, "type": "complex"}}}, "search_space.nuisance.w.type", "unknown type"),
        ({"scientific": {"lr": {"choice": [1, 2]}}, "nuisance": {"lr": {"min": 0.1, "max": 1.0}}}, "search_space.nuisance.lr", "already scientific"),
        ({"scientific": {"wd": 0.1}}, "search_space.scientific.wd", "needs a range or a choice"),
        ({"nuisance": {"opt": {"choice": ["a", "a"]}}}, "search_space.nuisance.opt.choice", "twice"),
        ({"hyper": {"lr": {"min": 0.1, "max": 1.0}}}, "search_space.hyper", "unknown role"),
        ({"fixed": {"batch_size": 128}}, "search_space", "nothing varies"),
        ({"nuisance": ["lr"]}, "search_space.nuisance", "expected a mapping"),
    ],
)
def test_bad_spaces_name_the_field(spec, field, words):
    with pytest.raises(tb.SpecError) as info:
        SearchSpace.from_spec(spec)
    assert info.value.field == field
    assert words in str(info.value)
    assert "\n" not in str(info.value)


def test_python_api_validates_too():
    with pytest.raises(tb.SpecError, match="nuisance.lr: min"):
        SearchSpace(nuisance={"lr": tb.Float(1.0, 0.5)})
    with pytest.raises(tb.SpecError, match="fixed.lr: a fixed hyperparameter is a constant"):
        SearchSpace(nuisance={"x": tb.Float(0, 1)}, fixed={"lr": tb.Float(0, 1)})


def test_param_from_spec_rejects_infinite_bounds():
    with pytest.raises(tb.SpecError, match="finite"):
        param_from_spec({"min": 0.0, "max": math.inf}, "x")


def test_conditional_names_are_nuisance_with_an_envelope_over_their_groups():
    space = SearchSpace(
        scientific={"model": tb.Choice(["small", "big", "huge"])},
        conditional={
            "model=small": {"width": tb.Int(16, 64), "act": tb.Choice(["relu", "gelu"]), "lr": tb.Float(0.1, 1.0, "log")},
            "model=big": {"width": tb.Int(64, 512), "act": tb.Choice(["gelu", "silu"]), "lr": tb.Float(0.01, 0.5)},
        },
    )
    assert space.roles == {"model": "scientific", "width": "nuisance", "act": "nuisance", "lr": "nuisance"}
    assert space.nuisance == {}  # the shared nuisance only
    assert space.params["width"] == tb.Int(16, 512)
    assert space.params["act"] == tb.Choice(["relu", "gelu", "silu"])
    assert space.params["lr"] == tb.Float(0.01, 1.0, "linear")  # scales differ: the envelope is linear
    assert space.conditional_key({"model": "big"}) == "model=big"
    assert space.conditional_key({"model": "huge"}) is None and space.subspace({"model": "huge"}) == {}
    assert space.varied == ["model", "width", "act", "lr"]
    with pytest.raises(tb.SpecError, match="^search_space.conditional.model=small: no scientific hyperparameter 'model'; add it"):
        SearchSpace(conditional={"model=small": {"width": tb.Int(1, 2)}})
