"""Kept for old imports: the checklist lives in :mod:`tunebook.analysis.checks` (a registry, one module per family)."""

from tunebook.analysis.checks import *  # noqa: F401,F403
from tunebook.analysis.checks import __all__  # noqa: F401
from tunebook.analysis.checks.base import CheckFn  # noqa: F401
