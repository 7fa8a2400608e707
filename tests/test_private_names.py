"""No tunebook module reads a private name (``_name``) of another tunebook module.

A name that another module needs is public (documented, kept stable) or moves to where it is used. Read from
the source with :mod:`ast` (nothing is imported), three ways a private name crosses a module's edge:

- ``from tunebook.x import _name`` (a function, a class, a constant) and ``tunebook.x._name`` through an
  imported module;
- a private module (``tunebook.pkg._common``) imported from outside its package ``tunebook.pkg``;
- ``obj._name`` where ``obj`` is not ``self``/``cls`` and ``_name`` is defined in another tunebook module only
  (an attribute or a method of a class there), e.g. ``trial._writers`` read by a runner.
"""

from __future__ import annotations

import ast
from pathlib import Path

import tunebook

ROOT = Path(tunebook.__file__).parent


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _modules() -> dict[str, tuple[Path, ast.Module]]:
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = ("tunebook", *path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = (path, ast.parse(path.read_text(encoding="utf-8"), str(path)))
    return out


def _defined_private(tree: ast.Module) -> set[str]:
    """Private names a module defines: functions, classes, methods, assignments, ``self._x = ...``."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return {n for n in names if _private(n)}


def _inside(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def crossings(modules: dict[str, tuple[Path, ast.Module]]) -> list[str]:
    defined = {name: _defined_private(tree) for name, (_, tree) in modules.items()}
    elsewhere: dict[str, set[str]] = {}
    for name, names in defined.items():
        for n in names:
            elsewhere.setdefault(n, set()).add(name)
    found: list[str] = []
    for name, (path, tree) in modules.items():
        where = f"{path.relative_to(ROOT.parent)}"
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        aliases: dict[str, str] = {}  # local name -> tunebook module it stands for
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                source = node.module or ""
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    source = ".".join([*base, *([source] if source else [])])
                if not _inside(source, "tunebook"):
                    continue
                parts = source.split(".")
                for i, part in enumerate(parts):
                    if _private(part) and not _inside(name, ".".join(parts[:i])):
                        found.append(f"{where}:{node.lineno}: imports the private module {source}")
                for alias in node.names:
                    full = f"{source}.{alias.name}"
                    if full in modules:
                        aliases[alias.asname or alias.name] = full
                        if _private(alias.name) and not _inside(name, source):
                            found.append(f"{where}:{node.lineno}: imports the private module {full}")
                    elif _private(alias.name) and source != name:
                        found.append(f"{where}:{node.lineno}: from {source} import {alias.name}")
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if _inside(alias.name, "tunebook"):
                        aliases[alias.asname or alias.name] = alias.name if alias.asname else "tunebook"
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Attribute) and _private(node.attr)):
                continue
            chain, value = [], node.value
            while isinstance(value, ast.Attribute):
                chain.append(value.attr)
                value = value.value
            if not isinstance(value, ast.Name):
                continue
            if value.id in aliases:
                target = ".".join([aliases[value.id], *reversed(chain)])
                if target in modules and target != name:
                    found.append(f"{where}:{node.lineno}: reads {target}.{node.attr}")
                continue
            if value.id in ("self", "cls") and not chain:
                continue
            owners = elsewhere.get(node.attr, set())
            if owners and node.attr not in defined[name]:
                found.append(f"{where}:{node.lineno}: reads {value.id}.{node.attr} ({node.attr} is defined in "
                             f"{', '.join(sorted(owners))})")
    return found


def test_no_module_reads_a_private_name_of_another():
    found = crossings(_modules())
    assert not found, "private names read across modules (make them public, or move them):\n" + "\n".join(found)


def test_the_check_sees_each_kind_of_crossing():
    """The three kinds of crossing, on small modules parsed here: each is found, and a module's own is not."""
    src = {
        "tunebook.a": "def _helper(): pass\nclass T:\n    def __init__(self):\n        self._writers = []\n",
        "tunebook.pkg._common": "def shared(): pass\n",
        "tunebook.pkg.inner": "from tunebook.pkg._common import shared\n",
        "tunebook.b": ("from tunebook.a import _helper\nimport tunebook.a as a\nfrom tunebook.pkg._common import shared\n"
                       "def f(trial):\n    a._helper()\n    return trial._writers\n"),
    }
    modules = {name: (ROOT / (name.replace(".", "/").removeprefix("tunebook/") + ".py"), ast.parse(text))
               for name, text in src.items()}
    found = crossings(modules)
    assert sorted(line.split(": ", 1)[1] for line in found) == [
        "from tunebook.a import _helper",
        "imports the private module tunebook.pkg._common",
        "reads trial._writers (_writers is defined in tunebook.a)",
        "reads tunebook.a._helper",
    ]
