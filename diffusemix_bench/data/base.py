"""Common dataset type: every reader yields (uint8 CHW RGB image, label, index)."""

from __future__ import annotations

import logging
import os
import random
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from ..errors import UserError
from .layouts import DatasetNotFoundError  # noqa: F401  (raised by the readers; defined without torch)

SPLITS = ("train", "val", "test")

log = logging.getLogger(__name__)


class SplitNotAvailableError(UserError, LookupError):
    """Raised by a reader when a dataset has no such split (for example an image folder without
    ``test/``); callers that can do without the split catch it and say so."""


class CorruptImageError(UserError, RuntimeError):
    """Raised when an image file cannot be decoded."""


class _NotAFile(Exception):
    """An image path that names no regular file (load_rgb reports it as a CorruptImageError)."""


class DataFileError(UserError, ValueError):
    """A dataset file (a list, a label table, a pickle, a .mat) does not hold what the official
    release holds; the message names the file (and line) and says how to get a good copy."""


def load_rgb(path: str | Path) -> Image.Image:
    """Open an image file as 8-bit RGB (grayscale, palette, RGBA and CMYK are converted)."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            # A FIFO or device named like an image would block or stream forever.
            raise _NotAFile(path)
        with Image.open(path) as img:
            img.load()
            if img.mode in ("I;16", "I;16B", "I;16L", "I;16N"):
                # 16-bit greyscale: scale 0..65535 to 0..255, which convert("RGB") would clip
                # instead (a nearly white image); a dark 16-bit image stays dark.
                return Image.fromarray(sixteen_to_eight(np.asarray(img), always=True)).convert("RGB")
            if img.mode == "I":
                # 32-bit integers (a 16-bit PNG or TIFF as some versions of PIL open it, or 8-bit
                # values stored wide): 16-bit scaled where a value is above 255.
                return Image.fromarray(sixteen_to_eight(np.asarray(img))).convert("RGB")
            if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info:
                # Composite on white so transparent pixels do not turn black (greyscale and palette
                # images with alpha, and a tRNS colour of a greyscale, palette or RGB PNG, alike).
                rgba = img.convert("RGBA")
                background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                return Image.alpha_composite(background, rgba).convert("RGB")
            return img.convert("RGB")
    except Image.DecompressionBombError as exc:
        raise CorruptImageError(
            f"Image {path} is too large to decode safely ({exc}). If it is a genuine image, shrink it; "
            "files like this are also used to exhaust memory on purpose."
        ) from None
    except FileNotFoundError:
        link = Path(path).is_symlink()
        raise CorruptImageError(
            f"Image {path} is not there"
            + (
                f" (a link to {os.readlink(path)}, which does not exist)"
                if link
                else " (the dataset's files list it, but it is not in the folder, or was removed since)"
            )
            + ": put the file back"
            + (" or mend the link" if link else "")
            + ", or leave missing and corrupt images out with dataset.on_bad_image=skip (train.py and "
            "generate.py then skip the same files)."
        ) from None
    except _NotAFile:
        kind = "a folder" if os.path.isdir(path) else "a pipe, socket or device"
        raise CorruptImageError(
            f"Image {path} is not a regular file ({kind} named like an image): move it out "
            "of the dataset, or leave such files out with dataset.on_bad_image=skip (train.py and "
            "generate.py then skip the same files)."
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise CorruptImageError(
            f"Could not decode image {path}: {exc}. Replace it with a good copy under the same name "
            "(for a published dataset: download it again), or leave corrupt images out with dataset.on_bad_image=skip (train.py and "
            "generate.py then skip the same files; deleting the file instead moves the images after it "
            "to other positions in the split, and edit stores pair edits with images by position)."
        ) from exc


def sixteen_to_eight(arr: np.ndarray, always: bool = False) -> np.ndarray:
    """Integer greyscale pixels as 8-bit: 16-bit values scaled by 255/65535 and rounded, where
    ``always`` (a 16-bit image) or where any value is above 255; else the values are kept."""
    arr = arr.astype(np.int64)
    if always or arr.max(initial=0) > 255:
        arr = np.rint(arr * (255.0 / 65535.0))
    return np.clip(arr, 0, 255).astype(np.uint8)


def pil_to_uint8_chw(img: Image.Image) -> torch.Tensor:
    """The image's pixels as a uint8 (C, H, W) tensor kept in the (H, W, C) memory order PIL decodes
    them (channels last): no reordering copy, and torchvision's uint8 resize runs faster on it (same
    pixels). Call ``.contiguous()`` where a caller needs the CHW memory order."""
    arr = np.array(img, dtype=np.uint8)  # a writable copy: torch must not share PIL's read-only bytes
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    return torch.from_numpy(arr).permute(2, 0, 1)


@dataclass
class ImageClassificationDataset(Dataset):
    """A split of a classification dataset.

    Samples are either file paths (decoded lazily) or an in-memory uint8 NHWC array (CIFAR).
    ``__getitem__`` returns ``(image, label, index)`` with ``image`` a uint8 CHW RGB tensor
    after ``transform`` (which receives and returns uint8 CHW tensors), and ``index`` the
    position in this split: the key that the edit store and few-shot subsets use.
    """

    name: str
    split: str
    classes: list[str]
    targets: list[int]
    paths: list[Path] | None = None
    array: np.ndarray | None = None
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None
    root: Path | None = None
    info: dict = field(default_factory=dict)
    # Rows cut off the bottom of every image as it is read (FGVC-Aircraft's copyright banner with
    # dataset.options.crop_banner=true): training, evaluation and the edits all see the same pixels.
    crop_bottom: int = 0

    def __post_init__(self) -> None:
        if (self.paths is None) == (self.array is None):
            raise ValueError("give exactly one of paths or array")
        n = len(self.paths) if self.paths is not None else len(self.array)
        # What the dataset's files say, not the code: a damaged or emptied list file, a label
        # table of another release (one message naming the dataset's folder, not a traceback).
        where = f" (read from {self.root})" if self.root is not None else ""
        fix = "the files are damaged or not the official ones; re-download the dataset"
        if n != len(self.targets):
            raise DataFileError(
                f"{self.name}/{self.split}{where}: {n} images but {len(self.targets)} labels: {fix}"
            )
        if n == 0 and not (self.split == "val" and no_validation(self.info)):
            raise DataFileError(
                f"{self.name}/{self.split}{where}: the split is empty (its files list no images): {fix}"
            )
        bad = [t for t in self.targets if not 0 <= t < len(self.classes)]
        if bad:
            raise DataFileError(
                f"{self.name}/{self.split}{where}: label {bad[0]} outside [0, {len(self.classes)}) "
                f"(the label files and the class list disagree): {fix}"
            )

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __len__(self) -> int:
        return len(self.targets)

    def load_image(self, index: int) -> torch.Tensor:
        """The untransformed image as uint8 CHW RGB, in channels-last memory order (see
        :func:`pil_to_uint8_chw`)."""
        if self.array is not None:
            return torch.from_numpy(np.array(self.array[index], dtype=np.uint8)).permute(2, 0, 1)
        image = load_rgb(self.paths[index])
        if self.crop_bottom:
            image = image.crop((0, 0, image.width, max(1, image.height - self.crop_bottom)))
        return pil_to_uint8_chw(image)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, int]:
        image = self.load_image(index)
        if self.transform is not None:
            image = self.transform(image)
        return image, self.targets[index], index

    def subset(self, indices: Sequence[int], split: str | None = None) -> ImageClassificationDataset:
        """A new dataset holding the given samples (indices renumbered from 0); ``parent_indices``
        keeps each sample's index in the full split, through subsets of subsets."""
        indices = list(indices)
        parent = self.info.get("parent_indices")
        return ImageClassificationDataset(
            name=self.name,
            split=split or self.split,
            classes=self.classes,
            targets=[self.targets[i] for i in indices],
            paths=[self.paths[i] for i in indices] if self.paths is not None else None,
            array=self.array[indices] if self.array is not None else None,
            transform=self.transform,
            root=self.root,
            crop_bottom=self.crop_bottom,
            info=dict(
                self.info, parent_indices=[parent[i] for i in indices] if parent is not None else indices
            ),
        )


