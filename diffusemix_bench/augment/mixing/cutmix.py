"""CutMix (Yun et al., ICCV 2019): paste a box from a partner image, mix labels by the pasted area."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..base import AugBatch
from ..registry import register_aug
from .batch_mix import (
    MixingAugmentation,
    MixingConfig,
    area_ratio,
    coin,
    mix_targets,
    paste_box,
    random_pairing,
    sample_box,
    sample_lambda,
)


@dataclass
class CutMixConfig(MixingConfig):
    name: str = "cutmix"


@register_aug("cutmix", CutMixConfig)
class CutMix(MixingAugmentation):
    """One lam ~ Beta(alpha, alpha) and one box of area about (1 - lam) per batch; every image gets
    its partner's pixels inside the box and the label weight ``1 - box area / image area`` of the
    box actually pasted after clipping (``snu-mllab/PuzzleMix:mixup.py`` ``mixup_box``)."""

    method = "cutmix"

    def apply(
        self, images: torch.Tensor, targets: torch.Tensor, indices: torch.Tensor, model: nn.Module
    ) -> AugBatch:
        if not coin(self.prob):
            return AugBatch(images, targets)
        height, width = images.shape[-2:]
        box = sample_box(sample_lambda(self.alpha), height, width)
        perm = random_pairing(len(images), images.device)
        return AugBatch(
            paste_box(images, perm, box), mix_targets(targets, perm, area_ratio(box, height, width))
        )
