"""Weights & Biases: one run per trial attempt, grouped by study, offline unless told otherwise.

Each run is ``wandb.init(project=..., group=<study>, name="trial-0007",
job_type="trial", config=...)`` where the config carries the roles: one
section per role (``config["nuisance"]["learning_rate"]``, shown as
``nuisance.learning_rate``) and a ``tunebook`` section (study, trial number,
seed, attempt, objective, goal). Scalars are logged at their steps; the run
summary gets ``tunebook/value``, ``tunebook/best_step``, ``tunebook/state``
and the reason of an infeasible or failed trial (W&B steps only increase, so
the best value cannot be logged back at its step).

Runs are written offline by default (``mode="offline"``, under ``DIR/wandb``;
upload them later with ``wandb sync``): exporting never needs the network.
Extra: ``tunebook[wandb]``.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Any, Iterator, Mapping

from tunebook.errors import SpecError
from tunebook.integrations.export import replay, require
from tunebook.study import Study
from tunebook.writers import MetricWriter, TrialInfo, WriterFactory

_PURPOSE = "W&B export"
DEFAULT_PROJECT = "tunebook"


def config_of(info: TrialInfo) -> dict[str, Any]:
    """The run config: the hyperparameters by role, and the trial's identity."""
    config: dict[str, Any] = {"scientific": {}, "nuisance": {}, "fixed": {}}
    for name, value in info.params.items():
        config.setdefault(info.roles.get(name, "fixed"), {})[name] = value
    config["tunebook"] = {"study": info.study, "trial": info.number, "seed": info.seed, "attempt": info.attempt,
                          "objective": {"metric": info.objective[0], "mode": info.objective[1]}, "goal": info.goal,
                          "roles": dict(info.roles)}
    return config


class WandbWriter(MetricWriter):
    """One trial attempt as one W&B run (offline by default)."""

    def __init__(self, directory: str | Path, info: TrialInfo, *, project: str = DEFAULT_PROJECT,
                 mode: str = "offline") -> None:
        wandb = require("wandb", "wandb", _PURPOSE)
        self.info = info
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        name = f"trial-{info.number:04d}" + (f"-attempt-{info.attempt}" if info.attempt > 1 else "")
        settings = wandb.Settings(silent=True, console="off", x_disable_stats=True, save_code=False)
        self.run = wandb.init(project=project, group=info.study, job_type="trial", name=name, dir=str(directory),
                              mode=mode, config=config_of(info), reinit="create_new", settings=settings,
                              tags=[info.study])
        self._finished = False
        self._exit_code = 1  # a run closed without a summary was stopped (it resumes as a new attempt)

    def write_hparams(self, hparams: Mapping[str, Any]) -> None:
        """Already in the run's config (from the TrialInfo); values written here win."""
        updates: dict[str, dict[str, Any]] = {}
        for name, value in hparams.items():
            updates.setdefault(self.info.roles.get(name, "fixed"), {})[name] = value
        for role, values in updates.items():
            self.run.config.update({role: {**(self.run.config.get(role) or {}), **values}}, allow_val_change=True)

    def write_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
        self.run.log({k: float(v) for k, v in scalars.items()}, step=int(step))

    def write_summary(self, summary: Mapping[str, Any]) -> None:
        for key in ("state", "value", "best_step", "infeasible_reason", "error"):
            if summary.get(key) is not None:
                self.run.summary[f"tunebook/{key}"] = summary[key]
        self._exit_code = 1 if summary.get("state") == "failed" else 0

    def close(self) -> None:
        if not self._finished:
            self._finished = True
            self.run.finish(exit_code=self._exit_code)


class WandbFactory:
    """Makes a :class:`WandbWriter` per trial attempt; picklable, so it travels to worker processes and Ray tasks."""

    def __init__(self, directory: str | Path, project: str = DEFAULT_PROJECT, mode: str = "offline") -> None:
        self.directory, self.project, self.mode = Path(directory), project, mode

    def __call__(self, info: TrialInfo) -> MetricWriter:
        return WandbWriter(self.directory, info, project=self.project, mode=self.mode)


def writer_factory(directory: str | Path, project: str = DEFAULT_PROJECT, mode: str = "offline") -> WriterFactory:
    """A :data:`~tunebook.writers.WriterFactory` for ``tb.run(..., writers=[...])``: a W&B run per trial attempt."""
    _check(directory, mode)
    require("wandb", "wandb", _PURPOSE)
    return WandbFactory(directory, project, mode)


