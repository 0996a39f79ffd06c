"""LightningDataModule over any registered dataset: uint8 batches of (image, label, index)."""

from __future__ import annotations

import atexit
import logging
import multiprocessing
import multiprocessing.util  # registers its exit handler before ours: ours runs first
import os
import signal
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, SequentialSampler

from ..config import DatasetConfig
from ..errors import ConfigError
from .base import ImageClassificationDataset, SplitNotAvailableError
from .order import LIMITED_EVAL_ORDER, SPLIT_ORDER, class_interleaved
from .sampling import (
    OrderedDistributedSampler,
    ResumableLoader,
    ResumableSampler,
    SeededItems,
)
from .splits import Splits, build_splits, dataset_root
from .transforms import eval_transform, train_transform

log = logging.getLogger(__name__)


def worker_init(worker_id: int, rank: int | None = None) -> None:
    """Every data-loader worker leaves SIGTERM and Ctrl-C (SIGINT) to the main process, which
    finishes its step, writes its checkpoint and stops, then stops its workers: a scheduler,
    ``timeout``, ``kill -- -<group>`` or a terminal's Ctrl-C signals the whole process group, and
    workers stopped by it ended the run with PyTorch's "DataLoader worker is killed by signal" or
    "exited unexpectedly" errors and their own tracebacks instead. Then Lightning's seeding of the
    worker, which it adds only to loaders without a ``worker_init_fn``
    (``seed_everything(workers=True)``)."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _quiet_resource_sharer()
    if int(os.environ.get("PL_SEED_WORKERS", 0)):
        from lightning_fabric.utilities.seed import pl_worker_init_function

        pl_worker_init_function(worker_id, rank=rank)


def _quiet_resource_sharer() -> None:
    """A worker hands its batches' shared memory to the main process through multiprocessing's
    resource sharer, a thread that accepts the main process's connections. When the main process
    stops (Ctrl-C, an error) during a hand-over, that thread's connection breaks and Python printed
    its traceback after the main process's one-line message. Such a break, in that thread only, is
    left unreported; any other thread's error is reported as before."""
    import sys
    import threading
    import traceback

    def sharer_broke(kind, tb) -> bool:
        frames = traceback.extract_tb(tb) if tb is not None else []
        return issubclass(kind, (OSError, EOFError)) and any(
            f.filename.endswith(os.path.join("multiprocessing", "resource_sharer.py")) for f in frames
        )

    previous_thread, previous_sys = threading.excepthook, sys.excepthook

    def thread_hook(args) -> None:
        if not sharer_broke(args.exc_type, args.exc_traceback):
            previous_thread(args)

    # The sharer's serving loop reports its own errors through sys.excepthook.
    def sys_hook(kind, value, tb) -> None:
        if not sharer_broke(kind, tb):
            previous_sys(kind, value, tb)

    threading.excepthook = thread_hook
    sys.excepthook = sys_hook


def stop_workers_at_exit() -> None:
    """Kill the data-loader workers still running when the process exits. Workers ignore SIGTERM
    (see :func:`worker_init`), so the exit handler of ``multiprocessing``, which stops daemonic
    children with SIGTERM and then waits for them, would wait forever: that happens when an error
    ends a run while a loader's iterator is still open (a corrupt image met by generate.py). Only
    daemonic children are killed; they only read data, and at exit nothing waits for them. PyTorch's
    SIGCHLD handler, which would report each killed worker as a traceback after the run's message
    (a sweep whose failed job left a loader open), is set back to the default first."""
    children = [child for child in multiprocessing.active_children() if child.daemon]
    if not children:
        return
    import signal

    if hasattr(signal, "SIGCHLD"):
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    for child in children:
        child.kill()


atexit.register(stop_workers_at_exit)


def drops_last_batch(per_rank: int, batch_size: int, drop_last: bool) -> bool:
    """Whether the training loader drops each rank's last, partial batch (``per_rank`` items a
    rank): ``dataset.drop_last``, or a last batch of one image, which cannot train BatchNorm."""
    return per_rank > batch_size and (drop_last or per_rank % batch_size == 1)


