"""`import tunebook` and `tunebook --help` stay light: the heavy libraries load only when a name needs them.

Each check runs a fresh interpreter and asserts on the modules it imported (never on time).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("numpy", "scipy", "sqlalchemy", "plotly", "torch")


def _python(code: str) -> dict:
    """Run ``code`` in a fresh interpreter with this checkout first on the path; it prints one JSON object."""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


_LOADED = "import json, sys; print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))"


def test_import_tunebook_leaves_heavy_modules_out():
    loaded = _python("import tunebook\n" + _LOADED.format(heavy=HEAVY))
    assert loaded == []


def test_help_imports_no_heavy_module():
    code = ("import contextlib, io\nfrom tunebook.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
            "    try:\n        main(['--help'])\n    except SystemExit as exit:\n        assert exit.code == 0\n"
            "assert 'COMMAND' in out.getvalue()\n" + _LOADED.format(heavy=HEAVY + ("rich",)))
    assert _python(code) == []


@pytest.mark.parametrize("verb", ["run", "ls", "report", "export", "import"])
def test_verb_help_imports_no_heavy_module(verb):
    code = ("import contextlib, io\nfrom tunebook.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            f"    try:\n        main([{verb!r}, '--help'])\n    except SystemExit as exit:\n        assert exit.code == 0\n"
            + _LOADED.format(heavy=HEAVY))
    assert _python(code) == []


def test_public_names_resolve_lazily_and_stay():
    code = """
import json, sys
import tunebook as tb
before = 'numpy' in sys.modules
names = {name: getattr(tb, name).__module__ if hasattr(getattr(tb, name), '__module__') else None for name in tb.__all__}
from tunebook import SearchSpace, Float, run, Study
assert tb.SearchSpace is SearchSpace and tb.run is run
assert set(tb.__all__) <= set(dir(tb)) and '__version__' in dir(tb)
import tunebook.analysis
assert tb.analysis is tunebook.analysis
try:
    tb.no_such_name
except AttributeError as exc:
    missing = str(exc)
print(json.dumps({"before": before, "names": sorted(names), "missing": missing}))
"""
    out = _python(code)
    assert out["before"] is False
    import tunebook

    assert out["names"] == sorted(tunebook.__all__)
    assert "no_such_name" in out["missing"]


def test_exports_map_every_public_name_to_its_module():
    import tunebook

    assert sorted(tunebook._EXPORTS) == sorted(tunebook.__all__)
    for name, module in tunebook._EXPORTS.items():
        assert getattr(sys.modules.get(module) or __import__(module, fromlist=[name]), name) is getattr(tunebook, name)


def test_python_m_tunebook_help_runs():
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, "-m", "tunebook", "--help"], env=env, cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    for verb in ("run", "worker", "status", "ls", "report", "export", "import"):
        assert verb in out.stdout
