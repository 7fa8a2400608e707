"""The grid design: every choice value, numeric axes evenly spaced (ends included), over 1-2 dimensions."""

from __future__ import annotations

import itertools
from typing import Any

from tunebook.designs.base import DesignPoint, MaterializedDesign, register_design, trial_seed
from tunebook.errors import SpecError
from tunebook.space import Choice, Param, SearchSpace

MAX_GRID_DIMS = 2


def _linspace01(n: int) -> list[float]:
    """``numpy.linspace(0.0, 1.0, n)``, bit for bit, without numpy."""
    step = 1.0 / (n - 1)
    return [i * step for i in range(n - 1)] + [1.0]


def grid_points(params: dict[str, Param], trials: int, force: bool = False) -> list[dict[str, Any]]:
    """A full grid: every choice value, numeric axes evenly spaced (ends included)."""
    if len(params) > MAX_GRID_DIMS and not force:
        raise SpecError(
            "design",
            f"a grid over {len(params)} hyperparameters wastes trials (the playbook keeps grids to 1-2 dims)",
            "use design: quasi_random, or set grid_force: true",
        )
    import math

    fixed_count = math.prod(len(p.values) for p in params.values() if isinstance(p, Choice))
    numeric = [k for k, p in params.items() if not isinstance(p, Choice)]
    per_axis = round((trials / fixed_count) ** (1 / len(numeric))) if numeric else 1
    total = fixed_count * per_axis ** len(numeric)
    if total != trials or per_axis < 1:
        raise SpecError(
            "trials",
            f"{trials} trials do not fill a grid over {list(params)}",
            f"use trials: {max(total, fixed_count)}",
        )
    axes = []
    for param in params.values():
        if isinstance(param, Choice):
            axes.append(list(param.values))
        else:
            ticks = [0.5] if per_axis == 1 else _linspace01(per_axis)
            axes.append([param.from_unit(float(u)) for u in ticks])
    return [dict(zip(params, combo)) for combo in itertools.product(*axes)]


@register_design("grid", extendable=False)
class GridDesign(MaterializedDesign):
    """A full grid over 1-2 hyperparameters; cannot be extended."""

    def materialize(self, space: SearchSpace, trials: int, seed: int, *, scientific_design: str = "crossed",
                    start: int = 0, grid_force: bool = False) -> list[DesignPoint]:
        points = grid_points(space.params, trials, grid_force)
        return [DesignPoint(p, trial_seed(seed, i), i) for i, p in enumerate(points)][start:]
