"""Read the train/val/test splits a dataset config names (light imports: runs before training
starts, so missing data is reported at once)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from ..config import DatasetConfig
from ..files import write_atomic
from . import readers  # noqa: F401  (registration)
from .base import DataFileError, ImageClassificationDataset, SplitNotAvailableError, per_class_subset
from .layouts import dataset_root
from .registry import create_dataset

log = logging.getLogger(__name__)


@dataclass
class Splits:
    train: ImageClassificationDataset
    val: ImageClassificationDataset
    test: ImageClassificationDataset | None


ON_BAD_IMAGE = ("error", "skip")


def verify_splits(
    splits: Splits,
    cache_dir: str | Path,
    on_bad_image: str = "error",
    names: tuple[str, ...] = ("train", "val", "test"),
    quiet: bool = False,
) -> dict[str, list[str]]:
    """Decode every image file of each split (of ``names``) once (results cached per file by size
    and mtime); return the corrupt or missing files per split. ``error`` stops at the first split
    with any, naming them; ``skip`` leaves them out of their split (the caller records them; said
    in a warning unless ``quiet``)."""
    import hashlib
    import json

    from ..errors import ConfigError
    from ..progress import plain_progress
    from .base import CorruptImageError, load_rgb

    if on_bad_image not in ON_BAD_IMAGE:
        raise ConfigError(f"dataset.on_bad_image must be one of {list(ON_BAD_IMAGE)}, got '{on_bad_image}'")
    bad: dict[str, list[str]] = {}
    for name in names:
        ds = getattr(splits, name)
        if ds is None or not ds.paths:
            continue
        key = hashlib.sha256(str(Path(ds.paths[0]).parent.parent.resolve()).encode()).hexdigest()[:16]
        cache_file = Path(cache_dir).expanduser() / f"{ds.name}-{name}-{key}.json"
        try:
            cache = json.loads(cache_file.read_text()) if cache_file.is_file() else {}
        except json.JSONDecodeError:
            cache = {}
        found = []
        for path in plain_progress(ds.paths, f"verifying {ds.name}/{name} images"):
            try:
                st = Path(path).stat()
            except OSError:  # not there (a dangling link, a file the listing names): as corrupt
                found.append(str(path))
                continue
            stamp = f"{st.st_size}:{st.st_mtime_ns}"
            entry = cache.get(str(path))
            if entry is None or entry[0] != stamp:
                try:
                    load_rgb(path)
                    entry = [stamp, True]
                except CorruptImageError:
                    entry = [stamp, False]
                cache[str(path)] = entry
            if not entry[1]:
                found.append(str(path))
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(cache_file, json.dumps(cache))
        if found:
            if on_bad_image == "error":
                raise CorruptImageError(
                    f"{len(found)} image file(s) of {ds.name}/{name} are missing or cannot be decoded "
                    f"(first: {found[0]}); "
                    "replace them with good copies (for a published dataset: download them again), or add "
                    "dataset.on_bad_image=skip to train without them "
                    "(they are then counted in metrics.json and listed in the run folder)"
                )
            corrupt = set(found)
            keep = [i for i, p in enumerate(ds.paths) if str(p) not in corrupt]
            if not keep:  # (skipped, they would leave a split of nothing)
                raise CorruptImageError(
                    f"every one of the {len(found)} image file(s) of {ds.name}/{name} is missing or cannot be decoded "
                    f"(first: {found[0]}), so dataset.on_bad_image=skip would leave the split empty: replace them "
                    "with good copies (for a published dataset: download them again)"
                )
            setattr(splits, name, ds.subset(keep))
            # A class whose every image of the split was skipped: the split's numbers leave it out.
            emptied = sorted({ds.targets[i] for i in range(len(ds.paths))} - {ds.targets[i] for i in keep})
            if emptied and not quiet:  # (a check's copy of the splits is quiet: said once)
                names_ = [str(ds.classes[t]) for t in emptied]
                log.warning(
                    "%s/%s: class(es) %s have no image left in the split once the corrupt ones are skipped: "
                    "the %s split's numbers are over the other classes%s; replace the files with good copies "
                    "to count them",
                    ds.name,
                    name,
                    ", ".join(names_[:5]) + (f" and {len(names_) - 5} more" if len(names_) > 5 else ""),
                    name,
                    " (and the model never sees them in training)" if name == "train" else "",
                )
            if not quiet:
                log.warning(
                    "%s/%s: %d corrupt image(s) skipped (dataset.on_bad_image=skip; first: %s)",
                    ds.name,
                    name,
                    len(found),
                    found[0],
                )
            bad[name] = found
    return bad


def verify_as_asked(
    splits: Splits,
    dataset_cfg,
    cache_dir: str | Path,
    names: tuple[str, ...] = ("train", "val", "test"),
    quiet: bool = False,
) -> dict[str, list[str]]:
    """The one rule every entry point follows: with ``dataset.verify=true`` or
    ``dataset.on_bad_image=skip`` the splits of ``names`` are verified (bad files named, or left
    out of ``splits`` and returned); otherwise nothing is checked here and a bad file is met when it
    is read. ``cache_dir`` is ``paths.cache_dir``."""
    on_bad = str(dataset_cfg.get("on_bad_image") or "error")
    if on_bad != "skip" and not dataset_cfg.get("verify"):
        return {}
    return verify_splits(splits, Path(cache_dir) / "verified", on_bad, names, quiet)


def build_splits(
    cfg: DatasetConfig, data_dir: str | Path, read: tuple[str, ...] = ("train", "val", "test")
) -> Splits:
    """Download if asked, then read every split; ``test`` is None where the dataset has none.
    ``samples_per_class`` keeps that many seeded training images per class. The images of the
    splits ``read`` names (those the caller reads) are looked for (check_images_there)."""
    checked = read
    root = dataset_root(cfg, data_dir)

    def read(split: str, download: bool = False) -> ImageClassificationDataset:
        return create_dataset(
            cfg.name,
            root,
            split,
            download=download,
            val_fraction=cfg.val_fraction,
            seed=cfg.split_seed,
            **dict(cfg.options),
        )

    train = read("train", download=cfg.download)
    val = read("val")
    try:
        test = read("test")
    except SplitNotAvailableError as exc:
        log.warning("No test split: %s", exc)
        test = None
    compare_with_release(cfg.name, [d for d in (train, val, test) if d is not None])
    check_splits_apart({"train": train, "val": val, "test": test})
    if cfg.samples_per_class is not None:  # (after the comparison: a chosen shortening)
        train = train.subset(
            per_class_subset(train.targets, cfg.samples_per_class, cfg.split_seed, train.classes)
        )
    if str(getattr(cfg, "on_bad_image", None) or "error") != "skip":  # (skip: verification lists them)
        for name, split in (("train", train), ("val", val), ("test", test)):
            if split is not None and name in checked:
                check_images_there(split)
    return Splits(train, val, test)


def check_splits_apart(splits: dict[str, ImageClassificationDataset | None]) -> None:
    """No image in two splits (a split file listing another split's images: its model would be
    tested on images it trained on); DataFileError naming both and the first image."""
    owner: dict[str, set[str]] = {}
    for name, split in splits.items():
        if split is None or split.paths is None:
            continue
        here = {str(p) for p in split.paths}
        for other, seen in owner.items():
            shared = here & seen
            if shared:
                raise DataFileError(
                    f"{split.name}/{other} and {split.name}/{name} share {len(shared)} image(s) (the first: "
                    f"{min(shared)}): a model would be measured on images it trained on; the files that list the "
                    "splits are damaged or not the official ones: re-download the dataset"
                )
        owner[name] = here


#: Images in each official split of the published releases (the readers' ``official_split``).
RELEASE_SIZES = {
    "cifar100": {"train": 50_000, "test": 10_000},
    "tinyimagenet": {"train": 100_000, "val": 10_000},
    "imagenet": {"train": 1_281_167, "val": 50_000},
    "cub": {"train": 5_994, "test": 5_794},
    "cars": {"train": 8_144, "test": 8_041},
    "aircraft": {"trainval": 6_667, "train": 3_334, "val": 3_333, "test": 3_333},
    "flowers102": {"train": 1_020, "val": 1_020, "test": 6_149},
}


def compare_with_release(name: str, datasets: list[ImageClassificationDataset]) -> None:
    """An official split whose files list another number of images than the published release
    (a list file cut short, a copy of another release, a subset made by hand) is said in one
    warning and recorded in each of its datasets' ``info`` (metrics.json's data_notes): numbers
    measured on it are not comparable with the paper's. A split held out of another counts with it."""
    release = RELEASE_SIZES.get(name)
    if release is None:
        return
    counts: dict[str, int] = {}
    for dataset in datasets:
        official = dataset.info.get("official_split")
        counts[official] = counts.get(official, 0) + len(dataset)
    for official, here in counts.items():
        published = release.get(official)
        if published is None or here == published:
            continue
        note = (
            f"{here:,} images of the official {official} split here, {published:,} in the published release"
        )
        log.warning(
            "%s: %s (a list file cut short, a copy of another release, or a subset?): its numbers are not "
            "comparable with the paper's",
            name,
            note,
        )
        for dataset in datasets:
            if dataset.info.get("official_split") == official:
                dataset.info["differs_from_release"] = note


