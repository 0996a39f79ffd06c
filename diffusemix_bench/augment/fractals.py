"""The fractal bank blended into DiffuseMix images (and PixMix/IPMix mixing pictures): procedural IFS
fractals generated once and cached, or a user folder of images."""

from __future__ import annotations

import hashlib
import json
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import OmegaConf
from PIL import Image
from tqdm.auto import tqdm

from ..data.base import list_image_files, load_rgb
from ..errors import ConfigError
from ..files import write_atomic

log = logging.getLogger(__name__)

# Bump when the generator's pixels change, so cached banks made by older code are not reused.
IFS_ALGORITHM = "ifs-chaos-game-v1"
MAX_MAPS = 7
# Systems simulated together, parallel chains per system, and burn-in steps before points are kept.
_SYSTEMS_PER_CHUNK = 32
_CHAINS = 1000
_BURN_IN = 12
# The early fill screen looks at the first 1/_SCREEN_SHARE of each system's points.
_SCREEN_SHARE = 5
# About 1 in 9 systems passes min_fill=0.2 at 256 px; give up far beyond that rate.
_MAX_TRIES_PER_FRACTAL = 100
_PAD_PX = 4
_FILE = "fractals.npy"


def sample_ifs(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random iterated function systems as in FractalDB
    (hirokatsukataoka16/FractalDB-Pretrained-ResNet-PyTorch: param_search/ifs_search.py): 2 to 7
    affine maps (x, y) -> (a x + b y + e, c x + d y + f) with coefficients uniform in [-1, 1], each
    map chosen with probability proportional to |ad - bc|. Returns ``maps`` (n x 7 x 6, unused maps
    zero) and cumulative map probabilities (n x 7)."""
    num_maps = rng.integers(2, MAX_MAPS + 1, size=n)
    maps = rng.uniform(-1.0, 1.0, size=(n, MAX_MAPS, 6))
    maps[np.arange(MAX_MAPS)[None, :] >= num_maps[:, None]] = 0.0
    det = np.abs(maps[..., 0] * maps[..., 3] - maps[..., 1] * maps[..., 2])
    cumulative = np.cumsum(det / det.sum(1, keepdims=True), axis=1)
    return maps.astype(np.float32), cumulative.astype(np.float32)


def chaos_game(
    maps: np.ndarray,
    cumulative: np.ndarray,
    steps: int,
    rng: np.random.Generator,
    start: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Run the chaos game for all systems at once with ``_CHAINS`` parallel chains per system, for
    ``steps`` recorded steps (``steps x _CHAINS`` points per system), from ``start`` or from the
    origin after ``_BURN_IN`` dropped steps.

    Returns x, y (steps x systems x chains, float32; non-finite where a system diverges), the
    index of the map that made each point (int8, for colouring) and the final state."""
    n = len(maps)
    base = (np.arange(n, dtype=np.int32) * MAX_MAPS)[:, None]
    coefs = [np.ascontiguousarray(maps[..., j]).ravel() for j in range(6)]
    thresholds = [cumulative[:, j : j + 1] for j in range(MAX_MAPS - 1)]
    if start is None:
        x = np.zeros((n, _CHAINS), np.float32)
        y = np.zeros((n, _CHAINS), np.float32)
        burn_in = _BURN_IN
    else:
        (x, y), burn_in = start, 0
    xs = np.empty((steps, n, _CHAINS), np.float32)
    ys = np.empty_like(xs)
    ks = np.empty((steps, n, _CHAINS), np.int8)
    with np.errstate(all="ignore"):
        for t in range(burn_in + steps):
            u = rng.random((n, _CHAINS), dtype=np.float32)
            k = np.zeros((n, _CHAINS), np.int8)
            for threshold in thresholds:
                k += u > threshold
            g = base + k
            a, b, c, d, e, f = (coef.take(g) for coef in coefs)
            x, y = a * x + b * y + e, c * x + d * y + f
            if t >= burn_in:
                xs[t - burn_in], ys[t - burn_in], ks[t - burn_in] = x, y, k
    return xs, ys, ks, (x, y)


def canvas_counts(xs: np.ndarray, ys: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Map every system's points (steps x systems x chains) to a ``size`` canvas, stretching x and y
    to fill it as FractalDB does. Returns each point's pixel index (same shape, int32), the hit
    count of every pixel (systems x size*size) and which systems are usable (finite, bounded, not
    collapsed to a line); counts of unusable systems are zero."""
    with np.errstate(all="ignore"):
        x0, x1 = xs.min(axis=(0, 2)), xs.max(axis=(0, 2))
        y0, y1 = ys.min(axis=(0, 2)), ys.max(axis=(0, 2))
        bound = np.maximum.reduce([np.abs(x0), np.abs(x1), np.abs(y0), np.abs(y1)])
        usable = np.isfinite(bound) & (bound < 1e4) & (x1 - x0 > 1e-6) & (y1 - y0 > 1e-6)
        span = size - 1 - 2 * _PAD_PX
        sx = np.where(usable, span / (x1 - x0), 0.0).astype(np.float32)[None, :, None]
        sy = np.where(usable, span / (y1 - y0), 0.0).astype(np.float32)[None, :, None]
    # Unusable systems (possibly non-finite) are parked on one pixel; their counts are zeroed below.
    x0 = np.where(usable, x0, 0.0).astype(np.float32)[None, :, None]
    y0 = np.where(usable, y0, 0.0).astype(np.float32)[None, :, None]
    if not usable.all():
        xs, ys = xs.copy(), ys.copy()
        xs[:, ~usable] = 0.0
        ys[:, ~usable] = 0.0
    # In-place arithmetic: these arrays hold millions of points.
    t = xs - x0
    t *= sx
    t += _PAD_PX + 0.5
    pixels = t.astype(np.int32)
    np.subtract(ys, y0, out=t)
    t *= sy
    t += _PAD_PX + 0.5
    pixels += t.astype(np.int32) * size
    n = xs.shape[1]
    offsets = (np.arange(n, dtype=np.int32) * (size * size))[None, :, None]
    counts = np.bincount((pixels + offsets).ravel(), minlength=n * size * size).reshape(n, size * size)
    counts[~usable] = 0
    return pixels, counts, usable


def fill_ratio(counts: np.ndarray) -> np.ndarray:
    """Share of canvas pixels hit by at least one point (FractalDB's filling rate), per row."""
    return np.count_nonzero(counts, axis=-1) / counts.shape[-1]


def _hsv_palette(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` saturated, bright random colours (RGB in [0, 1], n x 3)."""
    h = rng.random(n) * 6.0
    s = rng.uniform(0.55, 1.0, n)
    v = rng.uniform(0.75, 1.0, n)
    i = np.floor(h).astype(int) % 6
    f = h - np.floor(h)
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    table = np.stack([(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)])  # 6 x 3 x n
    return table[i, :, np.arange(n)]


def render(
    pixels: np.ndarray, ks: np.ndarray, counts: np.ndarray, palette: np.ndarray, size: int
) -> np.ndarray:
    """Colourise one system: each map has a colour and a pixel takes the mean colour of the maps
    that put points on it (so each sub-copy of the attractor has its hue), at full value;
    brightness is the log point density. Black background: exactly the pixels no point hit are 0.
    ``pixels`` and ``ks`` are the points' pixel indices and map indices, ``counts`` the hit counts.
    Returns uint8 3 x size x size."""
    flat = pixels.ravel()
    colours = palette[ks.ravel()]
    sums = np.stack([np.bincount(flat, colours[:, c], minlength=size * size) for c in range(3)], axis=1)
    hue = sums / np.maximum(sums.max(1, keepdims=True), 1e-6)
    # Log density, normalised by a high percentile so one dense fixed point does not dim the rest;
    # a floor keeps single hits visible.
    ref = np.percentile(counts[counts > 0], 99)
    level = np.clip(np.log1p(counts) / np.log1p(ref), 0.0, 1.0)
    brightness = np.where(counts > 0, 0.3 + 0.7 * level, 0.0)
    image = hue * brightness[:, None]
    return np.round(image * 255).astype(np.uint8).T.reshape(3, size, size)


def progress_shown(config: Any) -> bool | None:
    """False when the run's config turns progress bars off (``callbacks.progress_bar=none``: logs
    of a scheduler; or ``trainer.enable_progress_bar=false``), else None (the bar's own rule)."""
    callbacks = _cfg_get(config, "callbacks", None) if config is not None else None
    trainer = _cfg_get(config, "trainer", None) if config is not None else None
    if trainer is not None and _cfg_get(trainer, "enable_progress_bar", None) is False:
        return False  # (Lightning's own switch for its bars)
    return False if callbacks is not None and _cfg_get(callbacks, "progress_bar", "auto") == "none" else None


def generate_fractals(
    count: int,
    size: int = 256,
    seed: int = 0,
    points: int = 100_000,
    min_fill: float = 0.2,
    progress: bool | None = None,
) -> np.ndarray:
    """``count`` colour IFS fractals (uint8, count x 3 x size x size), keeping only systems whose
    points fill at least ``min_fill`` of the canvas (FractalDB: 0.2). Deterministic for a seed, and
    the first k of a larger bank equal a bank of k with the same settings."""
    if count < 1 or size < 2 * _PAD_PX + 2 or points < _CHAINS or not 0.0 <= min_fill < 1.0:
        raise ConfigError(
            f"fractals.count must be >= 1, fractals.size >= {2 * _PAD_PX + 2}, fractals.points >= "
            f"{_CHAINS} and 0 <= fractals.min_fill < 1; got count={count}, size={size}, "
            f"points={points}, min_fill={min_fill}"
        )
    rng = np.random.default_rng(seed)
    bank = np.empty((count, 3, size, size), np.uint8)
    kept = tried = 0
    bar = tqdm(
        total=count,
        desc="fractals",
        unit="img",
        disable=not (count >= 100 if progress is None else progress),
        # Outside a terminal (a log file) every refresh is written: rarely there.
        mininterval=0.1 if sys.stderr.isatty() else 30.0,
    )
    steps = -(-points // _CHAINS)
    screen_steps = max(1, steps // _SCREEN_SHARE)
    while kept < count:
        if tried >= _MAX_TRIES_PER_FRACTAL * count + 10_000:
            bar.close()
            raise ConfigError(
                f"only {kept} of {count} random systems filled fractals.min_fill={min_fill} of a "
                f"{size} px canvas after {tried} tries: lower fractals.min_fill (FractalDB: 0.2)"
            )
        maps, cumulative = sample_ifs(rng, _SYSTEMS_PER_CHUNK)
        palettes = _hsv_palette(rng, _SYSTEMS_PER_CHUNK * MAX_MAPS).reshape(_SYSTEMS_PER_CHUNK, MAX_MAPS, 3)
        tried += _SYSTEMS_PER_CHUNK
        # Early screen on the first points: a system whose first fifth of points covers less than a
        # quarter of min_fill is dropped before the rest is simulated (the rest can at most add
        # about four more fifths' worth; in 1800 sampled systems none so dropped reached min_fill).
        xs, ys, ks, (x, y) = chaos_game(maps, cumulative, screen_steps, rng)
        _, counts, _ = canvas_counts(xs, ys, size)
        alive = np.flatnonzero(fill_ratio(counts) >= min_fill / 4)
        if not len(alive):
            continue
        more = chaos_game(
            maps[alive], cumulative[alive], steps - screen_steps, rng, start=(x[alive], y[alive])
        )
        xs = np.concatenate([xs[:, alive], more[0]])
        ys = np.concatenate([ys[:, alive], more[1]])
        ks = np.concatenate([ks[:, alive], more[2]])
        pixels, counts, _ = canvas_counts(xs, ys, size)
        for j in np.flatnonzero(fill_ratio(counts) >= min_fill):
            bank[kept] = render(pixels[:, j], ks[:, j], counts[j], palettes[alive[j]], size)
            kept += 1
            bar.update(1)
            if kept == count:
                break
    bar.close()
    log.info("Generated %d fractals (%d px) from %d random systems", count, size, tried)
    return bank


def _cfg_get(cfg: Any, key: str, default: Any = None) -> Any:
    """A field of a DictConfig, dataclass or dict; missing (``???``) reads as ``default``."""
    if OmegaConf.is_config(cfg):
        return default if OmegaConf.is_missing(cfg, key) or key not in cfg else cfg[key]
    if isinstance(cfg, dict):
        return cfg.get(key, default)
    return getattr(cfg, key, default)


class FractalBank:
    """A fixed set of uint8 RGB pictures, ``N x 3 x size x size``.

    Built with :meth:`from_config` from ``cfg.fractals``: ``source=procedural`` generates IFS
    fractals once and caches them under ``fractals.cache_dir/<hash of the settings>/``;
    ``source=folder`` reads every image in ``fractals.dir`` (converted to RGB and made a ``size``
    square as ``fractals.fit`` says), as the official code loads its whole fractal folder.
    """

    def __init__(self, images: np.ndarray, path: Path | None = None) -> None:
        if images.ndim != 4 or images.shape[1] != 3 or images.dtype != np.uint8:
            raise ValueError(
                f"a fractal bank holds uint8 N x 3 x S x S images, got {images.dtype} {images.shape}"
            )
        self._images = images
        self.path = path
        self._tensor: torch.Tensor | None = None
        # What a bank read from a folder held (fractals.dir names where it was): its pictures'
        # count and the sha256 of their pixels as used, recorded in metrics.json's aug_settings.
        self.record: dict | None = None

    @classmethod
    def from_config(cls, fractals_cfg: Any, progress: bool | None = None) -> FractalBank:
        """The bank ``fractals.*`` describes; ``progress``: the progress bar of a bank generated
        (None: for 100 fractals or more; False with ``callbacks.progress_bar=none``)."""
        source = _cfg_get(fractals_cfg, "source", "procedural")
        size = int(_cfg_get(fractals_cfg, "size", 256))
        if source == "folder":
            folder = _cfg_get(fractals_cfg, "dir")
            if not folder:
                raise ConfigError(
                    "fractals=folder needs the picture folder: fractals.dir=<folder of images> "
                    "(or use fractals=procedural to generate IFS fractals)"
                )
            return cls.from_folder(folder, size, str(_cfg_get(fractals_cfg, "fit", "crop")))
        if source == "procedural":
            return cls.procedural(
                count=int(_cfg_get(fractals_cfg, "count", 1000)),
                size=size,
                seed=int(_cfg_get(fractals_cfg, "seed", 0)),
                cache_dir=_cfg_get(fractals_cfg, "cache_dir"),
                points=int(_cfg_get(fractals_cfg, "points", 100_000)),
                min_fill=float(_cfg_get(fractals_cfg, "min_fill", 0.2)),
                progress=progress,
            )
        raise ConfigError(f"fractals.source must be 'procedural' or 'folder', got '{source}'")

    @classmethod
    def procedural(
        cls,
        count: int = 1000,
        size: int = 256,
        seed: int = 0,
        cache_dir: str | Path | None = None,
        points: int = 100_000,
        min_fill: float = 0.2,
        progress: bool | None = None,
    ) -> FractalBank:
        """IFS fractals, read from the cache when these settings were generated before."""
        settings = {
            "algorithm": IFS_ALGORITHM,
            "count": count,
            "size": size,
            "seed": seed,
            "points": points,
            "min_fill": min_fill,
        }
        if cache_dir is None:
            return cls(generate_fractals(count, size, seed, points, min_fill, progress))
        digest = hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
        folder = Path(cache_dir).expanduser() / f"ifs_{digest}"
        path = folder / _FILE
        if path.exists():
            images = np.load(path, mmap_mode="r")
            if images.shape == (count, 3, size, size) and images.dtype == np.uint8:
                log.info("Fractal bank read from %s", path)
                return cls(images, path)
            log.warning("Fractal cache %s holds %s, not %d fractals; regenerating", path, images.shape, count)
        log.info("Generating %d fractals (%d px) into %s", count, size, path)
        images = generate_fractals(count, size, seed, points, min_fill, progress)
        folder.mkdir(parents=True, exist_ok=True)
        # Whole or not at all: a killed run or a full disk never leaves a half-written bank behind.
        write_atomic(path, lambda fh: np.save(fh, images))
        write_atomic(folder / "settings.json", json.dumps(settings, indent=2) + "\n")
        log.info("Fractal bank written to %s", path)
        return cls(np.load(path, mmap_mode="r"), path)

    @classmethod
    def from_folder(cls, folder: str | Path, size: int = 256, fit: str = "crop") -> FractalBank:
        """Every image under ``folder`` as an RGB ``size`` square: ``fit=crop`` resizes the shorter
        side and crops the centre, ``fit=squash`` resizes both sides (bicubic, as PIL's ``resize``
        by default: DiffuseMix's official code)."""
        if fit not in ("crop", "squash"):
            raise ConfigError(f"fractals.fit must be crop or squash, got '{fit}'")
        folder = Path(folder).expanduser()
        if not folder.is_dir():
            raise FileNotFoundError(
                f"fractals.dir={folder} is not a folder. Point fractals.dir at a folder of images "
                "(png/jpg, searched recursively) or use fractals=procedural."
            )
        files = list_image_files(folder)
        if not files:
            raise FileNotFoundError(
                f"fractals.dir={folder} holds no images (png, jpg, bmp, webp, ...). Put the mixing "
                "pictures there or use fractals=procedural."
            )
        images = np.empty((len(files), 3, size, size), np.uint8)
        for i, file in enumerate(tqdm(files, desc="fractal folder", disable=len(files) < 100)):
            img = load_rgb(file)
            if fit == "squash":
                img = img.resize((size, size), Image.Resampling.BICUBIC)
                images[i] = np.asarray(img, dtype=np.uint8).transpose(2, 0, 1)
                continue
            scale = size / min(img.size)
            w, h = max(size, round(img.width * scale)), max(size, round(img.height * scale))
            img = img.resize((w, h), Image.Resampling.BICUBIC)
            left, top = (w - size) // 2, (h - size) // 2
            img = img.crop((left, top, left + size, top + size))
            images[i] = np.asarray(img, dtype=np.uint8).transpose(2, 0, 1)
        log.info("Fractal bank: %d images from %s", len(files), folder)
        bank = cls(images)
        digest = hashlib.sha256(f"{images.shape}".encode())
        digest.update(np.ascontiguousarray(images).data)
        bank.record = {"source": "folder", "images": len(files), "sha256": digest.hexdigest()}
        return bank

    def __len__(self) -> int:
        return len(self._images)

    @property
    def size(self) -> int:
        return self._images.shape[-1]

    def get(self, i: int) -> torch.Tensor:
        """Picture ``i``: uint8 3 x size x size."""
        return torch.from_numpy(np.array(self._images[i]))

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` pictures drawn uniformly with replacement: uint8 n x 3 x size x size."""
        idx = torch.randint(len(self), (n,), generator=generator).numpy()
        return torch.from_numpy(np.array(self._images[idx]))

    def as_tensor(self) -> torch.Tensor:
        """The whole bank as one uint8 tensor (N x 3 x size x size), to move to the device once."""
        if self._tensor is None:
            self._tensor = torch.from_numpy(np.array(self._images))
        return self._tensor

    def __getstate__(self) -> dict:
        # A file-backed bank travels to worker processes as its path, not as its pixels.
        state = dict(self.__dict__, _tensor=None)
        if self.path is not None:
            state["_images"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        if self._images is None:
            self._images = np.load(self.path, mmap_mode="r")