def stratified_holdout(targets: Sequence[int], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Split indices into (keep, holdout) with ``fraction`` of each class held out (at least one
    per class with two or more samples). Deterministic for a given seed. ``fraction`` 0 holds out
    nothing: the whole split is kept (no validation split)."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"dataset.val_fraction must be in [0, 1), got {fraction}")
    if fraction == 0.0:
        return list(range(len(targets))), []
    by_class: dict[int, list[int]] = {}
    for i, t in enumerate(targets):
        by_class.setdefault(int(t), []).append(i)
    rng = random.Random(seed)
    keep, hold = [], []
    for c in sorted(by_class):
        idx = by_class[c]
        rng.shuffle(idx)
        # At least one per class, never the whole class; singletons stay in train.
        n_hold = min(max(round(len(idx) * fraction), 1), len(idx) - 1) if len(idx) >= 2 else 0
        hold.extend(idx[:n_hold])
        keep.extend(idx[n_hold:])
    return sorted(keep), sorted(hold)


def per_class_subset(
    targets: Sequence[int], per_class: int, seed: int, classes: Sequence[str] | None = None
) -> list[int]:
    """Indices of ``per_class`` samples of each class chosen with a fixed seed (few-shot subsets);
    ``classes`` (the class names) name a class that has too few."""
    by_class: dict[int, list[int]] = {}
    for i, t in enumerate(targets):
        by_class.setdefault(int(t), []).append(i)
    rng = random.Random(seed)
    chosen = []
    for c in sorted(by_class):
        idx = by_class[c]
        if len(idx) < per_class:
            from ..errors import ConfigError

            name = (
                f"class {c} ('{classes[c]}')"
                if classes is not None and 0 <= c < len(classes)
                else f"class {c}"
            )
            raise ConfigError(
                f"dataset.samples_per_class={per_class} but {name} has only {len(idx)} training images; "
                f"set dataset.samples_per_class to at most {min(len(v) for v in by_class.values())}"
            )
        chosen.extend(rng.sample(idx, per_class))
    return sorted(chosen)


# Helpers shared by the readers.

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
)


