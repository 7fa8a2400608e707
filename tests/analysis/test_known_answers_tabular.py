"""Known answers on the tabular workload (tunebook.workloads.tabular: an MLP on the breast-cancer table,
objective val/loss). The truths come first, from the seeded grid pilot benchmarks/pilots/pilot_tabular.py
(5 seeds a point, tests/assets/pilots/tabular.json). The pilot (cosine decay, batch 64, 32 hidden units, 300
steps) finds no clear winner among the factors it tried on this table (width, epsilon, dropout, no hidden
layer, Adam vs SGD, all within 1 seed sd) and a gradual edge of Adam's learning rate. The studies on these
truths (a tie with 8 trials per group, epsilon, the edge) still misjudge on main; they are in the issue's
notes, not here yet."""

from __future__ import annotations

from _known_cases import Truth, is_gradual_edge

TRUTH = Truth("tabular")


def test_the_pilot_establishes_the_truths():
    """The truths the tabular studies rest on (fails if the pilot is re-run and they move)."""
    assert TRUTH.verdict("adam", "adam hidden=64") == "tie"
    assert TRUTH.verdict("adam", "adam epsilon=1e-6") == "tie"  # does not matter
    edge = TRUTH.edge("adam")
    assert is_gradual_edge(edge, TRUTH.seed_sd(TRUTH.best("adam")[0]))
    assert 1e-3 < edge["best_rate"] < 0.03  # the tie studies' range [1e-3, 0.03] holds it, below the edge
