"""DiffuseMix half masks (Eq. 1): which half of each image keeps the original, built in batches on the device."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ...errors import ConfigError

#: A mask kind names the half that keeps the original (mask value 1); the other half shows the edit.
MASK_KINDS = ("left", "right", "top", "bottom")

#: Mask sets selectable with ``aug.masks``.
#: - paper4: horizontal and vertical halves, each flipped (paper Sec. 4, Table 9 row 3);
#: - official2: the official code's two (khawar-islam/diffuseMix: augment/utils.py), original always
#:   on the left or on top;
#: - hv: vertical and horizontal without flipping (Table 9 row 2): the same pair as official2;
#: - vertical: one kind, split by a vertical line with the original on the left (Table 9 row 1);
#: - official_vertical: one kind, the official code's "vertical" (its halves stacked vertically,
#:   ``np.vstack``: the original on top), the other reading of Table 9's "Ver Mask".
MASK_SETS: dict[str, tuple[str, ...]] = {
    "paper4": ("left", "right", "top", "bottom"),
    "official2": ("left", "top"),
    "hv": ("left", "top"),
    "vertical": ("left",),
    "official_vertical": ("top",),
}


def mask_kinds(mask_set: str) -> tuple[str, ...]:
    """The kinds in ``mask_set`` (a key of :data:`MASK_SETS`)."""
    if mask_set not in MASK_SETS:
        raise ConfigError(f"aug.masks must be one of {sorted(MASK_SETS)}, got '{mask_set}'")
    return MASK_SETS[mask_set]


def _first_half_profile(length: int, seam_px: float, device, dtype) -> torch.Tensor:
    """1 on the first half of ``length`` pixels, 0 on the second; a linear ramp ``seam_px`` wide
    centred on the midline when ``seam_px > 0`` (the official code's 20 px seam; a seam wider than
    the image spans it). The profile is point-symmetric about the midline, so it always sums to
    exactly ``length / 2``; the official ramp (``seam_px`` samples from 0 to 1 starting
    ``seam_px // 2`` before the midline; ``aug.arithmetic=official`` uses it) differs from it by
    less than one step of the ramp."""
    # Signed distance of each pixel centre from the midline.
    d = torch.arange(length, device=device, dtype=dtype) + 0.5 - length / 2
    if seam_px > 0:
        return (0.5 - d / min(seam_px, length)).clamp_(0.0, 1.0)
    # Hard edge; the centre pixel of an odd length is shared half and half.
    return 0.5 - 0.5 * torch.sign(d)


def _official_edit_profile(length: int, seam_px: int, device, dtype) -> torch.Tensor:
    """The edit's weight across the official code's seam (khawar-islam/diffuseMix,
    ``Utils.combine_images``): 0 on the first ``length // 2 - seam_px // 2`` pixels, then ``seam_px``
    samples rising evenly from 0 to 1 (both included, as NumPy's ``linspace``), then 1. The official
    code sizes its last part ``length // 2 - seam_px // 2 + seam_px % 2``, which fits only even
    lengths and seams (it squares every image to 256 px and uses a 20 px seam); here the last part
    fills the rest."""
    seam = min(int(seam_px), length)
    start = max(length // 2 - seam // 2, 0)
    edit = torch.ones(length, device=device, dtype=dtype)
    edit[:start] = 0.0
    # NumPy's linspace is i * (1 / (n - 1)) with the last sample exactly 1; torch.linspace computes
    # its second half from the end, which differs in the last bit.
    ramp = torch.arange(seam, device=device, dtype=dtype) * (1.0 / max(seam - 1, 1))
    if seam > 1:
        ramp[-1] = 1.0
    edit[start : start + seam] = ramp
    return edit


def _stack_kinds(kinds: Sequence[str], cols: torch.Tensor, rows: torch.Tensor, flip) -> torch.Tensor:
    """``len(kinds) x 1 x H x W``: ``cols`` along the width for ``left``, ``rows`` along the height
    for ``top``, and ``flip`` of each for ``right`` and ``bottom``."""
    height, width = len(rows), len(cols)
    shapes = {
        "left": lambda: cols.expand(height, width),
        "right": lambda: flip(cols).expand(height, width),
        "top": lambda: rows[:, None].expand(height, width),
        "bottom": lambda: flip(rows)[:, None].expand(height, width),
    }
    unknown = [k for k in kinds if k not in shapes]
    if unknown:
        raise ConfigError(f"unknown mask kind(s) {unknown}; valid kinds: {list(MASK_KINDS)}")
    return torch.stack([shapes[k]() for k in kinds])[:, None].contiguous()


def half_mask_templates(
    kinds: Sequence[str],
    height: int,
    width: int,
    seam_px: float = 0.0,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """One float mask per kind, ``len(kinds) x 1 x height x width``; 1 keeps the original."""
    if seam_px < 0:
        raise ConfigError(f"aug.seam_px must be >= 0 (0 = hard edge), got {seam_px}")
    cols = _first_half_profile(width, seam_px, device, dtype)
    rows = _first_half_profile(height, seam_px, device, dtype)
    return _stack_kinds(kinds, cols, rows, lambda p: 1 - p)


def official_edit_weights(
    kinds: Sequence[str], height: int, width: int, seam_px: int, dtype: torch.dtype = torch.float64
) -> torch.Tensor:
    """The official code's masks as it writes them, ``len(kinds) x 1 x H x W``: the EDIT's weight
    (1 - M), in float64 as NumPy makes them (``aug.arithmetic=official``); ``right`` and ``bottom``
    mirror ``left`` and ``top``."""
    if seam_px < 0:
        raise ConfigError(f"aug.seam_px must be >= 0 (0 = hard edge), got {seam_px}")
    cols = _official_edit_profile(width, seam_px, None, dtype)
    rows = _official_edit_profile(height, seam_px, None, dtype)
    return _stack_kinds(kinds, cols, rows, lambda p: p.flip(0))


def sample_mask_ids(n: int, num_kinds: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``n`` mask kinds drawn uniformly (on the generator's device)."""
    device = generator.device if generator is not None else None
    return torch.randint(num_kinds, (n,), generator=generator, device=device)


def half_masks(
    ids: torch.Tensor,
    height: int,
    width: int,
    mask_set: str = "paper4",
    seam_px: float = 0.0,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """The masks of kinds ``ids`` (indices into ``MASK_SETS[mask_set]``): ``N x 1 x H x W``."""
    templates = half_mask_templates(mask_kinds(mask_set), height, width, seam_px, device=device)
    return templates[ids.to(templates.device)]


def sample_half_masks(
    n: int,
    height: int,
    width: int,
    mask_set: str = "paper4",
    seam_px: float = 0.0,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One random mask per sample (paper: "randomly selected mask M_u"): ``(N x 1 x H x W, ids)``."""
    ids = sample_mask_ids(n, len(mask_kinds(mask_set)), generator)
    return half_masks(ids, height, width, mask_set, seam_px, device), ids
