"""Mixup (Zhang et al., ICLR 2018): convex combinations of image pairs and of their labels."""

from __future__ import annotations

import torch
from torch import nn

from ...config import MixupConfig
from ..base import AugBatch
from ..registry import register_aug
from .batch_mix import (
    MixingAugmentation,
    coin,
    mix_images,
    mix_targets,
    random_pairing,
    sample_lambda,
)


@register_aug("mixup", MixupConfig)
class Mixup(MixingAugmentation):
    """``x = lam * x_i + (1 - lam) * x_j`` with one lam ~ Beta(alpha, alpha) per batch and a random
    partner j for each i (``snu-mllab/PuzzleMix:mixup.py`` ``mixup_process``); same mix of labels."""

    method = "mixup"

    def apply(
        self, images: torch.Tensor, targets: torch.Tensor, indices: torch.Tensor, model: nn.Module
    ) -> AugBatch:
        if not coin(self.prob):
            return AugBatch(images, targets)
        lam = sample_lambda(self.alpha)
        perm = random_pairing(len(images), images.device)
        return AugBatch(mix_images(images, perm, lam), mix_targets(targets, perm, lam))
