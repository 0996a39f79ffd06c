"""On-disk layout and source of every dataset, shared by the readers' errors and the README table.
Imports no torch: a missing dataset is reported before the training stack is loaded."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from contextlib import contextmanager
from pathlib import Path

from ..errors import ConfigError, UserError


class DatasetNotFoundError(UserError, FileNotFoundError):
    """Raised when a dataset is missing or not laid out as expected on disk."""

    def __init__(
        self,
        name: str,
        root: Path | str,
        layout: str,
        how_to_get: str,
        detail: str = "",
        point_at: str | None = None,
    ):
        self.name = name
        self.root = Path(root)
        self.layout, self.detail = layout, detail
        # An image folder is named by dataset.root alone (paths.data_dir holds the named datasets).
        default = (
            "Point the framework at your image folder with dataset.root=<folder>."
            if name == "imagefolder"
            else POINT_AT
        )
        msg = (
            f"Dataset '{name}' not found at {self.root}"
            + (f" ({detail})" if detail else "")
            + f".\nExpected layout:\n{layout.rstrip()}\nHow to get it: {how_to_get.rstrip()}\n"
            + (point_at or default)
        )
        super().__init__(msg)

    def for_evaluate(self) -> DatasetNotFoundError:
        """The same error as evaluate.py says it: its own setting for the folder (``data_dir=``),
        and no ``dataset.download`` (a run's dataset is read as the run was trained)."""
        import re

        folder = (
            "your image folder (the one holding train/<class>/)"
            if self.name == "imagefolder"
            else "the folder that holds it"
        )
        return DatasetNotFoundError(
            self.name,
            self.root,
            self.layout.replace("<dataset.root>", "<data_dir>"),
            how_to_get(self.name, offer_download=False),
            # (the folder named as train.py's setting is evaluate.py's data_dir=)
            re.sub(r"\b(dataset\.root|paths\.data_dir)=", "data_dir=", self.detail),
            point_at=f"Point evaluate.py at {folder} with data_dir=<folder>.",
        )


#: The end of DatasetNotFoundError's message: train.py's and generate.py's settings for the folder.
POINT_AT = (
    "Point the framework at the folder that holds it with paths.data_dir=<folder> (or dataset.root=<folder>)."
)


DATASET_LAYOUTS: dict[str, dict] = {
    "cifar100": dict(
        folder="cifar-100-python",
        source="https://www.cs.toronto.edu/~kriz/cifar.html (cifar-100-python.tar.gz, python version)",
        auto_download=True,
        layout="""\
<data_dir>/cifar-100-python/
    train      python pickle: data (50000 x 3072 uint8), fine_labels
    test       python pickle: data (10000 x 3072 uint8), fine_labels
    meta       python pickle: fine_label_names""",
    ),
    "tinyimagenet": dict(
        folder="tiny-imagenet-200",
        source="http://cs231n.stanford.edu/tiny-imagenet-200.zip",
        auto_download=True,
        layout="""\
<data_dir>/tiny-imagenet-200/
    wnids.txt                      one wnid per line (200)
    words.txt                      <wnid><TAB><names> (optional, gives readable class names)
    train/<wnid>/images/*.JPEG
    val/images/val_<n>.JPEG
    val/val_annotations.txt        <file><TAB><wnid><TAB>...""",
    ),
    "imagenet": dict(
        folder="imagenet",
        source=(
            "ILSVRC2012 from https://image-net.org/download.php (registration required): extract "
            "ILSVRC2012_img_train.tar and its per-class tars into train/<wnid>/, and sort "
            "ILSVRC2012_img_val.tar into val/<wnid>/ (for example with the widely used valprep.sh)"
        ),
        auto_download=False,
        layout="""\
<data_dir>/imagenet/
    train/<wnid>/*.JPEG            1000 class folders
    val/<wnid>/*.JPEG              the same 1000 class folders (official val, 50 per class)""",
    ),
    "flowers102": dict(
        folder="flowers-102",
        source="https://www.robots.ox.ac.uk/~vgg/data/flowers/102/ (102flowers.tgz, imagelabels.mat, setid.mat)",
        auto_download=True,
        layout="""\
<data_dir>/flowers-102/
    jpg/image_00001.jpg ... jpg/image_08189.jpg
    imagelabels.mat                labels: 1 x 8189, 1-based class of each image
    setid.mat                      trnid, valid, tstid: 1-based image ids of each split""",
    ),
    "cub": dict(
        folder="CUB_200_2011",
        source="https://data.caltech.edu/records/65de6-vp158 (CUB_200_2011.tgz)",
        auto_download=True,
        layout="""\
<data_dir>/CUB_200_2011/
    images.txt                     <image id> <relative path>
    image_class_labels.txt         <image id> <class id, 1-based>
    train_test_split.txt           <image id> <1 = train, 0 = test>
    classes.txt                    <class id> <class name>
    images/<class name>/*.jpg""",
    ),
    "cars": dict(
        folder="stanford_cars",
        source=(
            "the original Stanford URL (ai.stanford.edu/~jkrause/cars) is dead, so there is no "
            "automatic download; mirrors of the images, devkit and cars_test_annos_withlabels.mat "
            "are listed in https://github.com/pytorch/vision/issues/7545 (for example the Kaggle "
            "dataset jessicali9530/stanford-cars-dataset); arrange them as torchvision's StanfordCars "
            "expects (https://pytorch.org/vision/stable/generated/torchvision.datasets.StanfordCars.html)"
        ),
        auto_download=False,
        layout="""\
<data_dir>/stanford_cars/
    devkit/cars_meta.mat           class_names (196)
    devkit/cars_train_annos.mat    annotations: fname, class (1-based)
    cars_test_annos_withlabels.mat annotations: fname, class (1-based)
    cars_train/*.jpg
    cars_test/*.jpg""",
    ),
    "aircraft": dict(
        folder="fgvc-aircraft-2013b",
        source="https://www.robots.ox.ac.uk/~vgg/data/fgvc-aircraft/ (fgvc-aircraft-2013b.tar.gz)",
        auto_download=True,
        layout="""\
<data_dir>/fgvc-aircraft-2013b/data/
    images/<image id>.jpg
    variants.txt, families.txt, manufacturers.txt        class names, one per line
    images_<level>_<split>.txt     <image id> <class name>, for level in variant, family,
                                   manufacturer and split in train, val, trainval, test""",
    ),
    "imagefolder": dict(
        folder="",
        source="your own images: put them in one folder per class under train/ (and optionally val/, test/)",
        auto_download=False,
        layout="""\
<dataset.root>/
    train/<class>/*.jpg|png|...    classes are the sorted folder names of train/
    val/<class>/*                  optional: without it val is a holdout of train
    test/<class>/*                 optional""",
    ),
}


def how_to_get(name: str, download_tried: bool = False, offer_download: bool = True) -> str:
    """Where to get dataset ``name`` and whether dataset.download=true can fetch it (not offered
    again when it was just tried, nor where the command has no such setting)."""
    entry = DATASET_LAYOUTS[name]
    if entry["auto_download"] and not offer_download:
        return f"download it from {entry['source']}"
    if entry["auto_download"] and not download_tried:
        return f"download it from {entry['source']}, or set dataset.download=true to fetch it automatically"
    if entry["auto_download"]:
        return f"download it from {entry['source']} and unpack it in the folder named above (the automatic download failed)"
    return entry["source"]


def not_found(name: str, root: Path, detail: str = "", download_tried: bool = False) -> DatasetNotFoundError:
    """The error for dataset ``name`` missing under ``root`` (``detail`` says what exactly)."""
    entry = DATASET_LAYOUTS[name]
    return DatasetNotFoundError(name, root, entry["layout"], how_to_get(name, download_tried), detail)


def _one_level_down(root: Path, folder: str, most: int = 200) -> Path | None:
    """The first folder directly under ``root`` that holds ``folder`` (a few hundred looked at)."""
    try:
        children = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))[:most]
    except OSError:
        return None
    return next((child for child in children if (child / folder).is_dir()), None)


