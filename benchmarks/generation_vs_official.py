"""Edit generation: the official DiffuseMix loop against this framework's, at identical settings,
measured side by side in one run.

- official: one pipeline call per (image, prompt), a PIL image in and a PIL image out, as the
  official code calls StableDiffusionInstructPix2PixPipeline;
- ours, batched (the default): one call per image and block of its prompts (EditModel, tensors in
  and out, one noise generator per edit);
- ours, one edit per call (generator.batch_invariant=true);
- ours, batched with generator.channels_last=true (the UNet and VAE in channels-last memory);
- the fast preset generator=ip2p_fast (DPM-Solver++ 2M in 20 steps, batched): other pixels, its own store;
- the preset generator=ip2p_deepcache (DeepCache step caching on the official sampler and steps,
  batched): other pixels, its own store.

Same pipeline object, guidance, resolution and dtype for all; all but ip2p_fast share the scheduler
(Euler-ancestral) and steps.

    .venv/bin/python -m benchmarks.generation_vs_official --resolutions 32      # CPU, tiny pipeline
        (the tiny VAE downsamples by 2, not 8: at 256 px its UNet would run on 128 x 128 latents and
        its attention on 16k tokens, so on a CPU it is timed at its own 32 px)
    .venv/bin/python -m benchmarks.generation_vs_official --architecture sd15   # GPU: the real
        InstructPix2Pix architecture (SD 1.5 UNet with 8 input channels, its VAE and a CLIP text
        encoder of its size) built from their configurations with random weights: speed does not
        depend on the weights' values. Also reports UNet FLOPs per edit, the share of the GPU's
        bf16 peak, and the most GPU memory each arm allocated (weights included: what a GPU
        needs for that batch).
    .venv/bin/python -m benchmarks.generation_vs_official --architecture sd15 --images 1 --prompts 3 \
        --batch-size 3 --steps 12 --resolutions 128   # CPU: the real architecture at a small size
        (about 11 minutes on 2 cores; ip2p_fast keeps its own 20 steps)

Results: benchmarks/results/generation_vs_official_<architecture>_<device>.{json,md}.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch
from omegaconf import OmegaConf

from benchmarks.common import write_results
from diffusemix_bench.config import GeneratorConfig
from diffusemix_bench.generation.edit_model import EditModel, speed_levers, step_cache
from diffusemix_bench.generation.prompts import PAPER_PROMPTS, build_prompts
from diffusemix_bench.generation.store import edit_seed, prompt_blocks

CONF = Path(__file__).resolve().parents[1] / "conf"
# Dense bf16 tensor-core peak in TFLOP/s, by device name (vendor data sheets).
BF16_PEAK = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0, "RTX 4090": 165.0}


def build_sd15_pipeline(seed: int = 0, device: torch.device | str = "cpu"):
    """StableDiffusionInstructPix2PixPipeline with InstructPix2Pix's architecture (SD 1.5 UNet with
    8 input channels, the SD VAE, CLIP ViT-L/14's text transformer: 12 layers of width 768, with a
    character vocabulary instead of its 49k BPE tokens) and random weights, initialised on ``device``."""
    from diffusers import AutoencoderKL, UNet2DConditionModel

    from diffusemix_bench.generation.tiny import assemble_ip2p, char_text_encoder

    torch.manual_seed(seed)
    with torch.device(device):
        parts = _sd15(char_text_encoder, AutoencoderKL, UNet2DConditionModel)
    return assemble_ip2p(*parts)  # the scheduler's tables are built on the CPU, as diffusers expects


def build_pipeline(architecture: str, device: torch.device, dtype: torch.dtype):
    """The tiny pipeline or the InstructPix2Pix architecture, Euler-ancestral (the official code's
    scheduler), on ``device`` in ``dtype``."""
    if architecture == "tiny":
        from diffusemix_bench.generation.tiny import build_tiny_pipeline

        pipe = build_tiny_pipeline()
    else:
        pipe = build_sd15_pipeline(device=device)
    from diffusers import EulerAncestralDiscreteScheduler

    pipe.scheduler = EulerAncestralDiscreteScheduler.from_config(pipe.scheduler.config)
    return pipe.to(device=device, dtype=dtype)


def _sd15(char_text_encoder, AutoencoderKL, UNet2DConditionModel):
    unet = UNet2DConditionModel(
        sample_size=64,
        in_channels=8,
        out_channels=4,
        layers_per_block=2,
        block_out_channels=(320, 640, 1280, 1280),
        down_block_types=(
            "CrossAttnDownBlock2D",
            "CrossAttnDownBlock2D",
            "CrossAttnDownBlock2D",
            "DownBlock2D",
        ),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=768,
        attention_head_dim=8,
    )
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(128, 256, 512, 512),
        layers_per_block=2,
        latent_channels=4,
        sample_size=512,
    )
    tokenizer, text_encoder = char_text_encoder(hidden_size=768, intermediate_size=3072, heads=12, layers=12)
    return unet, vae, tokenizer, text_encoder


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


@torch.no_grad()
def official_loop(pipe, images, texts, args, device) -> float:
    """Seconds for every (image, prompt) edit, one pipeline call each, PIL in and out."""
    import torchvision.transforms.functional as TF

    start = time.perf_counter()
    for i, image in enumerate(images):
        pil = TF.to_pil_image(image).resize((args.resolution, args.resolution))
        for k, text in enumerate(texts):
            generator = torch.Generator(device).manual_seed(edit_seed("bench", "train", i, str(k), 0))
            out = pipe(
                text,
                image=pil,
                num_inference_steps=args.steps,
                guidance_scale=4.0,
                image_guidance_scale=1.5,
                generator=generator,
            ).images[0]
            out.load()
    _sync(device)
    return time.perf_counter() - start


def ours(model: EditModel, images, texts, batch_size: int, device) -> float:
    """Seconds for every (image, prompt) edit through EditModel: one call per image and block of
    its prompts (batched), or one per edit (model.batch_invariant)."""
    ids = [str(k) for k in range(len(texts))]
    blocks = prompt_blocks(ids, batch_size)
    start = time.perf_counter()
    for i, image in enumerate(images):
        for block in blocks:
            ks = [int(k) for k in block]
            seeds = [edit_seed("bench", "train", i, str(k), 0) for k in ks]
            model([image] * len(ks), [texts[k] for k in ks], seeds)
    _sync(device)
    return time.perf_counter() - start


def measured(device: torch.device, peaks: dict[str, float], key: str, run, *args) -> float:
    """``run(*args)``'s seconds; on a GPU the most memory it allocated goes to ``peaks[key]`` (GiB,
    the pipeline's weights included): what a GPU needs for that arm's batch."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    seconds = run(*args)
    if device.type == "cuda":
        peaks[key] = torch.cuda.max_memory_allocated() / 2**30
    return seconds


