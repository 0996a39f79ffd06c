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
    # The code measured: its commit, and whether the tree had uncommitted changes.
    from diffusemix_bench.training.provenance import git_state

    state = git_state()
    if state is not None:
        info["commit"] = state["commit"][:10] + ("+uncommitted" if state["dirty"] else "")
    return info


def write_results(
    name: str, payload: dict, table_rows: list[dict], notes: str = "", derived: bool = False
) -> tuple[Path, Path]:
    """Write ``results/<name>.json`` and ``results/<name>.md`` (machine, settings, table). The JSON
    holds the table's rows unless ``payload`` gives its own ``rows``. ``derived``: numbers computed
    from other result files, not measured here; files that would differ only in date and machine
    are left as they are (their date says when these numbers were first derived)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {"benchmark": name, "date": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": machine(), **payload}
    if derived:
        payload["derived"] = True
    payload.setdefault("rows", table_rows)
    json_path = RESULTS / f"{name}.json"
    md_path = RESULTS / f"{name}.md"
    if derived and json_path.is_file() and md_path.is_file():
        try:
            before = json.loads(json_path.read_text())
        except ValueError:
            before = None
        if isinstance(before, dict) and _content(before) == _content(json.loads(json.dumps(payload))):
            print(f"{json_path}: unchanged (kept as derived on {before.get('date')})", flush=True)
            return json_path, md_path
    json_path.write_text(json.dumps(payload, indent=2) + "\n")
    # A derived file's machine is where it was computed, not where its sources were measured.
    where = "Derived (not measured) on: " if derived else "Machine: "
    lines = [
        f"# {name}",
        "",
        f"Date: {payload['date']}",
        "",
        where
        + ", ".join(f"{k}={v}" for k, v in payload["machine"].items())
        + (
            "; the numbers come from the source files its settings name, each with its own machine"
            if derived
            else ""
        ),
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
    md_path.write_text("\n".join(lines) + "\n")
    return json_path, md_path


def _content(payload: dict) -> dict:
    """A result file's numbers and settings: all but when and where it was written."""
    return {k: v for k, v in payload.items() if k not in ("date", "machine")}


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
