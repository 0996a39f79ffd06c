"""Read the train/val/test splits a dataset config names (light imports: runs before training
starts, so missing data is reported at once)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from ..config import DatasetConfig
from .base import ImageClassificationDataset, SplitNotAvailableError, per_class_subset
from .registry import create_dataset

log = logging.getLogger(__name__)


@dataclass
class Splits:
    train: ImageClassificationDataset
    val: ImageClassificationDataset
    test: ImageClassificationDataset | None


def dataset_root(cfg: DatasetConfig, data_dir: str | Path) -> Path:
    return Path(cfg.root if cfg.root else data_dir).expanduser()


def build_splits(cfg: DatasetConfig, data_dir: str | Path) -> Splits:
    """Download if asked, then read every split; ``test`` is None where the dataset has none.
    ``samples_per_class`` keeps that many seeded training images per class."""
    root = dataset_root(cfg, data_dir)

    def read(split: str, download: bool = False) -> ImageClassificationDataset:
        return create_dataset(
            cfg.name,
            root,
            split,
            download=download,
            val_fraction=cfg.val_fraction,
            seed=cfg.split_seed,
            **dict(cfg.options),
        )

    train = read("train", download=cfg.download)
    if cfg.samples_per_class is not None:
        train = train.subset(per_class_subset(train.targets, cfg.samples_per_class, cfg.split_seed))
    val = read("val")
    try:
        test = read("test")
    except SplitNotAvailableError as exc:
        log.warning("No test split: %s", exc)
        test = None
    return Splits(train, val, test)
