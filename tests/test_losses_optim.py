"""Soft-target CE, the AugMix JSD loss and the step-wise schedules against their formulas."""

import math

import pytest
import torch
import torch.nn.functional as F

from diffusemix_bench.config import OptimConfig, SchedConfig
from diffusemix_bench.errors import ConfigError
from diffusemix_bench.training.losses import (
    TrainLoss,
    jsd_consistency,
    smooth_targets,
    soft_target_cross_entropy,
)
from diffusemix_bench.training.optim import build_optimizer, lr_factor_fn


def test_soft_ce_equals_hard_ce_on_one_hot():
    logits = torch.randn(6, 5)
    labels = torch.randint(0, 5, (6,))
    assert torch.allclose(
        soft_target_cross_entropy(logits, F.one_hot(labels, 5).float()), F.cross_entropy(logits, labels)
    )


def test_soft_ce_of_mixed_targets_is_the_mix_of_ces():
    logits = torch.randn(4, 3)
    a, b = torch.tensor([0, 1, 2, 0]), torch.tensor([1, 1, 0, 2])
    lam = 0.3
    t = lam * F.one_hot(a, 3).float() + (1 - lam) * F.one_hot(b, 3).float()
    expected = lam * F.cross_entropy(logits, a) + (1 - lam) * F.cross_entropy(logits, b)
    assert torch.allclose(soft_target_cross_entropy(logits, t), expected, atol=1e-6)


def test_label_smoothing_matches_torch():
    logits = torch.randn(8, 10)
    labels = torch.randint(0, 10, (8,))
    t = smooth_targets(labels, 10, 0.1)
    assert torch.allclose(t.sum(1), torch.ones(8))
    assert torch.allclose(
        soft_target_cross_entropy(logits, t), F.cross_entropy(logits, labels, label_smoothing=0.1), atol=1e-6
    )


def test_jsd_matches_written_out_formula():
    torch.manual_seed(0)
    views = [torch.randn(7, 4) for _ in range(3)]
    p = [v.softmax(-1) for v in views]
    m = torch.clamp((p[0] + p[1] + p[2]) / 3, 1e-7, 1)
    # KL(p_i || m) summed over classes, averaged over the batch, then over the three views.
    expected = sum((pi * (pi.log() - m.log())).sum(-1).mean() for pi in p) / 3
    assert torch.allclose(jsd_consistency(views), expected, atol=1e-6)
    same = torch.randn(5, 4)
    assert jsd_consistency([same, same, same]).abs() < 1e-6


def test_train_loss_jsd_is_clean_ce_plus_weighted_jsd():
    torch.manual_seed(1)
    logits = torch.randn(3 * 4, 6)
    targets = F.one_hot(torch.randint(0, 6, (4,)), 6).float()
    views = logits.chunk(3)
    expected = soft_target_cross_entropy(views[0], targets) + 12.0 * jsd_consistency(views)
    assert torch.allclose(TrainLoss("jsd", 12.0)(logits, targets, 3), expected)
    with pytest.raises(ValueError, match="at least two views"):
        TrainLoss("jsd")(logits[:4], targets, 1)
    with pytest.raises(ValueError, match="loss.name"):
        TrainLoss("focal")


@pytest.mark.parametrize(
    ("cfg", "checks"),
    [
        (SchedConfig(name="step", step_size=2, gamma=0.5), {0: 1.0, 19: 1.0, 20: 0.5, 40: 0.25}),
        (SchedConfig(name="multistep", milestones=[1, 3], gamma=0.1), {9: 1.0, 10: 0.1, 29: 0.1, 30: 0.01}),
        (SchedConfig(name="none"), {0: 1.0, 99: 1.0}),
    ],
)
def test_epoch_schedules_change_at_epoch_boundaries(cfg, checks):
    f = lr_factor_fn(cfg, steps_per_epoch=10, total_steps=100)
    for step, want in checks.items():
        assert f(step) == pytest.approx(want)


def test_cosine_with_warmup():
    cfg = SchedConfig(name="cosine", warmup_epochs=1, warmup_start_factor=0.0, min_lr_factor=0.1)
    f = lr_factor_fn(cfg, steps_per_epoch=10, total_steps=110)
    assert f(0) == pytest.approx(0.0)
    assert f(5) == pytest.approx(0.5)
    assert f(10) == pytest.approx(1.0)
    assert f(60) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert f(110) == pytest.approx(0.1)


def test_bad_schedule_name_is_a_config_error():
    with pytest.raises(ConfigError, match="sched.name"):
        lr_factor_fn(SchedConfig(name="poly"), 10, 100)


class _TwoPart(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.body = torch.nn.Linear(3, 4)
        self.head = torch.nn.Linear(4, 2)

    def head_parameters(self):
        return self.head.parameters()


def test_head_lr_makes_two_groups_and_nesterov_is_passed():
    opt = build_optimizer(OptimConfig(lr=0.001, head_lr=0.01, nesterov=True, weight_decay=5e-4), _TwoPart())
    lrs = {g["name"]: g["lr"] for g in opt.param_groups}
    assert lrs == {"backbone": 0.001, "head": 0.01}
    assert all(g["nesterov"] for g in opt.param_groups)
    assert sum(len(g["params"]) for g in opt.param_groups) == 4


def test_unknown_optimizer_is_a_config_error():
    with pytest.raises(ConfigError, match="optim.name"):
        build_optimizer(OptimConfig(name="lamb"), _TwoPart())
