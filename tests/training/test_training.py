"""The PyTorch toolkit, each piece against an independent computation."""

from __future__ import annotations

import math
import multiprocessing as mp
import pickle
import socket

import numpy as np
import pytest
import torch
from torch import nn

from tunebook.training import schedules as sch
from tunebook.training.batchnorm import GhostBatchNorm, sync_batchnorm_stats
from tunebook.checkpoints import CheckpointManager
from tunebook.training.checkpoints import restore_training_state, training_state
from tunebook.training.clipping import clip_and_log, clip_by_global_norm, global_norm
from tunebook.training.evaluation import PeriodicAction, eval_batch_size, evaluate_classifier, padded_batches
from tunebook.training.optimizers import OPTIMIZERS, SGD, Adam, Momentum, NAdam, Nesterov, RMSProp
from tunebook.training.pipeline import TimedIterator
from tunebook.training.seeds import host_seeds, seed_everything
from _spy import SYNCING, SpyTensor


# schedules -------------------------------------------------------------------
def test_schedules_by_hand():
    assert sch.constant(0.3)(0) == 0.3 and sch.constant(0.3)(10**6) == 0.3
    lin = sch.linear_decay(1.0, decay_steps=100, end_lr=0.1)
    assert [lin(s) for s in (0, 50, 100, 200)] == pytest.approx([1.0, 0.55, 0.1, 0.1])
    lin_c = sch.linear_decay(1.0, decay_steps=100, constant_steps=20)
    assert [lin_c(s) for s in (0, 20, 70, 120)] == pytest.approx([1.0, 1.0, 0.5, 0.0])
    cos = sch.cosine_decay(2.0, decay_steps=100)
    assert [cos(s) for s in (0, 50, 100, 150)] == pytest.approx([2.0, 1.0, 0.0, 0.0])
    assert cos(25) == pytest.approx(1.0 + math.cos(math.pi / 4))
    rs = sch.rsqrt(1.0, timescale=100)
    assert [rs(s) for s in (0, 100, 400, 10_000)] == pytest.approx([1.0, 1.0, 0.5, 0.1])
    pw = sch.piecewise([10, 20], [1.0, 0.1, 0.01])
    assert [pw(s) for s in (0, 9, 10, 19, 20, 99)] == [1.0, 1.0, 0.1, 0.1, 0.01, 0.01]


def test_warmup_ramps_from_zero_then_runs_the_schedule():
    s = sch.warmup(sch.linear_decay(0.4, decay_steps=100), warmup_steps=10)
    assert [s(t) for t in (0, 5, 10, 60, 110)] == pytest.approx([0.0, 0.2, 0.4, 0.2, 0.0])
    assert sch.warmup(sch.constant(1.0), 0) == sch.constant(1.0)


def test_round_two_extensions():
    lin = sch.linear_decay(1.0, decay_steps=400, constant_steps=600)  # 1000 steps
    ext = sch.extend(lin, 1000, 1500)
    assert ext.decay_steps == 400 and ext.constant_steps == 1100  # same decay length, longer constant phase
    assert ext(1100) == 1.0 and ext(1300) == pytest.approx(0.5) and ext(1500) == 0.0
    cos = sch.cosine_decay(0.5, decay_steps=1000)
    ext = sch.extend(cos, 1000, 1500)
    assert ext(0) == 0.5 and ext.decay_steps == 1500 and ext(750) == pytest.approx(0.25)
    warm = sch.warmup(sch.cosine_decay(0.5, 900), 100)
    ext = sch.extend(warm, 1000, 2000)
    assert ext.warmup_steps == 100 and ext.schedule.decay_steps == 1900
    with pytest.raises(TypeError):
        sch.extend(sch.piecewise([1], [1, 2]), 10, 20)


SCHEDULES = [
    sch.constant(0.1), sch.linear_decay(0.1, 50), sch.cosine_decay(0.1, 50, end_lr=0.01), sch.rsqrt(0.1, 10),
    sch.piecewise([10], [0.1, sch.cosine_decay(0.1, 40)]), sch.warmup(sch.cosine_decay(0.1, 40), 10),
]


