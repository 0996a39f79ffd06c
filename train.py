"""Train a classifier: python train.py dataset=<name> model=<name> aug=<name> [key=value ...]."""

from pathlib import Path

from diffusemix_bench.signals import quiet_interrupts

quiet_interrupts()  # Ctrl-C while the imports below take seconds: one line, no traceback

import hydra
from omegaconf import DictConfig

from diffusemix_bench.cli import run_train
from diffusemix_bench.config import register_configs
from diffusemix_bench.preflight import before_hydra

register_configs()


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    return run_train(cfg)


if __name__ == "__main__":
    if before_hydra(str(Path(__file__).resolve().parent / "conf"), "config"):
        main()
