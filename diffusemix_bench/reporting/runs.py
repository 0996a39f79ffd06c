"""Finished, failed and diverged run folders read back: configuration, metrics, status."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import yaml
from omegaconf import DictConfig, OmegaConf

from ..config import with_added_settings
from ..errors import UserError

#: Written by a training run that stopped with an error (``status``: diverged or failed).
FAILURE_FILE = "failure.json"


class ReportError(UserError):
    """The runs or the experiment given to a report cannot make a table (the message says why)."""


@dataclass
class Run:
    folder: Path
    config: DictConfig
    metrics: dict | None
    status: str  # finished, failed (stopped with an error, or no metrics.json), diverged
    reason: str | None = None

    @property
    def finished(self) -> bool:
        return self.status == "finished"


def _read_config(folder: Path) -> DictConfig | None:
    """The run's settings: ``config_resolved.yaml`` (written when training starts), else Hydra's
    ``.hydra/config.yaml`` (written before the job runs, so a job that failed early has it)."""
    for path in (folder / "config_resolved.yaml", folder / ".hydra" / "config.yaml"):
        if path.is_file():
            try:
                data = yaml.safe_load(path.read_text())
            except yaml.YAMLError as exc:
                said = " ".join(str(exc).split())
                raise ReportError(
                    f"{path} is not readable YAML ({said}); remove the folder or rerun that job"
                ) from None
            if not isinstance(data, dict):
                raise ReportError(f"{path} holds no settings; remove the folder or rerun that job")
            # A setting added since the run was made: the value that gives what it ran with.
            return with_added_settings(OmegaConf.create(data))
    return None


def _diverged(metrics: dict) -> bool:
    values = [metrics.get(k) for k in ("val_top1", "test_top1")]
    return any(isinstance(v, float) and not math.isfinite(v) for v in values)


def read_run(folder: Path) -> Run | None:
    """The run in ``folder`` (None when the folder holds no run's settings)."""
    config = _read_config(folder)
    if config is None:
        return None
    failure = folder / FAILURE_FILE
    metrics_path = folder / "metrics.json"
    metrics = None
    if metrics_path.is_file():
        try:
            metrics = json.loads(metrics_path.read_text())
        except json.JSONDecodeError as exc:
            return Run(folder, config, None, "failed", f"metrics.json is not valid JSON ({exc})")
    # failure.json is removed when a run finishes: beside a metrics.json it says the run's last part
    # (trained further, or evaluated again) stopped, so that metrics.json is not the run's result.
    if failure.is_file():
        try:
            info = json.loads(failure.read_text())
        except json.JSONDecodeError:
            info = {}
        return Run(folder, config, None, str(info.get("status", "failed")), info.get("error"))
    if metrics is None:
        return Run(folder, config, None, "failed", "no metrics.json (the run stopped before it finished)")
    if _diverged(metrics):
        return Run(folder, config, metrics, "diverged", "a non-finite metric")
    return Run(folder, config, metrics, "finished")


def find_runs(roots: list[Path]) -> list[Run]:
    """Every run folder under ``roots`` (a sweep folder, a run folder, or folders of them)."""
    runs: list[Run] = []
    seen: set[Path] = set()
    for root in roots:
        root = Path(root).expanduser()
        if not root.exists():
            raise ReportError(
                f"runs={root}: no such folder; give the sweep folder(s) the runs wrote (multirun/...)"
            )
        candidates = [root] + sorted(p.parent for p in root.rglob("config_resolved.yaml"))
        candidates += sorted(p.parent.parent for p in root.rglob(".hydra/config.yaml"))
        for folder in candidates:
            folder = folder.resolve()
            if folder in seen:
                continue
            seen.add(folder)
            run = read_run(folder)
            if run is not None:
                runs.append(run)
    return runs
