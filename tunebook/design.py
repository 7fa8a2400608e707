"""Trial designs: which hyperparameter points a study runs.

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
through its own group's range. The joint design, grids and replicates refuse it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Protocol, runtime_checkable

from tunebook.errors import SpecError
from tunebook.space import Choice, Param, SearchSpace

if TYPE_CHECKING:  # numpy is imported where a design is computed: a worker that only claims needs none
    import numpy as np

#: Stored with every study. Trials are materialized at creation, so a stored
#: study re-opens identically whatever this says; it tells which code extended it.
GENERATOR_VERSION = "tunebook-design/1 (scipy.stats.qmc.Halton scramble=True; balanced choices)"

DESIGNS = ("quasi_random", "random", "grid", "replicates")
SCIENTIFIC_DESIGNS = ("crossed", "joint")
MAX_GRID_DIMS = 2


@dataclass(frozen=True)
class DesignPoint:
    """One trial of a design: values of the varied hyperparameters and a seed."""

    params: dict[str, Any]
    seed: int
    point: int  # index of the nuisance point (equal across a crossed group)


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


def trial_seed(study_seed: int, point: int) -> int:
    """The training seed of nuisance point ``point`` (shared by a crossed group)."""
    import numpy as np

    return int(np.random.SeedSequence([study_seed, point]).generate_state(1)[0] & 0x7FFFFFFF)


def _sequence(
    params: dict[str, Param], n: int, seed: int, start: int, design: str,
    using: dict[str, Param] | None = None,
) -> list[dict[str, Any]]:
    """``n`` points of the sequence design over ``params``, from index ``start``.

    With ``using`` (a conditional group's own nuisance), the sequence still runs
    over every dimension of ``params`` but each point keeps only the names in
    ``using``, mapped through its ranges: groups sharing a name share its
    coordinate (paired), and each group's points are a projection of one sequence.
    """
    names = list(params)
    numeric = [k for k in names if not isinstance(params[k], Choice)]
    sample = halton if design == "quasi_random" else pseudo_random
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


def materialize(
    space: SearchSpace,
    trials: int,
    seed: int,
    *,
    design: str = "quasi_random",
    scientific_design: str = "crossed",
    start: int = 0,
    grid_force: bool = False,
) -> list[DesignPoint]:
    """Trials ``start .. trials-1`` of a study's design.

    >>> from tunebook.space import Float
    >>> space = SearchSpace(scientific={"wd": Choice([0, 1])}, nuisance={"lr": Float(0.1, 1)})
    >>> pts = materialize(space, 4, seed=0)
    >>> [p.params["wd"] for p in pts], pts[0].params["lr"] == pts[1].params["lr"]
    ([0, 1, 0, 1], True)
    """
    if design not in DESIGNS:
        raise SpecError("design", f"unknown design {design!r}", f"use one of {', '.join(DESIGNS)}")
    if scientific_design not in SCIENTIFIC_DESIGNS:
        raise SpecError(
            "scientific_design", f"unknown value {scientific_design!r}", "use 'crossed' or 'joint'"
        )
    if space.conditional and design not in ("quasi_random", "random"):
        raise SpecError("design", f"{design} does not support conditional spaces", "use design: quasi_random")
    if space.conditional and scientific_design != "crossed":
        raise SpecError("scientific_design", f"{scientific_design} does not support conditional spaces "
                        "(each scientific value has its own nuisance)", "use scientific_design: crossed")
    if design == "replicates":  # one configuration, a different seed per trial (trial variance)
        return [DesignPoint({}, trial_seed(seed, i), i) for i in range(start, trials)]
    if design == "grid":
        points = grid_points(space.params, trials, grid_force)
        return [DesignPoint(p, trial_seed(seed, i), i) for i, p in enumerate(points)][start:]
    if scientific_design == "joint" or not space.scientific:
        points = _sequence(space.params, trials - start, seed, start, design)
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
        _sequence(dims, last - first, seed, first, design) if dims else [{} for _ in range(last - first)])
    per_group = [
        shared if shared is not None else _sequence(dims, last - first, seed, first, design, using=space.nuisance_for(group))
        for group in groups
    ]
    out = []
    for offset in range(last - first):
        point = first + offset
        for group, points in zip(groups, per_group):
            out.append(DesignPoint({**group, **points[offset]}, trial_seed(seed, point), point))
    # start may fall inside a group only when a study is resumed mid-group; keep exact indices.
    return out[start - first * k:]


# --- the Design protocol and its registry -------------------------------------------


@runtime_checkable
class Design(Protocol):
    """How a study chooses its trials. Register one with :func:`register_design`.

    A design either *materializes* all its points when the study is created
    (and extends them when the budget grows), or *proposes* them one at a
    time as the study runs, from the history (``proposes = True``): the worker
    loop asks :meth:`propose` when nothing is pending, inside the store's
    transaction that assigns the trial's number and seed.
    """

    name: str
    #: True: trials are proposed as the study runs, nothing is materialized at creation.
    proposes: bool
    #: False: a stored study of this design cannot grow its budget.
    extendable: bool

    def materialize(
        self,
        space: SearchSpace,
        trials: int,
        seed: int,
        *,
        scientific_design: str = "crossed",
        start: int = 0,
        grid_force: bool = False,
    ) -> list[DesignPoint]:
        """Trials ``start .. trials-1`` (empty for a proposing design)."""
        ...

    def propose(self, study: Any, number: int) -> dict[str, Any] | None:
        """The varied hyperparameters of trial ``number`` of ``study`` (a proposing design only)."""
        ...

    def sampler_for(self, sampler: str | None) -> str | None:
        """The spec's ``sampler`` checked (and defaulted) for this design; :class:`SpecError` if it takes none."""
        ...


_REGISTRY: dict[str, Design] = {}
#: Built-in designs that live in their own module (imported on first use: they pull optional packages).
_BUILTIN_MODULES = {"bayesian": "tunebook.bayesian"}


def register_design(name: str) -> Callable[[type], type]:
    """Class decorator: register an instance of the class under ``name``.

    >>> @register_design("my-design")
    ... class Mine(MaterializedDesign):
    ...     pass
    >>> get_design("my-design").name
    'my-design'
    >>> unregister_design("my-design")
    """

    def decorate(cls: type) -> type:
        instance = cls()
        instance.name = name
        _REGISTRY[name] = instance
        return cls

    return decorate


def unregister_design(name: str) -> None:
    """Remove design ``name`` from the registry (for tests and plugins that reload)."""
    _REGISTRY.pop(name, None)


def design_names() -> tuple[str, ...]:
    """Every design a study can name: the registered ones and the built-in ones not imported yet."""
    return tuple(dict.fromkeys([*_REGISTRY, *_BUILTIN_MODULES]))


def get_design(name: str) -> Design:
    """The registered design ``name``; :class:`SpecError` naming the known ones otherwise."""
    if isinstance(name, str) and name not in _REGISTRY and name in _BUILTIN_MODULES:
        import importlib

        importlib.import_module(_BUILTIN_MODULES[name])  # registers itself
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise SpecError("design", f"unknown design {name!r}", f"use one of {', '.join(design_names())}") from None


class MaterializedDesign:
    """A design whose points are all known at creation: wraps :func:`materialize`."""

    name = ""
    proposes = False
    extendable = True

    def materialize(
        self,
        space: SearchSpace,
        trials: int,
        seed: int,
        *,
        scientific_design: str = "crossed",
        start: int = 0,
        grid_force: bool = False,
    ) -> list[DesignPoint]:
        return materialize(space, trials, seed, design=self.name, scientific_design=scientific_design,
                           start=start, grid_force=grid_force)

    def propose(self, study: Any, number: int) -> dict[str, Any] | None:
        raise NotImplementedError(f"design {self.name!r} materializes its trials; it does not propose")

    def sampler_for(self, sampler: str | None) -> str | None:
        if sampler is not None:
            raise SpecError("sampler", "only a bayesian study has a sampler", "add design: bayesian, or remove sampler")
        return None

    def __repr__(self) -> str:
        return f"<design {self.name!r}>"


@register_design("quasi_random")
class QuasiRandomDesign(MaterializedDesign):
    """Scrambled Halton points, balanced choices (the exploration default)."""


@register_design("random")
class RandomDesign(MaterializedDesign):
    """Uniform pseudo-random points (prefix-stable)."""


@register_design("grid")
class GridDesign(MaterializedDesign):
    """A full grid over 1-2 hyperparameters; cannot be extended."""

    extendable = False


@register_design("replicates")
class ReplicatesDesign(MaterializedDesign):
    """One configuration, a different seed per trial (trial variance)."""


class ProposingDesign:
    """A design that proposes each trial from the history as the study runs."""

    name = ""
    proposes = True
    extendable = True

    def materialize(
        self,
        space: SearchSpace,
        trials: int,
        seed: int,
        *,
        scientific_design: str = "crossed",
        start: int = 0,
        grid_force: bool = False,
    ) -> list[DesignPoint]:
        return []

    def propose(self, study: Any, number: int) -> dict[str, Any] | None:  # pragma: no cover - abstract
        raise NotImplementedError

    def sampler_for(self, sampler: str | None) -> str | None:
        return sampler

    def __repr__(self) -> str:
        return f"<design {self.name!r}>"


def propose_next(study: Any) -> int | None:
    """Add the next trial of a proposing design atomically; returns its number, None at the budget.

    Number, training seed and point are assigned in one store transaction
    (:meth:`~tunebook.storage.base.Storage.propose_trial`): two workers asking
    at once get different numbers, different seeds and see each other's point.
    """
    design = get_design(study.design)
    if not design.proposes:
        return None

    def propose(number: int, study_seed: int) -> tuple[dict[str, Any], int] | None:
        point = design.propose(study, number)
        return None if point is None else (point, trial_seed(study_seed, number))

    return study.storage.propose_trial(study.id, propose)
