"""Start-up time of the entry points against ``python -c "import torch"`` (the floor for anything
that touches torch), measured in the same run: ``train.py --help``, a misspelt setting, a config
error found by the checks, a missing-data error, ``--cfg job``, and generate.py's help and
missing-data error, each the median of ``--repeats`` runs. Then ``import pytorch_lightning`` (what
every training and generation run imports) with the environment's bytecode as installed against
the same import compiled from source, as where no bytecode was compiled at install and Python may
not write its cache (``PYTHONDONTWRITEBYTECODE``): ``make install`` compiles it once.

    .venv/bin/python -m benchmarks.startup --repeats 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import write_results

ROOT = Path(__file__).resolve().parents[1]


def timed(args: list[str], cwd: Path, env: dict | None = None) -> tuple[float, int, str]:
    start = time.perf_counter()
    result = subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, env=env)
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
        # The same import with the installed bytecode and without any (an empty cache folder that
        # Python may not write to: every module compiled from source), in turn, round by round.
        no_cache = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", PYTHONPYCACHEPREFIX=str(Path(tmp) / "empty"))
        arms = {
            "import pytorch_lightning (bytecode as installed)": dict(os.environ),
            "import pytorch_lightning (compiled from source)": no_cache,
        }
        times: dict[str, list[float]] = {name: [] for name in arms}
        for _ in range(args.repeats):
            for name, env in arms.items():
                times[name].append(timed(["-c", "import pytorch_lightning"], Path(tmp), env)[0])
        lightning = [
            {"import": name, "median_s": round(statistics.median(t), 2), "runs_s": [round(x, 2) for x in t]}
            for name, t in times.items()
        ]
        ratio = lightning[1]["median_s"] / lightning[0]["median_s"]
    site = Path(pl_file()).parent
    compiled = any((site / "__pycache__").glob("*.pyc"))
    json_path, md_path = write_results(
        "startup",
        {
            "settings": {"repeats": args.repeats, "bytecode_installed": compiled},
            "rows": rows,
            "import_lightning": lightning,
            "compiled_from_source_vs_installed": round(ratio, 2),
        },
        rows,
        notes=(
            f"Importing PyTorch Lightning: {lightning[0]['median_s']} s with the environment's bytecode "
            f"as installed ({'compiled' if compiled else 'NOT compiled: install with make install'}) against "
            f"{lightning[1]['median_s']} s compiled from source ({ratio:.1f}x), the two in turn over "
            f"{args.repeats} rounds (runs: {lightning[0]['runs_s']} and {lightning[1]['runs_s']}). "
            "Each command in a fresh process, median of the repeats. The baseline, import torch, is "
            "measured in the same run. Composing and checking the config, --help, and the check "
            "that the dataset's folder exists import no torch (the augmentation schemas live in "
            "config.py; the data package loads its readers on first use); the training and "
            "generation stacks are imported after them."
        ),
    )
    print(md_path.read_text())


def pl_file() -> str:
    """pytorch_lightning's __init__.py, found without importing it."""
    import importlib.util

    return importlib.util.find_spec("pytorch_lightning").origin


if __name__ == "__main__":
    main()
