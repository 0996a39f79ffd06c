"""Entry points behind the top-level scripts: user errors end with a message, not a traceback."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

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

log = logging.getLogger(__name__)


def _in_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


@contextmanager
def user_errors_reported() -> Iterator[None]:
    """A user error ends the run with its message, not a traceback (HYDRA_FULL_ERROR=1 shows it).
    In a ``--multirun`` sweep it fails the job only: the message goes to the job's log, Hydra runs
    the remaining jobs and then reports the failed ones."""
    try:
        yield
    except USER_ERRORS as exc:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        if _in_multirun():
            log.error("error: %s", exc)
            raise
        raise SystemExit(f"error: {exc}") from None


def run_train(cfg: DictConfig) -> float | None:
    """Run training; return validation top-1 (the value Hydra sweepers optimise).

    The config and the dataset are checked before the training stack is imported, so a typo or
    missing data is reported within seconds."""
    with user_errors_reported():
        validate_config(cfg)
        check_protocol_optimiser(cfg)
        splits = build_splits(cfg.dataset, cfg.paths.data_dir)
        from .training.run import train

        metrics = train(cfg, splits=splits)
    return metrics.get("val_top1")
