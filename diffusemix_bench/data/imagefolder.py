"""Any dataset stored as ``<root>/train/<class>/*`` with optional ``val/<class>/*`` and
``test/<class>/*`` (``root`` is the dataset folder itself). Classes are the sorted folder names of
train/; without val/ the val split is a stratified seeded holdout of train; without test/ asking
for test raises SplitNotAvailableError."""

from __future__ import annotations

import logging
import os
import unicodedata
from pathlib import Path

from ..errors import ConfigError, UserError
from .base import (
    IMAGE_EXTENSIONS,
    ImageClassificationDataset,
    SplitNotAvailableError,
    holdout_rule,
    holdout_share,
    list_class_folders,
    scan_image_files,
    take_holdout,
    warn_links_not_followed,
)
from .layouts import DATASET_LAYOUTS, check_options, require_layout
from .registry import register_dataset

log = logging.getLogger(__name__)


class ImageFolderError(UserError, ValueError):
    """An image folder that exists but does not hold a usable dataset: the message names the
    folder, what is wrong and the layout expected."""

    def __init__(self, root: Path, detail: str) -> None:
        layout = DATASET_LAYOUTS["imagefolder"]["layout"]
        super().__init__(f"image folder {Path(root).absolute()}: {detail}. Expected layout:\n{layout}")


def _read_split(
    root: Path, folder: Path, classes: list[str], quiet: bool = False
) -> tuple[list[Path], list[int], dict]:
    """Paths and labels of one split folder, and what was noticed: files that are not images, class
    folders without an image and linked folders not followed (logged as warnings, recorded in the
    split's info; ``quiet``:
    neither, for a folder another split reports, as train/ read again for a held-out val split)."""
    # A name is the same class in either Unicode form (é as one code point or as e and an accent: a
    # folder copied from macOS), which print alike.
    nfc = {unicodedata.normalize("NFC", c): i for i, c in enumerate(classes)}
    names = list_class_folders(folder)
    index = {c: nfc[unicodedata.normalize("NFC", c)] for c in names if unicodedata.normalize("NFC", c) in nfc}
    unknown = [c for c in names if c not in index]
    if unknown:
        raise ImageFolderError(
            root,
            f"{folder} has class folder(s) {', '.join(unknown[:5])} that train/ lacks; "
            "val/ and test/ may only use classes of train/",
        )
    paths: list[Path] = []
    targets: list[int] = []
    # Files beside the class folders belong to no class: skipped and counted like the others.
    beside = sorted(Path(e.path) for e in os.scandir(folder) if e.is_file() and not e.name.startswith("."))
    # (images there belong to no class; other files are skipped as any file that is not an image)
    loose = [f for f in beside if f.suffix.lower() in IMAGE_EXTENSIONS]
    skipped: list[Path] = [f for f in beside if f.suffix.lower() not in IMAGE_EXTENSIONS]
    empty: list[str] = []
    links: list[Path] = []
    for name in names:
        files, others, not_followed = scan_image_files(folder / name)
        paths.extend(files)
        targets.extend([index[name]] * len(files))
        skipped.extend(others)
        links.extend(not_followed)
        if not files:
            empty.append(name)
    # Hidden folders beside the class folders are never classes (.ipynb_checkpoints, .Trash): said,
    # since one holding images (a class folder renamed by mistake) would otherwise go unnoticed.
    hidden = sorted(e.name for e in os.scandir(folder) if e.is_dir() and e.name.startswith("."))
    if quiet:
        loose, skipped, empty, links, hidden = [], [], [], [], []
    if hidden:
        log.warning(
            "%s: hidden folder(s) left out, never classes: %s",
            folder,
            ", ".join(hidden[:5]) + (", ..." if len(hidden) > 5 else ""),
        )
    warn_links_not_followed(links)
    if loose:
        log.warning(
            "%s: %d image(s) beside the class folders belong to no class and were skipped (e.g. %s): put each "
            "image in its class's folder (%s/<class>/)",
            folder,
            len(loose),
            loose[0].name,
            folder,
        )
    if skipped:
        log.warning(
            "%s: %d file(s) that are not images were skipped (e.g. %s); accepted extensions: %s",
            folder,
            len(skipped),
            skipped[0].name,
            ", ".join(sorted(IMAGE_EXTENSIONS)),
        )
    if empty and folder.name != "train":  # (train/'s are refused, with their names: said once)
        log.warning("%s: class folder(s) without images: %s", folder, ", ".join(empty[:10]))
    notes = {
        "skipped_files": len(skipped) + len(loose),
        "empty_class_folders": empty,
        "links_not_followed": [str(p) for p in links],
        "hidden_folders": hidden,
    }
    if not paths:
        raise ImageFolderError(
            root,
            f"no images under {folder}/<class>/ (accepted extensions: {', '.join(sorted(IMAGE_EXTENSIONS))})",
        )
    return paths, targets, notes


