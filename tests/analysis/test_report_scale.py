"""The report's fast paths give what the plain computations give (issue 17: the report at 100,000 trials).

Speed itself is measured in benchmarks/bench_report_scale.py, never asserted here.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

import tunebook.analysis.data as data_module
from tunebook.analysis import Thresholds, analyze, load
from tunebook.analysis.checks import expected_best_of_k, running_median
from tunebook.analysis.checks.common import curve_trials, groups
from tunebook.analysis.checks.sampling import effective_best_steps
from tunebook.analysis.checks.variance import paired_seed_sd
from tunebook.analysis.figures import axis_plot, best_of_k_quantiles, customdata_rows, round_sig, varying
from tunebook.analysis.synthetic import exp_decay, write_study

SPACE = {"scientific": {"wd": {"choice": [0.0, 0.01]}},
         "nuisance": {"learning_rate": {"min": 1e-4, "max": 1.0, "scale": "log"}, "beta1": {"min": 0.8, "max": 0.99}},
         "fixed": {"optimizer": "sgd"}}


def curve(params, steps, rng):
    if params["learning_rate"] > 0.5:
        return "diverged"
    floor = 0.05 + 0.1 * (math.log10(params["learning_rate"]) + 2) ** 2
    val = exp_decay(steps, floor, 1.0, 60) + 0.002 * rng.standard_normal(len(steps))
    return {"val/error": val, "train/loss": 2 * val}


@pytest.fixture
def study(sqlite_url):
    return write_study(sqlite_url, "s", curve, space=SPACE, trials=60, max_train_steps=400, evals=20)


def test_round_sig_is_the_formatted_text():
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.standard_normal(3000) * 10.0 ** rng.integers(-30, 30, 3000),
                             10.0 ** rng.integers(-25, 25, 300), [0.0, -0.0, 0.5, 2.5, 1e-320]]).tolist()
    values += [math.inf, math.nan]
    for digits in (4, 7):
        got = round_sig(values, digits)
        want = [float(f"{v:.{digits}g}") if math.isfinite(v) else v for v in values]
        assert [repr(x) for x in got] == [repr(x) for x in want]
    mixed = ["a", 1, None, 0.123456789] * 100  # not all floats: formatted one by one
    assert round_sig(mixed, 4)[:4] == ["a", 1, None, 0.1235]


def test_expected_best_of_k_matches_the_binomial_formula():
    rng = np.random.default_rng(1)
    v = np.sort(rng.random(60))
    n = len(v)
    for k in (1, 2, 7, 30, 59, 60):
        formula = sum(math.comb(n - i, k - 1) / math.comb(n, k) * v[i - 1] for i in range(1, n - k + 2))
        assert expected_best_of_k(v, k) == pytest.approx(formula, rel=1e-12)
    assert math.isfinite(expected_best_of_k(rng.random(100_000), 50_000))  # no big integers, no overflow


def test_best_of_k_quantiles_are_those_of_every_draw():
    v = np.array([0.4, 0.1, 0.3, np.inf, 0.2])
    for k in (1, 2, 3):
        draws = sorted(min(d) for d in itertools.product(v, repeat=k))  # all n^k equally likely draws
        for q, got in zip((0.05, 0.25, 0.5, 0.75, 0.95), best_of_k_quantiles(v, k)):
            assert got == draws[max(1, math.ceil(q * len(draws))) - 1]


def test_running_median_is_the_windowed_median():
    rng = np.random.default_rng(2)
    for n, window in itertools.product((1, 2, 3, 5, 6, 40), (1, 3, 4, 5, 7)):
        y = rng.random(n)
        half = window // 2
        want = [np.median(y[max(0, i - half): i + half + 1]) for i in range(n)]
        assert running_median(y, window).tolist() == want


def test_the_ranking_is_sorted_once_per_view(study, monkeypatch):
    calls = []

    def counting_sorted(*args, **kwargs):
        calls.append(1)
        return sorted(*args, **kwargs)

    monkeypatch.setattr(data_module, "sorted", counting_sorted, raising=False)
    data = load(study)
    first = data.ranked()
    first.pop()  # a copy: the cached ranking is untouched
    assert len(data.ranked()) == len(first) + 1 and len(calls) == 1
    analyze(study)
    assert len(calls) <= 1 + 1 + len(groups(data))  # this data, the report's data and one per group view


def test_bulk_loaded_curves_equal_the_per_trial_ones(study):
    data = load(study)
    ranked = data.ranked()
    data.preload(ranked, "val/error")
    fresh = load(study)
    for t in ranked:
        bulk, one = data.curve(t, "val/error"), fresh.curves(t)["val/error"]
        assert bulk.steps.dtype == one.steps.dtype and bulk.steps.tolist() == one.steps.tolist()
        assert np.array_equal(bulk.values, one.values, equal_nan=True)
    assert effective_best_steps(data, Thresholds()) == effective_best_steps(fresh, Thresholds())
    assert curve_trials(data, Thresholds()) == curve_trials(fresh, Thresholds())


def test_best_step_curves_caps_the_curves_read(study):
    data = load(study)
    view_steps = effective_best_steps(data, Thresholds(best_step_curves=5))
    assert len(view_steps) == 5
    assert len(effective_best_steps(data, Thresholds(best_step_curves=0))) == max(3, len(data.ranked()) // 2)


def test_axis_figures_carry_each_trials_hover_row(study):
    data = load(study)
    hover = varying(data)
    rows = customdata_rows(data)
    for name in data.space:
        d = axis_plot(data, name)
        ok = [t for t in data.completed if name in t.params]
        bad = [t for t in data.infeasible if name in t.params]
        assert d.customdata == [[t.number, t.best_step, *(float(f"{t.params[k]:.4g}") if isinstance(t.params[k], float)
                                                           else t.params[k] for k in hover)] for t in ok]
        assert [c[:2] for c in d.infeasible_customdata] == [[t.number, t.infeasible_reason] for t in bad]
        assert d.customdata and all(c is rows[c[0]] for c in d.customdata)  # one list per trial, shared


def test_paired_seeds_are_found_among_many_distinct_trials(sqlite_url):
    data = load(write_study(sqlite_url, "p", curve, space=SPACE, trials=20, max_train_steps=400, evals=20))
    twin = data.completed[0]
    copies = [data_module.TrialRow(1000 + i, 1000 + i, "completed", dict(twin.params), twin.value + 0.01 * i,
                                   twin.best_step, None, i) for i in range(1, 3)]
    data.trials = data.trials + copies
    sd, n = paired_seed_sd(data)
    assert n == 3 and sd == pytest.approx(np.std([twin.value, *(c.value for c in copies)], ddof=1))


def test_trials_csv_is_what_the_csv_module_writes():
    import csv
    import io

    from tunebook.analysis.html import trials_csv

    trials = [data_module.TrialRow(1, 1, "completed", {"a": 0.1, "b": "x,y", "c": None}, 0.5, 3, None, 0),
              data_module.TrialRow(2, 2, "infeasible", {"a": 1e-7, "b": 'q"uote', "c": True}, None, None, "nan, at\nstep 3", 0),
              data_module.TrialRow(3, 3, "completed", {"a": 2, "b": "plain", "c": "line\rx"}, math.inf, 9, None, 0),
              data_module.TrialRow(4, 4, "completed", {"a": 2, "b": "plain", "c": " sp "}, -0.0, 9, "", 0)]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["number", "state", "m", "best_step", "a", "b", "c", "infeasible_reason"])
    for t in trials:
        writer.writerow([t.number, t.state, "" if t.value is None else repr(float(t.value)),
                         "" if t.best_step is None else t.best_step,
                         *["" if t.params.get(k) is None else t.params[k] for k in "abc"], t.infeasible_reason or ""])
    assert trials_csv(trials, ["a", "b", "c"], "m") == out.getvalue()
