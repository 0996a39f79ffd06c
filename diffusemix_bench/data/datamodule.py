"""LightningDataModule over any registered dataset: uint8 batches of (image, label, index)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from ..config import DatasetConfig
from .base import ImageClassificationDataset, SplitNotAvailableError, per_class_subset
from .registry import create_dataset
from .transforms import eval_transform, train_transform

log = logging.getLogger(__name__)


class ImageDataModule(pl.LightningDataModule):
    """Builds train/val/test splits of ``cfg.name`` under ``data_dir`` (or ``cfg.root``).

    ``policy`` is an augmentation's per-image CPU transform, applied to training images only.
    Images stay uint8 until they reach the device, where the training module scales them.
    """

    def __init__(
        self,
        cfg: DatasetConfig,
        data_dir: str | Path,
        policy: Callable[[torch.Tensor], torch.Tensor] | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.root = Path(cfg.root if cfg.root else data_dir).expanduser()
        self.policy = policy
        self.seed = seed
        self.train_set: ImageClassificationDataset | None = None
        self.val_set: ImageClassificationDataset | None = None
        self.test_set: ImageClassificationDataset | None = None
        self._built = False
        self._downloaded = False

    def _split(self, split: str, download: bool = False) -> ImageClassificationDataset:
        return create_dataset(
            self.cfg.name,
            self.root,
            split,
            download=download,
            val_fraction=self.cfg.val_fraction,
            seed=self.cfg.split_seed,
            **dict(self.cfg.options),
        )

    def build(self) -> None:
        """Read every split now (fails fast on missing data, before any model is built)."""
        if self._built:
            return
        c = self.cfg
        if c.download:
            self.prepare_data()
        train = self._split("train")
        if c.samples_per_class is not None:
            train = train.subset(per_class_subset(train.targets, c.samples_per_class, c.split_seed))
        val = self._split("val")
        val.transform = eval_transform(c.image_size, c.resize)
        try:
            test = self._split("test")
            test.transform = eval_transform(c.image_size, c.resize)
        except SplitNotAvailableError as exc:
            log.warning("No test split: %s", exc)
            test = None
        self.train_set, self.val_set, self.test_set = train, val, test
        self._built = True
        self.set_policy(self.policy)

    def set_policy(self, policy: Callable[[torch.Tensor], torch.Tensor] | None) -> None:
        """Use ``policy`` (an augmentation's per-image transform) on training images."""
        self.policy = policy
        if self.train_set is not None:
            c = self.cfg
            self.train_set.transform = train_transform(
                c.train_transform, c.image_size, c.resize, c.padding, c.hflip, policy
            )

    def prepare_data(self) -> None:
        # Downloads happen here, once, before any split is read without downloading.
        if self.cfg.download and not self._downloaded:
            self._split("train", download=True)
            self._downloaded = True

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
        drop_last = self.cfg.drop_last and len(self.train_set) > self.cfg.batch_size
        return self._loader(self.train_set, self.cfg.batch_size, shuffle=True, drop_last=drop_last)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, self.cfg.eval_batch_size or self.cfg.batch_size, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        if self.test_set is None:
            raise SplitNotAvailableError(f"dataset '{self.cfg.name}' at {self.root} has no test split")
        return self._loader(self.test_set, self.cfg.eval_batch_size or self.cfg.batch_size, shuffle=False)
