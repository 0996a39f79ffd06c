"""The image operations of the AugMix family (AugMix, PixMix, IPMix) on uint8 CHW tensors, and
AugMix's Dirichlet/Beta mixing of operation chains.

Each operation follows ``google-research/augmix:augmentations.py`` (copied unchanged into
``andyzoujm/pixmix:pixmix_utils.py``; ``hzlsaber/IPMix:IPMix_utils.py`` adds mirror and invert):
a level is drawn uniformly from [0.1, severity] and scaled by ``level / 10`` to the operation's
largest value; geometric operations flip their sign with probability 1/2. Every operation gives the
bytes of the PIL call the references make: posterize, solarize, equalize, invert, mirror,
brightness, sharpness and translate through torchvision's functional ops (which equal PIL's there);
autocontrast, color and contrast, where torchvision's float arithmetic lands up to one grey level
below PIL's, and rotate and shear, where PIL's bilinear affine truncates, sets to 0 every pixel whose
source lies outside the image and clamps its neighbours at the edge (torchvision rounds and blends
the border with 0), are written here in PIL's own arithmetic (``_pil_*``; tests compare each with
PIL on random images).
Randomness comes from torch's global generator, which DataLoader seeds in every worker.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
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


def _pil_affine(image: torch.Tensor, matrix: Sequence[float]) -> torch.Tensor:
    """PIL's ``Image.transform(size, AFFINE, matrix, resample=BILINEAR)`` of a uint8 CHW image, in
    its arithmetic (Pillow's Geometry.c): output pixel (x, y) reads the source point
    ``(a x' + b y' + c, d x' + e y' + f)`` with ``x' = x + 0.5, y' = y + 0.5``; a point outside the
    image gives 0; else bilinear in float64 between the pixel centres around it (neighbours clamped
    to the edge), truncated to uint8."""
    a, b, c, d, e, f = (float(v) for v in matrix)
    _, height, width = image.shape
    yc = torch.arange(height, dtype=torch.float64)[:, None] + 0.5
    xc = torch.arange(width, dtype=torch.float64)[None, :] + 0.5
    xin = a * xc + b * yc + c
    yin = d * xc + e * yc + f
    inside = (xin >= 0) & (xin < width) & (yin >= 0) & (yin < height)
    xin, yin = xin - 0.5, yin - 0.5
    x, y = xin.floor(), yin.floor()
    dx, dy = xin - x, yin - y
    x0 = x.clamp(0, width - 1).long()
    x1 = (x + 1).clamp(0, width - 1).long()
    y0 = y.clamp(0, height - 1).long()
    y1 = (y + 1).clamp(0, height - 1).long()
    src = image.double()

    def along_x(row: torch.Tensor) -> torch.Tensor:
        left, right = src[:, row, x0], src[:, row, x1]
        return left + (right - left) * dx

    top = along_x(y0)
    # The row below is read only when it exists; otherwise the top row stands for both.
    below = torch.where((y + 1 >= 0) & (y + 1 < height), along_x(y1), top)
    out = top + (below - top) * dy
    return torch.where(inside, out, 0.0).to(torch.uint8)


def _pil_rotate(image: torch.Tensor, degrees: float) -> torch.Tensor:
    """PIL's ``Image.rotate(degrees, resample=BILINEAR)`` (counter-clockwise about the centre, same
    size): its matrix, rounded as PIL rounds it, through :func:`_pil_affine`."""
    degrees = degrees % 360.0
    if degrees == 0:
        return image.clone()
    if degrees == 180:
        return image.flip(-1).flip(-2)
    _, height, width = image.shape
    if degrees in (90, 270) and width == height:
        return torch.rot90(image, 1 if degrees == 90 else -1, dims=(-2, -1))
    angle = -math.radians(degrees)
    cos, sin = round(math.cos(angle), 15), round(math.sin(angle), 15)
    cx, cy = width / 2, height / 2
    # The inverse map about the centre, composed as PIL composes it.
    c = cos * -cx + sin * -cy + 0.0
    f = -sin * -cx + cos * -cy + 0.0
    return _pil_affine(image, (cos, sin, c + cx, -sin, cos, f + cy))


def _shear(image: torch.Tensor, x: float, y: float) -> torch.Tensor:
    # The references' Image.transform(size, AFFINE, (1, x, 0, y, 1, 0), resample=BILINEAR).
    return _pil_affine(image, (1.0, x, 0.0, y, 1.0, 0.0))


def _pil_grey(image: torch.Tensor) -> torch.Tensor:
    """PIL's ``convert("L")`` of a uint8 RGB CHW image: ITU-R 601-2 luma in 16-bit fixed point,
    rounded (Pillow's Convert.c), as uint8 1 x H x W."""
    r, g, b = image.int()
    return ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16).to(torch.uint8)[None]


