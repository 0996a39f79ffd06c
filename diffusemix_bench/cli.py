"""Entry points behind the top-level scripts: user errors end with a message, not a traceback."""

from __future__ import annotations

import logging
import os

from omegaconf import DictConfig

from .data.base import CorruptImageError, DatasetNotFoundError, SplitNotAvailableError
from .errors import ConfigError
from .models import PretrainedWeightsError

log = logging.getLogger("diffusemix_bench")

# Errors a user causes and fixes by changing data, files or settings.
USER_ERRORS = (
    DatasetNotFoundError,
    CorruptImageError,
    SplitNotAvailableError,
    FileNotFoundError,
    ConfigError,
    PretrainedWeightsError,
)


def run_train(cfg: DictConfig) -> float | None:
    """Run training; return validation top-1 (the value Hydra sweepers optimise)."""
    from .training.run import train

    try:
        metrics = train(cfg)
    except USER_ERRORS as exc:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        log.error("%s", exc)
        raise SystemExit(f"error: {exc}") from None
    return metrics.get("val_top1")
