"""Stanford Cars in torchvision's layout (``stanford_cars/``: devkit/cars_meta.mat,
devkit/cars_train_annos.mat, cars_test_annos_withlabels.mat, cars_train/, cars_test/);
train/val: stratified seeded holdout of the official train split, test: the official test split.
The original download URL is dead, so there is no automatic download."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import (
    DataFileError,
    ImageClassificationDataset,
    holdout_rule,
    load_mat,
    take_holdout,
    whole_numbers,
)
from .layouts import check_options, ensure_layout
from .registry import register_dataset

META = "devkit/cars_meta.mat"
ANNOTATIONS = {"train": "devkit/cars_train_annos.mat", "test": "cars_test_annos_withlabels.mat"}
IMAGE_DIRS = {"train": "cars_train", "test": "cars_test"}
REQUIRED = (META, *ANNOTATIONS.values(), *IMAGE_DIRS.values())


def _annotations(path: Path, num_classes: int) -> tuple[list[str], list[int]]:
    annos = np.atleast_1d(load_mat(path, ["annotations"], squeeze_me=True)["annotations"])
    if annos.dtype.names is None or not {"fname", "class"} <= set(annos.dtype.names):
        raise DataFileError(
            f"{path}: 'annotations' must be a struct array with fields fname and class "
            "(the test file must be cars_test_annos_withlabels.mat, not cars_test_annos.mat)"
        )
    fnames = [str(x) for x in annos["fname"]]
    labels = whole_numbers(annos["class"], path, "the annotations' classes").tolist()
    bad = [(f, c) for f, c in zip(fnames, labels) if not 1 <= c <= num_classes]
    if bad:
        raise DataFileError(f"{path}: {bad[0][0]} has class {bad[0][1]}, expected 1..{num_classes}")
    return fnames, [c - 1 for c in labels]


@register_dataset("cars")
def cars(
    root: Path, split: str, *, download: bool, val_fraction: float, seed: int, **options
) -> ImageClassificationDataset:
    check_options("cars", options, {})
    base = ensure_layout("cars", root, REQUIRED, download=download, fetch=None)
    classes = [
        str(x) for x in np.atleast_1d(load_mat(base / META, ["class_names"], squeeze_me=True)["class_names"])
    ]
    official = "test" if split == "test" else "train"
    fnames, targets = _annotations(base / ANNOTATIONS[official], len(classes))
    paths = [base / IMAGE_DIRS[official] / f for f in fnames]
    if official == "train":
        paths, targets = take_holdout(paths, targets, split, val_fraction, seed)
    return ImageClassificationDataset(
        name="cars",
        split=split,
        classes=classes,
        targets=targets,
        paths=paths,
        root=base,
        info={
            "val_rule": holdout_rule(val_fraction, seed),
            "test_rule": "official test split (cars_test_annos_withlabels.mat)",
            "official_split": official,
        },
    )
