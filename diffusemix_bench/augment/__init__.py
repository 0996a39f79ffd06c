"""Augmentation methods behind one registry (DiffuseMix and every compared baseline).

The interface (``base.py``), the registry (``registry.py``) and the fractal bank shared by several
kinds sit here; the methods live in sub-packages by kind: ``diffusemix/``, ``mixing/`` (batch
mixing) and ``policies/`` (per-image policies). Every module below is imported so that its
``@register_aug`` runs: a new method is one new file (plus its ``conf/aug/<name>.yaml``), with no
list to edit. Modules of training-time helpers that register nothing (``LAZY``: Lightning
callbacks) are left to be imported when training starts, so composing a config stays quick.
"""

import importlib
import pkgutil

from .base import AugBatch, AugContext, Augmentation
from .registry import create_aug, list_augs, register_aug

LAZY = {"callbacks"}

for _module in pkgutil.walk_packages(__path__, prefix=f"{__name__}."):
    if _module.name.rsplit(".", 1)[-1] not in LAZY:
        importlib.import_module(_module.name)

__all__ = ["AugBatch", "AugContext", "Augmentation", "create_aug", "list_augs", "register_aug"]
