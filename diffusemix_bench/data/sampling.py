"""The training loader's order and per-image randomness, both functions of (seed, epoch, position),
so that a run resumed from any step, mid-epoch included, reads the images the uninterrupted run
would have read and draws the same crops, flips and augmentation choices for them.

- :class:`ResumableSampler` yields ``(index, sample seed)`` pairs: the epoch's permutation is drawn
  from a generator seeded by (seed, epoch), every rank takes its share as DistributedSampler does,
  and after a resume the epoch starts after the batches already trained.
- :class:`SeededItems` seeds Python's, NumPy's and torch's generators with the sample's seed before
  reading the item: in a worker, what an image draws no longer depends on which worker read it or
  what it read before; in the main process the generators' states are put back afterwards.
- :class:`ResumableLoader` gives Lightning the loader state (``state_dict`` / ``load_state_dict``)
  that a checkpoint carries: the epoch and how many of its batches were trained.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, get_worker_info


def _seed(*words: int) -> int:
    return int(np.random.SeedSequence([int(w) % 2**63 for w in words]).generate_state(2, np.uint64)[0] >> 1)


class ResumableSampler(DistributedSampler):
    """A shuffling sampler over ``len(dataset)`` items for rank ``rank`` of ``num_replicas``.
    It is a DistributedSampler, so Lightning never wraps or replaces it; with one process it is a
    plain shuffle. ``set_epoch`` picks the permutation; ``start_at(batches)`` makes the next
    iteration begin after that many batches of this rank's share (a mid-epoch resume)."""

    def __init__(
        self,
        dataset: Dataset,
        *,
        seed: int,
        batch_size: int,
        num_replicas: int = 1,
        rank: int = 0,
    ) -> None:
        super().__init__(
            dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed, drop_last=False
        )
        self.batch_size = batch_size
        self.resume: tuple[int, int] | None = None  # (epoch, batches of it already trained)

    def resume_at(self, epoch: int, batches: int) -> None:
        """Go on from batch ``batches`` of ``epoch``: every iteration of that epoch leaves out the
        items of the batches already trained (an iterator made and dropped before training
        starts loses nothing); the next epoch starts whole."""
        self.set_epoch(epoch)
        self.resume = (epoch, batches)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        g = torch.Generator().manual_seed(_seed(self.seed, self.epoch))
        order = torch.randperm(len(self.dataset), generator=g).tolist()
        if len(order) < self.total_size:  # pad as DistributedSampler does, so ranks get equal shares
            order += order[: self.total_size - len(order)]
        skip = 0
        if self.resume is not None:
            if self.resume[0] == self.epoch:
                skip = self.resume[1] * self.batch_size
            else:
                self.resume = None
        for position in range(self.rank + skip * self.num_replicas, self.total_size, self.num_replicas):
            yield order[position], _seed(self.seed, self.epoch, position)


class SeededItems(Dataset):
    """``base`` read with ``(index, seed)`` keys (see ResumableSampler): the global generators
    are seeded with ``seed`` before the item is read. A plain integer index reads unseeded."""

    def __init__(self, base: Dataset) -> None:
        self.base = base

    def __len__(self) -> int:
        return len(self.base)

    def __getattr__(self, name: str):
        if name == "base":  # not yet set (unpickling)
            raise AttributeError(name)
        return getattr(self.base, name)

    def __getitem__(self, key):
        if not isinstance(key, tuple):
            return self.base[key]
        index, seed = key
        if get_worker_info() is not None:  # a worker: its generators serve the data alone
            _seed_all(seed)
            return self.base[index]
        states = random.getstate(), np.random.get_state(), torch.get_rng_state()
        try:
            _seed_all(seed)
            return self.base[index]
        finally:
            random.setstate(states[0])
            np.random.set_state(states[1])
            torch.set_rng_state(states[2])


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class ResumableLoader(DataLoader):
    """A DataLoader whose state is the epoch and the number of its batches trained, read from
    ``position`` (the trainer's progress). Lightning recognises it as resumable; the data module
    saves and restores the same position (its state_dict), which also covers a loader that
    Lightning made before the checkpoint was read."""

    def __init__(self, *args, position: Callable[[], tuple[int, int]] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.position = position

    def state_dict(self) -> dict:
        epoch, batches = self.position() if self.position is not None else (self.sampler.epoch, 0)
        return {"epoch": int(epoch), "batches": int(batches)}

    def load_state_dict(self, state: dict) -> None:
        if isinstance(self.sampler, ResumableSampler):  # debug=overfit's sequential one starts over
            self.sampler.resume_at(int(state["epoch"]), int(state["batches"]))


class OrderedDistributedSampler(DistributedSampler):
    """The indices ``order`` lists, rank ``rank`` of ``num_replicas`` taking every
    ``num_replicas``-th from its own offset, unpadded (as Lightning's UnrepeatedDistributedSampler
    does for the split's own order): no image is read twice. A DistributedSampler, which Lightning
    keeps as given (data/datamodule.py uses none under overfit_batches, where Lightning would put a
    sequential one in its place)."""

    def __init__(self, order: list[int], *, num_replicas: int = 1, rank: int = 0):
        self.order = list(order)
        self.num_replicas, self.rank = num_replicas, rank
        self.num_samples = len(self.order[rank::num_replicas])
        self.total_size = len(self.order)
        self.shuffle, self.seed, self.epoch, self.drop_last = False, 0, 0, False

    def __iter__(self) -> Iterator[int]:
        return iter(self.order[self.rank :: self.num_replicas])

    def __len__(self) -> int:
        return self.num_samples
