"""The replicates design: one configuration, a different seed per trial (trial variance)."""

from __future__ import annotations

from tunebook.designs.base import DesignPoint, MaterializedDesign, register_design, trial_seed
from tunebook.space import SearchSpace


@register_design("replicates", fixed_only=True)
class ReplicatesDesign(MaterializedDesign):
    """Every trial runs the study's fixed configuration with its own seed."""

    def materialize(self, space: SearchSpace, trials: int, seed: int, *, scientific_design: str = "crossed",
                    start: int = 0, grid_force: bool = False) -> list[DesignPoint]:
        return [DesignPoint({}, trial_seed(seed, i), i) for i in range(start, trials)]
