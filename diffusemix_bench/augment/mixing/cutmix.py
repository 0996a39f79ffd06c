"""CutMix (Yun et al., ICCV 2019): paste a box from a partner image, mix labels by the pasted area."""

from __future__ import annotations

import torch
from torch import nn

from ...config import CutMixConfig
from ...errors import ConfigError
from ..base import AugBatch, AugContext
from ..registry import register_aug
from .batch_mix import (
    BOX_RULES,
    MixingAugmentation,
    area_ratio,
    coin,
    mix_targets,
    paste_box,
    random_pairing,
    sample_box,
    sample_lambda,
)


@register_aug("cutmix", CutMixConfig)
class CutMix(MixingAugmentation):
    """One lam ~ Beta(alpha, alpha) and one box of area about (1 - lam) per batch; every image gets
    its partner's pixels inside the box and the label weight ``1 - box area / image area`` of the
    box actually pasted after clipping. The box is drawn by the rule of the code each recipe comes
    from (``aug.box_rule``): PuzzleMix's ``mixup_box`` for CIFAR-100 and Tiny-ImageNet (Tables 2
    and 4), clovaai's ``rand_bbox`` (as GuidedMixup's and SnapMix's FGVC code) elsewhere."""

    method = "cutmix"

    def __init__(self, ctx: AugContext, *, box_rule: str | None = None, **cfg) -> None:
        super().__init__(ctx, extra={"box_rule": box_rule}, **cfg)
        self.box_rule = self.resolved["box_rule"]
        if self.box_rule not in BOX_RULES:
            raise ConfigError(f"aug.box_rule must be one of {BOX_RULES}, got '{self.box_rule}'")

    def apply(
        self, images: torch.Tensor, targets: torch.Tensor, indices: torch.Tensor, model: nn.Module
    ) -> AugBatch:
        if not coin(self.prob):
            return AugBatch(images, targets)
        height, width = images.shape[-2:]
        box = sample_box(sample_lambda(self.alpha), height, width, rule=self.box_rule)
        perm = random_pairing(len(images), images.device)
        return AugBatch(
            paste_box(images, perm, box), mix_targets(targets, perm, area_ratio(box, height, width))
        )
