"""Tiny-ImageNet-200 in its release layout (``tiny-imagenet-200/``: wnids.txt, words.txt,
train/<wnid>/images/, val/images/ + val/val_annotations.txt).

Classes follow sorted wnid order (the order an ImageFolder over train/ gives), named from
words.txt. train/val: stratified seeded holdout of the official train split; test: the official
labelled val split (the release's test split has no labels).
"""

from __future__ import annotations

from pathlib import Path

from .base import (
    DataFileError,
    ImageClassificationDataset,
    holdout_rule,
    list_image_files,
    read_index_file,
    take_holdout,
)
from .download import fetch_archive
from .layouts import check_options, ensure_layout, not_found
from .registry import register_dataset

URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"
MD5 = "90528d7ca1a48142e341f4ef8d21d0de"
REQUIRED = ("wnids.txt", "train", "val/images", "val/val_annotations.txt")


def read_wnid_names(path: Path, wnids: list[str]) -> list[str]:
    """Readable names for ``wnids`` from a words.txt (``<wnid><TAB><synonyms>``): the first synonym,
    with the wnid appended where two classes would share a name; wnids it lacks keep the wnid."""
    names = {}
    if path.is_file():
        for _, (wnid, text) in read_index_file(path, 2, sep="\t", maxsplit=1):
            names[wnid] = text.split(",")[0].strip() or wnid
    short = [names.get(w, w) for w in wnids]
    return [f"{n} ({w})" if short.count(n) > 1 else n for n, w in zip(short, wnids)]


@register_dataset("tinyimagenet")
def tinyimagenet(
    root: Path, split: str, *, download: bool, val_fraction: float, seed: int, **options
) -> ImageClassificationDataset:
    check_options("tinyimagenet", options, {})

    def fetch() -> None:
        fetch_archive(URL, root, MD5)

    base = ensure_layout("tinyimagenet", root, REQUIRED, download=download, fetch=fetch)
    wnid_file = base / "wnids.txt"
    wnids = sorted({fields[0] for _, fields in read_index_file(wnid_file, 1)})
    index = {w: i for i, w in enumerate(wnids)}

    paths: list[Path] = []
    targets: list[int] = []
    if split == "test":
        ann = base / "val" / "val_annotations.txt"
        for lineno, fields in read_index_file(ann, 2, sep="\t"):
            if fields[1] not in index:
                raise DataFileError(f"{ann}, line {lineno}: wnid {fields[1]!r} is not listed in {wnid_file}")
            paths.append(base / "val" / "images" / fields[0])
            targets.append(index[fields[1]])
    else:
        for wnid in wnids:
            folder = base / "train" / wnid / "images"
            if not folder.is_dir():
                raise not_found("tinyimagenet", root, f"missing {folder} (listed in {wnid_file})")
            files = list_image_files(folder)
            if not files:
                raise not_found(
                    "tinyimagenet", root, f"{folder} holds no images (class {wnid} of {wnid_file})"
                )
            paths.extend(files)
            targets.extend([index[wnid]] * len(files))
        paths, targets = take_holdout(paths, targets, split, val_fraction, seed)
    return ImageClassificationDataset(
        name="tinyimagenet",
        split=split,
        classes=read_wnid_names(base / "words.txt", wnids),
        targets=targets,
        paths=paths,
        root=base,
        info={
            "val_rule": holdout_rule(val_fraction, seed),
            "test_rule": "official val split (the official test split has no labels)",
            "official_split": "val" if split == "test" else "train",
            "wnids": wnids,
        },
    )
