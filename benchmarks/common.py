"""Shared helpers for benchmarks: machine description and result files (JSON + markdown)."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results"


def _versions(names: tuple[str, ...]) -> dict:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in names:
        try:
            found[name] = version(name.replace("_", "-"))
        except PackageNotFoundError:
            continue
    return found


def machine() -> dict:
    info = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        **_versions(("torchvision", "diffusers", "transformers", "numpy", "pytorch_lightning")),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def write_results(name: str, payload: dict, table_rows: list[dict], notes: str = "") -> tuple[Path, Path]:
    """Write ``results/<name>.json`` and ``results/<name>.md`` (machine, settings, table). The JSON
    holds the table's rows unless ``payload`` gives its own ``rows``."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {"benchmark": name, "date": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": machine(), **payload}
    payload.setdefault("rows", table_rows)
    json_path = RESULTS / f"{name}.json"
    json_path.write_text(json.dumps(payload, indent=2) + "\n")
    lines = [
        f"# {name}",
        "",
        f"Date: {payload['date']}",
        "",
        "Machine: " + ", ".join(f"{k}={v}" for k, v in payload["machine"].items()),
        "",
    ]
    if "settings" in payload:
        lines += ["Settings: " + ", ".join(f"{k}={v}" for k, v in payload["settings"].items()), ""]
    if notes:
        lines += [notes, ""]
    if table_rows:
        keys = list(table_rows[0])
        lines += ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
        lines += ["| " + " | ".join(str(r[k]) for k in keys) + " |" for r in table_rows]
    md_path = RESULTS / f"{name}.md"
    md_path.write_text("\n".join(lines) + "\n")
    return json_path, md_path


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device: torch.device, warmup: int, repeats: int) -> list[float]:
    """Seconds of each of ``repeats`` calls of ``fn`` after ``warmup`` untimed ones (device synced)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return times