def _pil_blend(degenerate: torch.Tensor, image: torch.Tensor, factor: float) -> torch.Tensor:
    """PIL's ``Image.blend(degenerate, image, factor)`` (what ``ImageEnhance`` does), in its
    arithmetic (Pillow's Blend.c): ``degenerate + factor (image - degenerate)`` in float64,
    truncated; outside [0, 1] rounded to float32 first and clipped."""
    degenerate = degenerate.expand_as(image)
    if factor == 0.0:
        return degenerate.clone()
    if factor == 1.0:
        return image.clone()
    base = degenerate.double()
    out = base + factor * (image.double() - base)
    if not 0.0 <= factor <= 1.0:
        out = out.float().clamp_(0, 255)
    return out.to(torch.uint8)


def _pil_color(image: torch.Tensor, factor: float) -> torch.Tensor:
    """``ImageEnhance.Color(image).enhance(factor)``: blended with its own grey version."""
    return _pil_blend(_pil_grey(image), image, factor)


def _pil_contrast(image: torch.Tensor, factor: float) -> torch.Tensor:
    """``ImageEnhance.Contrast(image).enhance(factor)``: blended with a flat image of its mean luma,
    rounded as ``int(mean + 0.5)``."""
    grey = _pil_grey(image)
    mean = int(int(grey.sum()) / grey.numel() + 0.5)
    return _pil_blend(torch.full_like(grey, mean), image, factor)


def _pil_autocontrast(image: torch.Tensor) -> torch.Tensor:
    """``ImageOps.autocontrast(image)``: each channel stretched to [0, 255] through PIL's lookup
    table ``int(i * scale + offset)``, clipped; a flat channel stays as it is."""
    out = torch.empty_like(image)
    levels = torch.arange(256, dtype=torch.float64)
    for channel in range(image.shape[0]):
        values = image[channel]
        lo, hi = int(values.min()), int(values.max())
        if hi <= lo:
            out[channel] = values
            continue
        scale = 255.0 / (hi - lo)
        offset = -lo * scale
        lut = (levels * scale + offset).trunc().clamp_(0, 255).to(torch.uint8)
        out[channel] = lut[values.long()]
    return out


def _translate(image: torch.Tensor, dx: float, dy: float) -> torch.Tensor:
    # PIL's affine (1, 0, dx, 0, 1, dy) samples at x + dx: the content moves by -dx.
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


AUTOCONTRAST = Op("autocontrast", lambda img, _: _pil_autocontrast(img))
EQUALIZE = Op("equalize", lambda img, _: F.equalize(img))
POSTERIZE = Op(
    "posterize", lambda img, bits: F.posterize(img, int(bits)), lambda lv, h, w: 4 - _int_parameter(lv, 4)
)
ROTATE = Op(
    "rotate",
    lambda img, deg: _pil_rotate(img, deg),
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
COLOR = Op("color", lambda img, f: _pil_color(img, f), _enhance_factor)
CONTRAST = Op("contrast", lambda img, f: _pil_contrast(img, f), _enhance_factor)
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
