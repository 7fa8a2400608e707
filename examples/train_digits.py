"""Tune an MLP on the digits data with tunebook, from Python.

The training function is tunebook's digits workload, which uses the whole
training toolkit (seeds per host, the playbook's optimizers, a warmup + cosine
schedule, gradient norms logged on the device, full-state checkpoints,
step-based evaluation with weighted partial batches, input timing).

    python examples/train_digits.py            # 12 trials, 2 workers, ./tunebook.db
    tunebook report digits-optimizers          # the playbook's plots and checklist

Run it twice: the second run finds the study finished (or resumes it, if you
pressed Ctrl-C during the first).
"""

import tunebook as tb
from tunebook.workloads.digits import train

space = tb.SearchSpace(
    scientific={"optimizer": tb.Choice(["momentum", "adam"])},
    nuisance={
        "learning_rate": tb.Float(1e-4, 1.0, scale="log"),
        "warmup_steps": tb.Int(0, 50),
    },
    fixed={"schedule": "cosine", "batch_size": 64, "hidden_units": 128, "eval_every": 50},
)

if __name__ == "__main__":  # worker processes import this file: keep the run behind the guard
    study = tb.create_study(
        "digits-optimizers",
        space=space,
        objective=("val/error", "min"),
        trials=12,
        max_train_steps=500,
        goal="Momentum or Adam for the digits MLP, each with its learning rate and warmup tuned?",
        infeasible_if={"train/loss": {"above": 100}},
    )
    result = tb.run(study, train, workers=2)
    report = tb.analyze(study)
    report.print()
    print("report:", report.save("digits-optimizers.html"))