#: Named datasets whose own folder holds train/<class>/ (a renamed copy of one is not a slip).
CLASS_FOLDER_DATASETS = frozenset({"imagefolder", "tinyimagenet", "imagenet"})


def _holds_class_folders(folder: Path, most: int = 50) -> bool:
    """Whether ``folder`` holds folders (of classes), a few dozen looked at."""
    try:
        return folder.is_dir() and any(p.is_dir() for p in sorted(folder.iterdir())[:most])
    except OSError:
        return False


def require_layout(name: str, root: Path, required: Iterable[str]) -> Path:
    """The dataset folder ``root/<folder>`` after checking that it and each ``required`` path
    below it exist."""
    folder = DATASET_LAYOUTS[name]["folder"]
    base = root / folder if folder else root
    if not base.is_dir():
        above = next((p for p in (base, *base.parents) if p.exists()), None)
        if above is not None and not above.is_dir():  # a file given (or met) where a folder is expected
            detail = f"{above.absolute()} is a file, not a folder"
        else:
            detail = f"folder {base.absolute()} does not exist"
        if name == "imagefolder":
            detail += "; give your image folder (the one holding train/<class>/) as dataset.root=<folder>"
        hinted = False
        if folder and root.name == folder:
            # A common slip: pointing data_dir at the dataset folder instead of its parent.
            detail += f"; the folder given should be the one that holds {folder}/, i.e. {root.parent}"
            hinted = True
        elif folder and root.is_dir():
            # Or a level too high: the dataset folder is in one of the given folder's folders.
            below = _one_level_down(root, folder)
            if below is not None:
                detail += f"; {below / folder} is there: give the folder that holds it, {below}"
                hinted = True
        if (
            not hinted
            and name not in CLASS_FOLDER_DATASETS  # (their own folder holds train/<class>/ too)
            and _holds_class_folders(root / "train")
        ):
            # dataset.root given for one's own images, dataset=imagefolder left out (the default
            # dataset was looked for there, and a download offered into the user's folder).
            detail += f"; {root} holds an image folder (train/<class>/): for your own images add dataset=imagefolder"
        raise not_found(name, root, detail)
    for rel in required:
        if not (base / rel).exists():
            detail = f"missing {base / rel}"
            split = Path(rel).parts[0] if rel else ""
            if folder and rel and (base / folder / rel).exists():
                # Extracted into a folder of the dataset's own name (CUB_200_2011/CUB_200_2011/).
                detail += (
                    f"; {base / folder / rel} is there, a folder deeper (the archive extracted into a folder of its "
                    f"own name): give the folder that holds that {folder}/, {base}"
                )
            elif root.name in ("train", "val", "test") and (root.parent / split).is_dir():
                # A split folder given for the folder that holds the splits.
                detail += f"; {root} looks like a split folder: give the folder that holds it, {root.parent}"
            elif name == "imagefolder" and split == "train":
                classes = sorted(p.name for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))
                inner = [base / c for c in classes if (base / c / "train").is_dir()]
                if inner:
                    # An image folder one level down (data/my_images/train/): the folder to give.
                    detail += (
                        f"; {', '.join(str(f.absolute()) for f in inner[:3])} "
                        f"{'holds' if len(inner) == 1 else 'hold'} train/: give "
                        + " or ".join(f"dataset.root={f.absolute()}" for f in inner[:3])
                    )
                elif classes and not any(c in ("val", "test") for c in classes):
                    # Class folders straight under the root: the splits' folder level is missing.
                    shown = ", ".join(f"{c}/" for c in classes[:3]) + (", ..." if len(classes) > 3 else "")
                    detail += (
                        f"; {base} holds class folders ({shown}) with no train/ above them: move them into "
                        f"{base / 'train'} (val/ and test/ beside it are optional; without val/ a share of "
                        "train is held out)"
                    )
            raise not_found(name, root, detail)
    return base


