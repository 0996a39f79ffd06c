"""The whole loop offline on CPU in a few minutes: python demo.py [out=<folder>] (make demo)."""

import sys
from pathlib import Path

from diffusemix_bench.signals import quiet_interrupts

quiet_interrupts()  # Ctrl-C while the imports below take seconds: one line, no traceback

from diffusemix_bench.errors import user_errors_reported

USAGE = """usage: python demo.py [out=<folder>] [quick=true]

Runs the whole loop offline on CPU (make demo): a dataset of coloured shapes, edits from the tiny
random InstructPix2Pix pipeline, vanilla and DiffuseMix trained with two seeds, FGSM, the report.
  out=<folder>  where everything goes (default outputs/demo)
  quick=true    one epoch and one denoising step (the test suite's form: one to three minutes on 2 cores)"""

if __name__ == "__main__":
    out = Path("outputs/demo")
    for arg in sys.argv[1:]:
        if arg in ("-h", "--help"):
            print(USAGE)
            sys.exit(0)
        if arg.startswith("out="):
            if not arg[4:].strip():
                print(
                    "error: out= names no folder: give out=<folder> (without it: outputs/demo)",
                    file=sys.stderr,
                )
                sys.exit(1)
            try:
                out = Path(arg[4:]).expanduser()
                file = next((p for p in (out, *out.parents) if p.exists() and not p.is_dir()), None)
            except (OSError, RuntimeError) as exc:  # (a folder not readable, ~user unknown)
                print(
                    f"error: out={arg[4:]}: cannot be used ({exc}): give a folder you may write",
                    file=sys.stderr,
                )
                sys.exit(1)
            if file is not None:
                print(
                    f"error: out={arg[4:]}: {file} is a file, not a folder: give out=<folder>",
                    file=sys.stderr,
                )
                sys.exit(1)
        elif arg not in ("quick=true", "quick=false"):
            print(
                f"error: demo.py takes out=<folder> and quick=true, got '{arg}'\n\n{USAGE}", file=sys.stderr
            )
            sys.exit(1)
    with user_errors_reported():
        from diffusemix_bench.demo import run_demo

        run_demo(out, quick="quick=true" in sys.argv[1:])
