"""Print a paper table beside the paper's numbers: python report.py experiment=<name> runs=<sweep folder>."""

import sys
from pathlib import Path

from diffusemix_bench.cli import run_report

if __name__ == "__main__":
    run_report(sys.argv[1:], str(Path(__file__).resolve().parent / "conf"))
