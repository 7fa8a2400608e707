"""MkDocs hook (mkdocs.yml ``hooks:``): a page under ``docs/guide/`` or ``docs/reference/`` that the nav
does not list is added at the end of its section, in file-name order, so that a new page is in the site
(and its links are checked by ``mkdocs build --strict``) as soon as it exists."""

from __future__ import annotations

from typing import Any

SECTIONS = {"guide/": "Guide", "reference/": "Reference"}


def _listed(items: Any) -> set[str]:
    out: set[str] = set()
    for item in items if isinstance(items, list) else [items]:
        if isinstance(item, str):
            out.add(item)
        elif isinstance(item, dict):
            for value in item.values():
                out |= _listed(value)
    return out


def on_files(files: Any, config: Any) -> Any:
    nav = config["nav"]
    listed = _listed(nav)
    for folder, title in SECTIONS.items():
        section = next(item[title] for item in nav if isinstance(item, dict) and title in item)
        section.extend(file.src_uri for file in sorted(files.documentation_pages(), key=lambda f: f.src_uri)
                       if file.src_uri.startswith(folder) and file.src_uri not in listed)
    return files
