"""The progress bar of training and generation runs (Lightning's tqdm or rich bar, by name)."""

from __future__ import annotations

import sys

from pytorch_lightning.callbacks import Callback, RichProgressBar, TQDMProgressBar

from .errors import ConfigError


def progress_bar(kind: str) -> Callback | None:
    """Lightning's progress bar by name (``callbacks.progress_bar``): auto, tqdm, rich or none."""
    if kind == "auto":
        kind = "rich" if sys.stdout.isatty() else "tqdm"
    if kind == "none":
        return None
    if kind == "rich":
        try:
            return RichProgressBar()
        except ModuleNotFoundError:
            kind = "tqdm"
    if kind == "tqdm":
        # Outside a terminal every refresh is a new line: refresh rarely.
        return TQDMProgressBar(refresh_rate=1 if sys.stdout.isatty() else 50)
    raise ConfigError(f"callbacks.progress_bar must be auto, tqdm, rich or none; got '{kind}'")
