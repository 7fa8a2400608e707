"""Is the search space big enough, where are the infeasible trials, is the best at the edge of stability?
(run per group)

The playbook ("Identifying bad search space boundaries"): a study is suspect
when its best point is near the boundary of a range; if every trial above
some learning rate is infeasible and the best sits at the edge of that
region, the model may suffer from instability; so may a best learning rate
followed by rates that train worse and then diverge (the edge of stability,
reached gradually). All are asked of each
group's best trials: one group whose best is limited by its range makes the
comparison unfair, whatever the study's overall best does.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tunebook.analysis.data import StudyData, TrialRow
from tunebook.errors import failure_line

from .base import INFO, WARNING, Finding, Thresholds, check
from .common import Group, fmt, for_groups, groups, has, in_group, is_learning_rate, top_k
from .variance import TrialVariance, trial_variance


def _outer(u: float, width: float, side: str) -> bool:
    """Whether a scaled position lies in the outer ``width`` of a range on ``side``."""
    return u >= 1 - width if side == "upper" else u <= width


def _beats_inside(view: StudyData, name: str, side: str, best: TrialRow, th: Thresholds,
                  tv: TrialVariance | None) -> dict[str, Any]:
    """How far the group's best (at the ``side`` edge of ``name``) beats the best trial inside the range (outside
    the edge band of twice ``boundary_fraction``), against the measured trial sd: ``beyond_noise`` is False
    only when both are measured and the gap is at most ``boundary_noise_sd`` trial sd (seeds at the edge
    better by noise alone); an unmeasured gap leaves the rule on position alone."""
    s = view.sign()
    inside = [t for t in view.completed if has(t, name)
              and not _outer(view.unit(name, t.params[name], t), 2 * th.boundary_fraction, side)]
    out: dict[str, Any] = {"beyond_noise": True}
    if inside:
        rival = min(inside, key=lambda t: s * float(t.value))  # type: ignore[arg-type]
        gap = s * float(rival.value) - s * float(best.value)  # type: ignore[arg-type]
        out.update(inside_best=float(rival.value), inside_trial=rival.number, gap=gap)  # type: ignore[arg-type]
    if tv is not None:
        out.update(trial_sd=tv.sd, trial_sd_source=tv.source)
        if inside:
            out.update(gap_in_sd=gap / tv.sd if tv.sd > 0 else math.inf,
                       beyond_noise=gap > th.boundary_noise_sd * tv.sd)
    return out


def _edge_words(margin: dict[str, Any], best: TrialRow) -> str:
    """What the boundary finding measured of the edge against the inside of the range, in words."""
    if "gap" not in margin:
        return " No trial of the group lies inside the range away from that edge to compare it with."
    inside = (f"the best trial inside the range (#{margin['inside_trial']}, {fmt(margin['inside_best'])}) is "
              f"{fmt(abs(margin['gap']))} {'worse' if margin['gap'] > 0 else 'better'} than #{best.number}")
    if "gap_in_sd" not in margin:
        return (f" {inside[0].upper() + inside[1:]}; trial variance is not measured, so whether that is beyond the "
                "seed-to-seed noise is not known (replicates measure it).")
    return (f" {inside[0].upper() + inside[1:]}: {margin['gap_in_sd']:.2g} trial sd ({fmt(margin['trial_sd'])}, from "
            f"{margin['trial_sd_source']})"
            + ("." if margin["beyond_noise"] else ", within the noise of one run: nothing shows the optimum outside."))


def boundary_findings(view: StudyData, group: Group, th: Thresholds, tv: TrialVariance | None = None) -> list[Finding]:
    """The group's best near an edge of a numeric range (its top trials there too, or nothing sampled beyond
    it): a warning when it beats the best trial inside the range by more than ``boundary_noise_sd`` measured
    trial sd (or trial variance is not measured), an info finding when the edge is within that noise."""
    best = view.best()
    if best is None:
        return []
    top = top_k(view, th)
    findings = []
    for name, param in view.numeric_params().items():
        if view.roles.get(name) == "scientific" or not has(best, name):
            continue  # a param is judged only over the trials that have it
        have = [t for t in top if has(t, name)]
        u_best = view.unit(name, best.params[name], best)
        finished = [view.unit(name, t.params[name], t) for t in view.finished if has(t, name)]
        for side in ("upper", "lower"):
            share = float(np.mean([_outer(view.unit(name, t.params[name], t), 2 * th.boundary_fraction, side) for t in have]))
            # With few trials the best may be the last sampled point before the edge: nothing beyond it (not even
            # an infeasible trial) shows that the group's optimum lies inside the range.
            beyond = [u for u in finished if (u > u_best if side == "upper" else u < u_best)]
            extreme = (len(finished) >= th.boundary_extreme_min_trials and not beyond
                       and _outer(u_best, th.boundary_extreme_fraction, side))
            if (_outer(u_best, th.boundary_fraction, side) and share >= th.boundary_top_share) or extreme:
                findings.append(_boundary_finding(view, group, name, param, side, best, share, have, extreme,
                                                  _beats_inside(view, name, side, best, th, tv)))
    return findings


def _boundary_finding(view: StudyData, group: Group, name: str, param: Any, side: str, best: TrialRow, share: float,
                      have: list[TrialRow], extreme: bool, margin: dict[str, Any]) -> Finding:
    own = view.param_for(best, name) or param  # a conditional name: the range of this group
    bound = own.high if side == "upper" else own.low
    who = f"the best trial of {group.label}" if group.label else "the best trial"
    where = (f"The {name} of {who} (#{best.number}), {best.params[name]:.4g}, is near the {side} boundary "
             f"({bound:g}) of the search space, "
             + (f"with {share:.0%} of the group's top {len(have)} trials there too" if not extreme else
                f"and no trial of the group was sampled {'above' if side == 'upper' else 'below'} it"))
    evidence = {"param": name, "side": side, "best_value": best.params[name], "bound": bound,
                "top_share_near": share, "top_k": len(have), "trial": best.number,
                "rule": "nothing sampled beyond" if extreme else "top trials near", **margin}
    if not margin["beyond_noise"]:
        return Finding(
            "search_space_boundary", INFO, in_group(group.label) + where + "." + _edge_words(margin, best),
            f"No change needed for {name} on this evidence; to be sure, widen its {side} bound in a new study.",
            evidence)
    return Finding(
        "search_space_boundary", WARNING,
        in_group(group.label) + where + ": its best point may lie outside the range." + _edge_words(margin, best)
        + (" The comparison between scientific values is not yet fair." if group.label else ""),
        f"Expand the search space for {name} in the {side} direction"
        + (f" for {group.label}" if group.label else "") + " and run a new study.",
        evidence)


@check("search_space_boundary", family="space", order=20, figure="axis", uses=("boundary_fraction", "boundary_top_share", "boundary_extreme_fraction",
                                                                   "boundary_extreme_min_trials", "top_k_min", "top_k_share"),
       thresholds={"boundary_noise_sd": 1.0})
def check_search_space_boundary(data: StudyData, th: Thresholds) -> list[Finding]:
    """The playbook's bad search-space boundary, asked of each group; the edge must beat the inside of the
    range by more than the measured trial noise (see :func:`boundary_findings`)."""
    tv = trial_variance(data, th)
    return for_groups(data, th, lambda view, g: boundary_findings(view, g, th, tv))


def _cause(error: str | None) -> str:
    """The one-line cause of a failed trial (:func:`~tunebook.errors.failure_line`)."""
    return failure_line(error)[:200] or "no error recorded"


@check("failed_trials", family="space", order=50, uses=("failed_group_share",))
def check_failed_trials(data: StudyData, th: Thresholds) -> list[Finding]:
    """Failed trials are not data (a bug, not a bad point): say how many, why, and in which groups; a
    group that lost a large share of its trials was tuned less than the others."""
    failed = [t for t in data.trials if t.state == "failed"]
    if not failed:
        return []
    errors = {t.id: t.error for t in data.study.storage.get_trials(data.study.id, ["failed"])}
    causes: dict[str, list[int]] = {}
    for t in failed:
        causes.setdefault(_cause(errors.get(t.id)), []).append(t.number)
    top, numbers = max(causes.items(), key=lambda kv: len(kv[1]))
    done = [t for t in data.trials if t.state in ("completed", "infeasible", "failed")]
    by_group: dict[str, tuple[int, int]] = {}
    for g in groups(data, th.scientific_buckets):
        if g.label:
            mine = [t for t in g.trials if t.state in ("completed", "infeasible", "failed")]
            bad = sum(t.state == "failed" for t in mine)
            if bad:
                by_group[g.label] = (bad, len(mine))
    short = sorted(label for label, (bad, n) in by_group.items() if bad / n >= th.failed_group_share)
    where = ("; " + ", ".join(f"{label}: {bad} of {n}" for label, (bad, n) in by_group.items())) if by_group else ""
    more = f" ({len(causes) - 1} other cause(s))" if len(causes) > 1 else ""
    return [Finding(
        "failed_trials", WARNING,
        f"{len(failed)} of {len(done)} ended trials failed{where}: {top} (trial #{numbers[0]}"
        + (f" and {len(numbers) - 1} more" if len(numbers) > 1 else "") + f"){more}. Failed trials are not data: "
        + (f"{', '.join(short)} lost a large share of its trials, so its nuisance hyperparameters were tuned less."
           if short else "the study's results rest on the others."),
        f"See every error with `tunebook status {data.study.name}`, fix the cause, then "
        f"`tunebook run {data.study.name} --retry-failed`.",
        {"failed": len(failed), "ended": len(done), "causes": causes, "groups": {k: list(v) for k, v in by_group.items()},
         "short_groups": short},
    )]


@check("infeasible_share", family="space", order=30, figure="axis", uses=("infeasible_share",))
def check_infeasible_share(data: StudyData, th: Thresholds) -> list[Finding]:
    finished = data.finished
    n_bad = len(data.infeasible)
    if not finished or n_bad == 0:
        return []
    share = n_bad / len(finished)
    reasons: dict[str, int] = {}
    for t in data.infeasible:
        key = (t.infeasible_reason or "unknown").split(" at step")[0].split(" = ")[0]
        reasons[key] = reasons.get(key, 0) + 1
    evidence = {"infeasible": n_bad, "finished": len(finished), "share": share, "reasons": reasons}
    if share > th.infeasible_share:
        return [Finding(
            "infeasible_share", WARNING,
            f"{n_bad} of {len(finished)} finished trials ({share:.0%}) were infeasible.",
            "Shrink or reparameterize the search space to avoid sampling infeasible points; "
            "if infeasible trials appear where they should not, look for a bug.",
            evidence,
        )]
    return [Finding(
        "infeasible_share", INFO,
        f"{n_bad} of {len(finished)} finished trials ({share:.0%}) were infeasible.",
        "No action needed at this share; they are plotted as red x.",
        evidence,
    )]


def infeasible_region_findings(view: StudyData, group: Group, th: Thresholds) -> list[Finding]:
    best = view.best()
    if best is None or not view.infeasible:
        return []
    findings = []
    for name in view.numeric_params():
        if view.roles.get(name) == "scientific" or not has(best, name):
            continue
        u_best = view.unit(name, best.params[name], best)
        having = [t for t in view.finished if has(t, name)]
        offset = np.array(view.units(name, having), dtype=float) - u_best  # once per name, for both sides
        infeasible = np.array([t.state == "infeasible" for t in having], dtype=bool)
        for side, direction in (("upper", 1), ("lower", -1)):
            d = direction * offset
            near = (0 < d) & (d <= th.infeasible_window)
            bad_at = np.flatnonzero(near & infeasible)
            n_near, n_bad = int(near.sum()), len(bad_at)
            if n_bad and n_bad / n_near >= th.infeasible_region_share:
                nearest = having[int(bad_at[np.argmin(np.abs(offset[bad_at]))])]  # the first of equals, as min() gives
                findings.append(Finding(
                    "infeasible_region", WARNING,
                    in_group(group.label)
                    + f"The best {name} = {best.params[name]:.4g} sits next to an infeasible region on its {side} side "
                    f"({n_bad} of {n_near} trials just {'above' if side == 'upper' else 'below'} it diverged, "
                    f"the nearest at {nearest.params[name]:.4g}): a sign of training instability.",
                    "Stabilize training so that the best point is not at the edge of stability: "
                    "try learning-rate warmup or gradient clipping (`tunebook warmup`), then re-tune.",
                    {"param": name, "side": side, "best_value": best.params[name],
                     "nearest_infeasible": nearest.params[name], "infeasible_near": n_bad, "near": n_near},
                ))
    return findings


@check("infeasible_region", family="space", order=40, figure="axis", uses=("infeasible_window", "infeasible_region_share"))
def check_infeasible_region(data: StudyData, th: Thresholds) -> list[Finding]:
    return for_groups(data, th, lambda view, g: infeasible_region_findings(view, g, th))


def _steeper_above(view: StudyData, name: str, best: TrialRow, between: list[TrialRow],
                   tv: TrialVariance | None) -> dict[str, Any] | None:
    """The rates between the best and the divergence against the rates below the best at the same distance
    (scaled axis of the group's range, the below side's rise interpolated between its trials): on average over
    the k matched rates the rise above exceeds the rise below by more than two standard errors of that mean
    (each excess a difference of two single runs: sd sqrt(2) x the measured trial sd; the bound
    2 sqrt(2 / k) trial sd), so one near-best rate within noise does not decide it. The loss rises faster
    towards the divergence than away from it: the best is limited by instability, however far (in units of
    the range) the divergence lies. None when it is not so, or cannot be measured (no trial variance, no
    trial below the best within the distance)."""
    if tv is None or not between:
        return None
    s, u_best, y_best = view.sign(), view.unit(name, float(best.params[name]), best), view.sign() * float(best.value)  # type: ignore[arg-type]
    below = sorted((u_best - view.unit(name, float(t.params[name]), t), s * float(t.value) - y_best)  # type: ignore[arg-type]
                   for t in view.completed if has(t, name) and float(t.params[name]) < float(best.params[name]))
    if not below:
        return None
    dist, rise = np.array([0.0] + [d for d, _ in below]), np.array([0.0] + [r for _, r in below])
    pairs = []
    for t in between:
        d = view.unit(name, float(t.params[name]), t) - u_best
        if d <= dist[-1]:  # matched only where the below side was sampled that far
            pairs.append((float(t.params[name]), s * float(t.value) - y_best, float(np.interp(d, dist, rise))))  # type: ignore[arg-type]
    if not pairs:
        return None
    mean_excess = float(np.mean([above - under for _, above, under in pairs]))
    bound = 2 * math.sqrt(2 / len(pairs)) * tv.sd
    if mean_excess <= bound:
        return None
    return {"matched": [{"rate": r, "worse_above": a, "worse_below_same_distance": b} for r, a, b in pairs],
            "mean_excess": mean_excess, "bound": bound, "trial_sd": tv.sd, "trial_sd_source": tv.source}


def stability_edge_findings(view: StudyData, group: Group, th: Thresholds, tv: TrialVariance | None = None) -> list[Finding]:
    """A group's best learning rate at the edge of stability: the rates above it train steadily worse (some
    may diverge already) and every trial from some rate up diverged (at least ``stability_edge_min_diverged``);
    either the first divergence lies within ``stability_edge_window`` of the best (scaled axis of the group's
    own range), or the rates above the best train worse than the rates below it at the same distance, beyond
    the measured trial sd (:func:`_steeper_above`: a gradual edge, however far). Not said where
    :func:`infeasible_region_findings` already says it."""
    best = view.best()
    if best is None or not view.infeasible:
        return []
    s = view.sign()
    already = {(f.evidence["param"], f.evidence["side"]) for f in infeasible_region_findings(view, group, th)}
    findings = []
    for name in view.numeric_params():
        if (view.roles.get(name) == "scientific" or not is_learning_rate(name) or not has(best, name)
                or (name, "upper") in already):
            continue
        star = float(best.params[name])
        above = sorted((t for t in view.finished if has(t, name) and float(t.params[name]) > star),
                       key=lambda t: float(t.params[name]))
        first = len(above)  # the first of the trailing run of diverged trials
        while first > 0 and above[first - 1].state == "infeasible":
            first -= 1
        diverged = [t for t in above if t.state == "infeasible"]
        between = [t for t in above[:first] if t.state == "completed"]
        if len(above) - first < th.stability_edge_min_diverged:
            continue  # not every trial from some rate up diverged
        nearest = diverged[0]  # the edge: the first rate above the best that diverged
        width = view.unit(name, float(nearest.params[name]), nearest) - view.unit(name, star, best)
        worse = [s * float(t.value) - s * float(best.value) for t in between]  # type: ignore[arg-type]
        if len(worse) >= 2 and float(np.corrcoef([float(t.params[name]) for t in between], worse)[0, 1]) <= 0:
            continue  # not worsening towards the edge: no gradual edge
        steeper = None if width <= th.stability_edge_window else _steeper_above(view, name, best, between, tv)
        if width > th.stability_edge_window and steeper is None:
            continue
        findings.append(_edge_finding(view, group, name, best, above, first, between, diverged, worse, width, steeper))
    return findings


def _edge_finding(view: StudyData, group: Group, name: str, best: TrialRow, above: list[TrialRow], first: int,
                  between: list[TrialRow], diverged: list[TrialRow], worse: list[float], width: float,
                  steeper: dict[str, Any] | None) -> Finding:
    star, nearest, edge = float(best.params[name]), diverged[0], float(above[first].params[name])
    rates = ", ".join(f"{float(t.params[name]):.3g}" for t in between)
    mixed = len(diverged) - (len(above) - first)
    shape = ""
    if steeper is not None:
        pairs = "; ".join(f"{p['rate']:.3g}: {fmt(p['worse_above'])} against {fmt(p['worse_below_same_distance'])}"
                          for p in steeper["matched"])
        k = len(steeper["matched"])
        shape = (f" The rates above the best train worse than the rates as far below it ({pairs}): by "
                 f"{fmt(steeper['mean_excess'])} on average over {k} rate{'s' if k != 1 else ''}, more than two "
                 f"standard errors of that mean ({fmt(steeper['bound'])}, from the trial sd {fmt(steeper['trial_sd'])}, "
                 f"{steeper['trial_sd_source']}): the loss rises towards the divergence, not as a bowl.")
    return Finding(
        "stability_edge", WARNING,
        in_group(group.label)
        + f"The best {name} = {star:.4g} sits at the edge of stability: "
        + (f"the rates just above it train worse ({rates}: {fmt(min(worse))} to {fmt(max(worse))} worse)"
           + (f" or diverge ({mixed} of them, the first at {float(nearest.params[name]):.3g})" if mixed else "")
           + " and " if between else "")
        + f"every trial from {edge:.3g} up diverged ({len(above) - first} of them).{shape} Instability limits the "
        "usable learning rate; removing it usually lets higher rates train, and train better.",
        f"Try learning-rate warmup or gradient clipping (`tunebook stability {view.study.name}`, then "
        f"`tunebook warmup {view.study.name}`), then re-tune {name}.",
        {"param": name, "side": "upper", "best_value": star, "trial": best.number,
         "worse_rates": [float(t.params[name]) for t in between], "worse_by": worse,
         "first_diverged": float(nearest.params[name]), "all_diverged_from": edge,
         "diverged": len(diverged), "width": width, "rule": "near" if steeper is None else "steeper above",
         **({"steeper_above": steeper} if steeper else {})},
    )


@check("stability_edge", family="space", order=45, figure="axis",
       thresholds={"stability_edge_window": 0.35, "stability_edge_min_diverged": 2})
def check_stability_edge(data: StudyData, th: Thresholds) -> list[Finding]:
    """The playbook's sign of instability on an axis plot: the best learning rate right at the edge of the
    rates that diverge, reached gradually (worse rates first), judged per group in the group's own range."""
    tv = trial_variance(data, th)
    return for_groups(data, th, lambda view, g: stability_edge_findings(view, g, th, tv))
