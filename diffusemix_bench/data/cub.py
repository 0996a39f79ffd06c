"""CUB-200-2011 in its release layout (``CUB_200_2011/``: images.txt, image_class_labels.txt,
train_test_split.txt, classes.txt, images/); train/val: stratified seeded holdout of the official
train split, test: the official test split."""

from __future__ import annotations

import re
from pathlib import Path

from .base import (
    DataFileError,
    ImageClassificationDataset,
    holdout_rule,
    parse_int,
    read_index_file,
    take_holdout,
)
from .download import fetch_archive
from .layouts import check_options, ensure_layout
from .registry import register_dataset

URL = "https://data.caltech.edu/records/65de6-vp158/files/CUB_200_2011.tgz"
MD5 = "97eceeb196236b17998738112f37df78"
REQUIRED = ("images.txt", "image_class_labels.txt", "train_test_split.txt", "classes.txt", "images")


def _id_table(path: Path, choices: range | None = None) -> dict[int, str | int]:
    """``<id> <value>`` lines as a dict, refusing duplicate ids; with ``choices`` the values are
    integers that must lie in it."""
    table: dict[int, str | int] = {}
    for lineno, (key, value) in read_index_file(path, 2, maxsplit=1):
        image_id = parse_int(key, path, lineno, "a numeric id")
        if image_id in table:
            raise DataFileError(f"{path}, line {lineno}: id {image_id} appears twice")
        if choices is None:
            table[image_id] = value.strip()
            continue
        number = parse_int(value.strip(), path, lineno)
        if number not in choices:
            raise DataFileError(
                f"{path}, line {lineno}: {number} is outside {choices.start}..{choices.stop - 1}"
            )
        table[image_id] = number
    return table


def _readable(folder_name: str) -> str:
    # "001.Black_footed_Albatross" -> "Black footed Albatross"
    return re.sub(r"^\d+\.", "", folder_name).replace("_", " ")


@register_dataset("cub")
def cub(
    root: Path, split: str, *, download: bool, val_fraction: float, seed: int, **options
) -> ImageClassificationDataset:
    check_options("cub", options, {})

    def fetch() -> None:
        fetch_archive(URL, root, MD5)

    base = ensure_layout("cub", root, REQUIRED, download=download, fetch=fetch)
    class_table = _id_table(base / "classes.txt")
    class_ids = sorted(class_table)
    if class_ids != list(range(1, len(class_ids) + 1)):
        raise DataFileError(f"{base / 'classes.txt'}: class ids must run 1..N without gaps")
    images = _id_table(base / "images.txt")
    labels = _id_table(base / "image_class_labels.txt", range(1, len(class_ids) + 1))
    is_train = _id_table(base / "train_test_split.txt", range(2))

    want_train = split != "test"
    paths: list[Path] = []
    targets: list[int] = []
    for image_id in sorted(images):
        for table, file in ((labels, "image_class_labels.txt"), (is_train, "train_test_split.txt")):
            if image_id not in table:
                raise DataFileError(f"{base / file}: no line for image id {image_id} of images.txt")
        if bool(is_train[image_id]) == want_train:
            paths.append(base / "images" / images[image_id])
            targets.append(labels[image_id] - 1)
    if want_train:
        paths, targets = take_holdout(paths, targets, split, val_fraction, seed)
    return ImageClassificationDataset(
        name="cub",
        split=split,
        classes=[_readable(class_table[i]) for i in class_ids],
        targets=targets,
        paths=paths,
        root=base,
        info={
            "val_rule": holdout_rule(val_fraction, seed),
            "test_rule": "official test split (train_test_split.txt is_train=0)",
            "official_split": "train" if want_train else "test",
        },
    )
