"""TensorBoard: each trial a run directory holding its scalars and its HParams session, together.

Layout under the log directory ``DIR``::

    DIR/<study>/                  the HParams experiment (domains, roles, metrics) -- export only
    DIR/<study>/trial-0007/       trial 7: scalars, session start (hparams) and session end (status)

Hyperparameters are named ``role.name`` (``scientific.weight_decay``,
``nuisance.learning_rate``) so the HParams table groups them by role; their
description says the role. The objective is a metric, and so is
``tunebook/value`` (the trial's best value, written at its best step when the
trial ends): the HParams table shows a tag's *last* value, which for the
objective is not the trial's value.

Unlike ``SummaryWriter.add_hparams`` (which writes the session to a separate
subdirectory, tensorboardX#519), the session summaries go into the trial's own
run directory, so its scalars and hyperparameters are one run. Only the
``tensorboard`` package is needed (no TensorFlow): its protobufs and its
event-file writer. Extra: ``tunebook[tensorboard]``.

Live, ``tb.run(study, train, writers=[writer_factory("runs")])`` streams each
trial as it trains; :func:`export_study` replays a stored study the same way.
"""

from __future__ import annotations

import itertools
import os
import socket
import time
from pathlib import Path
from typing import Any, Mapping

from tunebook.errors import SpecError
from tunebook.integrations.export import replay, require
from tunebook.study import Study
from tunebook.writers import MetricWriter, TrialInfo, WriterFactory

VALUE_TAG = "tunebook/value"
_PURPOSE = "TensorBoard export"


def _modules() -> tuple[Any, Any, Any, Any, Any]:
    require("tensorboard", "tensorboard", _PURPOSE)
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2
    from tensorboard.plugins.hparams import summary_v2 as hp

    return event_pb2, summary_pb2, api_pb2, plugin_data_pb2, hp


def run_directory(directory: str | Path, study: str, number: int) -> Path:
    """The run directory of trial ``number`` of ``study`` under the log directory."""
    return Path(directory) / study / f"trial-{number:04d}"


def hparam_name(name: str, roles: Mapping[str, str]) -> str:
    """``role.name``: how a hyperparameter is named in TensorBoard, CSV and W&B."""
    return f"{roles.get(name, 'fixed')}.{name}"


def _hparam_value(value: Any) -> bool | int | float | str:
    """HParams takes bools, numbers and strings; anything else is shown as text."""
    return value if isinstance(value, (bool, int, float, str)) else str(value)


class EventFile:
    """One TensorBoard event file, written in the caller's thread.

    TensorBoard's ``EventFileWriter`` hands every event to a thread of its own;
    a live writer already runs in tunebook's background thread, so writing the
    records here (TensorBoard's ``RecordWriter``: length, CRC32C, data) halves
    the cost per event and keeps one thread, not two, beside the training loop.
    """

    _count = itertools.count()

    def __init__(self, directory: Path) -> None:
        from tensorboard.compat.proto import event_pb2
        from tensorboard.summary.writer.record_writer import RecordWriter

        directory.mkdir(parents=True, exist_ok=True)
        name = f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}.{os.getpid()}.{next(self._count)}"
        self.path = directory / name
        self._handle = open(self.path, "wb")  # noqa: SIM115 - closed by close()
        self._records = RecordWriter(self._handle)
        self.write(event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2"))
        self.flush()

    def write(self, event: Any) -> None:
        self._records.write(event.SerializeToString())

    def flush(self) -> None:
        if not self._handle.closed:
            self._handle.flush()

    def close(self) -> None:
        if not self._handle.closed:
            self._handle.close()


class TensorBoardWriter(MetricWriter):
    """Writes one trial's scalars and HParams session into its run directory."""

    def __init__(self, directory: str | Path, info: TrialInfo) -> None:
        self._pb = _modules()
        self.info = info
        self.run_dir = run_directory(directory, info.study, info.number)
        self._file = EventFile(self.run_dir)
        self._last_step = 0

    def _add(self, summary: Any, step: int = 0) -> None:
        self._file.write(self._pb[0].Event(wall_time=time.time(), step=step, summary=summary))

    def write_hparams(self, hparams: Mapping[str, Any]) -> None:
        hp = self._pb[4]
        values = {hparam_name(k, self.info.roles): _hparam_value(v) for k, v in hparams.items()}
        trial_id = f"{self.info.study}/trial-{self.info.number:04d}"
        self._add(hp.hparams_pb(values, trial_id=trial_id, start_time_secs=time.time()))

    def write_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
        summary_pb2 = self._pb[1]
        summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=k, simple_value=float(v))
                                             for k, v in scalars.items()])
        self._add(summary, step)
        self._last_step = max(self._last_step, step)

    def write_summary(self, summary: Mapping[str, Any]) -> None:
        _, summary_pb2, api_pb2, plugin_data_pb2, hp = self._pb
        value, state = summary.get("value"), summary.get("state")
        if value is not None:
            step = summary.get("best_step")
            self.write_scalars(self._last_step if step is None else int(step), {VALUE_TAG: float(value)})
        text = f"state: {state}"
        for key in ("infeasible_reason", "error"):
            if summary.get(key):
                text += f"\n{key}: {summary[key]}"
        self._add(_text_summary(summary_pb2, "tunebook/state", text), self._last_step)
        status = api_pb2.STATUS_SUCCESS if state == "completed" else api_pb2.STATUS_FAILURE
        end = plugin_data_pb2.SessionEndInfo(status=status, end_time_secs=time.time())
        from tensorboard.plugins.hparams import metadata

        self._add(hp._summary_pb(metadata.SESSION_END_INFO_TAG, plugin_data_pb2.HParamsPluginData(session_end_info=end)),
                  self._last_step)

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def _text_summary(summary_pb2: Any, tag: str, text: str) -> Any:
    """A text-plugin summary (what ``tf.summary.text`` writes), built from TensorBoard's protobufs."""
    from tensorboard.compat.proto import tensor_pb2, tensor_shape_pb2, types_pb2

    tensor = tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING, string_val=[text.encode()],
                                    tensor_shape=tensor_shape_pb2.TensorShapeProto())
    meta = summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="text"))
    return summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, metadata=meta, tensor=tensor)])


