"""Train a classifier: python train.py dataset=<name> model=<name> aug=<name> [key=value ...]."""

import hydra
from omegaconf import DictConfig

from diffusemix_bench.cli import run_train
from diffusemix_bench.config import register_configs

register_configs()


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    return run_train(cfg)


if __name__ == "__main__":
    main()
