"""Edit generation throughput (edits per second) of one generator config at several batch sizes.

The baseline is batch size 1, one image per pipeline call, as the official DiffuseMix code runs
InstructPix2Pix. Arguments after the options are Hydra overrides of conf/generate.yaml:

    .venv/bin/python benchmarks/generation_throughput.py generator=tiny                 # CPU smoke
    .venv/bin/python benchmarks/generation_throughput.py --batch-sizes 1,4,8,16          # real model, GPU
    .venv/bin/python benchmarks/generation_throughput.py --batch-sizes 8 generator.compile=true

Results go to benchmarks/results/generation_throughput_<generator>_<device>.{json,md}.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from benchmarks.common import write_results
from diffusemix_bench.config import register_configs
from diffusemix_bench.generation.edit_model import EditModel, resolve_dtype
from diffusemix_bench.generation.prompts import build_prompts
from diffusemix_bench.generation.store import edit_seed

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


def time_edits(model: EditModel, images: list[torch.Tensor], texts: list[str], batch: int) -> float:
    """Seconds to edit every image in batches of ``batch``, after one warm-up batch."""
    seeds = [edit_seed("benchmark", "train", i, "p", 0) for i in range(len(images))]
    model(images[:batch], texts[:batch], seeds[:batch])
    if model.device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for i in range(0, len(images), batch):
        model(images[i : i + batch], texts[i : i + batch], seeds[i : i + batch])
    if model.device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=16, help="images edited per batch size")
    parser.add_argument(
        "--batch-sizes", default="1,4,8", help="comma-separated batch sizes; 1 is the baseline"
    )
    parser.add_argument(
        "--height", type=int, default=375, help="input image height (resized for the pipeline)"
    )
    parser.add_argument("--width", type=int, default=500)
    parser.add_argument(
        "--batch-invariant", action="store_true", help="also time generator.batch_invariant=true"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of conf/generate.yaml")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("generate", overrides=args.overrides)
    g = cfg.generator
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = EditModel.from_config(g, device)
    gen = torch.Generator().manual_seed(0)
    images = [
        torch.randint(0, 256, (3, args.height, args.width), dtype=torch.uint8, generator=gen)
        for _ in range(args.images)
    ]
    prompts = build_prompts(list(g.prompts), g.prompt_template, g.num_prompts)
    texts = [prompts[i % len(prompts)].text for i in range(args.images)]

    rows = []
    modes = [False, True] if args.batch_invariant else [False]
    baseline = None
    for invariant in modes:
        model.batch_invariant = invariant
        for b in (int(x) for x in args.batch_sizes.split(",")):
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats()
            seconds = time_edits(model, images, texts, b)
            rate = args.images / seconds
            if baseline is None:
                baseline = rate
            row = {
                "batch_size": b,
                "batch_invariant": invariant,
                "edits_per_s": round(rate, 3),
                "s_per_edit": round(seconds / args.images, 4),
                "vs_baseline": f"{rate / baseline:.2f}x",
            }
            if device.type == "cuda":
                row["peak_gpu_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
            rows.append(row)
            print(row)

    settings = {
        "generator": g.name,
        "model": g.local_dir or (g.model_id if g.name == "ip2p" else "tiny random pipeline"),
        "device": str(device),
        "dtype": str(resolve_dtype(str(g.dtype), device)).replace("torch.", ""),
        "scheduler": g.scheduler,
        "steps": g.steps,
        "resolution": g.resolution,
        "input": f"{args.height}x{args.width}",
        "images": args.images,
        "compile": g.compile,
        "channels_last": g.channels_last,
    }
    notes = (
        "Baseline: batch size 1 (one image per pipeline call, as the official DiffuseMix code). "
        "Each edit runs the UNet three times per step (text+image, image only, unconditional). "
        "Overrides: " + (" ".join(args.overrides) or "none") + ". "
        f"CPU load average when it ran: {os.getloadavg()[0]:.1f} (other jobs share the machine)."
    )
    if g.name == "tiny":
        notes += (
            " generator=tiny is a random 32 px pipeline: these numbers measure the framework's "
            "per-call overhead, not InstructPix2Pix speed; run with the real model on a GPU for that."
        )
    name = f"generation_throughput_{g.name}_{device.type}"
    paths = write_results(
        name, {"settings": settings, "config": OmegaConf.to_container(g), "rows": rows}, rows, notes
    )
    print("wrote", *paths)


if __name__ == "__main__":
    main()
