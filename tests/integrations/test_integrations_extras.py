"""The integrations import their framework lazily and name the extra when it is missing."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import tunebook as tb


@pytest.mark.parametrize(
    "module, hidden, extra",
    [
        ("tunebook.integrations.lightning", "lightning", "lightning"),
        ("tunebook.integrations.huggingface", "transformers", "huggingface"),
        ("tunebook.integrations.huggingface", "accelerate", "huggingface"),
        ("tunebook.integrations.keras", "keras", "keras"),
    ],
)
def test_a_missing_framework_names_its_extra(module, hidden, extra, monkeypatch):
    monkeypatch.setitem(sys.modules, hidden, None)  # `import hidden` now fails as if it were not installed
    monkeypatch.delitem(sys.modules, module, raising=False)
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    with pytest.raises(tb.MissingExtraError, match=rf"pip install 'tunebook\[{extra}\]'"):
        importlib.import_module(module)


def test_importing_tunebook_and_its_integrations_package_imports_no_framework():
    code = ("import sys, tunebook, tunebook.integrations, tunebook.integrations._common; "
            "print(sorted(m for m in ('lightning', 'transformers', 'keras', 'torch', 'jax') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
