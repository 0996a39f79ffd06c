"""Manifold Mixup (Verma et al., ICML 2019): Mixup of hidden states at a randomly chosen layer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ...config import ManifoldMixupConfig
from ...errors import ConfigError
from ..base import AugBatch, AugContext
from ..registry import register_aug
from .batch_mix import (
    MixingAugmentation,
    coin,
    mix_images,
    mix_targets,
    random_pairing,
    sample_lambda,
    unwrap_model,
)


@dataclass
class HiddenMixBatch(AugBatch):
    """A batch whose mixing happens inside the forward pass: partner ``perm``, ratio ``lam`` and the
    ``forward_stages`` split (0 = input) where the hidden states are mixed."""

    perm: torch.Tensor | None = None
    lam: float = 1.0
    split: int = 0


@register_aug("manifold_mixup", ManifoldMixupConfig)
class ManifoldMixup(MixingAugmentation):
    """One lam ~ Beta(alpha, alpha), one partner permutation and one layer per batch; the hidden
    state after that layer is mixed as in Mixup and so are the labels
    (``snu-mllab/PuzzleMix:models/preresnet.py`` with ``mixup_hidden``).

    Needs a backbone split into stages (``ImageClassifier.forward_stages``): model=preactresnet18.
    """

    method = "manifold_mixup"

    def __init__(
        self,
        ctx: AugContext,
        *,
        alpha: float | None = None,
        prob: float | None = None,
        dataset_defaults: Mapping[str, Mapping[str, float]] | None = None,
        layers: Sequence[int] = (0, 1, 2),
    ) -> None:
        super().__init__(ctx, alpha=alpha, prob=prob, dataset_defaults=dataset_defaults)
        if not layers or min(layers) < 0:
            raise ConfigError(
                f"aug.layers of aug=manifold_mixup must be a non-empty list of layers >= 0 "
                f"(0 = input, k = after residual layer k), got {list(layers)}"
            )
        self.layers = [int(k) for k in layers]

    def _split(self, model: nn.Module, layer: int) -> int:
        """``forward_stages`` split of ``layer``: stage 0 is the stem, so layer k >= 1 ends at k + 1."""
        stages = getattr(model, "num_stages", 0)
        if not stages:
            arch = getattr(model, "arch", type(model).__name__)
            raise NotImplementedError(
                f"aug=manifold_mixup mixes hidden states between backbone stages, and model '{arch}' is not "
                "split into stages (ImageClassifier.num_stages is 0); use model=preactresnet18"
            )
        if max(self.layers) > stages - 1:
            raise ConfigError(
                f"aug.layers={self.layers} of aug=manifold_mixup: this model has layers 0..{stages - 1} "
                "(0 = input, k = after residual layer k)"
            )
        return 0 if layer == 0 else layer + 1

    def apply(
        self, images: torch.Tensor, targets: torch.Tensor, indices: torch.Tensor, model: nn.Module
    ) -> AugBatch:
        layer = self.layers[int(torch.randint(len(self.layers), ()))]
        split = self._split(unwrap_model(model), layer)
        if not coin(self.prob):
            return AugBatch(images, targets)
        lam = sample_lambda(self.alpha)
        perm = random_pairing(len(images), images.device)
        return HiddenMixBatch(images, mix_targets(targets, perm, lam), perm=perm, lam=lam, split=split)

    def logits(self, model: nn.Module, batch: AugBatch) -> torch.Tensor:
        if not isinstance(batch, HiddenMixBatch) or batch.perm is None:
            return model(batch.inputs)
        net = unwrap_model(model)
        hidden = net.forward_stages(batch.inputs, 0, batch.split)
        hidden = mix_images(hidden, batch.perm, batch.lam)
        return net.forward_head(net.forward_stages(hidden, batch.split))
