"""tunebook: the Deep Learning Tuning Playbook as software.

>>> import tunebook as tb
>>> space = tb.SearchSpace(nuisance={"learning_rate": tb.Float(1e-4, 1.0, scale="log")})

``import tunebook`` is cheap: each public name is imported from its module the
first time it is used (PEP 562), so ``tunebook --help`` and ``import tunebook``
load neither numpy nor SQLAlchemy, Plotly or rich until a name that needs them
is touched. ``from tunebook import X`` and ``tb.X`` work as before.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: Each public name -> the module that defines it (imported on first use).
_EXPORTS: dict[str, str] = {
    "Checkpoint": "tunebook.checkpoints",
    "CheckpointManager": "tunebook.checkpoints",
    "Finding": "tunebook.analysis",
    "Report": "tunebook.analysis",
    "Thresholds": "tunebook.analysis",
    "analyze": "tunebook.analysis",
    "Choice": "tunebook.space",
    "Float": "tunebook.space",
    "Int": "tunebook.space",
    "SearchSpace": "tunebook.space",
    "ClaimLost": "tunebook.errors",
    "ConfigurationError": "tunebook.errors",
    "MissingExtraError": "tunebook.errors",
    "SpecError": "tunebook.errors",
    "StorageError": "tunebook.errors",
    "StorageUnavailable": "tunebook.errors",
    "StudyExists": "tunebook.errors",
    "StudyNotFound": "tunebook.errors",
    "TunebookError": "tunebook.errors",
    "TrialInfeasible": "tunebook.errors",
    "Design": "tunebook.designs",
    "get_design": "tunebook.designs",
    "register_design": "tunebook.designs",
    "RunResult": "tunebook.execution",
    "run": "tunebook.execution",
    "open_storage": "tunebook.storage",
    "Study": "tunebook.study",
    "StudySpec": "tunebook.study",
    "create_study": "tunebook.study",
    "load_study": "tunebook.study",
    "Trial": "tunebook.trial",
    "MetricWriter": "tunebook.writers",
    "TrialInfo": "tunebook.writers",
    "WriterFactory": "tunebook.writers",
    "NextStudy": "tunebook.procedures.next",
    "next_study": "tunebook.procedures.next",
    "create_next": "tunebook.procedures.next",
    "PursueResult": "tunebook.procedures.pursue",
    "pursue": "tunebook.procedures.pursue",
}

__all__ = [
    "Checkpoint",
    "CheckpointManager",
    "Choice",
    "ClaimLost",
    "ConfigurationError",
    "Design",
    "Finding",
    "Float",
    "Int",
    "MetricWriter",
    "MissingExtraError",
    "NextStudy",
    "PursueResult",
    "Report",
    "RunResult",
    "SearchSpace",
    "SpecError",
    "StorageError",
    "StorageUnavailable",
    "Study",
    "StudyExists",
    "StudyNotFound",
    "StudySpec",
    "Thresholds",
    "Trial",
    "TrialInfeasible",
    "TrialInfo",
    "TunebookError",
    "WriterFactory",
    "analyze",
    "create_next",
    "create_study",
    "get_design",
    "load_study",
    "next_study",
    "open_storage",
    "pursue",
    "register_design",
    "run",
]  # the keys of _EXPORTS (tests/test_startup.py checks), written out for linters and type checkers

if TYPE_CHECKING:  # the real imports, for type checkers and IDEs
    from tunebook.analysis import Finding, Report, Thresholds, analyze
    from tunebook.checkpoints import Checkpoint, CheckpointManager
    from tunebook.designs import Design, get_design, register_design
    from tunebook.errors import ClaimLost, ConfigurationError, MissingExtraError, SpecError, StorageError, StorageUnavailable, StudyExists, StudyNotFound, TrialInfeasible, TunebookError
    from tunebook.execution import RunResult, run
    from tunebook.procedures.next import NextStudy, create_next, next_study
    from tunebook.procedures.pursue import PursueResult, pursue
    from tunebook.space import Choice, Float, Int, SearchSpace
    from tunebook.storage import open_storage
    from tunebook.study import Study, StudySpec, create_study, load_study
    from tunebook.trial import Trial
    from tunebook.writers import MetricWriter, TrialInfo, WriterFactory


def __getattr__(name: str) -> Any:
    """Import a public name (or a submodule, ``tb.analysis``) on first use and keep it on the package."""
    module = _EXPORTS.get(name)
    if module is not None:
        value = getattr(importlib.import_module(module), name)
    elif not name.startswith("__"):
        try:
            value = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise  # the submodule exists but one of its own imports is missing
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
