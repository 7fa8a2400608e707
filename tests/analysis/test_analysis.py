"""The checklist on synthetic studies with planted pathologies, and on clean ones."""

from __future__ import annotations

import math

import numpy as np
import pytest

import tunebook as tb
from tunebook.analysis import CHECKS, Thresholds, analyze, load, trials_dataframe
from tunebook.analysis.checks import adam_recommendation, moving_average, recommend_clipping
from tunebook.analysis.figures import axis_plot, best_steps, isolation_plot, render, sampled_enough
from tunebook.analysis.synthetic import exp_decay, write_study

LR = {"learning_rate": {"min": 1e-4, "max": 1.0, "scale": "log"}}
SPACE = {"scientific": {"wd": {"choice": [0.0, 0.01]}}, "nuisance": LR, "fixed": {"optimizer": "sgd"}}
STEPS = 1000


def floor_at(lr: float, best_lr: float = 1e-2) -> float:
    return 0.05 + 0.1 * (math.log10(lr) - math.log10(best_lr)) ** 2


def clean_curve(params, steps, rng, best_lr=1e-2, noise=0.001):
    floor = floor_at(params["learning_rate"], best_lr)
    # flat (within the noise) from about 40% of the steps on
    val = exp_decay(steps, floor, 1.0, 0.06 * STEPS) + noise * rng.standard_normal(len(steps))
    train = exp_decay(steps, floor * 0.8, 2.3, 0.06 * STEPS) + noise * rng.standard_normal(len(steps))
    return {"val/error": val, "train/loss": train}


def study_with(url, curve, name="s", trials=30, space=SPACE, **kw):
    return write_study(url, name, curve, space=space, trials=trials, max_train_steps=STEPS, evals=40, **kw)


def checks(report, severity="warning"):
    return {f.check for f in report.findings if f.severity == severity}


def finding(report, check):
    """The first finding of a check (checks about the best trials give one per group)."""
    found = [f for f in report.findings if f.check == check]
    assert found, (check, [f.message for f in report.findings])
    return found[0]


# clean studies: no warnings ---------------------------------------------------
@pytest.mark.parametrize("mode", ["min", "max"])
def test_clean_study_gives_no_warnings(sqlite_url, mode):
    def curve_max(params, steps, rng):
        c = clean_curve(params, steps, rng)
        return {"val/error": 1 - c["val/error"], "train/loss": c["train/loss"]}

    study = study_with(sqlite_url, clean_curve if mode == "min" else curve_max, objective=("val/error", mode))
    report = analyze(study)
    assert report.warnings() == [], [f.message for f in report.warnings()]
    assert "sampled_enough" in checks(report, "info")


def test_clean_study_with_a_crossed_scientific_value_and_larger_budget(sqlite_url):
    study = study_with(sqlite_url, clean_curve, trials=60)
    assert analyze(study).warnings() == []


# planted pathologies ------------------------------------------------------------
def test_best_learning_rate_at_the_upper_boundary(sqlite_url):
    study = study_with(sqlite_url, lambda p, s, r: clean_curve(p, s, r, best_lr=3.0))
    f = finding(analyze(study), "search_space_boundary")
    assert f.severity == "warning"
    assert f.evidence["param"] == "learning_rate" and f.evidence["side"] == "upper"
    assert "Expand the search space for learning_rate in the upper direction" in f.action


def test_best_learning_rate_at_the_lower_boundary(sqlite_url):
    study = study_with(sqlite_url, lambda p, s, r: clean_curve(p, s, r, best_lr=3e-5))
    f = finding(analyze(study), "search_space_boundary")
    assert f.evidence["side"] == "lower"


def test_infeasible_region_just_above_the_best_learning_rate(sqlite_url):
    def curve(params, steps, rng):
        if params["learning_rate"] > 0.05:
            return "train/loss was nan at step 12"
        return clean_curve(params, steps, rng, best_lr=0.2)

    report = analyze(study_with(sqlite_url, curve))
    f = finding(report, "infeasible_region")
    assert f.evidence["param"] == "learning_rate" and f.evidence["side"] == "upper"
    assert f.evidence["nearest_infeasible"] > 0.05 and f.evidence["best_value"] <= 0.05
    assert "warmup" in f.action and "clipping" in f.action
    share = finding(report, "infeasible_share")
    assert share.evidence["reasons"] == {"train/loss was nan": share.evidence["infeasible"]}


