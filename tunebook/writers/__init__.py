"""Metric writers: one contract (:mod:`.base`), value conversion (:mod:`.convert`), the store and
objective writers (:mod:`.store`), the asynchronous writer (:mod:`.asynchronous`) and fan-out
(:mod:`.fanout`); one file each.

The metric-writer interface, in the manner of CLU's ``metric_writers``.

A :class:`MetricWriter` receives a trial's metrics as host floats, already
converted off the training thread: ``write_hparams`` once when the trial
starts, ``write_scalars(step, {...})`` for each logged step, ``write_summary``
once when the trial ends (state, value, best step, reason), then ``close``.
``flush`` makes what was written durable.

The store is one writer among others; exporters (TensorBoard, MLflow, W&B)
are others, made per trial by a :data:`WriterFactory` from a
:class:`TrialInfo`. Wrappers: an asynchronous one (the training thread only
appends; a background thread with an injectable clock converts and writes)
and a fan-out one (one write reaches several writers).
"""

from tunebook.writers.asynchronous import AsyncWriter, WriterThread
from tunebook.writers.base import MetricWriter, TrialInfo, WriterFactory
from tunebook.writers.convert import BadValue, check_rules, to_floats
from tunebook.writers.fanout import FanOutWriter
from tunebook.writers.store import ObjectiveWriter, StoreWriter

__all__ = [
    "AsyncWriter",
    "BadValue",
    "FanOutWriter",
    "MetricWriter",
    "ObjectiveWriter",
    "StoreWriter",
    "TrialInfo",
    "WriterFactory",
    "WriterThread",
    "check_rules",
    "to_floats",
]
