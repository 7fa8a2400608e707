"""The picture of the report in the README and the docs (docs/assets/report.png), from a real report.

Runs the bundled digits study (``tunebook demo``: 21 PyTorch MLPs, "does weight decay help?") into a
throwaway store, or takes a report already written, opens it in Chromium (Debian's, through Playwright) and
screenshots the answer to the goal followed by two of the report's figures (the nuisance hyperparameter's axis
plot and the isolation plot), the rest of the page hidden once they are drawn:

    python benchmarks/render_report.py                       # runs the demo (minutes), writes docs/assets/report.png
    python benchmarks/render_report.py --report report.html  # an existing report
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from render_notebook import drawn_page  # benchmarks/ is on the path of a script run from it


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", type=Path, help="a report file (default: run the demo and use its report)")
    parser.add_argument("--out", type=Path, default=Path("docs/assets/report.png"))
    parser.add_argument("--figures", default="#figure-1,#figure-2", help="the figures shown under the answer")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        report = args.report
        if report is None:
            report = Path(tmp) / "report.html"
            subprocess.run([sys.executable, "-m", "tunebook", "demo", "--quiet", "--workers", "2", "--storage",
                            f"sqlite:///{tmp}/demo.db", "-o", str(report)], check=True)
        with drawn_page(report, ".js-plotly-plot", width=1000) as tab:
            tab.wait_for_timeout(500)  # the figures' last layout pass
            tab.evaluate("""(selectors) => {
                const keep = new Set(['h1', '#headline', ...selectors].map(s => document.querySelector(s)));
                for (const e of document.body.children) if (!keep.has(e)) e.style.display = 'none';
            }""", args.figures.split(","))
            args.out.parent.mkdir(parents=True, exist_ok=True)
            tab.screenshot(path=str(args.out), full_page=True)
    print(args.out)


if __name__ == "__main__":
    main()
