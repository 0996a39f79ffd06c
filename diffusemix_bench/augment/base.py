"""The augmentation interface: a per-image CPU policy and a batch-level step on the device."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class AugBatch:
    """What the model is trained on for one batch.

    ``inputs`` holds ``num_views`` views of the batch stacked along dim 0 (view-major: all of
    view 0, then all of view 1, ...), float in [0, 1]. ``targets`` are soft targets (N x K) shared
    by every view. With several views the first is the clean one (AugMix/DiffuseMix JSD form).
    """

    inputs: torch.Tensor
    targets: torch.Tensor
    num_views: int = 1


class Augmentation:
    """Base class of every augmentation method.

    A method may change each image on the CPU (``sample_transform``: uint8 CHW in, uint8 CHW out,
    applied after the dataset's crop and flip) and/or mix whole batches on the device
    (``apply``). Methods that need the model (saliency, CAM, hidden-state mixing) receive it in
    ``apply``/``logits``; they never reach into the training module.
    """

    #: Loss the method is defined with; the training module refuses a mismatch with loss.name.
    default_loss: str = "ce"

    def __init__(self, num_classes: int, **cfg) -> None:
        self.num_classes = num_classes
        self.cfg = cfg

    def sample_transform(self) -> Callable[[torch.Tensor], torch.Tensor] | None:
        return None

    def apply(
        self, images: torch.Tensor, targets: torch.Tensor, indices: torch.Tensor, model: nn.Module
    ) -> AugBatch:
        return AugBatch(images, targets)

    def logits(self, model: nn.Module, batch: AugBatch) -> torch.Tensor:
        """Forward pass over the views; methods that mix hidden states override this."""
        return model(batch.inputs)

    def describe(self) -> str:
        return type(self).__name__