def check_images_there(dataset: ImageClassificationDataset, whole: int = 20_000, sample: int = 1_000) -> None:
    """Images a split lists that are not on disk (an archive extracted part way, the images a
    folder deeper than the layout) named before anything is built, not when a batch first reads
    one: every path of a split of up to ``whole`` images is looked for (the fine-grained sets,
    Flowers-102, Tiny-ImageNet's test: milliseconds on a local disk), ``sample`` paths spread over
    a larger one (ImageNet's training split), and all of them counted where one is missing."""
    import os

    paths = dataset.paths
    if not paths:
        return
    n = len(paths)
    m = n if n <= whole else min(n, sample)
    picks = sorted({round(k * (n - 1) / max(1, m - 1)) for k in range(m)})
    if all(os.path.exists(paths[k]) for k in picks):
        return
    missing = [p for p in paths if not os.path.exists(p)]
    first = Path(missing[0])
    nested = first.parent / first.parent.name / first.name
    if first.is_symlink():
        fix = f" (a link to {os.readlink(first)}, which does not exist): mend the links"
    elif nested.exists():
        fix = f": the images are a folder deeper ({nested} is there): move them up into {first.parent}"
    elif (other_case := _named_in_another_case(first)) is not None:
        fix = (
            f": the files' names differ in case from the list's ({other_case} is there for {first.name}): give "
            "them the names the list gives"
        )
    elif (elsewhere := _found_elsewhere(dataset.root, first.name)) is not None:
        fix = (
            f": {elsewhere} is there, not {first}: the dataset's files have been moved from its layout; extract "
            "it again (its files list the images where the archive puts them)"
        )
    else:
        fix = (
            ": an archive extracted part way? Extract the dataset again (or delete it and download it "
            "with dataset.download=true where it can)"
        )
    raise DataFileError(
        f"{dataset.name}/{dataset.split}: {len(missing)} of the {n} images its files list are not there (the "
        f"first: {first}){fix}, or leave missing images out with "
        "dataset.on_bad_image=skip"
    )


def _named_in_another_case(path: Path) -> Path | None:
    """The file beside ``path`` whose name is ``path``'s in another case (``1.JPG`` for ``1.jpg``)."""
    try:
        with os.scandir(path.parent) as entries:
            return next((Path(e.path) for e in entries if e.name.lower() == path.name.lower()), None)
    except OSError:
        return None


def _found_elsewhere(root: Path | None, name: str, most: int = 2000) -> Path | None:
    """A file named ``name`` elsewhere under ``root`` (the first ``most`` folders looked in)."""
    if root is None:
        return None
    for looked, (dirpath, _, filenames) in enumerate(os.walk(root)):
        if looked >= most:
            return None
        if name in filenames:
            return Path(dirpath, name)
    return None