def _named(loader: DataLoader, order: list[int] | None) -> DataLoader:
    """``loader``, saying the order it reads its split in (``read_order``: what a limit's first
    batches hold, recorded beside a limited measurement)."""
    loader.read_order = LIMITED_EVAL_ORDER if order is not None else SPLIT_ORDER
    return loader


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
        self._resume: tuple[int, int] | None = None  # (epoch, batches trained) from a checkpoint
        # The order each of Lightning's evaluation loaders ("validation", "test") last read its
        # split in (data/order.py): what a batch limit's first batches held, for metrics.json.
        self.read_orders: dict[str, str] = {}

    def build(self) -> None:
        """Read every split now (fails fast on missing data, before any model is built)."""
        if self._built:
            return
        splits = self.splits or build_splits(self.cfg, self.root)
        self.train_set, self.val_set, self.test_set = splits.train, splits.val, splits.test
        c = self.cfg
        for split in (self.val_set, self.test_set):
            if split is not None:
                split.transform = eval_transform(c.image_size, c.resize, c.warp)
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
                c.train_transform, c.image_size, c.resize, c.padding, c.hflip, policy, c.warp
            )

    def setup(self, stage: str | None = None) -> None:
        self.build()

    @property
    def num_classes(self) -> int:
        self.build()
        return self.train_set.num_classes

    def _worker_args(self) -> dict:
        """The DataLoader arguments every split's loader shares."""
        workers = self.cfg.num_workers
        return {
            "num_workers": workers,
            "pin_memory": torch.cuda.is_available(),
            "persistent_workers": workers > 0,
            "worker_init_fn": partial(worker_init, rank=self.trainer.global_rank if self.trainer else None),
        }

    def eval_loader(
        self, dataset, batch_size: int | None = None, split: str | None = None, limited: bool = False
    ) -> DataLoader:
        """Validation and test: every image (``batch_size``: other than the dataset's), in the
        split's order, or, where only its first batches are read (``limited``: a batch limit), in
        a fixed order that takes the classes in turn (order.class_interleaved), so that those
        batches spread over the classes. With ``split`` (Lightning's validation and test
        loaders), each of several processes reads its own part, unpadded: Lightning's
        DistributedSampler would repeat images to even the parts out, and count them twice in
        the accuracy."""
        batch = batch_size or self.cfg.eval_batch_size or self.cfg.batch_size
        trainer = self.trainer
        order = None
        targets = getattr(dataset, "targets", None)
        if limited and len(dataset) and targets is not None:  # (unlabelled: read in its own order)
            order = class_interleaved(targets)
        if split is not None:
            self.read_orders[split] = LIMITED_EVAL_ORDER if order is not None else SPLIT_ORDER
        if split is None or trainer is None or trainer.world_size == 1 or not len(dataset):
            # (an empty split: the validation split of dataset.val_fraction=0, never read)
            return _named(DataLoader(dataset, batch_size=batch, sampler=order, **self._worker_args()), order)
        if len(dataset) < trainer.world_size:
            raise ConfigError(
                f"the {split} split has {len(dataset)} image{'s' if len(dataset) != 1 else ''}, fewer than the "
                f"{trainer.world_size} processes that train together (trainer.devices x trainer.num_nodes), each "
                "of which evaluates a part of it: train on fewer devices, or give the split more images"
            )
        if order is not None:
            sampler = OrderedDistributedSampler(
                order, num_replicas=trainer.world_size, rank=trainer.global_rank
            )
        else:
            from pytorch_lightning.overrides.distributed import UnrepeatedDistributedSampler

            sampler = UnrepeatedDistributedSampler(
                dataset, num_replicas=trainer.world_size, rank=trainer.global_rank, shuffle=False
            )
        return _named(DataLoader(dataset, batch_size=batch, sampler=sampler, **self._worker_args()), order)

    def _limited(self, key: str) -> bool:
        """Whether the trainer reads only some batches of a split (``limit_val_batches`` or
        ``limit_test_batches``: a fraction under 1, or a number of batches; fast_dev_run sets them).
        Not under ``overfit_batches`` (debug=overfit), which validates on the split's first batches:
        Lightning puts a sequential sampler in place of any other while it fits."""
        if self.trainer is None or (getattr(self.trainer, "overfit_batches", 0) or 0) > 0:
            return False
        value = getattr(self.trainer, key, None)
        if isinstance(value, float):
            return value < 1.0
        return isinstance(value, int)

    def train_dataloader(self) -> DataLoader:
        """The training loader: order and per-image draws are functions of (seed, epoch, position)
        (data/sampling.py), and its state in a checkpoint lets a resumed run go on from the next
        batch, mid-epoch included."""
        train = self.wrap_train(self.train_set) if self.wrap_train is not None else self.train_set
        trainer = self.trainer
        world, rank = (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)
        batch = self.cfg.batch_size
        per_rank = -(-len(train) // world)
        drop_last = drops_last_batch(per_rank, batch, self.cfg.drop_last)
        if trainer is not None and trainer.overfit_batches > 0:
            # debug=overfit trains on the same first batches every epoch, in order: the sampler
            # Lightning would otherwise put in place of a shuffling one (saying so in a warning).
            sampler = SequentialSampler(train)
        else:
            sampler = ResumableSampler(train, seed=self.seed, batch_size=batch, num_replicas=world, rank=rank)
            if self._resume is not None:
                saved_world = getattr(self, "_resume_world", None)
                if self._resume[1] and saved_world is not None and saved_world != world:
                    # Each process skips the batches trained by its own part of the epoch's order.
                    raise ConfigError(
                        f"the checkpoint was taken {self._resume[1]} batches into an epoch by {saved_world} "
                        f"process{'es' if saved_world != 1 else ''}, and this run has {world} "
                        "(trainer.devices x trainer.num_nodes): the rest of that epoch would skip or repeat "
                        f"images. Resume it on {saved_world} (a later change is fine from a checkpoint at an "
                        "epoch's end)"
                    )
                sampler.resume_at(*self._resume)
        return ResumableLoader(
            SeededItems(train),
            batch_size=batch,
            sampler=sampler,
            drop_last=drop_last,
            **self._worker_args(),
            # Workers' base seeds come from here, never from the global generator (whose state a
            # checkpoint restores); every item is seeded by SeededItems anyway.
            generator=torch.Generator().manual_seed(self.seed),
            position=self._train_position if trainer is not None else None,
        )

    def state_dict(self) -> dict:
        """Saved in every checkpoint: where the training loader stands (see _train_position)."""
        if self.trainer is None or self.trainer.num_training_batches in (0, float("inf")):
            return {}
        epoch, batches = self._train_position()
        return {"train_epoch": epoch, "train_batches": batches, "world_size": self.trainer.world_size}

    def load_state_dict(self, state: dict) -> None:
        """A resumed run's training loader starts at the saved position (Lightning reads the
        checkpoint before it asks for the loader)."""
        if "train_epoch" in state:
            self._resume = (int(state["train_epoch"]), int(state["train_batches"]))
            self._resume_world = state.get("world_size")  # None: a checkpoint that predates it

    def _train_position(self) -> tuple[int, int]:
        """(epoch, batches of it trained) as a checkpoint saved now should record it: after the
        epoch's last batch, the next epoch from its start."""
        trainer = self.trainer
        done = trainer.fit_loop.epoch_loop.batch_progress.current.processed
        if done >= trainer.num_training_batches:
            return trainer.current_epoch + 1, 0
        return trainer.current_epoch, done

    def val_dataloader(self) -> DataLoader:
        return self.eval_loader(self.val_set, split="validation", limited=self._limited("limit_val_batches"))

    def test_dataloader(self) -> DataLoader:
        if self.test_set is None:
            raise SplitNotAvailableError(f"dataset '{self.cfg.name}' at {self.root} has no test split")
        return self.eval_loader(self.test_set, split="test", limited=self._limited("limit_test_batches"))