def within(path: str, folder: str) -> bool:
    """Whether the real path ``path`` is ``folder`` or below it (``/`` holds every path)."""
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def scan_image_files(folder: Path) -> tuple[list[Path], list[Path], list[Path]]:
    """Image files under ``folder`` (recursive, sorted, extension matched case-insensitively), the
    other files skipped (``README.txt``, ``labels.csv``...) and the linked folders not followed.
    Hidden files and folders (``.DS_Store``, ``._x.jpg``, ``.ipynb_checkpoints``) are ignored.
    Linked folders are followed, each real folder once; a link to a folder already walked or to
    one of the folders above it (a loop) is not followed (the caller reports it)."""
    found: list[Path] = []
    skipped: list[Path] = []
    not_followed: list[Path] = []
    seen: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        here = os.path.realpath(dirpath)
        if here in seen:
            dirnames[:] = []
            continue
        seen.add(here)
        keep = []
        for d in sorted(dirnames):
            if d.startswith("."):
                continue
            real = os.path.realpath(os.path.join(dirpath, d))
            if real in seen or within(here, real):
                not_followed.append(Path(dirpath, d))
                continue
            keep.append(d)
        dirnames[:] = keep
        for f in filenames:
            if f.startswith("."):
                continue
            (found if os.path.splitext(f)[1].lower() in IMAGE_EXTENSIONS else skipped).append(
                Path(dirpath, f)
            )
    return sorted(found), sorted(skipped), sorted(not_followed)


def warn_links_not_followed(links: Sequence[Path]) -> None:
    """One warning for the linked folders a scan did not follow (loops, folders read already)."""
    if links:
        log.warning(
            "%d linked folder(s) not followed, each a link to a folder already read or above it (a loop): %s",
            len(links),
            ", ".join(f"{p} -> {os.path.realpath(p)}" for p in links[:5])
            + (" ..." if len(links) > 5 else ""),
        )


def list_image_files(folder: Path) -> list[Path]:
    """The image files of :func:`scan_image_files` (linked folders not followed: a warning)."""
    files, _, links = scan_image_files(folder)
    warn_links_not_followed(links)
    return files


def list_class_folders(folder: Path) -> list[str]:
    """Sorted names of the non-hidden sub-folders of ``folder`` (one per class)."""
    return sorted(e.name for e in os.scandir(folder) if e.is_dir() and not e.name.startswith("."))


#: How the val_rule of a dataset trained on its whole training split starts (dataset.val_fraction=0).
NO_VALIDATION = "none:"


def no_validation(info: dict) -> bool:
    """Whether a split's ``info`` says it has no validation split (dataset.val_fraction=0)."""
    return str(info.get("val_rule") or "").startswith(NO_VALIDATION)


def holdout_rule(
    val_fraction: float, seed: int, source: str = "train", targets: Sequence[int] | None = None
) -> str:
    """The ``info['val_rule']`` text of datasets whose val split is a holdout of ``source``; with the
    split's ``targets``, the share really held out where at least one image of each class of two or
    more (``stratified_holdout``) takes more than ``val_fraction`` (small classes)."""
    if val_fraction == 0:
        return (
            f"none: the whole {source} split is trained on (dataset.val_fraction=0), the last epoch reported"
        )
    rule = f"holdout {val_fraction * 100:g}% of {source} (stratified per class), seed {seed}"
    share = holdout_share(targets, val_fraction) if targets is not None else None
    if share is not None:
        held, total = share
        rule += (
            f"; {held} of {total} images held out ({100 * held / total:.0f}%): each class of two or more "
            "images gives at least one"
        )
    return rule


