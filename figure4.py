"""Draw Figure 4 (I, edit, mask, hybrid, fractal, final): python figure4.py dataset=<name> [aug.figure_images=N]."""

import hydra
from omegaconf import DictConfig

from diffusemix_bench.config import register_configs

register_configs()


@hydra.main(version_base="1.3", config_path="conf", config_name="figure4")
def main(cfg: DictConfig) -> None:
    # Imported here: help and config printing need no torch.
    from diffusemix_bench.augment.diffusemix.figure4 import run_figure4

    run_figure4(cfg)


if __name__ == "__main__":
    main()
