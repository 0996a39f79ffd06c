"""Dataset readers: every paper dataset read from fixtures in its official layout, plus real data."""

from __future__ import annotations

import io
import os
import pickle
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from omegaconf import open_dict
from PIL import Image

from diffusemix_bench.data import (
    DATASET_LAYOUTS,
    CorruptImageError,
    DatasetNotFoundError,
    SplitNotAvailableError,
    cifar,
    create_dataset,
    list_datasets,
)
from diffusemix_bench.data.base import DataFileError
from diffusemix_bench.errors import ConfigError
from tests.conftest import ROOT
from tests.fixtures.datasets import FIXTURE_DATASETS, corrupt_one_image, write_fixture_dataset

REAL_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SPLITS = ("train", "val", "test")
NUM_CLASSES, PER_CLASS = 3, 4
FILE_DATASETS = [n for n in FIXTURE_DATASETS if n != "cifar100"]
# Datasets whose val split is a holdout of (official) train.
HOLDOUT_DATASETS = ["cifar100", "tinyimagenet", "imagenet", "cub", "cars", "aircraft"]
# Per dataset: number of images the fixture puts in (train + val, test).
EXPECTED_SIZES = {
    name: (2 * 12 if name in ("flowers102", "imagefolder", "aircraft") else 12, 12)
    for name in FIXTURE_DATASETS
}
# One key file per dataset whose absence must be reported.
KEY_FILES = {
    "cifar100": "cifar-100-python/meta",
    "tinyimagenet": "tiny-imagenet-200/val/val_annotations.txt",
    "imagenet": "imagenet/val",
    "flowers102": "flowers-102/setid.mat",
    "cub": "CUB_200_2011/train_test_split.txt",
    "cars": "stanford_cars/devkit/cars_meta.mat",
    "aircraft": "fgvc-aircraft-2013b/data/variants.txt",
    "imagefolder": "my_images/train",
}


def _write(name: str, data_dir: Path, **kwargs) -> tuple[Path, dict]:
    written = write_fixture_dataset(name, data_dir, num_classes=NUM_CLASSES, per_class=PER_CLASS, **kwargs)
    return written["data_dir"], written["options"]


def _build_all(name: str, root: Path, options: dict, **kwargs) -> dict:
    return {s: create_dataset(name, root, s, **options, **kwargs) for s in SPLITS}


def _sample_keys(ds) -> list:
    """Something that identifies each sample: its path, or its pixels for in-memory data."""
    if ds.paths is not None:
        return [str(p) for p in ds.paths]
    return [row.tobytes() for row in ds.array]


def test_every_dataset_is_registered():
    assert set(FIXTURE_DATASETS) <= set(list_datasets())
    assert set(DATASET_LAYOUTS) == set(FIXTURE_DATASETS)


@pytest.mark.parametrize("name", FIXTURE_DATASETS)
def test_splits_build_with_valid_labels(name, tmp_path):
    root, options = _write(name, tmp_path)
    ds = _build_all(name, root, options)
    trainval, test = EXPECTED_SIZES[name]
    assert len(ds["train"]) + len(ds["val"]) == trainval
    assert len(ds["test"]) == test
    expected_classes = 100 if name == "cifar100" else NUM_CLASSES
    for split, d in ds.items():
        assert d.split == split and d.name == name
        assert d.num_classes == expected_classes and len(set(d.classes)) == expected_classes
        assert all(0 <= t < NUM_CLASSES for t in d.targets)
        assert set(d.targets) == set(range(NUM_CLASSES)), f"{split} lacks a class"
        assert "val_rule" in d.info and "test_rule" in d.info
    if name == "cifar100":
        assert ds["train"].classes[:3] == ["apple", "aquarium_fish", "baby"]


@pytest.mark.parametrize("name", FIXTURE_DATASETS)
def test_getitem_returns_uint8_rgb_label_index(name, tmp_path):
    root, options = _write(name, tmp_path)
    for split, d in _build_all(name, root, options).items():
        for i in range(len(d)):
            image, label, index = d[i]
            assert isinstance(image, torch.Tensor) and image.dtype == torch.uint8, split
            assert image.shape == ((3, 32, 32) if name == "cifar100" else (3, 40, 48))
            assert isinstance(label, int) and label == d.targets[i]
            assert index == i


@pytest.mark.parametrize("name", HOLDOUT_DATASETS)
def test_holdout_val_is_disjoint_and_seeded(name, tmp_path):
    root, options = _write(name, tmp_path)

    def keys(split, seed):
        return _sample_keys(create_dataset(name, root, split, seed=seed, **options))

    train, val = set(keys("train", 0)), set(keys("val", 0))
    assert train and val and not train & val
    assert keys("val", 0) == keys("val", 0)
    assert keys("val", 0) != keys("val", 1)
    assert create_dataset(name, root, "val", seed=3, **options).info["val_rule"].startswith("holdout 10% of")


def test_official_val_ignores_seed(tmp_path):
    root, _ = _write("flowers102", tmp_path)
    a = create_dataset("flowers102", root, "val", seed=0)
    b = create_dataset("flowers102", root, "val", seed=5, val_fraction=0.5)
    assert a.paths == b.paths
    assert not set(a.paths) & set(create_dataset("flowers102", root, "train").paths)


@pytest.mark.parametrize("name", FILE_DATASETS)
def test_non_rgb_files_come_out_rgb(name, tmp_path):
    root, options = _write(name, tmp_path)
    seen = set()
    for d in _build_all(name, root, options).values():
        for i, path in enumerate(d.paths):
            with Image.open(path) as raw:
                mode = raw.mode
            if mode == "RGB":
                continue
            seen.add(mode)
            image = d.load_image(i)
            assert image.shape[0] == 3 and image.dtype == torch.uint8, (path, mode)
            if mode == "L":
                assert torch.equal(image[0], image[1]) and torch.equal(image[1], image[2])
            if mode == "RGBA":
                # The fixture's transparent corner is composited on white.
                assert image[:, 0, 0].tolist() == [255, 255, 255]
    assert {"L", "RGBA", "P"} <= seen or name == "imagenet"
    if name == "imagenet":
        assert {"L", "RGBA", "CMYK"} <= seen


@pytest.mark.parametrize("name", FIXTURE_DATASETS)
def test_missing_dataset_names_folder_and_layout(name, tmp_path):
    with pytest.raises(DatasetNotFoundError) as err:
        create_dataset(name, tmp_path / "nothing-here", "train")
    message = str(err.value)
    layout = DATASET_LAYOUTS[name]
    assert layout["folder"] in message
    assert layout["layout"].splitlines()[1].strip() in message
    assert ("dataset.download=true" in message) == layout["auto_download"]


@pytest.mark.parametrize("name", FIXTURE_DATASETS)
def test_missing_key_file_is_named(name, tmp_path):
    _write(name, tmp_path)
    key = tmp_path / KEY_FILES[name]
    shutil.rmtree(key) if key.is_dir() else key.unlink()
    root = tmp_path / "my_images" if name == "imagefolder" else tmp_path
    with pytest.raises(DatasetNotFoundError, match="missing") as err:
        create_dataset(name, root, "test" if name != "imagefolder" else "train")
    assert str(key) in str(err.value)


def test_data_dir_pointing_into_dataset_folder_gets_a_hint(tmp_path):
    _write("cub", tmp_path)
    with pytest.raises(
        DatasetNotFoundError, match=r"the folder given should be the one that holds CUB_200_2011/"
    ):
        create_dataset("cub", tmp_path / "CUB_200_2011", "train")
    # A level too high: the folder that holds it is named.
    _write("cub", tmp_path / "outer" / "data")
    with pytest.raises(DatasetNotFoundError) as err:
        create_dataset("cub", tmp_path / "outer", "train")
    held = tmp_path / "outer" / "data"
    assert f"{held / 'CUB_200_2011'} is there: give the folder that holds it, {held}" in str(err.value)
    # One's own image folder given as dataset.root, dataset=imagefolder left out: the default
    # dataset was looked for there, and a download into that folder offered without a word on it.
    own = tmp_path / "my_images"
    (own / "train" / "cat").mkdir(parents=True)
    for name in ("cifar100", "cub"):
        with pytest.raises(DatasetNotFoundError) as err:
            create_dataset(name, own, "train")
        assert (
            f"{own} holds an image folder (train/<class>/): for your own images add dataset=imagefolder"
            in str(err.value)
        )
    # Not where another hint says what is wrong, nor for a dataset whose own folder is laid out so.
    renamed = tmp_path / "tiny-imagenet-200"
    (renamed / "train" / "n01443537").mkdir(parents=True)
    for root in (renamed, own):
        with pytest.raises(DatasetNotFoundError) as err:
            create_dataset("tinyimagenet", root, "train")
        assert "dataset=imagefolder" not in str(err.value)
    (tmp_path / "cub_copy" / "CUB_200_2011" / "train" / "a").mkdir(parents=True)
    with pytest.raises(DatasetNotFoundError) as err:
        create_dataset("cub", tmp_path / "cub_copy" / "CUB_200_2011", "train")
    assert "the folder given should be the one that holds CUB_200_2011/" in str(err.value)
    assert "dataset=imagefolder" not in str(err.value)


@pytest.mark.parametrize("name", FILE_DATASETS)
def test_corrupt_image_raises_naming_the_file(name, tmp_path):
    root, options = _write(name, tmp_path)
    bad = corrupt_one_image(name, tmp_path)
    train = create_dataset(name, root, "train", **options)
    with pytest.raises(CorruptImageError, match=bad.name):
        train[train.paths.index(bad)]


def test_malformed_index_files_name_file_and_line(tmp_path):
    root, _ = _write("cub", tmp_path / "cub")
    labels = root / "CUB_200_2011" / "image_class_labels.txt"
    lines = labels.read_text().splitlines()
    lines[4] = "5 seven"
    labels.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"image_class_labels\.txt, line 5"):
        create_dataset("cub", root, "train")

    root, _ = _write("tinyimagenet", tmp_path / "tiny")
    ann = root / "tiny-imagenet-200" / "val" / "val_annotations.txt"
    ann.write_text(ann.read_text() + "val_99.JPEG\tn99999999\t0\t0\t1\t1\n")
    with pytest.raises(ValueError, match=r"val_annotations\.txt, line 13: .*n99999999"):
        create_dataset("tinyimagenet", root, "test")

    root, _ = _write("aircraft", tmp_path / "aircraft")
    test_file = root / "fgvc-aircraft-2013b" / "data" / "images_variant_test.txt"
    test_file.write_text(test_file.read_text() + "1234567 Zeppelin NT\n")
    with pytest.raises(ValueError, match=r"images_variant_test\.txt, line 13: class 'Zeppelin NT'"):
        create_dataset("aircraft", root, "test")
    classes = root / "fgvc-aircraft-2013b" / "data" / "variants.txt"
    first = classes.read_text().splitlines()[0]
    classes.write_text(classes.read_text() + first + "\n")
    with pytest.raises(
        ValueError, match=rf"variants\.txt, line 4: class '{first}' is listed again \(first on line 1\)"
    ):
        create_dataset("aircraft", root, "train")


