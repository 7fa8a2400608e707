"""The playbook's other fairness warnings: batch size is not tuned for validation; the test set waits;
a varied hyperparameter the training function never reads.

- "Why shouldn't the batch size be tuned to directly improve validation set
  performance?": the difference between batch sizes typically goes away once
  the pipeline is tuned for each; choose the batch size for training
  throughput, and changing it means re-tuning most hyperparameters.
- The test set is looked at when exploration is over ("After exploration
  concludes"); choices during tuning rest on validation metrics.
- A scientific comparison is fair only if each value is really trained with: a
  name the training function never reads (``wd`` in the spec, ``weight_decay``
  in the code) makes every group train identically and the study answer
  nothing, without any error.
"""

from __future__ import annotations

from tunebook.analysis.data import StudyData

from .base import INFO, WARNING, Finding, Thresholds, check
from .common import curve_trials


@check("batch_size", family="fairness", order=180, uses=("batch_size_params",))
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


@check("test_set", family="fairness", order=190, uses=("test_prefixes",))
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


def _initials(name: str) -> str:
    parts = [p for p in name.replace("-", "_").replace(".", "_").split("_") if p]
    return "".join(p[0] for p in parts) if len(parts) > 1 else ""


def near_miss(name: str, candidates: list[str], cutoff: float) -> str | None:
    """The candidate most likely meant as ``name``: a spelling within ``cutoff`` (difflib's ratio), or one
    being the other's initials (``wd`` and ``weight_decay``, ``lr`` and ``learning_rate``); else None."""
    import difflib

    for c in candidates:
        if c.lower() == _initials(name).lower() or name.lower() == _initials(c).lower():
            return c
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=cutoff)
    return close[0] if close else None


@check("unused_hyperparameter", family="fairness", order=10, uses=("unused_name_cutoff",))
def check_unused_hyperparameter(data: StudyData, th: Thresholds) -> list[Finding]:
    """A varied hyperparameter the training function never read: its values cannot change the outcome.

    Read from what each completed trial's training function asked of ``trial.params``
    (:class:`tunebook.trial.Params`): a name counts as used once any trial read it by key, and
    nothing is said of a name while a trial's reads are not all known (it handed the whole dict on,
    its process forked, e.g. for data-loader workers, or it was resumed and may read its settings
    from the checkpoint).
    A name asked for but absent and close to an unread one is named as the likely typo.
    """
    used = data.study.storage.params_used(data.study.id)
    recorded = [(t, used[t.number]) for t in data.completed if t.number in used]
    if not recorded:
        return []
    read: set[str] = set()
    missing: set[str] = set()
    for _, u in recorded:
        read.update(u.get("read", ()))
        missing.update(u.get("missing", ()))
    out: list[Finding] = []
    for name, role in data.roles.items():
        having = [u for t, u in recorded if name in t.params]
        if not having or name in read or any(u.get("bulk") or u.get("unknown") for u in having):
            continue  # read somewhere, or some trial's reads are not all known: nothing to say
        asked = near_miss(name, sorted(missing), th.unused_name_cutoff)
        if role == "fixed" and asked is None:
            continue  # a fixed value may be a label (a dataset's name); only a near miss says it was meant to be read
        consequence = {
            "scientific": "so the study compares identical training runs and cannot answer its goal",
            "nuisance": "so its trials spend the budget on noise and the tuning of the others is thinner",
            "fixed": "so its value in the spec is not the one used",
        }[role]
        seen = (f"it asked for {asked!r} instead, which the spec does not have (a typo?)" if asked else
                f"it read {', '.join(sorted(read)[:8]) or 'none of them'}")
        out.append(Finding(
            "unused_hyperparameter", WARNING,  # a fixed one is named only with its near miss: as sure
            f"The training function never read the {role} hyperparameter {name!r} in {len(having)} completed "
            f"trial(s) ({seen}): its values cannot change the outcome, {consequence}.",
            f"Read trial.params[{name!r}] in the training function"
            + (f" where it reads {asked!r}" if asked else "") + ", or rename it in the spec; the trials run so far "
            "did not use it, so run the study again (a new name) once it is read.",
            {"param": name, "role": role, "trials": len(having), "asked_for": asked, "read": sorted(read)},
        ))
    return out
