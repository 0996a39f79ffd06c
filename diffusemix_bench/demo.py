"""``make demo``: the whole loop offline on CPU in a few minutes, on a small dataset made here.

It writes a dataset of coloured shapes (an image folder: train/val/test, one class per shape),
generates edits with the tiny random InstructPix2Pix pipeline (``generator=tiny``: the real
diffusers code path, noise for edits), trains vanilla and DiffuseMix with two seeds and evaluates
FGSM (``--multirun experiment=demo``), and prints the report. Each step is the command a user would
type, printed before it runs.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .commands import script_command
from .errors import UserError

ROOT = Path(__file__).resolve().parents[1]
SHAPES = ("circle", "square", "triangle", "cross")


def _draw(shape: str, size: int, rng: np.random.Generator) -> Image.Image:
    # A dark background and a bright shape in random hues: the class is the shape, not the colour.
    background = tuple(int(v) for v in rng.integers(0, 110, 3))
    colour = tuple(int(v) for v in rng.integers(150, 256, 3))
    image = Image.new("RGB", (size, size), background)
    draw = ImageDraw.Draw(image)
    r = rng.uniform(0.25, 0.4) * size
    cx, cy = rng.uniform(r, size - r, 2)
    if shape == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=colour)
    elif shape == "square":
        draw.rectangle([cx - r, cy - r, cx + r, cy + r], fill=colour)
    elif shape == "triangle":
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=colour)
    else:
        w = r / 3
        draw.rectangle([cx - r, cy - w, cx + r, cy + w], fill=colour)
        draw.rectangle([cx - w, cy - r, cx + w, cy + r], fill=colour)
    noise = rng.normal(0, 12, (size, size, 3))
    return Image.fromarray(np.clip(np.asarray(image, dtype=np.float64) + noise, 0, 255).astype(np.uint8))


def make_shapes(root: Path, per_split: dict[str, int], size: int = 32, seed: int = 0) -> Path:
    """An image folder ``root/{train,val,test}/<shape>/*.png`` (skipped when it is there already)."""
    marker = root / ".complete"
    if marker.is_file():
        return root
    rng = np.random.default_rng(seed)
    for split, count in per_split.items():
        for shape in SHAPES:
            folder = root / split / shape
            folder.mkdir(parents=True, exist_ok=True)
            for k in range(count):
                _draw(shape, size, rng).save(folder / f"{shape}_{k:03d}.png")
    marker.write_text("made by diffusemix_bench.demo\n")
    return root


def _run(args: list[str], cwd: Path) -> None:
    # As the user would type it where they are (this interpreter, the script's path from there).
    command = f"{script_command(args[0])} {' '.join(shlex.quote(a) for a in args[1:])}"
    print(f"\n$ {command}", flush=True)
    started = time.time()
    result = subprocess.run([sys.executable, *args], cwd=cwd)
    if result.returncode != 0:
        raise UserError(
            f"the demo step `{command}` failed (exit code {result.returncode}); its output is above"
        )
    print(f"({time.time() - started:.0f} s)", flush=True)


def run_demo(out: Path, quick: bool = False) -> Path:
    """Run the tour into ``out``; return the report folder. ``quick`` shortens it (the test suite)."""
    out = out.resolve()
    per_split = {"train": 12, "val": 6, "test": 12} if quick else {"train": 48, "val": 16, "test": 40}
    data = make_shapes(out / ("shapes_quick" if quick else "shapes"), per_split)
    common = [f"dataset.root={data}", f"paths.cache_dir={out / 'cache'}"]
    if quick:
        common += ["trainer.max_epochs=1", "generator.steps=1"]
    sweep = out / ("sweep_quick" if quick else "sweep")
    print(f"diffusemix-bench demo: dataset of shapes in {data}; outputs in {out}")
    _run(["generate.py", "experiment=demo", *common, f"hydra.run.dir={out / 'generate'}"], ROOT)
    # ckpt_path=auto: run again, the demo trains only what is not finished (nothing, the second time).
    _run(
        ["train.py", "--multirun", "experiment=demo", *common, "ckpt_path=auto", f"hydra.sweep.dir={sweep}"],
        ROOT,
    )
    report = out / ("report_quick" if quick else "report")
    _run(["report.py", "experiment=demo", f"runs={sweep}", f"out={report}"], ROOT)
    return report