@pytest.mark.parametrize(
    "name,listed",
    [
        ("aircraft", "fgvc-aircraft-2013b/data/variants.txt"),
        ("aircraft", "fgvc-aircraft-2013b/data/images_variant_trainval.txt"),
        ("tinyimagenet", "tiny-imagenet-200/wnids.txt"),
        ("cub", "CUB_200_2011/images.txt"),
    ],
)
def test_a_text_file_saved_again_by_an_editor_reads_alike_or_is_named(name, listed, tmp_path):
    """A byte-order mark an editor wrote before the first line is not part of its first field (it
    had made the first class, id or image unknown); a file saved as UTF-16 is named as such."""
    from diffusemix_bench.data.base import DataFileError

    root, options = _write(name, tmp_path)
    before = create_dataset(name, root, "train", **options)
    path = root / listed
    text = path.read_text()
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    after = create_dataset(name, root, "train", **options)
    assert (after.classes, list(after.paths), after.targets) == (
        before.classes,
        list(before.paths),
        before.targets,
    )
    path.write_text(text, encoding="utf-16")
    with pytest.raises(
        DataFileError, match=rf"{re.escape(str(path))} is saved as UTF-16 text.*save it again as UTF-8"
    ):
        create_dataset(name, root, "train", **options)


def test_a_class_of_the_training_split_without_images_is_refused(tmp_path):
    """Tiny-ImageNet's and ImageNet's train/<wnid>/ folders each hold their class's images: an
    empty one (a download cut short, ImageNet's class archive left unextracted) is named, not
    trained as a class never seen."""
    root, _ = _write("tinyimagenet", tmp_path / "tiny")
    folder = sorted((root / "tiny-imagenet-200" / "train").iterdir())[0] / "images"
    for image in folder.iterdir():
        image.unlink()
    with pytest.raises(DatasetNotFoundError, match=rf"{re.escape(str(folder))} holds no images \(class n"):
        create_dataset("tinyimagenet", root, "train")
    root, _ = _write("imagenet", tmp_path / "imagenet")
    folder = sorted((root / "imagenet" / "train").iterdir())[1]
    for image in folder.iterdir():
        image.unlink()
    (folder / f"{folder.name}.tar").write_bytes(b"")
    with pytest.raises(
        DatasetNotFoundError,
        match=rf"{re.escape(str(folder))} holds no images \({folder.name}.tar there is not",
    ):
        create_dataset("imagenet", root, "val")
    assert len(create_dataset("imagenet", root, "test")) == NUM_CLASSES * PER_CLASS


def test_tinyimagenet_classes_follow_sorted_wnids(tmp_path):
    root, _ = _write("tinyimagenet", tmp_path)
    d = create_dataset("tinyimagenet", root, "test")
    assert d.info["wnids"] == sorted(d.info["wnids"])
    assert d.classes == ["thing 0", "thing 1", "thing 2"]


def test_aircraft_options(tmp_path):
    root, _ = _write("aircraft", tmp_path)
    family = create_dataset("aircraft", root, "test", annotation_level="family")
    assert family.classes == ["Jet family 0", "Jet family 1"]
    maker = create_dataset("aircraft", root, "train", annotation_level="manufacturer")
    assert maker.classes == ["Maker 0"]
    official = {s: create_dataset("aircraft", root, s, train_split="train") for s in SPLITS}
    assert [len(official[s]) for s in SPLITS] == [12, 12, 12]
    assert official["val"].info["val_rule"] == "official val split"
    with pytest.raises(ValueError, match="annotation_level='model'"):
        create_dataset("aircraft", root, "train", annotation_level="model")
    with pytest.raises(ValueError, match="no option"):
        create_dataset("cub", root, "train", annotation_level="family")


def test_imagefolder_without_test_or_val(tmp_path):
    root, _ = _write("imagefolder", tmp_path)
    shutil.rmtree(root / "test")
    with pytest.raises(SplitNotAvailableError, match="no test/ folder"):
        create_dataset("imagefolder", root, "test")
    shutil.rmtree(root / "val")
    train, val = (create_dataset("imagefolder", root, s) for s in ("train", "val"))
    assert len(train) + len(val) == 12 and not set(train.paths) & set(val.paths)
    assert val.info["val_rule"].startswith("holdout")


def test_a_small_image_folders_holdout_says_its_real_share_and_one_image_classes_are_refused(
    tmp_path, caplog
):
    """Without val/, each class of two or more images gives at least one to the validation split:
    4 images a class hold out 25%, not dataset.val_fraction's 10%, which the record and a warning
    say; every class of one image would leave it empty, refused with the fixes (it was "the split is
    empty: re-download the dataset")."""
    from diffusemix_bench.data.imagefolder import ImageFolderError

    root = tmp_path / "small"
    for c in range(3):
        for i in range(4):
            (root / "train" / f"c{c}").mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (8, 8), (40 * c, 10 * i, 0)).save(root / "train" / f"c{c}" / f"{i}.png")
    with caplog.at_level("WARNING"):
        train = create_dataset("imagefolder", root, "train", val_fraction=0.1)
    val = create_dataset("imagefolder", root, "val", val_fraction=0.1)
    assert (len(train), len(val)) == (9, 3)
    assert val.info["val_rule"] == (
        "holdout 10% of train (stratified per class), seed 0; 3 of 12 images held out (25%): each class of "
        "two or more images gives at least one"
    )
    assert "takes 3 of its 12 images (25%), not dataset.val_fraction=0.1" in caplog.text
    big = create_dataset("imagefolder", root, "val", val_fraction=0.25)  # (as asked: not said)
    assert big.info["val_rule"] == "holdout 25% of train (stratified per class), seed 0"
    for c in range(3):
        for i in range(1, 4):
            (root / "train" / f"c{c}" / f"{i}.png").unlink()
    with pytest.raises(
        ImageFolderError, match="every class there has one image, which is never held out"
    ) as err:
        create_dataset("imagefolder", root, "train", val_fraction=0.1)
    assert f"Add {root / 'val'}/<class>/ images" in str(err.value) and "dataset.val_fraction=0" in str(
        err.value
    )
    assert len(create_dataset("imagefolder", root, "train", val_fraction=0.0)) == 3


def test_imagefolder_rejects_unknown_val_class(tmp_path, caplog):
    """A val/ class that train/ lacks is refused; an empty train/ class folder is refused once,
    naming it (a warning saying the same came first)."""
    from diffusemix_bench.data.imagefolder import ImageFolderError

    root, _ = _write("imagefolder", tmp_path)
    (root / "val" / "class 0").rename(root / "val" / "zebra")
    with pytest.raises(ImageFolderError, match="zebra") as err:
        create_dataset("imagefolder", root, "val")
    # The folder exists: no "not found", no download advice; the layout it expects.
    assert "not found" not in str(err.value) and "download" not in str(err.value)
    assert "train/<class>/" in str(err.value)
    shutil.rmtree(root / "train" / "class 1")
    (root / "train" / "class 1").mkdir()
    with (
        caplog.at_level("WARNING"),
        pytest.raises(ImageFolderError, match="class 1 of train/ hold no images"),
    ):
        create_dataset("imagefolder", root, "train")
    assert "without images" not in caplog.text


def test_imagefolder_without_its_root_asks_for_dataset_root(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="dataset.root=<folder>") as err:
        create_dataset("imagefolder", tmp_path / "nowhere", "train")
    assert str(tmp_path / "nowhere") in str(err.value)


def _evil_pickle(path: Path, command: str) -> None:
    class Evil:
        def __reduce__(self):
            return (os.system, (command,))

    path.write_bytes(pickle.dumps({"fine_label_names": [Evil()]}, protocol=2))


def test_restricted_unpickler_refuses_code(tmp_path):
    marker = tmp_path / "executed"
    evil = tmp_path / "evil.pkl"
    _evil_pickle(evil, f"touch {shlex.quote(str(marker))}")
    with pytest.raises(pickle.UnpicklingError, match=r"refusing to load global '(posix|nt|os)\.system'"):
        cifar.load_pickle(evil)
    assert not marker.exists()

    # The same file in place of the release's meta is refused by the reader too.
    root, _ = _write("cifar100", tmp_path / "data")
    shutil.copy(evil, root / "cifar-100-python" / "meta")
    with pytest.raises(pickle.UnpicklingError, match=str(root / "cifar-100-python" / "meta")):
        create_dataset("cifar100", root, "test")
    assert not marker.exists()

    for payload in (b"cbuiltins\neval\n(S'1'\ntR.", b"\x80\x02c__builtin__\ngetattr\nq\x00."):
        evil.write_bytes(payload)
        with pytest.raises(pickle.UnpicklingError, match="getattr|eval"):
            cifar.load_pickle(evil)


def test_truncated_cifar_pickle_is_a_clear_error(tmp_path):
    root, _ = _write("cifar100", tmp_path)
    batch = root / "cifar-100-python" / "test"
    batch.write_bytes(batch.read_bytes()[:200])
    with pytest.raises(ValueError, match=r"cifar-100-python/test: not a readable CIFAR pickle"):
        create_dataset("cifar100", root, "test")


def _archive_of(name: str, tmp_path: Path) -> Path:
    src = tmp_path / "src"
    _write(name, src)
    archive = tmp_path / "archive.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src / DATASET_LAYOUTS[name]["folder"], arcname=DATASET_LAYOUTS[name]["folder"])
    return archive


