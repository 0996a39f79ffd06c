"""Shared pieces of the batch-mixing baselines: per-dataset strengths, Beta draws, pairing, CutMix
boxes and label mixing.

Randomness is drawn on the CPU from torch's global generator (seeded by ``seed_everything``), one
draw per batch, so nothing here waits on the device.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any, NamedTuple

import torch
from torch import nn

from ...config import CutMixConfig, choices_of
from ...errors import ConfigError
from ..base import AugContext, Augmentation, resolve_dataset_settings

log = logging.getLogger(__name__)


def resolve_settings(
    method: str,
    settings: Mapping[str, float | None],
    dataset_defaults: Mapping[str, Mapping[str, float]],
    dataset_name: str,
    protocol: str | None = None,
) -> dict[str, float]:
    """``resolve_dataset_settings`` for numeric settings (alpha, prob), returned as floats."""
    resolved = resolve_dataset_settings(method, settings, dataset_defaults, dataset_name, protocol)
    return {k: float(v) for k, v in resolved.items()}


def check_alpha(alpha: float, method: str, key: str = "alpha") -> None:
    if not alpha > 0:
        raise ConfigError(
            f"aug.{key} of aug={method} must be > 0 (Beta(alpha, alpha) mixing ratio), got {alpha}; "
            "use aug=none to train without mixing"
        )


def check_prob(prob: float, method: str) -> None:
    if not 0.0 <= prob <= 1.0:
        raise ConfigError(f"aug.prob of aug={method} must be in [0, 1], got {prob}")


def coin(prob: float) -> bool:
    """True with probability ``prob`` (one draw per batch, as ``np.random.rand(1) < prob`` in the references)."""
    return prob >= 1.0 or bool(torch.rand(()) < prob)


def sample_lambda(alpha: float) -> float:
    """One mixing ratio lambda ~ Beta(alpha, alpha) (Zhang et al. 2018; PuzzleMix ``get_lambda``)."""
    a = torch.tensor(float(alpha))
    return float(torch.distributions.Beta(a, a).sample())


def random_pairing(batch_size: int, device: torch.device | str) -> torch.Tensor:
    """Partner of each sample: a random permutation of the batch (``torch.randperm`` in every reference)."""
    return torch.randperm(batch_size).to(device, non_blocking=True)


class Box(NamedTuple):
    """A pixel rectangle ``[y1:y2, x1:x2]`` of an image."""

    y1: int
    y2: int
    x1: int
    x2: int

    @property
    def area(self) -> int:
        return (self.y2 - self.y1) * (self.x2 - self.x1)

    @property
    def size(self) -> tuple[int, int]:
        return self.y2 - self.y1, self.x2 - self.x1


#: How a CutMix box is drawn, by the code each recipe comes from (see :func:`sample_box`).
BOX_RULES = choices_of(CutMixConfig, "box_rule")


def sample_box(
    lam: float,
    height: int,
    width: int,
    center: tuple[float, float] | None = None,
    rule: str = "timm",
) -> Box:
    """The CutMix box for ratio ``lam`` (Yun et al. 2019), clipped to the image, by ``rule``:

    - ``puzzlemix`` (``snu-mllab/PuzzleMix:mixup.py`` ``mixup_box``, the CIFAR-100/Tiny-ImageNet
      code of Table 2's baselines): a continuous centre ``U(0, H) x U(0, W)``, float sides
      ``sqrt(1 - lam) * H`` and ``* W``, each edge clipped to the image and then truncated;
    - ``clovaai`` (``clovaai/CutMix-PyTorch`` ``rand_bbox``, copied by SnapMix's, SaliencyMix's and
      GuidedMixup's FGVC code): an integer centre, ``cut = int(H * sqrt(1 - lam))``, edges at
      ``c - cut // 2`` and ``c + cut // 2`` (one pixel short of ``cut`` when it is odd);
    - ``timm`` (``timm.data.mixup.rand_bbox``): as ``clovaai`` but the far edge at
      ``c + (cut + 1) // 2``, so an unclipped box is exactly ``cut`` wide.

    ``center`` fixes the centre ``(cy, cx)`` (floats for ``puzzlemix``). Labels follow the area
    actually pasted in every rule (:func:`area_ratio`). At 32 px and ``lam = 0.5`` the mean label
    weight is 0.661 with ``puzzlemix`` and 0.676 with the integer rules (more of a box centred near
    the border is clipped away with the integer centre's shorter reach).
    """
    if rule not in BOX_RULES:
        raise ConfigError(f"CutMix box rule must be one of {BOX_RULES}, got '{rule}'")
    ratio = math.sqrt(1.0 - lam)
    if rule == "puzzlemix":
        if center is None:
            cy, cx = float(torch.rand(())) * height, float(torch.rand(())) * width
        else:
            cy, cx = (float(v) for v in center)
        half_h, half_w = ratio * height / 2, ratio * width / 2
        return Box(
            int(min(max(cy - half_h, 0.0), height)),
            int(min(max(cy + half_h, 0.0), height)),
            int(min(max(cx - half_w, 0.0), width)),
            int(min(max(cx + half_w, 0.0), width)),
        )
    cut_h, cut_w = int(height * ratio), int(width * ratio)
    if center is None:
        cy, cx = int(torch.randint(0, height, ())), int(torch.randint(0, width, ()))
    else:
        cy, cx = (int(v) for v in center)
    far_h, far_w = (cut_h // 2, cut_w // 2) if rule == "clovaai" else ((cut_h + 1) // 2, (cut_w + 1) // 2)
    y1 = min(max(cy - cut_h // 2, 0), height)
    y2 = min(max(cy + far_h, 0), height)
    x1 = min(max(cx - cut_w // 2, 0), width)
    x2 = min(max(cx + far_w, 0), width)
    return Box(y1, y2, x1, x2)


def area_ratio(box: Box, height: int, width: int) -> float:
    """The label weight of the image that keeps everything outside ``box``: 1 - box area / image area."""
    return 1.0 - box.area / float(height * width)


def mix_images(images: torch.Tensor, perm: torch.Tensor, lam: float | torch.Tensor) -> torch.Tensor:
    """``lam * x + (1 - lam) * x[perm]`` (Mixup); ``lam`` a float or one value per sample."""
    if isinstance(lam, torch.Tensor):
        lam = lam.view(-1, *([1] * (images.dim() - 1)))
    return images * lam + images[perm] * (1.0 - lam)


def paste_box(images: torch.Tensor, perm: torch.Tensor, box: Box) -> torch.Tensor:
    """Each image with ``box`` replaced by the same region of its partner ``images[perm]`` (CutMix)."""
    out = images.clone()
    out[..., box.y1 : box.y2, box.x1 : box.x2] = images[perm][..., box.y1 : box.y2, box.x1 : box.x2]
    return out


def mix_targets(
    targets: torch.Tensor,
    perm: torch.Tensor,
    weight: float | torch.Tensor,
    weight_partner: float | torch.Tensor | None = None,
) -> torch.Tensor:
    """``weight * t + weight_partner * t[perm]`` with ``weight_partner = 1 - weight`` by default.

    Soft-target cross-entropy on this target equals the references' ``w * CE(y_a) + w' * CE(y_b)``.
    ``weight``s may be floats or one value per sample.
    """
    if weight_partner is None:
        weight_partner = 1.0 - weight
    if isinstance(weight, torch.Tensor):
        weight = weight.view(-1, 1)
    if isinstance(weight_partner, torch.Tensor):
        weight_partner = weight_partner.view(-1, 1)
    return targets * weight + targets[perm] * weight_partner


def unwrap_model(model: nn.Module) -> nn.Module:
    """The ImageClassifier behind a ``torch.compile`` wrapper (``model.compile=true``)."""
    return getattr(model, "_orig_mod", model)


class MixingAugmentation(Augmentation):
    """Base of the batch-mixing methods: ``alpha`` and ``prob`` (and a subclass's ``extra``
    settings) resolved per protocol and dataset, and checked."""

    #: The registry name, for messages.
    method: str = ""

    def __init__(
        self,
        ctx: AugContext,
        *,
        alpha: float | None = None,
        prob: float | None = None,
        dataset_defaults: Mapping[str, Mapping[str, Any]] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(ctx)
        settings = self.resolve_per_dataset(
            self.method, {"alpha": alpha, "prob": prob, **(extra or {})}, dataset_defaults
        )
        self.alpha = float(settings["alpha"])
        self.prob = float(settings["prob"])
        self.resolved.update(alpha=self.alpha, prob=self.prob)
        check_alpha(self.alpha, self.method)
        check_prob(self.prob, self.method)