def test_high_infeasible_share_warns(sqlite_url):
    def curve(params, steps, rng):
        return "out of memory" if params["learning_rate"] > 3e-3 else clean_curve(params, steps, rng, best_lr=1e-3)

    f = finding(analyze(study_with(sqlite_url, curve)), "infeasible_share")
    assert f.severity == "warning" and f.evidence["share"] > 0.5 and "reparameterize" in f.action


def test_overfitting_curve(sqlite_url):
    def curve(params, steps, rng):
        c = clean_curve(params, steps, rng)
        c["val/error"] = c["val/error"] + 0.5 * np.clip(steps / STEPS - 0.4, 0, None)  # worsens after 40%
        return c

    f = finding(analyze(study_with(sqlite_url, curve)), "overfitting")
    assert f.severity == "warning" and 300 <= f.evidence["best_step"] <= 500
    assert set(f.evidence["trials"])  # the best trial of each scientific value is examined


def test_still_improving_curve(sqlite_url):
    def curve(params, steps, rng):
        floor = floor_at(params["learning_rate"])
        line = 1.0 - (1.0 - floor) * steps / STEPS
        return {"val/error": line, "train/loss": line}

    report = analyze(study_with(sqlite_url, curve))
    assert finding(report, "still_improving").evidence["late_improvement_share"] > 0.15
    assert finding(report, "max_train_steps").evidence["share_last_25pct"] == 1.0


def test_saturated_at_five_percent_of_the_steps(sqlite_url):
    def curve(params, steps, rng):
        floor = floor_at(params["learning_rate"])
        val = exp_decay(steps, floor, 1.0, 0.01 * STEPS) + 0.0005 * rng.standard_normal(len(steps))
        return {"val/error": val, "train/loss": val}

    report = analyze(study_with(sqlite_url, curve))
    f = finding(report, "saturated_early")
    assert f.evidence["share"] <= 0.1
    assert "still_improving" not in checks(report)


def test_best_checkpoints_early_says_max_train_steps_is_too_high(sqlite_url):
    def curve(params, steps, rng):
        c = clean_curve(params, steps, rng)
        floor = floor_at(params["learning_rate"])
        c["val/error"] = exp_decay(steps, floor, 1.0, 10) + 0.3 * np.clip(steps / STEPS - 0.05, 0, None)
        return c

    f = finding(analyze(study_with(sqlite_url, curve)), "max_train_steps")
    assert f.evidence["share_first_10pct"] >= 0.8 and "too high" in f.message


def test_noisy_curves(sqlite_url):
    report = analyze(study_with(sqlite_url, lambda p, s, r: clean_curve(p, s, r, noise=0.08)))
    f = finding(report, "step_variance")
    assert f.evidence["relative_noise"] > 0.03


def test_rising_training_loss(sqlite_url):
    def curve(params, steps, rng):
        c = clean_curve(params, steps, rng)
        c["train/loss"] = c["train/loss"] + 2.0 * np.clip(steps / STEPS - 0.5, 0, None) ** 1.0
        return c

    f = finding(analyze(study_with(sqlite_url, curve)), "train_loss_rising")
    assert 400 <= f.evidence["min_step"] <= 600


def test_periodic_validation_metric(sqlite_url):
    def curve(params, steps, rng):
        c = clean_curve(params, steps, rng)
        c["val/error"] = c["val/error"] + 0.05 * np.sin(2 * np.pi * np.arange(len(steps)) / 5)
        return c

    f = finding(analyze(study_with(sqlite_url, curve)), "periodic_validation")
    assert 4 <= f.evidence["period_evals"] <= 6


def test_loss_spikes_are_instability(sqlite_url):
    def curve(params, steps, rng):
        c = clean_curve(params, steps, rng)
        c["train/loss"][[20, 30]] = 2.5
        return c

    f = finding(analyze(study_with(sqlite_url, curve)), "instability")
    assert f.evidence["spikes"] == 2 and f.evidence["first_spike_step"] == 525


def test_not_sampled_enough_with_few_trials_on_a_sharp_optimum(sqlite_url):
    def curve(params, steps, rng):
        floor = 0.05 + 2.0 * abs(math.log10(params["learning_rate"]) + 2.3)
        return {"val/error": exp_decay(steps, floor, floor + 1, 0.12 * STEPS), "train/loss": exp_decay(steps, floor, floor + 2, 0.12 * STEPS)}

    space = {"nuisance": LR}
    f = finding(analyze(study_with(sqlite_url, curve, trials=6, space=space)), "sampled_enough")
    # the room between the best and its neighbours (a V of slope 2 per decade, 6 trials over 4 decades) is far
    # above 5% of the spread of the trial values
    assert f.severity == "warning" and f.evidence["room"] > 0.05 * f.evidence["spread"]
    assert "Raise `trials`" in f.action and f.evidence["more_trials"] > 0


