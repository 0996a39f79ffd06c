"""DiffuseMix's composition per batch (masks, hybrid, fractal blend: Eq. 3, on the device) against a
training step on the views it makes, measured side by side in one run.

The composition is ``aug=diffusemix``'s ``apply()`` on one batch of (original, edit 1, edit 2)
stacks, as the training step calls it (online mode, JSD: a clean view and two composed views, the
paper's default). The training step is one forward, backward and SGD step of the protocol's model on
those 3N views (bf16 autocast on a GPU). The share is composition / (composition + step).

    .venv/bin/python -m benchmarks.composition --shapes preactresnet18:32:100 --repeats 5   # CPU
    .venv/bin/python -m benchmarks.composition   # GPU: the paper protocols' shapes

Results: benchmarks/results/composition_<device>.{json,md}.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from benchmarks.common import timed, write_results
from diffusemix_bench.augment import AugContext, create_aug
from diffusemix_bench.config import register_configs
from diffusemix_bench.models import create_model

CONF = Path(__file__).resolve().parents[1] / "conf"
# The protocols' shapes: CIFAR-100 (PreActResNet-18), the fine-grained sets and Flowers (ResNet-50 and
# ResNet-18 at 224 px, batch 16), ImageNet (ResNet-50, batch 256).
SHAPES = "preactresnet18:32:100,resnet50:224:16,resnet18:224:16,resnet50:224:256"


def diffusemix_aug(size: int, classes: int, fractals: int, cache: str):
    register_configs()
    GlobalHydra.instance().clear()
    overrides = [
        "aug=diffusemix",
        "dataset=cifar100",
        f"fractals.count={fractals}",
        f"paths.cache_dir={cache}",
    ]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    ctx = AugContext(num_classes=classes, dataset_name="cifar100", image_size=size, loss="jsd", config=cfg)
    return create_aug(cfg.aug, ctx)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shapes", default=SHAPES, help="model:size:batch,...")
    p.add_argument("--classes", type=int, default=100)
    p.add_argument(
        "--fractals", type=int, default=100, help="fractal bank size (speed does not depend on it)"
    )
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    a = p.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    autocast = device.type == "cuda"
    rows = []
    with tempfile.TemporaryDirectory() as cache:
        for shape in a.shapes.split(","):
            model_name, size, batch = shape.split(":")
            size, batch = int(size), int(batch)
            aug = diffusemix_aug(size, a.classes, a.fractals, cache)
            g = torch.Generator().manual_seed(0)
            stacks = torch.randint(0, 256, (batch, 3, 3, size, size), dtype=torch.uint8, generator=g)
            images = stacks.to(device).float().div_(255.0)
            targets = (
                F.one_hot(torch.randint(0, a.classes, (batch,), generator=g), a.classes).float().to(device)
            )
            indices = torch.arange(batch, device=device)
            torch.manual_seed(0)
            model = create_model(model_name, a.classes).to(device).train()
            opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
            views = aug.apply(images, targets, indices, model).inputs

            def step(views=views, model=model, opt=opt, targets=targets):
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
                    loss = F.cross_entropy(model(views), targets.repeat(3, 1))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()

            t_compose = timed(
                lambda aug=aug, images=images, targets=targets, indices=indices, model=model: aug.apply(
                    images, targets, indices, model
                ),
                device,
                a.warmup,
                a.repeats,
            )
            t_step = timed(step, device, a.warmup, a.repeats)
            compose_s, step_s = statistics.median(t_compose), statistics.median(t_step)
            row = {
                "model": model_name,
                "size": size,
                "batch": batch,
                "views": 3 * batch,
                "compose_ms": round(1000 * compose_s, 3),
                "train_step_ms": round(1000 * step_s, 3),
                "compose_share": f"{100 * compose_s / (compose_s + step_s):.2f}%",
            }
            rows.append(row)
            print(row, flush=True)
            del model, opt, images, views
    settings = {
        "device": device.type + (f" ({torch.cuda.get_device_name(0)})" if device.type == "cuda" else ""),
        "aug": "diffusemix (paper defaults: online, JSD, paper4 masks, lam 0.2, hybrid_fractal)",
        "train_step": "forward, backward, SGD step on the 3N views"
        + (", bf16 autocast, cudnn.benchmark" if autocast else ", fp32"),
        "repeats": a.repeats,
        "warmup": a.warmup,
        "fractal_bank": a.fractals,
        "load_average_1min": round(os.getloadavg()[0], 2),
    }
    write_results(
        f"composition_{device.type}",
        {"settings": settings, "rows": rows},
        rows,
        notes="Medians over the repeats. Baseline: the training step on the same views, measured in the "
        "same run; target: composition under 5% of a training step on a GPU.",
    )


if __name__ == "__main__":
    main()
