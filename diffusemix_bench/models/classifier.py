"""ImageClassifier: pixel-space [0, 1] input, normalisation inside, and a named classifier head."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

MeanStd = tuple[tuple[float, ...], tuple[float, ...]]


class Normalize(nn.Module):
    """``(x - mean) / std`` per channel on NCHW tensors."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        if len(mean) != 3 or len(std) != 3:
            raise ValueError(f"mean and std need 3 values (RGB), got mean={list(mean)} std={list(std)}")
        if min(std) <= 0:
            raise ValueError(f"std values must be positive, got {list(std)}")
        # Not persistent: the statistics come from the run's config, so a weight file holds only learned
        # tensors and files of a bare backbone and of a whole ImageClassifier stay interchangeable.
        self.register_buffer(
            "mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False
        )
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class ImageClassifier(nn.Module):
    """``backbone(normalize(x))`` for float images in [0, 1], so attacks and mixing work in pixel space.

    ``head`` names the backbone's classifier module(s) (e.g. ``("fc",)``); they define
    ``head_parameters()`` / ``backbone_parameters()`` for per-group learning rates and the head keys
    that ``load_weights`` may drop when the class count differs. ``pretrained_mean_std`` is the
    normalisation the architecture's published weights expect (None when it has none).
    """

    def __init__(
        self,
        backbone: nn.Module,
        head: Sequence[str],
        *,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        arch: str = "",
        pretrained_mean_std: MeanStd | None = None,
    ) -> None:
        super().__init__()
        modules = dict(backbone.named_modules())
        unknown = [name for name in head if name not in modules or name == ""]
        if unknown:
            raise ValueError(f"head module(s) {unknown} not found in {type(backbone).__name__}")
        self.normalize = Normalize(mean, std)
        self.backbone = backbone
        self.arch = arch or type(backbone).__name__
        self.pretrained_mean_std = pretrained_mean_std
        self._head = tuple(head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(self.normalize(x))

    def head_names(self) -> list[str]:
        """State-dict key prefixes of the classifier head, e.g. ``["backbone.fc."]``."""
        return [f"backbone.{name}." for name in self._head]

    def _is_head(self, key: str) -> bool:
        return any(key.startswith(prefix) for prefix in self.head_names())

    def head_parameters(self) -> Iterator[nn.Parameter]:
        return (p for name, p in self.named_parameters() if self._is_head(name))

    def backbone_parameters(self) -> Iterator[nn.Parameter]:
        """Every parameter outside the head."""
        return (p for name, p in self.named_parameters() if not self._is_head(name))

    @property
    def num_stages(self) -> int:
        """How many stages ``forward_stages`` can run; 0 when the backbone is not split into stages."""
        return len(self.backbone.stage_names) if hasattr(self.backbone, "forward_stages") else 0

    def forward_stages(self, x: torch.Tensor, start: int = 0, stop: int | None = None) -> torch.Tensor:
        """Run backbone stages ``[start:stop]``; the hidden state at split 0 is the pixel-space image.

        Normalisation runs with stage 0, so ``forward_head(forward_stages(forward_stages(x, 0, k), k))``
        equals ``forward(x)`` for every split ``k``; Manifold Mixup mixes the hidden state between the
        two ``forward_stages`` calls.
        """
        if not self.num_stages:
            raise NotImplementedError(
                f"model '{self.arch}' is not split into stages; Manifold Mixup needs model.name=preactresnet18"
            )
        if 0 in range(self.num_stages)[start:stop]:
            x = self.normalize(x)
        return self.backbone.forward_stages(x, start, stop)

    def forward_head(self, h: torch.Tensor) -> torch.Tensor:
        """Logits from the last stage's output."""
        if not self.num_stages:
            raise NotImplementedError(f"model '{self.arch}' is not split into stages")
        return self.backbone.forward_head(h)
