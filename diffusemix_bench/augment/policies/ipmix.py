"""IPMix (Huang et al., NeurIPS 2023): AugMix-style mixing of k chains, each either image-level
(0..t operations) or patch-level (0..t patches mixed with the mixing picture by PixMix's add and
multiply or by random pixel/element masks); trained with the JSD loss by default, as in the paper.

Reference: ``hzlsaber/IPMix:cifar.py, imagenet.py, IPMix_utils.py``. Where the reference's two
scripts differ, the CIFAR one applies to CIFAR datasets and the ImageNet one elsewhere: severity
3 / 1, beta 3 / 4, patch sizes 4..32 / 4..224, and on ImageNet a patch partner that is an
augmented copy of the image with probability 1/2 instead of always the mixing picture. One
deliberate deviation: the reference pastes each mixed patch back through ``ToPILImage`` without
clipping, and the cast of values outside [0, 1] to uint8 is undefined (it wraps around on common
CPUs); here the patch is clipped to [0, 1] as PixMix does after every mixing step. Within [0, 1]
the pasted patch is truncated to uint8 as ``ToPILImage`` does in the reference (``mul(255).byte()``). The mixing set
is the fractal bank; one picture per sample is shared by both JSD views, as in the reference.
"""

from __future__ import annotations

import logging

import torch

from ...config import IPMixConfig
from ...errors import ConfigError
from ..base import AugContext
from ..registry import register_aug
from .jsd_views import JsdViewsAugmentation
from .mixing_pictures import MixingPictures, load_mixing_pictures
from .ops import IPMIX_OPS, check_severity, convex_mix, mixing_weights, random_op
from .pixmix import MixingOp, add, choose, multiply

log = logging.getLogger(__name__)


def random_pixels(x: torch.Tensor, y: torch.Tensor, beta: float) -> torch.Tensor:
    """Each pixel (all channels together) from x with a probability drawn uniformly per call."""
    mask = torch.rand(1, *x.shape[-2:]) < torch.rand(())
    return torch.where(mask, x, y)


def random_elements(x: torch.Tensor, y: torch.Tensor, beta: float) -> torch.Tensor:
    """Each pixel of each channel from x with a probability drawn uniformly per call."""
    mask = torch.rand(x.shape) < torch.rand(())
    return torch.where(mask, x, y)


IPMIX_MIXINGS: tuple[MixingOp, ...] = (add, multiply, random_pixels, random_elements)


def patch_mix(
    image: torch.Tensor, partner: torch.Tensor, patch_size: int, mixing: MixingOp, beta: float
) -> torch.Tensor:
    """Mix one patch of ``image`` with the same patch of ``partner`` (IPMix_utils.patch_mixing).

    The patch's corner is uniform over positions where a ``patch_size`` square fits; the patch is
    that square, or with probability 1/2 a rectangle with sides uniform in [2, patch_size]. A patch
    size larger than the image is taken as the whole image (the reference's largest size is its
    crop side).
    """
    height, width = image.shape[-2:]
    size = min(patch_size, height, width)
    left = int(torch.randint(width - size + 1, ()))
    top = int(torch.randint(height - size + 1, ()))
    if float(torch.rand(())) < 0.5:
        w = h = size
    else:
        w = int(torch.randint(2, size + 1, ()))
        h = int(torch.randint(2, size + 1, ()))
    region = (slice(None), slice(top, top + h), slice(left, left + w))
    mixed = mixing(image[region].float() / 255, partner[region].float() / 255, beta).clamp_(0, 1)
    out = image.clone()
    # Truncated, as the reference's ToPILImage pastes it (mul(255).byte()).
    out[region] = mixed.mul_(255).to(torch.uint8)
    return out


