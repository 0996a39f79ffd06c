"""Figure 4 of the paper: one row per image with its input I, edit Î, mask M, hybrid H, fractal F and
final image A, drawn with the run's DiffuseMix settings."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from PIL import Image, ImageDraw, ImageFont
from torchvision import tv_tensors
from torchvision.utils import make_grid

from ...errors import ConfigError, user_errors_reported
from .compose import WholeImageComposer, aligned_edit, hybrid, square

log = logging.getLogger(__name__)

COLUMNS = ("input I", "edit I^", "mask M", "hybrid H", "fractal F", "final A")
HEADER_PX = 24
PADDING_PX = 2
# Small images (CIFAR's 32 px) are enlarged by an integer factor to at least this size.
MIN_CELL_PX = 128


def figure4_stages(aug, dataset, n: int, seed: int = 0, make_missing=None) -> list[torch.Tensor]:
    """The six columns for ``n`` images of ``dataset`` (seeded choice of images, prompts, masks and
    fractals), each float N x 3 x H x W in [0, 1] at the training size (resize, centre crop).

    With ``aug.compose=before_crop`` the stages are drawn on the whole image and then resized and
    cropped, as training sees them; otherwise the original and edit are resized and cropped first.
    Only the drawn images' edits are needed; ``make_missing(indices)`` (figure4.py with
    aug.figure_generate=true) generates those the store lacks; else the images are drawn among
    those the store has every edit of (an error when it has none)."""
    from ...data.transforms import eval_transform
    from ...generation.store import image_files, image_root, split_indices

    if not aug.uses_edits:
        raise ConfigError(f"Figure 4 shows edits; aug.components={aug.components} uses none")
    store = aug.edit_store()
    g = torch.Generator().manual_seed(seed)
    store_indices = split_indices(dataset)
    # Before any edit is made or shown:
    store.check_images(image_files(dataset, sizes=True), root=image_root(dataset))
    # Without generating, the images drawn are among those with every edit (a store made with
    # generator.limit or limit_per_class, to look at a few first); a whole store: all of them.
    candidates = list(range(len(dataset)))
    if make_missing is None:
        lacking = {index for index, _ in store.missing(store_indices)}
        candidates = [i for i in candidates if store_indices[i] not in lacking] or candidates
    if 0 < len(candidates) < min(n, len(dataset)):
        log.warning(
            "the edit store has every edit of %d image(s) alone: the figure shows %d row(s), not %d "
            "(aug.figure_generate=true makes the edits of the images it draws)",
            len(candidates),
            len(candidates),
            n,
        )
    n = min(n, len(candidates))
    rows = [candidates[k] for k in torch.randperm(len(candidates), generator=g)[:n].tolist()]
    needed = [store_indices[i] for i in rows]
    missing = store.missing(needed)
    if missing and make_missing is not None:
        make_missing(sorted({index for index, _ in missing}))
        store.refresh()
    aug.check_edits(store, needed)
    prompt_ids = [
        store.prompt_ids[k] for k in torch.randint(len(store.prompt_ids), (n,), generator=g).tolist()
    ]
    mask_ids = torch.randint(len(aug.kinds), (n,), generator=g).tolist()
    fractal_ids = torch.randint(len(aug.bank), (n,), generator=g).tolist() if aug.bank is not None else None

    config = aug.ctx.config
    size = aug.ctx.image_size
    geometry = eval_transform(
        size,
        int(config.dataset.resize) if config is not None else size,
        bool(config.dataset.get("warp")) if config is not None else False,
    )
    composer = WholeImageComposer(aug)
    rows_out = []
    for r, (i, pid) in enumerate(zip(rows, prompt_ids)):
        original = dataset.load_image(i)
        # The edit training composes from: the full-size one with aug.edit_source=full (squared
        # with the original to compose_size where that is set, as training does).
        edit = store.read(store_indices[i], pid, full=aug.edit_source == "full")
        if not (aug.before_crop and aug.compose_size):
            edit = aligned_edit(edit, original)
        if aug.before_crop:
            if aug.compose_size:
                original, edit = square(original, aug.compose_size), square(edit, aug.compose_size)
            stages = _stages(
                composer, original.float() / 255.0, edit.float() / 255.0, mask_ids[r], fractal_ids, r
            )
            stages = geometry(*[tv_tensors.Image(x) for x in stages])
        else:
            a, b = geometry(tv_tensors.Image(original), tv_tensors.Image(edit))
            stages = _stages(composer, a.float() / 255.0, b.float() / 255.0, mask_ids[r], fractal_ids, r)
        rows_out.append([x.as_subclass(torch.Tensor).clamp(0.0, 1.0) for x in stages])
    return [torch.stack(column) for column in zip(*rows_out)]


def _stages(
    composer, original: torch.Tensor, edit: torch.Tensor, mask_id: int, fractal_ids, row: int
) -> list:
    """I, edit, mask, hybrid, fractal and final image of one row (float 3 x H x W, the original's size)."""
    fractal_id = fractal_ids[row] if fractal_ids is not None else None
    mask, fractal, final = composer.parts(original, edit, mask_id, fractal_id)
    if fractal is None:
        fractal = torch.zeros_like(original)
    return [original, edit, mask.expand(3, -1, -1), hybrid(original, edit, mask), fractal, final]


GRID_GREY = 0.6  # the lines between the cells (in [0, 1])


def figure4_grid(columns: list[torch.Tensor], titles: tuple[str, ...] = COLUMNS) -> Image.Image:
    """A PIL grid with one column per tensor (each N x 3 x H x W in [0, 1]) and a title row.
    Size: width ``k (W' + 2) + 2``, height ``24 + N (H' + 2) + 2`` with ``W', H'`` the cell size."""
    n, _, h, w = columns[0].shape
    scale = max(1, math.ceil(MIN_CELL_PX / max(h, w)))
    cells = torch.stack(columns, dim=1).flatten(0, 1)  # row-major: image 0's six stages first
    if scale > 1:
        cells = F.interpolate(cells, scale_factor=scale, mode="nearest")
    # Grey lines between the cells: a mask's white half met white lines and the page unseen.
    grid = make_grid(cells, nrow=len(columns), padding=PADDING_PX, pad_value=GRID_GREY)
    body = Image.fromarray(grid.mul(255).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy())
    out = Image.new("RGB", (body.width, body.height + HEADER_PX), "white")
    out.paste(body, (0, HEADER_PX))
    draw = ImageDraw.Draw(out)
    try:
        font = ImageFont.load_default(size=14)
    except TypeError:  # Pillow < 10.1 has only the fixed bitmap font
        font = ImageFont.load_default()
    cell_w = w * scale + PADDING_PX
    for k, title in enumerate(titles):
        centre = PADDING_PX + k * cell_w + (cell_w - PADDING_PX) / 2
        draw.text((centre, HEADER_PX / 2), title, fill="black", font=font, anchor="mm")
    return out


def figure4_image(aug, dataset, n: int, seed: int = 0, make_missing=None) -> Image.Image:
    """The grid for ``aug``'s settings; the last column is what this run trains on."""
    titles = list(COLUMNS)
    if not aug.uses_masks:
        titles[2] += " (unused)"
    if not aug.uses_fractals:  # (not aug.bank: the bank is built once the edits are there)
        titles[4] += " (unused)"
    return figure4_grid(figure4_stages(aug, dataset, n, seed, make_missing), tuple(titles))


def write_figure4(cfg: DictConfig) -> Path:
    """Write ``figure4.png`` (``aug.figure_images`` rows) into the run folder; return its path."""
    from ...config import validate_config
    from ...data.splits import build_splits
    from ..base import AugContext
    from ..registry import create_aug

    validate_config(cfg)
    if cfg.aug.name != "diffusemix":
        raise ConfigError(
            f"figure4.py draws DiffuseMix's stages, and aug={cfg.aug.name} is another method: leave aug out (its "
            "default is aug=diffusemix), or give aug=diffusemix with the aug.* settings to draw"
        )
    if cfg.aug.figure_images < 1:
        raise ConfigError("figure4.py needs aug.figure_images >= 1 (the number of rows)")
    train = build_splits(cfg.dataset, cfg.paths.data_dir, read=("train",)).train
    if cfg.aug.figure_images > len(train):
        log.warning(
            "aug.figure_images=%d, but the training split of %s has %d images: the figure has %d rows",
            cfg.aug.figure_images,
            cfg.dataset.name,
            len(train),
            len(train),
        )
    ctx = AugContext(
        num_classes=train.num_classes,
        dataset_name=cfg.dataset.name,
        image_size=cfg.dataset.image_size,
        seed=cfg.seed,
        loss="ce",
        config=cfg,
    )
    aug = create_aug(cfg.aug, ctx)

    def make_missing(indices: list[int]) -> None:
        from ...generation.generate import generate

        log.info("generating the edits of %d images Figure 4 draws (aug.figure_generate=true)", len(indices))
        generate(cfg, only={"train": indices})

    from ...generation.store import MissingEditError

    try:
        image = figure4_image(
            aug,
            train,
            cfg.aug.figure_images,
            seed=cfg.seed,
            make_missing=make_missing if aug.figure_generate else None,
        )
    except MissingEditError as exc:
        if aug.figure_generate:
            raise
        raise MissingEditError(
            f"{exc}\nFigure 4 needs only the edits of the {min(cfg.aug.figure_images, len(train))} images it "
            "draws: add "
            "aug.figure_generate=true to figure4.py's command to make just those"
        ) from None
    out = Path(str(cfg.paths.output_dir)).expanduser() / "figure4.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    image.save(out)
    rows = min(cfg.aug.figure_images, len(train))  # fewer where the store has fewer images' edits: warned
    log.info("Figure 4 (up to %d images of %s) written to %s", rows, cfg.dataset.name, out)
    if cfg.generator.name == "tiny":
        log.warning(
            "generator=tiny: the edit column (and the hybrids and final images made from it) is the tiny "
            "random-weight test pipeline's output, noise rather than an InstructPix2Pix edit; the paper's "
            "figure needs edits of the real model (the default generator)"
        )
    return out


def run_figure4(cfg: DictConfig) -> None:
    """figure4.py's entry: user errors end with a message, not a traceback."""
    with user_errors_reported():
        print(write_figure4(cfg))
