"""The whole loop offline on CPU in a few minutes: python demo.py [out=<folder>] (make demo)."""

import sys
from pathlib import Path

from diffusemix_bench.errors import user_errors_reported

if __name__ == "__main__":
    out = Path("outputs/demo")
    for arg in sys.argv[1:]:
        if arg.startswith("out="):
            out = Path(arg[4:])
    with user_errors_reported():
        from diffusemix_bench.demo import run_demo

        run_demo(out, quick="quick=true" in sys.argv[1:])
