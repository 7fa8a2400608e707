"""MLflow: the study as a parent run, each trial a child run.

In an MLflow experiment (``tunebook`` unless told otherwise), the study is a
parent run tagged ``tunebook.study=<name>`` and ``tunebook.storage=<store>``;
each trial attempt is a child run (tag ``mlflow.parentRunId``) with:

- params: the trial's hyperparameters, each with a tag ``tunebook.role.<name>``
  saying its role (MLflow params carry no tags of their own);
- metrics with their steps, plus ``tunebook.value`` at the trial's best step;
- tags ``tunebook.trial``, ``tunebook.seed``, ``tunebook.attempt``,
  ``tunebook.state``, ``tunebook.best_step``, ``tunebook.infeasible_reason``,
  ``tunebook.error``; the run status is FINISHED (completed, infeasible),
  FAILED (failed) or KILLED (stopped before it ended: it is resumed as a new
  attempt).

Parallel workers share one parent (mlflow#12639, optuna#5148): the parent is
found by its tags, created when missing, and when two workers create one at
the same moment every worker settles on the same one (the earliest created,
ties by run id); a worker whose parent lost moves its children to the winner
and deletes its own. Extra: ``tunebook[mlflow]``.
"""

from __future__ import annotations

import time
from typing import Any, Mapping

from tunebook.errors import SpecError
from tunebook.integrations.export import replay, require, study_rows
from tunebook.study import Study
from tunebook.writers import MetricWriter, TrialInfo, WriterFactory

_PURPOSE = "MLflow export"
PARENT_RUN_ID = "mlflow.parentRunId"
DEFAULT_EXPERIMENT = "tunebook"
_BATCH = 500  # metrics per log_batch call (MLflow accepts at most 1000)
_STATUS = {"completed": "FINISHED", "infeasible": "FINISHED", "failed": "FAILED"}


def _client(uri: str) -> Any:
    require("mlflow", "mlflow", _PURPOSE)
    from mlflow.tracking import MlflowClient

    if not isinstance(uri, str) or not uri:
        raise SpecError("target", f"expected an MLflow tracking URI, got {uri!r}",
                        "e.g. sqlite:///mlflow.db, a folder, or http://host:5000")
    return MlflowClient(tracking_uri=uri)


#: Seconds an MLflow server has to answer the check made before an export or a run (``check_target``).
CHECK_TIMEOUT = 5.0


def check_target(uri: str, timeout: float = CHECK_TIMEOUT) -> None:
    """Before anything is exported or run: the tracking URI is one MLflow can open, and a server behind it
    answers within ``timeout`` seconds (MLflow's own client retries for minutes). Raises :class:`SpecError`."""
    import os
    from urllib.parse import urlparse

    require("mlflow", "mlflow", _PURPOSE)
    if not isinstance(uri, str) or not uri:
        raise SpecError("target", f"expected an MLflow tracking URI, got {uri!r}",
                        "e.g. sqlite:///mlflow.db, a folder, or http://host:5000")
    fix = "start the tracking server, or give another URI (e.g. sqlite:///mlflow.db or a folder)"
    if urlparse(uri).scheme.lower() in ("http", "https"):
        _ping(uri, timeout, fix)
    from mlflow.exceptions import MlflowException

    bounded = {"MLFLOW_HTTP_REQUEST_TIMEOUT": str(max(1, int(timeout))), "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}
    saved = {k: os.environ.get(k) for k in bounded}
    os.environ.update(bounded)
    try:
        _client(uri).search_experiments(max_results=1)
    except MlflowException as exc:
        first = str(exc.message if hasattr(exc, "message") else exc).strip().splitlines()
        raise SpecError("target", f"{uri!r}: {first[0].split('. ')[0] if first else type(exc).__name__}", fix) from None
    except Exception as exc:  # noqa: BLE001 - a driver's or the network's error about this URI
        first = str(exc).strip().splitlines()
        raise SpecError("target", f"{uri!r}: {type(exc).__name__}: {first[0] if first else ''}", fix) from None
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _ping(uri: str, timeout: float, fix: str) -> None:
    """One HTTP request to the server's ``/health`` within ``timeout`` seconds: any answer will do."""
    import socket
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout):  # noqa: S310 - the user's URI
            pass
    except urllib.error.HTTPError:
        return  # it answered
    except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        text = "did not answer within " + f"{timeout:g} s" if isinstance(reason, (socket.timeout, TimeoutError)) \
            else f"cannot be reached ({getattr(reason, 'strerror', None) or reason})"
        raise SpecError("target", f"server {uri} {text}", fix) from None