def holdout_share(targets: Sequence[int], val_fraction: float) -> tuple[int, int] | None:
    """``(held out, images)`` of a stratified holdout of ``targets`` where at least one image of
    each class of two or more raises the share above ``val_fraction`` by more than half of it
    (small classes: 4 images a class hold out 25%, not 10%); None where it does not."""
    if not targets or val_fraction == 0:
        return None
    counts: dict[int, int] = {}
    for t in targets:
        counts[int(t)] = counts.get(int(t), 0) + 1
    held = sum(min(max(round(n * val_fraction), 1), n - 1) for n in counts.values() if n >= 2)
    return (held, len(targets)) if held > 1.5 * val_fraction * len(targets) else None


def holdout_indices(train_targets: Sequence[int], split: str, val_fraction: float, seed: int) -> list[int]:
    """Indices for ``split`` ('train' or 'val') of a dataset whose val split is a stratified holdout
    of its training split. Both come from one ``stratified_holdout`` call, so they never overlap."""
    keep, hold = stratified_holdout(train_targets, val_fraction, seed)
    return hold if split == "val" else keep


def take_holdout(
    items: Sequence, targets: Sequence[int], split: str, val_fraction: float, seed: int
) -> tuple[list, list[int]]:
    """``items`` (paths or ids) and ``targets`` of ``split`` ('train' or 'val') when the val split
    is a stratified holdout of the training split (see ``holdout_indices``)."""
    keep = holdout_indices(targets, split, val_fraction, seed)
    return [items[i] for i in keep], [targets[i] for i in keep]


def read_index_file(
    path: Path, min_fields: int, *, sep: str | None = None, maxsplit: int = -1
) -> list[tuple[int, list[str]]]:
    """Non-blank lines of a text index file as ``(line number, fields)``; a line with fewer than
    ``min_fields`` fields raises ValueError naming the file and line."""
    rows = []
    with open(path, "rb") as f:
        start = f.read(4)
    if start.startswith((b"\xff\xfe", b"\xfe\xff")) or (len(start) == 4 and b"\x00" in start[:2]):
        # (an editor's or PowerShell's "Unicode": every character two bytes, none of them readable as text)
        raise DataFileError(
            f"{path} is saved as UTF-16 text, and the dataset's files are UTF-8 (or ASCII) text: save it again as "
            "UTF-8, or re-download the dataset"
        )
    # Undecodable bytes only ever sit in free-text names, never in ids or labels; a byte-order mark
    # an editor wrote at the start (utf-8-sig) is not part of the first field.
    with open(path, encoding="utf-8-sig", errors="replace") as f:
        for lineno, line in enumerate(f, start=1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            fields = [x.strip() for x in line.split(sep, maxsplit)] if sep else line.split(None, maxsplit)
            if len(fields) < min_fields:
                raise DataFileError(
                    f"{path}, line {lineno}: expected {min_fields} fields, got {line!r}. "
                    "The file is damaged or not the official one; re-download the dataset."
                )
            rows.append((lineno, fields))
    return rows


def whole_numbers(values, path: Path, what: str) -> np.ndarray:
    """``values`` (ids or labels read from a dataset's file) as int64; DataFileError naming the file
    where one is not a whole number (text, NaN, 2.5)."""
    try:
        array = np.asarray(values, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise DataFileError(
            f"{path}: {what} must be whole numbers, and they are not ({np.asarray(values).dtype} values); the file "
            "is damaged or not the official one: re-download the dataset"
        ) from None
    wrong = ~np.isfinite(array) | (array != np.round(array))
    if wrong.any():
        raise DataFileError(
            f"{path}: {what} must be whole numbers, and one is {array[wrong][0]}; the file is damaged or not the "
            "official one: re-download the dataset"
        )
    return array.astype(np.int64)


def parse_int(text: str, path: Path, lineno: int, what: str = "an integer") -> int:
    """``int(text)`` with a ValueError naming the file and line."""
    try:
        return int(text)
    except ValueError:
        raise DataFileError(
            f"{path}, line {lineno}: expected {what}, got {text!r}. "
            "The file is damaged or not the official one; re-download the dataset."
        ) from None


def load_mat(path: Path, keys: Sequence[str], **kwargs) -> dict:
    """Read a MATLAB file with scipy, checking that ``keys`` are present."""
    from scipy.io import loadmat

    try:
        mat = loadmat(path, **kwargs)
    except Exception as exc:  # scipy's MatReadError, or an IndexError inside it for a file cut short
        said = " ".join(str(exc).split()) or type(exc).__name__
        raise DataFileError(f"{path}: not a readable MATLAB file ({said}); re-download the dataset.") from exc
    missing = [k for k in keys if k not in mat]
    if missing:
        raise DataFileError(
            f"{path}: missing variable(s) {', '.join(missing)} (found: "
            f"{', '.join(k for k in mat if not k.startswith('__'))}); re-download the dataset."
        )
    return mat
