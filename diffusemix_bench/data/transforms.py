"""Train and evaluation geometry per dataset config, on uint8 CHW tensors."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torchvision.transforms import v2

from ..errors import ConfigError

TRAIN_TRANSFORMS = ("pad_crop", "resize_crop", "random_resized_crop", "resize")


def train_transform(
    kind: str,
    image_size: int,
    resize: int,
    padding: int = 0,
    hflip: bool = True,
    policy: Callable[[torch.Tensor], torch.Tensor] | None = None,
    warp: bool = False,
) -> v2.Compose:
    """pad_crop: random crop with zero padding (CIFAR, Tiny-ImageNet); resize_crop: resize the
    shorter side then random crop (fine-grained protocols); random_resized_crop: ImageNet style;
    resize: deterministic resize and centre crop. ``warp``: resize both sides to ``resize`` (the
    aspect ratio not kept) instead of the shorter side. A method's per-image policy runs last."""
    if kind == "pad_crop":
        ops = [v2.RandomCrop(image_size, padding=padding or None, pad_if_needed=True)]
    elif kind == "resize_crop":
        ops = [_resize(resize, warp), v2.RandomCrop(image_size, pad_if_needed=True)]
    elif kind == "random_resized_crop":
        ops = [v2.RandomResizedCrop(image_size, antialias=True)]
    elif kind == "resize":
        ops = [_resize(resize, warp), v2.CenterCrop(image_size)]
    else:
        raise ConfigError(f"dataset.train_transform must be one of {TRAIN_TRANSFORMS}, got '{kind}'")
    if hflip:
        ops.append(v2.RandomHorizontalFlip())
    if policy is not None:
        ops.append(policy)
    return v2.Compose(ops)


def eval_transform(image_size: int, resize: int, warp: bool = False) -> v2.Compose:
    """Resize the shorter side to ``resize`` (both sides with ``warp``) and centre-crop
    ``image_size`` (identity when the images already have that size, as CIFAR's 32 px with
    resize=32)."""
    return v2.Compose([_resize(resize, warp), v2.CenterCrop(image_size)])


def _resize(resize: int, warp: bool) -> v2.Resize:
    return v2.Resize((resize, resize) if warp else resize, antialias=True)