def _experiment_id(client: Any, name: str) -> str:
    """The MLflow experiment ``name``, created when missing (two workers may race: the store keeps one)."""
    from mlflow.exceptions import MlflowException

    found = client.get_experiment_by_name(name)
    if found is not None:
        if found.lifecycle_stage == "deleted":
            client.restore_experiment(found.experiment_id)
        return found.experiment_id
    try:
        return client.create_experiment(name)
    except MlflowException:
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


def _parents(client: Any, experiment_id: str, study: str, store: str) -> list[Any]:
    from mlflow.entities import ViewType

    query = (f"tags.`tunebook.kind` = 'study' and tags.`tunebook.study` = '{_quote(study)}' "
             f"and tags.`tunebook.storage` = '{_quote(store)}'")
    runs = client.search_runs([experiment_id], filter_string=query, run_view_type=ViewType.ACTIVE_ONLY, max_results=100)
    return sorted(runs, key=lambda r: (r.info.start_time, r.info.run_id))


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'")


def parent_run(client: Any, experiment_id: str, info: TrialInfo) -> str:
    """The study's parent run id: found by its tags, else created; every worker agrees on the earliest."""
    from mlflow.utils.mlflow_tags import MLFLOW_RUN_NAME

    store = info.storage_id or "-"
    existing = _parents(client, experiment_id, info.study, store)
    if existing:
        return existing[0].info.run_id
    tags = {"tunebook.kind": "study", "tunebook.study": info.study, "tunebook.storage": store,
            "tunebook.goal": info.goal[:5000], "tunebook.objective": f"{info.objective[0]} ({info.objective[1]})",
            MLFLOW_RUN_NAME: info.study}
    mine = client.create_run(experiment_id, tags=tags).info.run_id
    return settle_parent(client, experiment_id, info.study, store, mine)


def settle_parent(client: Any, experiment_id: str, study: str, store: str, mine: str) -> str:
    """Which parent wins (the earliest); a losing parent of ours has its children moved and is deleted."""
    runs = _parents(client, experiment_id, study, store)
    winner = runs[0].info.run_id if runs else mine
    if winner != mine:
        for child in client.search_runs([experiment_id], filter_string=f"tags.`{PARENT_RUN_ID}` = '{mine}'"):
            client.set_tag(child.info.run_id, PARENT_RUN_ID, winner)
        client.delete_run(mine)
    return winner


