"""Jupyter display: HTML for a report, a study and a trial (``_repr_html_`` of Report, Study and Trial).

``report_html(report)`` shows the answer to the study's goal first, then the
findings and the figures (Plotly's JavaScript embedded once, so an exported
notebook opens offline); ``study_html(study)`` a summary and the best trials;
``trial_html(trial)`` a trial's hyperparameters by role and its curves.
"""

from tunebook.analysis.jupyter import report_html
from tunebook.display import answer_html, study_html, trial_html

__all__ = ["answer_html", "report_html", "study_html", "trial_html"]
