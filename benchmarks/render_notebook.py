"""Render a small notebook that displays a tunebook study, trial and report, and screenshot it.

    PYTHONPATH=$PWD python benchmarks/render_notebook.py /work/wt/exporters-shots

Builds ``notebook.ipynb`` (a tiny synthetic study, then the study, a trial and
``tb.analyze`` shown through tunebook.analysis.jupyter and tunebook.display), executes it with
``jupyter nbconvert --to html --execute``, and saves a full-page screenshot of
the HTML from headless Chromium (Playwright) as ``notebook.png``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

CELLS = [
    ("markdown", "# tunebook in Jupyter\nA tiny synthetic study: does the optimizer matter?"),
    ("code", """\
import os, tempfile
import numpy as np
import tunebook as tb
from tunebook.analysis.synthetic import exp_decay, write_study
from tunebook.analysis.jupyter import report_html
from tunebook.display import study_html, trial_html
from IPython.display import HTML

def curves(params, steps, rng):
    lr = params["learning_rate"]
    if lr > 0.3:
        return "train/loss is NaN"
    floor = 0.1 + abs(np.log10(lr) + 2) * 0.05 + (0.02 if params["optimizer"] == "sgd" else 0.0)
    noise = rng.normal(0, 0.003, len(steps))
    return {"val/error": exp_decay(steps, floor, 0.9, 300.0) + noise, "train/loss": exp_decay(steps, floor / 2, 2.0, 250.0)}

space = tb.SearchSpace(scientific={"optimizer": tb.Choice(["adam", "sgd"])},
                       nuisance={"learning_rate": tb.Float(1e-4, 1.0, scale="log")}, fixed={"batch_size": 128})
url = "sqlite:///" + os.path.join(tempfile.mkdtemp(), "tunebook.db")
study = write_study(url, "optimizer-ablation", curves, space=space, trials=16, max_train_steps=1000, evals=20,
                    goal="Does the optimizer matter?")
HTML(study_html(study))"""),
    ("code", "HTML(trial_html(study.best_trial(), study))"),
    ("code", "report = tb.analyze(study)\nHTML(report_html(report))"),
    ("code", "study.trials_dataframe().head()"),
]


@contextmanager
def drawn_page(page: Path, selector: str, width: int = 1200, height: int = 900) -> Iterator[Any]:
    """``page`` open in Debian's Chromium (headless, through Playwright) once ``selector`` is on it."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"),
                                    args=["--headless", "--no-sandbox", "--disable-gpu"])
        try:
            tab = browser.new_page(viewport={"width": width, "height": height})
            tab.goto(page.resolve().as_uri())
            tab.wait_for_selector(selector, timeout=60_000)
            yield tab
        finally:
            browser.close()


def main(out: Path) -> None:
    import nbformat

    out.mkdir(parents=True, exist_ok=True)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(src) if kind == "markdown" else nbformat.v4.new_code_cell(src)
                for kind, src in CELLS]
    path = out / "notebook.ipynb"
    nbformat.write(nb, path)
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    jupyter = str(Path(sys.executable).with_name("jupyter"))
    subprocess.run([jupyter, "nbconvert", "--to", "html", "--execute", str(path), "--output-dir", str(out)],
                   check=True, env=env)
    with drawn_page(out / "notebook.html", ".tunebook-report .js-plotly-plot") as tab:
        tab.screenshot(path=str(out / "notebook.png"), full_page=True)
    print(out / "notebook.png")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "notebook-shots"))
