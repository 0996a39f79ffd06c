"""Losses: soft-target cross-entropy, the reference code's binary cross-entropy on softmax outputs,
and the AugMix Jensen-Shannon consistency loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import ConfigError


def soft_target_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of -sum_k t_k log softmax(z)_k; hard labels are one-hot targets."""
    return torch.sum(-targets * F.log_softmax(logits, dim=-1), dim=-1).mean()


class _BinaryCrossEntropy(torch.autograd.Function):
    """``nn.BCELoss``'s forward and backward (mean reduction) for targets of any value: each log
    clamped at -100, and the gradient ``(p - t) / max(p (1 - p), 1e-12)`` as its own backward
    computes it, which stays finite where a probability is exactly 0 or 1 (the gradient of the
    clamped logs written out is 0 x inf there: NaN, in every weight after one step)."""

    @staticmethod
    def forward(ctx, p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(p, t)
        return -(t * p.log().clamp_min(-100) + (1 - t) * (1 - p).log().clamp_min(-100)).mean()

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        p, t = ctx.saved_tensors
        grad_p = grad * (p - t) / (p * (1 - p)).clamp_min(1e-12) / p.numel()
        return grad_p, None


def bce_on_softmax(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of softmax(z) against the (mixed) targets, averaged over the N x K
    entries: ``nn.BCELoss()(softmax(output), target)`` of ``snu-mllab/PuzzleMix:main.py`` (copied by
    Co-Mixup and GuidedMixup), the loss every method of their CIFAR-100/Tiny-ImageNet recipe trains
    with. Its gradient is about 1/K of cross-entropy's. Computed in float32 outside autocast;
    targets outside [0, 1] (SnapMix's CAM weights can exceed 1), which nn.BCELoss refuses, keep
    its formula (_BinaryCrossEntropy)."""
    with torch.autocast(device_type=logits.device.type, enabled=False):
        p = F.softmax(logits.float(), dim=-1)
        return _BinaryCrossEntropy.apply(p, targets.float())


CRITERIA = {"ce": soft_target_cross_entropy, "bce_softmax": bce_on_softmax}


def smooth_targets(labels: torch.Tensor, num_classes: int, smoothing: float = 0.0) -> torch.Tensor:
    """One-hot targets, optionally label-smoothed (smoothing spread over all classes). Written as a
    scatter rather than ``F.one_hot``, whose range check reads the labels back on some devices."""
    targets = torch.zeros(len(labels), num_classes, device=labels.device)
    targets.scatter_(1, labels.long().unsqueeze(1), 1.0)
    if smoothing > 0:
        targets = targets * (1.0 - smoothing) + smoothing / num_classes
    return targets


def jsd_consistency(logits_views: list[torch.Tensor] | tuple[torch.Tensor, ...]) -> torch.Tensor:
    """AugMix JSD term: mean KL of each view's prediction to the clamped mixture, i.e.
    (KL(p_0||p_m) + KL(p_1||p_m) + KL(p_2||p_m)) / 3 with p_m = mean(p_i) clamped at 1e-7
    (google-research/augmix: cifar.py); ``F.kl_div(log p_m, p_i)`` is KL(p_i||p_m).

    The same values as the reference's ``F.kl_div(log p_m, p_i, reduction="batchmean")``, with
    log p_i taken from ``log_softmax`` instead of the log of ``softmax``: where a probability
    underflows to 0 (logits more than ~104 apart in float32) the reference's gradient through
    its target is 0 x -inf = NaN and the run stops as diverged; here it stays finite (tested)."""
    # (in float32, as the reference's kl_div ran under autocast: bf16 logits on a CPU included)
    logps = [F.log_softmax(z.float(), dim=-1) for z in logits_views]
    probs = [lp.exp() for lp in logps]
    mixture = torch.clamp(torch.stack(probs).mean(0), 1e-7, 1.0).log()
    kls = [(p * (lp - mixture)).sum(-1).sum() / p.shape[0] for p, lp in zip(probs, logps, strict=True)]
    return torch.stack(kls).mean()


class TrainLoss(torch.nn.Module):
    """The training objective for ``num_views`` views stacked view-major in the logits.

    ``criterion`` is the classification term: ``ce`` (soft-target cross-entropy) or ``bce_softmax``
    (:func:`bce_on_softmax`, the loss of the PuzzleMix-lineage recipe). With ``bce_softmax`` every
    term that recipe writes in cross-entropy units is scaled as it scales them: the clean-image term
    of PuzzleMix/Co-Mixup/Guided-AP is ``2 clean_lam CE / K`` (their ``main.py``), and the JSD
    consistency term is divided by K too, so that AugMix's balance of consistency to classification
    (weight 12 against cross-entropy) holds against a classification term of about CE / K.
    """

    def __init__(self, name: str = "ce", jsd_weight: float = 12.0, criterion: str = "ce") -> None:
        super().__init__()
        if name not in ("ce", "jsd"):
            raise ConfigError(f"loss.name must be 'ce' or 'jsd', got '{name}'")
        if criterion not in CRITERIA:
            raise ConfigError(f"loss.criterion must be one of {sorted(CRITERIA)}, got '{criterion}'")
        self.name = name
        self.jsd_weight = jsd_weight
        self.criterion = criterion
        self.classify = CRITERIA[criterion]

    def _scale(self, num_classes: int) -> float:
        """The factor of the terms written in cross-entropy units (1, or 1/K with bce_softmax)."""
        return 1.0 / num_classes if self.criterion == "bce_softmax" else 1.0

    def forward(
        self,
        logits: torch.Tensor,
        targets: torch.Tensor,
        num_views: int,
        num_clean: int = 0,
        clean_weight: float = 0.0,
    ) -> torch.Tensor:
        if self.name == "ce" and num_views == 1 and not num_clean:
            # One view, no clean term (most methods): the same value as the general path below
            # (the mean of one term, plus zero) without its extra kernels on every step.
            return self.classify(logits, targets)
        clean_term = logits.new_zeros(())
        if num_clean:
            clean_logits, logits = logits[-num_clean:], logits[:-num_clean]
            clean_targets, targets = targets[-num_clean:], targets[:-num_clean]
            factor = 2.0 * self._scale(logits.shape[-1]) if self.criterion == "bce_softmax" else 1.0
            clean_term = factor * clean_weight * soft_target_cross_entropy(clean_logits, clean_targets)
        views = logits.chunk(num_views, dim=0) if num_views > 1 else (logits,)
        if self.name == "ce":
            return torch.stack([self.classify(v, targets) for v in views]).mean() + clean_term
        if num_views < 2:
            raise ConfigError(
                "loss=jsd needs at least two views per image (clean first); the chosen "
                "augmentation produces one. Use loss=ce or an augmentation with JSD views."
            )
        # AugMix: the classification term on the clean view only, plus the weighted consistency term.
        consistency = self.jsd_weight * self._scale(logits.shape[-1]) * jsd_consistency(views)
        return self.classify(views[0], targets) + consistency + clean_term
