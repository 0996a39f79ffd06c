"""DiffuseMix composition (Eq. 1-3): hybrid of original and edit, then fractal blend, on whole batches
on the device, or on whole images in the data workers (``aug.compose=before_crop``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torchvision.transforms.v2 import functional as TF

from ...config import DiffuseMixConfig, choices_of
from ...errors import ConfigError
from .masks import half_mask_templates, official_edit_weights

#: Table 7 arms: what each training view is made of (I original, Î edit, H hybrid, F fractal).
COMPONENTS = choices_of(DiffuseMixConfig, "components")


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


def aligned_edit(edit: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    """A stored edit at its original's size (uint8): the edit model works at its own resolution
    (512 px), and an edit stored at another size than the original is resized back to it."""
    if edit.shape[-2:] != original.shape[-2:]:
        edit = TF.resize(edit, list(original.shape[-2:]), antialias=True)
    return edit


def resize_to(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``image`` (uint8 C x H x W) resized to ``height x width`` (bicubic, antialiased)."""
    if tuple(image.shape[-2:]) == (height, width):
        return image
    return TF.resize(image, [height, width], interpolation=TF.InterpolationMode.BICUBIC, antialias=True)


def square(image: torch.Tensor, size: int) -> torch.Tensor:
    """``image`` (uint8 C x H x W) resized to ``size x size`` (bicubic, antialiased), aspect ratio
    not kept, as the official code resizes every image to 256 x 256 (512 x 512 in its first
    release) before composing."""
    return resize_to(image, size, size)


