"""DiffuseMix composition on whole batches (Eq. 1-3): hybrid of original and edit, then fractal blend."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import ConfigError

#: Table 7 arms: what each training view is made of (I original, Î edit, H hybrid, F fractal).
COMPONENTS = ("originals", "originals_fractal", "edits", "edits_fractal", "hybrid", "hybrid_fractal")


def hybrid(originals: torch.Tensor, edits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """H = I * M + Î * (1 - M), with M = 1 on the original's half (Algorithm 1 line 7, Eq. 3; the
    paper's Eq. 1 writes the roles of M and 1 - M the other way round, which the flipped masks
    make equivalent)."""
    return torch.lerp(edits, originals, masks)


def blend_fractal(images: torch.Tensor, fractals: torch.Tensor, lam: float) -> torch.Tensor:
    """A = (1 - λ) H + λ F (Eq. 2)."""
    return torch.lerp(images, fractals, lam)


def diffusemix(
    originals: torch.Tensor, edits: torch.Tensor, masks: torch.Tensor, fractals: torch.Tensor, lam: float
) -> torch.Tensor:
    """A = (1 - λ)(I * M + Î * (1 - M)) + λ F (Eq. 3)."""
    return blend_fractal(hybrid(originals, edits, masks), fractals, lam)


def compose_component(
    component: str,
    originals: torch.Tensor,
    edits: torch.Tensor,
    masks: torch.Tensor,
    fractals: torch.Tensor,
    lam: float,
) -> torch.Tensor:
    """One Table 7 arm: ``originals`` (I), ``edits`` (Î), ``hybrid`` (H), each optionally with the
    fractal blend (``*_fractal``); ``hybrid_fractal`` is the full method (Eq. 3)."""
    base_name = component.removesuffix("_fractal")
    if component not in COMPONENTS:
        raise ConfigError(f"aug.components must be one of {list(COMPONENTS)}, got '{component}'")
    if base_name == "originals":
        base = originals
    elif base_name == "edits":
        base = edits
    else:
        base = hybrid(originals, edits, masks)
    return blend_fractal(base, fractals, lam) if component.endswith("_fractal") else base


def resize_fractals(fractals: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Fractals (``N x 3 x S x S``, uint8 or float in [0, 1]) as float in [0, 1] at ``height x width``;
    square fractals are stretched to the image's shape, as the official code resizes them to it."""
    out = fractals.float() / 255.0 if fractals.dtype == torch.uint8 else fractals.float()
    if out.shape[-2:] != (height, width):
        out = F.interpolate(out, size=(height, width), mode="bilinear", antialias=True, align_corners=False)
        # Bilinear resampling with antialiasing can overshoot [0, 1] slightly.
        out = out.clamp_(0.0, 1.0)
    return out
