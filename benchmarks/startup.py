"""Start-up time of the entry points against ``python -c "import torch"`` (the floor for anything
that touches torch), measured in the same run: ``train.py --help``, a misspelt setting, a config
error found by the checks, a missing-data error, ``--cfg job``, and generate.py's help and
missing-data error, each the median of ``--repeats`` runs.

    .venv/bin/python -m benchmarks.startup --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import write_results

ROOT = Path(__file__).resolve().parents[1]


def timed(args: list[str], cwd: Path) -> tuple[float, int, str]:
    start = time.perf_counter()
    result = subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True)
    last = (result.stderr.strip() or result.stdout.strip()).splitlines()[-1:] or [""]
    return time.perf_counter() - start, result.returncode, last[0][:100]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cases = {
            'python -c "import torch" (baseline)': ["-c", "import torch"],
            "train.py --help": [str(ROOT / "train.py"), "--help"],
            "train.py aug=diffuesmix (did-you-mean)": [str(ROOT / "train.py"), "aug=diffuesmix"],
            "train.py dataset.batch_size=0 (value check)": [str(ROOT / "train.py"), "dataset.batch_size=0"],
            "train.py dataset=cub (missing data)": [
                str(ROOT / "train.py"),
                "dataset=cub",
                f"paths.data_dir={tmp}/nothing",
                f"hydra.run.dir={tmp}/run",
            ],
            "train.py --cfg job": [str(ROOT / "train.py"), "--cfg", "job"],
            "generate.py --help": [str(ROOT / "generate.py"), "--help"],
            "generate.py dataset=cub (missing data)": [
                str(ROOT / "generate.py"),
                "dataset=cub",
                f"paths.data_dir={tmp}/nothing",
                f"hydra.run.dir={tmp}/run",
            ],
        }
        rows = []
        for name, argv in cases.items():
            runs = [timed(argv, Path(tmp)) for _ in range(args.repeats)]
            rows.append(
                {
                    "command": name,
                    "median_s": round(statistics.median(r[0] for r in runs), 2),
                    "exit_code": runs[0][1],
                    "last_line": runs[0][2].replace("|", "/"),
                }
            )
    base = rows[0]["median_s"]
    for row in rows:
        row["vs_import_torch"] = f"{row['median_s'] / base:.1f}x"
    json_path, md_path = write_results(
        "startup",
        {"settings": {"repeats": args.repeats}, "rows": rows},
        rows,
        notes=(
            "Each command in a fresh process, median of the repeats. The baseline, import torch, is "
            "measured in the same run. Composing and checking the config, --help, and the check "
            "that the dataset's folder exists import no torch (the augmentation schemas live in "
            "config.py; the data package loads its readers on first use); the training and "
            "generation stacks are imported after them."
        ),
    )
    print(md_path.read_text())


if __name__ == "__main__":
    main()
