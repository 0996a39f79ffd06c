"""The three-view training of the AugMix family (AugMix, IPMix): a training set whose items carry
[clean, view, view] for the JSD loss, and the augmentation base that trains on them."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.utils.data import Dataset

from ..base import AugBatch, Augmentation


class ViewsDataset(Dataset):
    """A training split whose items carry several views of one image: ``(uint8 (V, C, H, W),
    label, index)``. The split's own transform (crop, flip) runs once; ``make_views`` turns the
    result into the views, the clean image first (the AugMix JSD form)."""

    def __init__(self, dataset: Dataset, make_views: Callable[[torch.Tensor], torch.Tensor]) -> None:
        self.dataset = dataset
        self.make_views = make_views

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, int]:
        image, label, index = self.dataset[i]
        return self.make_views(image), label, index


def views_to_batch(images: torch.Tensor, num_views: int, method: str) -> torch.Tensor:
    """(N, V, C, H, W) from a :class:`ViewsDataset` to (V * N, C, H, W), view-major."""
    if images.ndim != 5 or images.shape[1] != num_views:
        raise ValueError(
            f"aug={method} with loss=jsd expects batches of {num_views} views (N, {num_views}, C, H, W) "
            f"from its training-set wrapper, got shape {tuple(images.shape)}; build the data through "
            "ImageDataModule.set_augmentation so the wrapper is used"
        )
    return images.transpose(0, 1).reshape(-1, *images.shape[2:])


class JsdViewsAugmentation(Augmentation):
    """A per-image policy (``self.policy``: ``__call__`` for one view, ``jsd_views`` for
    [clean, view, view]) that trains on the three views with loss=jsd, else on one view."""

    default_loss = "jsd"
    supports_jsd = True
    #: The method's config name, for error messages.
    method = ""

    @property
    def jsd(self) -> bool:
        return self.ctx.loss == "jsd"

    def sample_transform(self):
        # With JSD the training-set wrapper makes the views from the clean crop.
        return None if self.jsd else self.policy

    def train_dataset(self, dataset: Dataset) -> Dataset:
        return ViewsDataset(dataset, self.policy.jsd_views) if self.jsd else dataset

    def apply(
        self, images: torch.Tensor, targets: torch.Tensor, indices: torch.Tensor, model: nn.Module
    ) -> AugBatch:
        if self.jsd:
            return AugBatch(views_to_batch(images, 3, self.method), targets, num_views=3)
        return AugBatch(images, targets)
