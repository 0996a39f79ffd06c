"""The fractal bank: procedural IFS generation (deterministic, fill rule, cached), folder source, errors."""

from __future__ import annotations

import json
import pickle
import time

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

from diffusemix_bench.augment import fractals as fractals_module
from diffusemix_bench.augment.fractals import FractalBank, generate_fractals
from diffusemix_bench.errors import ConfigError
from tests.conftest import compose_config

SMALL = {"size": 32, "points": 20_000}


def hit_share(image: np.ndarray) -> float:
    """Share of pixels a chaos-game point landed on (the renderer leaves exactly the others black)."""
    return float((image.max(0) > 0).mean())


def test_generation_is_deterministic_and_prefix_stable():
    a = generate_fractals(6, seed=1, **SMALL)
    assert a.shape == (6, 3, 32, 32) and a.dtype == np.uint8
    assert np.array_equal(a, generate_fractals(6, seed=1, **SMALL))
    assert np.array_equal(a[:3], generate_fractals(3, seed=1, **SMALL))
    assert not np.array_equal(a, generate_fractals(6, seed=2, **SMALL))
    # Distinct systems, coloured (not grey), on a black background.
    assert len({x.tobytes() for x in a}) == 6
    assert all(x.std(axis=0).mean() > 1 for x in a)
    assert all((x.max(0) == 0).any() for x in a)


@pytest.mark.parametrize("min_fill", [0.2, 0.35])
def test_every_fractal_fills_at_least_min_fill(min_fill):
    bank = generate_fractals(5, seed=3, min_fill=min_fill, **SMALL)
    shares = [hit_share(x) for x in bank]
    assert min(shares) >= min_fill, shares


def test_low_fill_systems_are_rejected(monkeypatch):
    """The fill rule discards systems: with a stricter threshold more candidates are tried."""
    tried = []
    sample_ifs = fractals_module.sample_ifs

    def counting(rng, n):
        tried.append(n)
        return sample_ifs(rng, n)

    monkeypatch.setattr(fractals_module, "sample_ifs", counting)
    generate_fractals(8, seed=0, min_fill=0.0, **SMALL)
    loose = sum(tried)
    tried.clear()
    generate_fractals(8, seed=0, min_fill=0.35, **SMALL)
    assert sum(tried) > loose


def test_bank_is_generated_once_then_read_from_cache(tmp_path, monkeypatch):
    t0 = time.perf_counter()
    first = FractalBank.procedural(count=4, seed=0, cache_dir=tmp_path, **SMALL)
    generate_s = time.perf_counter() - t0
    folders = list(tmp_path.iterdir())
    assert len(folders) == 1 and (folders[0] / "fractals.npy").exists()
    settings = json.loads((folders[0] / "settings.json").read_text())
    assert settings["count"] == 4 and settings["size"] == 32 and settings["algorithm"]
    assert not list(folders[0].glob(".*tmp*")), "temporary files left behind"

    def no_regeneration(*args, **kwargs):
        raise AssertionError("the cached bank was regenerated")

    monkeypatch.setattr(fractals_module, "generate_fractals", no_regeneration)
    t0 = time.perf_counter()
    second = FractalBank.procedural(count=4, seed=0, cache_dir=tmp_path, **SMALL)
    assert time.perf_counter() - t0 < generate_s
    assert torch.equal(first.as_tensor(), second.as_tensor())
    # Other settings live in another folder.
    monkeypatch.undo()
    FractalBank.procedural(count=4, seed=1, cache_dir=tmp_path, **SMALL)
    assert len(list(tmp_path.iterdir())) == 2


def test_bank_api(tmp_path):
    bank = FractalBank.procedural(count=5, seed=0, cache_dir=tmp_path, **SMALL)
    assert len(bank) == 5 and bank.size == 32
    assert bank.get(2).shape == (3, 32, 32) and bank.get(2).dtype == torch.uint8
    all_ = bank.as_tensor()
    assert all_.shape == (5, 3, 32, 32) and torch.equal(all_[2], bank.get(2))
    a = bank.sample(7, generator=torch.Generator().manual_seed(0))
    b = bank.sample(7, generator=torch.Generator().manual_seed(0))
    assert a.shape == (7, 3, 32, 32) and a.dtype == torch.uint8 and torch.equal(a, b)
    # Every sampled picture is one of the bank's.
    assert all(any(torch.equal(x, y) for y in all_) for x in a)
    # A cached bank crosses process boundaries (DataLoader workers) as its path.
    state = pickle.dumps(bank)
    assert len(state) < 10_000
    assert torch.equal(pickle.loads(state).as_tensor(), all_)


