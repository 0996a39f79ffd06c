"""CIFAR-100 from the python release (``cifar-100-python/{train,test,meta}`` pickles); val is a
stratified seeded holdout of train, test is the official test set.

The pickles are read with a restricted unpickler that only rebuilds numpy arrays and plain
containers, so a tampered file cannot run code.
"""

from __future__ import annotations

import codecs
import pickle
from pathlib import Path

import numpy as np

from ..errors import UserError
from .base import DataFileError, ImageClassificationDataset, holdout_indices, holdout_rule, whole_numbers
from .download import fetch_archive
from .layouts import check_options, ensure_layout
from .registry import register_dataset

URL = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
MD5 = "eb9058c3a382ffc7106e4002c42a8d85"
FILES = ("train", "test", "meta")


class RefusedGlobalError(UserError, pickle.UnpicklingError):
    """A pickle referenced a global outside the allow-list."""


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    # Protocol-2 pickles written by Python 3 store bytes as _codecs.encode(text, "latin1");
    # only that codec is honoured.
    if encoding.replace("-", "").lower() != "latin1":
        raise RefusedGlobalError(f"refusing _codecs.encode with encoding {encoding!r} (only latin1)")
    return codecs.encode(text, "latin1")


def _allowed_globals() -> dict[tuple[str, str], object]:
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct
    allowed: dict[tuple[str, str], object] = {
        ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _latin1_encode,
    }
    # Python 2 pickles (and protocol 2 written by Python 3) name the builtins module __builtin__.
    for module in ("builtins", "__builtin__"):
        for container in (set, frozenset, bytearray):
            allowed[(module, container.__name__)] = container
    return allowed


_ALLOWED = _allowed_globals()


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only numpy array reconstruction and plain container globals."""

    def find_class(self, module: str, name: str) -> object:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise RefusedGlobalError(
                f"refusing to load global '{module}.{name}': CIFAR pickles only hold numpy arrays, "
                "lists, dicts and strings, so this file is not a genuine CIFAR-100 release file"
            ) from None


def load_pickle(path: Path) -> object:
    """Unpickle ``path`` with ``RestrictedUnpickler`` (latin1, as the Python 2 release needs).

    Raises ``RefusedGlobalError`` (a ``pickle.UnpicklingError``) for a disallowed global and
    ValueError for a truncated or otherwise unreadable file.
    """
    with open(path, "rb") as f:
        try:
            return RestrictedUnpickler(f, encoding="latin1").load()
        except RefusedGlobalError as exc:
            raise RefusedGlobalError(f"{path}: {exc}") from None
        except Exception as exc:  # noqa: BLE001  (garbage makes the unpickler raise any type: all mean "unreadable")
            raise DataFileError(
                f"{path}: not a readable CIFAR pickle ({type(exc).__name__}: {exc}); "
                "delete cifar-100-python/ and download it again"
            ) from exc


def _read_batch(path: Path) -> tuple[np.ndarray, list[int]]:
    batch = load_pickle(path)
    if not isinstance(batch, dict) or "data" not in batch or "fine_labels" not in batch:
        raise DataFileError(f"{path}: expected a dict with 'data' and 'fine_labels'; re-download the dataset")
    data, labels = batch["data"], whole_numbers(batch["fine_labels"], path, "'fine_labels'").tolist()
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise DataFileError(f"{path}: 'data' must be an N x 3072 uint8 array; re-download the dataset")
    if len(labels) != len(data):
        raise DataFileError(f"{path}: {len(data)} images but {len(labels)} fine_labels")
    # Rows are the R plane, then G, then B, each 32x32 in row-major order.
    images = np.ascontiguousarray(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    return images, labels


def _read_classes(path: Path) -> list[str]:
    meta = load_pickle(path)
    if not isinstance(meta, dict) or "fine_label_names" not in meta:
        raise DataFileError(f"{path}: expected a dict with 'fine_label_names'; re-download the dataset")
    return [str(x) for x in meta["fine_label_names"]]


@register_dataset("cifar100")
def cifar100(
    root: Path, split: str, *, download: bool, val_fraction: float, seed: int, **options
) -> ImageClassificationDataset:
    check_options("cifar100", options, {})

    def fetch() -> None:
        fetch_archive(URL, root, MD5)

    base = ensure_layout("cifar100", root, FILES, download=download, fetch=fetch)
    classes = _read_classes(base / "meta")
    if split == "test":
        images, targets = _read_batch(base / "test")
    else:
        images, targets = _read_batch(base / "train")
        indices = holdout_indices(targets, split, val_fraction, seed)
        images, targets = images[indices], [targets[i] for i in indices]
    info = {
        "val_rule": holdout_rule(val_fraction, seed),
        "test_rule": "official test set",
        "official_split": "test" if split == "test" else "train",
    }
    return ImageClassificationDataset(
        name="cifar100", split=split, classes=classes, targets=targets, array=images, root=base, info=info
    )
