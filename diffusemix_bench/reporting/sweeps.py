"""A sweep folder's ``summary.csv``: one row per job folder with its status, the settings the sweep
varies and its numbers."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import yaml
from omegaconf import OmegaConf

from ..files import placed, run_launched_from, write_atomic
from .paper import setting, used_setting
from .runs import Run, blew_up_said, find_runs, shortened_settings
from .table import WHERE_FROM

#: Columns every summary has (the swept settings' columns come after ``job``; attacks' errors,
#: ``top5_k``, ``robustness_on`` and ``shortened_by`` only where some job has one).
FIELDS = ("job", "status", "aug", "dataset", "seed", "val_top1", "test_top1", "test_top5",
          "optimizer_steps", "wall_time_s", "reason")  # fmt: skip
METRIC_FIELDS = FIELDS[5:10]
#: Overrides that change how a job runs, not what it trains (how it resumes, where its files are,
#: its workers and devices, what it shows), never a column: a later launch may give them anew.
NOT_SETTINGS = ("ckpt_path", "print_config", "tags")
NOT_SETTINGS_UNDER = ("paths.", "logger.", "trainer.devices", "trainer.num_nodes", "trainer.accelerator",
                      "trainer.enable_progress_bar", "trainer.enable_model_summary", "trainer.log_every_n_steps",
                      "dataset.num_workers", "dataset.eval_batch_size", "callbacks.progress_bar", "logger")  # fmt: skip


def job_overrides(folder: Path) -> dict[str, str]:
    """The job's command-line and sweep overrides (Hydra's ``.hydra/overrides.yaml``), key to value
    as written; ``+``/``++`` prefixes dropped, deletions (``~key``) and Hydra's own keys left out."""
    path = folder / ".hydra" / "overrides.yaml"
    try:
        lines = yaml.safe_load(path.read_text()) if path.is_file() else []
    except yaml.YAMLError:
        return {}
    return given_settings(lines if isinstance(lines, list) else [])


def given_settings(lines: list) -> dict[str, str]:
    """Overrides (``key=value`` lines) as the settings they give, key to value as written;
    ``+``/``++`` prefixes dropped, deletions, Hydra's own keys and those that change how a job runs,
    not what it trains (``NOT_SETTINGS``), left out."""
    out = {}
    for line in lines:
        key, sep, value = str(line).partition("=")
        key = key.lstrip("+")
        if not sep or key.startswith(("~", "hydra.", "hydra/", *NOT_SETTINGS_UNDER)) or key in NOT_SETTINGS:
            continue
        out[key] = value
    return out


def swept_keys(overrides: list[dict[str, str]]) -> list[str]:
    """The keys whose values differ between the jobs (a key some jobs lack counts as differing), in
    the order they first appear; those with a column of their own (aug, dataset, seed) left out."""
    keys: list[str] = []
    for job in overrides:
        keys += [k for k in job if k not in keys]
    return [
        k for k in keys
        if k not in FIELDS and len({job.get(k) for job in overrides}) > 1
    ]  # fmt: skip


def job_order(name: str) -> tuple[int, str]:
    number, _, _ = name.partition("_")
    return (int(number) if number.isdigit() else 1 << 62, name)


def summary_rows(sweep: Path) -> tuple[list[str], list[dict]]:
    """The columns and rows of ``sweep``'s summary, one row per job folder (in the order of their
    job numbers: ``2_...`` before ``10_...``, then by name)."""
    runs = sorted(find_runs([sweep]), key=lambda r: job_order(r.folder.name))
    overrides = [job_overrides(run.folder) for run in runs]
    # (a folder compared as the place it names: data and /home/me/data from /home/me are one)
    places = [
        {k: str(placed(v, run_launched_from(run.folder))) if k in WHERE_FROM else v for k, v in given.items()}
        for run, given in zip(runs, overrides)
    ]
    swept = swept_keys(places)
    rows = [_row(run, given, swept) for run, given in zip(runs, overrides)]
    fields = [FIELDS[0], *swept, *FIELDS[1:]]
    # A dataset of fewer than 5 classes measures top-k with k its number of classes (metrics.json's
    # top5_k): said beside test_top5, in a column of its own only where some job's k is not 5.
    top_k = [(run.metrics or {}).get("top5_k") for run in runs]
    if any(k is not None and k != 5 for k in top_k):
        fields.insert(fields.index("test_top5") + 1, "top5_k")
        for row, k in zip(rows, top_k):
            row["top5_k"] = k
    # Attacks' errors (eval.fgsm=true, evaluate.py eval.pgd=true), each in a column after the
    # top-k numbers where some job has one (a column no job fills read as an attack left unmeasured).
    attacks = sorted(
        {
            k
            for run in runs
            for k in (run.metrics or {})
            if k.endswith("_error") and not k.startswith("robust_")
        }
        - set(FIELDS)
    )
    at = fields.index("optimizer_steps")
    fields[at:at] = attacks
    for row, run in zip(rows, runs):
        row.update({k: (run.metrics or {}).get(k) for k in attacks})
    # What the attacks' numbers were measured on, where some job has one: the split, the images,
    # a limit, the weights and each attack's settings (a short check reads apart from a whole split).
    said = [robustness_said(run.metrics or {}) for run in runs]
    if any(said):
        fields.insert(at + len(attacks), "robustness_on")
        for row, text in zip(rows, said):
            row["robustness_on"] = text
    # What cut a job short of its epochs or splits (debug presets, trainer.limit_*_batches,
    # max_steps, max_time, overfit_batches, fast_dev_run: metrics.json's shortened_by), where some
    # job was: its numbers are not the protocol's.
    shortened = [shortened_said(run.metrics or {}) for run in runs]
    if any(shortened):
        fields.insert(fields.index("reason"), "shortened_by")
        for row, text in zip(rows, shortened):
            row["shortened_by"] = text
    return fields, rows


