"""LightningDataModule over any registered dataset: uint8 batches of (image, label, index)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from ..config import DatasetConfig
from .base import ImageClassificationDataset, SplitNotAvailableError
from .splits import Splits, build_splits, dataset_root
from .transforms import eval_transform, train_transform

log = logging.getLogger(__name__)


class ImageDataModule(pl.LightningDataModule):
    """Serves train/val/test splits of ``cfg.name`` under ``data_dir`` (or ``cfg.root``), read
    here or passed in already read (``splits``). With ``dataset.download=true`` the download
    happens when the splits are read, in the launching process, before any worker starts.

    ``set_augmentation`` hands the training split to an augmentation method: its per-image CPU
    policy joins the train transform and it may wrap the training set (DiffuseMix adds edits).
    Images stay uint8 until they reach the device, where the training module scales them.
    """

    def __init__(
        self,
        cfg: DatasetConfig,
        data_dir: str | Path,
        seed: int = 0,
        splits: Splits | None = None,
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.root = dataset_root(cfg, data_dir)
        self.splits = splits
        self.policy: Callable[[torch.Tensor], torch.Tensor] | None = None
        self.wrap_train: Callable[[Dataset], Dataset] | None = None
        self.seed = seed
        self.train_set: ImageClassificationDataset | None = None
        self.val_set: ImageClassificationDataset | None = None
        self.test_set: ImageClassificationDataset | None = None
        self._built = False

    def build(self) -> None:
        """Read every split now (fails fast on missing data, before any model is built)."""
        if self._built:
            return
        splits = self.splits or build_splits(self.cfg, self.root)
        self.train_set, self.val_set, self.test_set = splits.train, splits.val, splits.test
        c = self.cfg
        for split in (self.val_set, self.test_set):
            if split is not None:
                split.transform = eval_transform(c.image_size, c.resize)
        self._built = True
        self.set_policy(self.policy)

    def set_augmentation(self, aug) -> None:
        """Train with ``aug``'s per-image policy and training-set wrapper (see Augmentation)."""
        self.wrap_train = aug.train_dataset
        self.set_policy(aug.sample_transform())

    def set_policy(self, policy: Callable[[torch.Tensor], torch.Tensor] | None) -> None:
        """Use ``policy`` (a per-image uint8 transform) on training images."""
        self.policy = policy
        if self.train_set is not None:
            c = self.cfg
            self.train_set.transform = train_transform(
                c.train_transform, c.image_size, c.resize, c.padding, c.hflip, policy
            )

    def setup(self, stage: str | None = None) -> None:
        self.build()

    @property
    def num_classes(self) -> int:
        self.build()
        return self.train_set.num_classes

    def _loader(self, dataset, batch_size: int, shuffle: bool, drop_last: bool = False) -> DataLoader:
        workers = self.cfg.num_workers
        return DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=shuffle,
            num_workers=workers,
            pin_memory=torch.cuda.is_available(),
            persistent_workers=workers > 0,
            drop_last=drop_last,
            generator=torch.Generator().manual_seed(self.seed) if shuffle else None,
        )

    def train_dataloader(self) -> DataLoader:
        train = self.wrap_train(self.train_set) if self.wrap_train is not None else self.train_set
        # A last batch of one image cannot train BatchNorm: drop it in that case only.
        drop_last = len(train) > self.cfg.batch_size and (
            self.cfg.drop_last or len(train) % self.cfg.batch_size == 1
        )
        return self._loader(train, self.cfg.batch_size, shuffle=True, drop_last=drop_last)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, self.cfg.eval_batch_size or self.cfg.batch_size, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        if self.test_set is None:
            raise SplitNotAvailableError(f"dataset '{self.cfg.name}' at {self.root} has no test split")
        return self._loader(self.test_set, self.cfg.eval_batch_size or self.cfg.batch_size, shuffle=False)
