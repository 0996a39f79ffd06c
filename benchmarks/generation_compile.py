"""generator.compile: the UNet under torch.compile against eager, batched, at identical settings, and
whether a smaller block of prompts recompiles (EditModel pads every call to the largest block, as
generator.compile=true does).

The prompts are cut into blocks of at most ``--batch-size`` (9 prompts, batch 5: blocks of 4 and 5),
so every image's calls differ in size; dynamo's compile counters are read after the warm-up image
and after the timed images, and any graph compiled in between is a recompile. ``--channels-last``
puts the UNet and VAE in channels-last memory for both arms (generator.channels_last=true).

    .venv/bin/python -m benchmarks.generation_compile --architecture sd15   # GPU, bf16
    .venv/bin/python -m benchmarks.generation_compile --architecture sd15 --resolution 512 \
        --batch-size 9 --channels-last      # the default blocks at 512 px, both levers
    .venv/bin/python -m benchmarks.generation_compile --architecture tiny --resolution 32 --steps 2

Results: benchmarks/results/generation_compile_<architecture>_<device>[_<resolution>px][_b<batch>]
[_channels_last].{json,md} (the resolution named where it is not 256, the batch size where it is not 5).
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from benchmarks.common import write_results
from benchmarks.generation_vs_official import build_pipeline
from diffusemix_bench.generation.edit_model import EditModel, speed_levers
from diffusemix_bench.generation.prompts import PAPER_PROMPTS, build_prompts
from diffusemix_bench.generation.store import edit_seed, prompt_blocks


def run_images(model: EditModel, images, texts, batch_size: int, device) -> float:
    blocks = prompt_blocks([str(k) for k in range(len(texts))], batch_size)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for i, image in enumerate(images):
        for block in blocks:
            ks = [int(k) for k in block]
            model(
                [image] * len(ks),
                [texts[k] for k in ks],
                [edit_seed("bench", "train", i, str(k), 0) for k in ks],
            )
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def graphs_compiled() -> int:
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--architecture", choices=("tiny", "sd15"), default="sd15")
    p.add_argument("--resolution", type=int, default=256)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--images", type=int, default=2, help="timed images (one more is the warm-up)")
    p.add_argument("--prompts", type=int, default=9)
    p.add_argument("--batch-size", type=int, default=5)
    p.add_argument("--channels-last", action="store_true", help="UNet and VAE channels-last, both arms")
    a = p.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    pipe = build_pipeline(a.architecture, device, dtype)
    texts = [t.text for t in build_prompts(list(PAPER_PROMPTS), "paper", a.prompts)]
    g = torch.Generator().manual_seed(0)
    images = [
        torch.randint(0, 256, (3, 375, 500), dtype=torch.uint8, generator=g) for _ in range(a.images + 1)
    ]
    settings = dict(steps=a.steps, guidance_scale=4.0, image_guidance_scale=1.5, resolution=a.resolution)

    if a.channels_last:
        speed_levers(pipe, channels_last=True, compile=False)
    blocks = [len(b) for b in prompt_blocks([str(k) for k in range(a.prompts)], a.batch_size)]
    eager = EditModel(pipe, **settings)
    run_images(eager, images[:1], texts, a.batch_size, device)  # warm-up
    t_eager = run_images(eager, images[1:], texts, a.batch_size, device)

    speed_levers(pipe, channels_last=False, compile=True)
    compiled = EditModel(pipe, pad_to=max(blocks), **settings)
    before = graphs_compiled()
    t_warm = run_images(compiled, images[:1], texts, a.batch_size, device)  # compiles
    after_warmup = graphs_compiled()
    t_compiled = run_images(compiled, images[1:], texts, a.batch_size, device)
    after_timed = graphs_compiled()
    edits = a.images * a.prompts
    rows = [
        {"arm": "eager, batched (baseline)", "edits_per_s": round(edits / t_eager, 4), "relative": 1.0},
        {
            "arm": f"torch.compile(unet), calls padded to {max(blocks)}",
            "edits_per_s": round(edits / t_compiled, 4),
            "relative": round(t_eager / t_compiled, 3),
        },
    ]
    compile_info = {
        "prompt_blocks": blocks,
        "graphs_compiled_in_warmup": after_warmup - before,
        "warmup_image_s": round(t_warm, 1),
        "graphs_compiled_after_warmup (recompiles)": after_timed - after_warmup,
    }
    print(rows, compile_info, flush=True)
    write_results(
        f"generation_compile_{a.architecture}_{device.type}"
        + ("" if a.resolution == 256 else f"_{a.resolution}px")
        + ("" if a.batch_size == 5 else f"_b{a.batch_size}")
        + ("_channels_last" if a.channels_last else ""),
        {
            "settings": {
                "architecture": a.architecture,
                "weights": "random (speed does not depend on their values)",
                "device": device.type
                + (f" ({torch.cuda.get_device_name(0)})" if device.type == "cuda" else ""),
                "dtype": str(dtype).replace("torch.", ""),
                "resolution": a.resolution,
                "steps": a.steps,
                "scheduler": "euler_ancestral",
                "timed_images": a.images,
                "prompts": a.prompts,
                "batch_size": a.batch_size,
                "channels_last": a.channels_last,
                "load_average_1min": round(os.getloadavg()[0], 2),
            },
            "compile": compile_info,
            "rows": rows,
        },
        rows,
        notes=(
            f"Prompt blocks per image: {blocks}. Graphs compiled during the warm-up image: "
            f"{compile_info['graphs_compiled_in_warmup']}; during the timed images (recompiles): "
            f"{compile_info['graphs_compiled_after_warmup (recompiles)']}. Baseline: the same EditModel "
            "eager, measured in the same run."
        ),
    )


if __name__ == "__main__":
    main()
