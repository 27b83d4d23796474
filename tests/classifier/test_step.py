"""The training step: no host sync (fullgraph tracing), device-side draws, step modes, divergence."""

import functools
import json
from dataclasses import replace

import pytest
import torch
from torch import nn

from bookcover import coral
from bookcover.checkpoint import CLASSIFIER_KIND, load_checkpoint
from bookcover.classifier.model import CoralResNet34
from bookcover.classifier.step import (
    StepStats,
    TrainStep,
    epoch_draws,
    load_optimizer_state,
    resolve_step_mode,
)
from bookcover.classifier.train import train_classifier
from bookcover.coral import cpp as coral_cpp
from bookcover.errors import BookcoverError, TrainingDiverged
from tests.conftest import tiny_config

CPU = torch.device("cpu")
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


class TinyNet(nn.Module):
    """conv -> BN -> ReLU -> mean -> logit, with CORAL biases: a ResNet's kinds of layers, in milliseconds."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, stride=2)
        self.bn = nn.BatchNorm2d(8)
        self.head = nn.Linear(8, 1, bias=False)
        self.coral_bias = nn.Parameter(torch.tensor([0.5, 0.2, -0.2, -0.5]))

    def forward(self, x):
        return self.head(torch.relu(self.bn(self.conv(x))).mean((2, 3))).squeeze(1)


def make_step(model, impl="reference", device=CPU, **kwargs) -> TrainStep:
    gen = torch.Generator().manual_seed(0)
    pixels = torch.randint(0, 256, (40, 36, 36, 3), dtype=torch.uint8, generator=gen).to(device)
    labels = torch.randint(0, 5, (40,), generator=gen).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    return TrainStep(model, model, opt, functools.partial(coral.coral_loss, impl=impl), pixels, labels, 32, **kwargs)


def batch(device=CPU, n=8):
    perm, crops = epoch_draws(40, 36, 36, 32, True, seed=1, epoch=0, device=device)
    return perm[:n], crops[:n]


@pytest.mark.parametrize("impl", ["reference", "cpp"])
def test_the_step_traces_whole_under_fullgraph(impl):
    """Crops, normalisation, forward, loss and the device-side statistics are one graph with no
    break: no data-dependent host branch and no read of a device value. aot_eager also traces
    the backward (the fused op's fake and autograd registrations)."""
    if impl == "cpp" and not coral_cpp.available():
        pytest.skip("the C++ extension is not built")
    torch.manual_seed(0)
    eager, compiled = make_step(TinyNet(), impl), make_step(TinyNet(), impl)
    compiled.model.load_state_dict(eager.model.state_dict())
    idx, crops = batch()
    want, _ = eager.forward_loss(idx, crops)
    assert coral.last_route() == impl
    want.backward()
    got, _ = torch.compile(compiled.forward_loss, fullgraph=True, backend="aot_eager")(idx, crops)
    got.backward()
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(compiled.stats.totals, eager.stats.totals)
    for (name, a), b in zip(eager.model.named_parameters(), compiled.model.parameters(), strict=True):
        torch.testing.assert_close(b.grad, a.grad, msg=name)


def test_resnet34_step_traces_without_graph_breaks():
    """The real model too (dynamo only: the network's kernels are not what is being checked)."""
    torch.manual_seed(0)
    step = make_step(CoralResNet34().to(memory_format=torch.channels_last), amp_dtype=torch.bfloat16)
    loss, _ = torch.compile(step.forward_loss, fullgraph=True, backend="eager")(*batch())
    assert torch.isfinite(loss)


def test_epoch_draws_are_seeded_by_seed_and_epoch():
    a = epoch_draws(50, 40, 40, 32, True, seed=3, epoch=2, device=CPU)
    b = epoch_draws(50, 40, 40, 32, True, seed=3, epoch=2, device=CPU)
    c = epoch_draws(50, 40, 40, 32, True, seed=3, epoch=3, device=CPU)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not torch.equal(a[0], c[0])
    perm, crops = a
    assert sorted(perm.tolist()) == list(range(50)) and crops.shape == (50, 3)
    assert crops[:, :2].min() >= 0 and crops[:, :2].max() <= 8 and set(crops[:, 2].tolist()) <= {0, 1}


def test_stats_keep_the_first_non_finite_loss_on_the_device():
    stats = StepStats(CPU)
    logit, bias, labels = torch.zeros(4), torch.zeros(4), torch.tensor([0, 1, 2, 3])
    stats.record(torch.tensor(1.0), logit, bias, labels)
    stats.end_step()
    stats.record(torch.tensor(float("inf")), logit, bias, labels)
    stats.end_step()
    stats.record(torch.tensor(float("nan")), logit, bias, labels)
    assert stats.read_bad() == (1, float("inf"))
    assert stats.totals[2].item() == 12
    stats.reset()
    assert stats.read_bad() == (-1, 0.0) and stats.totals.sum().item() == 0


def test_a_resumed_optimizer_keeps_this_runs_fused_and_capturable():
    """A checkpoint saved by an eager run (capturable False) resumed in graph mode must stay
    capturable, or the capture fails; its state (moments, step) is still restored."""
    net = TinyNet()
    eager = torch.optim.Adam(net.parameters(), lr=1e-3)
    net(torch.randn(4, 3, 16, 16)).sum().backward()
    eager.step()
    saved = eager.state_dict()
    graph = torch.optim.Adam(net.parameters(), lr=1e-3, capturable=True)
    load_optimizer_state(graph, saved)
    assert graph.param_groups[0]["capturable"] is True and graph.param_groups[0]["lr"] == 1e-3
    assert saved["param_groups"][0]["capturable"] is False  # the checkpoint's dict is not changed
    torch.testing.assert_close(graph.state[net.conv.weight]["exp_avg"], eager.state[net.conv.weight]["exp_avg"])


@pytest.mark.parametrize(
    "mode,compile_flag,device,ddp,fp16,expected",
    [
        ("auto", None, "cuda", False, False, "graph"),  # the default on a GPU
        ("auto", False, "cuda", False, False, "graph"),  # --no-compile: the graph does not compile
        ("auto", True, "cuda", False, False, "compile"),  # --compile asks for it
        ("auto", None, "cuda", True, False, "compile"),  # DDP on CUDA: compiled, as before
        ("auto", None, "cuda", False, True, "compile"),  # fp16 GradScaler: no capture
        ("auto", None, "cpu", False, False, "eager"),
        ("auto", True, "cpu", False, False, "compile"),
        ("auto", None, "cpu", True, False, "eager"),
        ("eager", None, "cuda", False, False, "eager"),
        ("compile", None, "cpu", False, False, "compile"),
    ],
)
def test_step_mode_resolution(mode, compile_flag, device, ddp, fp16, expected):
    assert resolve_step_mode(mode, compile_flag, torch.device(device), ddp, fp16) == expected


@pytest.mark.parametrize("device,ddp,fp16,why", [("cpu", False, False, "CUDA"), ("cuda", True, False, "DDP"),
                                                 ("cuda", False, True, "fp16")])
def test_graph_mode_says_why_it_cannot_run(device, ddp, fp16, why):
    with pytest.raises(BookcoverError, match=why):
        resolve_step_mode("graph", None, torch.device(device), ddp, fp16)
    with pytest.raises(BookcoverError, match="--step-mode"):
        resolve_step_mode("fast", None, torch.device(device), ddp, fp16)


def test_divergence_stops_at_the_next_check_not_at_the_bad_step(synth_covers, tmp_path, monkeypatch):
    """Weights poisoned after step 2: step 3's loss is NaN, but no step reads the device, so
    training stops at the next check (every 2 steps here: after step 4) with the usual line."""
    monkeypatch.setattr("bookcover.classifier.train.CHECK_EVERY", 2)
    cfg = tiny_config(synth_covers, epochs=1, batch_size=16)  # 6 steps an epoch
    real_build = train_classifier.__globals__["build_model"]
    seen = []

    def build(config):
        poison.model = real_build(config)
        return poison.model

    def poison(epoch, step):
        seen.append((epoch, step))
        if (epoch, step) == (0, 1):
            with torch.no_grad():
                poison.model.head.weight.fill_(float("nan"))

    monkeypatch.setattr("bookcover.classifier.train.build_model", build)
    with pytest.raises(TrainingDiverged, match=r"loss became nan at epoch 1, step 3; stopped\. The last good checkpoint is none"):
        train_classifier(cfg, tmp_path / "run", quiet=True, on_step=poison)
    assert seen == [(0, 0), (0, 1), (0, 2)]  # step index 3 ran, then the check stopped the run
    assert not (tmp_path / "run" / "last.pt").exists()
    assert json.loads((tmp_path / "run" / "config.json").read_text())["step_mode"] == "eager"


def test_cli_graph_mode_on_cpu_is_one_line_and_writes_nothing(synth_covers, tmp_path):
    from click.testing import CliRunner

    from bookcover.cli import main

    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["train", "--preset", "quick", "--data", str(synth_covers), "--device", "cpu",
                                       "--step-mode", "graph", "--out", str(out)])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "--step-mode graph needs a CUDA device" in result.output
    assert not out.exists()