def unet_flops_per_edit(pipe, resolution: int, steps: int, device, dtype) -> float:
    """UNet FLOPs of one edit: ``steps`` calls on a batch of three (the pipeline's guidance rows)."""
    from torch.utils.flop_counter import FlopCounterMode

    unet = pipe.unet
    latent = resolution // 8
    x = torch.randn(3, 8, latent, latent, device=device, dtype=dtype)
    t = torch.tensor([500] * 3, device=device)
    ctx = torch.randn(3, 77, unet.config.cross_attention_dim, device=device, dtype=dtype)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        unet(x, t, encoder_hidden_states=ctx)
    return counter.get_total_flops() * steps


def unet_flops_per_edit_cached(
    pipe, resolution: int, steps: int, interval: int, branch_id: int, device, dtype
):
    """UNet FLOPs of one edit with DeepCache step caching: a whole step on every ``interval``-th of
    ``steps`` steps, the shallow branch on the others, each counted on a call through the helper."""
    from torch.utils.flop_counter import FlopCounterMode

    from diffusemix_bench.generation.edit_model import step_cache

    unet = pipe.unet
    latent = resolution // 8
    x = torch.randn(3, 8, latent, latent, device=device, dtype=dtype)
    ctx = torch.randn(3, 77, unet.config.cross_attention_dim, device=device, dtype=dtype)
    pipe.scheduler.set_timesteps(steps, device=device)
    helper = step_cache(pipe, interval, branch_id)
    counts = []
    try:
        for t in pipe.scheduler.timesteps[:2]:  # step 0 runs whole, step 1 reuses its deep features
            with torch.no_grad(), FlopCounterMode(display=False) as counter:
                unet(x, t, encoder_hidden_states=ctx)
            counts.append(counter.get_total_flops())
    finally:
        helper.disable()
    whole = -(-steps // interval)
    return counts[0] * whole + counts[1] * (steps - whole)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--architecture", choices=("tiny", "sd15"), default="tiny")
    parser.add_argument("--resolutions", default="256,512")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--images", type=int, default=2)
    parser.add_argument("--prompts", type=int, default=9, help="the first k of the paper's prompts")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=GeneratorConfig.batch_size,
        help="generator.batch_size for ours (default: the framework's)",
    )
    parser.add_argument(
        "--dtype", default=None, help="fp32, bf16 or fp16 (default: bf16 on GPU, fp32 on CPU)"
    )
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[
        args.dtype or ("bf16" if device.type == "cuda" else "fp32")
    ]
    if device.type == "cpu":
        torch.set_num_threads(max(1, os.cpu_count() or 1))
    pipe = build_pipeline(args.architecture, device, dtype)
    from diffusemix_bench.generation.edit_model import _scheduler

    pipe.set_progress_bar_config(disable=True)
    preset = OmegaConf.load(CONF / "generator" / "ip2p_fast.yaml")
    deep = OmegaConf.load(CONF / "generator" / "ip2p_deepcache.yaml")
    euler = pipe.scheduler
    fast_scheduler = _scheduler(pipe, str(preset.scheduler))
    texts = [p.text for p in build_prompts(list(PAPER_PROMPTS), "paper", args.prompts)]
    gen = torch.Generator().manual_seed(0)
    images = [
        torch.randint(0, 256, (3, 375, 500), dtype=torch.uint8, generator=gen) for _ in range(args.images)
    ]
    edits = len(images) * len(texts)
    settings = {
        "architecture": args.architecture,
        "weights": "random (speed does not depend on their values)",
        "device": str(device) + (f" ({torch.cuda.get_device_name(0)})" if device.type == "cuda" else ""),
        "dtype": str(dtype).replace("torch.", ""),
        "scheduler": "euler_ancestral",
        "steps": args.steps,
        "guidance": "4 / image 1.5",
        "images": f"{args.images} at 375x500",
        "prompts": args.prompts,
        "edits_per_arm": edits,
    }
    notes = (
        "Baseline: the official loop, measured in the same run on the same pipeline object. Every arm "
        "makes the same edits (each image with each prompt); the UNet runs three rows per step (text "
        "and image, image only, unconditional). "
        + (
            "generator=tiny is a small random pipeline (its VAE downsamples by 2, so it runs at its own "
            "32 px): on a CPU these numbers show the framework's overhead against the official loop, "
            "not InstructPix2Pix's speed; the GPU run with --architecture sd15 at 256 and 512 px "
            "measures that. "
            if args.architecture == "tiny"
            else ""
        )
        + f"CPU load average when it began: {os.getloadavg()[0]:.1f}."
    )
    name = f"generation_vs_official_{args.architecture}_{device.type}"
    rows = []
    for resolution in (int(r) for r in args.resolutions.split(",")):
        args.resolution = resolution
        batched = EditModel(
            pipe, steps=args.steps, guidance_scale=4.0, image_guidance_scale=1.5, resolution=resolution
        )
        single = EditModel(
            pipe,
            steps=args.steps,
            guidance_scale=4.0,
            image_guidance_scale=1.5,
            resolution=resolution,
            batch_invariant=True,
        )
        peaks: dict[str, float] = {}  # GiB the GPU allocated at most during each timed arm
        # Warm-up (kernels, allocator, embeddings) for every arm, on one image.
        official_loop(pipe, images[:1], texts[:1], args, device)
        ours(batched, images[:1], texts, args.batch_size, device)
        t_official = measured(device, peaks, "official", official_loop, pipe, images, texts, args, device)
        t_single = measured(device, peaks, "single", ours, single, images, texts, args.batch_size, device)
        t_batched = measured(device, peaks, "batched", ours, batched, images, texts, args.batch_size, device)
        fast = EditModel(
            pipe,
            steps=int(preset.steps),
            guidance_scale=4.0,
            image_guidance_scale=1.5,
            resolution=resolution,
        )
        pipe.scheduler = fast_scheduler
        ours(fast, images[:1], texts[:1], args.batch_size, device)  # warm-up
        t_fast = measured(device, peaks, "fast", ours, fast, images, texts, args.batch_size, device)
        pipe.scheduler = euler
        # generator=ip2p_deepcache: the batched model with DeepCache wrapping the same UNet.
        helper = step_cache(pipe, int(deep.cache_interval), int(deep.cache_branch_id))
        ours(batched, images[:1], texts[:1], args.batch_size, device)  # warm-up
        t_deep = measured(device, peaks, "deep", ours, batched, images, texts, args.batch_size, device)
        helper.disable()
        # generator.channels_last=true: the batched model with the UNet and VAE in channels-last
        # memory (a runtime setting, the same store), put back afterwards for the next resolution.
        speed_levers(pipe, channels_last=True, compile=False)
        ours(batched, images[:1], texts[:1], args.batch_size, device)  # warm-up
        t_last = measured(device, peaks, "last", ours, batched, images, texts, args.batch_size, device)
        pipe.unet.to(memory_format=torch.contiguous_format)
        pipe.vae.to(memory_format=torch.contiguous_format)
        flops = unet_flops_per_edit(pipe, resolution, args.steps, device, dtype)
        deep_flops = unet_flops_per_edit_cached(
            pipe, resolution, args.steps, int(deep.cache_interval), int(deep.cache_branch_id), device, dtype
        )
        peak = next(
            (v for k, v in BF16_PEAK.items() if device.type == "cuda" and k in torch.cuda.get_device_name(0)),
            None,
        )
        for key, arm, seconds, steps, arm_flops in (
            ("official", "official loop (one call per edit, PIL in and out)", t_official, args.steps, flops),
            ("single", "ours, one edit per call (batch_invariant=true)", t_single, args.steps, flops),
            (
                "batched",
                f"ours, batched (blocks of <= {args.batch_size} prompts"
                + (", the default)" if args.batch_size == GeneratorConfig.batch_size else ")"),
                t_batched,
                args.steps,
                flops,
            ),
            (
                "last",
                "ours, batched, generator.channels_last=true (UNet and VAE channels-last)",
                t_last,
                args.steps,
                flops,
            ),
            (
                "fast",
                f"fast preset generator=ip2p_fast ({preset.scheduler}, {preset.steps} steps, batched; "
                "other pixels)",
                t_fast,
                int(preset.steps),
                flops * int(preset.steps) / args.steps,
            ),
            (
                "deep",
                f"preset generator=ip2p_deepcache (DeepCache, whole UNet one step in {deep.cache_interval}, "
                f"branch {deep.cache_branch_id}, batched; other pixels)",
                t_deep,
                args.steps,
                deep_flops,
            ),
        ):
            rate = edits / seconds
            row = {
                "resolution": resolution,
                "arm": arm,
                "steps": steps,
                "edits_per_s": round(rate, 4),
                "s_per_edit": round(seconds / edits, 3),
                "vs_official": f"{t_official / seconds:.2f}x",
                "unet_gflop_per_edit": round(arm_flops / 1e9, 2),
            }
            if peak is not None:
                row["share_of_bf16_peak"] = f"{100 * arm_flops * rate / (peak * 1e12):.1f}%"
            if key in peaks:
                row["peak_gpu_memory_gib"] = round(peaks[key], 2)
            rows.append(row)
            print(row, flush=True)
        # Written after every resolution: a run stopped at its time limit keeps those it finished.
        done = dict(settings, resolutions=",".join(dict.fromkeys(str(r["resolution"]) for r in rows)))
        paths = write_results(name, {"settings": done, "rows": rows}, rows, notes)
        print("wrote", *paths, flush=True)


if __name__ == "__main__":
    main()
