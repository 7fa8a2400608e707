"""Exporters import their libraries lazily and name the extra when one is missing."""

from __future__ import annotations

import subprocess
import sys

import pytest

MODULES = ["export", "trackers", "tabular", "tensorboard", "mlflow", "wandb", "optuna_import", "cli_export"]
HEAVY = ["tensorboard", "mlflow", "wandb", "optuna", "pyarrow", "torch"]


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_importing_the_integrations_imports_no_heavy_library():
    imports = "; ".join(f"import tunebook.integrations.{m}" for m in MODULES)
    result = _python(f"import sys; {imports}; print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("module, library, extra, call", [
    ("tensorboard", "tensorboard", "tensorboard", "writer_factory('runs')"),
    ("mlflow", "mlflow", "mlflow", "writer_factory('sqlite:///m.db')"),
    ("wandb", "wandb", "wandb", "writer_factory('wb')"),
    ("optuna_import", "optuna", "bo", "plan_import('sqlite:///o.db', 's')"),
])
def test_a_missing_library_names_its_extra(module, library, extra, call):
    code = (f"import sys; sys.modules[{library!r}] = None\n"
            f"from tunebook.integrations.{module} import *\n"
            f"from tunebook.integrations import {module} as m\n"
            f"try:\n    m.{call}\nexcept Exception as exc:\n    print(type(exc).__name__, exc)")
    result = _python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("MissingExtraError") and f"pip install 'tunebook[{extra}]'" in result.stdout


def test_parquet_without_pyarrow_names_its_extra(tmp_path):
    code = (f"import sys; sys.modules['pyarrow'] = None\n"
            f"from tests._exports import make_study\n"
            f"from tunebook.integrations import export\n"
            f"s = make_study('sqlite:///{tmp_path}/t.db', trials=2)\n"
            f"try:\n    export.to_parquet(s, '{tmp_path}/t.parquet')\nexcept Exception as exc:\n    print(type(exc).__name__, exc)")
    result = _python(code)
    assert result.returncode == 0, result.stderr
    assert "MissingExtraError" in result.stdout and "tunebook[parquet]" in result.stdout


def test_writer_factories_pickle_for_worker_processes(tmp_path):
    import pickle

    pytest.importorskip("mlflow")
    from tunebook.integrations import mlflow, tensorboard
    from tunebook.writers import TrialInfo

    factory = mlflow.writer_factory(f"sqlite:///{tmp_path / 'm.db'}")
    copy = pickle.loads(pickle.dumps(factory))
    writer = copy(TrialInfo(study="s", number=0, seed=0, params={}))
    writer.close()
    pickle.loads(pickle.dumps(factory))  # still picklable once it holds a client
    assert pickle.loads(pickle.dumps(tensorboard.writer_factory(tmp_path))).directory == tmp_path