# --- CUDA (skip without a GPU) ------------------------------------------------------------------


@pytest.mark.cuda
@needs_cuda
def test_graph_step_matches_eager_step_on_cuda():
    """Ten steps replayed from one CUDA graph (after 3 warm-up steps) make the same updates as
    ten eager steps, and the device-side statistics agree."""
    dev = torch.device("cuda")
    torch.manual_seed(0)
    nets = [TinyNet().to(dev).to(memory_format=torch.channels_last) for _ in range(2)]
    nets[1].load_state_dict(nets[0].state_dict())
    steps = []
    for net, mode in zip(nets, ("eager", "graph"), strict=True):
        s = make_step(net, "auto", dev, mode=mode)
        s.optimizer = torch.optim.Adam(net.parameters(), lr=1e-3, fused=True, capturable=mode == "graph")
        steps.append(s)
    perm, crops = epoch_draws(40, 36, 36, 32, True, seed=1, epoch=0, device=dev)
    for i in range(10):
        a, b = (i * 4) % 32, (i * 4) % 32 + 8
        for s in steps:
            s(perm[a:b], crops[a:b])
    assert len(steps[1]._graphs) == 1
    for (name, p), q in zip(nets[0].named_parameters(), nets[1].parameters(), strict=True):
        torch.testing.assert_close(q, p, atol=1e-4, rtol=1e-4, msg=name)
    torch.testing.assert_close(steps[1].stats.totals, steps[0].stats.totals, atol=1e-3, rtol=1e-4)
    assert steps[1].stats.steps.item() == 10


