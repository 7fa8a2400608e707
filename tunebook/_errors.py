"""Kept for old imports: the error classes live in :mod:`tunebook.errors`."""

from tunebook.errors import MissingExtraError, SpecError

__all__ = ["MissingExtraError", "SpecError"]
