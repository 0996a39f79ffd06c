"""The GPU benchmarks in one script, for whoever has a GPU for a few minutes (``make bench-gpu``).

Runs each benchmark as its own process with its own time limit, inside one overall deadline (the
parts most worth having first), and goes on when one fails; every part writes its own result files
to benchmarks/results/. A part that fails or runs out of time is named in the summary at the end.

    .venv/bin/python -m benchmarks.gpu_suite                 # about 8 minutes on one GPU
    .venv/bin/python -m benchmarks.gpu_suite --deadline 300  # what fits in 5 minutes
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

# (name, seconds allowed, module and arguments), in order of value: what the last GPU run left open
# first (generation against the official loop at 256 and 512 px with the default prompt blocks,
# channels-last and each arm's peak memory; the DiffuseMix loader's share of a GPU step; compile and
# channels-last together at 512 px), then the parts measured before (the training step against a
# bare loop, the mixes with gco, where the step's host time goes, composition, compile at 256 px).
PARTS = [
    (
        "generation vs the official loop (InstructPix2Pix architecture, 256 and 512 px)",
        250,
        ["benchmarks.generation_vs_official", "--architecture", "sd15", "--images", "1", "--prompts", "9"]
        + ["--steps", "100", "--resolutions", "256,512"],
    ),
    (
        "DiffuseMix loader against aug=none, and its share of a ResNet-18 training step on the GPU",
        120,
        ["benchmarks.diffusemix_loader", "--workers", "8", "--rounds", "2", "--epochs", "1"]
        + ["--step-steps", "40"],
    ),
    (
        "torch.compile and channels-last at 512 px, the default blocks (one call per image): speed",
        200,
        ["benchmarks.generation_compile", "--architecture", "sd15", "--resolution", "512", "--steps", "100"]
        + ["--batch-size", "9", "--channels-last", "--images", "1"],
    ),
    (
        "training step: framework and Lightning's floor against a bare loop, the protocols' shapes, bf16",
        260,
        ["benchmarks.train_step_overhead", "--precision", "bf16-mixed", "--steps", "150", "--rounds", "3"]
        + ["--shapes"]
        + ["preactresnet18:32:100,preactresnet18:64:100,resnet18:224:16,resnet50:224:16,resnet50:224:256:30"],
    ),
    (
        "optimisation mixes (PuzzleMix, Co-Mixup, GuidedMixup) against a training step",
        90,
        ["benchmarks.optmix_overhead", "--device", "cuda", "--repeats", "5"],
    ),
    (
        "training step: where the framework's host time goes (cProfile, resnet18 224 px batch 16)",
        60,
        ["benchmarks.train_step_overhead", "--precision", "bf16-mixed", "--steps", "30", "--rounds", "1"]
        + [
            "--shapes",
            "resnet18:224:16",
            "--profile",
            "--name",
            "train_step_overhead_resnet18_224px_b16_gpu_bf16",
        ],
    ),
    ("DiffuseMix composition against a training step", 90, ["benchmarks.composition"]),
    (
        "torch.compile of the UNet: speed and recompiles (256 px)",
        200,
        ["benchmarks.generation_compile", "--architecture", "sd15", "--resolution", "256", "--steps", "100"],
    ),
]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--deadline", type=float, default=480, help="seconds for all parts together")
    p.add_argument("--only", default=None, help="comma-separated part numbers (1-based) to run")
    p.add_argument("--min-part", type=float, default=45, help="skip a part with less time than this left")
    a = p.parse_args()
    start = time.monotonic()
    summary = []
    chosen = {int(k) for k in a.only.split(",")} if a.only else set(range(1, len(PARTS) + 1))
    for number, (name, limit, args) in enumerate(PARTS, 1):
        if number not in chosen:
            continue
        left = a.deadline - (time.monotonic() - start)
        if left < a.min_part:
            summary.append(f"skipped (out of time): {name}")
            continue
        allowed = min(limit, left)
        print(f"\n=== {name} (up to {allowed:.0f} s)", flush=True)
        t0 = time.monotonic()
        try:
            rc = subprocess.run([sys.executable, "-m", *args], timeout=allowed).returncode
            status = "ok" if rc == 0 else f"failed (exit {rc})"
        except subprocess.TimeoutExpired:
            status = f"stopped at its limit of {allowed:.0f} s"
        summary.append(f"{status} in {time.monotonic() - t0:.0f} s: {name}")
    print("\n=== summary", *summary, sep="\n", flush=True)


if __name__ == "__main__":
    main()
