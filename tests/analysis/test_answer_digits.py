"""The answer's interval on a real PyTorch workload (the digits MLP), its truth established first by a pilot.

The pilot trains each configuration with several seeds (a replicates study per configuration) before the
study is run: it fixes which configuration is better and by how many seed standard deviations. The study
then searches the learning rate of each, re-runs each group's best with new seeds, and must name the same
winner with an interval that excludes 0 and a trial sd of the pilot's order.
"""

from __future__ import annotations

import numpy as np

import tunebook as tb
from tunebook.workloads.digits import train

STEPS = 60
FIXED = {"eval_every": 20, "batch_size": 32}
NARROW, WIDE = 4, 64


def pilot(url, tmp_path, hidden_units, seeds=4):
    study = tb.create_study(f"pilot-{hidden_units}", objective=("val/error", "min"), trials=seeds,
                            max_train_steps=STEPS, storage=url, design="replicates",
                            space={"fixed": {**FIXED, "hidden_units": hidden_units, "learning_rate": 0.01}})
    tb.run(study, train, workers=0, progress=False, checkpoint_dir=tmp_path)
    return np.array([t.value for t in study.trials(["completed"])])


def test_the_digits_answer_names_the_pilot_winner_with_an_interval_from_its_replicates(sqlite_url, tmp_path):
    narrow, wide = pilot(sqlite_url, tmp_path, NARROW), pilot(sqlite_url, tmp_path, WIDE)
    sd = float(np.sqrt((narrow.var(ddof=1) + wide.var(ddof=1)) / 2))
    assert len(narrow) == len(wide) == 4
    assert narrow.mean() - wide.mean() > 3 * sd, (narrow, wide)  # the truth: the wide MLP is clearly better

    study = tb.create_study("units", objective=("val/error", "min"), trials=16, max_train_steps=STEPS,
                            storage=sqlite_url, replicates=2,
                            space={"scientific": {"hidden_units": {"choice": [NARROW, WIDE]}},
                                   "nuisance": {"learning_rate": {"min": 0.005, "max": 0.02, "scale": "log"}},
                                   "fixed": FIXED})
    assert study.replicate_plan.search == 12
    tb.run(study, train, workers=2, progress=False, checkpoint_dir=tmp_path)
    assert study.phase_line() == "12 search + 4 replicates of 16"
    answer = tb.analyze(study).answer
    assert answer.compared == "means" and answer.trial_sd_source == "replicates" and answer.trial_dof == 2
    assert answer.best_group == f"hidden_units={WIDE}"
    assert answer.difference - answer.interval > 0  # the interval excludes 0, as the pilot says it should
    assert "(95%, 2+2 runs, pooled sd" in answer.verdict and "2 dof)" in answer.verdict
    assert sd / 10 < answer.trial_sd < 10 * sd  # the replicates measure the seed spread the pilot measured
