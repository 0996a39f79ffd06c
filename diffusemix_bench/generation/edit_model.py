"""The InstructPix2Pix edit model: diffusers' pipeline, batched with one prompt and one seed per image."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from omegaconf import DictConfig

from ..errors import ConfigError, PretrainedWeightsError
from .store import largest_block

log = logging.getLogger(__name__)

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


class EditModelWeightsError(PretrainedWeightsError):
    """The InstructPix2Pix weights are neither reachable nor in the local cache."""


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    """generator.dtype: auto is bf16 on a GPU (fp16 gives NaN/black edits more often) and fp32 on CPU."""
    if name == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if name not in DTYPES:
        raise ConfigError(f"generator.dtype must be auto, fp32, fp16 or bf16; got '{name}'")
    return DTYPES[name]


def speed_levers(pipe, *, channels_last: bool, compile: bool) -> None:
    """generator.channels_last (UNet and VAE) and generator.compile (the UNet, with every call padded
    to the largest prompt block by EditModel, so a smaller block never recompiles)."""
    if channels_last:
        pipe.unet.to(memory_format=torch.channels_last)
        pipe.vae.to(memory_format=torch.channels_last)
    if compile:
        pipe.unet = torch.compile(pipe.unet)


def check_step_cache(g: DictConfig, branches: int | None = None) -> None:
    """generator.cache_interval / cache_branch_id / compile: ConfigError unless they go together
    (``branches``: the UNet's branch count, 3 per down block, when it is known)."""
    interval, branch_id = g.get("cache_interval"), int(g.get("cache_branch_id", 0))
    if interval is None:
        return
    top = f"from 0 to {branches - 1} for this UNet (3 per down block)" if branches else "at least 0"
    if int(interval) < 2 or branch_id < 0 or (branches is not None and branch_id >= branches):
        raise ConfigError(
            "generator.cache_interval must be null (no step caching) or at least 2, and "
            f"generator.cache_branch_id {top}; got {interval} and {branch_id}"
        )
    if g.compile:
        raise ConfigError(
            "generator.compile=true and generator.cache_interval (DeepCache step caching) do not go "
            "together: the cache switches the UNet's blocks between steps, which a compiled UNet "
            "would recompile. Choose one: generator.compile=false, or generator.cache_interval=null"
        )


def step_cache(pipe, interval: int | None, branch_id: int = 0):
    """generator.cache_interval / cache_branch_id: DeepCache step caching (Ma et al., CVPR'24, the
    authors' ``DeepCache`` package), a deviation that changes pixels. Every ``interval``-th UNet step
    of a pipeline call (the first included) runs whole; the steps between reuse the deep features
    cached at it and recompute only the shallow branch ``branch_id`` (0: the UNet's input
    convolution, which reads InstructPix2Pix's 8 channels, and its last up layer). Wraps
    ``pipe.unet`` in place; returns the helper (``.disable()`` unwraps it), or None when off."""
    if not interval:
        return None
    check_step_cache(
        DictConfig({"cache_interval": interval, "cache_branch_id": branch_id, "compile": False}),
        3 * len(pipe.unet.down_blocks),
    )
    from DeepCache import DeepCacheSDHelper

    class StepCache(DeepCacheSDHelper):
        """DeepCache's helper, finding each UNet call's step in a host copy of the schedule (the
        package compares the step with each device timestep in turn, a device sync each), and
        starting every pipeline call (a new schedule) with a whole step."""

        def wrap_unet_forward(self):
            forward = self.pipe.unet.forward
            self.function_dict["unet_forward"] = forward
            schedule: dict = {}

            def wrapped(*args, **kwargs):
                steps = self.pipe.scheduler.timesteps
                if schedule.get("of") is not steps:
                    schedule.update(of=steps, host=steps.tolist())
                    self.start_timestep = None
                self.cur_timestep = schedule["host"].index(float(args[1]))
                return forward(*args, **kwargs)

            self.pipe.unet.forward = wrapped

    helper = StepCache(pipe=pipe)
    helper.set_params(cache_interval=int(interval), cache_branch_id=int(branch_id))
    helper.enable()
    return helper


#: generator.scheduler -> the diffusers scheduler class (the official code swaps in Euler-ancestral).
SCHEDULERS = {
    "euler_ancestral": "EulerAncestralDiscreteScheduler",
    "euler": "EulerDiscreteScheduler",
    "ddim": "DDIMScheduler",
    "dpmpp_2m": "DPMSolverMultistepScheduler",
}


def _scheduler(pipe, name: str):
    """generator.scheduler: the official code swaps in Euler-ancestral; others are named deviations."""
    import diffusers

    if name not in SCHEDULERS:
        raise ConfigError(f"generator.scheduler must be one of {sorted(SCHEDULERS)}; got '{name}'")
    return getattr(diffusers, SCHEDULERS[name]).from_config(pipe.scheduler.config)


def check_resolution(g: DictConfig) -> None:
    """generator.resolution a multiple of the pipeline's VAE scale (8 for InstructPix2Pix, 2 for
    the tiny test pipeline): diffusers rounds an input down to one, and the model's full-size edit
    (generator.keep_full_size) would not be resolution x resolution as recorded."""
    scale = 2 if g.name == "tiny" else 8
    resolution = int(g.resolution)
    if resolution % scale:
        low = resolution - resolution % scale
        raise ConfigError(
            f"generator.resolution={resolution}: the pipeline works on multiples of {scale} px (it would make "
            f"{low} x {low} edits); use generator.resolution={low} or {low + scale}"
        )


def check_local_dir(g: DictConfig) -> None:
    """generator.local_dir names a folder, and only for a generator that reads weights: checked
    before generate.py makes any store folder."""
    if not g.get("local_dir"):
        return
    if g.name == "tiny":
        raise ConfigError(
            f"generator.local_dir={g.local_dir} is set, but generator=tiny builds its random-weight "
            "pipeline in-process and reads no weights. Use generator=ip2p (or one of its presets) to "
            "edit with the saved pipeline, or drop generator.local_dir."
        )
    folder = Path(str(g.local_dir)).expanduser()
    if not folder.is_dir() or not (folder / "model_index.json").is_file():
        said = "is not a folder" if not folder.is_dir() else "holds no model_index.json (no saved pipeline)"
        raise EditModelWeightsError(
            f"generator.local_dir={g.local_dir} {said}. Point it at a saved pipeline "
            "(model_index.json, unet/, vae/, text_encoder/, tokenizer/, scheduler/), or unset it to use "
            "the hub copy."
        )


def load_ip2p(g: DictConfig, dtype: torch.dtype):
    """StableDiffusionInstructPix2PixPipeline from generator.local_dir or the hub id (cached
    download), safetensors only, safety checker off as in the official code."""
    from diffusers import StableDiffusionInstructPix2PixPipeline
    from diffusers.utils import is_accelerate_available
    from huggingface_hub import constants

    check_local_dir(g)
    source = str(Path(g.local_dir).expanduser()) if g.local_dir else str(g.model_id)
    try:
        return StableDiffusionInstructPix2PixPipeline.from_pretrained(
            source,
            revision=None if g.local_dir else g.get("revision"),
            dtype=dtype,  # diffusers >= 0.40 (older releases ignore this keyword with a warning)
            safety_checker=None,
            requires_safety_checker=False,
            use_safetensors=True,
            # accelerate's faster loading where it is installed (not a dependency); said here, so
            # diffusers does not advise installing it into the locked environment on every load.
            low_cpu_mem_usage=is_accelerate_available(),
            # Read at call time, so HF_HUB_OFFLINE=1 never touches the network.
            local_files_only=bool(constants.HF_HUB_OFFLINE) or bool(g.local_dir),
        )
    except OSError as exc:  # diffusers reports missing files, no network and offline mode as OSError
        if g.local_dir:
            where = f"the folder {source}"
            fix = "Save the pipeline there with .safetensors weights, or unset generator.local_dir."
        else:
            offline = " (HF_HUB_OFFLINE is set)" if constants.HF_HUB_OFFLINE else ""
            revision = f", revision='{g.revision}'" if g.get("revision") else ""  # the commit asked for
            where = f"the Hugging Face cache {constants.HF_HUB_CACHE}{offline} and could not be downloaded"
            fix = (
                "Download the files the pipeline reads (its safetensors weights and configs, not the repo's "
                "several-GB single-file checkpoints) where there is network access, with this environment's "
                'Python: `python -c "from diffusers import StableDiffusionInstructPix2PixPipeline as P; '
                f"P.from_pretrained('{source}'{revision}, use_safetensors=True, safety_checker=None)\"` (HF_HOME or "
                "HF_HUB_CACHE choose the cache folder), or set generator.local_dir=<folder> to a saved copy."
            )
        # The library's reason, without its advice for its own callers (a stack trace not shown,
        # local_files_only, which is not a setting here).
        said = str(exc).splitlines()[0] if str(exc) else ""
        for advice in ("Please check out the root cause", "To enable repo look-ups", "Check your internet"):
            said = said.split(advice)[0].strip()
        setting = "generator.local_dir" if g.local_dir else "generator.model_id"
        raise EditModelWeightsError(
            f"InstructPix2Pix weights '{source}' ({setting}) are not in {where}. {fix} "
            f"[{type(exc).__name__}: {said}]"
        ) from None
    except ValueError as exc:  # a saved copy with some of the pipeline's parts missing
        if not g.local_dir:
            raise
        said = " ".join(str(exc).split())
        raise EditModelWeightsError(
            f"generator.local_dir={source} holds an incomplete InstructPix2Pix pipeline ({said[:300]}): save the "
            "whole pipeline there again (pipe.save_pretrained(<folder>, safe_serialization=True)), or unset "
            "generator.local_dir to use the hub copy"
        ) from None


def loaded_commit(g: DictConfig) -> str | None:
    """The hub commit of ``generator.model_id`` the pipeline was loaded from (read from the cache
    the load filled: its snapshot folder's name); None for a local folder or the tiny pipeline."""
    if g.name != "ip2p" or g.local_dir or Path(str(g.model_id)).expanduser().exists():
        return None  # (a folder given as model_id is read as it is, as generator.local_dir)
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(str(g.model_id), "model_index.json", revision=g.get("revision"))
    except ValueError:  # not a hub id huggingface_hub accepts: nothing to record
        return None
    return Path(found).parent.name if isinstance(found, str) else None


class EditModel:
    """Edits a batch of images, each with its own prompt and its own noise seed.

    Images go in as uint8 CHW of any size; each is resized to ``resolution`` x ``resolution``
    for the pipeline (as the official code does), and the float edit in [0, 1] comes back at that
    size (``finish`` maps it to the original size). The noise of each image is drawn from its own
    CPU ``torch.Generator``: diffusers draws the initial latents and every Euler-ancestral step's
    noise per generator when given a list, so an image's noise never depends on its batch.
    """

    def __init__(
        self,
        pipe,
        *,
        steps: int,
        guidance_scale: float,
        image_guidance_scale: float,
        resolution: int,
        batch_invariant: bool = False,
        pad_to: int | None = None,
    ) -> None:
        self.pipe = pipe
        self.steps = steps
        self.guidance_scale = guidance_scale
        self.image_guidance_scale = image_guidance_scale
        self.resolution = resolution
        self.batch_invariant = batch_invariant
        self.pad_to = pad_to
        self._embeds: dict[str, torch.Tensor] = {}
        self.step_cache = None  # the DeepCache helper wrapping pipe.unet (generator.cache_interval)
        self.weights_commit: str | None = None  # the hub commit the weights came from (from_config)
        pipe.set_progress_bar_config(disable=True)

    @classmethod
    def from_config(cls, g: DictConfig, device: torch.device | str = "cpu") -> EditModel:
        device = torch.device(device)
        dtype = resolve_dtype(str(g.dtype), device)
        if dtype == torch.float16 and device.type == "cpu":
            log.warning(
                "generator.dtype=fp16 on a CPU: PyTorch runs half precision there many times slower than "
                "fp32 (experiment=diffusemix_official sets fp16 as the official code runs on a GPU); for a "
                "CPU add generator.dtype=fp32 (other pixels, its own store)"
            )
        if g.name == "tiny":
            from .tiny import build_tiny_pipeline

            pipe = build_tiny_pipeline()
            if dtype != torch.float32:
                pipe.to(dtype=dtype)
        elif g.name == "ip2p":
            pipe = load_ip2p(g, dtype)
        else:
            raise ConfigError(f"generator.name must be ip2p or tiny; got '{g.name}'")
        pipe.scheduler = _scheduler(pipe, str(g.scheduler))
        check_step_cache(g)
        helper = step_cache(pipe, g.get("cache_interval"), int(g.get("cache_branch_id", 0)))
        speed_levers(pipe, channels_last=bool(g.channels_last), compile=bool(g.compile))
        model = cls(
            pipe,
            steps=int(g.steps),
            guidance_scale=float(g.guidance_scale),
            image_guidance_scale=float(g.image_guidance_scale),
            resolution=int(g.resolution),
            batch_invariant=bool(g.batch_invariant),
            # Every call padded to the largest prompt block (not to batch_size, which a block
            # may never reach): one compiled shape, no row computed only to be dropped.
            pad_to=largest_block(g) if g.compile else None,
        )
        model.step_cache = helper
        model.weights_commit = loaded_commit(g)
        return model.to(device)

    def to(self, device: torch.device | str) -> EditModel:
        self.pipe.to(torch.device(device))
        self._embeds.clear()
        return self

    @property
    def device(self) -> torch.device:
        return self.pipe.unet.device

    @property
    def dtype(self) -> torch.dtype:
        return self.pipe.unet.dtype

    @torch.no_grad()
    def _embed(self, text: str) -> torch.Tensor:
        """CLIP text embedding (1, L, D), as the pipeline computes it, cached per text. Each text
        is encoded on its own so its embedding never depends on which other prompts are in use."""
        if text not in self._embeds:
            tok = self.pipe.tokenizer
            ids = tok(
                [text],
                padding="max_length",
                max_length=tok.model_max_length,
                truncation=True,
                return_tensors="pt",
            )
            enc = self.pipe.text_encoder
            mask = (
                ids.attention_mask.to(self.device)
                if getattr(enc.config, "use_attention_mask", False)
                else None
            )
            self._embeds[text] = enc(ids.input_ids.to(self.device), attention_mask=mask)[0].to(self.dtype)
        return self._embeds[text]

    def prepare(self, images: Sequence[torch.Tensor]) -> torch.Tensor:
        """uint8 CHW images of any sizes and memory orders -> float NCHW in [0, 1] at resolution x
        resolution. Each image is made CHW-contiguous first: the edits never depend on the order the
        loader kept its pixels in (datasets keep them channels-last)."""
        size = (self.resolution, self.resolution)
        return torch.stack([_resize(im.contiguous().float().div(255), size) for im in images])

    @torch.no_grad()
    def __call__(
        self, images: Sequence[torch.Tensor], texts: Sequence[str], seeds: Sequence[int]
    ) -> torch.Tensor:
        """Edit ``images[i]`` with ``texts[i]`` using noise seed ``seeds[i]``; float NCHW in [0, 1]
        at resolution x resolution, on CPU, float32, possibly non-finite (checked by the caller)."""
        if not len(images) == len(texts) == len(seeds):
            raise ValueError("images, texts and seeds must have the same length")
        x = self.prepare(images)
        if self.batch_invariant:
            # One pipeline call per image: bitwise independent of batch size and order.
            return torch.cat(
                [self._run(x[i : i + 1], texts[i : i + 1], seeds[i : i + 1]) for i in range(len(x))]
            )
        n = len(x)
        if self.pad_to and n < self.pad_to:
            extra = self.pad_to - n
            x = torch.cat([x, x[-1:].expand(extra, -1, -1, -1)])
            texts, seeds = list(texts) + [texts[-1]] * extra, list(seeds) + [seeds[-1]] * extra
        return self._run(x, texts, seeds)[:n]

    def _run(self, x: torch.Tensor, texts: Sequence[str], seeds: Sequence[int]) -> torch.Tensor:
        cond = torch.cat([self._embed(t) for t in texts])
        # The pipeline orders its UNet batch [text+image, image only, unconditional]; with
        # prompt_embeds given it takes negative_prompt_embeds for both unconditional rows.
        uncond = self._embed("").expand(len(texts), -1, -1)
        generators = [torch.Generator("cpu").manual_seed(int(s)) for s in seeds]
        out = self.pipe(
            image=x.to(self.device),
            prompt_embeds=cond,
            negative_prompt_embeds=uncond,
            num_inference_steps=self.steps,
            guidance_scale=self.guidance_scale,
            image_guidance_scale=self.image_guidance_scale,
            num_images_per_prompt=1,
            generator=generators,
            output_type="pt",
        ).images
        return out.float().cpu()


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Float CHW in [0, 1] -> ``size`` (bicubic, antialiased when shrinking), clamped to [0, 1]."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x[None], size=size, mode="bicubic", antialias=True, align_corners=False)[0].clamp(
        0, 1
    )


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    return x.clamp(0, 1).mul(255).round().to(torch.uint8)


