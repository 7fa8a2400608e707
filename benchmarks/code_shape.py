"""The shape of the package at one or more git revisions: modules, lines, the largest files, the longest
functions, and the pairs of repeated places that ``duplicates`` lists, side by side.

Each revision is read from ``git archive`` into a temporary folder (the working tree is never touched); the
sizes come from :mod:`ast` (a function's length is its ``def`` line to its last line, nested functions and
methods counted on their own, as ``tests/test_function_length.py`` counts them). ``duplicates`` (a tool on the
PATH, not part of tunebook) is run over each whole extracted tree when it is there; without it the row says so.

Run: python benchmarks/code_shape.py d692445 HEAD [--top 5] [--package tunebook]
"""

from __future__ import annotations

import argparse
import ast
import io
import re
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Shape:
    rev: str
    modules: int = 0
    lines: int = 0
    files: list[tuple[int, str]] = field(default_factory=list)  # (lines, path), largest first
    functions: list[tuple[int, str]] = field(default_factory=list)  # (lines, path:name), longest first
    duplicates: str = "duplicates not on PATH"


def extract(rev: str, repo: Path, into: Path) -> None:
    """The tree of ``rev`` (every tracked file) under ``into``."""
    data = subprocess.run(["git", "-C", str(repo), "archive", "--format=tar", rev], capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(into, filter="data")


def measure(rev: str, repo: Path, package: str) -> Shape:
    shape = Shape(rev)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        extract(rev, repo, root)
        for path in sorted((root / package).rglob("*.py")):
            text = path.read_text(encoding="utf-8")
            rel = path.relative_to(root).as_posix()
            n = len(text.splitlines())
            shape.modules += 1
            shape.lines += n
            shape.files.append((n, rel))
            for node in ast.walk(ast.parse(text, rel)):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    shape.functions.append((node.end_lineno - node.lineno + 1, f"{rel}:{node.name}"))  # type: ignore[operator]
        shape.files.sort(key=lambda x: (-x[0], x[1]))
        shape.functions.sort(key=lambda x: (-x[0], x[1]))
        if shutil.which("duplicates"):
            out = subprocess.run(["duplicates", "--repo", str(root), "--seconds", "180"], capture_output=True, text=True).stdout
            first = out.splitlines()[0] if out else "no output"
            m = re.match(r"(\d+) pairs", first)
            shape.duplicates = f"{m.group(1)} pairs" if m else first
    return shape


def table(shapes: list[Shape], top: int) -> str:
    def row(label: str, cells: list[str]) -> str:
        return "| " + " | ".join([label, *cells]) + " |"

    out = [row("", [s.rev for s in shapes]), row("---", ["---"] * len(shapes))]
    out.append(row("modules (.py)", [str(s.modules) for s in shapes]))
    out.append(row("lines", [str(s.lines) for s in shapes]))
    out.append(row("functions over 80 lines", [str(sum(1 for n, _ in s.functions if n > 80)) for s in shapes]))
    out.append(row("functions over 60 lines", [str(sum(1 for n, _ in s.functions if n > 60)) for s in shapes]))
    for i in range(top):
        out.append(row(f"largest file #{i + 1}", [f"{s.files[i][1]} ({s.files[i][0]})" if i < len(s.files) else ""
                                                  for s in shapes]))
    for i in range(top):
        out.append(row(f"longest function #{i + 1}", [f"{s.functions[i][1]} ({s.functions[i][0]})"
                                                      if i < len(s.functions) else "" for s in shapes]))
    out.append(row("`duplicates` pairs (whole tree)", [s.duplicates for s in shapes]))
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("revs", nargs="+", help="git revisions, e.g. d692445 HEAD")
    parser.add_argument("--top", type=int, default=5)
    parser.add_argument("--package", default="tunebook")
    parser.add_argument("--repo", type=Path, default=Path(__file__).resolve().parent.parent)
    args = parser.parse_args()
    print(table([measure(rev, args.repo, args.package) for rev in args.revs], args.top))


if __name__ == "__main__":
    main()
