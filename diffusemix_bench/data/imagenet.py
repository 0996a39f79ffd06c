"""ImageNet-1k (ILSVRC2012) in class folders (``imagenet/train/<wnid>/``, ``imagenet/val/<wnid>/``);
classes are the sorted wnids of train/. train/val: stratified seeded holdout of the official
train split; test: the official val split. There is no automatic download."""

from __future__ import annotations

from pathlib import Path

from .base import (
    ImageClassificationDataset,
    holdout_rule,
    list_class_folders,
    list_image_files,
    take_holdout,
)
from .layouts import check_options, ensure_layout, not_found
from .registry import register_dataset


@register_dataset("imagenet")
def imagenet(
    root: Path, split: str, *, download: bool, val_fraction: float, seed: int, **options
) -> ImageClassificationDataset:
    check_options("imagenet", options, {})
    base = ensure_layout("imagenet", root, ("train", "val"), download=download, fetch=None)
    wnids = list_class_folders(base / "train")
    if not wnids:
        raise not_found("imagenet", root, f"{base / 'train'} holds no class folders")
    folder = base / ("val" if split == "test" else "train")
    if split == "test":
        val_wnids = list_class_folders(folder)
        if not val_wnids and list_image_files(folder):
            raise not_found(
                "imagenet",
                root,
                f"{folder} holds the images directly: sort ILSVRC2012_img_val into one folder per wnid",
            )
        if val_wnids != wnids:
            extra, lacking = sorted(set(val_wnids) - set(wnids)), sorted(set(wnids) - set(val_wnids))
            raise not_found(
                "imagenet",
                root,
                f"{folder} and {base / 'train'} must hold the same class folders "
                f"(only in val: {extra[:5]}, missing from val: {lacking[:5]})",
            )
    paths: list[Path] = []
    targets: list[int] = []
    for label, wnid in enumerate(wnids):
        files = list_image_files(folder / wnid)
        if not files and split != "test":  # (val/'s classes hold 50 images each: fewer is its count's note)
            archives = sorted(p.name for p in (folder / wnid).glob("*.tar"))
            raise not_found(
                "imagenet",
                root,
                f"{folder / wnid} holds no images"
                + (
                    f" ({archives[0]} there is not extracted: tar -xf it in that folder, then delete it)"
                    if archives
                    else " (every class folder of train/ holds that class's images)"
                ),
            )
        paths.extend(files)
        targets.extend([label] * len(files))
    if split != "test":
        paths, targets = take_holdout(paths, targets, split, val_fraction, seed)
    return ImageClassificationDataset(
        name="imagenet",
        split=split,
        classes=wnids,
        targets=targets,
        paths=paths,
        root=base,
        info={
            "val_rule": holdout_rule(val_fraction, seed),
            "test_rule": "official val split (the official test split has no public labels)",
            "official_split": "val" if split == "test" else "train",
            "wnids": wnids,
        },
    )
