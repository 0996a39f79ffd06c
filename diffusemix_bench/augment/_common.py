"""Pieces shared by the per-image mixing baselines (AugMix, PixMix, IPMix): the CIFAR test,
Dirichlet/Beta mixing, the three-view JSD training set and the mixing pictures."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.utils.data import Dataset
from torchvision.transforms.v2 import functional as F

from ..errors import ConfigError
from .base import AugBatch, AugContext, Augmentation

log = logging.getLogger(__name__)


def is_cifar(ctx: AugContext) -> bool:
    """The references ship two recipes, CIFAR and ImageNet; CIFAR's applies to CIFAR datasets."""
    return ctx.dataset_name.lower().startswith("cifar")


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


class MixingPictures:
    """The mixing set (PixMix, IPMix) in memory as one uint8 tensor (N, 3, S, S).

    The references resize each mixing picture and random-crop it to the training crop:
    Resize(36) + RandomCrop(32) on CIFAR, Resize(256) + RandomCrop(224) on ImageNet
    (andyzoujm/pixmix: cifar.py, imagenet.py). The resize is done once for the whole bank, to
    ``S = round(image_size * resize_ratio)``; the crop is drawn per sample from torch's generator,
    which DataLoader seeds in every worker, so runs are reproducible.
    """

    def __init__(self, pictures: torch.Tensor, resize_ratio: float) -> None:
        if (
            pictures.dtype != torch.uint8
            or pictures.ndim != 4
            or pictures.shape[1] != 3
            or len(pictures) == 0
        ):
            raise ValueError(
                f"mixing pictures must be a non-empty uint8 tensor (N, 3, S, S), got {pictures.dtype} "
                f"{tuple(pictures.shape)}"
            )
        self.pictures = pictures
        self.resize_ratio = resize_ratio

    @classmethod
    def from_bank(cls, bank, image_size: int, resize_ratio: float) -> MixingPictures:
        """Resize every picture of ``bank`` (``len(bank)``, ``bank.get(i)`` -> uint8 3 x s x s)."""
        side = round(image_size * resize_ratio)
        pictures = torch.stack(
            [F.resize(bank.get(i), [side, side], antialias=True) for i in range(len(bank))]
        )
        return cls(pictures, resize_ratio)

    def __len__(self) -> int:
        return len(self.pictures)

    def sample(self, height: int, width: int) -> torch.Tensor:
        """A random picture, random-cropped to ``height`` x ``width``."""
        picture = self.pictures[int(torch.randint(len(self.pictures), ()))]
        if picture.shape[-2] < height or picture.shape[-1] < width:
            # Images larger than the bank was prepared for (a changed image_size): resize this one.
            side = round(max(height, width) * self.resize_ratio)
            picture = F.resize(picture, [side, side], antialias=True)
        top = int(torch.randint(picture.shape[-2] - height + 1, ()))
        left = int(torch.randint(picture.shape[-1] - width + 1, ()))
        return picture[:, top : top + height, left : left + width]


def load_mixing_pictures(ctx: AugContext, bank, resize_ratio: float, method: str) -> MixingPictures:
    """The mixing pictures from ``bank`` when given (a FractalBank-like object or a uint8 tensor
    N x 3 x S x S), else from the run's fractal bank (``fractals`` config group)."""
    if bank is None:
        if ctx.config is None:
            raise ConfigError(
                f"aug={method} needs mixing pictures: run it through train(cfg), which builds the fractal "
                "bank from the `fractals` config group (fractals=procedural or fractals=folder "
                f"fractals.dir=<images>), or pass bank=<FractalBank or uint8 tensor> to {method}'s constructor"
            )
        from .fractals import FractalBank

        bank = FractalBank.from_config(ctx.config.fractals)
    if isinstance(bank, torch.Tensor):
        side = round(ctx.image_size * resize_ratio)
        return MixingPictures(F.resize(bank, [side, side], antialias=True), resize_ratio)
    pictures = MixingPictures.from_bank(bank, ctx.image_size, resize_ratio)
    log.info("%s: %d mixing pictures at %d px", method, len(pictures), pictures.pictures.shape[-1])
    return pictures


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
