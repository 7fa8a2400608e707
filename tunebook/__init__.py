"""tunebook: the Deep Learning Tuning Playbook as software.

>>> import tunebook as tb
>>> space = tb.SearchSpace(nuisance={"learning_rate": tb.Float(1e-4, 1.0, scale="log")})
"""

from tunebook.errors import (
    ClaimLost,
    ConfigurationError,
    MissingExtraError,
    SpecError,
    StorageError,
    StorageUnavailable,
    StudyExists,
    StudyNotFound,
    TunebookError,
)
from tunebook.analysis import Finding, Report, Thresholds, analyze
from tunebook.checkpoints import Checkpoint, CheckpointManager
from tunebook.design import Design, get_design, register_design
from tunebook.execution import RunResult, run
from tunebook.space import Choice, Float, Int, SearchSpace
from tunebook.storage import open_storage
from tunebook.study import Study, StudySpec, create_study, load_study
from tunebook.trial import Trial, TrialInfeasible
from tunebook.writers import MetricWriter, TrialInfo, WriterFactory

__version__ = "0.1.0"

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
    "create_study",
    "get_design",
    "load_study",
    "open_storage",
    "register_design",
    "run",
]
