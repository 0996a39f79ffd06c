"""Augmentation methods behind one registry (DiffuseMix and every compared baseline)."""

from . import none  # noqa: F401  (registers the method)
from .base import AugBatch, Augmentation
from .registry import create_aug, list_augs, register_aug

__all__ = ["AugBatch", "Augmentation", "create_aug", "list_augs", "register_aug"]
