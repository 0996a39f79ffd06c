"""Entry points behind train.py and evaluate.py: user errors end with a message, not a traceback."""

from __future__ import annotations

from omegaconf import DictConfig

from .config import check_protocol_optimiser, validate_config
from .data.splits import build_splits
from .errors import ConfigError, user_errors_reported


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


LISTING_FLAGS = {"--multirun", "-m"}
CFG_FLAGS = {"--cfg", "-c"}


def sweep_listing_requested(argv: list[str]) -> bool:
    """``--multirun`` with ``--cfg``: Hydra refuses the pair; this framework lists the sweep's runs."""
    return bool(LISTING_FLAGS & set(argv)) and any(a in CFG_FLAGS or a.startswith("--cfg=") for a in argv)


def sweep_jobs(overrides: list[str], config_dir: str, config_name: str = "config") -> list[list[str]]:
    """The runs ``--multirun <overrides>`` launches: the experiment's ``hydra.sweeper.params``
    (a setting given on the command line replaces its sweep) crossed with the command line's own
    sweeps, in the order Hydra's basic sweeper runs them."""
    from hydra import compose, initialize_config_dir
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    given = parser.parse_overrides(overrides)
    fixed = [o.input_line for o in given if not o.is_sweep_override()]
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=config_dir, version_base="1.3"):
        cfg = compose(config_name, overrides=fixed, return_hydra_config=True)
    GlobalHydra.instance().clear()
    keys = {o.get_key_element() for o in given}
    params = cfg.hydra.sweeper.params or {}
    lines = [f"{key}={value}" for key, value in params.items() if key not in keys]
    batches = BasicSweeper.split_arguments(parser.parse_overrides(lines + list(overrides)), None)
    return [job for batch in batches for job in batch]


def list_sweep(argv: list[str], config_dir: str, config_name: str = "config") -> None:
    """Print the runs of ``train.py --multirun <overrides> --cfg job`` (one line each), run nothing."""
    skip = False
    overrides = []
    for arg in argv:
        if skip:
            skip = False
        elif arg in CFG_FLAGS:
            skip = True  # its value: job, hydra or all
        elif not arg.startswith("-"):
            overrides.append(arg)
    from hydra.errors import HydraException

    with user_errors_reported():
        try:
            jobs = sweep_jobs(overrides, config_dir, config_name)
        except HydraException as exc:  # a composition error (unknown experiment, bad override)
            raise ConfigError(str(exc)) from None
    print(f"{len(jobs)} runs:")
    for k, job in enumerate(jobs):
        print(f"  {k}: {' '.join(job)}")
