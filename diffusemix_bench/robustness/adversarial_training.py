"""Fast adversarial training (``adv.p``): a share of the training batches is perturbed by one signed
gradient step from a random start, as the adversarial variant of PuzzleMix's ``main.py`` (and its
Co-Mixup and GuidedMixup copies) does, after Wong, Rice and Kolter (ICLR 2020).

Per batch, with probability ``p`` (one coin per batch; PuzzleMix: 0.1 on CIFAR-100, 0.15 on
Tiny-ImageNet): delta ~ U(-eps, eps) with the images kept in [0, 1] (the random start); one step
delta += step * sign(grad of the training loss at images + delta) with step = eps + 2/255 (PuzzleMix:
eps 10/255, step 12/255); delta projected to [-eps, eps]; then, as PuzzleMix does, the whole
perturbation scaled by u ~ U(0, 1) (``scale=uniform``; ``none`` keeps it whole, as Wong et al.); the
model trains on clamp(images + delta, 0, 1).

Where it applies: to the views the model trains on, after the augmentation made them, so it works
the same for every method. PuzzleMix's own variant perturbs its two sources before they are mixed
(two coins, one per source): ``aug=puzzlemix`` keeps that form as ``aug.adv_p``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from ..config import check_budget
from ..errors import ConfigError

SCALES = ("uniform", "none")


@dataclass(frozen=True)
class FastAdversarial:
    """The settings of ``adv``: probability per batch, radius and step in 1/255 units."""

    p: float = 0.0
    eps: float = 10.0
    step: float | None = None  # None: eps + 2 (PuzzleMix)
    scale: str = "uniform"

    def __post_init__(self) -> None:
        if not 0.0 <= self.p <= 1.0:
            raise ConfigError(f"adv.p is the share of batches perturbed and must be in [0, 1], got {self.p}")
        if self.eps < 0 or (self.step is not None and self.step < 0):
            raise ConfigError(
                f"adv.eps and adv.step are in 1/255 units and must be >= 0, got {self.eps}, {self.step}"
            )
        if self.scale not in SCALES:
            raise ConfigError(f"adv.scale must be one of {list(SCALES)}, got '{self.scale}'")
        if self.p > 0:  # (a budget written as a fraction trained with almost no perturbation)
            check_budget("adv.eps", self.eps, "near PuzzleMix's 10")
            if self.step is not None:
                check_budget("adv.step", self.step, "near PuzzleMix's eps + 2")

    @property
    def enabled(self) -> bool:
        return self.p > 0

    @property
    def step_size(self) -> float:
        return (self.eps + 2.0 if self.step is None else self.step) / 255.0

    def draw(self) -> bool:
        """This batch's coin (torch's global generator, seeded with the run)."""
        return self.enabled and bool(torch.rand(()) < self.p)

    def perturb(
        self, model: nn.Module, images: torch.Tensor, loss_of: Callable[[torch.Tensor], torch.Tensor]
    ) -> torch.Tensor:
        """``images`` (float [0, 1]) moved by one fast adversarial step against ``loss_of(logits)``."""
        eps = self.eps / 255.0
        start = (images + torch.empty_like(images).uniform_(-eps, eps)).clamp_(0.0, 1.0)
        delta = (start - images).detach().requires_grad_(True)
        with torch.enable_grad():
            loss = loss_of(model(images.detach() + delta))
            (grad,) = torch.autograd.grad(loss, delta)
        delta = (delta.detach() + self.step_size * grad.sign()).clamp_(-eps, eps)
        if self.scale == "uniform":
            delta = delta * torch.rand(()).item()
        return (images.detach() + delta).clamp_(0.0, 1.0)
