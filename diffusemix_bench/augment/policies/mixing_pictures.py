"""The mixing pictures of PixMix and IPMix (the fractal bank by default), resized once and
random-cropped per sample as the references do."""

from __future__ import annotations

import logging

import torch
from torchvision.transforms.v2 import functional as F

from ...errors import ConfigError
from ..base import AugContext

log = logging.getLogger(__name__)


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


def load_mixing_pictures(
    ctx: AugContext, bank, resize_ratio: float, method: str, record: dict | None = None
) -> MixingPictures:
    """The mixing pictures from ``bank`` when given (a FractalBank-like object or a uint8 tensor
    N x 3 x S x S), else from the run's fractal bank (``fractals`` config group); a bank read from
    a folder is described in ``record`` (the method's resolved settings) as ``fractal_bank``."""
    if bank is None:
        if ctx.config is None:
            raise ConfigError(
                f"aug={method} needs mixing pictures: run it through train(cfg), which builds the fractal "
                "bank from the `fractals` config group (fractals=procedural or fractals=folder "
                f"fractals.dir=<images>), or pass bank=<FractalBank or uint8 tensor> to {method}'s constructor"
            )
        from ..fractals import FractalBank, progress_shown

        bank = FractalBank.from_config(ctx.config.fractals, progress_shown(ctx.config))
        if bank.record is not None and record is not None:
            record["fractal_bank"] = bank.record
    if isinstance(bank, torch.Tensor):
        side = round(ctx.image_size * resize_ratio)
        return MixingPictures(F.resize(bank, [side, side], antialias=True), resize_ratio)
    pictures = MixingPictures.from_bank(bank, ctx.image_size, resize_ratio)
    log.info("%s: %d mixing pictures at %d px", method, len(pictures), pictures.pictures.shape[-1])
    return pictures
