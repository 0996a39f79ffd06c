"""The prompt library: the paper's nine edit prompts, the text template, and stable prompt ids."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import ConfigError

# Sec. 4 of the paper names nine prompts (Fig. 5 speaks of ten; only nine are named anywhere).
PAPER_PROMPTS = (
    "autumn",
    "snowy",
    "sunset",
    "watercolor art",
    "rainbow",
    "aurora",
    "mosaic",
    "ukiyo-e",
    "a sketch with crayon",
)
# The paper's template (Sec. 4, Textual Prompt Selection); the official code passes the raw prompt instead.
PAPER_TEMPLATE = "A transformed version of image into {prompt}"
TEMPLATES = {"paper": PAPER_TEMPLATE, "raw": "{prompt}"}
_CANONICAL = re.compile(r"[a-z0-9]+(?:[ -][a-z0-9]+)*")


@dataclass(frozen=True)
class Prompt:
    id: str  # stable key in the edit store, derived from ``raw`` only
    raw: str  # the prompt as listed in generator.prompts
    text: str  # what the model is given (template applied)


def prompt_id(raw: str) -> str:
    """A stable, file-name-safe id of a raw prompt, a function of its text alone.

    Lowercase words joined by single spaces or hyphens map one-to-one to a slug: spaces become
    "-" and hyphens "--" ("a sketch with crayon" -> "a-sketch-with-crayon", "ukiyo-e" ->
    "ukiyo--e"). Any other text (capitals, punctuation, repeated spaces) gets its slug plus "_"
    and a hash of the exact text, so two different prompts never share an id, and therefore never
    share stored edits."""
    digest = hashlib.sha256(raw.encode("utf-8")).hexdigest()
    if _CANONICAL.fullmatch(raw):
        made = raw.replace("-", "--").replace(" ", "-")
    else:
        slug = re.sub(r"[^a-z0-9]+", "-", raw.lower()).strip("-")
        if not slug:
            if not any(ch.isalnum() for ch in raw):
                raise ConfigError(f"generator.prompts: prompt {raw!r} has no letters or digits")
            slug = "prompt"  # (letters outside a-z alone, 雪: the hash tells them apart)
        made = f"{slug}_{digest[:8]}"
    if len(made) > MAX_ID:
        # A long prompt: the id names a folder of the store, and a file system takes names of up to
        # 255 bytes; its start and a longer hash of the whole text (only such ids are shortened).
        made = f"{made[: MAX_ID - 17].rstrip('-_')}_{digest[:16]}"
    return made


#: The longest prompt id (a folder's name: most file systems take 255 bytes).
MAX_ID = 255


def apply_template(raw: str, template: str) -> str:
    if template not in TEMPLATES:
        raise ConfigError(
            f"generator.prompt_template must be one of {sorted(TEMPLATES)}, got '{template}' "
            "(paper: 'A transformed version of image into <prompt>'; raw: the prompt alone, as the official code)"
        )
    return TEMPLATES[template].format(prompt=raw)


def build_prompts(
    prompts: Sequence[str], template: str = "paper", num_prompts: int | None = None
) -> list[Prompt]:
    """The first ``num_prompts`` prompts (all when None), in order, with ids and model text."""
    prompts = list(prompts)
    if not prompts:
        raise ConfigError("generator.prompts is empty; list at least one prompt (default: the paper's nine)")
    if num_prompts is not None:
        if not 1 <= num_prompts <= len(prompts):
            raise ConfigError(
                f"generator.num_prompts={num_prompts} but generator.prompts has {len(prompts)} prompts; "
                f"use 1..{len(prompts)} or null for all"
            )
        prompts = prompts[:num_prompts]
    out = [Prompt(prompt_id(p), p, apply_template(p, template)) for p in prompts]
    seen: dict[str, str] = {}
    for p in out:
        if p.id in seen and seen[p.id] == p.raw:
            raise ConfigError(
                f"generator.prompts lists {p.raw!r} twice: give each prompt once (a prompt's edits are one set, "
                "made once)"
            )
        if p.id in seen:
            raise ConfigError(
                f"generator.prompts lists {seen[p.id]!r} and {p.raw!r}, which share the id '{p.id}': word one of "
                "them otherwise"
            )
        seen[p.id] = p.raw
    return out
