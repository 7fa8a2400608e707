"""How long to train, and have we sampled enough? (run per group)

max_train_steps. The playbook ("Deciding how long to train when training is
not compute-bound"): if the best step is always in the first 10% of training,
max_train_steps is far too high; if it is consistently in the last 25%, the
trials might benefit from training longer. The "best step" here is where the
curve came within its noise of its best (:func:`effective_best_step`): on a
flat, noisy curve the argmin lands wherever the noise put it.

Sampled enough. The playbook says that it is hard to know whether a search
space was sampled densely enough, and that we usually sample what we can
afford. What can be judged is whether more sampling could change the answer:
how densely each group's best is sampled (its nearest trials in the
normalized nuisance space, against the typical spacing), how much a point
between them could still gain (a quarter of how much worse they are: a
quadratic bowl), and whether that room exceeds the gap by which the group
trails the one ahead of it and the measured trial sd. Not whether the
best-of-k curve still moves: over a wide range of learning rates that
measures how peaked the landscape is, not how far the best found is from the
best possible. Each finding says how many more trials would be informative
(``evidence["more_trials"]``, read by ``tunebook next``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from tunebook.analysis.data import StudyData, TrialRow

from .base import INFO, WARNING, Finding, Thresholds, check
from .common import (
    Group,
    curve_noise,
    effective_best_step,
    fmt,
    for_groups,
    group_view,
    groups,
    in_group,
    read_curve,
)
from .variance import trial_sd


def measured_trial_sd(data: StudyData, th: Thresholds) -> tuple[float | None, str]:
    """The trial sd where runs of one configuration over seeds measured it, with its source; ``(None, "")``
    otherwise. The evaluation noise of a curve is not trial variance (it can be several times smaller or
    larger than the seed-to-seed sd): the checks never judge against it."""
    sd, source = trial_sd(data, th)
    if sd is None or not sd > 0 or source == "evaluation noise":
        return None, ""
    return sd, source


def effective_best_steps(view: StudyData, th: Thresholds) -> list[int]:
    """Effective best steps of the better half of a view's trials (the stored best step when no curve).

    A better half larger than ``th.best_step_curves`` is represented by that many of its trials,
    evenly spaced in rank (the best included): the shares the check reads are estimated from them.
    """
    ranked = view.ranked()
    better = ranked[: max(3, len(ranked) // 2)]
    if len(better) > th.best_step_curves > 0:
        picks = np.unique(np.linspace(0, len(better) - 1, th.best_step_curves).round().astype(int))
        better = [better[i] for i in picks]
    view.preload(better, view.metric)
    out = []
    for t in better:
        c = read_curve(view, t, view.metric, view.sign())
        if c is not None:
            out.append(effective_best_step(*c, th))
        elif t.best_step is not None:
            out.append(int(t.best_step))
    return out


def _probe_runs(data: StudyData) -> tuple[int, int, dict[int, float], dict[int, float]] | None:
    """(the trial the length probes re-run, their steps, its replicates' values by seed, the probes' values by
    seed): completed, finite, loss-like (times the objective's sign); None without length probes."""
    if not data.probe_of:
        return None
    source, steps = next(iter(data.probe_of.values()))
    s = data.sign()

    def by_seed(rows: list[TrialRow]) -> dict[int, float]:
        return {int(t.seed): s * float(t.value) for t in rows  # type: ignore[arg-type]
                if t.state == "completed" and t.value is not None and math.isfinite(t.value)}

    base = by_seed([t for t in data.replicates if data.replicate_of.get(t.number) == source])
    return source, steps, base, by_seed([t for t in data.probes if data.probe_of[t.number][0] == source])


def _probes_unfinished(data: StudyData, source: int) -> bool:
    """Are some of the length probes or replicates of trial ``source`` still pending or running?"""
    rows = [t for t in data.probes if data.probe_of[t.number][0] == source]
    rows += [t for t in data.replicates if data.replicate_of.get(t.number) == source]
    return any(t.state in ("pending", "running") for t in rows)


#: The fewest probe/replicate pairs (same seed) judged by their paired differences (two: one dof, whose t quantile,
#: 6.3, carries how little two differences say of their sd); fewer: two independent sets.
MIN_PAIRS = 2


def _signed(x: float) -> str:
    """``x`` as :func:`fmt` writes it, with its sign."""
    return ("+" if x >= 0 else "-") + fmt(abs(x))


def _t_one_sided(dof: int) -> float:
    from scipy.stats import t

    return float(t.ppf(0.95, dof))


def _length_gain(data: StudyData, source: int, base: dict[int, float], longer: dict[int, float]
                 ) -> tuple[float, float, float, int, str]:
    """(gain of the longer runs, loss-like, > 0: better; the margin of its one-sided 95% lower bound; the sd it
    rests on; its dof; how measured). With :data:`MIN_PAIRS` pairs of the same seed, from the pairs'
    differences (the seed's share of the spread cancels); else two independent sets, with the trial sd pooled
    over them and every other replicate set (as the answer's).

    One-sided: the playbook's premise is that training longer never makes the best checkpoint worse
    (retrospective checkpoint selection), so the question is only whether the gain is above 0."""
    from .variance import pooled, replicate_sets

    pairs = [base[k] - longer[k] for k in longer if k in base]
    if len(pairs) >= MIN_PAIRS:
        d = np.array(pairs)
        sd = float(d.std(ddof=1))
        return float(d.mean()), _t_one_sided(len(d) - 1) * sd / math.sqrt(len(d)), sd, len(d) - 1, \
            f"{len(d)} pairs of the same seed, sd of their differences"
    a, b = np.array(list(base.values())), np.array(list(longer.values()))
    s = data.sign()
    others = [s * v for of, v in replicate_sets(data).items() if of != source]  # the other groups' replicates
    sd, dof, _, _ = pooled([a, b, *others])  # type: ignore[misc]
    half = _t_one_sided(dof) * sd * math.sqrt(1 / len(a) + 1 / len(b))
    return float(a.mean() - b.mean()), half, sd, dof, "pooled trial sd"


def measured_length(data: StudyData) -> Finding | None:
    """What the study's length probes measured (:mod:`tunebook.designs.length_probes`): the best configuration at
    its longer budget against its replicates at ``max_train_steps``: the gain and its one-sided 95% bound
    (:func:`_length_gain`). A WARNING when the lower bound is above 0; else INFO."""
    got = _probe_runs(data)
    if got is None:
        return None
    source, steps, base, longer = got
    where = f"trial #{source}'s configuration"
    paired = [k for k in longer if k in base]  # seeds with a probe and a replicate
    if len(base) < 2 or len(longer) < 1 or (len(longer) < 2 and len(paired) < MIN_PAIRS):
        counted = f"({len(longer)} completed, against {len(base)} completed replicates at {data.max_train_steps})"
        if _probes_unfinished(data, source):
            return Finding("max_train_steps", INFO, f"The length probes of {where} ({steps} steps) are not measured "
                           f"yet {counted}.", "Let the study finish (`tunebook run`).",
                           {"verdict": "probes pending", "source": source})
        return Finding("max_train_steps", INFO, f"The length probes of {where} ({steps} steps) measured nothing: too "
                       f"few finished {counted}; 2 pairs of a probe and a replicate of the same seed are the least.",
                       "Judge the length from the curves; for a measurement, run the next round with replicates: 3 "
                       "(the probes pair with them).", {"verdict": "too few probes", "source": source})
    diff, half, sd, dof, how = _length_gain(data, source, base, longer)
    bound = diff - half
    s = data.sign()
    if len(paired) >= MIN_PAIRS:  # the means quoted are those of the runs compared: the pairs
        base, longer = {k: base[k] for k in paired}, {k: longer[k] for k in paired}
    same = " of the same seeds" if len(paired) >= MIN_PAIRS else ""
    ev = {"source": source, "probe_steps": steps, "max_train_steps": data.max_train_steps,
          "probe_mean": s * float(np.mean(list(longer.values()))), "replicate_mean": s * float(np.mean(list(base.values()))),
          "n_probes": len(longer), "n_replicates": len(base), "gain": diff, "lower_bound": bound, "sd": sd,
          "dof": dof, "measured_by": how}
    runs = (f"{where} trained {steps} steps ({len(longer)} run{'s' if len(longer) > 1 else ''}, mean "
            f"{fmt(ev['probe_mean'])}) against {data.max_train_steps} steps ({len(base)} replicates{same}, mean "
            f"{fmt(ev['replicate_mean'])}): ")
    interval = f"(one-sided 95% lower bound {_signed(bound)}; {how} {fmt(sd)}, {dof} dof)"
    if bound > 0:
        return Finding(
            "max_train_steps", WARNING,
            f"Measured: {runs}training longer improves {data.metric} by {fmt(diff)} {interval}. The learning rate "
            "decays at the end of each run, so the curves' flat end did not show that the trials were too short.",
            f"Raise max_train_steps in the next round (a new study, e.g. {steps}), and retune the schedule with it.",
            {**ev, "verdict": "train longer"})
    if diff + half < 0:
        return Finding("max_train_steps", INFO, f"Measured: {runs}training longer is worse by {fmt(-diff)} "
                       f"(one-sided 95% upper bound of the gain {_signed(diff + half)}; {how} {fmt(sd)}, {dof} dof).",
                       "Keep max_train_steps; the longer runs' schedule (stretched with them) did not help.",
                       {**ev, "verdict": "longer worse"})
    return Finding("max_train_steps", INFO,
                   f"Measured: {runs}the gain from training longer, {_signed(diff)} {interval}, "
                   "is not shown to be above 0" + ("." if half <= sd else
                                                   f": too few runs to tell (the bound lies {fmt(half)} below the gain, "
                                                   f"more than the {fmt(sd)} sd it rests on)."),
                   "Keep max_train_steps." if half <= sd else
                   "Not settled: more pairs (e.g. replicates: 6 and length_probes: 6 in the next round: each probe "
                   "pairs with a replicate) or `tunebook next-round` would narrow it.",
                   {**ev, "verdict": "no measured gain"})


@check("max_train_steps", family="sampling", order=120, figure="best_steps",
       uses=("best_step_share", "best_step_early", "best_step_late", "best_step_curves", "noise_z", "saturation_tol"))
def check_max_train_steps(data: StudyData, th: Thresholds) -> list[Finding]:
    """From the curves, per group (the playbook's best-step rule); where the study has length probes, their
    measurement replaces the curves' verdict in the group of the trial they re-run."""
    measured = measured_length(data)
    from_curves = _max_train_steps_from_curves(data, th)
    if measured is None or measured.evidence.get("verdict") in ("probes pending", "too few probes"):
        return from_curves + ([measured] if measured is not None else [])
    source = measured.evidence["source"]
    label = next((g.label for g in groups(data, th.scientific_buckets) if any(t.number == source for t in g.trials)), "")
    kept = [f for f in from_curves if f.evidence.get("group", "") != label]
    return kept + [replace(measured, evidence={"group": label, **measured.evidence})]


def _max_train_steps_from_curves(data: StudyData, th: Thresholds) -> list[Finding]:
    def judge(view: StudyData, g: Group) -> list[Finding]:
        steps = np.array(effective_best_steps(view, th), dtype=float)
        if len(steps) < 3:
            return []
        share_early = float(np.mean(steps <= th.best_step_early * data.max_train_steps))
        share_late = float(np.mean(steps >= th.best_step_late * data.max_train_steps))
        ev = {"max_train_steps": data.max_train_steps, "share_first_10pct": share_early,
              "share_last_25pct": share_late, "trials": len(steps), "best_steps": steps.astype(int).tolist()}
        if share_early >= th.best_step_share:
            return [Finding(
                "max_train_steps", WARNING,
                in_group(g.label) + f"{share_early:.0%} of the better trials come within their noise of their best in "
                f"the first {th.best_step_early:.0%} of the {data.max_train_steps} steps: max_train_steps is too high.",
                "Lower max_train_steps in the next round (a new study); it is never tuned inside a study.",
                {**ev, "verdict": "too long"},
            )]
        if share_late >= th.best_step_share:
            return [Finding(
                "max_train_steps", WARNING,
                in_group(g.label) + f"{share_late:.0%} of the better trials are still improving materially (beyond "
                f"their noise) in the last {1 - th.best_step_late:.0%} of the {data.max_train_steps} steps: they may "
                "benefit from training longer.",
                "Raise max_train_steps in the next round (a new study), and retune the learning-rate schedule with it.",
                {**ev, "verdict": "train longer"},
            )]
        return []

    return for_groups(data, th, judge)


# have we sampled enough? ---------------------------------------------------------
#: how many nearest trials of a group's best are read (fewer when the group has fewer)
NEIGHBOURS = 3
#: how many trials (evenly spread) the typical distance to the nearest trials is measured on
TYPICAL_SAMPLE = 64
#: more trials are never estimated beyond this many times the group's count (the estimate's power law is local)
MORE_TRIALS_CAP = 10


def nuisance_positions(view: StudyData, trials: list[TrialRow]) -> tuple[np.ndarray, int]:
    """The trials' positions in the normalized nuisance space of their group, and its numeric dimension.

    Numeric nuisance hyperparameters that every trial has, each in [0, 1] of the group's own (scaled)
    range; a choice adds one axis on which two trials are 0 (same value) or 1 (different) apart.
    """
    have = [name for name, role in view.roles.items() if role == "nuisance" and name in view.space
            and all(name in t.params for t in trials)]
    numeric = [n for n in have if n in view.numeric_params()]
    choices = [n for n in have if n not in numeric]
    cols = [np.array(view.units(n, trials), dtype=float) for n in numeric]
    for n in choices:  # one-hot of each choice, scaled so that two different values are 1 apart
        values = [repr(t.params[n]) for t in trials]
        for v in sorted(set(values)):
            cols.append(np.array([(x == v) / math.sqrt(2) for x in values], dtype=float))
    return (np.stack(cols, axis=1) if cols else np.zeros((len(trials), 0))), len(numeric)


def sampling_around_best(view: StudyData) -> dict[str, Any] | None:
    """How densely a group's best is sampled, and how much denser sampling could improve it.

    Of the group's completed trials (loss-like values), the best's ``NEIGHBOURS`` nearest in the
    normalized nuisance space: their distance (against the typical distance between a trial and its
    nearest ones: ``density_ratio`` > 1 means the best sits in a more sparsely sampled region than the
    typical trial) and how much worse they are (``neighbour_gap``, their median value minus the best).
    ``room``, a quarter of that gap, estimates how much a point sampled between the best and its
    neighbours could improve on the best (a quadratic bowl whose optimum lies between them: the best
    of a bowl sampled at spacing h is about a quarter of the rise over h above the optimum).
    """
    s = view.sign()
    done = view.completed
    n = len(done)
    if n < 2:
        return None
    values = np.array([s * float(t.value) for t in done], dtype=float)  # type: ignore[arg-type]
    x, dims = nuisance_positions(view, done)
    if x.shape[1] == 0:
        return None
    b = int(np.argmin(values))
    k = min(NEIGHBOURS, n - 1)

    def nearest(i: int) -> tuple[np.ndarray, np.ndarray]:  # the k nearest trials of trial i (O(n): no n x n matrix)
        d = np.sqrt(((x - x[i]) ** 2).sum(axis=1))
        d[i] = np.inf
        idx = np.argpartition(d, k - 1)[:k]
        return idx[np.argsort(d[idx])], d

    near, d_best = nearest(b)
    # the typical trial's distance to its k nearest, from at most TYPICAL_SAMPLE trials evenly spread
    sample = np.unique(np.linspace(0, n - 1, min(n, TYPICAL_SAMPLE)).round().astype(int))
    typical = float(np.median([dist[idx].mean() for idx, dist in map(nearest, sample)]))
    at_best = float(d_best[near].mean())
    gap = float(np.median(values[near]) - values[b])
    return {"neighbours": k, "neighbour_distance": at_best, "typical_distance": typical,
            "density_ratio": at_best / typical if typical > 0 else 1.0, "neighbour_gap": gap, "room": gap / 4,
            "axes": int(x.shape[1]), "numeric_axes": dims, "best": s * float(values[b]), "trial": done[b].number,
            "spread": float(np.median(values) - values[b])}


def evaluation_noise_of(view: StudyData) -> float | None:
    """The evaluation noise of a group's best curve (:func:`curve_noise`): how much its value moves from one
    evaluation to the next. Not trial variance (that is seed to seed); a floor under what a trial's value can
    tell apart when no trial variance is measured."""
    best = view.best()
    c = read_curve(view, best, view.metric, view.sign(), min_points=6) if best is not None else None
    return curve_noise(c[1]) if c is not None else None


def more_trials_for(n: int, room: float, target: float, dims: int) -> int:
    """How many more trials bring ``room`` under ``target``: spacing shrinks as n^(-1/dims) and a bowl's room
    with the square of the spacing, so n' = n (room / target)^(dims / 2); capped at ``MORE_TRIALS_CAP`` x n."""
    if not room > target or n <= 0:
        return 0
    if not target > 0:
        return MORE_TRIALS_CAP * n
    wanted = n * (room / target) ** (max(dims, 1) / 2)
    return int(min(math.ceil(wanted - n), MORE_TRIALS_CAP * n))


@check("sampled_enough", family="sampling", order=130, figure="sampled_enough",
       uses=("sampled_enough_tol", "min_group_trials", "noise_z"))
def check_sampled_enough(data: StudyData, th: Thresholds) -> list[Finding]:
    """Could more sampling change the answer? Per group: the room denser sampling around the best could gain
    (:func:`sampling_around_best`) against the gap to the group just ahead and the measured trial sd.

    A warning says more trials of a group could change the answer (its room exceeds the gap by which it
    trails, and the trial sd when measured); the leader's room never changes who leads. Every finding
    carries ``evidence["more_trials"]``: how many more trials of the group would bring its room under the
    trial sd (when measured; else under ``sampled_enough_tol`` of the spread of its trial values), 0 when
    none are needed (:func:`more_trials_for`; ``evidence["more_trials_how"]`` says how it was computed).
    """
    if len(data.completed) < 2:
        return []
    sd, source = measured_trial_sd(data, th)
    judged = [(g, view, sampling_around_best(view)) for g in groups(data, th.scientific_buckets)
              for view in [group_view(data, g)]]
    s = data.sign()
    bests = {g.label: s * float(view.best().value) for g, view, _ in judged if view.best() is not None}  # type: ignore[union-attr]
    rooms = {g.label: (around or {}).get("room", 0.0) for g, _, around in judged}
    out = []
    for g, view, around in judged:
        n = len(view.completed)
        if around is not None and n >= 3:
            out.append(_sampled_finding(view, g, around, th, _Standing.of(g.label, bests, rooms, around["room"]), sd, source))
        elif n:
            need = max(0, th.min_group_trials - n)
            out.append(Finding(
                "sampled_enough", INFO,
                in_group(g.label) + (f"{n} completed trial(s): too few to judge how densely the best is sampled." if n < 3
                                     else "No nuisance hyperparameter varies in this group: there is no space to sample more densely."),
                f"Run at least {need} more trial(s) of this group." if need else "No action needed for sampling.",
                {"group": g.label, "trials": n, "more_trials": need,
                 "more_trials_how": f"up to min_group_trials ({th.min_group_trials})"},
            ))
    return out


@dataclass(frozen=True)
class _Standing:
    """Where a group stands against the others: the group just ahead of it (for one that trails) or the
    runner-up (for the leader), by how much it trails or leads, and its room less the rival's (``extra``:
    more trials of every group gain each about its room, so what can move the answer is their difference)."""

    rival: str | None
    trails_by: float | None
    leads_by: float | None
    extra: float
    rival_room: float | None

    @staticmethod
    def of(label: str, bests: dict[str, float], rooms: dict[str, float], room: float) -> "_Standing":
        others = {k: v for k, v in bests.items() if k != label}
        ahead = [k for k, v in others.items() if v <= bests[label]]
        rival = (max(ahead, key=lambda k: others[k]) if ahead else
                 min(others, key=lambda k: others[k]) if others else None)
        trails_by = bests[label] - others[rival] if ahead and rival is not None else None
        leads_by = others[rival] - bests[label] if rival is not None and not ahead else None
        rival_room = rooms[rival] if rival is not None else None
        return _Standing(rival, trails_by, leads_by, room - rival_room if rival_room is not None else room, rival_room)

    def could_change(self, room: float, target: float, floor: float) -> bool:
        """Could more trials change the answer: pass the group just ahead, turn a tie into a lead, or (alone)
        move the group's best materially?"""
        if self.trails_by is not None:
            return self.extra > self.trails_by and self.extra > floor
        if self.leads_by is not None:  # the leader: only a tie can change (into a lead)
            return self.leads_by <= floor and self.extra > floor
        return room > target and room > floor


def _why_enough(st: _Standing, floor: float, target_words: str) -> str:
    """Why more trials would not change the answer, in words (``st.extra`` < 0: the rival has the more room)."""
    if st.rival is not None and abs(st.extra) <= floor:
        return f"within {target_words}"
    if st.trails_by is not None:
        return f"less than the {fmt(st.trails_by)} by which it trails" if st.extra >= 0 else "it would only fall further behind"
    if st.leads_by is not None:
        if st.extra >= 0:
            return "it leads, and more sampling would only widen its lead"
        return (f"less than its lead of {fmt(st.leads_by)}" if -st.extra < st.leads_by
                else f"more than its lead of {fmt(st.leads_by)}: see {st.rival}'s finding")
    return f"not more than {target_words}"


def _target(view: StudyData, around: dict[str, Any], th: Thresholds, sd: float | None,
            source: str) -> tuple[float, float, str, float | None]:
    """(floor, target, target in words, evaluation noise): what a trial's value can tell apart (the trial sd,
    else ``noise_z`` standard errors of the evaluation noise) and the room to bring more trials under."""
    noise = evaluation_noise_of(view) if sd is None else None
    floor = sd if sd is not None else th.noise_z * (noise or 0.0)
    if sd is not None:
        return floor, sd, f"the trial sd ({fmt(sd)}, from {source})", noise
    if floor > 0 and floor >= th.sampled_enough_tol * around["spread"]:
        return floor, floor, (f"{th.noise_z:g} x the evaluation noise of its best curve ({fmt(floor)}; "
                              "trial variance is not measured)"), noise
    target = th.sampled_enough_tol * around["spread"]
    return floor, target, f"{th.sampled_enough_tol:.0%} of the spread of its trial values ({fmt(target)})", noise


def _sampled_finding(view: StudyData, g: Group, around: dict[str, Any], th: Thresholds, st: _Standing,
                     sd: float | None, source: str) -> Finding:
    """One group's sampled_enough finding (see :func:`check_sampled_enough`)."""
    n, room, s = len(view.completed), around["room"], view.sign()
    floor, target, target_words, noise = _target(view, around, th, sd, source)
    more = more_trials_for(n, room, target, around["numeric_axes"])
    could = st.could_change(room, target, floor)
    ev: dict[str, Any] = {
        "group": g.label, **around, "trials": n, "room": room, "trial_sd": sd, "trial_sd_source": source or None,
        "evaluation_noise": noise, "trails_by": st.trails_by, "leads_by": st.leads_by, "rival": st.rival,
        "rival_room": st.rival_room,
        "relative_room": st.extra, "could_change_answer": could, "more_trials": more,
        "more_trials_how": (f"n (room / target)^(d/2) - n with n = {n}, room = {fmt(room)}, target = "
                            f"{target_words}, d = {max(around['numeric_axes'], 1)} numeric nuisance axes"
                            + (f"; capped at {MORE_TRIALS_CAP} x n" if more == MORE_TRIALS_CAP * n else "")),
        "gap_in_sd": (st.trails_by / sd) if sd is not None and st.trails_by is not None else None,
    }
    sampled = (f"its best (#{around['trial']}, {fmt(s * around['best'])}) has its {around['neighbours']} nearest trials "
               f"{around['neighbour_distance']:.2f} away in the normalized nuisance space (the typical trial's: "
               f"{around['typical_distance']:.2f}), {fmt(around['neighbour_gap'])} worse on median: sampling between "
               f"them could improve it by about {fmt(room)} (a quarter of that)")
    if st.rival is not None:
        sampled += (f"; {st.rival} could gain about {fmt(st.rival_room)} the same way, so more trials of both would "
                    + (f"gain this group about {fmt(st.extra)} on {st.rival}" if st.extra >= 0 else
                       f"let {st.rival} gain about {fmt(-st.extra)} on this group"))
    then = f" About {more} more trial(s) of this group would bring its room under {target_words}." if more else ""
    where = in_group(g.label)
    if could:
        against = (f"more than the {fmt(st.trails_by)} by which it trails" if st.trails_by is not None
                   else f"more than its lead of {fmt(st.leads_by)}, a tie within {target_words}" if st.leads_by is not None
                   else f"more than {target_words}")
        return Finding(
            "sampled_enough", WARNING,
            where + f"Probably not sampled enough: with {n} trials, {sampled}, {against}"
            + (f" and than {target_words}" if st.trails_by is not None and floor > 0 else "")
            + ": more trials could change the answer." + then,
            "Raise `trials` of this study (it appends the next quasi-random points and keeps the finished ones), "
            "and look at the axis plots for how many trials fall in the good region.",
            ev)
    why = _why_enough(st, floor, target_words)
    return Finding(
        "sampled_enough", INFO,
        where + f"Sampled enough for the answer: with {n} trials, {sampled}; {why}." + then,
        "No action needed for sampling; sample more only if you can afford it." if not more else
        f"Optional: about {more} more trial(s) of this group would sharpen its best.",
        ev)
