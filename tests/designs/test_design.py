"""Designs: pinned scrambled Halton points, balanced choices, low discrepancy, crossed groups, extension."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import qmc

import tunebook as tb
from tunebook.designs import materialize
from tunebook.designs.sequences import halton, pseudo_random


def test_halton_first_points_are_pinned_for_a_seed():
    # Owen-scrambled Halton (scipy.stats.qmc.Halton, scramble=True) with seed 123.
    expected = np.array(
        [
            [0.10044443786896706, 0.09976386657006998],
            [0.6004444378689671, 0.7664305332367365],
            [0.35044443786896706, 0.4330971999034031],
            [0.8504444378689671, 0.21087497768118102],
        ]
    )
    np.testing.assert_allclose(halton(4, 2, seed=123), expected, rtol=0, atol=1e-12)


def test_halton_extends_without_changing_earlier_points():
    full = halton(40, 3, seed=5)
    np.testing.assert_allclose(np.vstack([halton(17, 3, seed=5), halton(23, 3, seed=5, start=17)]), full)
    np.testing.assert_allclose(pseudo_random(10, 3, 5, start=30), pseudo_random(40, 3, 5)[30:])


@pytest.mark.parametrize("n", [1, 5, 7, 12, 31, 100])
def test_every_choice_value_drawn_equally_often(n):
    space = tb.SearchSpace(
        nuisance={
            "opt": tb.Choice(["adam", "sgd", "momentum"]),
            "act": tb.Choice(["relu", "gelu", "tanh", "silu", "elu"]),
            "lr": tb.Float(1e-4, 1, "log"),
        }
    )
    points = materialize(space, n, seed=11)
    for name, values in (("opt", ["adam", "sgd", "momentum"]), ("act", ["relu", "gelu", "tanh", "silu", "elu"])):
        counts = [sum(p.params[name] == v for p in points) for v in values]
        assert max(counts) - min(counts) <= 1, (name, counts)


def test_halton_has_lower_discrepancy_than_pseudo_random_on_average():
    n, d = 64, 4
    seeds = range(10)
    halton_d = np.mean([qmc.discrepancy(halton(n, d, seed=s)) for s in seeds])
    random_d = np.mean([qmc.discrepancy(pseudo_random(n, d, seed=s)) for s in seeds])
    assert halton_d < 0.5 * random_d


def test_crossed_design_gives_each_scientific_value_the_same_nuisance_points_and_seeds():
    space = tb.SearchSpace(
        scientific={"wd": tb.Choice([0.0, 1e-4, 1e-3])},
        nuisance={"lr": tb.Float(1e-4, 1, "log"), "beta1": tb.Float(0.8, 0.99)},
    )
    points = materialize(space, 12, seed=3)
    groups = [points[i : i + 3] for i in range(0, 12, 3)]
    for group in groups:
        assert [p.params["wd"] for p in group] == [0.0, 1e-4, 1e-3]
        assert len({(p.params["lr"], p.params["beta1"], p.seed) for p in group}) == 1
    assert len({g[0].params["lr"] for g in groups}) == 4


def test_crossed_design_needs_a_multiple_of_the_scientific_combinations():
    space = tb.SearchSpace(scientific={"wd": tb.Choice([0.0, 1e-4, 1e-3])}, nuisance={"lr": tb.Float(0.1, 1)})
    with pytest.raises(tb.SpecError, match="use trials: 21 or 18") as info:
        materialize(space, 20, seed=0)
    assert info.value.field == "trials"


def test_joint_design_puts_scientific_values_in_the_sequence():
    space = tb.SearchSpace(scientific={"wd": tb.Float(0.0, 0.1)}, nuisance={"lr": tb.Float(0.1, 1)})
    with pytest.raises(tb.SpecError, match="scientific_design: joint"):
        materialize(space, 8, seed=0)
    points = materialize(space, 8, seed=0, scientific_design="joint")
    assert len({p.params["wd"] for p in points}) == 8
    assert len({p.seed for p in points}) == 8


def test_grid_is_refused_beyond_two_dimensions_unless_forced():
    space = tb.SearchSpace(nuisance={k: tb.Float(0, 1) for k in "abc"})
    with pytest.raises(tb.SpecError) as info:
        materialize(space, 27, seed=0, design="grid")
    assert info.value.field == "design" and "grid_force" in str(info.value)
    assert len(materialize(space, 27, seed=0, design="grid", grid_force=True)) == 27


def test_grid_covers_the_axes_with_ends_included():
    space = tb.SearchSpace(nuisance={"lr": tb.Float(1e-3, 1e-1, "log"), "opt": tb.Choice(["a", "b"])})
    points = materialize(space, 6, seed=0, design="grid")
    lrs = sorted({round(p.params["lr"], 12) for p in points})
    assert lrs == pytest.approx([1e-3, 1e-2, 1e-1])
    with pytest.raises(tb.SpecError, match="use trials"):
        materialize(space, 7, seed=0, design="grid")


def test_materialize_extension_matches_a_fresh_design():
    space = tb.SearchSpace(scientific={"wd": tb.Choice([0, 1])}, nuisance={"lr": tb.Float(1e-4, 1, "log")})
    assert materialize(space, 10, seed=9)[:6] == materialize(space, 6, seed=9)
    assert materialize(space, 10, seed=9, start=6) == materialize(space, 10, seed=9)[6:]
