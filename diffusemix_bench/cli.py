"""Entry points behind the top-level scripts: user errors end with a message, not a traceback."""

from __future__ import annotations

import os

from omegaconf import DictConfig

from .config import check_protocol_optimiser, validate_config
from .data.base import CorruptImageError, DatasetNotFoundError, SplitNotAvailableError
from .data.splits import build_splits
from .errors import ConfigError, PretrainedWeightsError

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
    """Run training; return validation top-1 (the value Hydra sweepers optimise).

    The config and the dataset are checked before the training stack is imported, so a typo or
    missing data is reported within seconds."""
    try:
        validate_config(cfg)
        check_protocol_optimiser(cfg)
        splits = build_splits(cfg.dataset, cfg.paths.data_dir)
        from .training.run import train

        metrics = train(cfg, splits=splits)
    except USER_ERRORS as exc:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        raise SystemExit(f"error: {exc}") from None
    return metrics.get("val_top1")
