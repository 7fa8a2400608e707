"""The design contract: what a design is, what it is told, and the registry.

A design decides which hyperparameter points a study runs. It either
*materializes* all its points when the study is created (and appends the next
ones when the budget grows), or *proposes* them one at a time as the study runs,
from a :class:`History` of the study's trials (the worker loop asks when nothing
is pending, inside the store's transaction that assigns the trial's number and
seed).

A design's capabilities are given when it is registered
(``@register_design("grid", extendable=False)``) and read from the registry,
never from a list kept elsewhere: whether it proposes, whether a stored study
can grow its budget, which samplers it takes, whether it runs conditional
spaces, whether a space with nothing varying is allowed.

This module imports no study, trial, storage or runner: a design sees plain
values (:class:`SearchSpace`, :class:`History`) and returns plain values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Protocol, runtime_checkable

from tunebook.errors import SpecError
from tunebook.space import SearchSpace

#: Stored with every study. Trials are materialized at creation, so a stored
#: study re-opens identically whatever this says; it tells which code extended it.
GENERATOR_VERSION = "tunebook-design/1 (scipy.stats.qmc.Halton scramble=True; balanced choices)"

SCIENTIFIC_DESIGNS = ("crossed", "joint")


@dataclass(frozen=True)
class DesignPoint:
    """One trial of a design: values of the varied hyperparameters and a seed."""

    params: dict[str, Any]
    seed: int
    point: int  # index of the nuisance point (equal across a crossed group)


@dataclass(frozen=True)
class PastTrial:
    """One trial as a design sees it: its number, the hyperparameters it ran with, its seed and outcome."""

    number: int
    params: Mapping[str, Any]
    seed: int
    state: str  # pending, running, completed, infeasible or failed
    value: float | None = None


@dataclass(frozen=True)
class History:
    """What a proposing design is told: the study's space, seed and direction, and the trials so far.

    ``trials`` are the study's own (every state; ``params`` as stored, without
    the fixed values); ``prior`` are the trials of the study it warm-starts from
    (its ``parent``), each with that study's fixed values merged in, so that a
    point of this study's space can name them.
    """

    space: SearchSpace
    seed: int
    mode: str  # "min" or "max"
    trials: tuple[PastTrial, ...] = ()
    prior: tuple[PastTrial, ...] = ()
    sampler: str | None = None

    def having(self, *states: str) -> list[PastTrial]:
        """The study's trials in ``states``."""
        return [t for t in self.trials if t.state in states]


def trial_seed(study_seed: int, point: int) -> int:
    """The training seed of nuisance point ``point`` (shared by a crossed group)."""
    import numpy as np

    return int(np.random.SeedSequence([study_seed, point]).generate_state(1)[0] & 0x7FFFFFFF)


@dataclass(frozen=True)
class Capabilities:
    """What a design can do, given when it is registered."""

    #: trials are proposed as the study runs; nothing is materialized at creation
    proposes: bool = False
    #: a stored study of this design can grow its budget
    extendable: bool = True
    #: the samplers the spec's ``sampler`` may name, the default first (empty: the design takes none)
    samplers: tuple[str, ...] = ()
    #: runs a conditional space (each scientific value with its own nuisance)
    conditional: bool = False
    #: accepts a space with nothing varying (every value fixed)
    fixed_only: bool = False
    #: has the replicate phase: each group's best re-run with new seeds after the search (spec ``replicates``)
    replicated: bool = False


@runtime_checkable
class Design(Protocol):
    """How a study chooses its trials. Register one with :func:`register_design`."""

    name: str
    capabilities: Capabilities

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

    def propose(self, history: History, number: int) -> dict[str, Any] | None:
        """The varied hyperparameters of trial ``number`` given ``history`` (a proposing design only)."""
        ...