def test_from_config_uses_the_fractals_group(tmp_path):
    cfg = compose_config(
        [f"paths.cache_dir={tmp_path}", "fractals.count=3", "fractals.size=32", "fractals.points=20000"]
    )
    bank = FractalBank.from_config(cfg.fractals)
    assert len(bank) == 3 and bank.size == 32
    assert list((tmp_path / "fractals").iterdir()), "the bank is cached under paths.cache_dir/fractals"


def test_a_bank_generated_for_a_run_without_progress_bars_shows_none(tmp_path, capsys):
    """callbacks.progress_bar=none (a scheduler's log) or trainer.enable_progress_bar=false turns
    the fractal bank's bar off too; the default shows it for a bank of 100 or more, outside a
    terminal at its start and end (a log file kept every refresh: hundreds on one line)."""
    from diffusemix_bench.augment.fractals import progress_shown

    quiet = compose_config(["callbacks.progress_bar=none"])
    assert progress_shown(quiet) is False and progress_shown(compose_config([])) is None
    assert progress_shown(compose_config(["trainer.enable_progress_bar=false"])) is False
    settings = [
        f"paths.cache_dir={tmp_path}",
        "fractals.count=100",
        "fractals.size=32",
        "fractals.points=2000",
    ]
    FractalBank.from_config(compose_config(settings).fractals, progress_shown(quiet))
    assert "fractals:" not in capsys.readouterr().err
    FractalBank.from_config(
        compose_config([*settings, "fractals.seed=1"]).fractals, progress_shown(compose_config([]))
    )
    err = capsys.readouterr().err
    assert 1 <= err.count("fractals:") <= 2, err


def test_folder_source_reads_any_mode_and_crops(tmp_path):
    folder = tmp_path / "pictures"
    (folder / "sub").mkdir(parents=True)
    Image.new("L", (40, 20), 200).save(folder / "gray.png")
    rgba = Image.new("RGBA", (30, 50), (10, 20, 30, 0))
    rgba.save(folder / "sub" / "clear.png")
    Image.new("RGB", (64, 64), (255, 0, 0)).save(folder / "red.jpg")
    (folder / "notes.txt").write_text("not a picture")
    cfg = compose_config(["fractals=folder", f"fractals.dir={folder}", "fractals.size=16"])
    bank = FractalBank.from_config(cfg.fractals)
    assert len(bank) == 3
    images = bank.as_tensor()
    assert images.shape == (3, 3, 16, 16) and images.dtype == torch.uint8
    gray, red, clear = images  # sorted paths: gray.png, red.jpg, sub/clear.png
    assert (gray == 200).all()
    assert red[0].float().mean() > 240 and red[1:].float().mean() < 15
    # Transparent pixels are composited on white, not black.
    assert (clear == 255).all()


def test_folder_errors_say_what_to_set(tmp_path):
    with pytest.raises(ConfigError, match="fractals.dir"):
        FractalBank.from_config(compose_config(["fractals=folder"]).fractals)
    with pytest.raises(FileNotFoundError, match="fractals.dir=.*is not a folder"):
        FractalBank.from_config({"source": "folder", "dir": str(tmp_path / "nowhere")})
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="holds no images"):
        FractalBank.from_config({"source": "folder", "dir": str(tmp_path / "empty")})
    with pytest.raises(ConfigError, match="fractals.source"):
        FractalBank.from_config(OmegaConf.create({"source": "download"}))
    with pytest.raises(ConfigError, match="min_fill"):
        generate_fractals(2, size=32, min_fill=1.5)
    # Beyond reach (the padded 32 px canvas can be at most 56% covered): stops and says why.
    with pytest.raises(ConfigError, match="lower fractals.min_fill"):
        generate_fractals(1, size=32, points=1000, min_fill=0.9)


