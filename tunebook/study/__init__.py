"""Studies: the spec, the training function's reference and the Study handle (one module each).

``tunebook.study`` is the public path: every name below is importable from it. :mod:`.spec` holds
:class:`StudySpec` and what builds and hashes it, :mod:`.train_ref` the ``module:function`` reference that
finds a training function again, :mod:`.handle` the :class:`Study` handle with create, load and resume.
"""

from tunebook.study.handle import (
    Study,
    best_search_trial,
    create_study,
    create_study_from_spec,
    load_study,
    outcome_lines,
    record_train,
    replicate_numbers,
    study_from_spec_file,
)
from tunebook.study.spec import (
    DEFAULT_KEEP_TOP_TRIALS,
    DERIVED_KINDS,
    SPEC_KEYS,
    StudySpec,
    build_spec,
    read_spec_file,
    spec_hash,
)
from tunebook.study.train_ref import resolve_train, train_reference

__all__ = [
    "DEFAULT_KEEP_TOP_TRIALS", "DERIVED_KINDS", "SPEC_KEYS", "Study", "StudySpec", "best_search_trial", "build_spec", "create_study",
    "create_study_from_spec", "load_study", "outcome_lines", "read_spec_file", "record_train", "replicate_numbers",
    "resolve_train", "spec_hash", "study_from_spec_file", "train_reference",
]