@pytest.mark.parametrize("schedule", SCHEDULES, ids=lambda s: type(s).__name__)
def test_every_schedule_is_a_pure_picklable_callable(schedule):
    values = [schedule(t) for t in range(60)]
    assert all(isinstance(v, float) and v >= 0 for v in values)
    assert values == [schedule(t) for t in range(60)]  # no hidden state
    assert pickle.loads(pickle.dumps(schedule)) == schedule


@pytest.mark.parametrize("schedule", SCHEDULES, ids=lambda s: type(s).__name__)
def test_lambda_lr_sets_the_schedules_rate(schedule):
    param = nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=0.1)
    scheduler = sch.lambda_lr(opt, schedule)
    for step in range(30):
        assert opt.param_groups[0]["lr"] == pytest.approx(schedule(step))
        opt.step()
        scheduler.step()


def test_schedule_from_params():
    s = sch.from_params({"learning_rate": 0.2, "schedule": "cosine", "warmup_steps": 10}, max_train_steps=110)
    assert s(0) == 0.0 and s(10) == pytest.approx(0.2) and s(110) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="schedule: unknown"):
        sch.from_params({"learning_rate": 0.1, "schedule": "exp"}, 10)


# optimizers --------------------------------------------------------------------
def numpy_reference(name, theta, grads, lr, **h):
    """The playbook's formulas, transcribed with NumPy."""
    theta = theta.copy()
    if name == "sgd":
        for g in grads:
            theta = theta - lr * g
    elif name in ("momentum", "nesterov"):
        v = np.zeros_like(theta)
        for g in grads:
            v = h["momentum"] * v + g
            theta = theta - lr * (v if name == "momentum" else h["momentum"] * v + g)
    elif name == "rmsprop":
        v, m = np.ones_like(theta), np.zeros_like(theta)
        for g in grads:
            v = h["rho"] * v + (1 - h["rho"]) * g**2
            m = h["momentum"] * m + lr / np.sqrt(v + h["eps"]) * g
            theta = theta - m
    else:
        m, v = np.zeros_like(theta), np.zeros_like(theta)
        b1, b2, eps = h["beta1"], h["beta2"], h["eps"]
        for t, g in enumerate(grads):
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g**2
            b = math.sqrt(1 - b2 ** (t + 1)) / (1 - b1 ** (t + 1))
            num = m if name == "adam" else b1 * m + (1 - b1) * g
            theta = theta - lr * num / (np.sqrt(v) + eps) * b
    return theta


