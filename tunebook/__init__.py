"""tunebook: the Deep Learning Tuning Playbook as software.

>>> import tunebook as tb
>>> space = tb.SearchSpace(nuisance={"learning_rate": tb.Float(1e-4, 1.0, scale="log")})
"""

from tunebook.errors import ClaimLost, MissingExtraError, SpecError, StorageError, TunebookError
from tunebook.analysis import Finding, Report, Thresholds, analyze
from tunebook.execution import RunResult, run
from tunebook.space import Choice, Float, Int, SearchSpace
from tunebook.storage import open_storage
from tunebook.study import Study, create_study, load_study
from tunebook.trial import Checkpoint, Trial, TrialInfeasible

__version__ = "0.1.0"

__all__ = [
    "Checkpoint",
    "Finding",
    "Report",
    "Thresholds",
    "analyze",
    "Choice",
    "ClaimLost",
    "Float",
    "Int",
    "MissingExtraError",
    "RunResult",
    "SearchSpace",
    "SpecError",
    "StorageError",
    "Study",
    "Trial",
    "TrialInfeasible",
    "TunebookError",
    "create_study",
    "load_study",
    "open_storage",
    "run",
]
