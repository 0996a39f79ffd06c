"""The progress bar of training and generation runs (Lightning's tqdm or rich bar, by name), and
the lines a run prints that its log file keeps too."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import TypeVar

from .errors import ConfigError, to_log_files

T = TypeVar("T")


def plain_progress(items, desc: str) -> Iterator:
    """``items`` with a tqdm bar when there are many (no Lightning needed)."""
    items = list(items)
    if len(items) < 500:
        yield from items
        return
    from tqdm.auto import tqdm

    yield from tqdm(items, desc=desc, unit="img", mininterval=2.0)


def progress_bar(kind: str):
    """Lightning's progress bar by name (``callbacks.progress_bar``): auto, tqdm, rich or none."""
    from pytorch_lightning.callbacks import RichProgressBar, TQDMProgressBar

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

        class ClosedOnError(TQDMProgressBar):
            """Lightning's tqdm bar, whose open bars end their line when an error stops the run (so
            the error's message starts a line of its own; Lightning's rich bar does so itself)."""

            def on_exception(self, trainer, pl_module, exception) -> None:
                for name in (
                    "_train_progress_bar",
                    "_val_progress_bar",
                    "_test_progress_bar",
                    "_predict_progress_bar",
                ):
                    bar = getattr(self, name, None)
                    if bar is not None:
                        bar.close()

        # Outside a terminal every refresh is a new line: refresh rarely.
        return ClosedOnError(refresh_rate=1 if sys.stdout.isatty() else 50)
    raise ConfigError(f"callbacks.progress_bar must be auto, tqdm, rich or none; got '{kind}'")


def say(message: str) -> None:
    """Print ``message`` (the run's own lines: a plan, a summary) and write it to the run's log
    files too (:func:`to_log_files`): the run folder keeps what the terminal showed."""
    print(message, flush=True)
    to_log_files(message)


def duration_text(seconds: float) -> str:
    """``0.4 s``, ``42 s``, ``3.5 min``, ``1.25 h``: a time as a run's messages say it."""
    if seconds < 9.95:  # (an epoch of a small run took "0 s")
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"


def counted(n: int, noun: str) -> str:
    """``1 edit``, ``3 edits``: a count and its noun (plural by an added s)."""
    return f"{n} {noun}{'' if n == 1 else 's'}"