def _check(directory: str | Path, mode: str) -> None:
    if Path(directory).exists() and not Path(directory).is_dir():
        raise SpecError("target", f"{str(directory)!r} is a file", "give a folder for the W&B runs")
    if mode not in ("offline", "online"):
        raise SpecError("mode", f"unknown W&B mode {mode!r}", "use 'offline' (default) or 'online'")


def export_study(study: Study, directory: str | Path, project: str = DEFAULT_PROJECT, mode: str = "offline") -> Path:
    """One W&B run per started trial of ``study`` under ``DIR/wandb``; returns that folder."""
    wandb = require("wandb", "wandb", _PURPOSE)
    replay(study, writer_factory(directory, project, mode))
    # run.finish() can return before wandb's service has flushed the last run file; teardown waits for it.
    wandb.teardown()
    return Path(directory) / "wandb"


# Reading offline runs back (what `wandb sync` uploads) ------------------------------------------
_HEADER = b":W&B" + struct.pack("<HB", 0xBEE1, 0)
_BLOCK = 32768
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def offline_runs(directory: str | Path) -> list[Path]:
    """The ``.wandb`` files of the offline runs under ``DIR/wandb``, oldest first."""
    return sorted(Path(directory).glob("wandb/offline-run-*/run-*.wandb"))


def read_records(path: str | Path) -> Iterator[Any]:
    """The records (``wandb.proto.wandb_internal_pb2.Record``) of one ``.wandb`` file.

    The file is a LevelDB-style log (as wandb's own ``datastore`` read it
    before it moved to Go): a 7-byte header, then 32 KiB blocks of chunks,
    each ``crc32 (4) | length (2) | type (1) | data``, a record being one FULL
    chunk or FIRST, MIDDLE..., LAST.
    """
    require("wandb", "wandb", _PURPOSE)
    from wandb.proto import wandb_internal_pb2

    raw = Path(path).read_bytes()
    if not raw.startswith(_HEADER[:6]):
        raise SpecError("path", f"{str(path)!r} is not a W&B run file", "give a run-*.wandb file")
    pos, pending = len(_HEADER), b""
    while pos + 7 <= len(raw):
        left_in_block = _BLOCK - pos % _BLOCK
        if left_in_block < 7:  # the block's tail is padding
            pos += left_in_block
            continue
        checksum, length, kind = struct.unpack("<IHB", raw[pos:pos + 7])
        data = raw[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind == 0 and length == 0:
            continue
        if zlib.crc32(bytes([kind]) + data) & 0xFFFFFFFF != checksum:
            raise SpecError("path", f"{str(path)!r} has a corrupt record at byte {pos}", "re-export the run")
        if kind == _FULL:
            pending = data
        elif kind == _FIRST:
            pending = data
            continue
        elif kind == _MIDDLE:
            pending += data
            continue
        else:
            pending += data
        record = wandb_internal_pb2.Record()
        record.ParseFromString(pending)
        pending = b""
        yield record


def read_offline_run(path: str | Path) -> dict[str, Any]:
    """A run file as plain data: ``name``, ``group``, ``config``, ``history`` ({metric: [(step, value)]}), ``summary``."""
    import json

    out: dict[str, Any] = {"name": None, "group": None, "config": {}, "history": {}, "summary": {}, "exit_code": None}

    def apply_config(items: Any) -> None:
        for item in items:
            if item.key != "_wandb":
                out["config"][item.key] = json.loads(item.value_json)

    for record in read_records(path):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            out["name"], out["group"] = record.run.display_name, record.run.run_group
            apply_config(record.run.config.update)
        elif kind == "config":
            apply_config(record.config.update)
        elif kind == "history":
            values = {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in record.history.item}
            step = int(values.pop("_step", record.history.step.num))
            for key, value in values.items():
                if not key.startswith("_"):
                    out["history"].setdefault(key, []).append((step, value))
        elif kind == "summary":
            for item in record.summary.update:
                key = item.key or "/".join(item.nested_key)
                if not key.startswith("_"):
                    out["summary"][key] = json.loads(item.value_json)
        elif kind == "exit":
            out["exit_code"] = record.exit.exit_code
    return out