HYPER = {
    "sgd": {}, "momentum": {"momentum": 0.9}, "nesterov": {"momentum": 0.8},
    "rmsprop": {"rho": 0.9, "momentum": 0.5, "eps": 1e-3},
    "adam": {"beta1": 0.9, "beta2": 0.99, "eps": 1e-2}, "nadam": {"beta1": 0.8, "beta2": 0.95, "eps": 1e-2},
}


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_optimizer_matches_the_playbook_formulas(name):
    rng = np.random.default_rng(0)
    theta0 = rng.standard_normal(5)
    grads = [rng.standard_normal(5) for _ in range(6)]
    param = nn.Parameter(torch.tensor(theta0))
    opt = OPTIMIZERS[name]([param], 0.05, **HYPER[name])
    for g in grads:
        param.grad = torch.tensor(g)
        opt.step()
    np.testing.assert_allclose(param.detach().numpy(), numpy_reference(name, theta0, grads, 0.05, **HYPER[name]), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", list(OPTIMIZERS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_optimizer_invariants(name, dtype):
    model = nn.Linear(4, 3).to(dtype)
    opt = OPTIMIZERS[name](model.parameters(), 0.01, **HYPER[name])
    shapes = None
    for _ in range(3):
        model(torch.randn(8, 4, dtype=dtype)).pow(2).mean().backward()
        opt.step()
        opt.zero_grad()
        state_shapes = {k: tuple(v.shape) for s in opt.state.values() for k, v in s.items() if torch.is_tensor(v)}
        assert shapes is None or state_shapes == shapes  # state shape stable
        shapes = state_shapes
    assert all(p.dtype == dtype for p in model.parameters())  # dtype preserved
    assert all(v.dtype == dtype for s in opt.state.values() for v in s.values() if torch.is_tensor(v))


def test_momentum_and_nesterov_equal_torch_sgd():
    for ours, nesterov in ((Momentum, False), (Nesterov, True)):
        a, b = nn.Parameter(torch.ones(3)), nn.Parameter(torch.ones(3))
        oa, ob = ours([a], 0.1, momentum=0.9), torch.optim.SGD([b], lr=0.1, momentum=0.9, nesterov=nesterov)
        for i in range(5):
            g = torch.tensor([1.0, -2.0, 0.5]) * (i + 1)
            a.grad, b.grad = g.clone(), g.clone()
            oa.step()
            ob.step()
        torch.testing.assert_close(a, b)


def test_adam_differs_from_torch_adam_where_documented():
    # epsilon placement: the playbook adds eps to sqrt(v) before bias correction
    a, b = nn.Parameter(torch.ones(3)), nn.Parameter(torch.ones(3))
    oa, ob = Adam([a], 0.1, eps=0.1), torch.optim.Adam([b], lr=0.1, eps=0.1)
    a.grad, b.grad = torch.full((3,), 0.01), torch.full((3,), 0.01)
    oa.step()
    ob.step()
    assert not torch.allclose(a, b)
    # with a negligible eps, both are the same Adam
    a, b = nn.Parameter(torch.ones(3)), nn.Parameter(torch.ones(3))
    oa, ob = Adam([a], 0.1, eps=1e-12), torch.optim.Adam([b], lr=0.1, eps=1e-12)
    for i in range(4):
        a.grad, b.grad = torch.full((3,), 0.5 * (i + 1)), torch.full((3,), 0.5 * (i + 1))
        oa.step()
        ob.step()
    torch.testing.assert_close(a, b)


def test_optimizers_state_dict_round_trip():
    for cls in (SGD, Momentum, Nesterov, RMSProp, Adam, NAdam):
        p = nn.Parameter(torch.ones(2))
        opt = cls([p], 0.1)
        p.grad = torch.ones(2)
        opt.step()
        fresh = cls([nn.Parameter(p.detach().clone())], 0.1)
        fresh.load_state_dict(opt.state_dict())
        assert fresh.state_dict()["state"].keys() == opt.state_dict()["state"].keys()


# clipping ------------------------------------------------------------------------
def test_global_norm_and_clipping_by_hand():
    a, b = nn.Parameter(torch.zeros(1)), nn.Parameter(torch.zeros(1))
    a.grad, b.grad = torch.tensor([3.0]), torch.tensor([4.0])
    assert global_norm([a, b]).item() == pytest.approx(5.0)
    norm = clip_by_global_norm([a, b], threshold=1.0)
    assert norm.item() == pytest.approx(5.0)  # the unclipped norm is returned
    assert (a.grad.item(), b.grad.item()) == pytest.approx((0.6, 0.8))  # lambda g / |g|
    a.grad, b.grad = torch.tensor([3.0]), torch.tensor([4.0])
    clip_by_global_norm([a, b], threshold=10.0)
    assert (a.grad.item(), b.grad.item()) == pytest.approx((3.0, 4.0))  # under the threshold: unchanged


class RecordingTrial:
    def __init__(self):
        self.logged = []

    def log(self, step, **metrics):
        self.logged.append((step, metrics))


def test_clip_and_log_never_reads_the_device():
    params = [nn.Parameter(torch.zeros(3)), nn.Parameter(torch.zeros(2))]
    params[0].grad = torch.tensor([3.0, 0.0, 0.0]).as_subclass(SpyTensor)
    params[1].grad = torch.tensor([4.0, 0.0]).as_subclass(SpyTensor)
    trial = RecordingTrial()
    SpyTensor.calls = []
    clip_and_log(trial, 7, params, threshold=2.5)
    # `.to(dtype)` on the device is not a sync; everything else that reads the value is
    assert not (SYNCING - {"to"}) & set(SpyTensor.calls), SpyTensor.calls
    (step, metrics), = trial.logged
    assert step == 7 and torch.is_tensor(metrics["grad/norm"]) and torch.is_tensor(metrics["grad/clipped"])
    assert metrics["grad/norm"].item() == pytest.approx(5.0) and metrics["grad/clipped"].item() == 1.0
    assert params[0].grad[0].item() == pytest.approx(1.5)


# checkpoints ----------------------------------------------------------------------
def make_model():
    return nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.3), nn.ReLU(), nn.Linear(8, 1))


