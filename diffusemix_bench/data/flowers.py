"""Oxford Flowers-102 in torchvision's layout (``flowers-102/``: jpg/image_XXXXX.jpg,
imagelabels.mat, setid.mat); train, val and test are the official splits (trnid, valid, tstid).
Class names come from torchvision's Flowers102 list when it matches, else the 1-based label."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import DataFileError, ImageClassificationDataset, load_mat, whole_numbers
from .download import fetch_archive, fetch_file
from .layouts import check_options, ensure_layout
from .registry import register_dataset

REQUIRED = ("jpg", "imagelabels.mat", "setid.mat")
# The published files and their md5 (as torchvision's Flowers102 lists them).
URL = "https://www.robots.ox.ac.uk/~vgg/data/flowers/102/"
FILES = {
    "102flowers.tgz": "52808999861908f626f3c1f4e79d11fa",
    "imagelabels.mat": "e0620be6f572b9609742df49c70aed4d",
    "setid.mat": "a5357ecc9cb78c4bef273ce3793fc85c",
}
SPLIT_KEYS = {"train": "trnid", "val": "valid", "test": "tstid"}


def _class_names(num_classes: int) -> list[str]:
    try:
        from torchvision.datasets import Flowers102

        names = list(Flowers102.classes)
    except (ImportError, AttributeError):
        names = []
    if len(names) >= num_classes:
        return names[:num_classes]
    return [str(k) for k in range(1, num_classes + 1)]


@register_dataset("flowers102")
def flowers102(
    root: Path, split: str, *, download: bool, val_fraction: float, seed: int, **options
) -> ImageClassificationDataset:
    check_options("flowers102", options, {})

    def fetch() -> None:
        folder = root / "flowers-102"
        # The small label files first, and the images' archive extracted only where jpg/ is not
        # there yet: an attempt stopped after either goes on with what is missing.
        for name, md5 in FILES.items():
            if name.endswith(".mat"):
                fetch_file(URL + name, folder, md5)
        jpg = folder / "jpg"
        if jpg.is_dir():  # there already: whole only if it holds an image per label
            labelled = np.asarray(load_mat(folder / "imagelabels.mat", ["labels"])["labels"]).size
            found = sum(1 for _ in jpg.glob("image_*.jpg"))
            if found < labelled:
                raise DataFileError(
                    f"{jpg} holds {found} of the {labelled} images imagelabels.mat labels (an earlier "
                    "download cut short?): delete it (or move it away) and run again to extract them"
                )
        fetch_archive(URL + "102flowers.tgz", folder, FILES["102flowers.tgz"], provides=("jpg",))

    base = ensure_layout("flowers102", root, REQUIRED, download=download, fetch=fetch)
    label_file, setid_file = base / "imagelabels.mat", base / "setid.mat"
    labels = whole_numbers(load_mat(label_file, ["labels"])["labels"], label_file, "its labels")
    ids = whole_numbers(
        load_mat(setid_file, list(SPLIT_KEYS.values()))[SPLIT_KEYS[split]],
        setid_file,
        f"{SPLIT_KEYS[split]}'s ids",
    )
    if labels.size == 0 or labels.min() < 1:
        raise DataFileError(f"{label_file}: labels must be 1-based class numbers; re-download the dataset")
    bad = ids[(ids < 1) | (ids > labels.size)]
    if bad.size:
        raise DataFileError(
            f"{setid_file}: {SPLIT_KEYS[split]} holds image id {bad[0]} but {label_file} labels "
            f"only {labels.size} images; re-download the dataset"
        )
    return ImageClassificationDataset(
        name="flowers102",
        split=split,
        classes=_class_names(int(labels.max())),
        targets=(labels[ids - 1] - 1).tolist(),
        paths=[base / "jpg" / f"image_{i:05d}.jpg" for i in ids.tolist()],
        root=base,
        info={
            "val_rule": "official val split (setid.mat valid)",
            "test_rule": "official test split (setid.mat tstid)",
            "official_split": split,
        },
    )
