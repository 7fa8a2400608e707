"""The playbook's other fairness warnings: batch size is not tuned for validation; the test set waits.

- "Why shouldn't the batch size be tuned to directly improve validation set
  performance?": the difference between batch sizes typically goes away once
  the pipeline is tuned for each; choose the batch size for training
  throughput, and changing it means re-tuning most hyperparameters.
- The test set is looked at when exploration is over ("After exploration
  concludes"); choices during tuning rest on validation metrics.
"""

from __future__ import annotations

from tunebook.analysis.data import StudyData

from .base import INFO, WARNING, Finding, Thresholds, check
from .common import curve_trials


@check("batch_size", family="fairness", uses=("batch_size_params",))
def check_batch_size(data: StudyData, th: Thresholds) -> list[Finding]:
    tuned = [(name, data.roles.get(name)) for name in data.space
             if name in th.batch_size_params and data.roles.get(name) in ("scientific", "nuisance")]
    if not tuned:
        return []
    name, role = tuned[0]
    return [Finding(
        "batch_size", WARNING,
        f"This study tunes {name} (as a {role} hyperparameter) for validation performance. The batch size should "
        "be chosen for training throughput: once the optimizer and regularization hyperparameters are tuned for each "
        "batch size, their validation results usually agree, and changing the batch size means re-tuning most "
        "hyperparameters.",
        f"Fix {name} to the largest size that still raises throughput (`tunebook batch-size`) and tune the other "
        "hyperparameters at that size.",
        {"param": name, "role": role},
    )]


@check("test_set", family="fairness", uses=("test_prefixes",))
def check_test_set(data: StudyData, th: Thresholds) -> list[Finding]:
    metric = data.metric
    if metric.startswith(th.test_prefixes):
        return [Finding(
            "test_set", WARNING,
            f"The objective {metric} is a test-set metric: tuning on it fits the test set.",
            "Tune on a validation metric; look at the test set only when tuning is over.",
            {"metric": metric, "objective": True},
        )]
    logged: set[str] = set()
    for t in curve_trials(data, th):
        logged.update(name for name in data.curves(t) if name.startswith(th.test_prefixes))
    if not logged:
        return []
    return [Finding(
        "test_set", INFO,
        f"This study logs test-set metrics ({', '.join(sorted(logged))}). Choices during tuning rest on validation "
        "metrics; the playbook looks at the test set only when tuning is over.",
        "Do not pick hyperparameters or compare scientific values by the test metrics; check them once, at the end.",
        {"metrics": sorted(logged), "objective": False},
    )]