@pytest.mark.slow
def test_a_thousand_fractals_in_under_a_minute():
    t0 = time.perf_counter()
    bank = generate_fractals(1000, size=256, seed=0)
    assert bank.shape == (1000, 3, 256, 256)
    assert time.perf_counter() - t0 < 60


def test_folder_pictures_are_squashed_as_the_official_code_loads_them(tmp_path):
    """fractals.fit=squash: each picture of the folder as DiffuseMix's official code loads it
    (khawar-islam/diffuseMix augment/utils.py ``load_fractal_images``:
    ``Image.open(path).convert('RGB').resize((256, 256))``), byte for byte; fit=crop (the default,
    PixMix's Resize then crop) keeps the aspect ratio."""
    rng = np.random.default_rng(0)
    path = tmp_path / "pictures" / "wide.png"
    path.parent.mkdir()
    Image.fromarray(rng.integers(0, 256, (200, 300, 3), dtype=np.uint8)).save(path)
    official = np.asarray(Image.open(path).convert("RGB").resize((256, 256))).transpose(2, 0, 1)
    squashed = FractalBank.from_config({"source": "folder", "dir": str(path.parent), "fit": "squash"})
    assert np.array_equal(squashed._images[0], official)
    cropped = FractalBank.from_config({"source": "folder", "dir": str(path.parent)})
    assert cropped._images.shape == (1, 3, 256, 256) and not np.array_equal(cropped._images[0], official)
    assert compose_config([]).fractals.fit == "crop"
    with pytest.raises(ConfigError, match="fractals.fit must be crop or squash"):
        FractalBank.from_folder(path.parent, 256, "stretch")


def test_a_runs_folder_of_pictures_is_recorded_and_reports_tell_two_apart(make_cfg, tmp_path):
    """fractals.dir says where the pictures were (reports leave paths out); metrics.json's
    aug_settings.fractal_bank says what they were (count, sha256 of the pixels), so two runs of
    one cell mixing other pictures are told apart, and the same pictures elsewhere are not."""
    import shutil

    from diffusemix_bench.reporting.runs import Run
    from diffusemix_bench.reporting.table import _settings_differ
    from diffusemix_bench.training.run import train

    folders = {}
    for name, colour in (("a", (200, 10, 10)), ("b", (10, 200, 10))):
        folders[name] = tmp_path / name
        folders[name].mkdir()
        for k in range(3):
            Image.new("RGB", (24, 24), tuple(c + k for c in colour)).save(folders[name] / f"{k}.png")
    shutil.copytree(folders["a"], tmp_path / "a_elsewhere")
    runs = {}
    for name in ("a", "b", "a_elsewhere"):
        cfg = make_cfg(
            ["aug=pixmix", "fractals=folder", f"fractals.dir={tmp_path / name}", "fractals.size=16"],
            run_name=f"run_{name}",
        )
        metrics = train(cfg)
        runs[name] = Run(tmp_path / f"run_{name}", cfg, metrics, "finished")
    record = runs["a"].metrics["aug_settings"]["fractal_bank"]
    assert record["source"] == "folder" and record["images"] == 3 and len(record["sha256"]) == 64
    differ = _settings_differ(runs["a"], runs["b"])
    assert [d for d in differ if d.startswith("fractals.dir (the pictures' contents)=3 pictures, sha256 ")], (
        differ
    )
    assert not _settings_differ(runs["a"], runs["a_elsewhere"])
    # A run that recorded no pictures (stopped before its metrics, or written before the record)
    # is not told apart by them: a cell with a failed seed stays reportable.
    failed = Run(runs["b"].folder, runs["b"].config, None, "failed")
    older = {**runs["b"].metrics, "aug_settings": {k: v for k, v in record.items() if k != "fractal_bank"}}
    assert not _settings_differ(runs["a"], failed)
    assert not _settings_differ(runs["a"], Run(runs["b"].folder, runs["b"].config, older, "finished"))
    # A metrics.json edited by hand (an entry that is no mapping): read as not recorded.
    damaged = Run(
        runs["b"].folder, runs["b"].config, {**runs["b"].metrics, "model_weights": "w.pt"}, "finished"
    )
    assert _settings_differ(runs["b"], damaged) == []
