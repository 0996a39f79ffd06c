"""Dataset registry: ``@register_dataset(name)`` and ``create_dataset(name, root, split)``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .base import SPLITS, ImageClassificationDataset

_READERS: dict[str, Callable[..., ImageClassificationDataset]] = {}


def register_dataset(name: str):
    """Register a reader ``fn(root: Path, split: str, *, download, val_fraction, seed, **options)``.

    ``root`` is the folder that holds the dataset's own top folder (``paths.data_dir``), so
    ``flowers102`` reads ``<root>/flowers-102``; ``imagefolder`` reads ``root`` itself.
    """

    def wrap(fn):
        if name in _READERS:
            raise ValueError(f"dataset '{name}' registered twice")
        _READERS[name] = fn
        return fn

    return wrap


def list_datasets() -> list[str]:
    return sorted(_READERS)


def create_dataset(
    name: str,
    root: str | Path,
    split: str,
    *,
    download: bool = False,
    val_fraction: float = 0.1,
    seed: int = 0,
    **options,
) -> ImageClassificationDataset:
    """Build one split (``train``, ``val`` or ``test``) of a registered dataset."""
    if name not in _READERS:
        raise KeyError(f"unknown dataset '{name}'; choose one of: {', '.join(list_datasets())}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got '{split}'")
    return _READERS[name](
        Path(root).expanduser(), split, download=download, val_fraction=val_fraction, seed=seed, **options
    )
