"""The edit store: one PNG per (split, index, prompt id), atomic writes, a manifest of finished keys,
a record of the attempts tried on failed keys, and how the stored edits were computed."""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import re
import shlex
import shutil
import socket
import time
from array import array
from collections.abc import Callable, Iterable
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from ..commands import script_command
from ..config import ADDED_SETTINGS, DatasetConfig, GeneratorConfig, PathsConfig
from ..errors import ConfigError, UserError
from ..files import write_atomic
from .prompts import Prompt, build_prompts

log = logging.getLogger(__name__)

# Bump when the way pixels are made changes (resizing, seed rule, quantisation): old stores are
# then never reused.
STORE_VERSION = 1
# The seed of every edit: a function of its key alone, so batch size, worker count and the number
# of GPUs never change a pixel.
SEED_RULE = "sha256(dataset|split|index|prompt_id|generator.seed|attempt) -> 63-bit int"
# How images are resized into and out of the pipeline (and to store_size).
RESIZE_RULE = "float32 bicubic antialias, clamp [0, 1], round to uint8 once at the end"
# How keys are grouped into pipeline calls in batched mode (see prompt_blocks).
BATCH_RULE = "one image per call, its prompts in near-equal blocks of at most batch_size"
# How an edit is shrunk to store_size: torchvision's Resize rule, so it matches the resized original.
STORE_SIZE_RULE = "shorter side = store_size, longer side = int(store_size * longer / shorter)"
# With dataset.warp (training squashes both sides to dataset.resize): the edit squashed alike.
STORE_WARP_RULE = "both sides = store_size (dataset.warp: squashed as training resizes the original)"
# Edits per shard folder (keeps folders small for ImageNet-sized splits).
SHARD = 1000
CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
# The model identity of generator=tiny (bump when tiny.py's architecture or weight seed changes).
TINY_ID = "tiny-random-ip2p-v1"
# Settings outside the folder hash (they may differ from machine to machine) that still change
# stored pixels. The resolved dtype changes them by many levels: a store refuses edits of another
# dtype. The others change them by about one level (kernel choice, rounding): a change is logged.
RUNTIME_EXACT = ("dtype",)
# (The batch size is part of the folder's hash in batched mode: see batching_settings.)
RUNTIME_LOOSE = ("channels_last", "compile", "batch_invariant")


class EditStoreError(UserError, RuntimeError):
    """An edit store folder holds something this run cannot use (other settings, an unreadable
    record); the message names the file and the fix."""


class CorruptEditError(EditStoreError):
    """A stored edit is broken: it cannot be decoded, or its size differs from the recorded one."""


class MissingEditError(UserError, FileNotFoundError):
    """An edit that was asked for has not been generated."""