def train_steps(model, opt, scheduler, steps):
    for _ in range(steps):
        x = torch.randn(16, 4)
        loss = model(x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        scheduler.step()


def test_resume_restores_model_optimizer_scheduler_and_rng_exactly(tmp_path):
    seed_everything(0)
    model = make_model()
    opt = Adam(model.parameters(), 0.01)
    scheduler = sch.lambda_lr(opt, sch.warmup(sch.cosine_decay(0.01, 20), 5))
    manager = CheckpointManager(tmp_path, keep_best=1)
    train_steps(model, opt, scheduler, 5)
    manager.save(5, training_state(5, model, opt, scheduler), value=1.0)
    train_steps(model, opt, scheduler, 5)  # uninterrupted: steps 6..10 (dropout and data use the RNGs)
    expected = [p.detach().clone() for p in model.parameters()]

    torch.manual_seed(123)  # a fresh process would start elsewhere
    model2 = make_model()
    opt2 = Adam(model2.parameters(), 0.01)
    scheduler2 = sch.lambda_lr(opt2, sch.warmup(sch.cosine_decay(0.01, 20), 5))
    step = restore_training_state(manager.latest().state, model2, opt2, scheduler2)
    assert step == 5 and scheduler2.last_epoch == 5
    train_steps(model2, opt2, scheduler2, 5)
    for a, b in zip(expected, model2.parameters()):
        torch.testing.assert_close(a, b.detach(), rtol=0, atol=0)


def test_manager_keeps_n_best_plus_latest(tmp_path):
    manager = CheckpointManager(tmp_path, keep_best=2, mode="max")
    for step, value in enumerate([0.1, 0.5, 0.3, 0.9, 0.2, None], start=1):
        manager.save(step, {"step": step}, value)
    assert [c.step for c in manager.kept] == [2, 4, 6]  # 0.9 and 0.5 are the best; 6 is the latest
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"step-{s:09d}.ckpt" for s in (2, 4, 6)]
    assert manager.best().step == 4 and manager.latest().state == {"step": 6}


# evaluation -------------------------------------------------------------------------
def test_periodic_action_by_step():
    every = PeriodicAction(every_steps=30, last_step=100)
    assert [s for s in range(1, 101) if every(s)] == [30, 60, 90, 100]
    assert eval_batch_size(256, 128) == 256 and eval_batch_size(64, 512) == 512


def test_padded_batches_weigh_padding_zero():
    x, y = torch.arange(10.0).view(10, 1), torch.arange(10)
    batches = list(padded_batches(x, y, 4))
    assert [b[0].shape[0] for b in batches] == [4, 4, 4]
    assert batches[-1][2].tolist() == [1.0, 1.0, 0.0, 0.0]
    assert sum(b[2].sum().item() for b in batches) == 10


def test_evaluation_is_exact_with_partial_batches_and_per_class_counts():
    torch.manual_seed(0)
    model = nn.Linear(5, 3)
    x, y = torch.randn(23, 5), torch.tensor([0] * 15 + [1] * 6 + [2] * 2)
    result = evaluate_classifier(model, padded_batches(x, y, 8), num_classes=3)
    with torch.no_grad():
        logits = model(x).numpy()
    labels = y.numpy()
    log_softmax = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    pred = logits.argmax(1)
    metrics = {k: v.item() for k, v in result.metrics().items()}
    assert metrics["val/loss"] == pytest.approx(-log_softmax[np.arange(23), labels].mean(), rel=1e-5)
    assert metrics["val/error"] == pytest.approx(np.mean(pred != labels))
    recalls = [np.mean(pred[labels == c] == c) for c in range(3)]
    assert metrics["val/balanced_error"] == pytest.approx(1 - np.mean(recalls))
    assert result.examples.item() == 23


