"""Generate the InstructPix2Pix edits DiffuseMix trains on: python generate.py dataset=<name> [key=value]."""

from pathlib import Path

from diffusemix_bench.signals import quiet_interrupts

quiet_interrupts()  # Ctrl-C while the imports below take seconds: one line, no traceback

import hydra
from omegaconf import DictConfig

from diffusemix_bench.cli import (
    check_data_present,
    check_settings,
    generation_refused,
    refusal_leaves_no_folder,
)
from diffusemix_bench.config import register_configs
from diffusemix_bench.preflight import before_hydra

register_configs()


@hydra.main(version_base="1.3", config_path="conf", config_name="generate")
def main(cfg: DictConfig) -> None:
    # A command refused before its first edit leaves no run folder of Hydra's files alone.
    with refusal_leaves_no_folder(cfg, generation_refused):
        check_settings(cfg)
        check_data_present(cfg)
        # Imported here: help, config printing, config errors and missing data need no torch or diffusers.
        from diffusemix_bench.generation.generate import run_generate

        run_generate(cfg)


if __name__ == "__main__":
    if before_hydra(str(Path(__file__).resolve().parent / "conf"), "generate"):
        main()
