"""The playbook's procedures: decision logic on known answers, and end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest

import _workloads as w
import tunebook as tb
from conftest import run_cli
from tunebook.procedures import batch_size as bs
from tunebook.procedures import lr_sweep, rounds, stability, variance
from tunebook.training import schedules


# trial variance and adoption ------------------------------------------------------------
def test_decide_adopt_reject_and_inconclusive():
    rng = np.random.default_rng(0)
    base = 0.30 + 0.01 * rng.standard_normal(6)
    better = 0.25 + 0.01 * rng.standard_normal(6)
    same = base[::-1] + 0.0005  # the same spread, a negligible shift
    assert variance.decide(base, better, "min").evidence["recommendation"] == "adopt"
    assert variance.decide(base, better, "max").evidence["recommendation"] == "reject"
    assert variance.decide(base, same, "min").evidence["recommendation"] == "inconclusive"
    worse = variance.decide(base, base + 0.05, "min")
    assert worse.evidence["recommendation"] == "reject" and "worse" in worse.conclusion


def test_welch_against_a_hand_computation():
    a, b = np.array([1.0, 2.0, 3.0, 4.0]), np.array([2.0, 4.0, 6.0, 8.0, 10.0])
    va, vb = a.var(ddof=1) / 4, b.var(ddof=1) / 5
    t = (b.mean() - a.mean()) / np.sqrt(va + vb)
    result = variance.welch(a, b)
    assert result["t"] == pytest.approx(t)
    pooled = np.sqrt((3 * a.var(ddof=1) + 4 * b.var(ddof=1)) / 7)
    assert result["hedges_g"] == pytest.approx((b.mean() - a.mean()) / pooled * (1 - 3 / (4 * 9 - 9)))
    assert variance.welch(np.ones(3), np.ones(3))["p_value"] == 1.0


def test_retrain_compare_adopt_end_to_end(sqlite_url, tmp_path):
    def study(name, shift):
        return tb.create_study(name, space=tb.SearchSpace(nuisance={"lr": tb.Float(1e-3, 1e-1, "log")}, fixed={"shift": shift}),
                               objective=("val/error", "min"), trials=4, max_train_steps=5, storage=sqlite_url,
                               experiment="exp")
    base, cand = study("baseline", 0.2), study("candidate", 0.0)
    for s in (base, cand):
        tb.run(s, w.noisy, workers=0, progress=False, checkpoint_dir=tmp_path)
    with pytest.raises(tb.SpecError, match="tunebook retrain baseline"):
        variance.compare(base, cand)
    for s in (base, cand):
        replicas = variance.retrain(s, "best", 5)
        assert replicas.design == "replicates" and replicas.record.parent == s.name
        best = s.best_trial()
        assert all(t.params == {} for t in replicas.trials())
        assert {**replicas.space.fixed} == {**s.space.fixed, **best.params}
        assert len({t.seed for t in replicas.trials()}) == 5
        tb.run(replicas, w.noisy, workers=0, progress=False, checkpoint_dir=tmp_path)
    result = variance.compare(base, cand)
    assert result.evidence["recommendation"] == "adopt" and result.evidence["difference"] < -0.1
    adopted = variance.adopt(cand)
    assert "Adopted candidate as the baseline of exp" in adopted.conclusion
    assert cand.storage.get_baselines()["exp"] == "candidate"
    rows = {r["study"]: r for r in json.loads(run_cli("ls", "--format", "json", "--storage", sqlite_url).stdout)}
    assert rows["candidate"]["baseline"] and not rows["baseline"]["baseline"]
    assert any(n.startswith("compare: Adopt the candidate") for n in rows["candidate"]["notes"])
    # a candidate the comparison did not favour needs --force
    with pytest.raises(tb.SpecError, match="no comparison"):
        variance.adopt(base)


# learning-rate sweep --------------------------------------------------------------------
def test_lr_sweep_decisions():
    grid = [1e-3, 1e-2, 1e-1, 1.0]

    def points(steps):
        return [lr_sweep.SweepPoint(lr, "completed" if s != "x" else "infeasible", None if s in (None, "x") else s)
                for lr, s in zip(grid, steps)]

    ok = lr_sweep.decide(points([None, 400, 250, "x"]), 1000, "train/error", 0.0)
    assert ok.concluded and ok.evidence["max_train_steps"] == 250 and ok.evidence["fastest_learning_rate"] == 0.1
    edge = lr_sweep.decide(points([None, 400, 300, 200]), 1000, "train/error", 0.0)
    assert not edge.concluded and "highest of the grid" in edge.conclusion
    low_edge = lr_sweep.decide(points([100, 400, 300, None]), 1000, "train/error", 0.0)
    assert not low_edge.concluded and "lowest of the grid" in low_edge.conclusion
    none = lr_sweep.decide(points([None, None, None, "x"]), 1000, "train/error", 0.0)
    assert not none.concluded and "longer" in none.conclusion
    assert lr_sweep.first_step_at([10, 20, 30], [0.5, 0.0, 0.0], 0.0) == 20
    assert lr_sweep.first_step_at([10, 20], [0.5, 0.4], 0.9, mode="max") is None


# batch size --------------------------------------------------------------------------------
def test_batch_size_decision_on_known_throughputs():
    sizes = [8, 16, 32, 64, 128, 256]
    rates = [100, 200, 400, 800, 840, 850]  # examples/s: linear until 64, then saturated
    measured = [bs.Measurement(b, b / r) for b, r in zip(sizes, rates)] + [bs.Measurement(512, None, "out of memory")]
    result = bs.decide(measured, max_train_steps=1000)
    assert result.evidence["recommended_batch_size"] == 64
    assert result.evidence["bottleneck_from"] == 128 and result.evidence["out_of_memory_at"] == 512
    assert "re-tuning" in result.conclusion and "512 ran out of memory" in result.conclusion
    rows = result.evidence["measurements"]
    assert rows[3]["steps_if_perfect_scaling"] == 125 and rows[3]["training_time_seconds"] == pytest.approx(125 * 64 / 800)


def test_measure_stops_at_out_of_memory_and_times_windows_with_a_clock():
    now = [0.0]

    def make_step(batch):
        if batch >= 64:
            raise RuntimeError("CUDA out of memory. Tried to allocate 8.00 GiB")

        def step():
            now[0] += 0.001 * (1 + batch / 16)  # 1 ms fixed cost plus linear work
        return step

    measured = bs.measure(make_step, [8, 16, 32, 64, 128], warmup=1, steps=4, repeats=2, clock=lambda: now[0])
    assert [m.batch_size for m in measured] == [8, 16, 32, 64]
    assert measured[-1].seconds_per_step is None and "out of memory" in measured[-1].error
    assert measured[0].seconds_per_step == pytest.approx(0.0015)
    with pytest.raises(ValueError):
        bs.measure(lambda b: (_ for _ in ()).throw(ValueError("a bug")), [8])


# stability and warmup ---------------------------------------------------------------------
def test_curve_instability():
    steps = np.arange(1, 201)
    smooth = 2.0 * np.exp(-steps / 30) + 0.1
    assert stability.curve_instability(steps, smooth) is None
    rising = smooth + np.clip(steps - 100, 0, None) / 50
    assert "climbs back" in stability.curve_instability(steps, rising)
    spiky = smooth.copy()
    spiky[150] = 3.0
    assert "spike" in stability.curve_instability(steps, spiky)
    assert "NaN" in stability.curve_instability(steps, np.append(smooth[:-1], np.nan))


def test_warmup_grid_and_decision():
    assert stability.warmup_steps_grid(10_000) == [10, 100, 1000]
    assert stability.warmup_steps_grid(50) == [5]
    d = stability.warmup_decision([(10, "infeasible", "nan"), (100, "completed", "spikes"), (1000, "completed", None)],
                                  max_train_steps=10_000, base_lr=1.0)
    assert d.evidence["warmup_steps"] == 1000 and d.evidence["new_max_train_steps"] == 11_000
    assert "10000 + 1000 = 11000" in d.conclusion and "raise max_train_steps" in d.conclusion
    short = stability.warmup_decision([(10, "completed", None)], max_train_steps=10_000, base_lr=1.0)
    assert "raise max_train_steps" not in short.conclusion
    assert not stability.warmup_decision([(10, "infeasible", "x")], max_train_steps=100, base_lr=1.0).concluded


def test_stability_check_finds_the_unstable_rate_above_lr_star(sqlite_url, tmp_path):
    space = tb.SearchSpace(nuisance={"lr": tb.Choice([0.003, 0.01, 0.03, 0.1])}, fixed={"eval_every": 5})
    study = tb.create_study("sweep", space=space, objective=("val/error", "min"), trials=4, max_train_steps=300,
                            storage=sqlite_url, design="grid")
    tb.run(study, w.unstable_above, workers=0, progress=False, checkpoint_dir=tmp_path)
    result = stability.check(study, param="lr")
    assert result.evidence["lr_star"] == 0.01
    assert result.evidence["unstable_learning_rate"] == 0.03 and "Instability limits" in result.conclusion
    early = stability.early_instability_study(study, param="lr")
    assert early.max_train_steps == 500 and early.space.fixed["lr"] == 0.02 and early.space.fixed["eval_every"] == 1
    warm = stability.warmup_study(study, 0.03, param="lr")
    assert warm.space.fixed["lr"] == pytest.approx(0.3) and warm.space.params["warmup_steps"].values == (10,)
    assert warm.max_train_steps == 30 and warm.record.parent == "sweep"
    notes = study.storage.get_notes(study="sweep", kind="stability")
    assert notes and notes[-1]["evidence"]["unstable_learning_rate"] == 0.03


# rounds -----------------------------------------------------------------------------------
def test_round_two_keeps_the_linear_decay_length():
    best = {"learning_rate": 0.1, "schedule": "linear", "warmup_steps": 0}
    fixed = rounds.extended_fixed(best, 1000, 1500)
    old = schedules.from_params(best, 1000)
    new = schedules.from_params(fixed, 1500)
    assert [old(s) for s in range(0, 1001, 100)] == pytest.approx([new(s + 500) for s in range(0, 1001, 100)])
    assert new(400) == 0.1  # the constant phase grew by 500 steps
    cos = {"learning_rate": 0.1, "schedule": "cosine"}
    assert rounds.extended_fixed(cos, 1000, 2000) == cos  # same base rate, the decay follows max_train_steps


def test_next_round_creates_a_linked_study(sqlite_url, tmp_path):
    space = tb.SearchSpace(scientific={"wd": tb.Choice([0.0, 0.1])}, nuisance={"lr": tb.Float(1e-3, 1e-1, "log")},
                           fixed={"schedule": "linear"})
    study = tb.create_study("wd", space=space, objective=("val/error", "min"), trials=4, max_train_steps=20,
                            storage=sqlite_url, experiment="e")
    tb.run(study, w.quadratic, workers=0, progress=False, checkpoint_dir=tmp_path)
    result = rounds.next_round(study, 50, retune=("lr",))
    (name,) = result.studies
    new = tb.load_study(name, storage=sqlite_url)
    assert name == "wd-r2" and new.record.round == 2 and new.record.parent == "wd" and new.experiment == "e"
    assert new.max_train_steps == 50 and new.space.fixed["constant_steps"] == 30
    # round 2 keeps the best configuration: the scientific value is frozen, lr narrowed around its best, fewer trials
    best = study.best_trial()
    assert list(new.space.nuisance) == ["lr"] and not new.space.scientific and new.space.fixed["wd"] == best.params["wd"]
    lr = new.space.nuisance["lr"]
    assert 1e-3 <= lr.low < best.params["lr"] < lr.high <= 1e-1 and lr.high / lr.low < 10 ** 0.5 + 1e-9
    assert new.trials_budget == 2 and new.record.spec["derived"] == {"kind": "next-round", "source": "wd", "trial": best.number}
    with pytest.raises(tb.SpecError, match="--steps"):
        rounds.next_round(study, 10)


# on the digits workload, through the CLI ------------------------------------------------------
@pytest.mark.slow
def test_procedures_on_digits_through_the_cli(tmp_path):
    def cli(*args):
        proc = run_cli(*args, "--storage", f"sqlite:///{tmp_path / 'tunebook.db'}", cwd=tmp_path, timeout=600)
        assert proc.returncode in (0, 1), proc.stderr[-3000:]
        return proc

    sweep = cli("lr-sweep", "--train", "tunebook.workloads.digits:train", "--points", "5", "--low", "1e-4", "--high", "10",
                "--steps", "100", "--metric", "train/error", "--threshold", "0.1", "--fixed", "eval_every=25", "--quiet")
    assert "max_train_steps" in sweep.stdout or "Not concluding" in sweep.stdout
    stab = cli("stability", "lr-sweep")
    assert "lr*" in stab.stdout and "early-instability check" in stab.stdout
    warm = cli("warmup", "lr-sweep", "--unstable-lr", "0.05", "--quiet")
    assert "warmup" in warm.stdout.lower()
    retrain = cli("retrain", "lr-sweep", "--n", "3", "--quiet")
    assert "3 retrains" in retrain.stdout
    nxt = cli("next-round", "lr-sweep", "--steps", "600")
    assert "Created lr-sweep-r2 (round 2)" in nxt.stdout
    cli("report", "lr-sweep", "-o", "r.html")
    html = (tmp_path / "r.html").read_text()
    assert "data-kind='lr-sweep'" in html and "data-kind='stability'" in html and "data-kind='next-round'" in html
    bsz = cli("batch-size", "tunebook.workloads.digits:make_step", "--min", "16", "--max", "128", "--steps", "5")
    assert "Use batch size" in bsz.stdout
