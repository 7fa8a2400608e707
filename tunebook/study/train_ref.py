"""The training function's reference: ``module:function`` or ``path/to/file.py:function``, the text that
finds the function again in another process or on another day (:func:`resolve_train`), made from a function
when it can be imported again (:func:`train_reference`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable

from tunebook import specio
from tunebook.errors import SpecError


def resolve_train(ref: str, base_dir: str | Path | None = None) -> Callable[..., Any]:
    """Import ``module:function`` or ``path/to/file.py:function``."""
    import importlib
    import importlib.util
    import sys

    if not isinstance(ref, str) or ref.count(":") != 1:
        raise SpecError("train", f"expected 'module:function', got {ref!r}", "e.g. train: tunebook.workloads.digits:train")
    specio.check_train_ref(ref)  # identifiers or a .py file, printable
    module_name, func_name = ref.split(":")
    base = Path(base_dir) if base_dir else Path.cwd()
    try:
        if module_name.endswith(".py"):
            path = (base / module_name).resolve()
            if not path.exists():
                raise SpecError("train", f"file {str(path)!r} does not exist", "fix the path before ':'")
            specio.check_train_path(path)
            # Importable by name too, so that worker processes can unpickle the function.
            if str(path.parent) not in sys.path:
                sys.path.insert(0, str(path.parent))
            spec = importlib.util.spec_from_file_location(path.stem, path)
            module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
            module.__tunebook_file__ = True  # type: ignore[attr-defined]  # executors ship it by value
            sys.modules.setdefault(path.stem, module)
            spec.loader.exec_module(module)  # type: ignore[union-attr]
        else:
            if str(base) not in sys.path:
                sys.path.insert(0, str(base))
            module = importlib.import_module(module_name)
    except SpecError:
        raise
    except (Exception, SystemExit) as exc:  # a syntax error, anything raised at import, sys.exit
        raise specio.import_error(exc, module_name, (base / module_name).resolve() if module_name.endswith(".py") else None) from None
    func = getattr(module, func_name, None)
    if not callable(func):
        raise SpecError("train", f"{module_name!r} has no function {func_name!r}", "name a function defined there")
    return func


def train_reference(func: Callable[..., Any]) -> str | None:
    """``module:function`` (or ``/abs/path/file.py:function``) that imports ``func`` again, or None (a lambda, a local)."""
    import importlib
    import sys

    name = getattr(func, "__name__", None)
    module_name = getattr(func, "__module__", None)
    if not name or not module_name or getattr(func, "__qualname__", name) != name or name.startswith("<"):
        return None
    module = sys.modules.get(module_name)
    file = getattr(module, "__file__", None)
    if module_name == "__main__" or getattr(module, "__tunebook_file__", False):
        if not file or not str(file).endswith(".py") or getattr(module, name, None) is not func:
            return None
        if module_name == "__main__" and not _has_main_guard(Path(file)):
            return None  # importing the script again would run it again
        return f"{Path(file).resolve()}:{name}"
    try:
        found = getattr(importlib.import_module(module_name), name, None)
    except Exception:  # noqa: BLE001 - not importable again: nothing to record
        return None
    if found is not func:
        return None
    if "." not in module_name and file and str(file).endswith(".py") and not _on_every_path(Path(file)):
        # a top-level module found only because of where this process runs (its working folder, its script's
        # folder, a test runner's sys.path): by its path, so that `tunebook retrain NAME` run from elsewhere
        # imports it too
        return f"{Path(file).resolve()}:{name}"
    return f"{module_name}:{name}"


def _on_every_path(file: Path) -> bool:
    """Would a fresh interpreter started anywhere find the top-level module ``file``: does it sit in
    site-packages (user or system), the standard library or a ``$PYTHONPATH`` folder?"""
    import os
    import site
    import sysconfig

    folders = {*site.getsitepackages(), site.getusersitepackages(),
               *(sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")),
               *(p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p)}
    here = file.resolve().parent
    return any(Path(f).resolve() == here for f in folders if f)


def _has_main_guard(path: Path) -> bool:
    """Does the script keep its top-level work under ``if __name__ == "__main__":``?"""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return False
    return re.search(r"^if\s+__name__\s*==\s*['\"]__main__['\"]\s*:", text, re.MULTILINE) is not None
