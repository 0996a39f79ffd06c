"""The generate job: missing edits through Lightning predict, sharded over devices, written batch by batch."""

from __future__ import annotations

import logging
import time
import warnings
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig
from pytorch_lightning.callbacks import BasePredictionWriter
from pytorch_lightning.utilities.exceptions import MisconfigurationException, SIGTERMException
from torch.utils.data import DataLoader, Dataset

from .. import quiet  # noqa: F401  (library messages a user cannot act on)
from ..config import validate_config
from ..data import ImageClassificationDataset, create_dataset, per_class_subset
from ..data.datamodule import worker_init
from ..data.splits import Splits, check_images_there, dataset_root, verify_as_asked
from ..errors import (
    USER_ERRORS,
    ConfigError,
    UserError,
    free_space,
    trainer_refusal,
    user_errors_reported,
    user_message,
)
from ..progress import counted, say
from ..signals import ctrl_c_held, note_sigterm_only
from .edit_model import (
    DTYPES,
    EditModel,
    check_local_dir,
    check_resolution,
    check_step_cache,
    finish,
    is_bad,
    resolve_dtype,
    to_uint8,
)
from .prompts import build_prompts
from .store import (
    EditStore,
    EditStoreError,
    edit_seed,
    image_files,
    image_root,
    largest_block,
    prompt_blocks,
    resolve_store_size,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EditKey:
    split: str
    index: int  # in the full split (see store.split_indices)
    prompt_id: str


@dataclass(frozen=True)
class EditGroup:
    """One pipeline call's worth of work: an image and a block of its prompts (store.prompt_blocks).
    In batched mode the whole block is generated and only ``to_write`` is stored; one image per
    call (batch_invariant) generates ``to_write`` alone."""

    split: str
    index: int
    block: int  # the block's number in the prompt list
    prompts: tuple[str, ...]
    to_write: tuple[str, ...]  # the block's planned prompts missing from the store
    broken: tuple[str, ...] = ()  # those of to_write whose recorded file was found broken

    @property
    def name(self) -> str:
        return f"b{self.block}-{self.index}"

    def keys(self) -> list[EditKey]:
        return [EditKey(self.split, self.index, pid) for pid in self.to_write]


@dataclass
class Counts:
    planned: int = 0
    existing: int = 0
    converted: int = 0  # copied from the store of the same settings in the other format
    adopted: int = 0  # found whole on disk but missing from the manifest: recorded
    broken: int = 0  # recorded edits found broken (wrong size, or undecodable with verify): made again
    generated: int = 0
    # Stored with a regeneration seed (attempt > 0): after a bad edit in this run or an earlier one.
    regenerated: int = 0
    retries: int = 0
    failed: int = 0
    # Keys left to another generate.py working on the same store (its claim was held, or it
    # finished them first).
    by_others: int = 0
    failed_keys: list[EditKey] = field(default_factory=list)


def runtime_settings(g: DictConfig, device: torch.device) -> dict:
    """How this run computes edits on ``device`` beyond the folder's settings (see
    store.RUNTIME_EXACT, RUNTIME_LOOSE): generator.dtype resolved for the device, and the speed
    settings that can move a pixel by a level."""
    dtype = resolve_dtype(str(g.dtype), device)
    return {
        "dtype": next(name for name, d in DTYPES.items() if d == dtype),
        "dtype_setting": str(g.dtype),
        "device": device.type,
        "channels_last": bool(g.channels_last),
        "compile": bool(g.compile),
        "batch_invariant": bool(g.batch_invariant),
    }


def read_split(cfg: DictConfig, split: str) -> tuple[ImageClassificationDataset, list[int]]:
    """The split the training run reads, untransformed, and the store indices to edit: every
    index, or the few-shot subset's (``dataset.samples_per_class``, train only) exactly as
    data.splits.build_splits picks it."""
    d = cfg.dataset
    ds = create_dataset(
        d.name,
        dataset_root(d, cfg.paths.data_dir),
        split,
        download=bool(d.download) and split == "train",
        val_fraction=d.val_fraction,
        seed=d.split_seed,
        **dict(d.options),
    )
    if split == "train" and d.samples_per_class is not None:
        indices = per_class_subset(ds.targets, d.samples_per_class, d.split_seed, ds.classes)
    else:
        indices = list(range(len(ds)))
    if str(d.get("on_bad_image") or "error") != "skip":  # (skip: verification below lists them)
        check_images_there(ds)
    # The images train.py leaves out with the same settings: no edits are made for them.
    # (said here in generation's words: verification's own lines speak of a split's numbers)
    found = verify_as_asked(
        Splits(**{s: ds if s == split else None for s in ("train", "val", "test")}),
        d,
        cfg.paths.cache_dir,
        quiet=True,
    ).get(split, [])
    if found:
        bad = set(found)
        kept = [i for i in indices if str(ds.paths[i]) not in bad]
        say(
            f"{len(found)} corrupt image(s) of {d.name}/{split} skipped (dataset.on_bad_image=skip; first: "
            f"{found[0]}): no edits are made for them"
        )
        emptied = sorted({ds.targets[i] for i in indices} - {ds.targets[i] for i in kept})
        if emptied:
            names = [str(ds.classes[t]) for t in emptied]
            shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
            say(
                f"class(es) {shown} of {d.name}/{split} have no image left once the corrupt ones are skipped: "
                "no edits are made for them, and train.py with the same settings trains on none of their "
                "images; replace the files with good copies to count them"
            )
        indices = kept
    return ds, limited(indices, ds.targets, cfg.generator.get("limit"), cfg.generator.get("limit_per_class"))


def limited(indices: list[int], targets, limit: int | None, per_class: int | None) -> list[int]:
    """``indices`` cut to their first ``limit``, or to the first ``per_class`` of each class."""
    if per_class is not None:
        taken: dict[int, int] = {}
        out = []
        for i in indices:
            label = int(targets[i])
            if taken.get(label, 0) < per_class:
                taken[label] = taken.get(label, 0) + 1
                out.append(i)
        indices = out
    return indices if limit is None else indices[:limit]


class GroupDataset(Dataset):
    """One item per group: the group and its untransformed original image (uint8 CHW)."""

    def __init__(self, splits: dict[str, ImageClassificationDataset], groups: list[EditGroup]) -> None:
        self.splits = splits
        self.groups = groups

    def __len__(self) -> int:
        return len(self.groups)

    def __getitem__(self, i: int) -> tuple[EditGroup, torch.Tensor]:
        group = self.groups[i]
        return group, self.splits[group.split].load_image(group.index)


def _single(item):
    return item


def plan_groups(
    split: str,
    indices: list[int],
    missing: list[tuple[int, str]],
    blocks: list[list[str]],
    broken: list[tuple[int, str]] = (),
) -> list[EditGroup]:
    """The groups holding the missing keys, in the order of ``indices`` and of the blocks."""
    bad = set(broken)
    wanted: dict[int, set[str]] = {}
    for i, pid in missing:
        wanted.setdefault(i, set()).add(pid)
    groups = []
    for i in indices:
        todo = wanted.get(i)
        if not todo:
            continue
        for b, block in enumerate(blocks):
            write = tuple(pid for pid in block if pid in todo)
            if write:
                broke = tuple(pid for pid in write if (i, pid) in bad)
                groups.append(EditGroup(split, i, b, tuple(block), write, broke))
    return groups


def rank_share(groups: list[EditGroup], trainer) -> list[EditGroup]:
    """This rank's groups of the first rank's list: r, r + world, ... (every rank takes its share
    of one list, whatever its own listing found)."""
    rank, world = trainer.global_rank, trainer.world_size
    if world > 1:
        groups = trainer.strategy.broadcast(groups, src=0)
    return groups[rank::world]


class EditKeysData(pl.LightningDataModule):
    """Works out the missing keys (every rank from the same store state, before any rank writes;
    the first rank's groups are every rank's), groups them (EditGroup) and gives rank r the groups
    r, r + world, ...: no key twice, and each group generated whole by one rank. A rank can get no
    group at all."""

    def __init__(
        self,
        cfg: DictConfig,
        stores: dict[str, EditStore],
        counts: Counts,
        only: dict[str, list[int]] | None = None,
    ) -> None:
        super().__init__()
        self.only = only
        # A rank whose share of the missing keys is empty runs an empty predict loop.
        self.allow_zero_length_dataloader_with_multiple_devices = True
        self.cfg = cfg
        self.stores = stores
        self.counts = counts
        self.splits: dict[str, ImageClassificationDataset] = {}
        self.groups: list[EditGroup] = []

    @property
    def keys(self) -> int:
        return sum(len(g.to_write) for g in self.groups)

    def setup(self, stage: str) -> None:
        g = self.cfg.generator
        groups: list[EditGroup] = []
        planned = to_make = broken = 0
        runtime = runtime_settings(g, self.trainer.strategy.root_device)
        all_ids = [p.id for p in build_prompts(list(g.prompts), g.prompt_template, None)]
        reads = {split: read_split(self.cfg, split) for split in self.stores}
        if self.only is not None:
            reads = {
                split: (ds, [i for i in idx if i in set(self.only[split])])
                for split, (ds, idx) in reads.items()
            }

        # Before anything is written, the first rank refuses a store made from other images
        # (index by index: a stat per planned image) and records the indices new to it; every
        # rank stops alike when it refuses or fails.
        files: dict[str, dict] = {}  # the first rank's: a stat per planned image

        def check_images() -> None:
            for split, store in self.stores.items():
                ds, indices = reads[split]
                files[split] = image_files(ds, indices, sizes=True)
                store.ensure_settings()  # a damaged settings.json is said before any work
                store.check_images(files[split], record=True, root=image_root(ds))

        self._on_first_rank(check_images)

        # A store with a store of the same settings in the other format beside it (npy <-> png)
        # is filled from it first (one process converts; the others wait): changing the format,
        # or exporting edits as PNG files to look at, generates nothing. Then the missing edits
        # are listed.
        def convert() -> None:
            for split, store in self.stores.items():
                adopted = store.adopt_unrecorded(reads[split][1])
                self.counts.adopted += adopted
                if adopted:
                    say(
                        f"edit store [{split}]: recorded {adopted} edits found whole on disk but missing from "
                        "its manifest (nothing made again for them)"
                    )
                source = store.sibling()
                if source is not None and source.folder.is_dir():
                    try:  # the other format's store of the same settings may hold another folder's edits
                        source.check_images(files[split], root=image_root(reads[split][0]))
                        source.stored_runtime()  # and its record of how they were made must read
                        store.check_same_commit(source)  # and come from the same weights
                    except EditStoreError as exc:
                        said = user_message(exc).split(". ")[0]  # what is wrong with it, not how to mend it
                        say(
                            f"the {source.format} store of the same settings is not converted from (its edits "
                            f"are made anew here): {said}"
                        )
                        continue

                    def one() -> None:  # (counted as each is written: a stop part-way says how many)
                        self.counts.converted += 1

                    n = store.convert_from(source, reads[split][1], store.prompt_ids, each=one)
                    if n:
                        say(f"converted {n} edits from the {source.format} store {source.folder}")

        self._on_first_rank(convert)
        # Every rank's summary and record of work begun count what the first rank converted.
        self.counts.converted, self.counts.adopted = self.trainer.strategy.broadcast(
            (self.counts.converted, self.counts.adopted), src=0
        )
        for store in self.stores.values():
            store.refresh()
        for split, store in self.stores.items():
            ds, indices = reads[split]
            self.splits[split] = ds
            planned += len(indices) * len(store.prompt_ids)
            missing = store.missing(indices, verify=bool(g.verify))
            broken += len(store.last_broken)
            if store.last_broken and self.trainer.is_global_zero:
                shown = ", ".join(f"{i}/{p}" for i, p in store.last_broken[:5])
                log.warning(
                    "edit store [%s]: %d recorded edits are broken (%s%s): they are made again",
                    split,
                    len(store.last_broken),
                    shown,
                    ", ..." if len(store.last_broken) > 5 else "",
                )
            if missing:  # every rank checks (and stops) alike, before any rank writes
                store.use_runtime(runtime, warn=self.trainer.is_global_zero)
            to_make += len(missing)
            # Blocks over the full prompt list (num_prompts only picks which edits are written).
            blocks = prompt_blocks(all_ids, int(g.batch_size))
            groups += plan_groups(split, indices, missing, blocks, store.last_broken)
        self.counts.planned = planned
        self.counts.existing = planned - to_make
        self.counts.broken = broken
        if self.trainer.is_global_zero:
            for split, store in self.stores.items():
                say(f"edit store [{split}]: {store.folder} ({counted(len(store.prompt_ids), 'prompt')})")
            # (one image per call, batch_invariant: a call for each edit of a group)
            calls = sum(len(group.to_write) for group in groups) if g.batch_invariant else len(groups)
            say(
                f"{counted(planned, 'edit')} planned: {self.counts.existing} already stored"
                + (f" ({self.counts.converted} of them converted just now)" if self.counts.converted else "")
                + f", {to_make} to make"
                + (f" ({broken} of them broken)" if broken else "")
                + f", in {counted(calls, 'pipeline call')}"
                + (f" on {self.trainer.world_size} devices" if self.trainer.world_size > 1 else "")
            )
        # Nobody writes before every rank has listed what is missing. The first rank's list is
        # every rank's: another generate.py filling the store at the same time could otherwise
        # make two ranks' lists differ, and rank r's share of one would not be the others' complement
        # (groups given to two ranks, some to none).
        self.trainer.strategy.barrier("edit-keys")
        self.groups = rank_share(groups, self.trainer)

    def _on_first_rank(self, work) -> None:
        """Run ``work`` on the first rank while the others wait; when it fails, every rank stops
        (the first with its own error, the others with its message), so none is left waiting."""
        failure = None
        if self.trainer.is_global_zero:
            try:
                work()
            except Exception as exc:
                failure = exc
        stop = self.trainer.strategy.broadcast(
            None if failure is None else (isinstance(failure, USER_ERRORS), user_message(failure)), src=0
        )
        if failure is not None:
            raise failure
        if stop is not None:
            user_error, message = stop
            raise (EditStoreError if user_error else RuntimeError)(f"rank 0 stopped: {message}")

    def transfer_batch_to_device(self, batch, device, dataloader_idx):
        # Originals stay on the CPU: EditModel resizes them there and moves one stacked batch.
        return batch

    def predict_dataloader(self) -> DataLoader:
        workers = int(self.cfg.dataset.num_workers)
        return DataLoader(
            GroupDataset(self.splits, self.groups),
            batch_size=None,
            shuffle=False,
            num_workers=workers,
            collate_fn=_single,
            persistent_workers=False,
            pin_memory=False,
            worker_init_fn=worker_init,  # SIGTERM is left to the main process
        )


@dataclass
class EditResult:
    key: EditKey
    edit: torch.Tensor | None  # the stored uint8 edit; None when every attempt was bad
    full: torch.Tensor | None  # the resolution x resolution edit when keep_full_size
    attempts: int  # attempts made in this run
    first_attempt: int = 0  # the attempt number (see edit_seed) of this run's first try

    @property
    def last_attempt(self) -> int:
        return self.first_attempt + self.attempts - 1


class EditModule(pl.LightningModule):
    """predict_step claims a group (EditStore.claim: a group held by another generate.py on the
    same store is left to it), edits it and regenerates bad edits with new derived seeds. A key
    is tried with attempts a, a + 1, ..., a + max_retries, where a is 0 or, for a key that failed
    in earlier runs, one after the highest attempt they tried (EditStore.next_attempt): the seed
    of an edit stored at attempt k is always edit_seed(..., k)."""

    def __init__(self, cfg: DictConfig, stores: dict[str, EditStore]) -> None:
        super().__init__()
        self.g = cfg.generator
        self.dataset_name = str(cfg.dataset.name)
        self.stores = stores
        self.edit_model: EditModel | None = None
        # Every prompt of the list: a batched call's block can hold prompts beyond num_prompts.
        self.store_size = resolve_store_size(cfg, self.dataset_name)
        self.texts = {p.id: p.text for p in build_prompts(list(self.g.prompts), self.g.prompt_template, None)}

    def on_predict_batch_start(self, batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        # SIGTERM (a scheduler, kill): Lightning notes it but its predict loop goes on; stop between
        # two groups, every edit of the groups done so far written.
        if self.trainer.received_sigterm:
            raise SIGTERMException

    def predict_step(self, batch: tuple[EditGroup, torch.Tensor], batch_idx: int) -> GroupResult:
        group, image = batch
        store = self.stores[group.split]
        claim = store.claim(group.name)
        if claim is None:  # another generate.py is making this group now
            return GroupResult(group, [], claim=None, by_others=len(group.to_write))
        # Another process may have finished some of these keys since the plan was made.
        store.refresh()
        todo = [pid for pid in group.to_write if pid in group.broken or not store.stored_ok(group.index, pid)]
        if not todo:
            store.release(claim)
            return GroupResult(group, [], claim=None, by_others=len(group.to_write))
        if self.edit_model is None:  # loaded only when there is work (a finished store needs no weights)
            try:
                edit_model = EditModel.from_config(self.g, self.device)
                for each in self.stores.values():  # one commit of the hub's weights per store
                    each.use_weights_commit(edit_model.weights_commit, str(self.g.model_id))
            except BaseException:
                store.release(claim)  # (a process that goes on, generate() called again, may claim it)
                raise
            self.edit_model = edit_model
        # Batched: the whole block, always (its call shape fixes the bytes); else only what is written.
        rows = list(group.prompts) if not self.g.batch_invariant else todo
        first = {pid: store.next_attempt(group.index, pid) for pid in rows}
        edits: dict[str, torch.Tensor] = {}
        attempts = dict.fromkeys(todo, 0)
        pending = rows
        for round_ in range(int(self.g.max_retries) + 1):
            seeds = [
                edit_seed(
                    self.dataset_name, group.split, group.index, pid, int(self.g.seed), first[pid] + round_
                )
                for pid in pending
            ]
            out = self.edit_model([image] * len(pending), [self.texts[pid] for pid in pending], seeds)
            # Every bad row is tried again, stored or not: a retry's call shape (which fixes its bytes
            # in a batched call) then depends on the block alone, not on which of its keys this run
            # writes, so an edit made on a retry and later found broken is made again alike.
            still = [pid for j, pid in enumerate(pending) if is_bad(out[j], float(self.g.blank_std))]
            for j, pid in enumerate(pending):
                if pid in attempts:  # else a row generated for the call's shape, not stored
                    attempts[pid] = round_ + 1
                    if pid not in still:
                        edits[pid] = out[j]
            pending = still
            if not any(pid in attempts for pid in pending):
                break
        hw = tuple(image.shape[-2:])
        results = [
            EditResult(
                key=EditKey(group.split, group.index, pid),
                edit=None if pid not in edits else finish(edits[pid], hw, self.store_size, store.warp),
                full=to_uint8(edits[pid]) if pid in edits and self.g.keep_full_size else None,
                attempts=attempts[pid],
                first_attempt=first[pid],
            )
            for pid in todo
        ]
        return GroupResult(group, results, claim=claim, by_others=len(group.to_write) - len(todo))


@dataclass
class GroupResult:
    group: EditGroup
    results: list[EditResult]
    claim: object | None  # the group's lock, released once the edits are written
    by_others: int = 0


#: How long the other ranks wait for the first one's work before any edit is made (it checks the
#: images, converts a store of the other format and records files found unrecorded: for a store of
#: millions of edits, longer than the process group's default 30 minutes).
FIRST_RANK_TIMEOUT_HOURS = 24


def _patient(strategy):
    """``trainer.strategy`` for generation: ``ddp`` with a process-group timeout that outlasts the
    first rank's work before generating (see FIRST_RANK_TIMEOUT_HOURS); any other as given."""
    if strategy != "ddp":
        return strategy
    from datetime import timedelta

    from pytorch_lightning.strategies import DDPStrategy

    return DDPStrategy(timeout=timedelta(hours=FIRST_RANK_TIMEOUT_HOURS))


class StoreWriter(BasePredictionWriter):
    """Writes each batch's edits to the store as soon as the batch is done, records the attempts
    tried on keys that failed, and counts (this rank only; generate() sums the ranks)."""

    def __init__(self, stores: dict[str, EditStore], counts: Counts) -> None:
        super().__init__(write_interval="batch")
        self.stores = stores
        self.counts = counts

    def write_on_batch_end(
        self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx
    ):
        self.counts.by_others += prediction.by_others
        store = self.stores[prediction.group.split]
        try:
            for r in prediction.results:
                # An edit written and its count are never parted by Ctrl-C (the stop line's count
                # is the store's).
                with ctrl_c_held():
                    self._write(store, r)
        finally:
            store.release(prediction.claim)

    def _write(self, store: EditStore, r) -> None:
        self.counts.retries += r.attempts - 1
        if r.edit is None:
            store.record_failure(r.key.index, r.key.prompt_id, r.last_attempt)
            self.counts.failed += 1
            self.counts.failed_keys.append(r.key)
            log.warning(
                "edit %s/%d '%s' is still blank or non-finite after attempts %d to %d: not stored",
                r.key.split,
                r.key.index,
                r.key.prompt_id,
                r.first_attempt,
                r.last_attempt,
            )
            return
        store.write(r.key.index, r.key.prompt_id, r.edit, full=r.full)
        self.counts.generated += 1
        self.counts.regenerated += int(r.last_attempt > 0)


def _sum_over_ranks(trainer: pl.Trainer, counts: Counts) -> None:
    """Replace this rank's counts and failed keys by those of all ranks. Every rank calls it after
    trainer.predict, including a rank that had no key to edit."""
    local = torch.tensor(
        [counts.generated, counts.regenerated, counts.retries, counts.failed, counts.by_others],
        device=trainer.strategy.root_device,
    )
    total = trainer.strategy.reduce(local, reduce_op="sum")
    counts.generated, counts.regenerated, counts.retries, counts.failed, counts.by_others = (
        int(v) for v in total.tolist()
    )
    if trainer.world_size > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
        gathered: list[list[EditKey] | None] = [None] * torch.distributed.get_world_size()
        torch.distributed.all_gather_object(gathered, counts.failed_keys)
        counts.failed_keys = [k for keys in gathered for k in keys or []]
    counts.failed_keys.sort(key=lambda k: (k.split, k.index, k.prompt_id))


class EditsProgress(pl.Callback):
    """A progress bar counted in edits (this rank's share), with rate and time left."""

    def __init__(self) -> None:
        self.bar = None

    def on_predict_start(self, trainer, pl_module) -> None:
        if not trainer.is_global_zero:
            return
        from tqdm.auto import tqdm

        total = trainer.datamodule.keys
        note = f" (rank 0 of {trainer.world_size})" if trainer.world_size > 1 else ""
        self.bar = tqdm(total=total, desc=f"edits{note}", unit="edit", dynamic_ncols=True, mininterval=1.0)

    def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if self.bar is not None:
            self.bar.update(len(batch[0].to_write))

    def on_predict_end(self, trainer, pl_module) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def on_exception(self, trainer, pl_module, exception) -> None:
        # Ends the bar's line, so the error that stopped the run is printed on a line of its own.
        self.on_predict_end(trainer, pl_module)


def _trainer(cfg: DictConfig, writer: StoreWriter, bar) -> pl.Trainer:
    """The Trainer that runs the pipeline over the keys, from the run's trainer settings."""
    t = cfg.trainer
    return pl.Trainer(
        accelerator=t.accelerator,
        devices=t.devices,
        num_nodes=t.num_nodes,
        strategy=_patient(t.strategy),
        # The pipeline's dtype is generator.dtype; autocast on top would change pixels unseen.
        precision="32-true",
        # Reproducible kernels (cuDNN autotuning may pick different convolutions run to run).
        benchmark=False,
        logger=False,
        callbacks=[writer] + ([bar] if bar is not None else []),
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        use_distributed_sampler=False,  # EditKeysData shards the keys itself, without padding
    )


def generate(cfg: DictConfig, only: dict[str, list[int]] | None = None) -> dict:
    """Fill the edit store of every split in generator.splits (with ``only``: just those store
    indices of each split named, e.g. the images figure4.py draws); return the counts (all ranks
    summed)."""
    validate_config(cfg)  # the generator's ranges and choices among them (config.GeneratorConfig)
    g = cfg.generator
    check_step_cache(g)
    check_resolution(g)
    check_local_dir(g)  # before any store folder is made
    splits = list(only) if only is not None else list(g.splits)
    stores = {split: EditStore.from_config(cfg, cfg.dataset.name, split) for split in splits}
    counts = Counts()
    writer = StoreWriter(stores, counts)
    bar = (
        EditsProgress() if cfg.trainer.enable_progress_bar and cfg.callbacks.progress_bar != "none" else None
    )
    try:
        trainer = _trainer(cfg, writer, bar)
    except (ValueError, TypeError, ImportError, MisconfigurationException) as exc:
        # Lightning's refusal of the trainer settings (an unknown strategy or accelerator): its
        # words, the settings as generate.py takes them.
        raise trainer_refusal(exc) from exc
    note_sigterm_only(trainer)  # each rank stops between two groups (EditModule.on_predict_batch_start)
    started = time.time()
    try:
        with warnings.catch_warnings():
            # Nothing left to make (a finished store) or nothing for this rank (more ranks than
            # groups): the summary line says what was done.
            warnings.filterwarnings("ignore", message=r"Total length of .* across ranks is zero")
            trainer.predict(
                EditModule(cfg, stores),
                datamodule=EditKeysData(cfg, stores, counts, only),
                return_predictions=False,
            )
    except BaseException as exc:
        # Whether work began before it stopped: edits planned, or a store changed (edits converted
        # or recorded). generate.py keeps the log of such a run, and removes the folder of one
        # refused before (cli.generation_refused).
        with suppress(AttributeError):
            exc.work_begun = counts.planned + counts.converted + counts.adopted
        stopped = isinstance(exc, (KeyboardInterrupt, SystemExit))
        # Refused or stopped before its first edit: no empty store is left (one process alone: the
        # other ranks of several may be about to write their first).
        if not counts.generated and trainer.world_size == 1:
            for store in stores.values():
                with suppress(OSError):
                    store.remove_if_unused()
        if not stopped and not counts.generated:
            raise
        # Ctrl-C (Lightning turns it into an exit), or an error after edits were made (an image
        # that cannot be decoded, a full disk): every edit written so far is in the store.
        # (each process says its own edits: the line names it where there are several)
        rank = (
            f" (process {trainer.global_rank + 1} of {trainer.world_size})" if trainer.world_size > 1 else ""
        )
        say(f"\nstopped{rank}: {summary_line(counts)}" + ("" if stopped else " (these edits are kept)"))
        # Its time counts too: each process logs its own edits and seconds (as one device).
        with suppress(OSError):  # (a full disk may refuse the log line too; the error is the news)
            for store in stores.values():
                store.log_generation(
                    generated=counts.generated,
                    seconds=time.time() - started,
                    devices=1,
                    splits=list(stores),
                    stopped=True,
                )
        raise
    finally:
        for store in stores.values():
            store.close()
    _sum_over_ranks(trainer, counts)
    if trainer.is_global_zero:
        for store in stores.values():
            store.log_generation(
                generated=counts.generated,
                seconds=time.time() - started,
                devices=trainer.world_size,
                splits=list(stores),
            )
    summary = {
        "planned": counts.planned,
        "generated": counts.generated,
        "existing": counts.existing,
        "regenerated": counts.regenerated,
        "retries": counts.retries,
        "failed": counts.failed,
        "broken": counts.broken,
        "by_others": counts.by_others,
        "converted": counts.converted,
        "failed_keys": [(k.split, k.index, k.prompt_id) for k in counts.failed_keys],
        "folders": {split: str(store.folder) for split, store in stores.items()},
    }
    if trainer.is_global_zero:
        say(
            f"{counted(counts.planned, 'edit')} planned: {counts.existing} already stored, {counts.generated} generated "
            f"({counts.regenerated} after regenerating a blank or non-finite edit, {counts.retries} retries), "
            f"{counts.failed} failed"
        )
        if counts.failed:
            more = f" and {len(counts.failed_keys) - 20} more" if len(counts.failed_keys) > 20 else ""
            say(
                f"failed edits (not stored): {[(k.split, k.index, k.prompt_id) for k in counts.failed_keys[:20]]}"
                f"{more}. The attempts tried are recorded in the store (failed/); a rerun tries each "
                f"failed edit with {int(g.max_retries) + 1} new seeds, continuing after the attempts "
                "already tried (raise generator.max_retries for more per run)."
            )
        if counts.by_others:
            say(
                f"{counts.by_others} edits were left to another generate.py working on this store at the "
                "same time (it held their claim or finished them first); run the command again once it "
                "has stopped to check that nothing is missing."
            )
        say(summary_line(counts))
    return summary


def summary_line(counts: Counts) -> str:
    # Edits converted from the other format's store are among the existing ones, once counted: a
    # stop during the conversion comes before the store's edits are counted.
    existing = str(counts.existing) if counts.planned or not counts.converted else "uncounted"
    converted = f" (converted={counts.converted})" if counts.converted else ""
    if existing == "uncounted":
        converted = (
            f" (converted={counts.converted} before it stopped; the stored edits were not counted yet)"
        )
    line = (
        f"summary: generated={counts.generated} existing={existing}{converted} "
        f"regenerated={counts.regenerated} failed={counts.failed}"
    )
    extra = [
        f"{k}={v}"
        for k, v in (
            ("broken", counts.broken),
            ("by_others", counts.by_others),
        )
        if v
    ]
    return line + "".join(" " + e for e in extra)


class EditsFailedError(UserError):
    """Edits that failed every try of a generate.py run (not stored): the command ends with status 1,
    so that a script that trains next stops here."""


def run_generate(cfg: DictConfig) -> None:
    """generate.py's entry: user errors (and a full disk) end with a message, not a traceback."""
    with user_errors_reported(
        lambda: disk_full_advice(cfg),
        lambda: memory_advice(cfg),
        lambda _: "every edit written so far is kept; the same command goes on from here.",
    ):
        from ..files import folder_problem

        edits = Path(str(cfg.generator.edits_dir)).expanduser()
        problem = folder_problem(edits)
        if problem:  # before the model loads, not at the first edit written
            raise ConfigError(
                f"generator.edits_dir={edits}: the edit stores cannot be written there ({problem}); give a "
                "folder you may write with generator.edits_dir=<folder> (or paths.cache_dir=<folder>), in "
                "generate.py and train.py alike"
            )
        from .listing import inside_the_stores

        # A store's, a split's or a dataset's folder given (one that holds no stores of its own)
        near = inside_the_stores(edits)
        if near and not list(edits.glob("*/*/*/settings.json")):
            raise ConfigError(
                f"generator.edits_dir={edits} is not a folder of edit stores itself, and generate.py would make "
                f"every edit again in a store inside it: {near}"
            )
        summary = generate(cfg)
        if summary["failed"]:  # (the store lacks them: a training run of it would be refused)
            missed = EditsFailedError(
                f"{counted(summary['failed'], 'edit')} failed and {'was' if summary['failed'] == 1 else 'were'} not "
                "stored (listed above): run the same command again to try "
                f"{'it' if summary['failed'] == 1 else 'them'} with new seeds (raise generator.max_retries for more "
                "tries per run)"
            )
            missed.work_begun = summary["planned"]  # (generate.py keeps the log of the work done)
            raise missed


def memory_advice(cfg: DictConfig) -> str:
    g = cfg.generator
    rows = f"calls of up to {largest_block(g)} edits, three UNet rows each"
    return (
        f"Lower generator.batch_size (now {g.batch_size}: {rows}; generator.batch_invariant=true makes "
        "one edit per call). The prompt blocks are part of the store's settings, so a smaller batch "
        "size fills a new store: the edits already made stay in the current one."
        if not g.batch_invariant
        else "It ran out with one edit per call (generator.batch_invariant=true): lower "
        f"generator.resolution (now {g.resolution}; other pixels, its own store) or use a GPU with more memory."
    )


def disk_full_advice(cfg: DictConfig) -> str:
    edits = Path(str(cfg.generator.edits_dir)).expanduser()
    return (
        f"The edit stores are under generator.edits_dir={edits}, on a disk with {free_space(edits)} free. "
        "Free space there (or move the folder to a larger disk and set generator.edits_dir to it), then run "
        "the same command again: every edit written so far is kept, and only the missing ones are made."
    )
