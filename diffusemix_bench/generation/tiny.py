"""A tiny random-weight InstructPix2Pix pipeline from the real diffusers classes (tests; no download)."""

from __future__ import annotations

import json
import string
import tempfile
from pathlib import Path

import torch

# Characters the tokenizer knows; anything else becomes the unknown token.
_CHARS = string.ascii_lowercase + string.digits + string.punctuation
# Enough positions for a templated prompt spelt one character per token.
MAX_LENGTH = 77


def _char_tokenizer(folder: Path):
    """A CLIPTokenizer whose vocabulary is single characters (each also in its word-final "</w>"
    form, as CLIP's BPE spells the last character of a word) and whose merge list is empty."""
    from transformers import CLIPTokenizer

    tokens = ["<|startoftext|>", "<|endoftext|>"] + list(_CHARS) + [c + "</w>" for c in _CHARS]
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return CLIPTokenizer.from_pretrained(str(folder), model_max_length=MAX_LENGTH)


def build_tiny_pipeline(seed: int = 0):
    """A StableDiffusionInstructPix2PixPipeline with random weights drawn from ``seed`` (the
    global RNG is left untouched). At 32 px the latents are 16 x 16."""
    from diffusers import AutoencoderKL, UNet2DConditionModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet = UNet2DConditionModel(
            block_out_channels=(32, 64),
            layers_per_block=1,
            sample_size=16,
            in_channels=8,  # noisy latents + image latents (InstructPix2Pix)
            out_channels=4,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
            cross_attention_dim=32,
        )
        vae = AutoencoderKL(
            block_out_channels=(16, 32),
            norm_num_groups=8,
            in_channels=3,
            out_channels=3,
            down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
            up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
            latent_channels=4,
        )
        tokenizer, text_encoder = char_text_encoder(hidden_size=32, intermediate_size=37, heads=4, layers=2)
    return assemble_ip2p(unet, vae, tokenizer, text_encoder)


def char_text_encoder(*, hidden_size: int, intermediate_size: int, heads: int, layers: int):
    """The character tokenizer and a CLIP text encoder of the given size, its weights drawn from
    the global generator (callers seed it)."""
    from transformers import CLIPTextConfig, CLIPTextModel

    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = _char_tokenizer(Path(tmp))
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=hidden_size,
            intermediate_size=intermediate_size,
            num_attention_heads=heads,
            num_hidden_layers=layers,
            max_position_embeddings=MAX_LENGTH,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )
    return tokenizer, text_encoder


def assemble_ip2p(unet, vae, tokenizer, text_encoder):
    """A StableDiffusionInstructPix2PixPipeline from its parts, with Stable Diffusion's noise
    schedule, so the sampler code runs as it does for the real model."""
    from diffusers import EulerAncestralDiscreteScheduler, StableDiffusionInstructPix2PixPipeline

    scheduler = EulerAncestralDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear"
    )
    return StableDiffusionInstructPix2PixPipeline(
        vae=vae.eval(),
        text_encoder=text_encoder.eval(),
        tokenizer=tokenizer,
        unet=unet.eval(),
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