class WholeImageComposer:
    """``aug.compose=before_crop``: Eq. 3 on whole images (uint8 C x H x W, each at its own size) in
    the data workers, before the training transform, in the order of Algorithm 1 and the official code.

    Called with ``[original, edit 1, ...]``, it returns the training views: ``static_append``:
    ``[original]``, or for an appended item its composed image with the item's fixed mask and
    fractal; ``online`` and ``replace_p``: ``[clean, view 1, view 2]`` with JSD (``aug.views=arm_only``:
    three views), ``[clean, view]`` with ``ce_include_original``, else ``[view]``. With ``compose_size``
    the original and its edits are first resized to squares of that side (the clean view too, so the
    stack shares one size), and with ``composed_size=original`` every view is then resized back to
    the original's size, so a 32 px training crop sees the whole composed image.
    Random masks and fractals come from torch's global generator, which Lightning seeds per data
    worker. Composed images are uint8, as the official code stores its augmented set as image files:
    with ``arithmetic=exact`` Eq. 3 in floating point, rounded once; with ``arithmetic=official`` the
    official code's own steps (``Utils.combine_images`` then ``Utils.blend_images_with_resize``):
    its seam ramp, the hybrid in float64 truncated to uint8, then the fractal blend in float32 on
    0-255 values truncated again, so the same inputs give the same bytes.
    """

    def __init__(self, aug, plan: tuple[torch.Tensor, torch.Tensor] | None = None) -> None:
        self.kinds = aug.kinds
        self.seam_px = aug.seam_px
        self.components = aug.components
        self.lam = aug.lam
        self.bank = aug.bank
        self.uses_edits = aug.uses_edits
        self.replace_prob = aug.replace_prob if aug.mode == "replace_p" else None
        self.num_draws = aug.num_draws
        self.clean_view = (aug.jsd and not aug.arm_only) or aug.ce_include_original
        self.size = aug.compose_size or None
        self.back_to_original = self.size is not None and aug.composed_size == "original"
        self.plan = plan
        self.official = aug.arithmetic == "official"
        self._templates: torch.Tensor | None = None
        self._edit_weights: torch.Tensor | None = None
        self._templates_size: tuple[int, int] | None = None

    def _masks(self, h: int, w: int) -> torch.Tensor:
        """The mask templates at ``h x w`` (1 keeps the original)."""
        if self._templates_size != (h, w):
            # Whole images of one dataset often share a size (always with compose_size): kept for the next.
            if self.official:
                self._edit_weights = official_edit_weights(self.kinds, h, w, self.seam_px)
                self._templates = (1.0 - self._edit_weights).float()
            else:
                self._templates = half_mask_templates(self.kinds, h, w, self.seam_px)
            self._templates_size = (h, w)
        return self._templates

    def parts(
        self, original: torch.Tensor, edit: torch.Tensor, mask_id: int, fractal_id: int | None
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """Mask (1 x H x W), fractal (3 x H x W, or None without a bank) and composed image of one
        original and edit (float C x H x W in [0, 1]), at the original's size."""
        h, w = original.shape[-2:]
        mask = self._masks(h, w)[mask_id]
        fractal = None
        if self.bank is not None and fractal_id is not None:
            if self.official:  # resized as _compose_official resizes it
                fractal = resize_to(self.bank.get(fractal_id), h, w).float() / 255.0
            else:
                fractal = resize_fractals(self.bank.get(fractal_id)[None], h, w)[0]
        if self.official:
            # The inputs are uint8 images divided by 255: their bytes again, composed as the official code does.
            def to_uint8(x: torch.Tensor) -> torch.Tensor:
                return x.mul(255.0).round_().to(torch.uint8)

            final = self._compose_official(to_uint8(original), to_uint8(edit), mask_id, fractal_id)
            return mask, fractal, final.float() / 255.0
        final = compose_component(
            self.components,
            original[None],
            edit[None],
            mask[None],
            None if fractal is None else fractal[None],
            self.lam,
        )[0]
        return mask, fractal, final

    def _compose_official(
        self, original: torch.Tensor, edit: torch.Tensor, mask_id: int, fractal_id: int | None
    ) -> torch.Tensor:
        """``arithmetic=official``: one uint8 image composed with the official code's arithmetic,
        step for step (NumPy's types and its truncating casts to uint8)."""
        h, w = original.shape[-2:]
        base = edit if self.components.startswith("edits") else original
        if self.components.startswith("hybrid"):
            self._masks(h, w)
            weight = self._edit_weights[mask_id]  # float64, as NumPy's linspace
            # float32 images / 255 (NumPy: float32 array / Python float), mixed in float64.
            mixed = (1 - weight) * (original.float() / 255.0) + weight * (edit.float() / 255.0)
            base = (mixed * 255).clamp_(0, 255).to(torch.uint8)  # astype(np.uint8) truncates
        if self.components.endswith("_fractal") and self.bank is not None and fractal_id is not None:
            # The fractal resized to the image (PIL's bicubic in the official code), then blended in
            # float32 on 0-255 values and truncated.
            fractal = resize_to(self.bank.get(fractal_id), h, w).float()
            blended = (1 - self.lam) * base.float() + self.lam * fractal
            base = blended.clamp_(0, 255).to(torch.uint8)
        return base

    def compose(
        self, original: torch.Tensor, edit: torch.Tensor, mask_id: int, fractal_id: int
    ) -> torch.Tensor:
        """One composed image (uint8, the original's size) of uint8 ``original`` and ``edit``."""
        if self.official:
            return self._compose_official(original, edit, mask_id, fractal_id)
        _, _, out = self.parts(original.float() / 255.0, edit.float() / 255.0, mask_id, fractal_id)
        return out.mul_(255.0).round_().to(torch.uint8)

    def __call__(self, images: list[torch.Tensor], slot: int | None) -> list[torch.Tensor]:
        if self.plan is not None and slot is None:
            return [images[0]]  # an original of static_append's set, trained as it is
        views = self.views(images, slot)
        if self.back_to_original:
            # Composed at compose_size, then brought to the original's size for the training crop.
            h, w = images[0].shape[-2:]
            views = [resize_to(v, h, w) for v in views]
        return views

    def views(self, images: list[torch.Tensor], slot: int | None) -> list[torch.Tensor]:
        if self.size is not None:
            images = [square(im, self.size) for im in images]
        original = images[0]
        if self.plan is not None:
            edit = images[1] if self.uses_edits else original
            return [self.compose(original, edit, int(self.plan[0][slot]), int(self.plan[1][slot]))]
        views = []
        for draw in range(self.num_draws):
            edit = images[1 + draw] if self.uses_edits else original
            mask_id = int(torch.randint(len(self.kinds), ()))
            fractal_id = int(torch.randint(len(self.bank), ())) if self.bank is not None else 0
            view = self.compose(original, edit, mask_id, fractal_id)
            if self.replace_prob is not None and float(torch.rand(())) >= self.replace_prob:
                view = original
            views.append(view)
        return [original] * self.clean_view + views
