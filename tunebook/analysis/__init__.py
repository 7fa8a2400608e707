"""Analysis: data extraction, the playbook's checklist, figures and the report."""

from tunebook.analysis.data import StudyData, TrialRow, load, trials_dataframe
from tunebook.analysis.diagnostics import CHECKS, Finding, Thresholds, run_diagnostics
from tunebook.analysis.report import Report, analyze

__all__ = ["CHECKS", "Finding", "Report", "StudyData", "Thresholds", "TrialRow", "analyze", "load", "run_diagnostics", "trials_dataframe"]
