"""Entry points behind train.py and evaluate.py: user errors end with a message, not a traceback."""

from __future__ import annotations

from omegaconf import DictConfig

from .config import check_protocol_optimiser, validate_config
from .data.splits import build_splits
from .errors import user_errors_reported


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


def run_evaluate(cfg: DictConfig) -> dict:
    """Attack a finished run's checkpoint (FGSM/PGD) and add the errors to its metrics.json."""
    with user_errors_reported():
        from .training.evaluate import evaluate_run

        return evaluate_run(cfg)