def shortened_said(metrics: dict) -> str | None:
    """``trainer.limit_train_batches=2; trainer.max_time={hours:1}``: the trainer settings that cut a
    job short (metrics.json's shortened_by, written as the command line gives them), None for a
    job of whole epochs and splits (or without metrics)."""
    return "; ".join(shortened_settings(metrics)) or None


def robustness_said(metrics: dict) -> str | None:
    """``test split, 10000 images; fgsm eps_255=8.0``: what a job's attack numbers were measured
    on, as metrics.json records it; None without one."""
    attacks = sorted(
        key.removesuffix("_error")
        for key, value in metrics.items()
        if key.endswith("_error") and not key.startswith("robust_") and isinstance(value, (int, float))
    )
    if not attacks:
        return None
    on = [f"{metrics.get('robust_split') or 'unrecorded'} split"]
    if metrics.get("robust_images") is not None:
        on.append(f"{metrics['robust_images']} images")
    if metrics.get("robust_limit_batches") is not None:
        on.append(f"first {metrics['robust_limit_batches']} batches (eval.limit_batches)")
    attacked = metrics.get("robust_checkpoint")
    if attacked and Path(str(attacked)).name != Path(str(metrics.get("best_checkpoint") or "last.ckpt")).name:
        on.append(f"checkpoint {Path(str(attacked)).name}")
    if metrics.get("robust_data_dir"):
        on.append(f"data {metrics['robust_data_dir']}")
    for attack in attacks:
        settings = metrics.get(f"{attack}_settings")
        shown = (
            " ".join(f"{k}={v}" for k, v in settings.items())
            if isinstance(settings, dict)
            else "settings unrecorded"
        )
        on.append(f"{attack} {shown}")
    return "; ".join([", ".join(on[: len(on) - len(attacks)]), *on[len(on) - len(attacks) :]])


def _row(run: Run, given: dict[str, str], swept: list[str]) -> dict:
    m = run.metrics or {}
    return {
        "job": run.folder.name,
        **{k: _swept_value(run, given, k) for k in swept},
        "status": run.status,
        "aug": setting(run.config, "aug"),
        "dataset": setting(run.config, "dataset"),
        "seed": setting(run.config, "seed"),
        **{k: m.get(k) for k in METRIC_FIELDS},
        # (a finished run whose loss blew up: its numbers are a blown-up model's)
        "reason": run.reason or (f"loss blew up: {said}" if (said := blew_up_said(m)) else None),
    }


def _swept_value(run: Run, given: dict[str, str], key: str):
    """The run's value of a swept ``key``: what its saved settings hold (the settings it trained
    with; Hydra rewrites a job's overrides.yaml even when the job is then refused), else (a config
    group's choice, such as ``optim=adamw``) the override as given."""
    value = used_setting(run.config, key)
    if value is None and _has(run.config, key):
        return "null"  # (set, to nothing: the command line's word; an empty cell is a value not known)
    if value is None or isinstance(value, dict):
        return given.get(key)
    return value


def _has(cfg, key: str) -> bool:
    """Whether the run's saved settings hold ``key`` (null or not)."""
    missing = object()
    try:
        return OmegaConf.select(cfg, key, default=missing, throw_on_resolution_failure=False) is not missing
    except Exception:  # (a config that is not one: no setting)
        return False


def write_summary(sweep: Path) -> list[dict]:
    """Write ``sweep/summary.csv`` (whole, never half written) and return its rows."""
    fields, rows = summary_rows(sweep)
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(sweep / "summary.csv", text.getvalue())
    return rows
