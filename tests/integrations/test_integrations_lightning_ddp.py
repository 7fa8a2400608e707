"""The Lightning callback under real DDP on CPU: Lightning's "ddp" strategy in a trial that tunebook starts
as two rank processes (`tunebook run --nproc-per-trial 2`); Lightning sees a torchelastic launch and starts
no processes of its own. The training function is tests/_ddp.py's lightning_ddp (each rank records what it saw).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

pytest.importorskip("lightning", reason="the 'lightning' extra is not installed (pip install 'tunebook[lightning]')")
pytest.importorskip("torch")

import tunebook as tb  # noqa: E402
from conftest import run_cli  # noqa: E402
from tunebook.storage import open_storage  # noqa: E402

HERE = Path(__file__).resolve().parents[1]  # tests/, where the helpers live
STEPS = 30


@pytest.mark.slow
def test_lightning_ddp_in_a_two_process_trial_trains_on_both_ranks_and_only_rank_zero_writes(tmp_path):
    log, ckpt = tmp_path / "ranks", tmp_path / "ckpt"
    log.mkdir()
    url = f"sqlite:///{tmp_path / 'tunebook.db'}"
    spec = tmp_path / "study.yaml"
    spec.write_text(
        "study: lightning-ddp\n"
        f"train: {HERE / '_ddp.py'}:lightning_ddp\n"
        "objective: {metric: val/error, mode: min}\n"
        f"trials: 2\nmax_train_steps: {STEPS}\n"
        "search_space:\n  scientific:\n    learning_rate: {choice: [3.0e-3, 300.0]}\n"
        "infeasible_if:\n  train/loss: {above: 10.0}\n"
    )
    out = run_cli("run", str(spec), "--storage", url, "--nproc-per-trial", "2", "--checkpoint-dir", str(ckpt), "--quiet",
                  env={"TB_DDP_LOG": str(log), "TB_DDP_CKPT": str(ckpt), "OMP_NUM_THREADS": "2"})
    assert out.returncode == 0, out.stderr[-3000:]
    study = tb.load_study("lightning-ddp", open_storage(url))
    by_lr = {t.params["learning_rate"]: t for t in study.trials()}
    good, bad = by_lr[3e-3], by_lr[300.0]
    assert good.state == "completed", good.error
    assert bad.state == "infeasible" and "train/loss" in bad.infeasible_reason

    records = {r: [json.loads(x) for x in (log / f"rank-{r}.jsonl").read_text().splitlines()] for r in (0, 1)}

    def of(rank, kind, trial):
        (hit,) = [x for x in records[rank] if x["kind"] == kind and x["_trial"] == trial.number]
        return hit

    for r in (0, 1):  # tag each record with the trial it belongs to (a start opens a trial's records)
        current = None
        for x in records[r]:
            current = x.get("number", current) if x["kind"] == "start" else current
            x["_trial"] = current
    for trial in (good, bad):
        starts = [of(r, "start", trial) for r in (0, 1)]
        assert starts[0]["params"] == starts[1]["params"] == trial.params and starts[0]["seed"] == starts[1]["seed"] == trial.seed
        assert starts[0]["pid"] != starts[1]["pid"]
    # both ranks trained under Lightning's DDP (a torchelastic launch: Lightning started no process)
    ends = {r: of(r, "end", good) for r in (0, 1)}
    assert {r: (e["global_rank"], e["world_size"]) for r, e in ends.items()} == {0: (0, 2), 1: (1, 2)}
    assert {e["environment"] for e in ends.values()} == {"TorchElasticEnvironment"}
    assert ends[0]["global_step"] == ends[1]["global_step"] == STEPS
    assert ends[0]["checksum"] == ends[1]["checksum"]  # DDP kept the replicas identical
    # only rank 0 wrote: each point once, checkpoint files opened for writing by rank 0 alone
    curves = study.metrics(good)
    assert [s for s, _ in curves["train/loss"]] == list(range(1, STEPS + 1))
    assert [s for s, _ in curves["val/error"]] == [10, 20, 30]
    assert all(math.isfinite(v) for name in curves for _, v in curves[name])
    writers = {line.split()[0] for p in log.glob("writes-*.txt") for line in p.read_text().splitlines()}
    assert writers == {"0"}
    kept = study.storage.get_checkpoints(good.id)
    assert max(c.step for c in kept) == STEPS and good.best_step in [c.step for c in kept]
    # the diverging trial: the callback's all-reduce stopped both ranks at the same step, before the end
    stopped = {r: of(r, "end", bad)["global_step"] for r in (0, 1)}
    assert stopped[0] == stopped[1] < STEPS
    assert not study.storage.get_checkpoints(bad.id) or max(c.step for c in study.storage.get_checkpoints(bad.id)) < STEPS
    # the report shows the curves
    shown = [f.data for f in tb.analyze(study).figures if f.kind == "curves"]
    assert {c.metric for c in shown} >= {"val/error", "train/loss"}
