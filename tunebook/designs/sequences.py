"""Sequence designs: quasi-random (the exploration default) and random points.

The playbook prefers quasi-random search in the exploration phase ("Why use
quasi-random search instead of more sophisticated black box optimization
algorithms"): scrambled Halton points (Owen's randomization, arXiv 1706.03200),
here from :class:`scipy.stats.qmc.Halton` with ``scramble=True`` and a stored
seed. Numeric dimensions take Halton coordinates. Categorical dimensions take a
*balanced* assignment instead (each block of ``n`` consecutive trials is a
seeded permutation of the ``n`` values), so that every value is run equally
often, within one, at any prefix of the study; a Halton coordinate cut into
``n`` bins is only balanced when ``n`` matches its base.

Designs extend: asking for more trials of the same study appends the next
points of the same sequences and leaves earlier trials untouched.

The **crossed** design (default) gives every combination of scientific values
the same quasi-random nuisance points and the same seeds: a paired comparison.
The **joint** design puts the scientific dimensions into the sequence.

A **conditional** space (each value of a scientific choice with its own
nuisance subspace) is crossed: every group gets the same number of trials,
the same seeds, and one scrambled sequence over the shared nuisance plus every
conditional name once (sorted by name), so two groups' hyperparameters of the same name (Adam's
and SGD's ``learning_rate``) take the same quasi-random coordinate, each mapped
through its own group's range.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any, Callable

from tunebook.designs.base import DesignPoint, MaterializedDesign, register_design, trial_seed
from tunebook.errors import SpecError
from tunebook.space import Choice, Param, SearchSpace

if TYPE_CHECKING:  # numpy is imported where a design is computed: a worker that only claims needs none
    import numpy as np

#: ``sample(n, d, seed, start)``: points ``start .. start+n-1`` of a sequence in ``[0, 1)^d``.
Sampler = Callable[[int, int, int, int], "np.ndarray"]


def halton(n: int, d: int, seed: int, start: int = 0) -> np.ndarray:
    """Points ``start .. start+n-1`` of a scrambled Halton sequence in ``[0, 1)^d``."""
    import numpy as np
    from scipy.stats import qmc

    if n <= 0 or d == 0:
        return np.zeros((max(n, 0), d))
    sampler = qmc.Halton(d=d, scramble=True, rng=np.random.default_rng(seed))
    if start:
        sampler.fast_forward(start)
    return sampler.random(n)


def pseudo_random(n: int, d: int, seed: int, start: int = 0) -> np.ndarray:
    """Uniform pseudo-random points; prefix-stable, so designs extend like Halton."""
    import numpy as np

    rng = np.random.default_rng(seed)
    return rng.random((start + max(n, 0), d))[start:]


def balanced_choice(index: int, n_values: int, seed: int, dim: int) -> int:
    """Which of ``n_values`` values trial ``index`` takes: a seeded permutation per block."""
    import numpy as np

    block, offset = divmod(index, n_values)
    order = np.random.default_rng([seed, dim, block]).permutation(n_values)
    return int(order[offset])


def sequence(
    params: dict[str, Param], n: int, seed: int, start: int, sample: Sampler,
    using: dict[str, Param] | None = None,
) -> list[dict[str, Any]]:
    """``n`` points of the sequence ``sample`` over ``params``, from index ``start``.

    With ``using`` (a conditional group's own nuisance), the sequence still runs
    over every dimension of ``params`` but each point keeps only the names in
    ``using``, mapped through its ranges: groups sharing a name share its
    coordinate (paired), and each group's points are a projection of one sequence.
    """
    names = list(params)
    numeric = [k for k in names if not isinstance(params[k], Choice)]
    unit = sample(n, len(numeric), seed, start)
    points = []
    for row in range(n):
        index = start + row
        values: dict[str, Any] = {}
        for dim, name in enumerate(names):
            param = params[name] if using is None else using.get(name)
            if param is None:
                continue
            if isinstance(param, Choice):
                values[name] = param.values[balanced_choice(index, len(param.values), seed, dim)]
            else:
                values[name] = param.from_unit(float(unit[row, numeric.index(name)]))
        points.append(values)
    return points


def scientific_combinations(space: SearchSpace) -> list[dict[str, Any]]:
    """Every combination of scientific values (the crossed design's groups)."""
    for name, param in space.scientific.items():
        if not isinstance(param, Choice):
            raise SpecError(
                f"search_space.scientific.{name}",
                "the crossed design needs listed scientific values",
                "write {choice: [...]}, or set scientific_design: joint",
            )
    names = list(space.scientific)
    return [dict(zip(names, combo)) for combo in itertools.product(*(space.scientific[k].values for k in names))]


def sequence_points(
    space: SearchSpace, trials: int, seed: int, sample: Sampler, *, scientific_design: str = "crossed", start: int = 0,
) -> list[DesignPoint]:
    """Trials ``start .. trials-1`` of a sequence design, crossed (paired groups) or joint."""
    if scientific_design == "joint" or not space.scientific:
        points = sequence(space.params, trials - start, seed, start, sample)
        return [DesignPoint(p, trial_seed(seed, start + i), start + i) for i, p in enumerate(points)]

    groups = scientific_combinations(space)
    k = len(groups)
    if trials % k:
        lower, upper = trials - trials % k, trials - trials % k + k
        raise SpecError(
            "trials",
            f"{trials} is not a multiple of the {k} scientific combinations (crossed design)",
            f"use trials: {upper}" + (f" or {lower}" if lower else ""),
        )
    first, last = start // k, trials // k
    # One sequence over the shared nuisance, then every conditional name once, sorted (a name in several
    # groups is one dimension: paired; the order of the entries does not matter, as for the stored spec's
    # hash); each group keeps its own names, through its own ranges.
    conditional = space.conditional_params
    dims = {**space.nuisance, **{name: conditional[name] for name in sorted(conditional)}}
    shared = None if space.conditional else (
        sequence(dims, last - first, seed, first, sample) if dims else [{} for _ in range(last - first)])
    per_group = [
        shared if shared is not None else sequence(dims, last - first, seed, first, sample, using=space.nuisance_for(group))
        for group in groups
    ]
    out = []
    for offset in range(last - first):
        point = first + offset
        for group, points in zip(groups, per_group):
            out.append(DesignPoint({**group, **points[offset]}, trial_seed(seed, point), point))
    # start may fall inside a group only when a study is resumed mid-group; keep exact indices.
    return out[start - first * k:]


@register_design("quasi_random", conditional=True, replicated=True)
class QuasiRandomDesign(MaterializedDesign):
    """Scrambled Halton points, balanced choices (the exploration default)."""

    def materialize(self, space: SearchSpace, trials: int, seed: int, *, scientific_design: str = "crossed",
                    start: int = 0, grid_force: bool = False) -> list[DesignPoint]:
        return sequence_points(space, trials, seed, halton, scientific_design=scientific_design, start=start)


@register_design("random", conditional=True, replicated=True)
class RandomDesign(MaterializedDesign):
    """Uniform pseudo-random points (prefix-stable)."""

    def materialize(self, space: SearchSpace, trials: int, seed: int, *, scientific_design: str = "crossed",
                    start: int = 0, grid_force: bool = False) -> list[DesignPoint]:
        return sequence_points(space, trials, seed, pseudo_random, scientific_design=scientific_design, start=start)
