"""Train a classifier: python train.py dataset=<name> model=<name> aug=<name> [key=value ...]."""

import sys
from pathlib import Path

from diffusemix_bench.signals import quiet_interrupts

quiet_interrupts()  # Ctrl-C while the imports below take seconds: one line, no traceback

import hydra
from omegaconf import DictConfig

from diffusemix_bench.cli import (
    check_command_line,
    expand_globs,
    list_sweep,
    run_train,
    sweep_listing_requested,
)
from diffusemix_bench.config import register_configs

register_configs()


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    return run_train(cfg)


if __name__ == "__main__":
    # aug=glob(*mix): the options it matches, written out for Hydra and the checks alike.
    sys.argv[1:] = expand_globs(sys.argv[1:], str(Path(__file__).resolve().parent / "conf"))
    if sweep_listing_requested(sys.argv[1:]):
        # --multirun ... --cfg job: list the runs of the sweep (Hydra itself refuses the pair).
        list_sweep(sys.argv[1:], str(Path(__file__).resolve().parent / "conf"))
    else:
        check_command_line(sys.argv[1:], str(Path(__file__).resolve().parent / "conf"), "config")
        main()
