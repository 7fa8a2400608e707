"""The playbook's checklist: a registry of checks, one module per family, each run per group.

Before trusting a study, the playbook asks ("Extracting insight from
experimental results"): is the search space big enough (boundaries)? have we
sampled enough points? what fraction of trials is infeasible? how do the
training curves of the best trials look (overfitting, step-to-step variance,
still improving, saturated, training loss rising)? Each check answers one
question and returns :class:`Finding` objects with a stable ``check`` id.

Families (modules): :mod:`.space` (boundaries, infeasible trials),
:mod:`.learned` (did any trial learn at all?), :mod:`.curves` (the curves of the best trials, judged
against their noise),
:mod:`.sampling` (max_train_steps, have we sampled enough, trial variance),
:mod:`.training` (Adam's budget, input pipeline, clipping), :mod:`.fairness`
(hyperparameters the training function never reads, batch size, test set). :mod:`.goal` answers the study's goal from the findings.

Checks about "the best trials" run on each group (the trials sharing one
scientific value) and name the group. Every threshold lives in
:class:`Thresholds`; each check declares the ones it reads
(:func:`thresholds_of`). ``run_checks(data, th, checks=[...])`` selects checks
by id or adds custom functions ``(data, th) -> list[Finding]``. A check's report order, figure and
thresholds live on its ``@check`` (:mod:`.base`): adding one is one decorated function plus its test.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Iterable

from tunebook.analysis.data import StudyData

from . import curves, ended_early, fairness, learned, sampling, space, training  # noqa: F401  (registers the checks)
from .base import (
    FIGURE_OF_CHECK,
    INFO,
    REGISTRY,
    WARNING,
    Check,
    CheckSpec,
    Finding,
    Thresholds,
    check,
    check_ids,
    resolve,
    thresholds_of,
    unregister,
)
from .common import (
    bootstrap_best_of_k,
    bootstrap_ks,
    curve_noise,
    curve_trials,
    effective_best_step,
    expected_best_of_k,
    group_view,
    groups,
    initial_level,
    is_learning_rate,
    moving_average,
    resolution,
    running_median,
    top_k,
)
from .curves import loss_rising, loss_spikes
from .goal import build_answer
from .learned import qualify_nothing_learned
from .variance import trial_sd
from .training import adam_recommendation, recommend_clipping

#: the built-in checks' stable ids, in the order the report lists them (each check's ``@check(order=...)``);
#: :func:`check_ids` gives the live order, with checks registered since
CHECKS = check_ids()

def qualify_train_longer(findings: list[Finding]) -> list[Finding]:
    """While a group's best learning rate sits at a boundary, "train longer" is not the conclusion yet.

    The playbook ("Algorithm for picking an initial candidate for max_train_steps"): bad search
    spaces make self-deception possible; if the learning rates are all too small, one may wrongly
    conclude that a much larger max_train_steps is needed. Such findings become info and say so.
    """
    limited = {f.evidence.get("group", ""): f for f in findings
               if f.check == "search_space_boundary" and f.severity == WARNING and is_learning_rate(str(f.evidence.get("param", "")))}
    if not limited:
        return findings
    out = []
    for f in findings:
        longer = f.check == "still_improving" or (f.check == "max_train_steps" and f.evidence.get("verdict") == "train longer")
        boundary = limited.get(f.evidence.get("group", ""))
        if longer and f.severity == WARNING and boundary is not None:
            ev = boundary.evidence
            f = replace(
                f, severity=INFO,
                message=f.message + f" But the best {ev['param']} of this group sits at the {ev['side']} boundary of its "
                "range: longer training is not the conclusion to draw yet (too small a learning rate also looks like "
                "a need for more steps).",
                action=f"Expand the {ev['param']} range first (see search_space_boundary); judge the training length after.",
                evidence={**f.evidence, "qualified_by": "search_space_boundary"},
            )
        out.append(f)
    return out


def qualify_sample_more(findings: list[Finding]) -> list[Finding]:
    """While a group's best sits at a boundary of its range (a warning), "sample more densely around the best"
    is not the action: the best may lie outside the range, and more trials inside it only creep towards the
    edge. Such sampled_enough warnings become info and point at the boundary."""
    limited = {f.evidence.get("group", ""): f for f in findings
               if f.check == "search_space_boundary" and f.severity == WARNING}
    out = []
    for f in findings:
        boundary = limited.get(f.evidence.get("group", ""))
        if f.check == "sampled_enough" and f.severity == WARNING and boundary is not None:
            ev = boundary.evidence
            f = replace(
                f, severity=INFO,
                message=f.message + f" But the best {ev['param']} of this group sits at the {ev['side']} boundary of its "
                "range: sampling more inside the range is not the next step.",
                action=f"Expand the {ev['param']} range first (see search_space_boundary); judge the sampling after.",
                evidence={**f.evidence, "qualified_by": "search_space_boundary"},
            )
        out.append(f)
    return out


def run_checks(data: StudyData, thresholds: Thresholds | None = None, checks: Iterable[CheckSpec] | None = None) -> list[Finding]:
    """The selected checks (default: every registered one), warnings first, then in each check's ``order``."""
    th = thresholds or Thresholds()
    findings: list[Finding] = []
    for c in resolve(checks):
        findings.extend(c(data, th))
    # nothing learned first: what it qualifies (a boundary warning) no longer qualifies the others
    findings = qualify_sample_more(qualify_train_longer(qualify_nothing_learned(findings)))
    order = {name: i for i, name in enumerate(check_ids())}
    return sorted(findings, key=lambda f: (f.severity != WARNING, order.get(f.check, len(order))))


__all__ = [
    "CHECKS", "FIGURE_OF_CHECK", "INFO", "REGISTRY", "WARNING", "Check", "Finding", "Thresholds", "adam_recommendation",
    "bootstrap_best_of_k", "bootstrap_ks", "build_answer", "check", "check_ids", "curve_noise", "curve_trials",
    "effective_best_step", "expected_best_of_k", "group_view", "groups", "initial_level", "is_learning_rate",
    "loss_rising", "loss_spikes", "moving_average", "qualify_nothing_learned", "qualify_sample_more", "qualify_train_longer", "recommend_clipping", "resolution",
    "run_checks", "running_median", "thresholds_of", "top_k", "trial_sd", "unregister",
]
