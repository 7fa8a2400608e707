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

import numpy as np

from tunebook.analysis.data import StudyData
from tunebook.errors import failure_line

from .base import INFO, WARNING, Finding, Thresholds, check
from .common import Group, fmt, for_groups, groups, has, in_group, is_learning_rate, top_k


def _outer(u: float, width: float, side: str) -> bool:
    """Whether a scaled position lies in the outer ``width`` of a range on ``side``."""
    return u >= 1 - width if side == "upper" else u <= width


def boundary_findings(view: StudyData, group: Group, th: Thresholds) -> list[Finding]:
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
                own = view.param_for(best, name) or param  # a conditional name: the range of this group
                bound = own.high if side == "upper" else own.low
                who = f"the best trial of {group.label}" if group.label else "the best trial"
                findings.append(Finding(
                    "search_space_boundary", WARNING,
                    in_group(group.label)
                    + f"The {name} of {who} (#{best.number}), {best.params[name]:.4g}, is near the {side} boundary "
                    f"({bound:g}) of the search space, "
                    + (f"with {share:.0%} of the group's top {len(have)} trials there too" if not extreme else
                       f"and no trial of the group was sampled {'above' if side == 'upper' else 'below'} it")
                    + ": its best point may lie outside the range."
                    + (" The comparison between scientific values is not yet fair." if group.label else ""),
                    f"Expand the search space for {name} in the {side} direction"
                    + (f" for {group.label}" if group.label else "")
                    + " and run a new study.",
                    {"param": name, "side": side, "best_value": best.params[name], "bound": bound,
                     "top_share_near": share, "top_k": len(have), "trial": best.number,
                     "rule": "nothing sampled beyond" if extreme else "top trials near"},
                ))
    return findings


@check("search_space_boundary", family="space", order=20, figure="axis", uses=("boundary_fraction", "boundary_top_share", "boundary_extreme_fraction",
                                                                   "boundary_extreme_min_trials", "top_k_min", "top_k_share"))
def check_search_space_boundary(data: StudyData, th: Thresholds) -> list[Finding]:
    return for_groups(data, th, lambda view, g: boundary_findings(view, g, th))


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


def stability_edge_findings(view: StudyData, group: Group, th: Thresholds) -> list[Finding]:
    """A group's best learning rate at the edge of stability: the rates above it train steadily worse (some
    may diverge already), every trial from some rate up diverged (at least ``stability_edge_min_diverged``),
    and the first divergence lies within ``stability_edge_window`` of the best (scaled axis of the group's
    own range). Not said where :func:`infeasible_region_findings` already says it."""
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
        edge = float(above[first].params[name])
        width = view.unit(name, float(nearest.params[name]), nearest) - view.unit(name, star, best)
        worse = [s * float(t.value) - s * float(best.value) for t in between]  # type: ignore[arg-type]
        if width > th.stability_edge_window:
            continue
        if len(worse) >= 2 and float(np.corrcoef([float(t.params[name]) for t in between], worse)[0, 1]) <= 0:
            continue  # not worsening towards the edge: no gradual edge
        rates = ", ".join(f"{float(t.params[name]):.3g}" for t in between)
        mixed = len(diverged) - (len(above) - first)
        findings.append(Finding(
            "stability_edge", WARNING,
            in_group(group.label)
            + f"The best {name} = {star:.4g} sits at the edge of stability: "
            + (f"the rates just above it train worse ({rates}: {fmt(min(worse))} to {fmt(max(worse))} worse)"
               + (f" or diverge ({mixed} of them, the first at {float(nearest.params[name]):.3g})" if mixed else "")
               + " and " if between else "")
            + f"every trial from {edge:.3g} up diverged ({len(above) - first} of them). Instability limits the "
            "usable learning rate; removing it usually lets higher rates train, and train better.",
            f"Try learning-rate warmup or gradient clipping (`tunebook stability {view.study.name}`, then "
            f"`tunebook warmup {view.study.name}`), then re-tune {name}.",
            {"param": name, "side": "upper", "best_value": star, "trial": best.number,
             "worse_rates": [float(t.params[name]) for t in between], "worse_by": worse,
             "first_diverged": float(nearest.params[name]), "all_diverged_from": edge,
             "diverged": len(diverged), "width": width},
        ))
    return findings


@check("stability_edge", family="space", order=45, figure="axis",
       thresholds={"stability_edge_window": 0.35, "stability_edge_min_diverged": 2})
def check_stability_edge(data: StudyData, th: Thresholds) -> list[Finding]:
    """The playbook's sign of instability on an axis plot: the best learning rate right at the edge of the
    rates that diverge, reached gradually (worse rates first), judged per group in the group's own range."""
    return for_groups(data, th, lambda view, g: stability_edge_findings(view, g, th))