class TensorBoardFactory:
    """Makes a :class:`TensorBoardWriter` per trial; picklable, so it travels to worker processes and Ray tasks."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    def __call__(self, info: TrialInfo) -> MetricWriter:
        return TensorBoardWriter(self.directory, info)


def writer_factory(directory: str | Path) -> WriterFactory:
    """A :data:`~tunebook.writers.WriterFactory` for ``tb.run(..., writers=[...])``: one run directory per trial."""
    _check_directory(directory)
    require("tensorboard", "tensorboard", _PURPOSE)
    return TensorBoardFactory(directory)


def _check_directory(directory: str | Path) -> Path:
    path = Path(directory)
    if path.exists() and not path.is_dir():
        raise SpecError("target", f"{str(path)!r} is a file", "give a log directory for TensorBoard")
    return path


def write_experiment(study: Study, directory: str | Path) -> Path:
    """The HParams experiment of ``study`` (each hyperparameter's domain and role, the metrics) in ``DIR/<study>``."""
    from tunebook.space import Choice, Float, Int

    event_pb2, _, _, _, hp = _modules()
    roles = dict(study.space.roles)
    hparams = []
    for name, param in study.space.params.items():
        domain: Any = None
        if isinstance(param, Float):
            domain = hp.RealInterval(float(param.low), float(param.high))
        elif isinstance(param, Int):
            domain = hp.IntInterval(int(param.low), int(param.high))
        elif isinstance(param, Choice) and len({type(v) for v in param.values}) == 1 and \
                isinstance(param.values[0], (bool, int, float, str)):
            domain = hp.Discrete(list(param.values))
        scale = f", {param.scale} scale" if isinstance(param, (Float, Int)) else ""
        hparams.append(hp.HParam(hparam_name(name, roles), domain, description=f"{roles[name]} hyperparameter{scale}"))
    for name, value in study.space.fixed.items():
        hparams.append(hp.HParam(hparam_name(name, roles), description=f"fixed at {value!r}"))
    metric, mode = study.objective
    metrics = [
        hp.Metric(metric, description=f"the objective ({mode})"),
        hp.Metric(VALUE_TAG, description=f"the trial's best {metric} ({mode}), at its best step"),
    ]
    root = Path(directory) / study.name
    root.mkdir(parents=True, exist_ok=True)
    events = EventFile(root)
    events.write(event_pb2.Event(wall_time=time.time(), summary=hp.hparams_config_pb(hparams, metrics)))
    events.close()
    return root


def export_study(study: Study, directory: str | Path) -> Path:
    """Write every started trial of ``study`` under ``directory``; returns ``DIR/<study>``.

    Refuses a folder that already holds an export of the study (TensorBoard would show every curve twice).
    """
    factory = writer_factory(directory)
    existing = Path(directory) / study.name
    if existing.is_dir() and any(existing.iterdir()):
        raise SpecError("target", f"{str(existing)!r} already holds study {study.name!r}",
                        "export into another folder, or delete that one first")
    root = write_experiment(study, directory)
    replay(study, factory)
    return root