def test_adam_budget_rule(sqlite_url):
    assert adam_recommendation(5) == ["learning_rate"]
    assert adam_recommendation(12) == ["learning_rate", "beta1"]
    assert adam_recommendation(40) == ["learning_rate", "beta1", "epsilon"]
    assert adam_recommendation(200) == ["learning_rate", "beta1", "epsilon", "beta2"]
    space = {"nuisance": {**LR, "beta1": {"min": 0.8, "max": 0.99}, "epsilon": {"min": 1e-9, "max": 1e-3, "scale": "log"}},
             "fixed": {"optimizer": "adam"}}
    f = finding(analyze(study_with(sqlite_url, clean_curve, trials=8, space=space)), "adam_budget")
    assert f.severity == "warning" and f.evidence["recommended"] == ["learning_rate"]
    assert "beta1" in f.message and "epsilon" in f.message


def test_gradient_clipping_too_aggressive(sqlite_url):
    def curve(params, steps, rng):
        c = clean_curve(params, steps, rng)
        c["grad/norm"] = 1.0 + rng.random(len(steps)) * 9  # uniform in [1, 10]
        return c

    space = {"nuisance": LR, "fixed": {"grad_clip": 2.0}}
    f = finding(analyze(study_with(sqlite_url, curve, space=space)), "gradient_clipping")
    assert f.severity == "warning" and f.evidence["clipped_share"] > 0.5
    assert 8 < f.evidence["recommended_threshold"] < 10
    assert "Lower the learning rate" in f.action


def test_input_bound(sqlite_url):
    def curve(params, steps, rng):
        c = clean_curve(params, steps, rng)
        c["input/wait_fraction"] = np.full(len(steps), 0.4)
        return c

    f = finding(analyze(study_with(sqlite_url, curve, space={"nuisance": LR})), "input_bound")
    assert f.evidence["wait_fraction"] == pytest.approx(0.4)

    def busy(params, steps, rng):  # a fast pipeline whose few windows met a busy machine
        c = clean_curve(params, steps, rng)
        c["input/wait_fraction"] = np.where(np.arange(len(steps)) % 3 == 0, 0.6, 0.05)  # mean 0.23
        return c

    assert "input_bound" not in checks(analyze(study_with(sqlite_url, busy, name="busy", space={"nuisance": LR})))


# the parts ------------------------------------------------------------------
def test_thresholds_are_configurable(sqlite_url):
    study = study_with(sqlite_url, lambda p, s, r: clean_curve(p, s, r, noise=0.01))
    assert "step_variance" not in checks(analyze(study)) | checks(analyze(study), "info")
    # info: no trial variance is measured in this study, so the finding cannot say the noise decides
    assert "step_variance" in checks(analyze(study, thresholds=Thresholds(step_noise=0.003)), "info")


def test_every_check_id_is_documented_and_stable():
    assert CHECKS == ("nothing_learned", "unused_hyperparameter", "search_space_boundary", "infeasible_share", "infeasible_region", "stability_edge", "failed_trials", "overfitting", "step_variance",
                      "still_improving", "saturated_early", "train_loss_rising", "periodic_validation",
                      "max_train_steps", "ended_early", "sampled_enough", "adam_budget", "input_bound", "gradient_clipping",
                      "instability", "batch_size", "test_set")


def test_clipping_recommendation_by_hand():
    norms = np.arange(1, 101, dtype=float)
    rec = recommend_clipping(norms, threshold=50.0)
    assert rec["recommended_threshold"] == pytest.approx(90.1)
    assert rec["clipped_share"] == pytest.approx(0.5)


def test_moving_average_by_hand():
    assert moving_average(np.array([1.0, 2, 3, 4, 5]), 3).tolist() == [1.5, 2.0, 3.0, 4.0, 4.5]