def ensure_layout(
    name: str,
    root: Path,
    required: Iterable[str],
    *,
    download: bool,
    fetch: Callable[[], None] | None,
) -> Path:
    """``require_layout``, running ``fetch`` first when the data is missing and ``download`` is set.

    ``fetch`` is None for datasets that cannot be downloaded automatically; asking for a download
    of those raises the not-found error with the reason.
    """
    required = list(required)
    try:
        return require_layout(name, root, required)
    except DatasetNotFoundError as missing:
        if not download:
            raise
        if fetch is None:
            raise not_found(
                name, root, "dataset.download=true cannot fetch it: no public automatic download exists"
            ) from missing
    root.mkdir(parents=True, exist_ok=True)
    with _downloading(name, root):
        try:  # another process may have fetched it while this one waited
            return require_layout(name, root, required)
        except DatasetNotFoundError:
            pass
        before = set(root.iterdir())
        try:
            fetch()
        except Exception as exc:  # network, checksum and archive errors all end the same way for the user
            for made in set(root.iterdir()) - before:  # folders the attempt made and left empty
                if made.is_dir() and not any(made.iterdir()):
                    made.rmdir()
            raise not_found(
                name, root, f"download failed: {type(exc).__name__}: {exc}", download_tried=True
            ) from exc
        return require_layout(name, root, required)