def _check_holdout(
    root: Path, base: Path, classes: list[str], targets: list[int], split: str, val_fraction: float
) -> None:
    """A validation split held out of a small train/: refused where it would be empty (every
    class one image: a class's only image is never held out), said where small classes make it a
    larger share than ``val_fraction`` or leave classes out of it."""
    if val_fraction == 0:
        return
    from collections import Counter

    per_class = Counter(targets)
    counts = [per_class[c] for c in range(len(classes))]
    if all(n < 2 for n in counts):
        raise ImageFolderError(
            root,
            f"no validation images: without {base / 'val'} the validation split is held out of train/, and "
            f"every class there has one image, which is never held out (a class needs it to train). Add "
            f"{base / 'val'}/<class>/ images, more images per class, or give dataset.val_fraction=0 (train on "
            "all of train/, the last epoch reported; to generate.py and train.py alike: it is part of the edits' "
            "settings)",
        )
    if split != "train":  # (said once, as the training split is read)
        return
    share = holdout_share(targets, val_fraction)
    if share is not None:
        log.warning(
            "%s: the validation split held out of train/ takes %d of its %d images (%.0f%%), not "
            "dataset.val_fraction=%g: each class of two or more images gives at least one. Add %s/<class>/ "
            "images to validate on those instead",
            base / "train",
            *share,
            100 * share[0] / share[1],
            val_fraction,
            base / "val",
        )
    single = [classes[c] for c, n in enumerate(counts) if n == 1]
    if single:
        log.warning(
            "%s: %d class(es) with one image (%s%s), which the validation split held out of train/ lacks",
            base / "train",
            len(single),
            ", ".join(single[:5]),
            ", ..." if len(single) > 5 else "",
        )


@register_dataset("imagefolder")
def imagefolder(
    root: Path, split: str, *, download: bool, val_fraction: float, seed: int, **options
) -> ImageClassificationDataset:
    check_options("imagefolder", options, {})
    if download:
        raise ConfigError(
            "dataset.download=true: an image folder (dataset=imagefolder) is yours and cannot be downloaded; "
            "set dataset.download=false and dataset.root=<the folder that holds train/>"
        )
    base = require_layout("imagefolder", root, ("train",))
    classes = list_class_folders(base / "train")
    if not classes:
        raise ImageFolderError(root, f"{base / 'train'} holds no class folders")
    forms: dict[str, list[str]] = {}
    for name in classes:
        forms.setdefault(unicodedata.normalize("NFC", name), []).append(name)
    alike = next((names for names in forms.values() if len(names) > 1), None)
    if alike is not None:
        raise ImageFolderError(
            root,
            f"{base / 'train'} holds {len(alike)} class folders named {unicodedata.normalize('NFC', alike[0])} (the same letters written in two "
            f"Unicode forms, {' and '.join(ascii(n) for n in alike)}: a copy from another system): put their images "
            "in one folder",
        )
    if len(classes) == 1:
        raise ImageFolderError(
            root,
            f"{base / 'train'} holds one class folder ({classes[0]}): a classifier needs at least two "
            "classes, a folder of images each",
        )
    has_val = (base / "val").is_dir()
    if split == "test" and not (base / "test").is_dir():
        raise SplitNotAvailableError(
            f"image folder {base} has no test/ folder, so there is no test split; add "
            f"{base / 'test'}/<class>/ images, or report the val split alone (the run's val_top1; attacks "
            "with eval.split=val)"
        )
    source = split if split == "test" or (split == "val" and has_val) else "train"
    # A held-out val split reads train/ again: what train/ holds is the train split's to report.
    paths, targets, notes = _read_split(
        root, base / source, classes, quiet=split == "val" and source == "train"
    )
    if source == "train":
        empty = sorted(set(classes) - {classes[t] for t in set(targets)})
        if empty:
            raise ImageFolderError(root, f"class folder(s) {', '.join(empty[:5])} of train/ hold no images")
        if not has_val:
            all_targets = list(targets)
            _check_holdout(root, base, classes, all_targets, split, val_fraction)
            paths, targets = take_holdout(paths, targets, split, val_fraction, seed)
    else:
        # val/ or test/ without some of train/'s classes: its accuracy is over the others alone.
        absent = sorted(set(classes) - {classes[t] for t in set(targets)} - set(notes["empty_class_folders"]))
        if absent:
            log.warning(
                "%s has no folder for %d of train/'s %d classes (%s%s): its accuracy counts the others alone",
                base / source,
                len(absent),
                len(classes),
                ", ".join(absent[:5]),
                ", ..." if len(absent) > 5 else "",
            )
        notes["classes_absent"] = absent
    return ImageClassificationDataset(
        name="imagefolder",
        split=split,
        classes=classes,
        targets=targets,
        paths=paths,
        root=base,
        info={
            "val_rule": "val/ folder"
            if has_val
            else holdout_rule(val_fraction, seed, targets=all_targets if source == "train" else None),
            "test_rule": "test/ folder",
            "official_split": source,
            **notes,
        },
    )