# ghost batch norm -------------------------------------------------------------------
def test_ghost_batch_norm_by_hand():
    torch.manual_seed(0)
    x = torch.randn(96, 4) * 3 + 1
    gbn = GhostBatchNorm(4, virtual_batch_size=32, momentum=0.1)
    out = gbn(x).detach().numpy()
    xs = x.numpy()
    means, variances = [], []
    for i in range(3):
        chunk = xs[32 * i:32 * (i + 1)]
        mu, var = chunk.mean(0), chunk.var(0)
        np.testing.assert_allclose(out[32 * i:32 * (i + 1)], (chunk - mu) / np.sqrt(var + 1e-5), rtol=1e-5, atol=1e-5)
        means.append(mu)
        variances.append(chunk.var(0, ddof=1))
    np.testing.assert_allclose(gbn.running_mean.numpy(), 0.1 * np.mean(means, 0), rtol=1e-5)
    np.testing.assert_allclose(gbn.running_var.numpy(), 0.9 + 0.1 * np.mean(variances, 0), rtol=1e-5)
    gbn.eval()
    expected = (xs - gbn.running_mean.numpy()) / np.sqrt(gbn.running_var.numpy() + 1e-5)
    np.testing.assert_allclose(gbn(x).detach().numpy(), expected, rtol=1e-5, atol=1e-5)


def test_ghost_batch_norm_equals_batch_norm_within_one_virtual_batch():
    torch.manual_seed(1)
    x = torch.randn(16, 3, 5, 5)
    gbn, bn = GhostBatchNorm(3, virtual_batch_size=64), nn.BatchNorm2d(3)
    torch.testing.assert_close(gbn(x), bn(x), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(gbn.running_mean, bn.running_mean)
    torch.testing.assert_close(gbn.running_var, bn.running_var)


def _sync_worker(rank: int, port: int, queue) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    model = nn.Sequential(nn.BatchNorm1d(3), GhostBatchNorm(2, virtual_batch_size=4))
    model[0].running_mean.fill_(float(rank))  # 0 and 1
    model[0].running_var.fill_(2.0 + 2 * rank)  # 2 and 4
    model[1].running_mean.fill_(10.0 * rank)
    synced = sync_batchnorm_stats(model)
    queue.put((rank, synced, model[0].running_mean.tolist(), model[0].running_var.tolist(), model[1].running_mean.tolist()))
    dist.destroy_process_group()


def test_sync_batchnorm_stats_across_two_gloo_processes():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_sync_worker, args=(rank, port, queue)) for rank in range(2)]
    for p in procs:
        p.start()
    results = sorted(queue.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
    for _rank, synced, mean, var, ghost_mean in results:
        assert synced == 2
        assert mean == [0.5] * 3 and var == [3.0] * 3 and ghost_mean == [5.0] * 2
    assert sync_batchnorm_stats(nn.BatchNorm1d(2)) == 0  # no process group: nothing to do


# seeds and the input pipeline --------------------------------------------------------
def test_host_seeds():
    a, b = host_seeds(42, 0), host_seeds(42, 1)
    assert a.init == b.init and a.data != b.data
    assert host_seeds(42, 1) == b and host_seeds(43, 0).init != a.init
    seed_everything(7)
    first = (torch.rand(3), np.random.rand(), __import__("random").random())
    seed_everything(7)
    second = (torch.rand(3), np.random.rand(), __import__("random").random())
    assert torch.equal(first[0], second[0]) and first[1:] == second[1:]


def test_timed_iterator_measures_the_wait_share_with_a_given_clock():
    now = [0.0]

    def clock():
        return now[0]

    class SlowData:
        def __iter__(self):
            for i in range(10):
                now[0] += 0.3  # 0.3 s to produce each batch
                yield i

    trial = RecordingTrial()
    it = TimedIterator(SlowData(), trial=trial, log_every=4, clock=clock)
    for _ in it:
        now[0] += 0.7  # 0.7 s of training per step
    assert it.step == 10 and it.wait_fraction == pytest.approx(0.3)  # the last next() ends step 10
    assert [s for s, _ in trial.logged] == [4, 8]
    assert trial.logged[0][1]["input/wait_fraction"] == pytest.approx(0.3)
