"""PixMix (Hendrycks et al., CVPR 2022): the image, possibly augmented, is mixed 0..k times with
either another augmented copy or a picture from the mixing set (here the fractal bank), by
additive or multiplicative mixing with Beta-drawn weights.

Reference: ``andyzoujm/pixmix:pixmix_utils.py, cifar.py, imagenet.py``. The mixing runs in float
on [0, 1] with a clip after each step, as in the reference; the result is rounded once to uint8.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch

from ...config import PixMixConfig
from ...errors import ConfigError
from ..base import AugContext, Augmentation
from ..registry import register_aug
from .mixing_pictures import MixingPictures, load_mixing_pictures
from .ops import AUGMIX_ALL_OPS, AUGMIX_OPS, Op, check_severity, random_op, to_uint8

log = logging.getLogger(__name__)


def sample_ab(beta: float) -> tuple[float, float]:
    """PixMix get_ab: (a, b) ~ (Beta(beta, 1), Beta(1, beta)), or with probability 1/2
    (1 + Beta(1, beta), -Beta(1, beta)), which extrapolates away from the partner."""
    one = torch.tensor(1.0)
    strong = torch.distributions.Beta(torch.tensor(float(beta)), one)
    weak = torch.distributions.Beta(one, torch.tensor(float(beta)))
    if float(torch.rand(())) < 0.5:
        return float(strong.sample()), float(weak.sample())
    return 1.0 + float(weak.sample()), -float(weak.sample())


def mix_add(x: torch.Tensor, y: torch.Tensor, a: float, b: float) -> torch.Tensor:
    """Additive mixing in [-1, 1]: ((a (2x - 1) + b (2y - 1)) + 1) / 2 (pixmix_utils.add)."""
    return (a * (2 * x - 1) + b * (2 * y - 1) + 1) / 2


def mix_multiply(x: torch.Tensor, y: torch.Tensor, a: float, b: float) -> torch.Tensor:
    """Multiplicative (geometric) mixing in [0, 2]: (2x)^a (2y)^b / 2, with 2y clipped at
    1e-37 so that negative b stays finite (pixmix_utils.multiply)."""
    return (2 * x) ** a * (2 * y).clamp_min(1e-37) ** b / 2


def add(x: torch.Tensor, y: torch.Tensor, beta: float) -> torch.Tensor:
    return mix_add(x, y, *sample_ab(beta))


def multiply(x: torch.Tensor, y: torch.Tensor, beta: float) -> torch.Tensor:
    return mix_multiply(x, y, *sample_ab(beta))


MixingOp = Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]
PIXMIX_MIXINGS: tuple[MixingOp, ...] = (add, multiply)


def choose(options):
    return options[int(torch.randint(len(options), ()))]


class PixMixPolicy:
    """The per-image PixMix transform on uint8 CHW tensors."""

    def __init__(
        self, pictures: MixingPictures, k: int, beta: float, severity: int, ops: tuple[Op, ...]
    ) -> None:
        self.pictures = pictures
        self.k = k
        self.beta = beta
        self.severity = severity
        self.ops = ops

    def _maybe_augmented(self, image: torch.Tensor) -> torch.Tensor:
        return random_op(image, self.ops, self.severity) if float(torch.rand(())) < 0.5 else image

    def mix(self, image: torch.Tensor, picture: torch.Tensor) -> torch.Tensor:
        """PixMix of ``image`` with mixing picture ``picture`` (both uint8, same size)."""
        mixed = self._maybe_augmented(image).float() / 255
        for _ in range(int(torch.randint(self.k + 1, ()))):
            augmented = float(torch.rand(())) < 0.5
            partner = random_op(image, self.ops, self.severity) if augmented else picture
            mixed = choose(PIXMIX_MIXINGS)(mixed, partner.float() / 255, self.beta).clamp_(0, 1)
        return to_uint8(mixed * 255)

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        return self.mix(image, self.pictures.sample(image.shape[-2], image.shape[-1]))


@register_aug("pixmix", PixMixConfig)
class PixMix(Augmentation):
    """PixMix with the fractal bank as mixing set; ``bank`` (a FractalBank or a uint8 tensor
    N x 3 x S x S) replaces the configured bank, for use outside train()."""

    def __init__(self, ctx: AugContext, bank=None, **cfg) -> None:
        super().__init__(ctx, **cfg)
        c = PixMixConfig(**cfg)
        self.k = c.k
        s = self.resolve_per_dataset(
            "pixmix",
            {"beta": c.beta, "severity": c.severity, "pic_resize_ratio": c.pic_resize_ratio},
            c.dataset_defaults,
        )
        self.beta, self.severity, self.resize_ratio = s["beta"], s["severity"], s["pic_resize_ratio"]
        check_severity(self.severity, "aug")
        if c.k < 0:
            raise ConfigError(f"aug.k must be >= 0, got {c.k}")
        if self.beta <= 0:
            raise ConfigError(f"aug.beta must be positive, got {self.beta}")
        self.ops = AUGMIX_ALL_OPS if c.all_ops else AUGMIX_OPS
        self.bank = bank
        self._policy: PixMixPolicy | None = None
        log.info("pixmix: k=%d beta=%g severity=%d", self.k, self.beta, self.severity)
        if c.k == 0:
            log.warning(
                "aug.k=0: PixMix mixes no picture into any image (each is one augmentation operation "
                "or left as it is, half the time each); the reference's k is 4"
            )

    def sample_transform(self) -> PixMixPolicy:
        if self._policy is None:
            pictures = load_mixing_pictures(self.ctx, self.bank, self.resize_ratio, "pixmix", self.resolved)
            self._policy = PixMixPolicy(pictures, self.k, self.beta, self.severity, self.ops)
        return self._policy
