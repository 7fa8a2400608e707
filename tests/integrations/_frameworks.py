"""Shared by the framework integration tests (Lightning, Keras, Hugging Face): what the report shows of a trial."""

from __future__ import annotations

import math

import tunebook as tb
from tunebook.storage.base import TrialRecord


def assert_curves_in_report(study: tb.Study, trial: TrialRecord, expected: dict[str, list[int]]) -> None:
    """The report of ``study`` draws ``trial``'s curve of each metric in ``expected`` at exactly the steps given,
    every value finite."""
    shown = [f.data for f in tb.analyze(study).figures if f.kind == "curves"]
    for metric, steps in expected.items():
        got = [c for cs in shown if cs.metric == metric for label, c in cs.curves.items() if f"#{trial.number}" in label]
        assert got, f"no curve of {metric} for trial #{trial.number} in the report"
        assert all(s == steps and all(math.isfinite(v) for v in values) for s, values in got), (metric, got)
