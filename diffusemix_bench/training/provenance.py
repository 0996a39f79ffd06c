"""What produced a number besides its settings: the code's git commit (and whether the tree had
uncommitted changes), the package versions, and the limits that shortened the run."""

from __future__ import annotations

import functools
import platform
import subprocess
from importlib import metadata
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from ..config import as_lightning_count

PROJECT = Path(__file__).resolve().parents[2]
#: Untracked files that make a checkout dirty: code and settings a run may import or read.
CODE_SUFFIXES = (".py", ".pyx", ".pyi", ".so", ".yaml", ".yml", ".toml", ".cfg", ".json")
PACKAGES = ("torch", "torchvision", "pytorch-lightning", "timm", "diffusers", "torchattacks", "hydra-core")


def git_state(folder: Path = PROJECT) -> dict | None:
    """``{"commit", "dirty"}`` of the checkout the code runs from (None outside a git checkout)."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
        if commit.returncode != 0:
            return None
        status = subprocess.run(
            ["git", "-C", str(folder), "status", "--porcelain", "-z", "--untracked-files=all"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    entries = [e for e in status.stdout.split("\0") if e]
    # Untracked files count where they are code or settings a run may read (a module not yet
    # added, an experiment file): scratch files (notes, logs, images) change no number.
    changed = [e for e in entries if not e.startswith("?? ") or Path(e[3:]).suffix.lower() in CODE_SUFFIXES]
    return {"commit": commit.stdout.strip(), "dirty": bool(changed)}


def weights_file(path: str | None) -> dict | None:
    """``{"file", "sha256"}`` of the weight file a run started from (``model.weights``), so that runs
    are compared by the weights they loaded, not by where the file was; None without one."""
    if not path:
        return None
    import hashlib

    file = Path(path).expanduser()
    digest = hashlib.sha256()
    with open(file, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return {"file": str(file.resolve()), "sha256": digest.hexdigest()}


@functools.cache
def code_state(folder: Path = PROJECT) -> dict | None:
    """``git_state`` of the code this process runs, read once, when its first run starts: Python
    keeps the modules it imported, so a commit made while a sweep runs (its jobs in one process)
    or while a long run trains is not the code that made their numbers."""
    return git_state(folder)


def device_name(device) -> str:
    """The GPU's name (``torch.cuda.get_device_name``), or the device type (``cpu``, ``mps``)."""
    import torch

    return torch.cuda.get_device_name(device) if device.type == "cuda" else device.type


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def shortened_by(cfg: DictConfig, cut: dict[str, bool] | None = None) -> dict:
    """Every trainer setting that cut the run short of its epochs and splits, with its value.

    ``cut`` says, for a setting, whether it left anything out in this run: a limit of 5 batches on a
    split of 3, or ``max_steps`` reached only at the last epoch's end, cut nothing and is not listed.
    A setting ``cut`` does not name is listed whenever it is set."""
    t = cfg.trainer
    cut = cut or {}
    out = {}
    for key in ("limit_train_batches", "limit_val_batches", "limit_test_batches"):
        value = t.get(key)
        every = isinstance(value, float) and value == 1.0  # a float 1.0 is every batch
        if value is not None and not every and cut.get(key, True):
            out[key] = as_lightning_count(value)
    if t.get("fast_dev_run"):
        out["fast_dev_run"] = t.fast_dev_run
    if t.get("max_steps") not in (None, -1) and cut.get("max_steps", True):
        out["max_steps"] = t.max_steps
    if t.get("overfit_batches"):
        out["overfit_batches"] = as_lightning_count(t.overfit_batches)
    if t.get("max_time") and cut.get("max_time", True):  # a time limit that ended the training
        out["max_time"] = (
            OmegaConf.to_container(t.max_time) if OmegaConf.is_config(t.max_time) else t.max_time
        )
    return out
