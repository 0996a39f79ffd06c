"""A corpus of bad input, each case made on the spot and run through a real entry point
(``train.py``, ``generate.py``, ``evaluate.py``, ``report.py``) exactly as its command line would run
it: the script file is executed as ``__main__`` with the case's arguments. Cases run one after the
other in one Python process (``python -m tests.bad_input_corpus <folder>``), so the imports are
paid once; each case's exit code, standard output and standard error are captured.

Every case says what it expects:

- ``error``: exit code 1, a one-line message matching ``pattern``, no Python traceback;
- ``skip``: the run succeeds and counts what it skipped (``pattern`` matches the report of it);
- ``accepted``: the run succeeds (``pattern``, when given, matches its output).

Nothing may be written outside the case's own folder (its run folder, data, cache and stores).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import pickle
import random
import re
import runpy
import shutil
import struct
import sys
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# A few CPU steps on tiny images (the README's debug preset, shrunk further).
FAST = [
    "debug=fast",
    "dataset.batch_size=4",
    "dataset.image_size=32",
    "dataset.resize=36",
    "logger=none",
    "trainer.max_epochs=1",
    "callbacks.progress_bar=none",
    "print_config=false",
    "fractals.count=8",
    "fractals.size=32",
    "fractals.points=20000",
]


@dataclass
class Case:
    name: str
    expect: str  # error | skip | accepted
    make: Callable[[Path], tuple[str, list[str]]]  # the case's folder -> (script, arguments)
    pattern: str = ""


def _fixture(name: str, folder: Path, **kw) -> dict:
    from tests.fixtures.datasets import write_fixture_dataset

    return write_fixture_dataset(name, folder / "data", **kw)


def _train_args(folder: Path, dataset: str, **kw) -> list[str]:
    fx = _fixture(dataset, folder, **kw)
    where = (
        f"dataset.root={fx['data_dir']}" if dataset == "imagefolder" else f"paths.data_dir={fx['data_dir']}"
    )
    options = [f"++dataset.options.{k}={v}" for k, v in fx["options"].items()]
    return [
        f"dataset={dataset}",
        where,
        *options,
        *FAST,
        f"paths.cache_dir={folder / 'cache'}",
        f"hydra.run.dir={folder / 'run'}",
    ]


def _train(dataset: str = "cifar100", *extra: str, prepare: Callable[[Path, dict], None] | None = None, **kw):
    def make(folder: Path) -> tuple[str, list[str]]:
        args = _train_args(folder, dataset, **kw)
        if prepare is not None:
            prepare(folder, {"data": folder / "data"})
        return "train.py", [*args, *[e.format(folder=folder) for e in extra]]

    return make


def _plain(script: str, *args: str, prepare: Callable[[Path], None] | None = None):
    def make(folder: Path) -> tuple[str, list[str]]:
        if prepare is not None:
            prepare(folder)
        return script, [a.format(folder=folder) for a in args] + [f"hydra.run.dir={folder / 'run'}"]

    return make


# -- makers of bad files ---------------------------------------------------------------------------
def _noise(name: str, n: int) -> bytes:
    """``n`` seeded random bytes: a case is the same bad file every run."""
    return random.Random(name).randbytes(n)


def _cifar(folder: Path) -> Path:
    return folder / "data" / "cifar-100-python" / "train"


def _garbage_cifar(folder: Path, _) -> None:
    _cifar(folder).write_bytes(_noise("cifar", 3000))


class _Exploit:
    def __reduce__(self):
        return (os.system, (f"touch {_EXPLOITED}",))


_EXPLOITED = Path("/tmp/diffusemix-corpus-exploited")


def _malicious_cifar(folder: Path, _) -> None:
    _cifar(folder).write_bytes(pickle.dumps({"data": _Exploit()}, protocol=2))


def _cifar_missing_keys(folder: Path, _) -> None:
    _cifar(folder).write_bytes(pickle.dumps({"batch_label": "x", "data": [1, 2, 3]}, protocol=2))


def _cub_garbage_lines(folder: Path, _) -> None:
    path = folder / "data" / "CUB_200_2011" / "images.txt"
    path.write_text(path.read_text() + "this line has no id\n")


def _cub_label_missing(folder: Path, _) -> None:
    path = folder / "data" / "CUB_200_2011" / "image_class_labels.txt"
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:-1]))


def _aircraft_garbage(folder: Path, _) -> None:
    data = folder / "data" / "fgvc-aircraft-2013b" / "data"
    (data / "images_variant_trainval.txt").write_text("1034007\n\x00\x01 garbage without a name\n")


def _flowers_mat_garbage(folder: Path, _) -> None:
    (folder / "data" / "flowers-102" / "imagelabels.mat").write_bytes(
        b"MATLAB 5.0 MAT-file" + _noise("mat", 200)
    )


def _flowers_setid_missing(folder: Path, _) -> None:
    (folder / "data" / "flowers-102" / "setid.mat").unlink()


def _flowers_setid_empty(folder: Path, _) -> None:
    (folder / "data" / "flowers-102" / "setid.mat").write_bytes(b"")  # a download cut off at its start


def _flowers_labels_cut_short(folder: Path, _) -> None:
    path = folder / "data" / "flowers-102" / "imagelabels.mat"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _cub_split_all_test(folder: Path, _) -> None:
    path = folder / "data" / "CUB_200_2011" / "train_test_split.txt"
    path.write_text("".join(f"{line.split()[0]} 0\n" for line in path.read_text().splitlines()))


def _cub_images_cut_short(folder: Path, _) -> None:
    """CUB's images/ as an extraction stopped part way leaves it: a class folder's images gone."""
    for path in sorted((folder / "data" / "CUB_200_2011" / "images").iterdir())[-1].iterdir():
        path.unlink()


def _corrupt_cub_image(folder: Path, _) -> None:
    from tests.fixtures.datasets import corrupt_one_image

    corrupt_one_image("cub", folder / "data")


def _bomb_png(path: Path) -> None:
    """A PNG whose header claims 40000 x 40000 pixels (PIL's decompression-bomb limit is 179M)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", 40000, 40000, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def _imagefolder_root(folder: Path) -> Path:
    from tests.fixtures.datasets import IMAGEFOLDER_DIR

    return folder / "data" / IMAGEFOLDER_DIR


def _bomb_in_imagefolder(folder: Path, _) -> None:
    _bomb_png(_imagefolder_root(folder) / "train" / "class 1" / "huge.png")


def _sixteen_bit(folder: Path, _) -> None:
    import numpy as np
    from PIL import Image

    ramp = (np.arange(40 * 48, dtype=np.uint16).reshape(40, 48) * 30).astype(np.uint16)
    Image.fromarray(ramp).save(_imagefolder_root(folder) / "train" / "class 2" / "deep.png")


def _symlink_loop(folder: Path, _) -> None:
    cls = _imagefolder_root(folder) / "train" / "class 0"
    (cls / "loop").symlink_to(cls, target_is_directory=True)


def _empty_val_class(folder: Path, _) -> None:
    for path in (_imagefolder_root(folder) / "val" / "class 2").iterdir():
        if path.is_file():
            path.unlink()


def _readme(folder: Path, _) -> None:
    (_imagefolder_root(folder) / "train" / "class 1" / "README.txt").write_text("about these images\n")


def _no_train_split(folder: Path, _) -> None:
    shutil.rmtree(_imagefolder_root(folder) / "train")


def _empty_train_class(folder: Path, _) -> None:
    (_imagefolder_root(folder) / "train" / "class 7").mkdir()


def _store_of_a_twin_bmp_folder(folder: Path, _) -> None:
    """The image folder's images as BMPs (uncompressed: one size for one image size), and a
    store made from a copy of it whose pictures differ: same names, same sizes, other images."""
    from PIL import Image, ImageOps

    root = _imagefolder_root(folder)
    for png in sorted(root.rglob("*.png")):
        with Image.open(png) as im:
            im.convert("RGB").save(png.with_suffix(".bmp"))
        png.unlink()
    twin = folder / "twin"
    shutil.copytree(root, twin)
    for bmp in sorted(twin.rglob("*.bmp")):
        with Image.open(bmp) as im:
            ImageOps.invert(im.convert("RGB")).save(bmp)
    _generate_into(
        folder,
        folder / "data",
        "imagefolder",
        f"dataset.root={twin}",
        "dataset.image_size=32",
        "dataset.resize=36",
    )


def _weights_garbage_safetensors(folder: Path) -> None:
    (folder / "w.safetensors").write_bytes(b"\xff" * 64)


def _weights_garbage_pt(folder: Path) -> None:
    (folder / "w.pt").write_bytes(b"junk\n")  # (the unpickler stopped on a KeyError: a traceback)


def _weights_malicious(folder: Path) -> None:
    (folder / "w.pt").write_bytes(pickle.dumps(_Exploit()))


def _weights_other_architecture(folder: Path) -> None:
    import torch

    torch.save({"conv.weight": torch.zeros(3, 3, 3, 3), "fc.bias": torch.zeros(7)}, folder / "w.pt")


def _garbage_ckpt(folder: Path) -> None:
    (folder / "garbage.ckpt").write_bytes(_noise("ckpt", 500))


def _garbage_last_ckpt(folder: Path) -> None:
    (folder / "run" / "checkpoints").mkdir(parents=True, exist_ok=True)
    (folder / "run" / "checkpoints" / "last.ckpt").write_bytes(_noise("last", 500))


# -- the edit store ---------------------------------------------------------------------------------
_STORE_ARGS = ["generator=tiny", "generator.num_prompts=2", "aug=diffusemix"]


def _generate_into(folder: Path, data_dir: Path, dataset: str = "cifar100", *extra: str) -> Path:
    """Fill the tiny store the DiffuseMix cases read; return its folder."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from diffusemix_bench.config import register_configs
    from diffusemix_bench.generation.generate import generate

    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(
            "generate",
            [
                f"dataset={dataset}",
                f"paths.data_dir={data_dir}",
                f"paths.cache_dir={folder / 'cache'}",
                "generator=tiny",
                "generator.num_prompts=2",
                "dataset.num_workers=0",
                *extra,
            ],
        )
    with contextlib.redirect_stdout(io.StringIO()):
        summary = generate(cfg)
    GlobalHydra.instance().clear()
    return Path(summary["folders"]["train"])


def _store_then(damage: Callable[[Path], None]):
    def prepare(folder: Path, paths: dict) -> None:
        damage(_generate_into(folder, paths["data"]))

    return prepare


def _cub_store_then_corrupt(folder: Path, paths: dict) -> None:
    """A CUB store made at the cases' size, then one of the images it was made from corrupted."""
    from tests.fixtures.datasets import corrupt_one_image

    _generate_into(folder, paths["data"], "cub", "dataset.image_size=32", "dataset.resize=36")
    corrupt_one_image("cub", paths["data"])


def _truncate_edit(store: Path) -> None:
    edit = next(iter(sorted(p for p in (store / "edits").rglob("*.*") if p.is_file())))
    edit.write_bytes(edit.read_bytes()[:50])


def _damage_edit_in_place(store: Path) -> None:
    """Every edit's bytes replaced by zeros after its first 8 bytes: the size still matches the
    manifest, so only reading it finds it (in the middle of training)."""
    for edit in (p for p in (store / "edits").rglob("*.*") if p.is_file()):
        data = edit.read_bytes()
        edit.write_bytes(data[:8] + bytes(len(data) - 8))


def _manifest_garbage(store: Path) -> None:
    for path in (store / "manifest").glob("*.txt"):
        path.write_bytes(_noise("manifest", 300) + b"\nautumn 99999999999999999999999 10\n")


def _runtime_garbage(store: Path) -> None:
    (store / "runtime.json").write_bytes(b"\x00\xff not json")


def _generate_args(folder: Path, *extra: str) -> list[str]:
    fx = _fixture("cifar100", folder)
    return [
        "dataset=cifar100",
        f"paths.data_dir={fx['data_dir']}",
        f"paths.cache_dir={folder / 'cache'}",
        "generator=tiny",
        "generator.num_prompts=2",
        "dataset.num_workers=0",
        "trainer.enable_progress_bar=false",
        f"hydra.run.dir={folder / 'run'}",
        *extra,
    ]


def _generate(*extra: str, damage: Callable[[Path], None] | None = None):
    def make(folder: Path) -> tuple[str, list[str]]:
        args = _generate_args(folder, *extra)
        if damage is not None:
            damage(_generate_into(folder, folder / "data"))
        return "generate.py", args

    return make


def _generate_without_data(folder: Path) -> tuple[str, list[str]]:
    return "generate.py", [
        "dataset=cub",
        f"paths.data_dir={folder / 'nothing'}",
        f"paths.cache_dir={folder / 'cache'}",
        "generator=tiny",
        f"hydra.run.dir={folder / 'run'}",
    ]


def _empty_runs(folder: Path) -> None:
    (folder / "runs").mkdir()


CASES: list[Case] = [
    # -- settings -------------------------------------------------------------------------------------
    Case("misspelt aug option", "error", _train("cifar100", "aug=diffuesmix"), r"aug=diffuesmix.*diffusemix"),
    Case("misspelt aug key", "error", _train("cifar100", "aug=mixup", "aug.alpah=0.5"), r"alpah.*alpha"),
    Case(
        "aug= beside an experiment's arms",
        "error",
        _train("cifar100", "experiment=study_flowers", "aug=none"),
        r"aug=none: the runs' methods are chosen by arm=.*experiment=study_flowers",
    ),
    Case("batch size 0", "error", _train("cifar100", "dataset.batch_size=0"), r"dataset\.batch_size"),
    Case("a word alone", "error", _plain("train.py", "cub"), r"'cub' is not a setting .*give dataset=cub"),
    Case(
        "empty data folder of evaluate.py",
        "error",
        _plain("evaluate.py", "ckpt={folder}", "eval.fgsm=true", "data_dir="),
        r"data_dir is empty",
    ),
    Case(
        "a run folder alone",
        "error",
        _plain("evaluate.py", "{folder}"),
        r"is not a setting: give the run folder or checkpoint as ckpt=",
    ),
    Case(
        "a method without a setting the experiment sets",
        "error",
        _plain("train.py", "experiment=table7", "dataset=cars", "aug=none", "--cfg", "job"),
        r"experiment=table7 sets aug\.views, and aug=none, given here, has no such setting.*Leave aug=none out",
    ),
    Case(
        "a bad value in one run's printed config",
        "error",
        _plain("train.py", "aug=diffusemix", "aug.lam=1.5", "--cfg=job"),
        r"aug\.lam of aug=diffusemix must be in \[0, 1\]; got 1\.5",
    ),
    Case(
        "a value with a space, unquoted",
        "error",
        _plain("train.py", "seed=3", "3"),
        r"'3' is not a setting .*If it is the rest of seed=3's value: a value with a space in it is quoted whole",
    ),
    Case(
        "a train.py setting given to evaluate.py",
        "error",
        _plain("evaluate.py", "ckpt={folder}", "eval.fgsm=true", "paths.data_dir={folder}"),
        r"paths\.data_dir: a train\.py setting; evaluate\.py takes it as data_dir=<value>",
    ),
    Case(
        "a train.py group given to evaluate.py",
        "error",
        _plain("evaluate.py", "ckpt={folder}", "eval.fgsm=true", "experiment=table5"),
        r"experiment: evaluate\.py has no such setting: the run's own settings",
    ),
    Case(
        "a misspelt evaluate.py setting",
        "error",
        _plain("evaluate.py", "ckpt={folder}", "eval.fgsm=true", "sed=3"),
        r"sed: the top level has no setting 'sed'; did you mean seed\?$",
    ),
    Case(
        "one run's printed config on a machine without the GPU it asks for",
        "accepted",
        lambda folder: ("train.py", ["trainer=gpu", f"hydra.run.dir={folder / 'run'}", "--cfg=job"]),
        r"accelerator: gpu",
    ),
    Case(
        "a run's setting given to evaluate.py",
        "error",
        _plain("evaluate.py", "ckpt={folder}", "eval.fgsm=true", "dataset.batch_size=8"),
        r"dataset\.batch_size: evaluate\.py has no such setting: the run's own settings .*config_resolved",
    ),
    Case(
        "a list setting given a word",
        "error",
        _plain("generate.py", "generator=tiny", "generator.prompts=autumn"),
        r"generator\.prompts takes a list: give generator\.prompts=\[autumn\]",
    ),
    Case(
        "early stopping without a validation split",
        "error",
        _train("cifar100", "dataset.val_fraction=0", "callbacks.early_stopping_patience=2"),
        r"early_stopping_patience=2 stops on the validation split",
    ),
    Case("empty cache folder", "error", _train("cifar100", "paths.cache_dir="), r"paths\.cache_dir is empty"),
    Case(
        "empty edits folder",
        "error",
        _plain("generate.py", "generator=tiny", "generator.edits_dir="),
        r"generator\.edits_dir is empty",
    ),
    Case(
        "a fraction of the batches that leaves none",
        "error",
        _train("cifar100", "trainer.limit_train_batches=0.01"),
        r"error: trainer\.limit_train_batches=0\.01: 0\.01 of the \d+ batches .* is none; give a number of batches instead",
    ),
    Case(
        "an experiment's per-dataset value missing for the dataset",
        "error",
        _train("cifar100", "experiment=table4", "dataset=imagefolder", "dataset.root={folder}/data"),
        r"adv\.p: .*not for dataset 'imagefolder'.*adv\.p=<value>",
    ),
    Case("negative max_epochs", "error", _train("cifar100", "trainer.max_epochs=-1"), r"max_epochs"),
    Case("learning rate 0", "error", _train("cifar100", "optim.lr=0"), r"optim\.lr"),
    Case(
        "null for a setting that takes a value",
        "error",
        _train("cifar100", "trainer.max_epochs=null"),
        r"^error: trainer\.max_epochs=null: trainer\.max_epochs needs a whole number, not null \(its default: \d+\); give one",
    ),
    Case(
        "null for a setting that takes true or false",
        "error",
        _train("cifar100", "eval.fgsm=null"),
        r"^error: eval\.fgsm=null: eval\.fgsm needs true or false, not null \(its default: false\); give one",
    ),
    Case(
        "'+' (add) before a setting the config has",
        "error",
        _train("cifar100", "+trainer.max_epochs=3"),
        r"^error: \+trainer\.max_epochs=3: trainer\.max_epochs is a setting the config has already, so '\+' "
        r"\(add\) does not apply; give trainer\.max_epochs=3$",
    ),
    Case("val_fraction above 1", "error", _train("flowers102", "dataset.val_fraction=1.5"), r"val_fraction"),
    Case(
        "samples_per_class above a class",
        "error",
        _train("flowers102", "dataset.samples_per_class=1000"),
        r"samples_per_class=1000 but class 0 \('[^']+'\) has only \d+ training images",
    ),
    Case(
        "trainer=gpu without a GPU",
        "error",
        # debug=fast (in FAST) puts a run on the CPU: the accelerator is asked for again after it.
        _train("cifar100", "trainer=gpu", "trainer.accelerator=gpu"),
        r"no CUDA GPU",
    ),
    Case(
        "method needs another model",
        "error",
        _train("cifar100", "aug=manifold_mixup", "model=resnet18"),
        r"manifold_mixup",
    ),
    Case("unknown trainer flag", "error", _train("cifar100", "+trainer.fooo=1"), r"fooo"),
    Case(
        "interval sweep",
        "error",
        _train("cifar100", "trainer.max_epochs=interval(1,2)"),
        r"trainer\.max_epochs=interval\(1,2\): an interval is a search space .*\(trainer\.max_epochs=a,b,c\)",
    ),
    Case("batch size not a number", "error", _train("cifar100", "dataset.batch_size=many"), r"batch_size"),
    Case(
        # Refused before the data is read and the settings are printed (no config tree before it).
        "unknown timm model",
        "error",
        _train("cifar100", "model=timm", "model.name=resnet10x", "print_config=true"),
        r"\A(?:(?!max_epochs:)[\s\S])*model\.name: 'resnet10x' is not a timm model .*close names: .*resnet10t",
    ),
    Case(  # a tag timm has a config of and no weights: a model from scratch
        "untrained timm tag",
        "accepted",
        _train(
            "cifar100",
            "model=timm",
            "model.name=lcnet_035.untrained",
            "model.pretrained=false",
            "dataset.image_size=32",
        ),
    ),
    Case(
        "unknown timm pretrained tag",
        "error",
        _train("cifar100", "model=timm", "model.name=resnet10t.bogus", "model.pretrained=false"),
        r"model\.name: 'resnet10t\.bogus': timm \S+ has no weights tagged 'bogus' for resnet10t; its tags: c3_in1k",
    ),
    Case("dataset folder missing", "error", _train("cifar100", "dataset=cub"), r"CUB_200_2011"),
    Case(
        "fractal folder missing",
        "error",
        _train(
            "cifar100",
            "aug=diffusemix",
            "aug.components=originals_fractal",
            "fractals=folder",
            "fractals.dir={folder}/nowhere",
        ),
        r"fractals\.dir=.*nowhere.* is not a folder",
    ),
    # -- resuming ---------------------------------------------------------------------------------------
    Case(
        "resume without checkpoint",
        "error",
        _train("cifar100", "ckpt_path=last"),
        r"last\.ckpt|hydra\.run\.dir",
    ),
    Case(
        "checkpoint path missing", "error", _train("cifar100", "ckpt_path={folder}/none.ckpt"), r"none\.ckpt"
    ),
    Case(
        "checkpoint not a checkpoint",
        "error",
        _train("cifar100", "ckpt_path={folder}/garbage.ckpt", prepare=lambda f, _: _garbage_ckpt(f)),
        r"garbage\.ckpt",
    ),
    Case(
        "last checkpoint damaged",
        "error",
        _train("cifar100", "ckpt_path=last", prepare=lambda f, _: _garbage_last_ckpt(f)),
        r"last\.ckpt.*not a checkpoint",
    ),
    # -- dataset files ------------------------------------------------------------------------------------
    Case(
        "CIFAR pickle garbage",
        "error",
        _train("cifar100", prepare=_garbage_cifar),
        r"cifar-100-python.*train",
    ),
    Case(
        "CIFAR pickle that runs code",
        "error",
        _train("cifar100", prepare=_malicious_cifar),
        r"(?i)refus|not allowed|forbidden",
    ),
    Case(
        "CIFAR pickle without its keys",
        "error",
        _train("cifar100", prepare=_cifar_missing_keys),
        r"cifar-100-python.*train",
    ),
    Case("CUB images.txt garbage line", "error", _train("cub", prepare=_cub_garbage_lines), r"images\.txt"),
    Case(
        "CUB image without a label",
        "error",
        _train("cub", prepare=_cub_label_missing),
        r"image_class_labels\.txt",
    ),
    Case(
        "Aircraft list garbage",
        "error",
        _train("aircraft", prepare=_aircraft_garbage),
        r"images_variant_trainval\.txt",
    ),
    Case(
        "Flowers .mat garbage",
        "error",
        _train("flowers102", prepare=_flowers_mat_garbage),
        r"imagelabels\.mat",
    ),
    Case(
        "Flowers setid.mat missing",
        "error",
        _train("flowers102", prepare=_flowers_setid_missing),
        r"setid\.mat",
    ),
    Case(
        "Flowers setid.mat empty", "error", _train("flowers102", prepare=_flowers_setid_empty), r"setid\.mat"
    ),
    Case(
        "Flowers imagelabels.mat cut short",
        "error",
        _train("flowers102", prepare=_flowers_labels_cut_short),
        r"imagelabels\.mat: not a readable MATLAB file",
    ),
    Case(
        "CUB split without training images",
        "error",
        _train("cub", prepare=_cub_split_all_test),
        r"cub/train \(read from .*\): the split is empty",
    ),
    Case(
        "CUB images extracted part way",
        "error",
        _train("cub", prepare=_cub_images_cut_short),
        r"cub/train: \d+ of the \d+ images its files list are not there .*an archive extracted part way\?",
    ),
    Case(
        "image folder with dataset.download=true",
        "error",
        _train("imagefolder", "dataset.download=true"),
        r"dataset\.download=true: an image folder",
    ),
    # -- images ---------------------------------------------------------------------------------------------
    Case("corrupt image", "error", _train("cub", prepare=_corrupt_cub_image, **{}), r"\.jpg"),
    Case(
        "corrupt image, loader workers",
        "error",
        _train(
            "cub", "dataset.num_workers=2", "trainer.limit_train_batches=null", prepare=_corrupt_cub_image
        ),
        r"\.jpg",
    ),
    Case(
        "corrupt image skipped",
        "skip",
        _train("cub", "dataset.on_bad_image=skip", prepare=_corrupt_cub_image),
        r"1 corrupt image\(s\) skipped",
    ),
    Case(
        "corrupt image found at start-up",
        "error",
        _train("cub", "dataset.verify=true", prepare=_corrupt_cub_image),
        r"\.jpg",
    ),
    Case("decompression bomb", "error", _train("imagefolder", prepare=_bomb_in_imagefolder), r"huge\.png"),
    Case("16-bit PNG", "accepted", _train("imagefolder", prepare=_sixteen_bit)),
    Case("symlink loop", "accepted", _train("imagefolder", prepare=_symlink_loop), r"(?i)link"),
    Case("empty val class folder", "accepted", _train("imagefolder", prepare=_empty_val_class), r"class 2"),
    Case(
        "README beside images",
        "accepted",
        _train("imagefolder", prepare=_readme),
        r"(?i)not an image|skipped",
    ),
    Case("image folder without train/", "error", _train("imagefolder", prepare=_no_train_split), r"train"),
    Case("empty train class folder", "error", _train("imagefolder", prepare=_empty_train_class), r"class 7"),
    Case("one class", "error", _train("imagefolder", num_classes=1), r"holds one class folder \(class 0\)"),
    # -- weights --------------------------------------------------------------------------------------------
    Case(
        "weights: garbage safetensors",
        "error",
        _train(
            "cifar100",
            "model.weights={folder}/w.safetensors",
            prepare=lambda f, _: _weights_garbage_safetensors(f),
        ),
        r"w\.safetensors",
    ),
    Case(
        "weights: garbage torch file",
        "error",
        _train("cifar100", "model.weights={folder}/w.pt", prepare=lambda f, _: _weights_garbage_pt(f)),
        r"w\.pt is not a readable torch file .*torch\.save",
    ),
    Case(
        "weights: a pickle that runs code",
        "error",
        _train("cifar100", "model.weights={folder}/w.pt", prepare=lambda f, _: _weights_malicious(f)),
        r"w\.pt.*(?i:weights_only|refus|unsupported|not allowed)",
    ),
    Case(
        "weights of another architecture",
        "error",
        _train(
            "cifar100", "model.weights={folder}/w.pt", prepare=lambda f, _: _weights_other_architecture(f)
        ),
        r"w\.pt",
    ),
    Case("weights file missing", "error", _train("cifar100", "model.weights={folder}/none.pt"), r"none\.pt"),
    # -- the edit store -------------------------------------------------------------------------------------
    Case("DiffuseMix without edits", "error", _train("cifar100", *_STORE_ARGS), r"python \S*generate\.py"),
    Case(
        "DiffuseMix with a truncated edit",
        "error",
        _train("cifar100", *_STORE_ARGS, prepare=_store_then(_truncate_edit)),
        r"broken.*\.npy[\s\S]*python \S*generate\.py",
    ),
    Case(
        "DiffuseMix with edits damaged in place",
        "error",
        _train("cifar100", *_STORE_ARGS, prepare=_store_then(_damage_edit_in_place)),
        r"\.npy.*broken.*python \S*generate\.py.*generator\.verify=true",
    ),
    Case(
        "DiffuseMix with a garbage manifest",
        "error",
        _train("cifar100", *_STORE_ARGS, prepare=_store_then(_manifest_garbage)),
        r"python \S*generate\.py",
    ),
    Case(
        "DiffuseMix with an image corrupted since its edits were made",
        "error",
        _train("cub", *_STORE_ARGS, prepare=_cub_store_then_corrupt),
        r"Bird_species_A0_0000_1001\.jpg \(image 0 of the split\) does not decode.*dataset\.on_bad_image=skip",
    ),
    Case(
        "DiffuseMix leaves an image corrupted since its edits were made out",
        "skip",
        _train("cub", *_STORE_ARGS, "dataset.on_bad_image=skip", prepare=_cub_store_then_corrupt),
        r"1 corrupt image\(s\) skipped",
    ),
    Case(
        "DiffuseMix on an image folder whose twin (same names and sizes, other BMPs) made the store",
        "error",
        _train("imagefolder", *_STORE_ARGS, prepare=_store_of_a_twin_bmp_folder),
        r"holds the edits of another image folder, .*twin: image \d+ of the split, .* has the same name and "
        r"size there and other contents here.*generator\.edits_dir=<folder>",
    ),
    Case(
        "generate.py with a garbage runtime.json",
        "error",
        _generate(damage=lambda s: (_truncate_edit(s), _runtime_garbage(s))),
        r"runtime\.json",
    ),
    Case("generate.py repairs a truncated edit", "accepted", _generate(damage=_truncate_edit), r"broken=1"),
    Case("generate.py without data", "error", _generate_without_data, r"CUB_200_2011"),
    Case("generate.py batch size 0", "error", _generate("generator.batch_size=0"), r"generator\.batch_size"),
    Case("generate.py unknown dtype", "error", _generate("generator.dtype=fp8"), r"generator\.dtype"),
    Case(
        "generate.py misspelt split",
        "error",
        _generate("generator.splits=[tain]"),
        r"generator\.splits .*got \['tain'\]",
    ),
    Case("generate.py no split", "error", _generate("generator.splits=[]"), r"generator\.splits .*got \[\]"),
    # A billion steps filled the memory (the scheduler's arrays); NaN guidance made a store whose
    # settings never equal themselves (its advice, to delete the store, looped).
    Case(
        "generate.py steps beyond the schedule",
        "error",
        _generate("generator.steps=1000000000"),
        r"generator\.steps must be in \[1, 1000\]",
    ),
    Case(
        "generate.py guidance not a number",
        "error",
        _generate("generator.image_guidance_scale=nan"),
        r"generator\.image_guidance_scale must be a finite number; got nan",
    ),
    Case(
        "generate.py no prompts", "error", _generate("generator.prompts=[]"), r"generator\.prompts is empty"
    ),
    Case(
        "generate.py devices not a count",
        "error",
        _generate("trainer.devices=abc"),
        r"trainer\.devices='abc': give a number",
    ),
    # -- evaluate.py and report.py ---------------------------------------------------------------------
    Case(
        "evaluate.py checkpoint missing",
        "error",
        _plain("evaluate.py", "ckpt={folder}/none", "eval.fgsm=true"),
        r"none",
    ),
    Case(
        "evaluate.py checkpoint garbage",
        "error",
        _plain("evaluate.py", "ckpt={folder}/garbage.ckpt", "eval.fgsm=true", prepare=_garbage_ckpt),
        r"garbage\.ckpt",
    ),
    Case(
        "last checkpoint damaged",
        "error",
        _train("cifar100", "ckpt_path=last", prepare=lambda f, _: _garbage_last_ckpt(f)),
        r"last\.ckpt.*not a checkpoint",
    ),
    Case(
        "report.py unknown experiment",
        "error",
        _plain("report.py", "experiment=table99", "runs={folder}"),
        r"table99",
    ),
    Case(
        "report.py folder without runs",
        "error",
        _plain("report.py", "experiment=table6", "runs={folder}/runs", prepare=_empty_runs),
        r"runs",
    ),
    Case(
        "the run folder's place is a file",
        "error",
        _plain("train.py", "dataset=cifar100", prepare=lambda f: (f / "run").write_text("a file")),
        r"hydra\.run\.dir=\S*run: the folder cannot be made or written there \(\S*run is a file, where a folder is expected\)",
    ),
    # -- training itself ------------------------------------------------------------------------------
    Case("loss becomes non-finite", "error", _train("cifar100", "optim.lr=1e30"), r"(?i)non-finite|nan|inf"),
]


def run_case(case: Case, folder: Path) -> dict:
    """Make the case in ``folder``, run its entry point as ``__main__``, and judge the outcome."""
    from hydra.core.global_hydra import GlobalHydra

    folder.mkdir(parents=True)
    started = time.time()
    try:
        script, args = case.make(folder)
    except Exception as exc:  # the case could not be made: a fault of the corpus, reported as such
        return {"name": case.name, "outcome": "corpus error", "detail": repr(exc)}
    before = _outside_snapshot(folder)
    out, err = io.StringIO(), io.StringIO()
    code = 0
    argv, cwd = sys.argv, os.getcwd()
    sys.argv = [script, *args]
    os.environ.pop("HYDRA_FULL_ERROR", None)
    try:
        os.chdir(folder)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                runpy.run_path(str(ROOT / script), run_name="__main__")
            except SystemExit as exc:
                if isinstance(exc.code, str):
                    print(exc.code, file=sys.stderr)
                    code = 1
                else:
                    code = int(exc.code or 0)
            except BaseException:  # an error that escaped the entry point: what the user would see
                import traceback

                traceback.print_exc()
                code = 1
    finally:
        sys.argv = argv
        os.chdir(cwd)
        GlobalHydra.instance().clear()
    text = out.getvalue() + err.getvalue()
    traceback_shown = "Traceback (most recent call last)" in text
    ok = case.pattern == "" or re.search(case.pattern, text) is not None
    if case.expect == "error":
        passed = code == 1 and not traceback_shown and ok
    else:
        passed = code == 0 and not traceback_shown and ok
    written = _outside_snapshot(folder) - before
    return {
        "name": case.name,
        "expect": case.expect,
        "exit": code,
        "traceback": traceback_shown,
        "pattern_found": ok,
        "written_outside": sorted(written)[:5],
        "passed": passed and not written,
        "seconds": round(time.time() - started, 1),
        "tail": text.strip().splitlines()[-3:] if text.strip() else [],
    }


def _outside_snapshot(folder: Path) -> set[str]:
    """Files under the project folder (where a stray write would land) not known before."""
    found = set()
    for sub in ("outputs", "multirun", "data", ".cache"):
        base = ROOT / sub
        if base.exists():
            found |= {str(p) for p in base.rglob("*")}
    return found


def main(argv: list[str]) -> int:
    """``<folder> [--shard=k/n] [case name ...]``: every case (or those named, or every n-th from
    the k-th: shards run side by side in separate processes)."""
    out_dir = Path(argv[0])
    shard = next((a.split("=", 1)[1] for a in argv[1:] if a.startswith("--shard=")), "0/1")
    k_shard, n_shards = (int(x) for x in shard.split("/"))
    only = {a for a in argv[1:] if not a.startswith("--shard=")}
    if n_shards == 1:  # shards run side by side: their caller clears it before starting them
        _EXPLOITED.unlink(missing_ok=True)
    results = []
    for k, case in enumerate(CASES):
        if (only and case.name not in only) or k % n_shards != k_shard:
            continue
        result = run_case(case, out_dir / f"case{k:02d}")
        results.append(result)
        mark = "ok " if result.get("passed") else "BAD"
        print(
            f"{mark} [{result.get('expect')}] {case.name} (exit {result.get('exit')}, {result.get('seconds')} s)",
            flush=True,
        )
    if _EXPLOITED.exists():
        results.append({"name": "a hostile pickle ran code", "passed": False})
    (out_dir / "results.json").write_text(json.dumps(results, indent=2))
    counts = {
        kind: sum(1 for r in results if r.get("passed") and r.get("expect") == kind)
        for kind in ("error", "skip", "accepted")
    }
    print(
        f"bad-input corpus: {len(results)} cases: {counts['error']} clear errors, {counts['skip']} counted "
        f"skips, {counts['accepted']} accepted; {sum(1 for r in results if not r.get('passed'))} wrong"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
