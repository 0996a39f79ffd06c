"""Generate the InstructPix2Pix edits DiffuseMix trains on: python generate.py dataset=<name> [key=value]."""

import sys
from pathlib import Path

from diffusemix_bench.signals import quiet_interrupts

quiet_interrupts()  # Ctrl-C while the imports below take seconds: one line, no traceback

import hydra
from omegaconf import DictConfig

from diffusemix_bench.cli import (
    check_command_line,
    check_data_present,
    check_settings,
    expand_globs,
    generation_sweep,
    list_sweep,
    sweep_listing_requested,
)
from diffusemix_bench.config import register_configs

register_configs()


@hydra.main(version_base="1.3", config_path="conf", config_name="generate")
def main(cfg: DictConfig) -> None:
    check_settings(cfg)
    check_data_present(cfg)
    # Imported here: help, config printing, config errors and missing data need no torch or diffusers.
    from diffusemix_bench.generation.generate import run_generate

    run_generate(cfg)


if __name__ == "__main__":
    # aug=glob(*mix): the options it matches, written out for Hydra and the checks alike.
    sys.argv[1:] = expand_globs(sys.argv[1:], str(Path(__file__).resolve().parent / "conf"))
    # An experiment's sweep of training settings (methods, seeds) makes the same edits: left out.
    sys.argv[1:] = generation_sweep(sys.argv[1:], str(Path(__file__).resolve().parent / "conf"))
    if sweep_listing_requested(sys.argv[1:]):
        # --multirun ... --cfg job: list the runs of the sweep (Hydra itself refuses the pair).
        list_sweep(sys.argv[1:], str(Path(__file__).resolve().parent / "conf"), "generate")
    else:
        check_command_line(sys.argv[1:], str(Path(__file__).resolve().parent / "conf"), "generate")
        main()
