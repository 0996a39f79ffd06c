"""YOCO, You Only Cut Once (Han et al., ICML 2022): cut each image in two halves, augment each half
independently, put them back together."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from ...config import YOCOConfig
from ...errors import ConfigError
from ..base import AugBatch, AugContext, Augmentation
from ..registry import register_aug
from .batch_mix import check_alpha, mix_targets, random_pairing

OPS = ("hflip", "mixup")


def _halves(images: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The two pieces of one cut at ``int(size / 2)`` along ``dim`` (-1: left/right, -2: top/bottom)."""
    mid = images.shape[dim] // 2
    return images.narrow(dim, 0, mid), images.narrow(dim, mid, images.shape[dim] - mid)


def _per_sample(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return values.view(-1, *([1] * (like.dim() - 1)))


@register_aug("yoco", YOCOConfig)
class YOCO(Augmentation):
    """Each op cuts every image once, horizontally or vertically with probability 1/2, and applies
    the op to the two halves independently (``JunlinHan/YOCO:classification/cifar100/main.py``
    ``YOCO``). The whole-image flip of the dataset transform still runs before (the YOCO code
    drops it: set dataset.hflip=false to match)."""

    def __init__(
        self, ctx: AugContext, *, ops: Sequence[str] = ("hflip",), alpha: float = 1.0, per_image: bool = True
    ) -> None:
        super().__init__(ctx)
        unknown = [op for op in ops if op not in OPS]
        if not ops or unknown:
            raise ConfigError(
                f"aug.ops of aug=yoco must be a non-empty list from {list(OPS)}, got {list(ops)}"
            )
        check_alpha(alpha, "yoco")
        if alpha != YOCOConfig.alpha and "mixup" not in ops:
            raise ConfigError(
                f"aug.alpha={alpha} of aug=yoco is the mixing ratio of its mixup op, and aug.ops={list(ops)} runs "
                "none; drop it, or add mixup to aug.ops ('aug.ops=[hflip,mixup]')"
            )
        self.ops = list(ops)
        self.alpha = float(alpha)
        self.per_image = per_image

    def _coins(self, n: int) -> torch.Tensor:
        """Fair coins on the CPU: one per image, or one for the whole batch, expanded to n."""
        return (torch.rand(n if self.per_image else 1) < 0.5).expand(n)

    def _cut(self, images: torch.Tensor, op: Callable[[torch.Tensor, int], torch.Tensor]) -> torch.Tensor:
        """Cut each image across its width or its height (a coin each) and run ``op(half, i)`` on
        both halves, i = 0 for the left/top one."""

        def join(dim: int) -> torch.Tensor:
            return torch.cat([op(half, i) for i, half in enumerate(_halves(images, dim))], dim=dim)

        across_width = self._coins(len(images))
        if not self.per_image:
            return join(-1 if bool(across_width[0]) else -2)
        return torch.where(_per_sample(across_width.to(images.device), images), join(-1), join(-2))

    def _hflip(self, images: torch.Tensor) -> torch.Tensor:
        flips = [_per_sample(self._coins(len(images)).to(images.device), images) for _ in range(2)]
        return self._cut(images, lambda half, i: torch.where(flips[i], half.flip(-1), half))

    def _mixup(self, images: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n, device = len(images), images.device
        a = torch.tensor(self.alpha)
        lams = torch.distributions.Beta(a, a).sample((2, n if self.per_image else 1)).expand(2, n).to(device)
        perm = random_pairing(n, device)

        def mix(half: torch.Tensor, i: int) -> torch.Tensor:
            lam = _per_sample(lams[i], half)
            return half * lam + half[perm] * (1.0 - lam)

        return self._cut(images, mix), mix_targets(targets, perm, lams.mean(0))

    def apply(
        self, images: torch.Tensor, targets: torch.Tensor, indices: torch.Tensor, model: nn.Module
    ) -> AugBatch:
        for op in self.ops:
            if op == "hflip":
                images = self._hflip(images)
            else:
                images, targets = self._mixup(images, targets)
        return AugBatch(images, targets)