def edit_seed(dataset: str, split: str, index: int, prompt_id: str, seed: int, attempt: int = 0) -> int:
    """The noise seed of one edit (see SEED_RULE); ``attempt`` > 0 for regenerations."""
    digest = hashlib.sha256(f"{dataset}|{split}|{index}|{prompt_id}|{seed}|{attempt}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


#: Dataset options added after edit stores were made, at the value that changes nothing.
OPTIONS_ADDED = {
    key.removeprefix("dataset.options."): before
    for key, (before, _) in ADDED_SETTINGS.items()
    if key.startswith("dataset.options.")
}


def _dataset_identity(cfg: DictConfig, dataset_name: str) -> dict[str, Any]:
    """The settings that decide which image sits at each index of a split. ``samples_per_class``
    is left out: few-shot subsets are keyed by their index in the full split (see split_indices)."""
    d = cfg.dataset if "dataset" in cfg and cfg.dataset.get("name") == dataset_name else None
    base = DatasetConfig()
    options = OmegaConf.to_container(d.options, resolve=True) if d is not None else {}
    # An option added later at the value that reads the images as before it existed is left out:
    # stores made before it keep their name.
    options = {k: v for k, v in options.items() if not (k in OPTIONS_ADDED and v == OPTIONS_ADDED[k])}
    return {
        "val_fraction": float(d.val_fraction if d is not None else base.val_fraction),
        "split_seed": int(d.split_seed if d is not None else base.split_seed),
        "options": options,
    }


def model_identity(g: DictConfig) -> str:
    """Which weights make the edits: the tiny test pipeline, a local folder, or a hub id."""
    if g.name == "tiny":
        return TINY_ID
    if g.local_dir:
        return str(Path(g.local_dir).expanduser().resolve())
    return str(g.model_id)


def store_settings(cfg: DictConfig, dataset_name: str, split: str) -> dict[str, Any]:
    """Everything that changes a stored pixel (the folder hash is taken over this)."""
    g = cfg.generator
    return {
        "store_version": STORE_VERSION,
        "dataset": dataset_name,
        "split": split,
        "split_identity": _dataset_identity(cfg, dataset_name),
        "generator": str(g.name),
        "model": model_identity(g),
        "scheduler": str(g.scheduler),
        "steps": int(g.steps),
        "guidance_scale": float(g.guidance_scale),
        "image_guidance_scale": float(g.image_guidance_scale),
        "resolution": int(g.resolution),
        "prompt_template": str(g.prompt_template),
        # The setting, not the resolved dtype: "auto" names one recipe (bf16 on GPU, fp32 on CPU)
        # so that a store made on a GPU is found by a training run on any machine. The resolved
        # dtype is recorded in runtime.json, and generating another one into the folder is refused.
        "dtype": str(g.dtype),
        "seed": int(g.seed),
        "seed_rule": SEED_RULE,
        "blank_std": float(g.blank_std),
        "store_size": resolve_store_size(cfg, dataset_name),
        "resize": RESIZE_RULE,
        # How a shorter side of store_size is reached (absent when edits keep the original's size,
        # so such stores keep the folder they had before store_size could be auto).
        **(
            {"store_size_rule": STORE_WARP_RULE if resolve_store_warp(cfg, dataset_name) else STORE_SIZE_RULE}
            if resolve_store_size(cfg, dataset_name) is not None
            else {}
        ),
        # Absent for PNG stores, so stores written before the format was a setting keep their folder.
        **({"format": str(g.store_format)} if str(g.store_format) != "png" else {}),
        **batching_settings(g),
        # Absent without step caching, so the stores made before it was a setting keep their folder.
        **(
            {
                "step_cache": {
                    "rule": "DeepCache uniform",
                    "interval": int(ci),
                    "branch_id": int(g.cache_branch_id),
                }
            }
            if (ci := g.get("cache_interval"))
            else {}
        ),
    }


def resolve_store_size(cfg: DictConfig, dataset_name: str) -> int | None:
    """generator.store_size: ``auto`` stores each edit at the size training reads it (the shorter
    side of ``dataset.resize`` when the dataset's training transform starts by resizing to it,
    resize_crop and resize; else the original's size); a number is a largest shorter side; null
    keeps the original's size."""
    value = cfg.generator.store_size
    if value is None:
        return None
    if str(value) != "auto":
        return int(value)
    d = cfg.dataset if "dataset" in cfg and cfg.dataset.get("name") == dataset_name else None
    if d is None:
        d = OmegaConf.merge(
            OmegaConf.structured(DatasetConfig), _group_defaults("dataset", dataset_name, DatasetConfig)
        )
    if str(d.train_transform) in ("resize_crop", "resize"):
        return int(d.resize)
    return None


def resolve_store_warp(cfg: DictConfig, dataset_name: str) -> bool:
    """Whether stored edits are squashed to ``store_size`` x ``store_size``: with
    ``generator.store_size=auto`` where training squashes the original so (``dataset.warp``, with a
    training transform that resizes first), so that the edit is read as it is, resized once."""
    if str(cfg.generator.store_size) != "auto":
        return False
    d = cfg.dataset if "dataset" in cfg and cfg.dataset.get("name") == dataset_name else None
    if d is None:
        return False  # another dataset's defaults: no warp (a dataset's option, never its default)
    return bool(d.get("warp", False)) and str(d.train_transform) in ("resize_crop", "resize")


def prompt_blocks(prompt_ids: list[str], batch_size: int) -> list[list[str]]:
    """The prompts of one image split into ceil(n / batch_size) blocks of near-equal size, in
    order: each block is one pipeline call (one image, one prompt per row). The blocks depend on
    the prompt list and the batch size alone, never on which images or keys a run makes."""
    n = len(prompt_ids)
    count = -(-n // max(1, batch_size))
    bounds = [round(k * n / count) for k in range(count + 1)]
    return [prompt_ids[a:b] for a, b in zip(bounds, bounds[1:], strict=False) if b > a]


def largest_block(g: DictConfig) -> int:
    """The most rows a batched pipeline call holds: the largest prompt block (9 prompts at
    batch size 8 make blocks of 5 and 4: 5), which a compiled UNet pads every call to."""
    ids = [p.id for p in build_prompts(list(g.prompts), g.prompt_template, None)]
    return max(len(block) for block in prompt_blocks(ids, int(g.batch_size)))


def batching_settings(g: DictConfig) -> dict[str, Any]:
    """In batched mode (generator.batch_invariant=false) an edit's pixels depend on the shape of
    its pipeline call, so the prompt blocks (the full prompt list cut by the batch size) are part
    of the store's settings; one image per call (batch_invariant=true) adds nothing."""
    if g.batch_invariant:
        return {}
    ids = [p.id for p in build_prompts(list(g.prompts), g.prompt_template, None)]
    return {"batching": {"rule": BATCH_RULE, "blocks": prompt_blocks(ids, int(g.batch_size))}}


def append_lines(path: Path, lines: list[str]) -> None:
    """``lines`` appended to the text file ``path``, each on a line of its own: a last line cut short
    (no newline: a write stopped part-way) is ended first, not joined to the first line added."""
    with open(path, "a+b") as f:
        f.seek(0, os.SEEK_END)
        ended = f.tell() == 0
        if not ended:
            f.seek(-1, os.SEEK_END)
            ended = f.read(1) == b"\n"
        f.write(("" if ended else "\n").encode() + "".join(line + "\n" for line in lines).encode())


def settings_hash(settings: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def split_indices(dataset) -> list[int]:
    """The store index of each sample of ``dataset``: its index in the full split. A few-shot
    subset (``dataset.samples_per_class``) renumbers its samples from 0; its store keys stay the
    full split's indices, so every subset shares one store."""
    parent = dataset.info.get("parent_indices") if getattr(dataset, "info", None) else None
    return list(parent) if parent is not None else list(range(len(dataset)))


def _started(path: Path) -> tuple[int, str]:
    """The order of a process's file ``<host>-<pid>-<time_ns>.txt``: when the process opened it
    (its name as text put pid 12345 before 99999, and a later process's record of a key, an edit
    made again, could be read before an earlier one's and lose to it); then the name."""
    stamp = path.stem.rpartition("-")[2]
    return (int(stamp) if stamp.isdigit() else 0, path.name)


#: The sizes image_files read, per list of image paths, inside sizes_read_once (else None).
_sizes_read: dict[int, tuple[list, array]] | None = None


@contextmanager
def sizes_read_once():
    """Inside, :func:`image_files` reads the sizes of a split's image files (a stat per image) once
    for each list of paths (a dataset's ``paths``; ``indices`` not given): a training run checks its
    edits before its folder is written and DiffuseMix checks them again at start-up, on the same
    split (on a network file system, minutes for ImageNet). Outside, every call reads them."""
    global _sizes_read
    if _sizes_read is not None:
        yield
        return
    _sizes_read = {}
    try:
        yield
    finally:
        _sizes_read = None


def _read_sizes(paths: list) -> array | None:
    """The sizes of ``paths``' files, read once inside sizes_read_once; None outside it."""
    if _sizes_read is None:
        return None
    kept = _sizes_read.get(id(paths))
    if kept is None or kept[0] is not paths:  # (the list is kept, so its id names it alone)
        kept = _sizes_read[id(paths)] = (paths, array("q", (Path(p).stat().st_size for p in paths)))
    return kept[1]


def image_files(dataset, indices: Iterable[int] | None = None, sizes: bool = False) -> dict[int, list]:
    """Store index -> ``[the image file's path relative to the dataset's root]`` (with ``sizes``,
    its bytes added) for the samples of ``dataset`` (the full split with ``indices``, store indices;
    else every sample of a split or few-shot subset). Empty for in-memory data (CIFAR's arrays,
    fixed by the official files)."""
    paths = getattr(dataset, "paths", None)
    if not paths:
        return {}
    root = image_root(dataset)
    if sizes and indices is None and (read := _read_sizes(paths)) is not None:
        return {
            int(index): [_relative(Path(path), root), size]
            for index, path, size in zip(split_indices(dataset), paths, read, strict=True)
        }
    pairs = (
        [(i, paths[i]) for i in indices]
        if indices is not None
        else list(zip(split_indices(dataset), paths, strict=True))
    )
    out = {}
    for index, path in pairs:
        path = Path(path)
        name = _relative(path, root)
        out[int(index)] = [name, path.stat().st_size] if sizes else [name]
    return out


def _relative(path: Path, root: Path | None) -> str:
    """An image's name in the store's record: its path under the dataset's root, else its name."""
    return path.relative_to(root).as_posix() if root is not None and path.is_relative_to(root) else path.name


def image_root(dataset) -> Path | None:
    """The folder the paths of :func:`image_files` are relative to (the dataset's root), or None."""
    root = getattr(dataset, "root", None)
    return Path(root) if root is not None else None


#: The store's record of the folder its recorded image paths are relative to.
IMAGES_ROOT = "images_root.txt"

#: A lock file each generate.py that set the store up holds shared (see EditStore.remove_if_unused).
USERS_LOCK = "users.lock"


def _same_folder(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` name one folder (a link to it, a relative path, another mount)."""
    try:
        return os.path.samefile(a.expanduser(), b.expanduser())
    except OSError:
        return a.expanduser().resolve() == b.expanduser().resolve()


def _gone(recorded: set[str], root: str | Path | None, most: int = 4, looked: int = 20_000) -> list[str]:
    """Recorded image files no longer under ``root`` (one deleted, a corrupt one say, is put back):
    the first ``most`` found, among the first ``looked`` in name order (a stat each, on a refusal
    alone: a large split on a network disk is not stat'ed whole)."""
    if root is None:
        return []
    found = []
    for name in sorted(recorded)[:looked]:
        if not (Path(root) / name).exists():
            found.append(name)
            if len(found) == most:
                break
    return found


def _listed_names(names: list[str], shown: int = 3) -> str:
    """``names`` quoted, the first ``shown`` of them, and that there are more."""
    more = " and more" if len(names) > shown else ""
    return ", ".join(f"'{n}'" for n in names[:shown]) + more


def image_decodes(path: Path) -> bool:
    """Whether the image file ``path`` is there and decodes (as the dataset's reader opens it)."""
    from ..data.base import CorruptImageError, load_rgb

    try:
        load_rgb(path)
    except CorruptImageError:
        return False
    return True


class EditStore:
    """Edits of one split under ``folder``::

        settings.json                     the settings whose hash names the folder
        runtime.json                      how the edits are computed on this machine: the resolved
                                          dtype, channels_last, compile (first write)
        generation_log.jsonl              one line per generate.py run: edits made, wall seconds
        images_root.txt                   the folder the recorded image paths are relative to, as
                                          the first run that recorded them saw it (absolute)
        images/<host>-<pid>-<time>.txt    the image each index was made from: one line
                                          "<index> <bytes> <path in the dataset>" per index, appended
                                          by the generate.py run that first saw it (stores made
                                          before the record existed get it on their next run;
                                          ``images.json``, the earlier form, is still read)
        edits/<prompt id>/<shard>/<index>.npy   uint8 RGB (3, H, W) at the stored size, raw
                                          (generator.store_format=npy, the default: read with no
                                          decoding) or .png (store_format=png: about half the disk)
        full/<prompt id>/<shard>/<index>.npy    the resolution x resolution edit (keep_full_size)
        manifest/<host>-<pid>-<time>.txt  one line "<prompt id> <index> <bytes>" per finished key
                                          (stores written before sizes were recorded: two fields)
        claims/<prompt block>-<index>.lock  a lock held by the process editing that group of keys
        users.lock                        held shared by each generate.py working in the store
        failed/<host>-<pid>-<time>.txt    one line "<prompt id> <index> <last attempt>" per key
                                          whose every attempt of a run was blank or non-finite

    An image is written to a temporary file and renamed into place, and only then its manifest
    line is appended (flushed and fsynced), so a kill at any moment leaves either nothing or a
    complete image; a complete image without its manifest line is simply generated again. Each
    process appends to its own manifest (and failed) file, so concurrent writers never interleave
    lines; a line cut short by a kill has no newline and is ignored.

    Broken edits (a file truncated or changed after it was recorded) are found by comparing each
    file's size with the recorded one (a ``stat``, always) or by decoding it (``verify=True``), and
    count as missing: generate.py makes them again.
    """

    def __init__(
        self,
        folder: str | Path,
        prompts: list[Prompt],
        settings: dict[str, Any] | None = None,
        *,
        keep_full_size: bool = False,
        command: str | None = None,
        store_format: str | None = None,
    ) -> None:
        self.folder = Path(folder)
        # The file format: given, else the settings' (stores without the key hold PNGs).
        fmt = store_format or (settings or {}).get("format", "png")
        if fmt not in FORMATS:
            raise ConfigError(f"generator.store_format must be one of {', '.join(FORMATS)}; got '{fmt}'")
        self.format = fmt
        self._file = re.compile(rf"\d+\.{fmt}")
        self.prompt_ids: list[str] = [p.id for p in prompts]
        self.prompt_texts: dict[str, str] = {p.id: p.text for p in prompts}
        self.prompt_raw: dict[str, str] = {p.id: p.raw for p in prompts}  # (as generator.prompts lists them)
        self.settings = settings
        self.keep_full_size = keep_full_size
        self.command = command or script_command("generate.py")
        # How this run computes edits (see use_runtime); recorded with the first edit written.
        self.runtime: dict[str, Any] | None = None
        # Per prompt id, the recorded size of each index's edit: 0 not recorded, -1 recorded
        # without a size (older manifests), else the PNG's bytes. Read once, then only new lines.
        self._done: dict[str, array] | None = None
        self._read_upto: dict[Path, int] = {}
        self.last_broken: list[tuple[int, str]] = []  # the broken keys the last missing() found
        # The keys the last missing() found whose file is there but unrecorded (a lost manifest).
        self.last_unrecorded: list[tuple[int, str]] = []
        self._tried: dict[tuple[str, int], int] | None = None
        self._logs: dict[str, Any] = {}  # open append-only files (manifest, failed) of this process
        self._made_here = False  # whether ensure_settings made the folder (see remove_if_unused)
        self._users = None  # the shared lock on USERS_LOCK held from ensure_settings to close()
        self._logs_pid = -1
        self._tmp_dir: Path | None = None
        self._runtime_recorded = False

    @classmethod
    def from_config(cls, cfg: DictConfig, dataset_name: str, split: str = "train") -> EditStore:
        """The store that ``cfg`` (a whole run config: generator, paths, dataset) trains from or
        generates into: ``<generator.edits_dir>/<dataset>/<split>/<settings hash>``."""
        g = cfg.generator
        prompts = build_prompts(list(g.prompts), g.prompt_template, g.num_prompts)
        settings = store_settings(cfg, dataset_name, split)
        base = Path(str(g.edits_dir)).expanduser().absolute() / dataset_name / split
        folder = base / settings_hash(settings)
        if settings.get("store_size_rule") == STORE_WARP_RULE and not (folder / "edits").is_dir():
            # A warped dataset's store made before edits were squashed for it (each kept its
            # aspect ratio; training resizes them): still the store of these settings.
            earlier = {**settings, "store_size_rule": STORE_SIZE_RULE}
            if (base / settings_hash(earlier) / "edits").is_dir():
                settings, folder = earlier, base / settings_hash(earlier)
        return cls(
            folder,
            prompts,
            settings,
            keep_full_size=bool(g.keep_full_size),
            command=generate_command(cfg, dataset_name),
            store_format=str(g.store_format),
        )

    @property
    def warp(self) -> bool:
        """Whether this store's edits are squashed to store_size x store_size (dataset.warp)."""
        return bool(self.settings) and self.settings.get("store_size_rule") == STORE_WARP_RULE

    # -- paths -------------------------------------------------------------------------------
    def path(self, index: int, prompt_id: str, full: bool = False) -> Path:
        kind = "full" if full else "edits"
        return self.folder / kind / prompt_id / f"{index // SHARD:05d}" / f"{index}.{self.format}"

    # -- reading -----------------------------------------------------------------------------
    def _load_manifest(self) -> dict[str, array]:
        if self._done is None:
            self._done = {}
            self._read_upto = {}
            self.refresh()
        return self._done

    def refresh(self) -> int:
        """Read the manifest lines appended since the last read (by this or any other process);
        return how many keys they recorded."""
        if self._done is None:
            self._load_manifest()
            return 0
        new = 0
        for _, parts in self._log_lines("manifest", (2, 3), self._read_upto):
            _record(self._done, parts[0], int(parts[1]), int(parts[2]) if len(parts) == 3 else -1)
            new += 1
        return new

    def _manifest_entries(self) -> Iterable[tuple[Path, str, int]]:
        """Every complete manifest line; a line cut short by a kill (no newline) is ignored."""
        for path, parts in self._log_lines("manifest", (2, 3)):
            yield path, parts[0], int(parts[1])

    def _log_lines(
        self, kind: str, fields: tuple[int, ...], upto: dict[Path, int] | None = None
    ) -> Iterable[tuple[Path, list[str]]]:
        """The complete lines of ``<folder>/<kind>/*.txt`` with one of ``fields`` field counts, all
        but the first numbers; a line cut short by a kill (no newline) is ignored. With ``upto``
        (file -> bytes already read), only what follows, and ``upto`` is moved on."""
        mdir = self.folder / kind
        if not mdir.is_dir():
            return
        for path in sorted(mdir.glob("*.txt"), key=_started):
            start = upto.get(path, 0) if upto is not None else 0
            with open(path, "rb") as f:
                f.seek(start)
                data = f.read()
            complete = data[: data.rfind(b"\n") + 1]
            if upto is not None:
                upto[path] = start + len(complete)
            for raw in complete.splitlines():
                parts = raw.decode("utf-8", "replace").split()
                if len(parts) in fields and all(p.isdigit() and len(p) < 19 for p in parts[1:]):
                    yield path, parts

    def recorded_per_prompt(self) -> dict[str, int]:
        """How many edits the manifest records as finished, per prompt id."""
        return {pid: sum(1 for size in sizes if size != 0) for pid, sizes in self._load_manifest().items()}

    def has(self, index: int, prompt_id: str) -> bool:
        """Whether the key is recorded as finished (the manifest, read once)."""
        sizes = self._load_manifest().get(prompt_id)
        return sizes is not None and index < len(sizes) and sizes[index] != 0

    def stored_ok(self, index: int, prompt_id: str) -> bool:
        """Recorded and its file present, non-empty and of the recorded size (one ``stat``); with
        keep_full_size, its full-size edit present and non-empty too (a store made without it gets
        its full edits when asked for them)."""
        if not self.has(index, prompt_id):
            return False
        try:
            size = self.path(index, prompt_id).stat().st_size
            if self.keep_full_size and self.path(index, prompt_id, full=True).stat().st_size == 0:
                return False
        except FileNotFoundError:
            return False
        recorded = self.recorded_size(index, prompt_id)
        return size > 0 and (recorded is None or size == recorded)

    def recorded_size(self, index: int, prompt_id: str) -> int | None:
        """The size in bytes recorded for a finished key (None: not recorded, or recorded without one)."""
        sizes = self._load_manifest().get(prompt_id)
        size = sizes[index] if sizes is not None and index < len(sizes) else 0
        return size if size > 0 else None

    def read(self, index: int, prompt_id: str, full: bool = False) -> torch.Tensor:
        """The stored edit as uint8 CHW RGB (``full=True``: the full-resolution one)."""
        path = self.path(index, prompt_id, full)
        try:
            with open(path, "rb") as f:
                data = bytearray(os.fstat(f.fileno()).st_size)
                f.readinto(data)
        except FileNotFoundError:
            raise self._missing(path, index, prompt_id) from None
        try:
            return decode_edit(data, self.format)
        except ValueError:
            raise self._broken(path, index, prompt_id) from None

    def _missing(self, path: Path, index: int, prompt_id: str) -> MissingEditError:
        return MissingEditError(
            f"no stored edit for index {index}, prompt '{prompt_id}' ({path}). Generate the edits "
            f"first: {self.command}"
        )

    def _broken(self, path: Path, index: int, prompt_id: str) -> CorruptEditError:
        return CorruptEditError(
            f"stored edit {path} (index {index}, prompt '{prompt_id}') is broken: it is not a readable "
            f"{self.format.upper()} edit (truncated or damaged). Repair the store (with generator.verify=true "
            f"every stored edit is read, and the broken ones are made again): {self.command} generator.verify=true"
        )

    def read_into(self, index: int, prompt_id: str, out: torch.Tensor) -> bool:
        """Read the stored edit's pixels straight into ``out`` (a contiguous uint8 (3, H, W) tensor,
        e.g. a slot of the training stack: no copy of the edit is made). Returns False, with ``out``
        untouched, when the edit is not an .npy of exactly that shape (then :meth:`read` it); raises
        as :meth:`read` does when it is missing or broken."""
        if self.format != "npy" or not out.is_contiguous() or out.dtype != torch.uint8:
            return False
        path = self.path(index, prompt_id)
        try:
            with open(path, "rb") as f:
                head = f.read(12)
                if head[:6] != b"\x93NUMPY" or len(head) < 12:
                    return False
                start = 10 if head[6] == 1 else 12
                header = head[start:] + f.read(start + int.from_bytes(head[8:start], "little") - len(head))
                m = _NPY_HEADER.match(header)
                if m is None or tuple(int(x) for x in m.groups()) != tuple(out.shape):
                    return False
                view = memoryview(out.numpy()).cast("B")
                if f.readinto(view) != len(view) or f.read(1):
                    raise self._broken(path, index, prompt_id)
        except FileNotFoundError:
            raise self._missing(path, index, prompt_id) from None
        return True

    def missing(self, indices: Iterable[int], verify: bool = False) -> list[tuple[int, str]]:
        """Keys ``(index, prompt_id)`` over ``indices`` x ``prompt_ids`` that are not stored, index-
        major in the order given: not in the manifest, its file gone, or broken (see
        :meth:`broken`; with keep_full_size the full edit counts too)."""
        indices = list(indices)
        present = {pid: self._present(pid, full=False) for pid in self.prompt_ids}
        full = (
            {pid: self._present(pid, full=True) for pid in self.prompt_ids} if self.keep_full_size else None
        )
        self.last_broken = []
        self.last_unrecorded = []
        out = []
        for i in indices:
            for pid in self.prompt_ids:
                size = present[pid].get(i)
                if size is None or not self.has(i, pid) or (full is not None and full[pid].get(i) is None):
                    if size and not self.has(i, pid):
                        self.last_unrecorded.append((i, pid))
                    out.append((i, pid))
                elif self._is_broken(i, pid, size, verify) or (
                    full is not None and (full[pid][i] == 0 or (verify and not self._decodes(i, pid, True)))
                ):
                    self.last_broken.append((i, pid))
                    out.append((i, pid))
        return out

    def broken(self, indices: Iterable[int], verify: bool = False) -> list[tuple[int, str]]:
        """Recorded keys whose file is broken: empty, of another size than recorded, or (with
        ``verify``) not decodable."""
        self.missing(indices, verify)
        return list(self.last_broken)

    def _is_broken(self, index: int, prompt_id: str, size: int, verify: bool) -> bool:
        recorded = self.recorded_size(index, prompt_id)
        if size == 0 or (recorded is not None and size != recorded):
            return True
        return verify and not self._decodes(index, prompt_id, False)

    def _decodes(self, index: int, prompt_id: str, full: bool) -> bool:
        try:
            self.read(index, prompt_id, full)
        except (CorruptEditError, MissingEditError):
            return False
        return True

    def next_attempt(self, index: int, prompt_id: str) -> int:
        """The first attempt number (see edit_seed) not tried yet for a key: 0, or one after the
        highest attempt recorded under failed/ by earlier runs, so a rerun draws new seeds."""
        if self._tried is None:
            tried: dict[tuple[str, int], int] = {}
            for _, (pid, i, last) in self._log_lines("failed", (3,)):
                key = (pid, int(i))
                tried[key] = max(tried.get(key, -1), int(last))
            self._tried = tried
        return self._tried.get((prompt_id, index), -1) + 1

    def checked_on_disk(self) -> tuple[int, int]:
        """(recorded edits whose file is gone, empty or of another size than recorded; edit files
        there that the manifest does not record), over every prompt recorded or with a folder
        under edits/: one listing per shard and one ``stat`` per file, no decoding."""
        done = self._load_manifest()
        edits = self.folder / "edits"
        prompt_ids = set(done) | (
            {p.name for p in edits.iterdir() if p.is_dir() and _ID.fullmatch(p.name)}
            if edits.is_dir()
            else set()
        )
        gone = unrecorded = 0
        for prompt_id in prompt_ids:
            present = self._present(prompt_id, full=False)
            sizes = done.get(prompt_id, array("q"))
            for index, recorded in enumerate(sizes):
                if recorded != 0:
                    size = present.get(index)
                    gone += not size or (recorded > 0 and size != recorded)
            unrecorded += sum(1 for i, size in present.items() if size and not (i < len(sizes) and sizes[i]))
        return gone, unrecorded

    def _present(self, prompt_id: str, full: bool) -> dict[int, int]:
        """Index -> file size of each image file for ``prompt_id``, from directory listings (one
        per shard) and one ``stat`` per file."""
        root = self.folder / ("full" if full else "edits") / prompt_id
        found: dict[int, int] = {}
        if root.is_dir():
            for shard in os.scandir(root):
                if shard.is_dir():
                    for e in os.scandir(shard.path):
                        if self._file.fullmatch(e.name):
                            found[int(e.name[:-4])] = e.stat().st_size
        return found

    # -- writing -----------------------------------------------------------------------------
    def write(
        self, index: int, prompt_id: str, image: torch.Tensor, full: torch.Tensor | None = None
    ) -> None:
        """Store a uint8 CHW RGB edit (and its full-resolution edit), atomically; then record it."""
        if prompt_id not in self.prompt_texts and not _ID.fullmatch(prompt_id):
            raise ValueError(f"prompt id {prompt_id!r} is not a valid store key")
        if not self._runtime_recorded and self.runtime is not None:
            # Before the first edit this run computes is written (a process refused for another
            # dtype leaves no file); a conversion copies the runtime of the store it converts
            # from instead, and sets none of its own.
            self._record_runtime()
            self._runtime_recorded = True
        if full is not None:
            self._write_file(self.path(index, prompt_id, full=True), full)
        size = self._write_file(self.path(index, prompt_id), image)
        if self.recorded_size(index, prompt_id) != size:
            self._append_manifest(index, prompt_id, size)

    def _write_file(self, path: Path, image: torch.Tensor) -> int:
        if image.dtype != torch.uint8 or image.ndim != 3 or image.shape[0] != 3:
            raise ValueError(
                f"an edit must be a uint8 RGB tensor of shape (3, H, W), got {image.dtype} {tuple(image.shape)}"
            )
        data = encode_edit(image, self.format)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._temp_dir() / f"{path.name}.{time.monotonic_ns()}"
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)  # a full disk keeps nothing of a partial file
            raise
        return len(data)

    def _temp_dir(self) -> Path:
        """This process's scratch folder inside the store (same file system, so rename is atomic).
        Folders left by killed processes on this host are removed when first needed."""
        if self._tmp_dir is None:
            self.ensure_settings()
            host = _host()
            root = self.folder / "tmp"
            root.mkdir(parents=True, exist_ok=True)
            for d in root.iterdir():
                h, _, pid = d.name.rpartition("-")
                if h == host and pid.isdigit() and not _pid_alive(int(pid)):
                    shutil.rmtree(d, ignore_errors=True)
            self._tmp_dir = root / f"{host}-{os.getpid()}"
            self._tmp_dir.mkdir(exist_ok=True)
        return self._tmp_dir

    def _append_manifest(self, index: int, prompt_id: str, size: int) -> None:
        self._append_line("manifest", f"{prompt_id} {index} {size}\n")
        _record(self._load_manifest(), prompt_id, index, size)

    def adopt_unrecorded(self, indices: Iterable[int]) -> int:
        """Record the edits of ``indices`` whose files are there, whole, but that the manifest does
        not record (its files deleted, or a kill between an edit's rename and its manifest line):
        every file was written whole (renamed into place), so each that decodes is the edit its key
        names. Returns how many were recorded; the others are made again."""
        self.missing(indices)
        done = 0
        for index, prompt_id in self.last_unrecorded:
            try:
                self.read(index, prompt_id)
                if self.keep_full_size:
                    self.read(index, prompt_id, full=True)
            except (CorruptEditError, MissingEditError):
                continue
            self._append_manifest(index, prompt_id, self.path(index, prompt_id).stat().st_size)
            done += 1
        return done

    def sibling(self) -> EditStore | None:
        """The store of the same settings in the other file format (npy <-> png): a store to
        convert from, so that changing the format never generates again."""
        if self.settings is None:
            return None
        other = "png" if self.format == "npy" else "npy"
        settings = {k: v for k, v in self.settings.items() if k != "format"}
        if other != "png":
            settings["format"] = other
        folder = self.folder.parent / settings_hash(settings)
        return EditStore(folder, [], settings, keep_full_size=self.keep_full_size, store_format=other)

    def convert_from(
        self,
        source: EditStore,
        indices: Iterable[int],
        prompt_ids: list[str],
        each: Callable[[], None] | None = None,
    ) -> int:
        """Copy into this store every edit of ``indices`` x ``prompt_ids`` that it lacks and
        ``source`` holds whole (same pixels, this store's format); return how many. ``each`` is
        called after every edit written (a conversion stopped part-way is counted so far)."""
        indices = list(indices)
        wanted = set(self.missing(indices))
        if not wanted:  # a finished store: the other one is not read
            return 0
        have = {pid: source._present(pid, full=False) for pid in prompt_ids}
        if not any(have.get(pid, {}).get(i) is not None for i, pid in wanted):
            return 0
        done = 0
        from ..progress import plain_progress

        for i in plain_progress(indices, f"converting edits from the {source.format} store"):
            for pid in prompt_ids:
                if (i, pid) not in wanted or have[pid].get(i) is None or not source.stored_ok(i, pid):
                    continue
                try:
                    image = source.read(i, pid)
                    full = source.read(i, pid, full=True) if self.keep_full_size else None
                except (CorruptEditError, MissingEditError):
                    continue  # made anew instead
                if not done:  # with the first edit converted: how they were made, and the hours
                    self._take_records_of(source)
                self.write(i, pid, image, full=full)
                done += 1
                if each is not None:
                    each()
        return done

    def check_same_commit(self, source: EditStore) -> None:
        """Before edits are converted from ``source``: both stores' edits were made from one hub
        commit of the weights where both record one (runtime.json's weights_commit)."""
        ours, theirs = self.stored_runtime() or {}, source.stored_runtime() or {}
        was, other = ours.get("weights_commit"), theirs.get("weights_commit")
        if was is not None and other is not None and was != other:
            raise EditStoreError(
                f"its edits were made from commit {other} of the weights, this store's from {was}. Move "
                f"{source.folder} away to keep it apart"
            )

    def _take_records_of(self, source: EditStore) -> None:
        """Before edits are converted from ``source``: its runtime.json (how they were computed; a
        store never mixes dtypes, so one recorded here already must agree) and the generate.py runs
        its generation_log.jsonl records (the hours reports count), each line once."""
        theirs = source.stored_runtime()
        if theirs is not None:
            ours = self.stored_runtime()
            if ours is None:
                self.ensure_settings()
                theirs = {
                    k: v for k, v in theirs.items() if k != "from_log"
                }  # (its log's, if its file is gone)
                write_atomic(
                    self.folder / "runtime.json", json.dumps(theirs, indent=2, sort_keys=True) + "\n"
                )
            else:
                self._compare_runtime(ours, theirs, warn=True)
        log_file = source.folder / "generation_log.jsonl"
        if log_file.is_file():
            mine = self.folder / "generation_log.jsonl"
            # (a run is known by its record less converted_from: one this store took unmarked,
            # before runs were marked, is not taken twice)
            have = (
                {_converted_record(line, "") for line in mine.read_text(errors="replace").splitlines()}
                if mine.is_file()
                else set()
            )
            # (each run said to be the other store's: its hours were spent making that store's
            # files, these converted from them)
            new = [
                _converted_record(line, source.format)
                for line in log_file.read_text(errors="replace").splitlines()
                if line.strip() and _converted_record(line, "") not in have
            ]
            if new:
                self.folder.mkdir(parents=True, exist_ok=True)
                append_lines(mine, new)

    # -- claims ------------------------------------------------------------------------------
    def claim(self, name: str):
        """Try to take the lock on a group of keys (``name``) for this process: an open file
        holding an exclusive ``flock``, or None when another live process holds it. The lock
        goes with the process (a kill releases it); :meth:`release` gives it back."""
        cdir = self.folder / "claims"
        cdir.mkdir(parents=True, exist_ok=True)
        f = open(cdir / f"{name}.lock", "a")  # noqa: SIM115  (held until release)
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.close()
            return None
        return f

    @staticmethod
    def release(handle) -> None:
        if handle is not None:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            handle.close()

    def record_failure(self, index: int, prompt_id: str, last_attempt: int) -> None:
        """Record that every attempt up to ``last_attempt`` of a key gave a bad edit (nothing is
        stored); the next run continues with attempt ``last_attempt + 1`` (see next_attempt)."""
        if last_attempt < 0:
            raise ValueError(f"last_attempt must be >= 0, got {last_attempt}")
        self.ensure_settings()
        self._append_line("failed", f"{prompt_id} {index} {last_attempt}\n")
        if self._tried is not None:
            key = (prompt_id, index)
            self._tried[key] = max(self._tried.get(key, -1), last_attempt)

    def _append_line(self, kind: str, line: str) -> None:
        """Append one line to this process's own file under ``<folder>/<kind>/`` (flushed and
        fsynced before returning)."""
        if self._logs_pid != os.getpid():  # a forked child never writes into its parent's files
            self._logs = {}
            self._logs_pid = os.getpid()
        f = self._logs.get(kind)
        if f is None:
            mdir = self.folder / kind
            mdir.mkdir(parents=True, exist_ok=True)
            name = f"{_host()}-{os.getpid()}-{time.time_ns()}.txt"
            f = self._logs[kind] = open(mdir / name, "a")  # noqa: SIM115  (kept open for the run)
        f.write(line)
        f.flush()
        os.fsync(f.fileno())

    def recorded_images(self) -> dict[int, list]:
        """Store index -> ``[path]`` or ``[path, bytes]`` of the image each index was made from, as
        recorded (see :meth:`check_images`); empty for a store made before the record existed."""
        recorded: dict[int, list] = {}
        legacy = self.folder / "images.json"  # the record's earlier form: one JSON object
        if legacy.is_file():
            try:
                stored = json.loads(legacy.read_text())
                if not isinstance(stored, dict):
                    raise ValueError("not an object")
                recorded = {int(k): v for k, v in stored.items()}
            except (ValueError, UnicodeDecodeError) as exc:
                raise self._unreadable_record(legacy, exc) from None
        folder = self.folder / "images"
        for path in sorted(folder.glob("*.txt")) if folder.is_dir() else []:
            data = path.read_bytes()
            complete = data[: data.rfind(b"\n") + 1]  # a line cut short by a kill is ignored
            try:
                for line in complete.decode("utf-8").split("\n")[:-1]:
                    index, size, name = line.split(" ", 2)
                    if name.startswith('"'):
                        name = json.loads(name)
                    recorded[int(index)] = [name] if size == "-" else [name, int(size)]
            except (ValueError, UnicodeDecodeError) as exc:
                raise self._unreadable_record(path, exc) from None
        for index, was in recorded.items():
            if not (isinstance(was, list) and was and isinstance(was[0], str)):
                raise self._unreadable_record(legacy, f"no image file for index {index}")
        return recorded

    def images_root(self) -> Path | None:
        """The image folder this store's edits were made from (images_root.txt), or None where the
        store predates the record or the dataset has no folder of its own."""
        try:
            text = (self.folder / IMAGES_ROOT).read_text().strip()
        except (OSError, UnicodeDecodeError):
            return None
        return Path(text) if text else None

    @staticmethod
    def _unreadable_record(path: Path, why) -> EditStoreError:
        return EditStoreError(
            f"{path} is not readable ({why}); delete {path.parent / 'images'} and "
            f"{path.parent / 'images.json'} (the record of images, not the edits) and rerun "
            "generate.py, which records the images again"
        )

    def check_images(
        self, files: dict[int, list], record: bool = False, root: str | Path | None = None
    ) -> None:
        """Refuse to pair this store's edits with other images than they were made from: compare
        ``files`` (see :func:`image_files`: index -> [relative path] or [relative path, bytes])
        with the recorded images, then with ``record`` append the indices not recorded yet to this
        process's file under ``images/`` (under a lock, so that processes sharing the store record
        each index once). Sizes are compared where both sides have them. A store without the record
        (made before it existed) is not checked. ``root`` (the dataset's folder, which the paths are
        relative to; see :func:`image_root`) lets a refusal tell a file that no longer decodes from
        one replaced by another image."""
        if not files:
            return
        lock = None
        if record:
            self.folder.mkdir(parents=True, exist_ok=True)
            lock = open(self.folder / "images.lock", "a")  # noqa: SIM115  (closed below)
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            stored = self.recorded_images()
            for index, now in files.items():
                was = stored.get(index)
                if was is None:
                    continue
                if was[0] != now[0] or (len(was) > 1 and len(now) > 1 and was[1] != now[1]):
                    raise self._other_images(index, was, now, files, stored, root)
            self._check_other_folder(files, stored, root)
            if record:
                where = self.folder / IMAGES_ROOT
                # Whose images these edits are: recorded with the store's first images (a store
                # recorded before this file existed may have been made from another folder).
                if root is not None and not stored and not where.is_file():
                    write_atomic(where, f"{Path(root).expanduser().absolute()}\n")
                lines = "".join(
                    f"{index} {f[1] if len(f) > 1 else '-'} {_record_name(f[0])}\n"
                    for index, f in sorted(files.items())
                    if index not in stored
                )
                if lines:
                    self._append_line("images", lines)
        finally:
            if lock is not None:
                lock.close()

    def _check_other_folder(
        self, files: dict[int, list], stored: dict[int, list], root, looked: int = 8
    ) -> None:
        """Another image folder, still there, whose images have the same names and sizes as these
        (uncompressed files of one size): the first ``looked`` images both folders hold are compared
        byte for byte. The same bytes: a copy of that folder, whose edits these are; other bytes:
        refused, as another folder's store (its edits would be paired with other images)."""
        theirs = self.images_root()
        if (
            not stored
            or theirs is None
            or root is None
            or not theirs.is_dir()
            or _same_folder(theirs, Path(root))
        ):
            return
        compared = 0
        for index in sorted(i for i in files if i in stored):
            name = files[index][0]
            there, here = theirs / name, Path(root) / name
            if not (there.is_file() and here.is_file()):
                continue
            try:
                same = there.read_bytes() == here.read_bytes()
            except OSError:
                continue
            if not same:
                raise EditStoreError(
                    f"the edit store {self.folder} holds the edits of another image folder, {theirs}: image {index} "
                    f"of the split, '{name}', has the same name and size there and other contents here, so these "
                    "images need their own edits. Make this folder's edits in an edits folder of their own "
                    f"(generator.edits_dir=<folder>, in generate.py and train.py alike); {self.folder} stays "
                    f"{theirs}'s"
                )
            compared += 1
            if compared >= looked:
                return

    def _other_images(
        self,
        index: int,
        was: list,
        now: list,
        files: dict[int, list],
        stored: dict[int, list],
        root: str | Path | None = None,
    ) -> EditStoreError:
        """The refusal of a store whose record pairs ``index`` with another image: made from
        another folder's images (none of this split's is recorded), or from this split before
        images were added, removed or renamed (edits are paired with images by position)."""
        what = f"'{was[0]}'" + (f" ({was[1]} bytes)" if len(was) > 1 else "")
        is_ = f"'{now[0]}'" + (f" ({now[1]} bytes)" if len(now) > 1 else "")
        recorded = {w[0] for w in stored.values()}
        here = sum(f[0] in recorded for f in files.values())
        here_now = Path(root) / now[0] if root is not None else None
        theirs = self.images_root()
        if (
            theirs is not None
            and root is not None
            and theirs.is_dir()
            and not _same_folder(theirs, Path(root))
        ):
            # Another image folder's store, that folder still there (a copy of it edited since,
            # say): its edits are that folder's, and deleting them is not this folder's to offer.
            return EditStoreError(
                f"the edit store {self.folder} holds the edits of another image folder, {theirs} (image "
                f"{index} of the split was {what} there and is {is_} here): these images need their own. "
                "Make this folder's edits in an edits folder of their own (generator.edits_dir=<folder>, in "
                f"generate.py and train.py alike); {self.folder} stays {theirs}'s"
            )
        if was[0] == now[0] and here_now is not None and here_now.is_file() and not image_decodes(here_now):
            sizes = f" ({now[1]} bytes now, {was[1]} when its edits were made)" if len(now) > 1 else ""
            return EditStoreError(
                f"{here_now} (image {index} of the split) does not decode: the file is corrupt "
                f"or cut short{sizes}, and the edit store {self.folder} holds edits of the intact image. "
                "Put the intact file back (copy or download it again), or leave it out with "
                "dataset.on_bad_image=skip (in train.py and generate.py alike): the store's edits of the "
                "other images are used as they are"
            )
        if was[0] == now[0]:
            why = (
                "the same file name with other contents: the image was replaced since (another copy, "
                "re-encoded or edited), and its edits are of the image it replaced"
            )
            fix = (
                "Put the original file back; or make this dataset's edits in another edits folder "
                "(generator.edits_dir=<folder>, in generate.py and train.py alike), or delete "
                f"{self.folder} to make them again (its edits are lost)"
            )
        elif here == 0:
            why = (
                f"none of this split's {len(files)} images is among the {len(recorded)} it was made from: "
                "they are another image folder's, whose edits they are"
            )
            fix = (
                "Make this folder's edits in an edits folder of their own (generator.edits_dir=<folder>, "
                f"in generate.py and train.py alike); {self.folder} stays the other folder's"
            )
        else:
            why = (
                f"{here} of this split's {len(files)} images are among the {len(recorded)} it was made from: "
                "images were added, removed or renamed since, or the split changed (a val/ folder added "
                "makes all of train/ the training split), and the store pairs edits with images by their "
                "position in the split"
            )
            gone = _gone(recorded, root)
            if gone:
                why += f"; removed since: {_listed_names(gone)}"
            put_back = (
                f"Put {_listed_names(gone)} back (a corrupt file may stay: dataset.on_bad_image=skip leaves "
                "it out and keeps the others' places)"
                if gone
                else "Put the images back as they were"
            )
            fix = (
                f"{put_back}; or make this split's edits in another edits folder (generator.edits_dir=<folder>, "
                f"in generate.py and train.py alike), or delete {self.folder} to make them again (its edits "
                "are lost)"
            )
        return EditStoreError(
            f"the edit store {self.folder} was made from other images than this dataset's: image {index} of the "
            f"split (its position in the whole split) was {what} there and is {is_} here ({why}), so its edits "
            f"would be paired with the wrong images. {fix}"
        )

    def other_stores(self, shown: int = 3) -> str:
        """A sentence naming the stores beside this one (the same dataset and split, other
        settings) and the settings each was made with where they differ from this one's, as
        command-line settings (``generator=tiny``); empty when there are none. A run that asks for
        edits this store lacks was often meant for one of them (a generator option left out)."""
        if self.settings is None or not self.folder.parent.is_dir():
            return ""
        found = []
        for folder in sorted(self.folder.parent.iterdir()):
            path = folder / "settings.json"
            if folder == self.folder or not path.is_file():
                continue
            if not (folder / "edits").is_dir():  # no edit made there yet (a run that stopped at once)
                continue
            try:
                theirs = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if not isinstance(theirs, dict):
                continue
            differ = [k for k in set(theirs) | set(self.settings) if theirs.get(k) != self.settings.get(k)]
            found.append((folder, theirs, differ))
        if not found:
            return ""

        # Of each store, the settings whose value fewest of the stores listed share are named first
        # (five are shown): two stores apart from this run in the same many ways, and from each
        # other in one, read alike otherwise. Then which generator and weights (the setting most
        # often left out), then by name.
        def value(theirs: dict, k: str) -> str:
            return json.dumps(theirs.get(k), sort_keys=True, default=str)

        def said(folder: Path, theirs: dict, differ: list[str]) -> str:
            def shared(k: str) -> int:
                return sum(value(other, k) == value(theirs, k) for _, other, _ in found)

            keys = sorted(differ, key=lambda k: (shared(k), k not in ("generator", "model"), k))
            if "generator" in keys and theirs.get("model") == TINY_ID:  # (generator=tiny says its weights)
                keys = [k for k in keys if k != "model"]
            named = [_as_setting(k, theirs.get(k), self.settings.get(k)) for k in keys]
            return f"{folder.name} ({', '.join(named[:5])}{', ...' if len(named) > 5 else ''})"

        # The closest first (fewest settings apart): the one most likely meant is never in "more".
        found = [said(*item) for item in sorted(found, key=lambda item: len(item[2]))]
        more = f" and {len(found) - shown} more" if len(found) > shown else ""
        return (
            f" Stores of {self.settings.get('dataset')}/{self.settings.get('split')} with other settings are "
            f"in {self.folder.parent}: "
            f"{'; '.join(found[:shown])}{more}. If one holds the edits meant, give its settings "
            "(in train.py as in generate.py)."
        )

    def ensure_settings(self) -> None:
        """Create the folder and its settings.json; refuse a folder made by other settings. A
        damaged settings.json of the folder these settings name is written anew from them."""
        if self.settings is None:
            return
        made = not self.folder.exists()
        self._hold_users_lock()  # (makes the folder)
        if self.check_settings(repair=True):
            return
        self._made_here = made
        write_atomic(
            self.folder / "settings.json", json.dumps(self.settings, indent=2, sort_keys=True) + "\n"
        )

    def check_settings(self, repair: bool = False) -> bool:
        """Whether the folder's settings.json is there (a store without one, made before it was
        written or being set up, is not refused); refused when it is damaged or records other
        settings (training reads no edits of a store whose record is damaged). ``repair``
        (generate.py): a damaged one is written anew where these settings name the folder (its
        name is their hash: they are the settings its edits were made with)."""
        path = self.folder / "settings.json"
        if self.settings is None or not path.exists():
            return False
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            said = f"{path} is damaged ({' '.join(str(exc).split())}): it records the settings the edits in {self.folder} were made with"
            if self.folder.name != settings_hash(self.settings):  # (an earlier form's folder)
                raise EditStoreError(
                    f"{said}. Restore it from a copy, or delete {self.folder} and rerun generate.py"
                ) from None
            if not repair:
                raise EditStoreError(
                    f"{said}, which are this run's (their hash names the folder): {self.command} writes it "
                    "anew, keeping every edit"
                ) from None
            write_atomic(path, json.dumps(self.settings, indent=2, sort_keys=True) + "\n")
            log.warning(
                "%s was damaged: written anew from this run's settings, whose hash names the folder", path
            )
            return True
        if stored != self.settings:
            edited = self.folder.name == settings_hash(self.settings) and not (
                isinstance(stored, dict) and settings_hash(stored) == self.folder.name
            )
            if edited:  # (the folder's name is the hash of the settings its edits were made with: this run's)
                said = (
                    f"{path} was edited: its settings do not hash to the folder's name, {self.folder.name}, which "
                    "is the hash of this run's, the settings the edits there were made with"
                )
                if not repair:
                    raise EditStoreError(f"{said}: {self.command} writes it anew, keeping every edit")
                write_atomic(path, json.dumps(self.settings, indent=2, sort_keys=True) + "\n")
                log.warning(
                    "%s was edited: written anew from this run's settings, whose hash names the folder", path
                )
                return True
            raise EditStoreError(
                f"{path} holds other settings than this run's, under the same hash: delete {self.folder} "
                "and rerun generate.py"
            )
        return True

    def _hold_users_lock(self) -> None:
        """Hold a shared lock on the folder's users.lock until close(): a process that set the
        folder up and works in it keeps another's remove_if_unused from removing it. A lock taken on
        a file removed meanwhile (the folder removed under it) is taken again on the new one."""
        if self._users is not None:
            return
        path = self.folder / USERS_LOCK
        while True:
            self.folder.mkdir(parents=True, exist_ok=True)
            handle = open(path, "a")  # noqa: SIM115  (held until close)
            fcntl.flock(handle.fileno(), fcntl.LOCK_SH)
            try:
                same = os.fstat(handle.fileno()).st_ino == path.stat().st_ino
            except FileNotFoundError:
                same = False
            if same:
                self._users = handle
                return
            handle.close()

    def remove_if_unused(self) -> bool:
        """Remove the folder this process made (ensure_settings) while it holds no edit, failure
        or log: only its settings, the record of its images and locks (a generate.py refused or stopped
        before its first edit, a model's weights missing, say, left an empty store that listings
        and refusals named). The dataset's and split's folders go too where they are left empty."""
        if not self._made_here or not self.folder.is_dir():
            return False
        self.close()
        # (and the empty lock files of its claims, of the images' record and of its users)
        kept = {
            Path(n) for n in ("settings.json", IMAGES_ROOT, "images", "images.lock", "claims", USERS_LOCK)
        }
        for path in self.folder.rglob("*"):
            name = path.relative_to(self.folder)
            listed = name.parent == Path("images") or (
                name.parent == Path("claims") and name.suffix == ".lock"
            )
            if not (name in kept or (listed and path.is_file())):
                return False
        # Another generate.py that set the folder up too (its shared lock held) keeps it.
        with open(self.folder / USERS_LOCK, "a") as lock:
            try:
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return False
            shutil.rmtree(self.folder, ignore_errors=True)  # (the lock held until it is gone)
        for parent in (self.folder.parent, self.folder.parent.parent):  # <split>, then <dataset>
            with suppress(OSError):
                parent.rmdir()  # (only where empty)
        self._made_here = False
        return True

    def log_generation(
        self, generated: int, seconds: float, devices: int, splits: list[str], stopped: bool = False
    ) -> None:
        """Append one generate.py run (edits made, wall seconds, devices, and the splits it filled
        together) to generation_log.jsonl, so reports can count generation's hours beside training's.
        ``stopped``: a run interrupted (Ctrl-C, SIGTERM) or stopped by an error after it made edits,
        logged by each of its processes."""
        if generated <= 0:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        record = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "generated": int(generated),
            "seconds": round(float(seconds), 3),
            "devices": int(devices),
            "splits": list(splits),
            "device": self.runtime.get("device") if self.runtime else None,
            # (how its edits were computed: runtime.json's, kept here too should that file be lost)
            **{
                k: self.runtime.get(k)
                for k in ("dtype", "dtype_setting")
                if self.runtime and k in self.runtime
            },
            "host": socket.gethostname(),
            "prompts": list(self.prompt_ids),  # (the prompts it was asked for: generator.num_prompts)
            # (each prompt as listed, where its id is not the text itself: a store names it back)
            "prompt_texts": {i: raw for i, raw in self.prompt_raw.items() if i != raw},
            **({"stopped": True} if stopped else {}),
        }
        append_lines(self.folder / "generation_log.jsonl", [json.dumps(record)])

    def generation_runs(self) -> list[dict[str, Any]]:
        """The generate.py runs logged in this store's generation_log.jsonl, in order, each as
        ``{"device_seconds": wall seconds x devices, "generated": edits made, "time": when or
        None, "converted_from": the format of the store whose run it was, None for this store's
        own, "prompts": the prompt ids it was asked for, None where the line does not say,
        "prompt_texts": those prompts' texts by id where they differ from it, "stopped": whether it
        stopped part-way, and "dtype", "dtype_setting" and "device" where the
        line records them}``; a damaged line is skipped."""
        path = self.folder / "generation_log.jsonl"
        runs = []
        if not path.is_file():
            return runs
        for line in path.read_text(errors="replace").splitlines():
            try:
                record = json.loads(line)
                run = {
                    "device_seconds": float(record["seconds"]) * int(record.get("devices", 1)),
                    "generated": int(record["generated"]),
                    "time": record.get("time") if isinstance(record.get("time"), str) else None,
                    # (a run of the store these edits were converted from: its format)
                    "converted_from": _said_format(record.get("converted_from")),
                    # (the prompt ids it was asked for; None where the line does not say)
                    "prompts": _said_prompts(record.get("prompts")),
                    "stopped": record.get("stopped") is True,  # (interrupted, or an error, part-way)
                    # (the prompts' texts by id where they differ; {} where the line does not say)
                    "prompt_texts": {
                        str(k): str(v)
                        for k, v in (record.get("prompt_texts") or {}).items()
                        if isinstance(v, str)
                    },
                    # (how its edits were computed, as runtime.json records it)
                    **{k: record.get(k) for k in ("dtype", "dtype_setting", "device") if k in record},
                }
            except (ValueError, KeyError, TypeError, AttributeError):
                continue
            runs.append(run)
        return runs

    def generation_totals(self) -> tuple[float, int, int]:
        """(device-seconds, edits made, runs) over every generate.py run logged in this store's
        generation_log.jsonl (device-seconds: wall seconds x devices); a damaged line is skipped."""
        runs = self.generation_runs()
        return sum(r["device_seconds"] for r in runs), sum(r["generated"] for r in runs), len(runs)

    def generation_seconds_per_edit(self) -> float | None:
        """Device-seconds (wall seconds x devices) per edit made, over every generate.py run logged
        in this store's generation_log.jsonl; None when none is logged."""
        seconds, made, _ = self.generation_totals()
        return seconds / made if made > 0 else None

    def use_runtime(self, runtime: dict[str, Any], warn: bool = True) -> None:
        """Generate with ``runtime`` (see RUNTIME_EXACT, RUNTIME_LOOSE): check it against the one
        recorded in runtime.json by the run that wrote the first edits; a different dtype is
        refused, other differences are logged (``warn``). It is recorded with the first edit
        this store writes, when the folder has no runtime.json yet."""
        stored = self.stored_runtime()
        if stored is not None:
            self._compare_runtime(stored, runtime, warn)
        self.runtime = dict(runtime)

    def use_weights_commit(self, commit: str | None, model_id: str) -> None:
        """The hub commit the pipeline was loaded from (None: a local folder, the tiny pipeline):
        recorded in runtime.json with the first edit; a store whose edits were made from another
        commit (the hub's main branch moved since, or another cache) is refused, naming both."""
        if commit is None or self.runtime is None:  # (no runtime: nothing to make in this store)
            return
        stored = self.stored_runtime()
        was = stored.get("weights_commit") if stored else None
        if was is not None and was != commit:
            self._refuse_commit(was, commit, model_id)
        self.runtime["weights_commit"] = commit
        self.runtime["model_id"] = model_id

    def _refuse_commit(self, was: str, commit: str, model_id: str) -> None:
        raise ConfigError(
            f"the edit store {self.folder} holds edits made with commit {was} of {model_id}, and this run "
            f"loaded commit {commit}; one store never mixes the two. Finish it with generator.revision={was}, "
            f"or make the edits of commit {commit} in a store of their own (generator.edits_dir=<another "
            "folder>; give train.py the same)"
        )

    def stored_runtime(self) -> dict[str, Any] | None:
        """runtime.json's record of how the stored edits were computed; where that file is gone,
        the dtype the last run logged in generation_log.jsonl recorded (``"from_log": True``), so
        a lost file never lets edits of another dtype into the store. None: neither says."""
        path = self.folder / "runtime.json"
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            return self._logged_runtime()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise EditStoreError(
                f"{path} cannot be read ({exc}). It records how the stored edits were computed (the dtype "
                "one store never mixes); restore it, or delete that file where this run computes edits "
                "as they were (generator.dtype resolving to the same: bf16 on a GPU, fp32 on CPU by "
                "default): the next generate.py records its own"
            ) from None

    def _logged_runtime(self) -> dict[str, Any] | None:
        """The dtype (and the setting and device giving it) of the last generate.py run logged with
        one in generation_log.jsonl; None where no line records it."""
        logged = [r for r in self.generation_runs() if isinstance(r.get("dtype"), str)]
        if not logged:
            return None
        return {**{k: logged[-1].get(k) for k in ("dtype", "dtype_setting", "device")}, "from_log": True}

    def _compare_runtime(self, stored: dict[str, Any], runtime: dict[str, Any], warn: bool) -> None:
        was, now = stored.get("weights_commit"), runtime.get("weights_commit")
        if was is not None and now is not None and was != now:  # (another process wrote it first)
            self._refuse_commit(was, now, runtime.get("model_id", "the hub weights"))
        if any(stored.get(k) != runtime.get(k) for k in RUNTIME_EXACT):
            was, now = stored.get("dtype"), runtime.get("dtype")
            where = " (generation_log.jsonl says: runtime.json is gone)" if stored.get("from_log") else ""
            raise ConfigError(
                f"the edit store {self.folder} holds edits computed in {was} (generator.dtype="
                f"{stored.get('dtype_setting')} on {stored.get('device')}){where}, but this run would compute them "
                f"in {now} (generator.dtype={runtime.get('dtype_setting')} on {runtime.get('device')}); one "
                f"store never mixes the two. Finish this store where generator.dtype resolves to {was} "
                "(generator.dtype=auto is bf16 on a GPU and fp32 on CPU), or make a separate store: set "
                f"generator.dtype={now} explicitly (it names another store folder; give train.py the same "
                "setting) or choose another generator.edits_dir."
            )
        changed = [k for k in RUNTIME_LOOSE if stored.get(k) != runtime.get(k)]
        if changed and warn:
            log.warning(
                "edit store %s: its edits were computed with %s, this run uses %s; new edits can differ "
                "from what the earlier settings would give by about one pixel level",
                self.folder,
                ", ".join(f"{k}={stored.get(k)}" for k in changed),
                ", ".join(f"{k}={runtime.get(k)}" for k in changed),
            )

    def _record_runtime(self) -> None:
        """Write runtime.json unless present; when another process wrote it first, it must agree."""
        if self.runtime is None:
            return
        path = self.folder / "runtime.json"
        if not path.exists():
            self.ensure_settings()  # the folder, before its first file
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp = self.folder / f".runtime.json.{_host()}-{os.getpid()}"
            tmp.write_text(json.dumps(self.runtime, indent=2, sort_keys=True) + "\n")
            try:
                os.link(tmp, path)  # fails if a concurrent writer got there first
                return
            except FileExistsError:
                pass
            except OSError:  # a file system without hard links
                os.replace(tmp, path)
                return
            finally:
                tmp.unlink(missing_ok=True)
        stored = self.stored_runtime()
        if stored is not None:
            self._compare_runtime(stored, self.runtime, warn=False)

    def close(self) -> None:
        for f in self._logs.values():
            f.close()
        self._logs = {}
        if self._users is not None:
            self._users.close()  # (its shared lock released)
            self._users = None
        if self._tmp_dir is not None:
            shutil.rmtree(self._tmp_dir, ignore_errors=True)
            self._tmp_dir = None

    # -- checking ----------------------------------------------------------------------------
    def check(self) -> dict[str, list]:
        """Consistency report: manifest keys recorded twice or without an image, and images
        with no manifest line (left by a kill between rename and record; generated again)."""
        seen: dict[tuple[str, int], int] = {}
        for _, pid, index in self._manifest_entries():
            seen[(pid, index)] = seen.get((pid, index), 0) + 1
        files = {(pid, i) for pid in self._stored_prompt_ids() for i in self._present(pid, full=False)}
        return {
            "duplicates": sorted(k for k, n in seen.items() if n > 1),
            "without_image": sorted(k for k in seen if k not in files),
            "unrecorded_images": sorted(files - set(seen)),
        }

    def _stored_prompt_ids(self) -> list[str]:
        root = self.folder / "edits"
        return sorted(p.name for p in root.iterdir()) if root.is_dir() else []


FORMATS = ("npy", "png")
# The header numpy writes for a C-ordered uint8 array of three dimensions (padding spaces follow).
_NPY_HEADER = re.compile(
    rb"\{'descr': '\|u1', 'fortran_order': False, 'shape': \((\d+), (\d+), (\d+)\), \} *\n"
)


#: Keys of a store's settings that are a generator setting of the same name.
_GENERATOR_KEYS = ("scheduler", "steps", "guidance_scale", "image_guidance_scale", "resolution",
                   "prompt_template", "dtype", "seed", "blank_std", "store_size")  # fmt: skip


def _batching_said(value: Any, mine: Any) -> str:
    """A store's batching (its prompt blocks) as the settings that give it, beside this run's."""
    if value is None:
        return "generator.batch_invariant=true"
    blocks = value.get("blocks") if isinstance(value, dict) else None
    if not blocks:
        return "other generator.batch_size"
    ids = [pid for block in blocks for pid in block]
    # The largest batch size that cuts these blocks (9 prompts in blocks of 3: 4, as generator=tiny
    # sets it; 3 makes the same blocks)
    same = [b for b in range(1, len(ids) + 1) if prompt_blocks(ids, b) == blocks]
    size = f"generator.batch_size={max(same) if same else max(len(block) for block in blocks)}"
    mine_blocks = mine.get("blocks") if isinstance(mine, dict) else None
    if mine_blocks is not None and ids != [pid for block in mine_blocks for pid in block]:
        # Blocks cut from another prompt list: the prompts differ (the batch size perhaps too).
        shown = ", ".join(ids[:4]) + (", ..." if len(ids) > 4 else "")
        return f"other generator.prompts ({len(ids)}: {shown}; blocks of up to {max(len(b) for b in blocks)})"
    return size if mine is not None else f"generator.batch_invariant=false, {size}"


def _as_setting(key: str, value: Any, mine: Any = None) -> str:
    """A store's setting as the command-line setting that gives it (``generator=tiny``,
    ``generator.steps=20``), or ``key: value`` where no one setting does (``mine``: this run's
    value, where the difference is worth naming)."""
    if key == "generator":
        return f"generator={value}"
    if key in _GENERATOR_KEYS:
        return f"generator.{key}={'null' if value is None else value}"
    if key == "format":
        return f"generator.store_format={value or 'png'}"
    if key == "model":  # the weights: the tiny pipeline's, a local folder's, a hub id's
        if value == TINY_ID:
            return "generator=tiny"
        if Path(str(value)).is_absolute():
            return f"generator.local_dir={value}"
        return f"generator.model_id={value}"
    if key == "step_cache":
        if not isinstance(value, dict):
            return "generator.cache_interval=null"
        branch = value.get("branch_id", 0)
        # The branch where it is not the default, or where it is what tells this run's store apart.
        other = isinstance(mine, dict) and mine.get("branch_id", 0) != branch
        return f"generator.cache_interval={value['interval']}" + (
            f", generator.cache_branch_id={branch}" if branch or other else ""
        )
    if key == "batching":
        return _batching_said(value, mine)
    if key == "split_identity" and isinstance(value, dict):
        # Which image sits at each position: the validation hold-out and the reader's options.
        mine = mine if isinstance(mine, dict) else {}
        said = [
            f"dataset.{k}={json.dumps(value.get(k)) if k == 'options' else value.get(k)}"
            for k in sorted(set(value) | set(mine))
            if value.get(k) != mine.get(k)
        ]
        return ", ".join(said) or "split_identity"
    if key == "store_version":
        return f"store_version {value} (made by another version of this framework's store layout)"
    if key == "store_size_rule" and value in (STORE_WARP_RULE, STORE_SIZE_RULE):
        return f"dataset.warp={'true' if value == STORE_WARP_RULE else 'false'}"
    text = json.dumps(value)
    return f"{key}: {text if len(text) <= 40 else text[:40] + ' ...'}"


def encode_edit(image: torch.Tensor, fmt: str) -> bytes:
    """The file bytes of a uint8 (3, H, W) edit: raw .npy, or PNG (zlib level 6)."""
    image = image.detach().cpu().contiguous()
    if fmt == "npy":
        import io

        import numpy as np

        buf = io.BytesIO()
        np.save(buf, image.numpy(), allow_pickle=False)
        return buf.getvalue()
    from torchvision.io import encode_png

    return encode_png(image, compression_level=6).numpy().tobytes()


def decode_edit(data: bytes | bytearray, fmt: str) -> torch.Tensor:
    """The uint8 (3, H, W) edit from its file bytes; ValueError when they are not a whole edit.
    An .npy written by encode_edit is read in place (its header matched, no parsing, no copy)."""
    if fmt == "npy":
        import io

        import numpy as np

        if bytes(data[:6]) != b"\x93NUMPY" or len(data) < 12:
            raise ValueError("not an .npy file")
        start = 10 if data[6] == 1 else 12
        end = start + int.from_bytes(data[8:start], "little")
        m = _NPY_HEADER.match(bytes(data[start:end]))
        if m is not None:
            c, h, w = (int(x) for x in m.groups())
            if len(data) - end != c * h * w or c != 3:
                raise ValueError(
                    f"expected {c * h * w} bytes of pixels after the header, got {len(data) - end}"
                )
            buf = data if isinstance(data, bytearray) else bytearray(data)
            return torch.frombuffer(buf, dtype=torch.uint8, offset=end, count=c * h * w).view(c, h, w)
        try:  # another writer's header: numpy's own reader
            arr = np.load(io.BytesIO(bytes(data)), allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise ValueError(str(exc)) from None
        if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[0] != 3:
            raise ValueError(f"expected a uint8 (3, H, W) array, got {arr.dtype} {arr.shape}")
        return torch.from_numpy(np.ascontiguousarray(arr))
    from torchvision.io import ImageReadMode, decode_png

    damage = png_damage(data)
    if damage is not None:  # (libpng's own error, through torchvision, ends the process)
        raise ValueError(damage)
    try:
        buf = data if isinstance(data, bytearray) else bytearray(data)
        return decode_png(torch.frombuffer(buf, dtype=torch.uint8), mode=ImageReadMode.RGB)
    except RuntimeError as exc:
        raise ValueError(str(exc)) from None


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_damage(data: bytes | bytearray) -> str | None:
    """What is wrong with a PNG's bytes, found by its chunks' lengths and checksums (a byte changed
    anywhere, the file cut short, no end chunk); None for an intact file. torchvision's decode_png
    meets a damaged chunk in libpng, whose error ends the process (a segmentation fault), so the
    bytes are checked before it reads them (a few percent of its time)."""
    import zlib

    view = memoryview(data)
    if bytes(view[:8]) != _PNG_SIGNATURE:
        return "not a PNG file"
    at, size = 8, len(view)
    while at + 12 <= size:
        length = int.from_bytes(view[at : at + 4], "big")
        end = at + 12 + length
        if end > size:
            return f"cut short (a chunk of {length} bytes at byte {at} runs past the file's {size})"
        kind = bytes(view[at + 4 : at + 8])
        if zlib.crc32(view[at + 4 : end - 4]) != int.from_bytes(view[end - 4 : end], "big"):
            return f"damaged (the checksum of its {kind.decode('latin-1')} chunk at byte {at} does not match)"
        if kind == b"IEND":
            return None
        at = end
    return "cut short (no end chunk)"


_ID = re.compile(r"[a-z0-9][a-z0-9_-]*")


# Larger indices in a manifest line are not an index of any dataset split: the line is garbage.
MAX_INDEX = 1 << 31


def _record(done: dict[str, array], prompt_id: str, index: int, size: int) -> None:
    """Record a finished key in the per-prompt size arrays (see EditStore._done)."""
    if index >= MAX_INDEX or not _ID.fullmatch(prompt_id):
        return
    sizes = done.get(prompt_id)
    if sizes is None:
        sizes = done[prompt_id] = array("q")
    if index >= len(sizes):
        sizes.extend([0] * max(index + 1 - len(sizes), len(sizes)))
    sizes[index] = size


def _said_prompts(value: Any) -> list[str] | None:
    """A generation_log.jsonl line's prompt ids, or None where it has none or they are damaged."""
    if isinstance(value, list) and value and all(isinstance(v, str) and _ID.fullmatch(v) for v in value):
        return list(value)
    return None


def _record_name(name: str) -> str:
    """A file name as the last field of an ``images/`` line: as it is, or as a JSON string when
    it could be misread (a line break in it, or a leading quote)."""
    if "\n" in name or name.startswith('"'):
        return json.dumps(name)
    return name


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "_", socket.gethostname()) or "host"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# -- the command that fills a store ------------------------------------------------------------
def _group_defaults(group: str, option: str, schema) -> dict[str, Any]:
    """The values a config group option sets: its schema's defaults merged with conf/<group>/<option>.yaml."""
    base = OmegaConf.structured(schema)
    path = CONF_DIR / group / f"{option}.yaml"
    if path.exists():
        values = OmegaConf.load(path)
        values.pop("defaults", None)  # the option's own defaults list (a dataset picks its protocol)
        base = OmegaConf.merge(base, values)
    return OmegaConf.to_container(base, resolve=False)


def _override_value(value: Any) -> str:
    """A value in Hydra's override grammar."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_override_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{_override_value(v)}" for k, v in value.items()) + "}"
    text = str(value)
    if re.fullmatch(r"[A-Za-z_/~.][A-Za-z0-9_./~+-]*", text) and text not in ("null", "true", "false"):
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def generate_command(cfg: DictConfig, dataset_name: str) -> str:
    """The exact ``python generate.py ...`` command (see :func:`script_command`) that fills the store ``cfg`` reads: the
    dataset, its split settings and the settings that size the stored edits, paths.data_dir, and
    every generator setting that differs from the chosen generator option's defaults."""
    g = OmegaConf.to_container(cfg.generator, resolve=True)
    args = [f"dataset={dataset_name}"]
    d = cfg.dataset if "dataset" in cfg and cfg.dataset.get("name") == dataset_name else None
    # dataset.root, when set, is where the images are: paths.data_dir is then not read.
    if "paths" in cfg and cfg.paths.get("data_dir") is not None and not (d is not None and d.get("root")):
        args.append(f"paths.data_dir={Path(str(cfg.paths.data_dir)).expanduser().resolve()}")
    if d is not None:
        dflt = _group_defaults("dataset", dataset_name, DatasetConfig)
        # The split settings pick which image sits at an index; train_transform and resize give the
        # stored size (generator.store_size=auto); image_size, which changes no edit, goes with
        # resize, which generate.py checks against it (a resize below the default crop is refused).
        keys = (
            "root",
            "val_fraction",
            "split_seed",
            "samples_per_class",
            "options",
            "train_transform",
            "image_size",
            "resize",
            "warp",
        )
        for key in keys:
            value = OmegaConf.to_container(d, resolve=True)[key]
            if value != dflt.get(key):
                args.append(f"dataset.{key}={_override_value(value)}")
        if d.get("on_bad_image") == "skip":  # no edits for the images training leaves out
            args.append("dataset.on_bad_image=skip")
    if g["name"] != "ip2p":
        args.append(f"generator={g['name']}")
    dflt = _group_defaults("generator", g["name"], GeneratorConfig)
    for key, value in g.items():
        if key in ("name", "edits_dir", "compile", "channels_last", "limit", "limit_per_class", "verify") or (
            key == "batch_size" and g["batch_invariant"]
        ):
            continue  # not part of what is stored (speed only) or handled below
        if value != dflt.get(key):
            if key == "store_size" and str(value).isdigit():
                value = int(value)  # (a size: its field is a string for "auto"; Hydra converts 24 to it)
            args.append(f"generator.{key}={_override_value(value)}")
    raw_paths = OmegaConf.to_container(cfg.paths, resolve=False) if "paths" in cfg else {}
    raw_edits = OmegaConf.to_container(cfg.generator, resolve=False)["edits_dir"]
    if raw_edits != dflt.get("edits_dir") or raw_paths.get("cache_dir") != PathsConfig.cache_dir:
        args.append(f"generator.edits_dir={Path(str(g['edits_dir'])).expanduser().resolve()}")
    return script_command("generate.py") + " " + " ".join(shlex.quote(a) for a in args)


def _converted_record(line: str, source_format: str) -> str:
    """A line of another store's generation_log.jsonl as this store keeps it after converting its
    edits: the run said to be that store's (``converted_from``: its format; one converted before
    keeps the format that made it), written the same way each time. ``source_format`` empty: the
    record without the mark (how runs are told apart). A line that is no record: as it is."""
    try:
        record = json.loads(line)
    except ValueError:
        return line
    if not isinstance(record, dict):
        return line
    made_by = record.pop("converted_from", None) or source_format
    return json.dumps({**record, "converted_from": made_by} if source_format else record)


def _said_format(value: Any) -> str | None:
    """A log record's ``converted_from`` as a format's name; None where it says none (or is not
    a name: a line edited by hand)."""
    return value if isinstance(value, str) and value else None
