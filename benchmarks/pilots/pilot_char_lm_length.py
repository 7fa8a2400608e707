"""Does the character model (tunebook.workloads.char_lm) still improve after 200 steps? The truth behind
tests/analysis/test_known_answers_char_lm.py's "still improving" at 200 steps.

Adam, lr 0.02, dropout 0 (the pilot's best point), evaluated every 20 steps, 3 seeds (a replicate design),
trained for 200 and for 400 steps. Measured (2026-12-07): final val/bpc 0.842, 0.829, 0.840 at 200 steps;
0.804, 0.803, 0.801 at 400: longer training gains 0.034 bpc, about 5 seed sd.

Run: PYTHONPATH=. python benchmarks/pilots/pilot_char_lm_length.py /tmp/char-length.db
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("OMP_NUM_THREADS", "1")

import tunebook as tb  # noqa: E402
from tunebook.workloads import char_lm  # noqa: E402


def main(path: str) -> None:
    url = f"sqlite:///{path}"
    for steps in (200, 400):
        space = tb.SearchSpace(fixed={"optimizer": "adam", "learning_rate": 0.02, "dropout": 0.0, "eval_every": 20},
                               allow_fixed_only=True)
        study = tb.create_study(f"len{steps}", space=space, objective=("val/bpc", "min"), trials=3,
                                max_train_steps=steps, storage=url, design="replicates", seed=7)
        tb.run(study, char_lm.train, workers=0, progress=False)
        finals = [dict(study.metrics(t, ["val/bpc"])["val/bpc"])[steps] for t in study.trials()]
        print(steps, "steps: final val/bpc", [round(v, 3) for v in finals])


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "char-length.db")
