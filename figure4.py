"""Draw Figure 4 (I, edit, mask, hybrid, fractal, final): python figure4.py dataset=<name> [aug.figure_images=N]."""

from pathlib import Path

from diffusemix_bench.signals import quiet_interrupts

quiet_interrupts()  # Ctrl-C while the imports below take seconds: one line, no traceback

import hydra
from omegaconf import DictConfig

from diffusemix_bench.cli import check_data_present, check_settings, run_figure4
from diffusemix_bench.config import register_configs
from diffusemix_bench.preflight import before_hydra

register_configs()


@hydra.main(version_base="1.3", config_path="conf", config_name="figure4")
def main(cfg: DictConfig) -> None:
    check_settings(cfg)
    check_data_present(cfg)
    # Imported there: help, config printing, config errors and missing data need no torch.
    run_figure4(cfg)


if __name__ == "__main__":
    if before_hydra(str(Path(__file__).resolve().parent / "conf"), "figure4"):
        main()