class MaterializedDesign:
    """Base of a design whose points are all known at creation (subclasses implement ``materialize``)."""

    name = ""
    capabilities = Capabilities()

    @property
    def proposes(self) -> bool:
        return self.capabilities.proposes

    @property
    def extendable(self) -> bool:
        return self.capabilities.extendable

    def materialize(
        self,
        space: SearchSpace,
        trials: int,
        seed: int,
        *,
        scientific_design: str = "crossed",
        start: int = 0,
        grid_force: bool = False,
    ) -> list[DesignPoint]:  # pragma: no cover - abstract
        raise NotImplementedError

    def propose(self, history: History, number: int) -> dict[str, Any] | None:
        raise NotImplementedError(f"design {self.name!r} materializes its trials; it does not propose")

    def __repr__(self) -> str:
        return f"<design {self.name!r}>"


class ProposingDesign(MaterializedDesign):
    """Base of a design that proposes each trial from the history (register it with ``proposes=True``)."""

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

    def propose(self, history: History, number: int) -> dict[str, Any] | None:  # pragma: no cover - abstract
        raise NotImplementedError


# --- the registry ---------------------------------------------------------------------

_REGISTRY: dict[str, Design] = {}
#: Built-in designs that live in their own module (imported on first use: they pull optional packages).
_BUILTIN_MODULES = {"bayesian": "tunebook.designs.bayesian"}


def register_design(
    name: str,
    *,
    proposes: bool = False,
    extendable: bool = True,
    samplers: tuple[str, ...] = (),
    conditional: bool = False,
    fixed_only: bool = False,
    replicated: bool = False,
) -> Callable[[type], type]:
    """Class decorator: register an instance of the class under ``name``, with its capabilities.

    >>> @register_design("my-design", extendable=False)
    ... class Mine(MaterializedDesign):
    ...     pass
    >>> get_design("my-design").capabilities.extendable
    False
    >>> unregister_design("my-design")
    """
    capabilities = Capabilities(proposes=proposes, extendable=extendable, samplers=tuple(samplers),
                                conditional=conditional, fixed_only=fixed_only, replicated=replicated)

    def decorate(cls: type) -> type:
        instance = cls()
        instance.name = name
        instance.capabilities = capabilities
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


def sampler_for(design: Design, sampler: str | None) -> str | None:
    """The spec's ``sampler`` checked against the design's and defaulted (None for a design that takes none)."""
    samplers = design.capabilities.samplers
    if not samplers:
        if sampler is not None:
            raise SpecError("sampler", f"only a {_with_samplers()} study has a sampler",
                            f"add design: {_with_samplers()}, or remove sampler")
        return None
    sampler = sampler or samplers[0]
    if sampler not in samplers:
        raise SpecError("sampler", f"unknown sampler {sampler!r}", f"use one of {', '.join(samplers)}")
    return sampler


def _with_samplers() -> str:
    get_design("bayesian")  # built-in designs register themselves on first use
    return " or ".join(n for n, d in _REGISTRY.items() if d.capabilities.samplers) or "proposing"


def check_space(design: Design, space: SearchSpace, scientific_design: str) -> None:
    """Refuse, in one line, a space or scientific design that ``design`` cannot run."""
    if scientific_design not in SCIENTIFIC_DESIGNS:
        raise SpecError("scientific_design", f"unknown value {scientific_design!r}", "use 'crossed' or 'joint'")
    if space.conditional and not design.capabilities.conditional:
        yet = " yet" if design.capabilities.proposes else ""
        raise SpecError("design", f"{design.name} does not support conditional spaces{yet}", "use design: quasi_random")
    if space.conditional and scientific_design != "crossed":
        raise SpecError("scientific_design", f"{scientific_design} does not support conditional spaces "
                        "(each scientific value has its own nuisance)", "use scientific_design: crossed")


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
    """Trials ``start .. trials-1`` of the registered design ``design``, its space checked first.

    >>> from tunebook.space import Choice, Float
    >>> space = SearchSpace(scientific={"wd": Choice([0, 1])}, nuisance={"lr": Float(0.1, 1)})
    >>> pts = materialize(space, 4, seed=0)
    >>> [p.params["wd"] for p in pts], pts[0].params["lr"] == pts[1].params["lr"]
    ([0, 1, 0, 1], True)
    """
    chosen = get_design(design)
    check_space(chosen, space, scientific_design)
    return chosen.materialize(space, trials, seed, scientific_design=scientific_design, start=start,
                              grid_force=grid_force)

