"""Analysis: data extraction, the playbook's checklist, figures and the report."""

from tunebook.analysis.answer import GoalAnswer, GroupResult
from tunebook.analysis.checks import CHECKS, REGISTRY, Finding, Thresholds, check, run_checks
from tunebook.analysis.data import StudyData, TrialRow, load, trials_dataframe
from tunebook.analysis.report import Report, analyze

__all__ = ["CHECKS", "REGISTRY", "Finding", "GoalAnswer", "GroupResult", "Report", "StudyData", "Thresholds", "TrialRow",
           "analyze", "check", "load", "run_checks", "trials_dataframe"]
