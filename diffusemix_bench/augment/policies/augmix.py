"""AugMix (Hendrycks et al., ICLR 2020): chains of operations mixed with Dirichlet weights, then with
the original image by a Beta weight; trained with the JSD consistency loss by default.

Reference: ``google-research/augmix:cifar.py, imagenet.py, augmentations.py``. torchvision's
``v2.AugMix`` is not used because it departs from the reference in three ways that change the
images: it draws each operation's strength from ten fixed bins indexed by ``randint(severity)``
(at severity 3 the geometric and colour operations do nothing in a third of the draws and reach
at most 2/9 of their range, where the reference draws a level uniform in [0.1, 3], up to 3/10 of
the range); it truncates the mixed image to uint8 (a -0.5 grey-level bias; the reference mixes in
float); and it enables the colour operations by default, which the paper leaves out because they
overlap ImageNet-C. The operations themselves are torchvision's functional ops (see ``ops.py``).
"""

from __future__ import annotations

import logging

import torch

from ...config import AugMixConfig
from ...errors import ConfigError
from ..base import AugContext
from ..registry import register_aug
from .jsd_views import JsdViewsAugmentation
from .ops import AUGMIX_ALL_OPS, AUGMIX_OPS, Op, check_severity, convex_mix, mixing_weights, random_op

log = logging.getLogger(__name__)


class AugMixPolicy:
    """The per-image AugMix transform on uint8 CHW tensors (one mixed view per call)."""

    def __init__(self, severity: int, width: int, depth: int, alpha: float, ops: tuple[Op, ...]) -> None:
        self.severity = severity
        self.width = width
        self.depth = depth
        self.alpha = alpha
        self.ops = ops

    def chain(self, image: torch.Tensor) -> torch.Tensor:
        depth = self.depth if self.depth > 0 else int(torch.randint(1, 4, ()))
        for _ in range(depth):
            image = random_op(image, self.ops, self.severity)
        return image

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        ws, m = mixing_weights(self.width, self.alpha)
        return convex_mix(image, [self.chain(image) for _ in range(self.width)], ws, m)

    def jsd_views(self, image: torch.Tensor) -> torch.Tensor:
        """[clean, AugMix, AugMix]: two independent mixes of the same crop (cifar.py AugMixDataset)."""
        return torch.stack([image, self(image), self(image)])


@register_aug("augmix", AugMixConfig)
class AugMix(JsdViewsAugmentation):
    """AugMix; with ``loss=jsd`` (the default) each sample is [clean, augmix, augmix]."""

    method = "augmix"

    def __init__(self, ctx: AugContext, **cfg) -> None:
        super().__init__(ctx, **cfg)
        c = AugMixConfig(**cfg)
        severity = self.resolve_per_dataset("augmix", {"severity": c.severity}, c.dataset_defaults)[
            "severity"
        ]
        check_severity(severity, "aug")
        if c.width < 1:
            raise ConfigError(f"aug.width must be at least 1, got {c.width}")
        if c.alpha <= 0:
            raise ConfigError(f"aug.alpha must be positive, got {c.alpha}")
        self.policy = AugMixPolicy(
            severity, c.width, c.depth, c.alpha, AUGMIX_ALL_OPS if c.all_ops else AUGMIX_OPS
        )
        log.info(
            "augmix: severity=%d width=%d depth=%d alpha=%g loss=%s",
            severity,
            c.width,
            c.depth,
            c.alpha,
            ctx.loss,
        )
