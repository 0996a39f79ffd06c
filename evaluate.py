"""Attack a finished run: python evaluate.py ckpt=<run folder or .ckpt> eval.fgsm=true [eval.pgd=true]."""

import hydra
from omegaconf import DictConfig

from diffusemix_bench.cli import run_evaluate
from diffusemix_bench.config import register_configs

register_configs()


@hydra.main(version_base="1.3", config_path="conf", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    run_evaluate(cfg)


if __name__ == "__main__":
    main()