def test_cifar_download_extracts_served_archive(tmp_path, monkeypatch):
    from torchvision.datasets import utils as tv_utils

    archive = _archive_of("cifar100", tmp_path)
    asked = []

    def fake_download_url(url, root, filename=None, md5=None, **_):
        asked.append((url, md5))
        shutil.copy(archive, Path(root) / filename)

    monkeypatch.setattr(tv_utils, "download_url", fake_download_url)
    root = tmp_path / "data"
    d = create_dataset("cifar100", root, "train", download=True)
    assert asked == [(cifar.URL, cifar.MD5)]
    assert cifar.URL == "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
    assert len(d) == 9 and d.num_classes == 100
    create_dataset("cifar100", root, "test", download=True)
    assert len(asked) == 1, "present data must not be downloaded again"


def _served_files(name: str, tmp_path: Path) -> dict[str, Path]:
    """The files a dataset's download fetches, made from its fixture: {file name: path}."""
    import zipfile

    src = tmp_path / "published"
    write_fixture_dataset(name, src, num_classes=2, per_class=3)
    folder = src / DATASET_LAYOUTS[name]["folder"]
    out = tmp_path / "served"
    out.mkdir()
    if name == "flowers102":  # the images' archive holds jpg/; the .mat files come alone
        with tarfile.open(out / "102flowers.tgz", "w:gz") as tar:
            tar.add(folder / "jpg", arcname="jpg")
        for mat in ("imagelabels.mat", "setid.mat"):
            shutil.copy(folder / mat, out / mat)
        return {p.name: p for p in out.iterdir()}
    if name == "tinyimagenet":
        archive = out / "tiny-imagenet-200.zip"
        with zipfile.ZipFile(archive, "w") as zf:
            for path in sorted(folder.rglob("*")):
                zf.write(path, path.relative_to(src))
        return {archive.name: archive}
    archive = out / {"cub": "CUB_200_2011.tgz", "aircraft": "fgvc-aircraft-2013b.tar.gz"}.get(
        name, "cifar-100-python.tar.gz"
    )
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname=folder.name)
    return {archive.name: archive}


DOWNLOADS = {
    "cifar100": [
        ("https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz", "eb9058c3a382ffc7106e4002c42a8d85")
    ],
    "tinyimagenet": [
        ("http://cs231n.stanford.edu/tiny-imagenet-200.zip", "90528d7ca1a48142e341f4ef8d21d0de")
    ],
    "cub": [
        (
            "https://data.caltech.edu/records/65de6-vp158/files/CUB_200_2011.tgz",
            "97eceeb196236b17998738112f37df78",
        )
    ],
    # The md5 of the release archive (torchvision's FGVCAircraft downloads it unchecked).
    "aircraft": [
        (
            "https://www.robots.ox.ac.uk/~vgg/data/fgvc-aircraft/archives/fgvc-aircraft-2013b.tar.gz",
            "d4acdd33327262359767eeaa97a4f732",
        )
    ],
    "flowers102": [  # the small label files first
        (
            "https://www.robots.ox.ac.uk/~vgg/data/flowers/102/imagelabels.mat",
            "e0620be6f572b9609742df49c70aed4d",
        ),
        ("https://www.robots.ox.ac.uk/~vgg/data/flowers/102/setid.mat", "a5357ecc9cb78c4bef273ce3793fc85c"),
        (
            "https://www.robots.ox.ac.uk/~vgg/data/flowers/102/102flowers.tgz",
            "52808999861908f626f3c1f4e79d11fa",
        ),
    ],
}


@pytest.mark.parametrize("name", sorted(DOWNLOADS))
def test_downloads_fetch_the_published_files_and_extract_them(name, tmp_path, monkeypatch):
    """Each download asks for the published files with their md5 (torchvision's download_url checks
    it), extracts the archive itself and reads the result; present data is not fetched again."""
    from torchvision.datasets import utils as tv_utils

    served = _served_files(name, tmp_path)
    asked = []

    def fake_download_url(url, root, filename=None, md5=None, **_):
        asked.append((url, md5))
        shutil.copy(served[filename], Path(root) / filename)

    monkeypatch.setattr(tv_utils, "download_url", fake_download_url)
    root = tmp_path / "data"
    d = create_dataset(name, root, "test", download=True)
    assert asked == DOWNLOADS[name] and len(d) > 0
    assert not list(root.rglob(".extracting-*"))  # the staging folder is gone
    create_dataset(name, root, "train", download=True)
    assert len(asked) == len(DOWNLOADS[name]), "present data must not be downloaded again"


def test_two_processes_downloading_one_dataset_take_turns(tmp_path, monkeypatch):
    """Two jobs asking for the same download at once (a sweep started with dataset.download=true):
    the second waits for the first's lock, then finds the data and downloads nothing."""
    import threading

    from torchvision.datasets import utils as tv_utils

    served = _served_files("cub", tmp_path)
    asked, started, go_on = [], threading.Event(), threading.Event()

    def slow_download_url(url, root, filename=None, md5=None, **_):
        asked.append(url)
        started.set()
        assert go_on.wait(30)
        shutil.copy(served[filename], Path(root) / filename)

    monkeypatch.setattr(tv_utils, "download_url", slow_download_url)
    root, sizes = tmp_path / "data", []
    first = threading.Thread(
        target=lambda: sizes.append(len(create_dataset("cub", root, "test", download=True)))
    )
    first.start()
    assert started.wait(30)
    second = threading.Thread(
        target=lambda: sizes.append(len(create_dataset("cub", root, "test", download=True)))
    )
    second.start()
    second.join(1.0)
    assert second.is_alive(), "the second download must wait for the first"
    go_on.set()
    first.join(30)
    second.join(30)
    assert len(sizes) == 2 and sizes[0] == sizes[1] > 0
    assert len(asked) == 1, "the second process must find the data the first fetched"


def test_a_download_stopped_part_way_goes_on_with_what_is_missing(tmp_path, monkeypatch):
    """Flowers-102 whose images were extracted and whose label files are missing (an attempt
    stopped after the archive): the download fetches the label files alone, not the images again
    (it stopped with "jpg already there" before)."""
    from torchvision.datasets import utils as tv_utils

    served = _served_files("flowers102", tmp_path)
    asked = []

    def fake_download_url(url, root, filename=None, md5=None, **_):
        asked.append(filename)
        shutil.copy(served[filename], Path(root) / filename)

    monkeypatch.setattr(tv_utils, "download_url", fake_download_url)
    root = tmp_path / "data"
    write_fixture_dataset("flowers102", root, num_classes=2, per_class=3)
    (root / "flowers-102" / "setid.mat").unlink()
    (root / "flowers-102" / "imagelabels.mat").unlink()
    assert len(create_dataset("flowers102", root, "test", download=True)) == 6
    assert asked == ["imagelabels.mat", "setid.mat"]
    # jpg/ cut short by something else (a download extracted in place): named, not taken as whole.
    (root / "flowers-102" / "setid.mat").unlink()
    next((root / "flowers-102" / "jpg").glob("image_*.jpg")).unlink()
    with pytest.raises(
        DatasetNotFoundError, match=r"jpg holds 17 of the 18 images imagelabels.mat labels .*delete it"
    ):
        create_dataset("flowers102", root, "test", download=True)


def _tar_with(path: Path, member: str, data: bytes = b"x") -> None:
    import io

    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo(member)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))


def test_archive_extraction_refuses_members_outside_the_folder(tmp_path):
    """An archive whose member would land outside the dataset's folder (../, a link out of it) is
    refused, whatever torchvision's or Python's version, and nothing is written; an absolute name
    lands inside the folder."""
    from diffusemix_bench.data.download import extract_safely

    folder = tmp_path / "data"
    folder.mkdir()
    archive = tmp_path / "evil.tar.gz"
    _tar_with(archive, "../escaped.txt")
    with pytest.raises(DataFileError, match=r"evil\.tar\.gz: .*the archive is not the published one"):
        extract_safely(archive, folder)
    link = tmp_path / "link.tar.gz"
    with tarfile.open(link, "w:gz") as tar:
        info = tarfile.TarInfo("cifar-100-python/meta")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(info)
    with pytest.raises(DataFileError, match="not the published one"):
        extract_safely(link, folder)
    assert not (tmp_path / "escaped.txt").exists() and list(folder.iterdir()) == []
    # An absolute member name is read inside the folder (tar's data filter strips the leading /).
    absolute = tmp_path / "absolute.tar.gz"
    _tar_with(absolute, str(tmp_path / "absolute-escape.txt"))
    extract_safely(absolute, folder)
    assert not (tmp_path / "absolute-escape.txt").exists()
    assert (folder / str(tmp_path / "absolute-escape.txt").lstrip("/")).read_text() == "x"


def test_archive_extraction_names_an_incomplete_folder_in_the_way(tmp_path, monkeypatch):
    """A folder left by an earlier, interrupted copy is named (delete it), not merged into; the
    archive is kept, so the next attempt does not download it again. A Python without tarfile's
    data filter is refused, saying what to do, instead of extracting unfiltered."""
    from diffusemix_bench.data.download import extract_safely

    folder = tmp_path / "data"
    (folder / "CUB_200_2011").mkdir(parents=True)  # cut short: no images.txt, ...
    archive = folder / "CUB_200_2011.tgz"
    _tar_with(archive, "CUB_200_2011/images.txt")
    with pytest.raises(
        DataFileError, match=r"CUB_200_2011 already there, but .*delete it \(or move it away\) and run again"
    ):
        extract_safely(archive, folder)
    assert archive.exists() and list((folder / "CUB_200_2011").iterdir()) == []
    assert sorted(p.name for p in folder.iterdir()) == ["CUB_200_2011", "CUB_200_2011.tgz"]
    (folder / "CUB_200_2011").rmdir()
    # A plain file beside the dataset's folder (CUB's attributes.txt) is replaced, not in the way.
    (folder / "attributes.txt").write_text("from an earlier attempt")
    with tarfile.open(archive, "w:gz") as tar:
        for name in ("CUB_200_2011/images.txt", "attributes.txt"):
            info = tarfile.TarInfo(name)
            info.size = 1
            tar.addfile(info, io.BytesIO(b"x"))
    extract_safely(archive, folder)
    assert (folder / "CUB_200_2011" / "images.txt").read_text() == "x"
    assert (folder / "attributes.txt").read_text() == "x"
    monkeypatch.delattr(tarfile, "data_filter")
    with pytest.raises(ConfigError, match=r"needs Python's tarfile data filter"):
        extract_safely(archive, tmp_path / "other")


