"""SnapMix (Huang et al., AAAI 2021): asymmetric box mixing with labels weighted by class activation maps."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...config import SnapMixConfig, choices_of
from ...errors import ConfigError
from ..base import AugBatch
from ..registry import register_aug
from .batch_mix import (
    Box,
    MixingAugmentation,
    area_ratio,
    coin,
    mix_targets,
    random_pairing,
    sample_box,
    sample_lambda,
)
from .saliency import class_activation_maps, feature_maps_and_classifier

#: How a pair of one class is weighted (``aug.same_class_weights``).
SAME_CLASS_WEIGHTS = choices_of(SnapMixConfig, "same_class_weights")


def semantic_maps(cams: torch.Tensor) -> torch.Tensor:
    """SnapMix's semantic percentage maps: each CAM minus its minimum, divided by its sum
    (``get_spm``); a constant CAM gives NaN, which ``snapmix_label_weights`` replaces."""
    cams = cams - cams.amin(dim=(-2, -1), keepdim=True)
    return cams / cams.sum(dim=(-2, -1), keepdim=True)


def snapmix_label_weights(
    maps: torch.Tensor, perm: torch.Tensor, box: Box, source_box: Box
) -> tuple[torch.Tensor, torch.Tensor]:
    """Label weights (rho_a, rho_b) of an image whose ``box`` was replaced by the ``source_box`` of its
    partner: rho_a = 1 - the image's semantic mass inside ``box``, rho_b = the partner's semantic mass
    inside ``source_box`` (SnapMix Sec. 3; ``Shaoli-Huang/SnapMix:utils/mixmethod.py``).

    They need not sum to 1. Where a map is undefined (NaN) the weights fall back to the areas,
    ``1 - box area / image area`` and its complement, as the reference does.
    """
    height, width = maps.shape[-2:]
    eps = 1e-8  # the reference's guard against an all-zero map
    total = maps.sum(dim=(-2, -1))
    inside = maps[:, box.y1 : box.y2, box.x1 : box.x2].sum(dim=(-2, -1))
    rho_a = 1.0 - inside / (total + eps)
    partner = maps[perm]
    inside_source = partner[:, source_box.y1 : source_box.y2, source_box.x1 : source_box.x2].sum(dim=(-2, -1))
    rho_b = inside_source / (total[perm] + eps)
    lam = area_ratio(box, height, width)
    rho_a = torch.where(torch.isnan(rho_a), torch.full_like(rho_a, lam), rho_a)
    rho_b = torch.where(torch.isnan(rho_b), torch.full_like(rho_b, 1.0 - lam), rho_b)
    return rho_a, rho_b


@register_aug("snapmix", SnapMixConfig)
class SnapMix(MixingAugmentation):
    """Per batch: two ratios lam_a, lam_b ~ Beta(alpha, alpha) give a target box in each image and a
    source box in its partner; the source region is resized (bilinear) into the target box, and the
    labels are weighted by the CAM mass removed and added (``snapmix_label_weights``). CAMs come from
    the model being trained, in its current (training) mode, as in the reference. When either box is
    empty the batch stays unmixed, as in the reference. Boxes follow the reference's ``rand_bbox``
    (clovaai's rule: edges at ``c - cut // 2`` and ``c + cut // 2``).

    The reference's loss ``rho_a * CE(y_a) + rho_b * CE(y_b)`` is soft-target CE on
    ``rho_a * y_a + rho_b * y_b``. For pairs of one class the reference code adds both weights to each
    term (twice the paper's ``rho_a + rho_b``); the paper's target is the default, the reference's
    is ``same_class_weights=reference``.
    """

    method = "snapmix"

    def check_model(self, model: nn.Module, image_size: int) -> None:
        """The model's feature map and classifier found on one blank image, in eval mode (no
        statistics or random draws change), so a model without CAMs is named before training."""
        was = model.training
        model.eval()
        try:
            with torch.no_grad():
                feature_maps_and_classifier(model, torch.zeros(1, 3, image_size, image_size))
        except NotImplementedError as exc:
            raise ConfigError(f"aug=snapmix: {exc}") from None
        finally:
            model.train(was)

    def __init__(self, ctx, *, same_class_weights: str = "paper", **cfg) -> None:
        super().__init__(ctx, **cfg)
        if same_class_weights not in SAME_CLASS_WEIGHTS:
            raise ConfigError(
                f"aug.same_class_weights must be one of {list(SAME_CLASS_WEIGHTS)}, got '{same_class_weights}'"
            )
        self.same_class_weights = same_class_weights

    def apply(
        self, images: torch.Tensor, targets: torch.Tensor, indices: torch.Tensor, model: nn.Module
    ) -> AugBatch:
        if not coin(self.prob):
            return AugBatch(images, targets)
        height, width = images.shape[-2:]
        maps = semantic_maps(class_activation_maps(model, images, targets.argmax(dim=1)))
        # Shaoli-Huang/SnapMix:utils/custom_ops.py rand_bbox: clovaai's rule (c +- cut // 2).
        box = sample_box(sample_lambda(self.alpha), height, width, rule="clovaai")
        source_box = sample_box(sample_lambda(self.alpha), height, width, rule="clovaai")
        perm = random_pairing(len(images), images.device)
        if box.area == 0 or source_box.area == 0:
            return AugBatch(images, targets)
        patch = images[perm][..., source_box.y1 : source_box.y2, source_box.x1 : source_box.x2]
        mixed = images.clone()
        mixed[..., box.y1 : box.y2, box.x1 : box.x2] = F.interpolate(
            patch, size=box.size, mode="bilinear", align_corners=True
        )
        rho_a, rho_b = snapmix_label_weights(maps, perm, box, source_box)
        if self.same_class_weights == "reference":
            # Each weight of a same-class pair raised by the other's: the class counts 2 (rho_a + rho_b).
            labels = targets.argmax(dim=1)
            same = labels == labels[perm]
            total = rho_a + rho_b
            rho_a, rho_b = torch.where(same, total, rho_a), torch.where(same, total, rho_b)
        return AugBatch(mixed, mix_targets(targets, perm, rho_a, rho_b))
