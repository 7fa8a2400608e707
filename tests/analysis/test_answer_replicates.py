"""The answer's numbers come from the replicates: means, pooled trial sd with its dof, a 95% interval.

Synthetic studies whose truth is known before the answer is read: each trial's value is a known function of
its hyperparameters plus seed noise of a known sd, so the true difference between the two replicated
configurations is computed from the function, not from tunebook's output.
"""

from __future__ import annotations

import math

import tunebook as tb
from tunebook.analysis.checks.variance import trial_sd, trial_variance
from tunebook.analysis.data import load
from tunebook.analysis.synthetic import exp_decay, write_study

SPACE = {"scientific": {"wd": {"choice": [0.0, 0.1]}}, "nuisance": {"lr": {"min": 1e-3, "max": 1.0, "scale": "log"}}}
SD = 0.01


def level(params, shift):
    """The value a configuration reaches without seed noise (what the truth is computed from)."""
    return 0.2 + 0.01 * (math.log10(params["lr"]) + 2) ** 2 + (shift if params["wd"] == 0.1 else 0.0)


def curve_for(shift):
    def curve(params, steps, rng):
        floor = level(params, shift) + SD * rng.standard_normal()  # the seed's effect: the whole run moves
        return {"val/error": exp_decay(steps, floor, 1.0, steps[-1] / 20)}

    return curve


def study(url, name, shift, seed, **options):
    options.setdefault("replicates", 3)
    return write_study(url, name, curve_for(shift), space=SPACE, trials=options.pop("trials", 24), seed=seed,
                       max_train_steps=200, evals=20, **options)


def truth(data, shift):
    """The true difference (runner-up minus best group) between the two configurations that were replicated."""
    replicated = {t.number: t for t in data.trials}
    levels = {t.params["wd"]: level(t.params, shift) for n in set(data.replicate_of.values())
              for t in [replicated[n]]}
    return abs(levels[0.1] - levels[0.0])


def test_a_clear_winner_is_named_with_the_difference_its_interval_and_the_pooled_sd(sqlite_url):
    covered = 0
    for seed in range(6):
        s = study(sqlite_url, f"clear{seed}", shift=0.05, seed=seed)
        report = tb.analyze(s)
        answer, data = report.answer, report.data
        tv = trial_variance(data, tb.Thresholds())
        assert tv is not None and tv.source == "replicates" and (tv.dof, tv.runs, tv.sets) == (4, 6, 2)
        assert 0.3 * SD < tv.sd < 2.5 * SD, tv  # 4 dof: the estimate is within these bounds but for 1 in 10^3
        assert trial_sd(data, tb.Thresholds()) == (tv.sd, "replicates")
        assert answer.compared == "means" and answer.best_group == "wd=0.0"
        assert all(g.n_runs == 3 and g.runs_source == "replicates" and g.runs_of in data.replicate_of.values()
                   for g in answer.groups)
        means = {g.group: g.mean for g in answer.groups}
        assert math.isclose(answer.difference, means["wd=0.1"] - means["wd=0.0"])
        assert f"{answer.difference:.3g} \u00b1 {answer.interval:.3g} (95%, 3+3 runs, pooled sd {tv.sd:.3g}, 4 dof)" \
            in answer.verdict
        covered += abs(answer.difference - truth(data, 0.05)) <= answer.interval
        assert "wd=0.0 is better" in answer.verdict or "not yet fair" in answer.verdict
    assert covered >= 5  # a 95% interval covers the truth


