"""Finished, failed and diverged run folders read back: configuration, metrics, status."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import yaml
from omegaconf import DictConfig, OmegaConf

from ..config import with_added_settings
from ..errors import UserError, message_of

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


def _resolved(node):
    """A saved config as plain values: each interpolation resolved where it can be (Hydra's
    ``.hydra/config.yaml`` keeps them, ``${per_dataset:...}`` say), left as written where it
    cannot (``${hydra:...}`` outside Hydra)."""
    if OmegaConf.is_dict(node):
        keys, out = list(node), {}
    elif OmegaConf.is_list(node):
        keys, out = range(len(node)), [None] * len(node)
    else:
        return node
    for key in keys:
        try:
            out[key] = _resolved(node[key])
        except Exception:  # an interpolation with no resolver here: as written
            out[key] = node._get_node(key)._value()
    return out


def _load(path: Path, what: str):
    """A run folder's JSON or YAML file read back; a damaged one (not text, not JSON or YAML) raises ValueError saying so."""
    try:
        text = path.read_text(encoding="utf-8")
        return yaml.safe_load(text) if what == "yaml" else json.loads(text)
    except (UnicodeDecodeError, yaml.YAMLError, json.JSONDecodeError) as exc:
        raise ValueError(" ".join(str(exc).split())) from None


def _written_by_train(folder: Path) -> bool:
    """Whether Hydra's files in ``folder`` were written for train.py (not generate.py or figure4.py,
    whose folders hold the training settings too): ``hydra.job.name`` in ``.hydra/hydra.yaml``."""
    try:
        name = _load(folder / ".hydra" / "hydra.yaml", "yaml")["hydra"]["job"]["name"]
    except (OSError, ValueError, KeyError, TypeError):
        return True  # no readable record of the script: taken as a run
    return name == "train"


def _read_config(folder: Path) -> DictConfig | None:
    """The run's settings: ``config_resolved.yaml`` (written when training starts), else Hydra's
    ``.hydra/config.yaml`` (written before the job runs, so a job that failed early has it; its
    interpolations resolved). None for a folder that holds no training run's settings."""
    for path in (folder / "config_resolved.yaml", folder / ".hydra" / "config.yaml"):
        if not path.is_file():
            continue
        if path.name == "config.yaml" and not _written_by_train(folder):
            return None
        try:
            data = _load(path, "yaml")
        except ValueError as exc:
            raise ReportError(
                f"{path} is not readable YAML ({exc}); remove the folder or rerun that job"
            ) from None
        if not isinstance(data, dict):
            raise ReportError(f"{path} holds no settings; remove the folder or rerun that job")
        config = OmegaConf.create(data)
        if path.name == "config.yaml":
            config = OmegaConf.create(_resolved(config))
        seed = config.get("seed")
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise ReportError(
                f"{path} has no whole-number seed (seed: {seed!r}): cut short, or edited by hand; restore it "
                "from a copy, remove the folder or rerun that job"
            )
        # A setting added since the run was made: the value that gives what it ran with.
        return with_added_settings(config)
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
            metrics = _load(metrics_path, "json")
        except ValueError as exc:
            return Run(folder, config, None, "failed", f"metrics.json is damaged ({exc})")
        if not isinstance(metrics, dict):
            return Run(folder, config, None, "failed", "metrics.json is damaged (not a mapping of metrics)")
        if not any(isinstance(v, (int, float)) and not isinstance(v, bool) for v in metrics.values()):
            return Run(folder, config, None, "failed", "metrics.json is damaged (it holds no number)")
    # failure.json is removed when a run finishes: beside a metrics.json it says the run's last part
    # (trained further, or evaluated again) stopped, so that metrics.json is not the run's result.
    if failure.is_file():
        try:
            info = _load(failure, "json")
        except ValueError:
            info = None
        info = info if isinstance(info, dict) else {"error": f"{FAILURE_FILE} is damaged"}
        status = info.get("status", "failed")
        if status not in ("failed", "diverged"):  # a status no run writes: the file is damaged
            return Run(folder, config, None, "failed", f"{FAILURE_FILE} is damaged (status {status!r})")
        error = info.get("error")
        # (message_of: a failure.json written before its error was kept without a worker's traceback)
        return Run(folder, config, None, status, message_of(str(error)) if error is not None else None)
    if metrics is None:
        return Run(
            folder,
            config,
            None,
            "failed",
            "no metrics.json (the run is still training, or stopped before it finished)",
        )
    if _diverged(metrics):
        return Run(folder, config, metrics, "diverged", "a non-finite metric")
    return Run(folder, config, metrics, "finished")


def shortened_settings(metrics) -> list[str]:
    """``trainer.limit_train_batches=2``, ``trainer.max_time={hours:1}``: each trainer setting that
    cut a run short (metrics.json's shortened_by), written as the command line gives it; empty for
    a run of whole epochs and splits (or without metrics)."""
    by = metrics.get("shortened_by") if isinstance(metrics, dict) else None
    if not isinstance(by, dict):
        return []

    def said(value) -> str:
        if isinstance(value, dict):  # (max_time as a mapping: Hydra's form of one)
            return "{" + ",".join(f"{k}:{v}" for k, v in value.items()) + "}"
        return str(value)

    return [f"{k if '.' in k else 'trainer.' + k}={said(v)}" for k, v in by.items()]


def blew_up_said(metrics) -> str | None:
    """What a finished run's metrics.json says of a loss that blew up and stayed so to its end
    (loss_blew_up ended): its last losses beside a uniform guess's; None otherwise."""
    record = metrics.get("loss_blew_up") if isinstance(metrics, dict) else None
    if not isinstance(record, dict) or not record.get("ended"):
        return None
    said = [
        f"{what} {record[key]:.3g}"
        for key, what in (
            ("last_train_loss", "training loss (last epoch)"),
            ("selected_val_loss", "validation loss"),
        )
        if isinstance(record.get(key), (int, float)) and not isinstance(record.get(key), bool)
    ]
    guess = record.get("uniform_guess_loss")
    if isinstance(guess, (int, float)) and not isinstance(guess, bool):
        said.append(f"a uniform guess {guess:.3g}")
    return ", ".join(said) or "its losses unrecorded"


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