def test_figure_data(sqlite_url):
    def curve(params, steps, rng):
        return "diverged" if params["learning_rate"] > 0.3 else clean_curve(params, steps, rng)

    # 30 search trials and the replicates of each group's best (3 each): the figures read the search only
    study = study_with(sqlite_url, curve, trials=36, replicates=3)
    data = load(study)
    assert len(data.trials) == 30 and len(data.replicates) == 6
    ax = axis_plot(data, "learning_rate")
    assert ax.log_x and not ax.categorical
    assert len(ax.x) + len(ax.infeasible_x) == 30 and all(x > 0.3 for x in ax.infeasible_x)
    assert ax.best_y == min(ax.y) and ax.best_x == data.best().params["learning_rate"]
    # a nuisance axis is coloured by scientific group: one trace per group, each trial in its own
    assert ax.group_order == ["wd=0.0", "wd=0.01"]
    assert ax.group_of == [f"wd={data.trials[[t.number for t in data.trials].index(n)].params['wd']}"
                           for n in ax.numbers]
    from tunebook.analysis.figures import Figure, spec as figure_spec

    traces = figure_spec(Figure("axis", "t", ax))["data"]
    assert [t["name"] for t in traces[:2]] == ["wd=0.0", "wd=0.01"]
    assert sum(len(t["x"]) for t in traces[:2]) == len(ax.x) and traces[0]["marker"]["color"] != traces[1]["marker"]["color"]
    own = axis_plot(data, "wd")  # a scientific axis too: one colour per value in every figure
    assert own.group_of == [f"wd={v}" for v in own.x] and own.group_colors == ax.group_colors
    iso = isolation_plot(data, "wd", baseline=0.1)
    assert iso.labels == ["0.0", "0.01"] and iso.baseline == 0.1
    for label, value in zip(iso.labels, iso.best_values):
        assert value == min(t.value for t in data.completed if str(t.params["wd"]) == label)
    # error bars of one trial sd, the same the answer to the goal compares the difference with
    report = analyze(study)
    assert (iso.trial_sd, iso.trial_sd_source) == (report.answer.trial_sd, report.answer.trial_sd_source)
    assert iso.trial_sd is not None and iso.trial_sd > 0 and iso.trial_sd_source == "replicates"
    built = figure_spec(Figure("isolation", "t", iso))
    drawn = built["data"][0]  # one trace per group (its colour in every figure), the error bars said once
    assert drawn["error_y"]["value"] == iso.trial_sd and drawn["name"] == "wd=0.0"
    assert "trial sd" in built["layout"]["annotations"][0]["text"]
    bs = best_steps(data)
    assert len(bs.steps) == len(data.completed) and bs.max_train_steps == STEPS
    se = sampled_enough(data, Thresholds())
    assert se.ks[0] == 1 and se.ks[-1] == 30
    assert all(a >= b - 1e-12 for a, b in zip(se.median, se.median[1:]))  # best-of-k improves with k
    for figure in analyze(study).figures:
        assert render(figure).data, figure.kind  # every figure draws something


def test_isolation_buckets_a_continuous_scientific_value(sqlite_url):
    space = {"scientific": {"wd": {"min": 0.0, "max": 0.1}}, "nuisance": LR}
    study = study_with(sqlite_url, clean_curve, space=space, scientific_design="joint")
    iso = isolation_plot(load(study), "wd", buckets=4)
    assert len(iso.labels) == 4 and iso.labels[0].startswith("[0, ")


def test_trials_dataframe(sqlite_url):
    study = study_with(sqlite_url, clean_curve, trials=4)
    df = study.trials_dataframe()
    assert df.equals(trials_dataframe(study))
    assert list(df["number"]) == [0, 1, 2, 3]
    assert {"scientific.wd", "nuisance.learning_rate", "fixed.optimizer", "value", "best_step"} <= set(df.columns)
    assert df["value"].notna().all()


def test_real_digits_study_report(sqlite_url, tmp_path):
    from tunebook.workloads import digits

    space = tb.SearchSpace(
        scientific={"hidden_units": tb.Choice([32, 128])},
        nuisance={"learning_rate": tb.Float(1e-3, 3.0, "log")},
        fixed={"eval_every": 20, "optimizer": "adam"},
    )
    study = tb.create_study("digits", space=space, objective=("val/error", "min"), trials=8, max_train_steps=200,
                            storage=sqlite_url, infeasible_if={"train/loss": {"above": 50}})
    tb.run(study, digits.train, workers=0, progress=False, checkpoint_dir=tmp_path)
    report = analyze(study)
    assert {f.check for f in report.findings} <= set(CHECKS)
    assert "sampled_enough" in {f.check for f in report.findings}
    assert report.top_trials[0].value == study.best_trial().value
    kinds = [f.kind for f in report.figures]
    assert kinds.count("axis") == 2 and kinds.count("isolation") == 1 and "curves" in kinds
    path = report.save(tmp_path / "report.html")
    text = path.read_text()
    assert "<script src=" not in text and "Plotly" in text  # offline: the JavaScript is inside
    assert text.count("class='figure'") == len(report.figures)
