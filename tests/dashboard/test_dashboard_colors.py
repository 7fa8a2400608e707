"""One colour per scientific value across every figure of a study (axis plots, their infeasible strips, the
isolation plot, the per-group curves, the parallel coordinates), each group named wherever groups are
drawn; read from the figure specs the dashboard and the report draw."""

from __future__ import annotations

import re

import pytest

from tunebook.analysis import analyze
from tunebook.analysis.explore import parallel_spec
from tunebook.analysis.figures import spec
from tunebook.analysis.synthetic import exp_decay, write_study

SPACE = {"scientific": {"optimizer": {"choice": ["adam", "sgd", "momentum"]}},
         "nuisance": {"lr": {"min": 1e-4, "max": 1.0, "scale": "log"}, "beta": {"min": 0.8, "max": 0.99}}}
GROUPS = ["optimizer=adam", "optimizer=sgd", "optimizer=momentum"]


def curve(params, steps, rng):
    if params["lr"] > {"adam": 0.05, "sgd": 0.5, "momentum": 0.2}[params["optimizer"]]:
        return "loss was nan at step 3"  # each group diverges at its own learning rate: the strip shows it
    floor = 0.05 + 0.05 * abs(params["lr"] - 0.01) + {"adam": 0.0, "sgd": 0.02, "momentum": 0.01}[params["optimizer"]]
    val = exp_decay(steps, floor, 1.0, 60) + 0.001 * rng.standard_normal(len(steps))
    return {"val/error": val, "train/loss": 2 * val}


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('colors') / 'tunebook.db'}"
    return analyze(write_study(url, "c", curve, space=SPACE, trials=60))


def group_of(name: str) -> str | None:
    """The group a trace is named after ("optimizer=sgd", "infeasible optimizer=sgd (4)", "optimizer=sgd (#12)")."""
    found = [g for g in GROUPS if re.search(re.escape(g) + r"(\b|$| )", name)]
    return found[0] if len(found) == 1 else None


def colour(trace: dict) -> str | None:
    return (trace.get("marker") or {}).get("color") or (trace.get("line") or {}).get("color")


def test_each_scientific_value_has_one_colour_in_every_figure(report):
    seen: dict[str, set[str]] = {g: set() for g in GROUPS}
    kinds_with_groups: dict[str, set[str]] = {}
    for figure in report.figures:
        built = spec(figure)
        if built is None:
            continue
        for trace in built["data"]:
            group = group_of(trace.get("name", ""))
            if group is not None:
                seen[group].add(colour(trace))
                kinds_with_groups.setdefault(figure.key, set()).add(group)
    # the figures that draw groups, each naming all three in its traces (the legend)
    drawn = {k.split(":")[0] + (":groups" if k.endswith("groups") else "") for k in kinds_with_groups}
    assert {"axis", "isolation", "curves:groups"} <= drawn, kinds_with_groups
    for key, groups in kinds_with_groups.items():
        if not key.startswith("curves:") or key.endswith("groups"):
            assert groups == set(GROUPS), (key, groups)
    # one colour per value, a different one for each value
    assert all(len(colours) == 1 for colours in seen.values()), seen
    assert len({next(iter(c)) for c in seen.values()}) == 3, seen
    # the infeasible strips name and colour their groups too
    strips = [t for f in report.figures if f.kind == "axis" for t in spec(f)["data"] if t.get("yaxis") == "y2"]
    assert strips and all(group_of(t["name"]) and colour(t) in seen[group_of(t["name"])] for t in strips)
    # parallel coordinates: each group's lines in its colour, named; every completed trial drawn once
    par = parallel_spec(report.data)
    assert [g["label"] for g in par["groups"]] == GROUPS
    assert {g["label"]: {g["color"]} for g in par["groups"]} == seen
    completed = [t for t in report.data.completed if t.value is not None]
    assert len(par["group"]) == len(completed) and sum(g["count"] for g in par["groups"]) == len(completed)


def test_the_isolation_plot_draws_a_choice_as_categories_not_a_line(report):
    iso = next(f for f in report.figures if f.kind == "isolation")
    built = spec(iso)
    assert built["layout"]["xaxis"]["type"] == "category"
    assert all(t["mode"] == "markers" for t in built["data"])  # no line between categories
    assert [t["name"] for t in built["data"]] == [g for g in GROUPS if any(t["name"] == g for t in built["data"])]
