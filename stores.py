"""List the edit stores generate.py made: python stores.py [paths.cache_dir=<folder>] [dataset=<name>]."""

import sys
from pathlib import Path

from diffusemix_bench.signals import quiet_interrupts

quiet_interrupts()  # Ctrl-C while the imports below take seconds: one line, no traceback

from diffusemix_bench.generation.listing import run_stores

if __name__ == "__main__":
    run_stores(sys.argv[1:], str(Path(__file__).resolve().parent / "conf"))
