"""Dataset readers for every paper dataset and any image folder.

The package loads its parts on first use, so that reading the dataset layouts (``data.layouts``:
where each dataset lives, and the error when it is missing) imports no torch."""

from __future__ import annotations

import importlib

_PARTS = {
    "DATASET_LAYOUTS": "layouts",
    "DatasetNotFoundError": "layouts",
    "CorruptImageError": "base",
    "ImageClassificationDataset": "base",
    "SplitNotAvailableError": "base",
    "per_class_subset": "base",
    "stratified_holdout": "base",
    "create_dataset": "registry",
    "list_datasets": "registry",
    "register_dataset": "registry",
}

__all__ = sorted(_PARTS)


def __getattr__(name: str):
    if name in _PARTS:
        if _PARTS[name] == "registry":
            importlib.import_module(".readers", __name__)  # the built-in readers register themselves
        return getattr(importlib.import_module(f".{_PARTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
