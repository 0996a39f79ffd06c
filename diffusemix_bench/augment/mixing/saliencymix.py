"""SaliencyMix (Uddin et al., ICLR 2021): CutMix whose box is centred on the source image's saliency peak."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from ...config import SaliencyMixConfig
from ...errors import ConfigError
from ..base import AugBatch, AugContext
from ..registry import register_aug
from .batch_mix import (
    MixingAugmentation,
    area_ratio,
    coin,
    mix_targets,
    paste_box,
    random_pairing,
    sample_box,
    sample_lambda,
)
from .saliency import SALIENCY_DETECTORS, peak_position


@register_aug("saliencymix", SaliencyMixConfig)
class SaliencyMix(MixingAugmentation):
    """One lam ~ Beta(alpha, alpha) and one partner permutation per batch; the saliency map of the
    first partner image gives the peak on which a box of side ``int(side * sqrt(1 - lam))`` is
    centred, and that region of every partner is pasted into its image; labels mix by the pasted
    area (``afm-shahab-uddin/SaliencyMix:SaliencyMix_CIFAR/saliencymix.py``,
    ``3neutronstar/GuidedMixup:FGVC/Mixup/utils.py`` ``saliency_bbox``).

    The references run OpenCV on the normalised float image and scale its 8-bit map by 255 in
    uint8 before the argmax; here the detector sees the [0, 1] image as 8-bit gray levels and the
    peak is taken on its own map (bit-identical to OpenCV's on that 8-bit image). The box around the
    peak ends at ``peak +- cut // 2`` as the references' ``saliency_bbox`` does.
    """

    method = "saliencymix"

    def __init__(
        self,
        ctx: AugContext,
        *,
        alpha: float | None = None,
        prob: float | None = None,
        dataset_defaults: Mapping[str, Mapping[str, float]] | None = None,
        saliency: str = "fine_grained",
    ) -> None:
        super().__init__(ctx, alpha=alpha, prob=prob, dataset_defaults=dataset_defaults)
        if saliency not in SALIENCY_DETECTORS:
            raise ConfigError(
                f"aug.saliency of aug=saliencymix must be one of {sorted(SALIENCY_DETECTORS)}, got '{saliency}'"
            )
        self.detector = SALIENCY_DETECTORS[saliency]

    def apply(
        self, images: torch.Tensor, targets: torch.Tensor, indices: torch.Tensor, model: nn.Module
    ) -> AugBatch:
        if not coin(self.prob):
            return AugBatch(images, targets)
        lam = sample_lambda(self.alpha)
        perm = random_pairing(len(images), images.device)
        height, width = images.shape[-2:]
        peak = peak_position(self.detector(images[perm[:1]])[0])
        box = sample_box(lam, height, width, center=peak, rule="clovaai")
        return AugBatch(
            paste_box(images, perm, box), mix_targets(targets, perm, area_ratio(box, height, width))
        )
