"""Soft-target CE, the AugMix JSD loss and the step-wise schedules against their formulas."""

import math

import pytest
import torch
import torch.nn.functional as F

from diffusemix_bench.config import OptimConfig, SchedConfig
from diffusemix_bench.errors import ConfigError
from diffusemix_bench.training.losses import (
    TrainLoss,
    bce_on_softmax,
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


def test_jsd_stays_finite_where_a_probability_underflows_as_the_reference_form_does_not():
    """Logits more than ~104 apart: a softmax probability is exactly 0 in float32. The reference's
    form (F.kl_div on softmax outputs, google-research/augmix) gives the same value but a NaN
    gradient there (0 x -inf through its target), which stopped runs as diverged; this one's
    gradient is finite, and equal to the reference's where the reference's is finite."""
    torch.manual_seed(3)

    def reference(views):
        probs = [F.softmax(z, dim=-1) for z in views]
        mixture = torch.clamp(torch.stack(probs).mean(0), 1e-7, 1.0).log()
        return torch.stack([F.kl_div(mixture, p, reduction="batchmean") for p in probs]).mean()

    for spread, underflows in ((5.0, False), (150.0, True)):
        logits = (torch.randn(3, 6, 10) * spread).requires_grad_()
        ours = jsd_consistency(list(logits))
        (grad,) = torch.autograd.grad(ours, logits)
        logits_ref = logits.detach().clone().requires_grad_()
        theirs = reference(list(logits_ref))
        (grad_ref,) = torch.autograd.grad(theirs, logits_ref)
        assert torch.allclose(ours, theirs, rtol=1e-5, atol=1e-6)
        assert torch.isfinite(grad).all()
        assert bool((F.softmax(logits, -1) == 0).any()) == underflows
        if underflows:
            assert torch.isnan(grad_ref).any()  # the reference form's gradient
        else:
            assert torch.allclose(grad, grad_ref, rtol=1e-4, atol=1e-7)


def test_jsd_of_bf16_logits_is_computed_in_float32():
    """bf16 logits (CPU autocast): the log-probabilities are taken in float32, as the reference's
    kl_div computed them, not in bf16 (a difference in the third digit)."""
    torch.manual_seed(5)
    views = [torch.randn(8, 10) * 3 for _ in range(3)]
    exact = jsd_consistency(views)
    half = jsd_consistency([v.bfloat16() for v in views])
    assert half.dtype == torch.float32
    assert torch.allclose(half, jsd_consistency([v.bfloat16().float() for v in views]), rtol=1e-6)
    assert torch.allclose(half, exact, rtol=2e-2)


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


def _reference_bce(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """PuzzleMix main.py's bce_loss(softmax(output), target), written out: the mean over N x K of
    -(t log p + (1 - t) log(1 - p)) with p = softmax(z) (nn.BCELoss clamps each log at -100)."""
    p = torch.softmax(logits.double(), dim=-1)
    t = targets.double()
    terms = t * p.log().clamp_min(-100) + (1 - t) * (1 - p).log().clamp_min(-100)
    return -terms.mean()


def _fixed_logits_and_mixed_targets(k: int = 100):
    g = torch.Generator().manual_seed(7)
    logits = 3 * torch.randn(4, k, generator=g)
    a, b = torch.tensor([0, 5, 17, 99]), torch.tensor([3, 5, 40, 1])
    targets = 0.6 * F.one_hot(a, k).float() + 0.4 * F.one_hot(b, k).float()
    return logits, targets


@pytest.mark.parametrize("criterion", ["ce", "bce_softmax"])
def test_train_loss_of_one_view_is_bitwise_the_general_formula(criterion):
    # One view and no clean term take a shorter path (fewer kernels a step): the same loss and
    # gradient, bit for bit, as the mean over views plus a zero clean term.
    torch.manual_seed(0)
    logits = torch.randn(16, 10, requires_grad=True)
    targets = smooth_targets(torch.randint(10, (16,)), 10, 0.1)
    loss_fn = TrainLoss("ce", criterion=criterion)
    short = loss_fn(logits, targets, 1)
    general = torch.stack([loss_fn.classify(logits, targets)]).mean() + logits.new_zeros(())
    assert torch.equal(short, general)
    assert torch.equal(torch.autograd.grad(short, logits)[0], torch.autograd.grad(general, logits)[0])


def test_bce_on_softmax_value_and_gradient_equal_the_reference_formula():
    logits, targets = _fixed_logits_and_mixed_targets()
    z = logits.clone().requires_grad_(True)
    ours = bce_on_softmax(z, targets)
    (grad,) = torch.autograd.grad(ours, z)
    z_ref = logits.double().requires_grad_(True)
    ref = _reference_bce(z_ref, targets)
    (grad_ref,) = torch.autograd.grad(ref, z_ref)
    assert float(ours) == pytest.approx(float(ref), rel=1e-6)
    assert float(ours) == pytest.approx(
        float(F.binary_cross_entropy(torch.softmax(logits, -1), targets)), rel=1e-6
    )
    torch.testing.assert_close(grad.double(), grad_ref, rtol=1e-4, atol=1e-9)
    # The reason the recipe's learning rate needs it: about 1/K of cross-entropy's gradient.
    z2 = logits.clone().requires_grad_(True)
    (grad_ce,) = torch.autograd.grad(soft_target_cross_entropy(z2, targets), z2)
    assert 0.8 < float(grad.norm() * 100 / grad_ce.norm()) < 1.25


@pytest.mark.parametrize("gap", [0.0, 15.0, 25.0, 40.0, 100.0])
def test_bce_on_softmax_gradient_is_nn_bcelosss_where_softmax_saturates(gap):
    """The recipe's call, nn.BCELoss()(softmax(z), t), stays finite where a probability is exactly
    1 (a logit gap above ~21 with K=100 in float32) or 0: its backward divides by
    max(p(1 - p), 1e-12). The clamped logs written out gave 0 x inf = NaN there, in every weight
    after one step. The same gradient, to float precision, at every gap."""
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(6, 100, generator=g)
    logits[:, 7] += gap
    targets = torch.rand(6, 100, generator=g)
    targets = targets / targets.sum(1, keepdim=True)
    targets[0] = F.one_hot(torch.tensor(7), 100).float()  # the saturated row's own class
    z = logits.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(bce_on_softmax(z, targets), z)
    z_ref = logits.clone().requires_grad_(True)
    ref = torch.nn.BCELoss()(torch.softmax(z_ref, dim=1), targets)
    (grad_ref,) = torch.autograd.grad(ref, z_ref)
    assert torch.isfinite(grad).all()
    assert float(bce_on_softmax(logits, targets)) == pytest.approx(float(ref), rel=1e-6)
    torch.testing.assert_close(grad, grad_ref, rtol=1e-5, atol=1e-12)
    # Targets above 1 (SnapMix's same-class weights), which nn.BCELoss refuses: its formula.
    heavy = targets * 1.5
    z = logits.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(bce_on_softmax(z, heavy), z)
    assert torch.isfinite(grad).all()
    p = torch.softmax(logits, dim=1)  # float32, as the loss computes it (saturating alike)
    expected = -(heavy * p.log().clamp_min(-100) + (1 - heavy) * (1 - p).log().clamp_min(-100)).mean()
    assert float(bce_on_softmax(logits, heavy)) == pytest.approx(float(expected), rel=1e-5)


def test_train_loss_bce_softmax_scales_the_ce_unit_terms_by_one_over_k():
    g = torch.Generator().manual_seed(5)
    logits, targets = torch.randn(4, 10, generator=g), F.softmax(torch.randn(4, 10, generator=g), dim=-1)
    mixed, clean = logits[:2], logits[2:]
    loss = TrainLoss("ce", criterion="bce_softmax")(logits, targets, 1, num_clean=2, clean_weight=1.0)
    # PuzzleMix main.py: bce(mixed) + 2 * clean_lam * CE(clean) / K.
    expected = (
        bce_on_softmax(mixed, targets[:2]) + 2 * 1.0 * soft_target_cross_entropy(clean, targets[2:]) / 10
    )
    torch.testing.assert_close(loss, expected)
    views = torch.randn(3 * 4, 10, generator=torch.Generator().manual_seed(3))
    jsd = TrainLoss("jsd", 12.0, criterion="bce_softmax")(views, targets, 3)
    torch.testing.assert_close(
        jsd, bce_on_softmax(views[:4], targets) + 12.0 / 10 * jsd_consistency(views.chunk(3))
    )
    with pytest.raises(ConfigError, match="loss.criterion"):
        TrainLoss("ce", criterion="focal")


def test_the_preact_protocol_trains_with_the_reference_loss_and_records_it(make_cfg):
    from diffusemix_bench.training.run import train

    cfg = make_cfg(["dataset=cifar100", "model=resnet18"])
    assert cfg.protocol == "scratch_preact" and cfg.loss.criterion == "bce_softmax"
    assert train(cfg)["loss_criterion"] == "bce_softmax"
    assert make_cfg(["dataset=cifar100", "loss.criterion=ce"]).loss.criterion == "ce"


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
