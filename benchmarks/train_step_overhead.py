"""Training-step throughput of the framework's LightningModule against a bare PyTorch loop.

Both run the same model, batch and optimiser on synthetic uint8 images; the difference is the
framework's overhead (uint8 scaling, augmentation hook, soft-target loss, metrics, Lightning).

    .venv/bin/python benchmarks/train_step_overhead.py --model resnet18 --size 64 --batch 32 --steps 20
"""

from __future__ import annotations

import argparse
import time

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from benchmarks.common import write_results
from diffusemix_bench.augment import create_aug
from diffusemix_bench.config import LossConfig, OptimConfig, SchedConfig
from diffusemix_bench.models import create_model
from diffusemix_bench.training.module import ClassifierModule


def synthetic(n: int, size: int, classes: int) -> TensorDataset:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, classes, (n,), generator=g)
    return TensorDataset(images, labels, torch.arange(n))


def bare_loop(model, loader, device, steps: int) -> float:
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    model.train()
    done, start = 0, None
    while done < steps + 2:
        for images, labels, _ in loader:
            if done == 2:  # two warm-up steps
                if device.type == "cuda":
                    torch.cuda.synchronize()
                start = time.perf_counter()
            x = images.to(device).float().div_(255)
            loss = F.cross_entropy(model(x), labels.to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            done += 1
            if done == steps + 2:
                break
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


class _Timer(pl.Callback):
    def __init__(self) -> None:
        self.start = None

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        if batch_idx == 2:
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            self.start = time.perf_counter()

    def on_train_end(self, trainer, module):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.elapsed = time.perf_counter() - self.start


def framework_loop(model, loader, classes: int, steps: int, accelerator: str) -> float:
    module = ClassifierModule(
        model,
        classes,
        create_aug({"name": "none"}, classes),
        "ce",
        LossConfig(name="ce"),
        OptimConfig(lr=0.01),
        SchedConfig(name="none"),
    )
    timer = _Timer()
    trainer = pl.Trainer(
        max_steps=steps + 2,
        accelerator=accelerator,
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[timer],
        num_sanity_val_steps=0,
        limit_val_batches=0,
    )
    trainer.fit(module, train_dataloaders=loader)
    return timer.elapsed


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="resnet18")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--classes", type=int, default=100)
    p.add_argument("--name", default=None, help="results file name (default: derived from settings)")
    a = p.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    accelerator = "gpu" if device.type == "cuda" else "cpu"
    data = synthetic(a.batch * (a.steps + 2), a.size, a.classes)
    loader = DataLoader(data, batch_size=a.batch, shuffle=True, drop_last=True)
    torch.manual_seed(0)
    bare = bare_loop(create_model(a.model, a.classes).to(device), loader, device, a.steps)
    torch.manual_seed(0)
    framework = framework_loop(create_model(a.model, a.classes), loader, a.classes, a.steps, accelerator)
    images = a.batch * a.steps
    rows = [
        {"loop": "bare PyTorch (baseline)", "images_per_s": round(images / bare, 1), "relative": 1.0},
        {
            "loop": "diffusemix_bench ClassifierModule",
            "images_per_s": round(images / framework, 1),
            "relative": round(bare / framework, 3),
        },
    ]
    name = a.name or f"train_step_overhead_{a.model}_{a.size}px_b{a.batch}_{accelerator}"
    settings = {
        "model": a.model,
        "image_size": a.size,
        "batch": a.batch,
        "timed_steps": a.steps,
        "device": accelerator,
        "aug": "none",
        "precision": "fp32",
    }
    write_results(
        name,
        {"settings": settings, "rows": rows},
        rows,
        notes="Baseline: a bare PyTorch SGD loop on the same model, data and batch.",
    )
    for r in rows:
        print(r)


if __name__ == "__main__":
    main()