def stored_size(original_hw: tuple[int, int], store_size: int | None, warp: bool = False) -> tuple[int, int]:
    """The original image's size, shrunk to a shorter side of ``store_size`` if it is larger;
    ``warp``: ``store_size`` x ``store_size`` (as training squashes the original with dataset.warp)."""
    h, w = original_hw
    if warp and store_size is not None:
        return store_size, store_size
    if store_size is None or min(h, w) <= store_size:
        return h, w
    # torchvision's Resize(store_size) rule (the longer side truncated), so an edit stored at a
    # dataset's resize matches the resized original exactly.
    if h <= w:
        return store_size, max(1, int(store_size * w / h))
    return max(1, int(store_size * h / w)), store_size


def finish(
    edit: torch.Tensor, original_hw: tuple[int, int], store_size: int | None, warp: bool = False
) -> torch.Tensor:
    """The stored edit, uint8 CHW: resized once from the pipeline's resolution to the original
    image's size (so it aligns with the original pixel for pixel), or to its ``stored_size``."""
    return to_uint8(_resize(edit, stored_size(original_hw, store_size, warp)))


def is_bad(edit: torch.Tensor, blank_std: float) -> bool:
    """Non-finite (NaN/inf) or blank: near-constant pixels, e.g. fp16 overflow turned black."""
    return not bool(torch.isfinite(edit).all()) or float(edit.float().std()) < blank_std
