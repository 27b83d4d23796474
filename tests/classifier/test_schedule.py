"""The optimiser choice and the learning-rate schedule (warm-up, cosine), resume-safe."""

import pytest
import torch

from bookcover.classifier.config import preset
from bookcover.classifier.schedule import LrSchedule, lr_at, make_optimizer
from bookcover.errors import BookcoverError


def test_cosine_with_warmup():
    cfg = preset("quick", lr=1e-3, epochs=4, lr_schedule="cosine", warmup_epochs=1)
    steps = 10  # per epoch
    assert lr_at(0, 40, cfg, steps) == pytest.approx(1e-5)  # warm-up starts at lr / 100
    assert lr_at(5, 40, cfg, steps) == pytest.approx(1e-3 * (0.01 + 0.99 * 0.5))
    assert lr_at(10, 40, cfg, steps) == pytest.approx(1e-3)  # peak after warm-up
    assert lr_at(25, 40, cfg, steps) == pytest.approx(1e-3 * 0.5)  # half-way through the decay
    assert lr_at(40, 40, cfg, steps) == pytest.approx(0.0, abs=1e-12)
    constant = preset("quick", lr=1e-3, lr_schedule="constant", warmup_epochs=0)
    assert {lr_at(s, 40, constant, steps) for s in range(40)} == {1e-3}


def test_schedule_follows_steps_and_resumes_on_the_same_curve():
    cfg = preset("quick", lr=1e-2, epochs=3, lr_schedule="cosine", warmup_epochs=0.5)
    model = torch.nn.Linear(2, 1)

    def lrs(start_epoch, steps):
        opt = make_optimizer(model, cfg)
        schedule = LrSchedule(opt, cfg, 4, start_epoch)
        seen = []
        for _ in range(steps):
            seen.append(opt.param_groups[0]["lr"])
            model(torch.ones(1, 2)).sum().backward()
            opt.step()
            schedule.advance()
        return seen

    full = lrs(0, 12)
    assert full == pytest.approx([lr_at(s, 12, cfg, 4) for s in range(12)])
    assert lrs(1, 8) == pytest.approx(full[4:])  # resumed at epoch 1: the same learning rates


def test_optimizer_choice():
    cfg = preset("quick", optimizer="adamw", weight_decay=0.05)
    opt = make_optimizer(torch.nn.Linear(2, 1), cfg)
    assert isinstance(opt, torch.optim.AdamW) and opt.param_groups[0]["weight_decay"] == 0.05
    with pytest.raises(BookcoverError, match="unknown optimizer"):
        make_optimizer(torch.nn.Linear(2, 1), preset("quick", optimizer="sgd"))


def test_a_tensor_learning_rate_is_filled_in_place_and_trains_like_a_float_one():
    """Graph mode's rate: the same tensor object every step (a captured step reads it), same weights."""
    cfg = preset("quick", lr=1e-2, epochs=2, lr_schedule="cosine", warmup_epochs=0.5, optimizer="adamw",
                 weight_decay=0.05)
    x = torch.linspace(-1, 1, 8).reshape(4, 2)

    def train(tensor_lr):
        torch.manual_seed(0)
        model = torch.nn.Linear(2, 1)
        opt = make_optimizer(model, cfg, fused=True, tensor_lr=tensor_lr)
        rate = opt.param_groups[0]["lr"]
        schedule = LrSchedule(opt, cfg, 3)
        seen = []
        for _ in range(6):
            opt.zero_grad()
            model(x).square().mean().backward()
            opt.step()
            schedule.advance()
            seen.append(float(opt.param_groups[0]["lr"]))
        assert (opt.param_groups[0]["lr"] is rate) == tensor_lr
        return model.weight.detach().clone(), seen

    (w_float, lr_float), (w_tensor, lr_tensor) = train(False), train(True)
    assert isinstance(make_optimizer(torch.nn.Linear(2, 1), cfg, tensor_lr=True).param_groups[0]["lr"], torch.Tensor)
    assert lr_tensor == pytest.approx(lr_float, rel=1e-6)
    torch.testing.assert_close(w_tensor, w_float, rtol=1e-6, atol=1e-7)
