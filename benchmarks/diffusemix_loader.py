"""Training-loader throughput of DiffuseMix against plain training (aug=none) on the same data.

DiffuseMix's loader reads each image's stored edits beside the original (two per item with the JSD
loss) and, with ``aug.compose=before_crop``, composes whole images in the data workers; with the
default ``after_crop`` the composition runs on the device, timed here separately per batch. The
data is a Flowers-102-layout fixture at a realistic photo size, with synthetic edits written to
the edit store in the format and at the size each arm's settings name (what generate.py would
write), so the numbers measure reading, decoding, cropping and composing, not generation.

    .venv/bin/python -m benchmarks.diffusemix_loader --workers 2 --epochs 2 --rounds 5

It also trains a model (``--step-model``, ResNet-18 by default) on the baseline's and DiffuseMix's
default loader and reports the time each training step waits for its batch: the loader's share of a
step (on a GPU when there is one, bf16).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import open_dict
from torchvision.transforms.v2 import functional as TF

from benchmarks.common import write_results
from diffusemix_bench.augment import AugContext, create_aug
from diffusemix_bench.config import register_configs
from diffusemix_bench.data.datamodule import ImageDataModule
from diffusemix_bench.data.splits import build_splits
from diffusemix_bench.generation.edit_model import stored_size
from diffusemix_bench.generation.store import EditStore, resolve_store_size, split_indices
from diffusemix_bench.training.run import resolve_loss
from tests.fixtures.datasets import write_fixture_dataset

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"

BASELINE = "aug=none (baseline)"
DEFAULT = "diffusemix after_crop, JSD (default: npy edits at the training size)"
ARMS = {
    BASELINE: ["aug=none"],
    # The same loader with each decoded image reordered to CHW memory before its transform, as the
    # loader did before images were kept in the channels-last order they decode in.
    "aug=none, images reordered to CHW on load (earlier loader)": ["aug=none"],
    DEFAULT: ["aug=diffusemix"],
    "diffusemix after_crop, JSD, PNG edits at the training size": [
        "aug=diffusemix",
        "generator.store_format=png",
    ],
    "diffusemix after_crop, JSD, PNG edits at the original size (earlier default)": [
        "aug=diffusemix",
        "generator.store_format=png",
        "generator.store_size=null",
    ],
    "diffusemix before_crop, JSD": ["aug=diffusemix", "aug.compose=before_crop"],
    "diffusemix official (experiment=diffusemix_official)": ["experiment=diffusemix_official"],
}


def config(overrides: list[str], data_dir: Path, cache_dir: Path, args):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(
            "config",
            overrides=[
                "dataset=flowers102",
                f"paths.data_dir={data_dir}",
                f"paths.cache_dir={cache_dir}",
                f"generator.num_prompts={args.prompts}",
                f"dataset.batch_size={args.batch}",
                f"dataset.num_workers={args.workers}",
                "fractals.count=64",
                *overrides,
            ],
        )
    with open_dict(cfg):
        cfg.paths.output_dir = str(cache_dir / "run")
    return cfg


def fill_store(cfg) -> None:
    """Stand-in edits (the original, flipped and tinted per prompt) at the size generate.py stores."""
    train = build_splits(cfg.dataset, cfg.paths.data_dir).train
    store = EditStore.from_config(cfg, cfg.dataset.name, "train")
    for i, index in enumerate(split_indices(train)):
        image = train.load_image(i)
        size = stored_size(tuple(image.shape[-2:]), resolve_store_size(cfg, cfg.dataset.name), store.warp)
        for k, prompt_id in enumerate(store.prompt_ids):
            if not store.has(index, prompt_id):
                edit = TF.resize(image.flip(-1) // (k + 2) + 40, list(size), antialias=True)
                full = None
                if cfg.generator.keep_full_size:  # the model's square output, read by edit_source=full
                    r = int(cfg.generator.resolution)
                    full = TF.resize(image.flip(-1) // (k + 2) + 40, [r, r], antialias=True)
                store.write(index, prompt_id, edit, full=full)
    store.close()


def reordered(dataset):
    """``dataset`` loading each image reordered to CHW-contiguous memory (the same pixels)."""
    load = dataset.load_image
    dataset.load_image = lambda i: load(i).contiguous()
    return dataset


def build(cfg, reorder: bool = False) -> dict:
    """One arm's training loader (workers started by an untimed warm-up epoch) and its device step's
    time per batch (DiffuseMix's composition, on batches the loader served)."""
    datamodule = ImageDataModule(cfg.dataset, cfg.paths.data_dir, seed=0)
    datamodule.build()
    if reorder:
        reordered(datamodule.train_set)
    aug = create_aug(
        cfg.aug,
        AugContext(
            num_classes=datamodule.num_classes,
            dataset_name=cfg.dataset.name,
            image_size=cfg.dataset.image_size,
            cache_dir=Path(cfg.paths.cache_dir),
            data_dir=Path(cfg.paths.data_dir),
            loss=resolve_loss(cfg),
            config=cfg,
        ),
    )
    datamodule.set_augmentation(aug)
    loader = datamodule.train_dataloader()
    model = torch.nn.Identity()
    kept = []
    for batch in loader:  # the warm-up epoch: starts the (persistent) workers, not timed
        if len(kept) < 4:
            kept.append(batch)
    out = aug.apply(kept[0][0].float().div_(255), kept[0][1], kept[0][2], model)  # builds the caches
    t = time.perf_counter()
    for images, targets, indices in kept:
        out = aug.apply(images.float().div_(255), targets, indices, model)
    device_s = (time.perf_counter() - t) / len(kept)
    return {
        "loader": loader,
        "aug": aug,
        "num_classes": datamodule.num_classes,
        "loss": resolve_loss(cfg),
        "items_per_epoch": len(loader.dataset),
        "views": out.num_views,
        "compose_ms_per_batch": round(1000 * device_s, 2) if cfg.aug.name != "none" else 0.0,
    }


def items_per_s(loader, epochs: int) -> float:
    """The loader iterated alone for ``epochs`` epochs: its workers never overlap with a device step
    here, so the rate is theirs."""
    items = 0
    start = time.perf_counter()
    for _ in range(epochs):
        for images, _, _ in loader:
            items += len(images)
    return items / (time.perf_counter() - start)


def step_wait(built: dict, model_name: str, steps: int) -> dict:
    """The framework's module training ``model_name`` on one arm's loader under a plain Trainer (bf16
    autocast on a GPU): the time per step spent waiting for the next batch (Lightning's
    ``train_dataloader_next``, read from its SimpleProfiler) against the whole step, after one
    untimed step."""
    import pytorch_lightning as pl
    from pytorch_lightning.profilers import SimpleProfiler

    from diffusemix_bench.config import LossConfig, OptimConfig, SchedConfig
    from diffusemix_bench.models import create_model
    from diffusemix_bench.training.module import ClassifierModule

    class Timer(pl.Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            if batch_idx == 1:
                self.start = time.perf_counter()

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            self.end = time.perf_counter()

    torch.manual_seed(0)
    module = ClassifierModule(
        create_model(model_name, built["num_classes"]),
        built["num_classes"],
        built["aug"],
        built["loss"],
        LossConfig(name=built["loss"]),
        OptimConfig(lr=0.01),
        SchedConfig(name="none"),
    )
    profiler, timer = SimpleProfiler(), Timer()
    gpu = torch.cuda.is_available()
    trainer = pl.Trainer(
        max_steps=steps + 1,
        accelerator="gpu" if gpu else "cpu",
        devices=1,
        precision="bf16-mixed" if gpu else "32-true",
        benchmark=gpu,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[timer],
        profiler=profiler,
        num_sanity_val_steps=0,
        limit_val_batches=0,
    )
    trainer.fit(module, train_dataloaders=built["loader"])
    # The first fetch (the prefetched first batch) belongs to the untimed step.
    waits = profiler.recorded_durations["[_TrainingEpochLoop].train_dataloader_next"][1 : steps + 1]
    step_s = (timer.end - timer.start) / steps
    wait_s = sum(waits) / len(waits)
    return {
        "wait_ms_per_step": round(1000 * wait_s, 2),
        "step_ms": round(1000 * step_s, 1),
        "waiting_share": f"{100 * wait_s / step_s:.1f}%",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--classes", type=int, default=16)
    parser.add_argument("--per-class", type=int, default=8)
    parser.add_argument("--height", type=int, default=375)
    parser.add_argument("--width", type=int, default=500)
    parser.add_argument("--prompts", type=int, default=2)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per arm and round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds, each timing every arm in turn")
    parser.add_argument(
        "--step-model",
        default="resnet18",
        help="the model trained to measure the loader's share of a training step ('' to skip)",
    )
    parser.add_argument("--step-steps", type=int, default=3, help="timed training steps per arm")
    args = parser.parse_args()
    torch.set_num_threads(1)
    register_configs()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = write_fixture_dataset(
            "flowers102",
            tmp / "data",
            num_classes=args.classes,
            per_class=args.per_class,
            size=(args.height, args.width),
        )["data_dir"]
        arms = {}
        for arm, overrides in ARMS.items():
            cfg = config(overrides, data, tmp / "cache", args)
            if cfg.aug.name == "diffusemix":
                fill_store(cfg)
            arms[arm] = build(cfg, reorder="reordered to CHW" in arm)
        # Every arm timed in turn, round after round: a slow spell of the machine hits all arms of
        # a round alike, and each arm's ratio is taken against the baseline of its own round.
        rates: dict[str, list[float]] = {arm: [] for arm in arms}
        for r in range(args.rounds):
            for arm, built in arms.items():
                rates[arm].append(items_per_s(built["loader"], args.epochs))
            print(f"round {r + 1}: " + ", ".join(f"{v[-1]:.0f}" for v in rates.values()), flush=True)
        base = rates[next(iter(arms))]
        rows = []
        for arm, built in arms.items():
            ratios = sorted(a / b for a, b in zip(rates[arm], base))
            rows.append(
                {
                    "arm": arm,
                    "items_per_epoch": built["items_per_epoch"],
                    "views": built["views"],
                    "loader_items_per_s": round(statistics.median(rates[arm]), 1),
                    "compose_ms_per_batch": built["compose_ms_per_batch"],
                    "vs_baseline": f"{statistics.median(ratios):.2f}x",
                    "vs_baseline_range": f"{ratios[0]:.2f}-{ratios[-1]:.2f}x",
                }
            )
            print(rows[-1], flush=True)
        # The loader's share of a training step: the baseline and DiffuseMix's default only.
        step_rows = []
        step_arms = [a for a in arms if a in (BASELINE, DEFAULT)] if args.step_model else []
        for arm in step_arms:
            step_rows.append(
                {
                    "arm": arm,
                    "model": args.step_model,
                    **step_wait(arms[arm], args.step_model, args.step_steps),
                }
            )
            print(step_rows[-1], flush=True)
        del arms  # the workers stop before the folder they read is removed
    settings = {
        "dataset": "flowers102 fixture layout",
        "images": f"{args.classes * args.per_class} train at {args.height}x{args.width} JPEG",
        "prompts": args.prompts,
        "crop": 224,
        "batch": args.batch,
        "workers": args.workers,
        "timed_epochs": args.epochs,
        "rounds": args.rounds,
        "device": "cpu (the data workers)",
    }
    notes = (
        "Baseline: aug=none, the same loader reading the original alone, measured in the same run. "
        "loader_items_per_s is the training loader iterated alone (reading, decoding, crop/flip and, "
        "with before_crop, composing in the workers), after an untimed warm-up epoch: the median over "
        "the rounds, each round timing every arm in turn for timed_epochs epochs; vs_baseline is the "
        "median of the per-round ratios to the baseline's rate in the same round, and vs_baseline_range "
        "their lowest and highest. compose_ms_per_batch is DiffuseMix's "
        "device step (after_crop: Eq. 3 on the batch; before_crop: view reshaping only), here on the "
        "CPU. The fixture images are smooth noise, which compresses worse than photographs: PNG edits "
        "decode slower than real edits would (npy edits are not decoded at all). The arm 'images "
        "reordered to CHW on load' is the baseline's loader as it was before images were kept in the "
        "channels-last memory order PIL decodes them (the same pixels). views: images per "
        "item the model sees (JSD: 3). Target (issue: performance): the default DiffuseMix loader at "
        ">= 0.8x the baseline's items per second."
    )
    # The loader's work is the host's; a machine with a GPU gets its own files.
    machine = "cuda" if torch.cuda.is_available() else "cpu"
    base = f"diffusemix_loader_{args.height}x{args.width}_b{args.batch}_w{args.workers}"
    json_path, md_path = write_results(
        f"{base}_{machine}",
        {
            "settings": settings,
            "items_per_s_per_round": {a: [round(v, 1) for v in r] for a, r in rates.items()},
        },
        rows,
        notes,
    )
    print(f"wrote {md_path} and {json_path}")
    if step_rows:
        device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
        step_settings = dict(
            settings,
            model=args.step_model,
            timed_steps=args.step_steps,
            device=device,
            precision="bf16-mixed" if torch.cuda.is_available() else "fp32",
        )
        paths = write_results(
            f"{base}_step_share_{machine}",
            {"settings": step_settings, "rows": step_rows},
            step_rows,
            "The loader's share of a training step: the framework's module trains the model on each "
            "arm's loader (the same loaders, workers and batch as the throughput table, measured in the "
            "same run) under a plain Trainer; wait_ms_per_step is the mean time a step waited for its "
            "batch (Lightning's train_dataloader_next), step_ms the mean wall time of a whole step (the "
            "wait included), after one untimed step. Baseline: aug=none. DiffuseMix with JSD trains on "
            "three views of each item, so its step does three times the model's work. On a 2-core CPU "
            "the data workers and the step share the cores.",
        )
        print("wrote", *paths)


if __name__ == "__main__":
    main()