class IPMixPolicy:
    """The per-image IPMix transform on uint8 CHW tensors."""

    def __init__(
        self,
        pictures: MixingPictures,
        k: int,
        t: int,
        beta: float,
        severity: int,
        alpha: float,
        patch_sizes: list[int],
        augmented_partner_prob: float,
    ) -> None:
        self.pictures = pictures
        self.k = k
        self.t = t
        self.beta = beta
        self.severity = severity
        self.alpha = alpha
        self.patch_sizes = patch_sizes
        self.augmented_partner_prob = augmented_partner_prob

    def chain(self, image: torch.Tensor, picture: torch.Tensor) -> torch.Tensor:
        patch_level = float(torch.rand(())) < 0.5
        mixed = image
        for _ in range(int(torch.randint(self.t + 1, ()))):
            if not patch_level:
                mixed = random_op(mixed, IPMIX_OPS, self.severity)
                continue
            size = choose(self.patch_sizes)
            mixing = choose(IPMIX_MIXINGS)
            partner = picture
            if float(torch.rand(())) < self.augmented_partner_prob:
                partner = random_op(image, IPMIX_OPS, self.severity)
            mixed = patch_mix(mixed, partner, size, mixing, self.beta)
        return mixed

    def mix(self, image: torch.Tensor, picture: torch.Tensor) -> torch.Tensor:
        """IPMix of ``image`` with mixing picture ``picture`` (both uint8, same size)."""
        ws, m = mixing_weights(self.k, self.alpha)
        return convex_mix(image, [self.chain(image, picture) for _ in range(self.k)], ws, m)

    def _picture(self, image: torch.Tensor) -> torch.Tensor:
        return self.pictures.sample(image.shape[-2], image.shape[-1])

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        return self.mix(image, self._picture(image))

    def jsd_views(self, image: torch.Tensor) -> torch.Tensor:
        """[clean, IPMix, IPMix], both mixes with the same mixing picture (cifar.py IPMixDataset)."""
        picture = self._picture(image)
        return torch.stack([image, self.mix(image, picture), self.mix(image, picture)])


@register_aug("ipmix", IPMixConfig)
class IPMix(JsdViewsAugmentation):
    """IPMix with the fractal bank as mixing set; with ``loss=jsd`` (the default) each sample is
    [clean, ipmix, ipmix]. ``bank`` (a FractalBank or a uint8 tensor N x 3 x S x S) replaces the
    configured bank, for use outside train()."""

    method = "ipmix"

    def __init__(self, ctx: AugContext, bank=None, **cfg) -> None:
        super().__init__(ctx, **cfg)
        c = IPMixConfig(**cfg)
        self.k, self.t, self.alpha = c.k, c.t, c.alpha
        s = self.resolve_per_dataset(
            "ipmix",
            {
                "beta": c.beta,
                "severity": c.severity,
                "patch_sizes": c.patch_sizes,
                "augmented_partner_prob": c.augmented_partner_prob,
                "pic_resize_ratio": c.pic_resize_ratio,
            },
            c.dataset_defaults,
        )
        self.beta, self.severity = s["beta"], s["severity"]
        self.patch_sizes = list(s["patch_sizes"])
        self.augmented_partner_prob = s["augmented_partner_prob"]
        self.resize_ratio = s["pic_resize_ratio"]
        check_severity(self.severity, "aug")
        if c.k < 1 or c.t < 0:
            raise ConfigError(f"aug.k must be >= 1 and aug.t >= 0, got k={c.k}, t={c.t}")
        if not self.patch_sizes or min(self.patch_sizes) < 2:
            raise ConfigError(
                f"aug.patch_sizes must be a non-empty list of sides >= 2, got {self.patch_sizes}"
            )
        if not 0.0 <= self.augmented_partner_prob <= 1.0:
            raise ConfigError(
                f"aug.augmented_partner_prob must be in [0, 1], got {self.augmented_partner_prob}"
            )
        if self.beta <= 0 or self.alpha <= 0:
            raise ConfigError(f"aug.beta and aug.alpha must be positive, got {self.beta} and {self.alpha}")
        if c.t == 0:
            log.warning("aug.t=0: IPMix's chains are empty, so every image is left as it is")
        whole = sorted({p for p in self.patch_sizes if p > ctx.image_size})
        if whole:
            log.warning(
                "aug.patch_sizes %s are larger than the %d px crop (dataset.image_size): such patches "
                "are the whole image",
                whole,
                ctx.image_size,
            )
        self.bank = bank
        self._policy: IPMixPolicy | None = None
        log.info(
            "ipmix: k=%d t=%d beta=%g severity=%d patch_sizes=%s augmented_partner_prob=%g loss=%s",
            self.k,
            self.t,
            self.beta,
            self.severity,
            self.patch_sizes,
            self.augmented_partner_prob,
            ctx.loss,
        )

    @property
    def policy(self) -> IPMixPolicy:
        if self._policy is None:
            pictures = load_mixing_pictures(self.ctx, self.bank, self.resize_ratio, "ipmix", self.resolved)
            self._policy = IPMixPolicy(
                pictures,
                self.k,
                self.t,
                self.beta,
                self.severity,
                self.alpha,
                self.patch_sizes,
                self.augmented_partner_prob,
            )
        return self._policy
