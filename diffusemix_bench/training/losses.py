"""Losses: soft-target cross-entropy and the AugMix Jensen-Shannon consistency loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import ConfigError


def soft_target_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of -sum_k t_k log softmax(z)_k; hard labels are one-hot targets."""
    return torch.sum(-targets * F.log_softmax(logits, dim=-1), dim=-1).mean()


def smooth_targets(labels: torch.Tensor, num_classes: int, smoothing: float = 0.0) -> torch.Tensor:
    """One-hot targets, optionally label-smoothed (smoothing spread over all classes)."""
    targets = F.one_hot(labels.long(), num_classes).float()
    if smoothing > 0:
        targets = targets * (1.0 - smoothing) + smoothing / num_classes
    return targets


def jsd_consistency(logits_views: list[torch.Tensor] | tuple[torch.Tensor, ...]) -> torch.Tensor:
    """AugMix JSD term: mean KL of each view's prediction to the clamped mixture, i.e.
    (KL(p_0||p_m) + KL(p_1||p_m) + KL(p_2||p_m)) / 3 with p_m = mean(p_i) clamped at 1e-7
    (google-research/augmix: cifar.py); ``F.kl_div(log p_m, p_i)`` is KL(p_i||p_m)."""
    probs = [F.softmax(z, dim=-1) for z in logits_views]
    mixture = torch.clamp(torch.stack(probs).mean(0), 1e-7, 1.0).log()
    kls = [F.kl_div(mixture, p, reduction="batchmean") for p in probs]
    return torch.stack(kls).mean()


class TrainLoss(torch.nn.Module):
    """The training objective for ``num_views`` views stacked view-major in the logits."""

    def __init__(self, name: str = "ce", jsd_weight: float = 12.0) -> None:
        super().__init__()
        if name not in ("ce", "jsd"):
            raise ConfigError(f"loss.name must be 'ce' or 'jsd', got '{name}'")
        self.name = name
        self.jsd_weight = jsd_weight

    def forward(self, logits: torch.Tensor, targets: torch.Tensor, num_views: int) -> torch.Tensor:
        views = logits.chunk(num_views, dim=0) if num_views > 1 else (logits,)
        if self.name == "ce":
            return torch.stack([soft_target_cross_entropy(v, targets) for v in views]).mean()
        if num_views < 2:
            raise ConfigError(
                "loss=jsd needs at least two views per image (clean first); the chosen "
                "augmentation produces one. Use loss=ce or an augmentation with JSD views."
            )
        # AugMix: CE on the clean view only, plus the weighted consistency term.
        return soft_target_cross_entropy(views[0], targets) + self.jsd_weight * jsd_consistency(views)