def test_a_true_tie_with_three_replicates_is_not_separated_yet_and_names_the_runs_that_would_settle_it(sqlite_url):
    # 3+3 runs, 4 dof: the half-width is t(4) sqrt(2/3) = 2.3 pooled sd, so a difference twice the noise is not ruled
    # out: not a tie. The runs that bring it under one sd: the fewest n with t(4 + 2(n-3)) sqrt(2/n) <= 1, i.e. 9.
    within = 0
    for seed in range(6):
        answer = tb.analyze(study(sqlite_url, f"tie{seed}", shift=0.0, seed=seed)).answer
        assert answer.compared == "means" and answer.interval is not None
        within += answer.difference <= answer.interval
        assert answer.interval > answer.trial_sd and answer.separation != "tie"
        if answer.difference <= answer.interval:
            assert answer.separation == "not separated" and answer.runs_needed == 9
            assert "within the trial variance" not in answer.verdict
            if answer.fair:
                assert "not separated yet, not a tie" in answer.verdict, answer.verdict
                assert "9 runs of each group's best (3 and 3 now)" in answer.verdict
    assert within >= 5


def test_a_true_tie_with_ten_replicates_is_a_measured_tie(sqlite_url):
    # 10+10 runs, 18 dof: the half-width is t(18) sqrt(2/10) = 0.94 pooled sd, within one sd: a tie when it holds 0
    within = 0
    for seed in range(3):
        answer = tb.analyze(study(sqlite_url, f"tie10-{seed}", shift=0.0, seed=seed, replicates=10, trials=80)).answer
        assert answer.compared == "means" and all(g.n_runs == 10 for g in answer.groups)
        assert answer.interval <= answer.trial_sd
        within += answer.difference <= answer.interval
        if answer.difference <= answer.interval:
            assert answer.separation == "tie" and answer.runs_needed is None
            if answer.fair:
                assert "a measured tie" in answer.verdict and "at most one pooled trial sd" in answer.verdict
    assert within >= 2


def test_without_replicates_the_answer_says_trial_variance_is_not_measured_and_how(sqlite_url):
    off = tb.analyze(study(sqlite_url, "off", shift=0.05, seed=0, replicates=0)).answer
    assert off.trial_sd is None and off.trial_sd_source == "" and off.compared == "bests"
    assert "Trial variance is not measured" in off.verdict and "evaluation noise" not in off.verdict
    assert "remove `replicates: 0`" in off.verdict and "tunebook retrain off" in off.verdict
    small = tb.analyze(study(sqlite_url, "small", shift=0.05, seed=0, trials=14)).answer
    assert small.trial_sd is None
    assert "the replicates were skipped (14 trials give each of 2 groups 7, fewer than 6 search" in small.verdict
    assert "within the trial variance" not in off.verdict + small.verdict  # a tie is only called so when measured


def test_a_small_budget_still_measures_the_trial_variance_with_the_replicates_it_has_room_for(sqlite_url):
    # 16 trials, 2 groups: 6 search trials and 2 replicates a group (3 asked), not a study without any
    found = 0
    for seed in range(4):
        report = tb.analyze(study(sqlite_url, f"room{seed}", shift=0.05, seed=seed, trials=16))
        tv = trial_variance(report.data, tb.Thresholds())
        assert tv is not None and tv.source == "replicates" and (tv.dof, tv.runs, tv.sets) == (2, 4, 2)
        answer = report.answer
        assert answer.compared == "means" and all(g.n_runs == 2 for g in answer.groups)
        assert "2 dof" in answer.verdict and "not measured" not in answer.verdict
        found += answer.best_group == "wd=0.0"  # 0.05 apart with sd 0.01: the means of 2 runs name it
    assert found == 4


def test_one_group_states_the_mean_of_its_replicates(sqlite_url):
    space = {"nuisance": {"lr": {"min": 1e-3, "max": 1.0, "scale": "log"}}}

    def flat(params, steps, rng):
        return {"val/error": exp_decay(steps, 0.2 + SD * rng.standard_normal(), 1.0, steps[-1] / 20)}

    s = write_study(sqlite_url, "one", flat, space=space, trials=12, replicates=3, max_train_steps=200, evals=20)
    answer = tb.analyze(s).answer
    (g,) = answer.groups
    assert g.n_runs == 3 and "Re-run with new seeds (3 replicates), it averages" in answer.verdict
    data = load(s)
    assert len(data.trials) == 9 and len(data.replicates) == 3


