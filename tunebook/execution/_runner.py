"""Kept for old imports: the worker loop lives in :mod:`tunebook.execution.loop`."""

from tunebook.execution.loop import (  # noqa: F401
    DEFAULT_STALE_AFTER,
    WorkerStop,
    claim_next,
    default_checkpoint_root,
    install_worker_signals,
    is_out_of_memory,
    run_trial,
    worker_id_for,
    worker_loop,
)

_is_out_of_memory = is_out_of_memory