class MLflowWriter(MetricWriter):
    """One trial attempt as a child run of the study's parent run."""

    def __init__(self, uri: str, info: TrialInfo, *, experiment: str | None = None, client: Any = None,
                 parent_id: str | None = None) -> None:
        from mlflow.utils.mlflow_tags import MLFLOW_RUN_NAME

        self.client = client or _client(uri)
        self.info = info
        self.experiment_id = _experiment_id(self.client, experiment or DEFAULT_EXPERIMENT)
        self.parent_id = parent_id or parent_run(self.client, self.experiment_id, info)
        tags = {PARENT_RUN_ID: self.parent_id, "tunebook.kind": "trial", "tunebook.study": info.study,
                "tunebook.storage": info.storage_id or "-", "tunebook.trial": str(info.number),
                "tunebook.seed": str(info.seed), "tunebook.attempt": str(info.attempt),
                MLFLOW_RUN_NAME: f"trial-{info.number:04d}" + (f"-attempt-{info.attempt}" if info.attempt > 1 else "")}
        self.run_id = self.client.create_run(self.experiment_id, tags=tags).info.run_id
        self._pending: list[Any] = []
        self._last_step = 0
        self._status: str | None = None

    def write_hparams(self, hparams: Mapping[str, Any]) -> None:
        from mlflow.entities import Param, RunTag

        params = [Param(k, str(v)[:6000]) for k, v in hparams.items()]
        tags = [RunTag(f"tunebook.role.{k}", self.info.roles.get(k, "fixed")) for k in hparams]
        for begin in range(0, max(len(params), len(tags)), 100):
            self.client.log_batch(self.run_id, params=params[begin:begin + 100], tags=tags[begin:begin + 100])

    def write_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self._pending.extend(Metric(k, float(v), now, int(step)) for k, v in scalars.items())
        self._last_step = max(self._last_step, int(step))
        if len(self._pending) >= _BATCH:
            self.flush()

    def write_summary(self, summary: Mapping[str, Any]) -> None:
        value, best_step = summary.get("value"), summary.get("best_step")
        if value is not None:
            self.write_scalars(self._last_step if best_step is None else int(best_step), {"tunebook.value": float(value)})
        self.flush()
        state = str(summary.get("state"))
        for key in ("state", "best_step", "infeasible_reason", "error"):
            if summary.get(key) is not None:
                self.client.set_tag(self.run_id, f"tunebook.{key}", str(summary[key])[:5000])
        self._status = _STATUS.get(state, "FAILED")

    def flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[:_BATCH], self._pending[_BATCH:]
            self.client.log_batch(self.run_id, metrics=batch)

    def close(self) -> None:
        self.flush()
        # A run that ended without a summary was stopped (preempted, interrupted): it resumes as a new attempt.
        self.client.set_terminated(self.run_id, self._status or "KILLED")
        settled = settle_parent(self.client, self.experiment_id, self.info.study, self.info.storage_id or "-",
                                self.parent_id)
        if settled != self.parent_id:
            self.client.set_tag(self.run_id, PARENT_RUN_ID, settled)


class MLflowFactory:
    """Makes an :class:`MLflowWriter` per trial attempt; picklable (the client is made again in each process)."""

    def __init__(self, uri: str, experiment: str | None = None) -> None:
        self.uri, self.experiment = uri, experiment
        self._client: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {"uri": self.uri, "experiment": self.experiment, "_client": None}

    def __call__(self, info: TrialInfo) -> MetricWriter:
        if self._client is None:
            self._client = _client(self.uri)
        return MLflowWriter(self.uri, info, experiment=self.experiment, client=self._client)


def writer_factory(uri: str, experiment: str | None = None) -> WriterFactory:
    """A :data:`~tunebook.writers.WriterFactory` for ``tb.run(..., writers=[...])``: a child run per trial attempt.

    ``experiment`` names the MLflow experiment (default: ``tunebook``).
    """
    _client(uri)  # fail early on a missing extra or a bad URI
    return MLflowFactory(uri, experiment)


def export_study(study: Study, uri: str, experiment: str | None = None) -> str:
    """Export ``study`` to the tracking store at ``uri``; returns the parent run's id.

    Exporting again adds only the trials not exported as finished yet (found by tags).
    """
    client = _client(uri)
    experiment = experiment or DEFAULT_EXPERIMENT
    experiment_id = _experiment_id(client, experiment)
    from tunebook.integrations.export import trial_info

    rows = study_rows(study)
    info0 = trial_info(study, rows[0]) if rows else None
    if info0 is None:
        raise SpecError("study", f"study {study.name!r} has no trials", "run it first")
    parent_id = parent_run(client, experiment_id, info0)
    done = {
        r.data.tags.get("tunebook.trial")
        for r in client.search_runs([experiment_id], filter_string=f"tags.`{PARENT_RUN_ID}` = '{parent_id}'",
                                    max_results=50000)
        if "tunebook.state" in r.data.tags
    }

    def make(info: TrialInfo) -> MetricWriter:
        return MLflowWriter(uri, info, experiment=experiment, client=client, parent_id=parent_id)

    replay(study, make, skip=lambda t: str(t.number) in done)
    client.set_terminated(parent_id, "FINISHED" if study.is_finished() else "RUNNING")
    return parent_id