@pytest.mark.cuda
@needs_cuda
def test_graph_step_follows_the_learning_rate_schedule_on_cuda():
    """A replayed graph runs no Python: with the schedule's tensor rate (filled in place between
    steps) it makes the same AdamW updates as eager steps under warm-up and cosine decay."""
    from bookcover.classifier.config import preset
    from bookcover.classifier.schedule import LrSchedule, make_optimizer

    dev = torch.device("cuda")
    cfg = preset("quick", lr=1e-2, epochs=2, lr_schedule="cosine", warmup_epochs=0.5, optimizer="adamw",
                 weight_decay=0.05)
    torch.manual_seed(0)
    nets = [TinyNet().to(dev).to(memory_format=torch.channels_last) for _ in range(2)]
    nets[1].load_state_dict(nets[0].state_dict())
    steps, schedules = [], []
    for net, mode in zip(nets, ("eager", "graph"), strict=True):
        s = make_step(net, "auto", dev, mode=mode)
        s.optimizer = make_optimizer(net, cfg, fused=True, capturable=mode == "graph", tensor_lr=mode == "graph")
        steps.append(s)
        schedules.append(LrSchedule(s.optimizer, cfg, steps_per_epoch=6))
    perm, crops = epoch_draws(40, 36, 36, 32, True, seed=1, epoch=0, device=dev)
    for i in range(12):
        a, b = (i * 4) % 32, (i * 4) % 32 + 8
        for s, schedule in zip(steps, schedules, strict=True):
            s(perm[a:b], crops[a:b])
            schedule.advance()
    assert len(steps[1]._graphs) == 1
    assert float(steps[1].optimizer.param_groups[0]["lr"]) == pytest.approx(steps[0].optimizer.param_groups[0]["lr"])
    for (name, p), q in zip(nets[0].named_parameters(), nets[1].parameters(), strict=True):
        torch.testing.assert_close(q, p, atol=1e-4, rtol=1e-4, msg=name)


@pytest.mark.cuda
@needs_cuda
def test_default_cuda_run_uses_the_graph_and_stops_on_nan(synth_covers, tmp_path, monkeypatch):
    cfg = tiny_config(synth_covers, epochs=2, batch_size=16, device="cuda")
    train_classifier(cfg, tmp_path / "ok", quiet=True)
    record = json.loads((tmp_path / "ok" / "config.json").read_text())
    assert record["step_mode"] == "graph"
    lines = (tmp_path / "ok" / "metrics.jsonl").read_text().splitlines()
    assert all(json.loads(x)["train_loss"] > 0 for x in lines)

    def poison(epoch, step):
        if (epoch, step) == (1, 4):  # after the graph was captured (3 warm-up steps in epoch 1)
            with torch.no_grad():
                poison.model.head.weight.fill_(float("nan"))

    real_build = train_classifier.__globals__["build_model"]

    def build(config):
        poison.model = real_build(config)
        return poison.model

    monkeypatch.setattr("bookcover.classifier.train.build_model", build)
    with pytest.raises(TrainingDiverged, match="last good checkpoint"):
        train_classifier(replace(cfg, epochs=3), tmp_path / "nan", quiet=True, on_step=poison)
    assert load_checkpoint(tmp_path / "nan" / "last.pt", CLASSIFIER_KIND)["epoch"] == 1