@pytest.mark.parametrize(
    ("name", "hint"), [("cars", "pytorch/vision/issues/7545"), ("imagenet", "image-net.org")]
)
def test_datasets_without_download_say_why(name, hint, tmp_path, monkeypatch):
    from torchvision.datasets import utils as tv_utils

    def no_network(*args, **kwargs):
        raise AssertionError("no download may be attempted")

    monkeypatch.setattr(tv_utils, "download_url", no_network)
    with pytest.raises(DatasetNotFoundError, match="cannot fetch it") as err:
        create_dataset(name, tmp_path, "train", download=True)
    assert hint in str(err.value)


def test_failed_download_is_reported(tmp_path, monkeypatch):
    from torchvision.datasets import utils as tv_utils

    def offline(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(tv_utils, "download_url", offline)
    with pytest.raises(DatasetNotFoundError, match="download failed: OSError: network unreachable") as err:
        create_dataset("cub", tmp_path, "train", download=True)
    # The download was tried: the advice is to fetch it by hand, not to set dataset.download=true again.
    assert "set dataset.download=true" not in str(err.value) and "automatic download failed" in str(err.value)
    # Flowers-102's attempt makes its folder first: left empty, it is removed (a next run without
    # download said "missing flowers-102/jpg" instead of "not found").
    with pytest.raises(DatasetNotFoundError, match="download failed"):
        create_dataset("flowers102", tmp_path, "train", download=True)
    assert not (tmp_path / "flowers-102").exists()


def test_imagefolder_refuses_download(tmp_path):
    root, _ = _write("imagefolder", tmp_path)
    with pytest.raises(ValueError, match="dataset.download=false"):
        create_dataset("imagefolder", root, "train", download=True)


@pytest.mark.skipif(not (REAL_DATA / "flowers-102").is_dir(), reason="real Flowers-102 not present")
def test_real_flowers102():
    ds = {s: create_dataset("flowers102", REAL_DATA, s) for s in SPLITS}
    assert [len(ds[s]) for s in SPLITS] == [1020, 1020, 6149]
    assert all(d.num_classes == 102 for d in ds.values())
    assert np.bincount(ds["train"].targets).tolist() == [10] * 102
    assert not set(ds["train"].paths) & set(ds["test"].paths)
    image, label, _ = ds["test"][0]
    assert image.shape[0] == 3 and 0 <= label < 102


@pytest.mark.skipif(not (REAL_DATA / "tiny-imagenet-200").is_dir(), reason="real Tiny-ImageNet not present")
def test_real_tinyimagenet():
    test = create_dataset("tinyimagenet", REAL_DATA, "test")
    assert test.num_classes == 200 and len(test) == 10000
    assert np.bincount(test.targets).tolist() == [50] * 200
    train, val = (create_dataset("tinyimagenet", REAL_DATA, s) for s in ("train", "val"))
    assert len(train) + len(val) == 20000 and len(val) == 2000
    # The annotation's wnid and the train folder of the same class agree.
    wnid = test.info["wnids"][test.targets[0]]
    assert train.paths[train.targets.index(test.targets[0])].parts[-3] == wnid
    image, _, _ = test[0]
    assert image.shape == (3, 64, 64)


def test_a_missing_image_or_a_dangling_link_is_named_as_such(tmp_path):
    """A file gone since listing, or a link to nothing, is not "could not decode": the message says
    what is missing and how to go on."""
    from diffusemix_bench.data.base import CorruptImageError, load_rgb

    (tmp_path / "link.jpg").symlink_to(tmp_path / "elsewhere.jpg")
    with pytest.raises(
        CorruptImageError,
        match=r"link\.jpg is not there \(a link to .*elsewhere\.jpg, which does not exist\): put the file back or mend the link, or .*dataset\.on_bad_image=skip",
    ):
        load_rgb(tmp_path / "link.jpg")
    with pytest.raises(
        CorruptImageError,
        match=r"gone\.jpg is not there \(the dataset's files list it, but it is not in the folder, or was removed since\): put the file back, or",
    ):
        load_rgb(tmp_path / "gone.jpg")


def test_an_image_that_cannot_be_decoded_says_how_to_replace_it(tmp_path):
    """A corrupt file: replaced by a good copy (for a published dataset: downloaded again; an own
    image folder's cannot be "re-downloaded"), or left out with dataset.on_bad_image=skip."""
    from diffusemix_bench.data.base import CorruptImageError, load_rgb

    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    with pytest.raises(CorruptImageError) as raised:
        load_rgb(tmp_path / "bad.jpg")
    assert (
        "Replace it with a good copy under the same name (for a published dataset: download it again)"
        in str(raised.value)
    )


def test_sixteen_bit_png_is_scaled_not_clipped(tmp_path):
    from diffusemix_bench.data.base import load_rgb

    values = np.linspace(0, 65535, 64, dtype=np.uint16).reshape(8, 8)
    Image.fromarray(values).save(tmp_path / "deep.png")  # mode I;16
    rgb = np.asarray(load_rgb(tmp_path / "deep.png"))
    assert rgb.shape == (8, 8, 3) and rgb.dtype == np.uint8
    expected = np.rint(values.astype(np.float64) * 255 / 65535).astype(np.uint8)
    assert np.array_equal(rgb[..., 0], expected) and rgb.mean() < 140  # not clipped to white
    # A dark 16-bit image (every value <= 255) is as dark as its values say, whatever its brightest pixel.
    dark = np.full((8, 8), 200, dtype=np.uint16)
    Image.fromarray(dark).save(tmp_path / "dark.png")
    assert Image.open(tmp_path / "dark.png").mode == "I;16"
    assert np.unique(np.asarray(load_rgb(tmp_path / "dark.png"))).tolist() == [1]  # 200 * 255 / 65535


def test_imagefolder_follows_a_symlink_loop_once(tmp_path, caplog):
    """Links that loop are not followed: one warning names them, the train split's info lists
    them, and the val split held out of train/ does not warn about them again."""
    root, _ = _write("imagefolder", tmp_path)
    shutil.rmtree(root / "val")
    first_class = sorted(p for p in (root / "train").iterdir() if p.is_dir())[0]
    before = len(create_dataset("imagefolder", root, "train"))
    (first_class / "loop").symlink_to(first_class, target_is_directory=True)
    (first_class / "up").symlink_to(root / "train", target_is_directory=True)
    # A link to the file system's root holds every folder above too (it had walked the whole disk).
    (first_class / "root").symlink_to("/", target_is_directory=True)
    with caplog.at_level("WARNING"):
        after = create_dataset("imagefolder", root, "train")
        val = create_dataset("imagefolder", root, "val")
    assert len(after) == before
    assert after.info["links_not_followed"] == [str(first_class / n) for n in ("loop", "root", "up")]
    assert not val.info["links_not_followed"]
    warnings = [r.getMessage() for r in caplog.records if "not followed" in r.getMessage()]
    assert len(warnings) == 1 and "3 linked folder(s)" in warnings[0], warnings


def test_a_folder_is_within_itself_its_parents_and_the_root():
    from diffusemix_bench.data.base import within

    assert within("/data/a/b", "/data/a") and within("/data/a", "/data/a") and within("/data/a", "/")
    assert not within("/data/ab", "/data/a") and not within("/data", "/data/a")


def test_imagefolder_counts_skipped_files_and_empty_val_classes(tmp_path, caplog):
    root, _ = _write("imagefolder", tmp_path)
    classes = sorted(p.name for p in (root / "train").iterdir() if p.is_dir())
    before = create_dataset("imagefolder", root, "train").info["skipped_files"]  # the fixture's notes.txt
    (root / "train" / classes[0] / "README.txt").write_text("not an image")
    (root / "train" / "labels.csv").write_text("beside the class folders: no class")
    for f in (root / "val" / classes[1]).iterdir():
        f.unlink()
    with caplog.at_level("WARNING"):
        train = create_dataset("imagefolder", root, "train")
        val = create_dataset("imagefolder", root, "val")
    assert train.info["skipped_files"] == before + 2 and val.info["empty_class_folders"] == [classes[1]]
    assert "README.txt" in caplog.text or "labels.csv" in caplog.text
    assert "that are not images were skipped" in caplog.text
    assert "beside the class folders" not in caplog.text  # (labels.csv is not an image of no class)
    assert classes[1] in caplog.text
    assert val.info["classes_absent"] == []  # the empty folder is told once, as empty
    # An image beside the class folders is not "a file that is not an image": it has no class.
    Image.new("RGB", (8, 8)).save(root / "train" / "loose.png")
    caplog.clear()
    with caplog.at_level("WARNING"):
        assert create_dataset("imagefolder", root, "train").info["skipped_files"] == before + 3
    assert (
        "1 image(s) beside the class folders belong to no class and were skipped (e.g. loose.png)"
        in caplog.text
    )
    (root / "train" / "loose.png").unlink()
    # A class train/ has and val/ lacks altogether: told, and counted in the split's notes.
    import shutil

    shutil.rmtree(root / "val" / classes[2])
    caplog.clear()
    with caplog.at_level("WARNING"):
        val = create_dataset("imagefolder", root, "val")
    assert val.info["classes_absent"] == [classes[2]]
    assert (
        f"has no folder for 1 of train/'s {len(classes)} classes ({classes[2]}): its accuracy counts the others alone"
        in caplog.text
    )
    # A hidden folder beside the class folders is left out, never a class, and said.
    (root / "train" / ".renamed").mkdir()
    caplog.clear()
    with caplog.at_level("WARNING"):
        train = create_dataset("imagefolder", root, "train")
    assert train.info["hidden_folders"] == [".renamed"] and ".renamed" not in train.classes
    assert "hidden folder(s) left out, never classes: .renamed" in caplog.text


def test_a_held_out_val_split_does_not_report_train_folders_files_again(tmp_path, caplog):
    """Without val/, the val split is held out of train/: the files train/ skips are the train
    split's to count and warn about, once, not the val split's too."""
    import shutil

    root, _ = _write("imagefolder", tmp_path)
    shutil.rmtree(root / "val")
    classes = sorted(p.name for p in (root / "train").iterdir() if p.is_dir())
    (root / "train" / classes[0] / "README.txt").write_text("not an image")
    with caplog.at_level("WARNING"):
        train = create_dataset("imagefolder", root, "train")
        val = create_dataset("imagefolder", root, "val")
    assert train.info["skipped_files"] >= 1 and not val.info["skipped_files"]
    assert caplog.text.count("that are not images were skipped") == 1


def test_verify_finds_corrupt_images_at_start_up_and_skip_counts_them(make_cfg, tmp_path):
    """dataset.verify=true stops before training, naming the file; on_bad_image=skip trains without
    it, counts it in metrics.json and lists it in the run folder; results are cached per file."""
    from diffusemix_bench.data.base import CorruptImageError
    from diffusemix_bench.training.run import train

    cfg = make_cfg(["dataset=flowers102", "dataset.verify=true"])
    broken = corrupt_one_image("flowers102", Path(cfg.paths.data_dir))
    with pytest.raises(CorruptImageError, match="cannot be decoded .first: .*dataset.on_bad_image=skip"):
        train(cfg)
    skip = make_cfg(["dataset=flowers102", "dataset.on_bad_image=skip"], run_name="skip")
    broken = corrupt_one_image("flowers102", Path(skip.paths.data_dir))  # the fixture was rewritten
    metrics = train(skip)
    assert sum(metrics["bad_images"].values()) == 1
    listed = (tmp_path / "skip" / "bad_images.txt").read_text()
    assert str(broken) in listed
    caches = list((Path(skip.paths.cache_dir) / "verified").glob("*.json"))
    assert caches and any(str(broken) in c.read_text() for c in caches)


def test_worker_errors_show_the_message_not_the_worker_traceback():
    from diffusemix_bench.errors import user_message

    wrapped = RuntimeError(
        "Caught CorruptImageError in DataLoader worker process 0.\nOriginal Traceback (most recent call last):\n"
        '  File "x.py", line 1, in f\n    load()\n'
        "diffusemix_bench.data.base.CorruptImageError: Could not decode image /d/a.jpg: broken. Re-download it.\n"
    )
    assert user_message(wrapped) == "Could not decode image /d/a.jpg: broken. Re-download it."


def test_a_worker_error_is_kept_and_reported_without_the_worker_traceback(tmp_path):
    """failure.json (and so a sweep's summary.csv and report.py's notes) held the data loader
    worker's whole traceback: it keeps the message; one written so before is read without it."""
    import json

    from diffusemix_bench.reporting.runs import read_run
    from diffusemix_bench.training.run import record_failure

    text = (
        "Caught CorruptImageError in DataLoader worker process 0.\nOriginal Traceback (most recent call last):\n"
        '  File "x.py", line 1, in f\n    load()\n'
        "diffusemix_bench.data.base.CorruptImageError: Could not decode image /d/a.jpg: broken.\n"
    )
    record_failure(tmp_path, RuntimeError(text))
    kept = json.loads((tmp_path / "failure.json").read_text())
    assert kept["status"] == "failed"
    assert kept["error"] == "RuntimeError: Could not decode image /d/a.jpg: broken."
    (tmp_path / "config_resolved.yaml").write_text("seed: 0\n")
    (tmp_path / "failure.json").write_text(json.dumps({"status": "failed", "error": f"RuntimeError: {text}"}))
    run = read_run(tmp_path)
    assert run.status == "failed" and "Traceback" not in run.reason, run.reason
    assert run.reason.endswith("Could not decode image /d/a.jpg: broken.")


def test_cifar_reader_answers_any_garbage_with_a_data_file_error(tmp_path):
    """Random bytes make an unpickler raise almost any exception type (overflow, memory, index,
    unicode...): the CIFAR reader turns every one into the one user error naming the file."""
    import random

    from diffusemix_bench.data.base import DataFileError
    from diffusemix_bench.data.cifar import RefusedGlobalError, load_pickle

    path = tmp_path / "train"
    rng = random.Random(0)
    for n in range(300):
        path.write_bytes(b"\x80\x02" * (n % 2) + rng.randbytes(rng.randint(1, 400)))
        with pytest.raises((DataFileError, RefusedGlobalError), match="train"):
            load_pickle(path)


@pytest.mark.parametrize("name", FIXTURE_DATASETS)
def test_channels_last_images_give_the_same_pixels(name, tmp_path):
    """load_image keeps the HWC memory order images decode in (no reordering copy; torchvision's
    uint8 resize is faster on it): its pixels are the decoded file's, and every train and eval
    transform gives the same bytes as on the CHW-contiguous image under the same random draws."""
    from diffusemix_bench.data.base import load_rgb
    from diffusemix_bench.data.transforms import TRAIN_TRANSFORMS, eval_transform, train_transform

    root, options = _write(name, tmp_path, size=(37, 50))
    d = create_dataset(name, root, "train", **options)
    transforms = [train_transform(kind, 24, 29, padding=4) for kind in TRAIN_TRANSFORMS]
    transforms.append(eval_transform(24, 29))
    for i in range(len(d)):
        image = d.load_image(i)
        assert image.shape[0] == 3 and image.dtype == torch.uint8
        expected = np.asarray(load_rgb(d.paths[i])) if d.paths is not None else d.array[i]
        assert np.array_equal(image.permute(1, 2, 0).numpy(), expected)
        for k, transform in enumerate(transforms):
            torch.manual_seed(100 * i + k)
            fast = transform(image)
            torch.manual_seed(100 * i + k)
            assert torch.equal(fast, transform(image.contiguous())), (i, k)


def test_a_corrupt_validation_image_read_by_workers_is_one_message(tmp_path):
    """A corrupt image met by the validation loader's worker processes (the sanity check's) stops
    train.py with its message alone: the workers the error leaves behind are ended at exit without
    PyTorch's "DataLoader worker ... is killed by signal" traceback after the message."""
    from tests.conftest import run_entry

    for split, count in (("train", 4), ("val", 2)):
        for name in ("a", "b"):
            (tmp_path / "img" / split / name).mkdir(parents=True)
            for i in range(count):
                Image.new("RGB", (20, 20), (40 * i, 90, 200)).save(
                    tmp_path / "img" / split / name / f"{i}.png"
                )
    bad = tmp_path / "img" / "val" / "a" / "0.png"
    bad.write_bytes(bad.read_bytes()[:60])  # truncated
    result = run_entry(
        "train.py",
        [
            "dataset=imagefolder",
            f"dataset.root={tmp_path / 'img'}",
            "dataset.num_workers=2",
            "dataset.image_size=16",
            "dataset.resize=18",
            "trainer.max_epochs=1",
            "print_config=false",
            "model=preactresnet18",
            f"hydra.run.dir={tmp_path / 'run'}",
            f"paths.cache_dir={tmp_path / 'cache'}",
        ],  # fmt: skip
        tmp_path,
    )
    assert result.returncode == 1
    assert f"error: Could not decode image {bad}" in result.stderr
    assert "Traceback" not in result.stderr, result.stderr[-3000:]


def test_a_workers_broken_hand_over_to_a_stopping_process_is_not_reported():
    """In a data-loader worker, the resource sharer's thread (it hands batches' shared memory to the
    main process) meets a broken connection when the main process stops mid-hand-over: no traceback
    follows the main process's one-line message, whether the thread's error reaches
    threading.excepthook or, caught by the sharer's serving loop, sys.excepthook. Another error is
    still reported."""
    script = (
        "import threading\n"
        "from diffusemix_bench.data.datamodule import _quiet_resource_sharer\n"
        "_quiet_resource_sharer()\n"
        "sharer = {}\n"
        "exec(compile('def _serve():\\n    raise ConnectionResetError(104, \"reset\")\\n',"
        " '/lib/python3/multiprocessing/resource_sharer.py', 'exec'), sharer)\n"
        "def other():\n"
        "    raise ValueError('a real error')\n"
        "for target in (sharer['_serve'], other):\n"
        "    t = threading.Thread(target=target)\n"
        "    t.start()\n"
        "    t.join()\n"
        # The sharer's serving loop catches its errors and reports them through sys.excepthook.
        "import sys\n"
        "for target in (sharer['_serve'], other):\n"
        "    try:\n"
        "        target()\n"
        "    except Exception:\n"
        "        sys.excepthook(*sys.exc_info())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0
    assert (
        "ConnectionResetError" not in result.stderr and result.stderr.count("ValueError: a real error") == 2
    )


def _small_image_folder(root: Path, per_class: int) -> Path:
    """train/, val/ and test/ with classes a and b, ``per_class`` 8 x 8 PNGs each."""
    for split in ("train", "val", "test"):
        for cls in ("a", "b"):
            (root / split / cls).mkdir(parents=True)
            for i in range(per_class):
                Image.new("RGB", (8, 8), (40 * i, 0, 0)).save(root / split / cls / f"{i}.png")
    return root


@pytest.mark.parametrize("name", ["cub", "cars", "flowers102"])
def test_images_missing_from_a_listed_split_are_named_before_anything_is_built(name, tmp_path):
    """A split whose list files name images that are not on disk (an archive extracted part way,
    Kaggle's Cars a folder deeper): one message at once with how many and the first, not a
    message about one image mid-run after the model was built; on_bad_image=skip leaves them out."""
    from diffusemix_bench.config import DatasetConfig
    from diffusemix_bench.data.splits import build_splits

    fixture = write_fixture_dataset(name, tmp_path / "data")
    cfg = DatasetConfig(name=name)
    splits = build_splits(cfg, fixture["data_dir"])
    gone = sorted(splits.test.paths)[1:3]
    for path in gone:
        path.unlink()
    with pytest.raises(
        DataFileError, match=rf"{name}/test: 2 of the {len(splits.test)} images .*not there \(the first: "
    ):
        build_splits(cfg, fixture["data_dir"])
    assert len(build_splits(DatasetConfig(name=name, on_bad_image="skip"), fixture["data_dir"]).test) == len(
        splits.test
    )  # (verification leaves them out)
    folder = Path(splits.train.paths[0]).parent  # every image a folder deeper
    deeper = folder / folder.name
    deeper.mkdir()
    for path in folder.iterdir():
        if path.is_file():
            path.rename(deeper / path.name)
    with pytest.raises(DataFileError, match=r"the images are a folder deeper \(.*\): move them up into"):
        build_splits(cfg, fixture["data_dir"])
    for path in deeper.iterdir():  # names in another case (copied from a system that changed them)
        path.rename(folder / path.name.upper())
    deeper.rmdir()
    first = next(Path(p) for p in splits.train.paths if Path(p).parent == folder)  # (the first missing)
    with pytest.raises(
        DataFileError,
        match=rf"names differ in case from the list's \({re.escape(str(folder / first.name.upper()))} is there "
        rf"for {re.escape(first.name)}\)",
    ):
        build_splits(cfg, fixture["data_dir"])
    (folder.parent / "sorted").mkdir()
    for path in splits.train.paths + splits.val.paths:  # moved out of the layout (sorted into other folders)
        if Path(path).parent == folder:
            (folder / Path(path).name.upper()).rename(folder.parent / "sorted" / Path(path).name)
    with pytest.raises(
        DataFileError,
        match=rf"{re.escape(str(folder.parent / 'sorted' / first.name))} is there, not {re.escape(str(first))}: "
        "the dataset's files have been moved from its layout",
    ):
        build_splits(cfg, fixture["data_dir"])


def test_splits_of_another_size_than_the_published_release_are_said_and_recorded(tmp_path, caplog):
    """A list file cut short gives a smaller split without an error (every line it keeps is
    valid): the official split's size against the release's is one warning and a data note
    (metrics.json); a held-out validation split counts with the split it was held out of."""
    from diffusemix_bench.config import DatasetConfig
    from diffusemix_bench.data.splits import RELEASE_SIZES, build_splits

    fixture = write_fixture_dataset("cub", tmp_path / "data", num_classes=3, per_class=4)
    with caplog.at_level("WARNING"):
        splits = build_splits(DatasetConfig(name="cub"), fixture["data_dir"])
    here = len(splits.train) + len(splits.val)
    note = f"{here:,} images of the official train split here, 5,994 in the published release"
    assert splits.train.info["differs_from_release"] == splits.val.info["differs_from_release"] == note
    assert f"cub: {note} (a list file cut short" in caplog.text
    assert "official test split here, 5,794" in splits.test.info["differs_from_release"]
    assert RELEASE_SIZES["aircraft"]["trainval"] == 6_667 and RELEASE_SIZES["flowers102"]["test"] == 6_149


def test_a_download_into_a_folder_that_cannot_be_locked_goes_on_without_the_lock(
    tmp_path, monkeypatch, caplog
):
    """Some file systems refuse locks (Lustre mounted noflock, some NFS): the download goes on,
    with a warning, instead of failing where it worked before the lock."""
    import errno
    import fcntl

    from torchvision.datasets import utils as tv_utils

    served = _served_files("cub", tmp_path)
    monkeypatch.setattr(
        tv_utils,
        "download_url",
        lambda url, root, filename=None, md5=None, **_: shutil.copy(served[filename], Path(root) / filename),
    )

    def no_locks(fd, op):
        raise OSError(errno.ENOSYS, "Function not implemented")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    with caplog.at_level("WARNING"):
        assert len(create_dataset("cub", tmp_path / "data", "test", download=True)) > 0
    assert "cannot be locked" in caplog.text


def test_the_images_of_the_splits_read_alone_are_looked_for(tmp_path):
    """evaluate.py attacks one split: a missing image of another split does not stop it."""
    from diffusemix_bench.config import DatasetConfig
    from diffusemix_bench.data.splits import build_splits

    fixture = write_fixture_dataset("cub", tmp_path / "data")
    cfg = DatasetConfig(name="cub")
    splits = build_splits(cfg, fixture["data_dir"])
    Path(splits.train.paths[0]).unlink()
    assert len(build_splits(cfg, fixture["data_dir"], read=("test",)).test) == len(splits.test)
    with pytest.raises(DataFileError, match="cub/train: 1 of"):
        build_splits(cfg, fixture["data_dir"])


def test_a_run_of_missing_images_in_a_large_split_is_found_by_the_sample(tmp_path):
    """A large split (ImageNet's training split) is sampled: a run of missing images longer than
    the spacing is found wherever it lies, and then every missing one is counted; a split of up
    to 20,000 images is looked at whole."""
    from types import SimpleNamespace

    from diffusemix_bench.data.splits import check_images_there

    for k in range(1000):
        (tmp_path / f"{k}.jpg").touch()
    split = SimpleNamespace(
        name="big", split="train", root=tmp_path, paths=[tmp_path / f"{k}.jpg" for k in range(1000)]
    )
    check_images_there(split, whole=100, sample=200)  # larger than `whole`: a sample
    for start in (0, 497, 994):
        for k in range(start, start + 6):
            (tmp_path / f"{k}.jpg").unlink()
        with pytest.raises(
            DataFileError, match=rf"big/train: 6 of the 1000 images .*first: .*/{start}\.jpg\)"
        ):
            check_images_there(split, whole=100, sample=200)
        for k in range(start, start + 6):
            (tmp_path / f"{k}.jpg").touch()
    # Up to `whole` images, the split is looked at whole: one image missing anywhere is found.
    (tmp_path / "501.jpg").unlink()
    with pytest.raises(DataFileError, match=r"big/train: 1 of the 1000 images .*first: .*/501\.jpg\)"):
        check_images_there(split)


def test_skip_leaves_out_missing_files_and_pipes_named_like_images(tmp_path):
    """dataset.on_bad_image=skip, which the message for a missing image recommends, leaves out a
    dangling link (it used to stop with a bare "No such file" error); a pipe named like an image
    is refused by name instead of blocking the loader forever."""
    from diffusemix_bench.config import DatasetConfig
    from diffusemix_bench.data.base import CorruptImageError, load_rgb
    from diffusemix_bench.data.splits import build_splits, verify_splits

    root = _small_image_folder(tmp_path / "images", per_class=3)
    (root / "train" / "a" / "gone.png").symlink_to(tmp_path / "nowhere.png")
    os.mkfifo(root / "train" / "b" / "pipe.png")
    with pytest.raises(
        CorruptImageError, match=r"pipe\.png is not a regular file .*dataset\.on_bad_image=skip"
    ):
        load_rgb(root / "train" / "b" / "pipe.png")
    (tmp_path / "folder.jpg").mkdir()
    with pytest.raises(
        CorruptImageError, match=r"folder\.jpg is not a regular file \(a folder named like an image\)"
    ):
        load_rgb(tmp_path / "folder.jpg")
    # Without skip, the dangling link is named as the splits are read, before anything is built.
    with pytest.raises(
        DataFileError,
        match=r"imagefolder/train: 1 of the 8 images .* \(the first: .*gone\.png\) \(a link to .*nowhere\.png, "
        r"which does not exist\): mend the links, or leave missing images out with dataset\.on_bad_image=skip",
    ):
        build_splits(DatasetConfig(name="imagefolder", root=str(root)), tmp_path)
    cfg = DatasetConfig(name="imagefolder", root=str(root), on_bad_image="skip")
    splits = build_splits(cfg, tmp_path)
    assert len(splits.train) == 8
    with pytest.raises(
        CorruptImageError, match=r"2 image file\(s\) of imagefolder/train are missing or cannot be"
    ):
        verify_splits(build_splits(cfg, tmp_path), tmp_path / "cache", "error")
    bad = verify_splits(splits, tmp_path / "cache", "skip")
    assert sorted(Path(p).name for p in bad["train"]) == ["gone.png", "pipe.png"]
    assert len(splits.train) == 6 and all(
        Path(p).name not in ("gone.png", "pipe.png") for p in splits.train.paths
    )
    # A split of bad images alone, skipped, would be empty: said as that, not as an empty list file.
    for image in (root / "val").rglob("*.png"):
        image.write_bytes(b"")
    with pytest.raises(
        CorruptImageError,
        match=r"every one of the 6 image file\(s\) of imagefolder/val is missing or cannot be decoded .*, so "
        r"dataset\.on_bad_image=skip would leave the split empty",
    ):
        verify_splits(build_splits(cfg, tmp_path), tmp_path / "cache", "skip")


def test_every_entry_point_verifies_as_the_dataset_settings_ask(tmp_path):
    """train.py, generate.py and evaluate.py share one rule (``verify_as_asked``): a run trained
    with on_bad_image=skip is attacked without its corrupt test image (evaluate.py used to stop on
    it, advising the setting the run already had), verify=true names it at once, and a run that
    did neither meets it when it is read, as before."""
    from diffusemix_bench.data.base import CorruptImageError
    from diffusemix_bench.data.splits import build_splits, verify_as_asked
    from tests.conftest import compose_config

    root = _small_image_folder(tmp_path / "images", per_class=2)
    (root / "test" / "a" / "text.png").write_text("not an image")
    overrides = ["dataset=imagefolder", f"dataset.root={root}", f"paths.cache_dir={tmp_path / 'cache'}"]
    skip = compose_config([*overrides, "dataset.on_bad_image=skip"])
    splits = build_splits(skip.dataset, skip.paths.data_dir)
    bad = verify_as_asked(splits, skip.dataset, skip.paths.cache_dir, names=("test",))
    assert [Path(p).name for p in bad["test"]] == ["text.png"]
    assert len(splits.test) == 4 and len(splits.train) == 4
    verify = compose_config([*overrides, "dataset.verify=true"])
    with pytest.raises(CorruptImageError, match="text.png"):
        verify_as_asked(
            build_splits(verify.dataset, verify.paths.data_dir), verify.dataset, verify.paths.cache_dir
        )
    plain = compose_config(overrides)  # a run that neither skipped nor verified: as before
    splits = build_splits(plain.dataset, plain.paths.data_dir)
    assert verify_as_asked(splits, plain.dataset, plain.paths.cache_dir) == {} and len(splits.test) == 5


def test_a_bad_test_image_met_after_training_says_training_is_kept_and_how_to_evaluate(make_cfg):
    """A test image first read after fit (corrupt here): the message says training finished and
    its checkpoints are kept, and to evaluate with ckpt_path=last once the file is mended (not to
    add dataset.on_bad_image=skip, which a resume of the run refuses as another setting). Done so,
    the run ends without training again."""
    from diffusemix_bench.commands import hydra_quoted
    from diffusemix_bench.data.base import CorruptImageError
    from diffusemix_bench.training.run import train

    # (the whole test split read: a batch limit's first batches take the classes in turn)
    cfg = make_cfg(
        [
            "dataset=imagefolder",
            "aug=none",
            "model=resnet18",
            "trainer.max_epochs=1",
            "trainer.limit_test_batches=null",
        ]
    )
    image = sorted((Path(cfg.dataset.root) / "test" / "class 1").glob("img_*"))[0]
    good = image.read_bytes()
    image.write_bytes(b"not an image")
    with pytest.raises(CorruptImageError) as stopped:
        train(cfg)
    said = str(stopped.value)
    assert said.startswith(f"Could not decode image {image}: ") and "on_bad_image" not in said
    assert (
        f"Training itself finished, and its checkpoints are kept in {cfg.paths.output_dir}/checkpoints"
        in said
    )
    assert (
        f"then run the same command with ckpt_path=last and {hydra_quoted('hydra.run.dir', cfg.paths.output_dir)} ("
        in said
    )
    image.write_bytes(good)
    with open_dict(cfg):
        cfg.ckpt_path = "last"
    metrics = train(cfg)
    assert metrics["resumed"] and metrics["epochs"] == 1 and metrics["test_images_evaluated"] > 0


def test_a_file_given_as_the_data_folder_is_named_as_a_file(tmp_path):
    """paths.data_dir (or DIFFUSEMIX_DATA) or dataset.root naming a file: said to be a file, not a
    folder that "does not exist"."""
    from diffusemix_bench.config import DatasetConfig
    from diffusemix_bench.data.layouts import DatasetNotFoundError, check_present

    (tmp_path / "afile").write_text("x")
    with pytest.raises(DatasetNotFoundError, match=rf"{tmp_path / 'afile'} is a file, not a folder"):
        check_present(DatasetConfig(name="flowers102"), tmp_path / "afile")
    with pytest.raises(DatasetNotFoundError, match=rf"{tmp_path / 'afile'} is a file, not a folder"):
        check_present(DatasetConfig(name="imagefolder", root=str(tmp_path / "afile")), tmp_path)


def test_a_split_folder_given_for_the_image_folder_names_its_parent(tmp_path):
    """dataset.root=<images>/train (the split, not the folder that holds the splits): the message
    gives the folder meant."""
    from diffusemix_bench.config import DatasetConfig
    from diffusemix_bench.data.layouts import DatasetNotFoundError
    from diffusemix_bench.data.splits import build_splits

    root = _small_image_folder(tmp_path / "images", per_class=1)
    with pytest.raises(
        DatasetNotFoundError,
        match=rf"{root / 'train'} looks like a split folder: give the folder that holds it, {root}\)",
    ):
        build_splits(DatasetConfig(name="imagefolder", root=str(root / "train")), tmp_path)
    assert len(build_splits(DatasetConfig(name="imagefolder", root=str(root)), tmp_path).train) == 2


def test_class_folders_without_train_above_them_are_named(tmp_path):
    """dataset.root=<folder of class folders> (no train/ level): the message says the class
    folders were found and where to move them, and names dataset.root (paths.data_dir does not
    apply to an image folder)."""
    import shutil

    from diffusemix_bench.config import DatasetConfig
    from diffusemix_bench.data.layouts import DatasetNotFoundError
    from diffusemix_bench.data.splits import build_splits

    root = _small_image_folder(tmp_path / "images", per_class=1)
    flat = tmp_path / "flat"
    shutil.move(root / "train", flat)
    with pytest.raises(DatasetNotFoundError) as refused:
        build_splits(DatasetConfig(name="imagefolder", root=str(flat)), tmp_path)
    said = str(refused.value)
    assert f"{flat} holds class folders (" in said and f"move them into {flat / 'train'}" in said
    assert said.endswith("Point the framework at your image folder with dataset.root=<folder>."), said
    # The image folder one level down (data/my_images/train/): that folder is the one to give (the
    # advice was to move my_images/ into data/train/, making it one class).
    inner = _small_image_folder(tmp_path / "data" / "my_images", per_class=1)
    with pytest.raises(DatasetNotFoundError) as refused:
        build_splits(DatasetConfig(name="imagefolder", root=str(tmp_path / "data")), tmp_path)
    said = str(refused.value)
    assert f"{inner} holds train/: give dataset.root={inner}" in said and "move them" not in said, said
    # evaluate.py says it with its own setting for the folder (it has no dataset.root).
    said = str(refused.value.for_evaluate())
    assert f"{inner} holds train/: give data_dir={inner}" in said and "dataset.root" not in said, said
    assert said.endswith(
        "Point evaluate.py at your image folder (the one holding train/<class>/) with data_dir=<folder>."
    )


def test_warp_gives_snapmixs_squashed_geometry():
    """dataset.warp=true resizes both sides to dataset.resize, as SnapMix's transforms with its
    default warp: True (``datasets/tfs.py``: ``Resize((resize, resize))``, then ``RandomCrop`` or
    ``CenterCrop``). Checked beside that function itself (Shaoli-Huang/SnapMix, 448 from 512 on a
    smooth 300 x 520 picture: identical bytes); pinned here on torchvision's PIL transforms that it
    calls, on noise (PIL's and the tensor resize round 0.3% of its values one level apart)."""
    from torchvision import transforms as pil_transforms

    from diffusemix_bench.data.transforms import eval_transform, train_transform

    def apart(ours: torch.Tensor, theirs: np.ndarray) -> tuple[int, float]:
        d = (ours.permute(1, 2, 0).int() - torch.from_numpy(theirs.copy()).int()).abs()
        return int(d.max()), float(d.float().mean())

    picture = np.random.default_rng(0).integers(0, 256, (30, 52, 3), dtype=np.uint8)
    image = torch.from_numpy(picture).permute(2, 0, 1).contiguous()
    squashed = np.asarray(pil_transforms.Resize((32, 32))(Image.fromarray(picture)))
    most, mean = apart(eval_transform(28, 32, warp=True)(image), squashed[2:30, 2:30])
    assert most <= 1 and mean < 0.01
    assert apart(eval_transform(28, 32)(image), squashed[2:30, 2:30])[1] > 20  # the shorter side alone
    torch.manual_seed(0)
    crop = train_transform("resize_crop", 28, 32, hflip=False, warp=True)(image)
    torch.manual_seed(0)
    i, j, h, w = pil_transforms.RandomCrop.get_params(torch.empty(3, 32, 32), (28, 28))
    most, mean = apart(crop, squashed[i : i + h, j : j + w])
    assert most <= 1 and mean < 0.01


def test_a_runs_classes_are_kept_as_bytes_and_checked_line_by_line(tmp_path):
    """classes.txt keeps a class folder name that is not UTF-8 (the write raised) and is read line
    by line as written (a name holding another line break, U+0085, split in two and every check
    failed); another list is refused naming the first difference."""
    from diffusemix_bench.errors import ConfigError
    from diffusemix_bench.training.locate import check_same_classes, write_classes

    classes = ["a", os.fsdecode(b"caf\xe9"), "c\x85d"]  # a Latin-1 folder name, as os.listdir gives it
    write_classes(tmp_path, classes)
    assert (tmp_path / "classes.txt").read_bytes() == b"a\ncaf\xe9\nc\xc2\x85d\n"
    check_same_classes(tmp_path, classes, "/data")
    with pytest.raises(ConfigError, match=r"label 0 is 'a' in the run and 'c\x85d' there"):
        check_same_classes(tmp_path, classes[::-1], "/copy")


def test_a_resume_from_data_with_other_classes_is_refused_leaving_the_run_as_it_was(make_cfg, tmp_path):
    """A resume may read its data from another folder (dataset.root): one whose classes are not
    the run's is refused before anything in the run folder changes (no failure.json beside its
    metrics, its settings and classes.txt as they were). Tiny-ImageNet's classes are compared by
    wnid (its readable names depend on words.txt)."""
    import shutil

    from diffusemix_bench.errors import ConfigError
    from diffusemix_bench.training.locate import class_ids
    from diffusemix_bench.training.run import train

    cfg = make_cfg(["dataset=imagefolder", "aug=none", "model=resnet18", "trainer.max_epochs=1"])
    train(cfg)
    run_dir = Path(cfg.paths.output_dir)
    before = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    copy = tmp_path / "copy"
    shutil.copytree(cfg.dataset.root, copy)
    for split in ("train", "val", "test"):
        if (copy / split / "class 0").is_dir():
            (copy / split / "class 0").rename(copy / split / "class z")
    with open_dict(cfg):
        cfg.ckpt_path, cfg.trainer.max_epochs, cfg.dataset.root = "last", 2, str(copy)
    with pytest.raises(ConfigError, match=r"label 0 is 'class 0' in the run and 'class 1' there"):
        train(cfg)
    assert {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()} == before
    tiny = SimpleNamespace(classes=["goldfish"], info={"wnids": ["n01443537"]})
    assert class_ids(tiny) == ["n01443537"]


def test_saved_settings_from_before_warp_build_their_data(tmp_path):
    """evaluate.py rebuilds a run's data from its saved settings; those of a run made before
    dataset.warp existed lack it (building the data failed on the missing key): they are read with
    the value that gives what the code did then, the shorter side resized."""
    from omegaconf import OmegaConf

    from diffusemix_bench.config import with_added_settings
    from diffusemix_bench.data.datamodule import ImageDataModule
    from tests.conftest import compose_config

    root = _small_image_folder(tmp_path / "images", per_class=2)
    saved = OmegaConf.to_container(
        compose_config(["dataset=imagefolder", f"dataset.root={root}", "aug=mixup"])
    )
    del saved["dataset"]["warp"]
    filled = with_added_settings(OmegaConf.create(saved))
    assert filled.dataset.warp is False
    assert "arithmetic" not in filled.aug  # aug=diffusemix's setting: not given to aug=mixup
    datamodule = ImageDataModule(filled.dataset, tmp_path)
    datamodule.build()
    assert datamodule.test_set[0][0].shape[-1] == saved["dataset"]["image_size"]


def test_aircraft_can_cut_off_its_copyright_banner_and_says_which_it_did(tmp_path):
    """dataset.options.crop_banner=true cuts the 20 px banner off every FGVC-Aircraft image as it is
    read (training, evaluation and the edits see the same pixels; its own edit store); false, the
    default, reads them whole as the baselines' loaders do, with the edit store of before the option
    and a run folder saved before it read as false."""
    from omegaconf import OmegaConf

    from diffusemix_bench.config import with_added_settings
    from diffusemix_bench.data.splits import build_splits
    from diffusemix_bench.generation.store import settings_hash, store_settings
    from tests.conftest import compose_config

    fixture = write_fixture_dataset("aircraft", tmp_path / "data")
    configs = {
        crop: compose_config(
            [
                "dataset=aircraft",
                f"paths.data_dir={fixture['data_dir']}",
                f"dataset.options.crop_banner={crop}",
            ]
        )
        for crop in ("false", "true")
    }
    whole, cut = (build_splits(configs[c].dataset, configs[c].paths.data_dir) for c in ("false", "true"))
    for split in ("train", "val", "test"):
        a, b = getattr(whole, split).load_image(0), getattr(cut, split).load_image(0)
        assert b.shape[1] == a.shape[1] - 20 and torch.equal(b, a[:, :-20])
    assert cut.train.subset([0]).crop_bottom == 20  # subsets (few-shot, skips) too
    assert (
        whole.train.info["banner"].startswith("kept") and cut.train.info["banner"] == "bottom 20 px cut off"
    )
    hashes = {c: settings_hash(store_settings(cfg, "aircraft", "train")) for c, cfg in configs.items()}
    assert hashes["false"] != hashes["true"]
    old = OmegaConf.create(OmegaConf.to_container(configs["false"], resolve=False))
    del old.dataset.options["crop_banner"]  # a run folder saved before the option
    assert settings_hash(store_settings(old, "aircraft", "train")) == hashes["false"]
    assert with_added_settings(old).dataset.options.crop_banner is False
    with pytest.raises(ConfigError, match="crop_banner"):
        build_splits(
            compose_config(
                ["dataset=aircraft", f"paths.data_dir={fixture['data_dir']}", "dataset.options.crop_banner=2"]
            ).dataset,
            fixture["data_dir"],
        )


def test_a_dataset_option_outside_its_choices_is_refused_before_the_data_is_looked_for(tmp_path):
    """dataset.options.crop_banner=yes (a string to Hydra) was refused only by the reader, once the
    data was there: a missing-dataset message came first. One message at start-up, no folder left."""
    from diffusemix_bench.data.aircraft import LEVELS, TRAIN_SPLITS
    from diffusemix_bench.data.layouts import DATASET_OPTIONS
    from tests.conftest import run_entry

    assert DATASET_OPTIONS["aircraft"]["annotation_level"] == tuple(LEVELS)
    assert DATASET_OPTIONS["aircraft"]["train_split"] == TRAIN_SPLITS
    for given, said in (
        (
            "dataset.options.crop_banner=yes",
            "dataset.options.crop_banner='yes': dataset 'aircraft' takes one of false, true",
        ),
        (
            "+dataset.options.banner=true",
            "dataset.options.banner: dataset 'aircraft' has no option(s) banner",
        ),
    ):
        result = run_entry(
            "train.py", ["dataset=aircraft", given, f"paths.data_dir={tmp_path / 'none'}"], tmp_path
        )
        assert result.returncode == 1 and said in result.stderr, result.stderr[-1500:]
        assert "Traceback" not in result.stderr and not (tmp_path / "outputs").exists()


def test_skipping_a_classs_only_image_of_a_split_is_said(tmp_path, caplog):
    """on_bad_image=skip leaving a class with no image in a split (its one val image corrupt): a
    warning names the class and says the split's numbers are over the others (nothing said so)."""
    from diffusemix_bench.config import DatasetConfig
    from diffusemix_bench.data.splits import build_splits, verify_splits

    root = _small_image_folder(tmp_path / "images", per_class=1)
    (root / "val" / "b" / "0.png").write_bytes(b"not an image")
    cfg = DatasetConfig(name="imagefolder", root=str(root), on_bad_image="skip")
    splits = build_splits(cfg, tmp_path)
    with caplog.at_level("WARNING", logger="diffusemix_bench.data.splits"):
        verify_splits(splits, tmp_path / "cache", "skip")
    assert len(splits.val) == 1
    assert (
        "imagefolder/val: class(es) b have no image left in the split once the corrupt ones are skipped: the val "
        "split's numbers are over the other classes; replace the files with good copies to count them"
    ) in caplog.text
    assert "imagefolder/train: class(es)" not in caplog.text


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P", "L", "RGB"])
def test_a_transparent_pixel_reads_white_whatever_the_images_mode(tmp_path, mode):
    """A fully transparent pixel is composited on white in every mode that carries transparency
    (an alpha band, or PNG's tRNS colour): greyscale with alpha read black before."""
    from diffusemix_bench.data.base import load_rgb

    path = tmp_path / f"{mode}.png"
    if mode in ("RGBA", "LA"):
        rgba = Image.new("RGBA", (4, 4), (40, 40, 40, 255))
        rgba.putpixel((0, 0), (40, 40, 40, 0))
        rgba.convert(mode).save(path)
    else:  # a tRNS colour: the transparent pixel's own value (palette index 0, or black), the others grey
        image = Image.new(mode, (4, 4), 1 if mode == "P" else 40 if mode == "L" else (40, 40, 40))
        if mode == "P":
            image.putpalette([0, 0, 0, 40, 40, 40])
        transparent = (0, 0, 0) if mode == "RGB" else 0
        image.putpixel((0, 0), transparent)
        image.save(path, transparency=transparent)
    with Image.open(path) as raw:
        assert raw.mode == mode and (mode in ("RGBA", "LA") or "transparency" in raw.info)
    pixels = load_rgb(path)
    assert pixels.getpixel((0, 0)) == (255, 255, 255) and pixels.getpixel((1, 1)) == (40, 40, 40)


def test_a_folder_where_a_dataset_file_is_expected_is_said_to_be_one(tmp_path):
    """A dataset's file found as a folder (an archive unpacked wrongly) is named as that through
    train.py, with no advice about permissions, which would not help; no run folder is left."""
    from tests.conftest import run_entry

    root, _ = _write("cub", tmp_path / "data")
    labels = root / "CUB_200_2011" / "image_class_labels.txt"
    labels.unlink()
    labels.mkdir()
    result = run_entry(
        "train.py",
        ["dataset=cub", f"paths.data_dir={root}", "print_config=false", f"hydra.run.dir={tmp_path / 'run'}"],
        tmp_path,
    )
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert (
        f"error: cannot use {labels}: it is a folder where a file is expected. A dataset's file"
        in result.stderr
    )
    assert "permissions" not in result.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("name", ["cub", "aircraft", "tinyimagenet"])
def test_a_dataset_extracted_into_a_folder_of_its_own_name_gives_the_folder_to_use(name, tmp_path):
    """CUB_200_2011/CUB_200_2011/ (an archive extracted into a folder it made of the same name):
    the message names the files a folder deeper and the folder to give instead."""
    root, options = _write(name, tmp_path / "data")
    folder = DATASET_LAYOUTS[name]["folder"]
    (root / folder).rename(root / "inner")
    (root / folder).mkdir()
    (root / "inner").rename(root / folder / folder)
    deeper = re.escape(
        "a folder deeper (the archive extracted into a folder of its own name): give the folder that holds that "
        f"{folder}/, {root / folder}"
    )
    with pytest.raises(DatasetNotFoundError, match=deeper):
        create_dataset(name, root, "train", **options)
    assert len(create_dataset(name, root / folder, "train", **options)) > 0


def test_ids_and_labels_that_are_not_whole_numbers_are_named_with_their_file(tmp_path):
    """Labels or ids read as text, NaN or fractions (a file of another tool's making) are one error
    naming the file, not a Python error from deep in the reader."""
    import pickle

    from scipy.io import savemat

    from diffusemix_bench.data.base import DataFileError

    root, _ = _write("flowers102", tmp_path / "flowers")
    labels = root / "flowers-102" / "imagelabels.mat"
    savemat(labels, {"labels": np.array(["a", "b"])})
    with pytest.raises(DataFileError, match=rf"{re.escape(str(labels))}: its labels must be whole numbers"):
        create_dataset("flowers102", root, "train")
    root, _ = _write("flowers102", tmp_path / "flowers2")
    setid = root / "flowers-102" / "setid.mat"
    savemat(setid, {"trnid": np.array([[1.0, np.nan]]), "valid": np.array([[2]]), "tstid": np.array([[3]])})
    with pytest.raises(DataFileError, match=r"setid\.mat: trnid's ids must be whole numbers, and one is nan"):
        create_dataset("flowers102", root, "train")

    root, _ = _write("cifar100", tmp_path / "cifar")
    train = root / "cifar-100-python" / "train"
    with open(train, "rb") as f:
        batch = pickle.load(f, encoding="latin1")
    for labels_given, said in ((["x"] * len(batch["fine_labels"]), "they are not"), ([None, 1.5], "")):
        batch["fine_labels"] = labels_given
        with open(train, "wb") as f:
            pickle.dump(batch, f, protocol=2)
        with pytest.raises(DataFileError, match=rf"train: 'fine_labels' must be whole numbers, .*{said}"):
            create_dataset("cifar100", root, "train")


def test_a_class_folder_named_in_another_unicode_form_is_the_same_class(tmp_path):
    """val/café written as e and an accent (NFD, as macOS writes names) where train/café is one code
    point (NFC): the same class, not a class train/ lacks with a name that prints alike; train/
    holding both forms is refused."""
    import unicodedata

    composed, decomposed = unicodedata.normalize("NFC", "café"), unicodedata.normalize("NFD", "café")
    assert composed != decomposed
    for split, name in (("train", composed), ("train", "tea"), ("val", decomposed), ("val", "tea")):
        (tmp_path / "img" / split / name).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (8, 8), (40 * i, 0, 0)).save(tmp_path / "img" / split / name / f"{i}.png")
    val = create_dataset("imagefolder", tmp_path / "img", "val")
    assert val.classes == [composed, "tea"]
    assert [(Path(p).parent.name, t) for p, t in zip(val.paths, val.targets)] == [(decomposed, 0)] * 3 + [
        ("tea", 1)
    ] * 3
    (tmp_path / "img" / "val" / decomposed).rename(tmp_path / "img" / "train" / decomposed)
    with pytest.raises(
        ValueError, match=r"holds 2 class folders named café \(the same letters written in two"
    ):
        create_dataset("imagefolder", tmp_path / "img", "train")


def test_an_image_listed_in_two_splits_is_refused(tmp_path):
    """A split file listing another split's images (Flowers' setid.mat with tstid holding training
    ids) would measure a model on images it trained on: refused, naming both splits."""
    from scipy.io import loadmat, savemat

    from diffusemix_bench.config import DatasetConfig
    from diffusemix_bench.data.splits import build_splits

    root, _ = _write("flowers102", tmp_path)
    setid = root / "flowers-102" / "setid.mat"
    ids = {k: v for k, v in loadmat(setid).items() if not k.startswith("__")}
    assert len(build_splits(DatasetConfig(name="flowers102"), root).test) == ids["tstid"].size
    ids["tstid"] = np.concatenate([ids["tstid"], ids["trnid"][:, :2]], axis=1)
    savemat(setid, ids)
    with pytest.raises(
        DataFileError,
        match=r"flowers102/train and flowers102/test share 2 image\(s\) \(the first: .*image_\d+\.jpg\)",
    ):
        build_splits(DatasetConfig(name="flowers102"), root)
