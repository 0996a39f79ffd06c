"""Augmentation methods behind one registry (DiffuseMix and every compared baseline).

Every module and subpackage here is imported so that its ``@register_aug`` runs: a new method is
one new file (plus its ``conf/aug/<name>.yaml``), with no list to edit.
"""

import importlib
import pkgutil

from .base import AugBatch, AugContext, Augmentation
from .registry import create_aug, list_augs, register_aug

for _module in pkgutil.iter_modules(__path__):
    if _module.name not in ("base", "registry") and not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["AugBatch", "AugContext", "Augmentation", "create_aug", "list_augs", "register_aug"]
