"""Print a paper table beside the paper's numbers (python report.py experiment=<name> runs=<sweep folder>),
or a table of one's own runs (python report.py runs=<sweep folder>)."""

import sys
from pathlib import Path

from diffusemix_bench.signals import quiet_interrupts

quiet_interrupts()  # Ctrl-C while the imports below take seconds: one line, no traceback

from diffusemix_bench.report_cli import run_report

if __name__ == "__main__":
    run_report(sys.argv[1:], str(Path(__file__).resolve().parent / "conf"))
