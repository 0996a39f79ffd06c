"""Attack a finished run: python evaluate.py ckpt=<run folder or .ckpt> eval.fgsm=true [eval.pgd=true]."""

import sys
from pathlib import Path

from diffusemix_bench.signals import quiet_interrupts

quiet_interrupts()  # Ctrl-C while the imports below take seconds: one line, no traceback

import hydra
from omegaconf import DictConfig

from diffusemix_bench.cli import run_evaluate
from diffusemix_bench.config import register_configs
from diffusemix_bench.preflight import check_command_line

register_configs()


@hydra.main(version_base="1.3", config_path="conf", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    run_evaluate(cfg)


if __name__ == "__main__":
    check_command_line(sys.argv[1:], str(Path(__file__).resolve().parent / "conf"), "evaluate")
    main()
