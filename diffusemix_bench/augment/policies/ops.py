"""The image operations of the AugMix family (AugMix, PixMix, IPMix) on uint8 CHW tensors, and
AugMix's Dirichlet/Beta mixing of operation chains.

Each operation follows ``google-research/augmix:augmentations.py`` (copied unchanged into
``andyzoujm/pixmix:pixmix_utils.py``; ``hzlsaber/IPMix:IPMix_utils.py`` adds mirror and invert):
a level is drawn uniformly from [0.1, severity] and scaled by ``level / 10`` to the operation's
largest value; geometric operations flip their sign with probability 1/2. Every operation gives the
bytes of the PIL call the references make: posterize, solarize, equalize, invert, mirror,
brightness, sharpness and translate through torchvision's functional ops, which equal PIL's there;
autocontrast, color, contrast, rotate and shear through PIL itself (``_with_pil``), where
torchvision's float arithmetic differs (colour ops up to one grey level below; bilinear rotate and
shear rounding where PIL truncates, and blending the border with 0 where PIL leaves every pixel
whose source lies outside the image at 0). Tests compare every operation with PIL byte for byte.
Randomness comes from torch's global generator, which DataLoader seeds in every worker.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageEnhance, ImageOps
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as F

from ...errors import ConfigError

# The references' PARAMETER_MAX: levels run up to 10.
MAX_SEVERITY = 10
_BILINEAR = InterpolationMode.BILINEAR


def _int_parameter(level: float, maxval: float) -> int:
    return int(level * maxval / 10)


def _float_parameter(level: float, maxval: float) -> float:
    return float(level) * maxval / 10.0


def _enhance_factor(level: float, height: int, width: int) -> float:
    # AugMix color/contrast/brightness/sharpness: factor in [0.1, 1.9].
    return _float_parameter(level, 1.8) + 0.1


def _with_pil(image: torch.Tensor, operation: Callable[[Image.Image], Image.Image]) -> torch.Tensor:
    """``operation`` (a PIL call, as the references make it) on a uint8 CHW tensor (RGB or grey)."""
    array = image.permute(1, 2, 0).numpy()
    out = np.array(operation(Image.fromarray(array[..., 0] if image.shape[0] == 1 else array)))
    return torch.from_numpy(out.reshape(*out.shape[:2], -1)).permute(2, 0, 1).contiguous()


def _rotate(image: torch.Tensor, degrees: float) -> torch.Tensor:
    return _with_pil(image, lambda pil: pil.rotate(degrees, resample=Image.BILINEAR))


def _shear(image: torch.Tensor, x: float, y: float) -> torch.Tensor:
    # The references' Image.transform(size, AFFINE, (1, x, 0, y, 1, 0), resample=BILINEAR).
    return _with_pil(
        image, lambda pil: pil.transform(pil.size, Image.AFFINE, (1, x, 0, y, 1, 0), resample=Image.BILINEAR)
    )


def _translate(image: torch.Tensor, dx: float, dy: float) -> torch.Tensor:
    # PIL's affine (1, 0, dx, 0, 1, dy) samples at x + dx: the content moves by -dx (whole pixels:
    # torchvision's shift gives PIL's bytes).
    return F.affine(
        image, angle=0.0, translate=[-int(dx), -int(dy)], scale=1.0, shear=[0.0, 0.0], interpolation=_BILINEAR
    )


@dataclass(frozen=True)
class Op:
    """One operation: ``magnitude(level, height, width)`` gives its parameter (None for
    operations without one), ``signed`` flips it with probability 1/2, ``apply`` runs it."""

    name: str
    apply: Callable[[torch.Tensor, float], torch.Tensor]
    magnitude: Callable[[float, int, int], float] | None = None
    signed: bool = False


AUTOCONTRAST = Op("autocontrast", lambda img, _: _with_pil(img, ImageOps.autocontrast))
EQUALIZE = Op("equalize", lambda img, _: F.equalize(img))
POSTERIZE = Op(
    "posterize", lambda img, bits: F.posterize(img, int(bits)), lambda lv, h, w: 4 - _int_parameter(lv, 4)
)
ROTATE = Op(
    "rotate",
    lambda img, deg: _rotate(img, deg),
    lambda lv, h, w: _int_parameter(lv, 30),
    signed=True,
)
SOLARIZE = Op("solarize", lambda img, t: F.solarize(img, t), lambda lv, h, w: 256 - _int_parameter(lv, 256))
SHEAR_X = Op(
    "shear_x", lambda img, s: _shear(img, s, 0.0), lambda lv, h, w: _float_parameter(lv, 0.3), signed=True
)
SHEAR_Y = Op(
    "shear_y", lambda img, s: _shear(img, 0.0, s), lambda lv, h, w: _float_parameter(lv, 0.3), signed=True
)
# The references translate by up to a third of IMAGE_SIZE (their square crop side).
TRANSLATE_X = Op(
    "translate_x",
    lambda img, d: _translate(img, d, 0),
    lambda lv, h, w: _int_parameter(lv, w / 3),
    signed=True,
)
TRANSLATE_Y = Op(
    "translate_y",
    lambda img, d: _translate(img, 0, d),
    lambda lv, h, w: _int_parameter(lv, h / 3),
    signed=True,
)
COLOR = Op(
    "color", lambda img, f: _with_pil(img, lambda p: ImageEnhance.Color(p).enhance(f)), _enhance_factor
)
CONTRAST = Op(
    "contrast", lambda img, f: _with_pil(img, lambda p: ImageEnhance.Contrast(p).enhance(f)), _enhance_factor
)
BRIGHTNESS = Op("brightness", lambda img, f: F.adjust_brightness(img, f), _enhance_factor)
SHARPNESS = Op("sharpness", lambda img, f: F.adjust_sharpness(img, f), _enhance_factor)
MIRROR = Op("mirror", lambda img, _: F.horizontal_flip(img))
INVERT = Op("invert", lambda img, _: F.invert(img))

# augmentations / augmentations_all of google-research/augmix (and andyzoujm/pixmix). The
# colour operations are left out by default because they overlap ImageNet-C's corruptions.
AUGMIX_OPS: tuple[Op, ...] = (
    AUTOCONTRAST,
    EQUALIZE,
    POSTERIZE,
    ROTATE,
    SOLARIZE,
    SHEAR_X,
    SHEAR_Y,
    TRANSLATE_X,
    TRANSLATE_Y,
)
AUGMIX_ALL_OPS: tuple[Op, ...] = AUGMIX_OPS + (COLOR, CONTRAST, BRIGHTNESS, SHARPNESS)
# hzlsaber/IPMix:IPMix_utils.py augmentations: no autocontrast, plus mirror and invert.
IPMIX_OPS: tuple[Op, ...] = AUGMIX_OPS[1:] + (MIRROR, INVERT)


def check_severity(severity: int, where: str) -> None:
    if not 1 <= severity <= MAX_SEVERITY:
        raise ConfigError(f"{where}.severity must be in [1, {MAX_SEVERITY}], got {severity}")


def sample_level(severity: float) -> float:
    """A level drawn uniformly from [0.1, severity] (the references' sample_level)."""
    return 0.1 + (severity - 0.1) * float(torch.rand(()))


def apply_op(image: torch.Tensor, op: Op, severity: float) -> torch.Tensor:
    """Run ``op`` at a random level up to ``severity`` on a uint8 CHW image."""
    value = 0.0
    if op.magnitude is not None:
        value = op.magnitude(sample_level(severity), image.shape[-2], image.shape[-1])
        if op.signed and float(torch.rand(())) < 0.5:
            value = -value
    return op.apply(image, value)


def random_op(image: torch.Tensor, ops: Sequence[Op], severity: float) -> torch.Tensor:
    """One operation chosen uniformly from ``ops`` (the references' augment_input)."""
    return apply_op(image, ops[int(torch.randint(len(ops), ()))], severity)


def to_uint8(image: torch.Tensor) -> torch.Tensor:
    """Round a float image in [0, 255] to uint8 (the only quantisation of a mixed image)."""
    return image.round().clamp_(0, 255).to(torch.uint8)


def mixing_weights(width: int, alpha: float) -> tuple[torch.Tensor, float]:
    """AugMix mixing weights: chain weights ~ Dirichlet(alpha, ..., alpha) and the weight of the
    mixed chains against the original ~ Beta(alpha, alpha) (google-research/augmix: cifar.py)."""
    concentration = torch.full((width,), float(alpha))
    ws = torch.distributions.Dirichlet(concentration).sample()
    m = float(torch.distributions.Beta(float(alpha), float(alpha)).sample())
    return ws, m


def convex_mix(
    image: torch.Tensor, chains: Sequence[torch.Tensor], ws: torch.Tensor, m: float
) -> torch.Tensor:
    """(1 - m) * image + m * sum_i ws_i * chain_i in float, rounded once to uint8 (AugMix, IPMix)."""
    mix = torch.zeros(image.shape, dtype=torch.float32)
    for w, chain in zip(ws.tolist(), chains):
        mix.add_(chain.float(), alpha=w)
    return to_uint8(image.float().mul_(1.0 - m).add_(mix, alpha=m))