@contextmanager
def _downloading(name: str, root: Path):
    """One process at a time fetches dataset ``name`` into ``root`` (the jobs of a sweep started
    together with dataset.download=true would write the same files): an exclusive lock on a file
    there, which a killed process gives back; the others wait, then find the data."""
    import fcntl
    import logging

    log = logging.getLogger(__name__)
    with open(root / f".download-{name}.lock", "a") as lock:
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("waiting for another process downloading dataset '%s' into %s", name, root)
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        except OSError as exc:  # a file system without locks (some NFS, Lustre mounted noflock)
            log.warning(
                "%s cannot be locked (%s): downloading without waiting for other processes; start one "
                "download at a time into it",
                root,
                exc,
            )
            yield
            return
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


#: Each dataset's reader options (``dataset.options.<key>``) and their choices (None: any value);
#: checked at start-up (before any data is read) and by the readers.
DATASET_OPTIONS: dict[str, dict[str, tuple | None]] = {
    "aircraft": {
        "annotation_level": ("variant", "family", "manufacturer"),
        "train_split": ("trainval", "train"),
        "crop_banner": (False, True),
    },
}


def check_options(name: str, options: Mapping, allowed: Mapping[str, Iterable | None] | None = None) -> None:
    """Reject unknown option names and values outside the allowed choices (None: any value);
    ``allowed``: the dataset's entry of DATASET_OPTIONS unless given."""
    allowed = DATASET_OPTIONS.get(name, {}) if allowed is None else allowed
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        known = ", ".join(sorted(allowed)) or "none"
        raise ConfigError(
            f"dataset.options.{unknown[0]}: dataset '{name}' has no option(s) {', '.join(unknown)} "
            f"(its options: {known})"
        )
    for key, choices in allowed.items():
        if key not in options or choices is None:
            continue
        value = options[key]  # (1 is not true, nor 0 false, nor 'yes': the type counts too)
        if not any(value == c and type(value) is type(c) for c in choices):
            shown = ", ".join(str(c).lower() if isinstance(c, bool) else str(c) for c in choices)
            raise ConfigError(f"dataset.options.{key}={value!r}: dataset '{name}' takes one of {shown}")


def dataset_root(cfg, data_dir: str | Path) -> Path:
    """The folder that holds dataset ``cfg`` (``dataset.root``, else ``paths.data_dir``)."""
    return Path(cfg.root if cfg.root else data_dir).expanduser()


def check_present(cfg, data_dir: str | Path) -> None:
    """Raise DatasetNotFoundError at once when the dataset's folder is missing (unless
    ``dataset.download`` will fetch it). The readers check every file they need later."""
    check_options(
        cfg.name, dict(getattr(cfg, "options", None) or {})
    )  # a setting's mistake before the folder
    if cfg.download or cfg.name not in DATASET_LAYOUTS:
        return
    require_layout(cfg.name, dataset_root(cfg, data_dir), [])
