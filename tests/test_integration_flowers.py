"""Integration on the real Flowers-102 (../shared/data/flowers-102): slow, skipped when absent."""

from __future__ import annotations

import json

import pytest
from omegaconf import open_dict

from diffusemix_bench.training.run import train
from tests.conftest import SHARED_DATA, compose_config

FLOWERS = SHARED_DATA / "flowers-102"
LITE0 = SHARED_DATA / "weights" / "tf_efficientnet_lite0_in1k_timmkeys.safetensors"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (FLOWERS / "setid.mat").exists(), reason="real Flowers-102 not present"),
]


def _cfg(overrides, run_dir):
    cfg = compose_config(
        [
            "dataset=flowers102",
            f"paths.data_dir={SHARED_DATA}",
            "callbacks.progress_bar=none",
            "dataset.num_workers=2",
            *overrides,
        ]
    )
    with open_dict(cfg):
        cfg.paths.output_dir = str(run_dir)
    return cfg


def test_resnet18_from_scratch_one_epoch(tmp_path):
    """The README's main job: official split, one epoch, metrics in the run folder."""
    # 112 px crops keep the CPU run to minutes; the splits and the loop are the real ones.
    metrics = train(
        _cfg(
            ["model=resnet18", "trainer.max_epochs=1", "dataset.image_size=112", "dataset.resize=128"],
            tmp_path / "run",
        )
    )
    assert (metrics["train_images"], metrics["val_images"], metrics["test_images"]) == (1020, 1020, 6149)
    assert metrics["num_classes"] == 102 and metrics["epochs"] == 1
    assert metrics["optimizer_steps"] == 64  # ceil(1020 / 16)
    assert 0.0 <= metrics["test_top1"] <= metrics["test_top5"] <= 100.0
    assert json.loads((tmp_path / "run" / "metrics.json").read_text()) == metrics


@pytest.mark.skipif(not LITE0.exists(), reason="EfficientNet-Lite0 weights not present")
def test_finetune_pretrained_efficientnet_lite0_learns(tmp_path):
    """Real ImageNet weights fine-tuned for two epochs reach far above chance (1%) on test."""
    metrics = train(
        _cfg(
            [
                "model=timm",
                "model.name=tf_efficientnet_lite0",
                f"model.weights={LITE0}",
                "model.mean=[0.5,0.5,0.5]",
                "model.std=[0.5,0.5,0.5]",
                "optim.lr=0.01",
                "optim.head_lr=0.1",
                "optim.weight_decay=1e-4",
                "dataset.batch_size=32",
                "dataset.image_size=160",
                "dataset.resize=182",
                "trainer.max_epochs=2",
            ],
            tmp_path / "run",
        )
    )
    assert metrics["test_top1"] > 40.0, metrics


def test_generate_then_train_diffusemix_on_real_flowers(tmp_path):
    """DiffuseMix end to end on the real images: tiny generator (one prompt), then one epoch."""
    from diffusemix_bench.generation.generate import generate

    overrides = [
        "generator=tiny",
        "generator.num_prompts=1",
        "fractals.count=16",
        "fractals.size=64",
        "dataset.image_size=112",
        "dataset.resize=128",
    ]
    gen_cfg = _cfg(overrides, tmp_path / "gen")
    with open_dict(gen_cfg):
        gen_cfg.paths.cache_dir = str(tmp_path / "cache")
    first = generate(gen_cfg)
    assert first["generated"] + first["existing"] == 1020 and first["failed"] == 0
    assert generate(gen_cfg)["generated"] == 0
    cfg = _cfg(
        overrides + ["aug=diffusemix", "protocol=scarcity_resnet18", "trainer.max_epochs=1"], tmp_path / "run"
    )
    with open_dict(cfg):
        cfg.paths.cache_dir = str(tmp_path / "cache")
    metrics = train(cfg)
    assert metrics["loss"] == "jsd" and metrics["optimizer_steps"] == 64
    assert (tmp_path / "run" / "figure4.png").exists()
