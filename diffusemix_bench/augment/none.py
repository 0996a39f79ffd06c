"""No augmentation beyond the dataset's crop and flip (the paper's "Vanilla")."""

from __future__ import annotations

from dataclasses import dataclass

from .base import Augmentation
from .registry import register_aug


@dataclass
class NoneAugConfig:
    name: str = "none"


@register_aug("none", NoneAugConfig)
class NoAugmentation(Augmentation):
    pass
