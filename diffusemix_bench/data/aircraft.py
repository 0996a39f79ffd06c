"""FGVC-Aircraft 2013b in its release layout (``fgvc-aircraft-2013b/data/``: images/,
variants.txt / families.txt / manufacturers.txt, images_<level>_<split>.txt).

Options: ``annotation_level`` (variant: 100 classes, family: 70, manufacturer: 30) and
``train_split``: ``trainval`` (default, as in the paper) trains on the official trainval split
minus a stratified seeded holdout that serves as val; ``train`` trains on the official train split
and validates on the official val split. test is always the official test split.
``crop_banner`` (default false, as the baselines' loaders): cut the 20 px copyright banner off the
bottom of every image, as the release's README asks.
"""

from __future__ import annotations

from pathlib import Path

from .base import DataFileError, ImageClassificationDataset, holdout_rule, read_index_file, take_holdout
from .download import fetch_archive
from .layouts import check_options, ensure_layout
from .registry import register_dataset

LEVELS = {"variant": "variants.txt", "family": "families.txt", "manufacturer": "manufacturers.txt"}
TRAIN_SPLITS = ("trainval", "train")
# The copyright banner along the bottom of every image; the release's README asks users to remove
# it. The loaders the paper's baselines come from (GuidedMixup's, SnapMix's) and torchvision's keep
# it: options.crop_banner=true cuts it off.
BANNER_PX = 20
# The release archive and its md5 (torchvision's FGVCAircraft downloads it unchecked).
URL = "https://www.robots.ox.ac.uk/~vgg/data/fgvc-aircraft/archives/fgvc-aircraft-2013b.tar.gz"
MD5 = "d4acdd33327262359767eeaa97a4f732"


def _read_split(path: Path, index: dict[str, int], class_file: Path) -> tuple[list[str], list[int]]:
    ids, targets = [], []
    for lineno, (image_id, label) in read_index_file(path, 2, maxsplit=1):
        label = label.strip()
        if label not in index:
            raise DataFileError(f"{path}, line {lineno}: class {label!r} is not listed in {class_file}")
        ids.append(image_id)
        targets.append(index[label])
    return ids, targets


@register_dataset("aircraft")
def aircraft(
    root: Path, split: str, *, download: bool, val_fraction: float, seed: int, **options
) -> ImageClassificationDataset:
    check_options("aircraft", options)  # layouts.DATASET_OPTIONS
    level = options.get("annotation_level", "variant")
    train_split = options.get("train_split", "trainval")
    crop_banner = bool(options.get("crop_banner", False))
    if split == "test":
        official = "test"
    elif train_split == "trainval":
        official = "trainval"
    else:
        official = split

    def fetch() -> None:
        fetch_archive(URL, root, MD5)

    split_file = f"data/images_{level}_{official}.txt"
    base = ensure_layout(
        "aircraft", root, ("data/images", f"data/{LEVELS[level]}", split_file), download=download, fetch=fetch
    )
    class_file = base / "data" / LEVELS[level]
    rows = read_index_file(class_file, 1, maxsplit=0)
    classes = [fields[0].strip() for _, fields in rows]
    first_seen: dict[str, int] = {}
    for lineno, fields in rows:
        seen = first_seen.setdefault(fields[0].strip(), lineno)
        if seen != lineno:  # (a second line would make a class no image is labelled with)
            raise DataFileError(
                f"{class_file}, line {lineno}: class {fields[0].strip()!r} is listed again (first on line {seen}). "
                "The file is damaged or not the official one; re-download the dataset."
            )
    ids, targets = _read_split(base / split_file, {c: i for i, c in enumerate(classes)}, class_file)
    if official == "trainval":
        ids, targets = take_holdout(ids, targets, split, val_fraction, seed)
    return ImageClassificationDataset(
        name="aircraft",
        split=split,
        classes=classes,
        targets=targets,
        paths=[base / "data" / "images" / f"{i}.jpg" for i in ids],
        root=base,
        crop_bottom=BANNER_PX if crop_banner else 0,
        info={
            "val_rule": holdout_rule(val_fraction, seed, "trainval")
            if train_split == "trainval"
            else "official val split",
            "test_rule": "official test split",
            "official_split": official,
            "annotation_level": level,
            "train_split": train_split,
            "banner": f"bottom {BANNER_PX} px cut off" if crop_banner else "kept (the baselines' loaders)",
        },
    )
