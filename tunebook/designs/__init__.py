"""Trial designs: which hyperparameter points a study runs.

One contract (:mod:`tunebook.designs.base`: :class:`Design`, the registry with
each design's capabilities, :class:`History`), one file per built-in design:
:mod:`~tunebook.designs.sequences` (quasi_random, random),
:mod:`~tunebook.designs.grid`, :mod:`~tunebook.designs.replicates` and
:mod:`~tunebook.designs.bayesian` (imported on first use: it needs Optuna).
"""

from __future__ import annotations

from tunebook.designs import sequences, grid, replicates  # noqa: F401  (each registers its design, in this order)
from tunebook.designs.base import (
    GENERATOR_VERSION,
    SCIENTIFIC_DESIGNS,
    Capabilities,
    Design,
    DesignPoint,
    History,
    MaterializedDesign,
    PastTrial,
    ProposingDesign,
    check_space,
    design_names,
    get_design,
    materialize,
    register_design,
    sampler_for,
    trial_seed,
    unregister_design,
)

__all__ = [
    "GENERATOR_VERSION", "SCIENTIFIC_DESIGNS", "Capabilities", "Design", "DesignPoint", "History",
    "MaterializedDesign", "PastTrial", "ProposingDesign", "check_space", "design_names", "get_design",
    "materialize", "register_design", "sampler_for", "trial_seed", "unregister_design",
]