def test_a_next_round_is_compared_with_its_source_replicates(sqlite_url):
    source = study(sqlite_url, "src", shift=0.05, seed=1)
    src_answer = tb.analyze(source).answer
    best = next(g for g in src_answer.groups if g.group == src_answer.best_group)
    fixed = {**source.trials()[best.runs_of].params}
    gain = 0.03

    def longer(params, steps, rng):
        return {"val/error": exp_decay(steps, level(params, 0.05) - gain + SD * rng.standard_normal(), 1.0, steps[-1] / 20)}

    r2 = write_study(sqlite_url, "src-r2", longer, space={"fixed": fixed}, trials=3, design="replicates",
                     max_train_steps=400, evals=20, derived={"kind": "next-round", "source": "src", "trial": best.runs_of},
                     parent="src", round=2)
    answer = tb.analyze(r2).answer
    sd = trial_variance(load(source), tb.Thresholds()).sd
    assert answer.versus_source.startswith("Against src: round 2 improved val/error by ")
    assert "mean of 3 runs" in answer.versus_source and "mean of 3 replicates" in answer.versus_source
    moved = float(answer.versus_source.split("improved val/error by ")[1].split(" ")[0])
    assert abs(moved - gain) < 4 * SD  # the measured gain is the planted one, within the runs' noise
    assert f"{moved / sd:.1f} source trial sd" in answer.versus_source
    assert answer.versus_source in answer.verdict


def retrain(url, source, name, number, runs, shift, seed):
    """A retrain study of ``source``'s trial ``number`` (what `tunebook retrain` writes): ``runs`` new seeds."""
    fixed = dict(next(t for t in source.trials() if t.number == number).params)
    return write_study(url, name, curve_for(shift), space={"fixed": fixed}, trials=runs, design="replicates", seed=seed,
                       max_train_steps=200, evals=20, derived={"kind": "retrain", "source": source.name, "trial": number},
                       parent=source.name)


def test_retrains_of_a_replicated_best_join_its_replicates_up_to_the_runs_that_make_a_tie(sqlite_url):
    s = study(sqlite_url, "join", shift=0.0, seed=2)
    before = tb.analyze(s).answer
    assert before.separation == "not separated" and before.runs_needed == 9, before.verdict
    for i, g in enumerate(before.groups):  # what `next` proposes: 6 more runs of each group's best
        retrain(sqlite_url, s, f"join-retrain-{g.runs_of}", g.runs_of, 6, 0.0, seed=100 + i)
    after = tb.analyze(s).answer
    assert all(g.n_runs == 9 and g.runs_source == "replicates" for g in after.groups)
    assert after.trial_dof == 16 and after.trial_runs == 18
    assert after.interval <= after.trial_sd  # t(16) sqrt(2/9) = 0.9995 pooled sd
    assert after.separation in ("tie", "separated") and after.runs_needed is None
    if after.difference <= after.interval:
        assert after.separation == "tie" and "a measured tie" in after.verdict


def test_the_html_report_counts_the_replicates_and_shows_their_mean_and_sd(sqlite_url):
    import base64
    import csv
    import io
    import re

    from tunebook.analysis.html import num, report_html

    s = study(sqlite_url, "page", shift=0.05, seed=0)
    report = tb.analyze(s)
    page = report_html(report)
    assert "24 trials (18 search + 6 replicates): completed 24" in page
    assert "Download every trial (24: 18 search + 6 replicates) as CSV" in page
    assert "re-runs of the best: mean \u00b1 sd (n)" in page
    for g in report.answer.groups:
        assert f"{num(g.mean)} \u00b1 {num(g.sd)} (3)" in page
    href = re.search(r"download='page-trials.csv' href='data:text/csv;base64,([^']+)'", page).group(1)
    rows = list(csv.DictReader(io.StringIO(base64.b64decode(href).decode())))
    assert len(rows) == 24 and list(rows[0])[-1] == "replicate_of"
    of = report.data.replicate_of
    assert len(of) == 6
    assert {int(r["number"]): r["replicate_of"] for r in rows} == {n: str(of[n]) if n in of else "" for n in range(24)}
