"""Time of one ``apply()`` batch of the optimisation-based mixing baselines against plain mixup.

PuzzleMix, Co-Mixup and Guided-AP include their saliency pass (an extra forward/backward of the
model) and their solvers (graph cuts, transport, pairing); Guided-SR needs no model pass. The time
of one forward/backward of the model on the batch is reported beside them, so the solvers' own
share can be read off. Each method runs as conf/aug/<name>.yaml configures it for CIFAR-100
(GuidedMixup's prob is set to 1 so every timed batch is mixed). PuzzleMix and Co-Mixup run twice,
with the reference's graph-cut solver (gco-v3's C++ alpha-beta swap through gco-wrapper, the
default ``aug.solver=gco``) and with this framework's NumPy/SciPy one (``aug.solver=python``), each
arm seeded alike so both see the same inputs and draws.

    .venv/bin/python benchmarks/optmix_overhead.py                       # batch 100, 32 px, CPU
    .venv/bin/python benchmarks/optmix_overhead.py --model tiny --repeats 10
    .venv/bin/python benchmarks/optmix_overhead.py --device cuda

Results go to benchmarks/results/optmix_overhead_<model>_<size>px_b<batch>_<device>.{json,md}.
"""

from __future__ import annotations

import argparse
import os
import statistics
from pathlib import Path

import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf
from torch import nn

from benchmarks.common import timed, write_results
from diffusemix_bench.augment import AugContext, create_aug
from diffusemix_bench.augment.mixing.puzzlemix import puzzle_mix
from diffusemix_bench.config import register_configs
from diffusemix_bench.models import Normalize, create_model

CONF = Path(__file__).resolve().parents[1] / "conf"
# name[:solver]: PuzzleMix and Co-Mixup with the reference's C++ graph-cut solver (gco, the default)
# and with this framework's NumPy/SciPy one (python), on the same inputs and draws.
METHODS = ["mixup", "puzzlemix", "puzzlemix:python", "comixup", "comixup:python", "guided_sr", "guided_ap"]
# The PuzzleMix lineage's CIFAR-100 statistics (conf/dataset/cifar100.yaml).
MEAN, STD = (0.50706, 0.48667, 0.44078), (0.26745, 0.25647, 0.27608)


class TinyNet(nn.Module):
    """A two-layer CNN with the normaliser inside: makes the solvers' share visible on a CPU."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.normalize = Normalize(MEAN, STD)
        self.net = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(32, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.normalize(x))


def build_model(name: str, classes: int, device: torch.device) -> nn.Module:
    if name == "tiny":
        model = TinyNet(classes)
    else:
        model = create_model(name, classes)
        model.normalize = Normalize(MEAN, STD)
    return model.to(device).train()


def describe(name: str) -> str:
    base, _, solver = name.partition(":")
    if base in ("puzzlemix", "comixup"):
        return f"{base}.apply(), solver={solver or 'gco'}"
    return f"{base}.apply()" + (" (baseline)" if base == "mixup" else "")


def method_config(name: str) -> dict:
    name, _, solver = name.partition(":")
    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = OmegaConf.to_container(compose("config", overrides=[f"aug={name}", "dataset=cifar100"]).aug)
    if name.startswith("guided") or name == "mixup":
        cfg["prob"] = 1.0
    if solver:
        cfg["solver"] = solver
    return cfg


def puzzlemix_solver_times(
    aug, images: torch.Tensor, device: torch.device, warmup: int, repeats: int
) -> dict:
    """PuzzleMix's mixing alone (graph cuts and transport, no saliency pass) at each block count it
    draws from, since its cost grows with the grid."""
    g = torch.Generator().manual_seed(0)
    saliency = (torch.rand(images.shape[0], *images.shape[2:], generator=g) ** 3).to(device)
    perm = torch.randperm(images.shape[0], generator=g).to(device)
    out = {}
    for block_num in (2, 4, 8, 16):

        def run(block_num=block_num):
            puzzle_mix(
                images, saliency, perm, block_num=block_num, lam=0.5, beta=aug.beta, gamma=aug.gamma,
                eta=aug.eta, neigh_size=aug.neigh_size, n_labels=aug.n_labels, transport=aug.transport,
                t_eps=aug.t_eps, t_size=aug.t_size, solver=aug.solver,
            )  # fmt: skip

        out[f"puzzlemix mixing only, {block_num}x{block_num} blocks, solver={aug.solver}"] = timed(
            run, device, warmup, repeats
        )
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="preactresnet18", help="a built-in model name, or tiny")
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--classes", type=int, default=100)
    p.add_argument("--repeats", type=int, default=8)
    p.add_argument("--warmup", type=int, default=1)
    # One thread: on a shared 2-core machine more threads mostly measure contention.
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--device", default="cpu")
    p.add_argument("--methods", default=",".join(METHODS))
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    device = torch.device(a.device)
    torch.manual_seed(0)
    model = build_model(a.model, a.classes, device)
    images = torch.rand(a.batch, 3, a.size, a.size, device=device)
    targets = F.one_hot(torch.randint(0, a.classes, (a.batch,)), a.classes).float().to(device)
    indices = torch.arange(a.batch, device=device)

    def forward_backward():
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(images), targets).backward()

    pass_times = timed(forward_backward, device, a.warmup, a.repeats)
    model.zero_grad(set_to_none=True)
    rows, results = [], {}
    for name in a.methods.split(","):
        aug = create_aug(method_config(name), AugContext(num_classes=a.classes, dataset_name="cifar100"))
        torch.manual_seed(0)  # every arm draws the same mixing ratios, partners and block counts
        times = timed(lambda aug=aug: aug.apply(images, targets, indices, model), device, a.warmup, a.repeats)
        results[name] = times
        if name.startswith("puzzlemix"):
            torch.manual_seed(0)
            results.update(puzzlemix_solver_times(aug, images, device, a.warmup, a.repeats))
    baseline = statistics.median(results["mixup"]) if "mixup" in results else None
    pass_median = statistics.median(pass_times)
    rows.append(
        {
            "what": "one forward+backward of the model (reference)",
            "median_s": round(pass_median, 4),
            "min_s": round(min(pass_times), 4),
            "max_s": round(max(pass_times), 4),
            "x_mixup": "",
        }
    )
    for name, times in results.items():
        median = statistics.median(times)
        rows.append(
            {
                "what": name if " " in name else describe(name),
                "median_s": round(median, 4),
                "min_s": round(min(times), 4),
                "max_s": round(max(times), 4),
                "x_mixup": round(median / baseline, 1) if baseline else "",
            }
        )
    settings = {
        "model": a.model,
        "image_size": a.size,
        "batch": a.batch,
        "classes": a.classes,
        "repeats": a.repeats,
        "warmup": a.warmup,
        "device": device.type,
        "torch_threads": a.threads,
        "load_average_1min": round(os.getloadavg()[0], 2),
        "configs": "conf/aug/<name>.yaml on cifar100; prob=1 for mixup and guided_*",
    }
    name = f"optmix_overhead_{a.model}_{a.size}px_b{a.batch}_{device.type}"
    write_results(
        name,
        {"settings": settings, "rows": rows, "times_s": results, "forward_backward_s": pass_times},
        rows,
        notes=(
            "Seconds per apply() of one batch (median over repeats). Baseline: plain mixup's apply(). "
            "PuzzleMix draws 2x2..16x16 blocks at random per batch, so its times spread widely; "
            "the min/max columns show that spread. A shared machine's load inflates CPU times."
        ),
    )
    for r in rows:
        print(r)


if __name__ == "__main__":
    main()
