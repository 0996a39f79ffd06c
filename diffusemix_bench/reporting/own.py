"""A table of one's own runs, with no experiment file and no paper numbers (``report.py
runs=<folder>``): one row per combination of the settings the runs were given that differ between
them (the seed aside), one column per dataset, each cell the mean +- std over seeds with the runs
that gave it no number counted. The jobs a sweep folder's launches ran (Hydra's ``multirun.yaml``,
and the ``multirun.<time>.yaml`` kept of earlier launches) are expected: one that left no run
folder is counted missing."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import yaml

from .paper import PaperRow, PaperTable, setting
from .runs import Run
from .sweeps import given_settings, job_order, job_overrides
from .table import compared_anywhere

#: The name of an own table (in its report's title and plots).
NAME = "runs"
#: metrics.json's numbers an own table shows, in this order, where some finished run has one;
#: every attack's error (``<attack>_error``) follows them.
METRICS = ("test_top1", "val_top1", "test_top5")
#: What the recipe line says of the finished runs (one value once; else each with its rows).
RECIPE = (
    ("model", "model"),
    ("epochs", "trainer.max_epochs"),
    ("image size", "dataset.image_size"),
    ("batch", "dataset.batch_size"),
    ("optimiser", "optim.name"),
    ("learning rate", "optim.lr"),
    ("schedule", "sched.name"),
    ("loss", "loss.name"),
)


@dataclass
class Launch:
    """Hydra's record of one ``train.py --multirun`` launch: its command line's overrides, its
    sweeper's params (an experiment file's sweep), and the seed and dataset its jobs take where they
    give none."""

    record: Path
    task: list[str]
    params: dict
    seed: object
    dataset: object


def launches(roots: list[Path]) -> list[Launch]:
    """The training sweeps launched in ``roots``, as their records hold them; a record that is not
    Hydra's, or a sweep of generate.py or figure4.py, is passed over (its runs are still found)."""
    out = []
    for root in roots:
        for record in sorted(Path(root).expanduser().glob("multirun*.yaml")):
            try:
                saved = yaml.safe_load(record.read_text()) or {}
                task = [str(o) for o in saved["hydra"]["overrides"]["task"]]
                params = dict(saved["hydra"]["sweeper"].get("params") or {})
            except (OSError, UnicodeDecodeError, yaml.YAMLError, KeyError, TypeError, AttributeError):
                continue
            if saved.get("task_name", "train") != "train":
                continue
            dataset = saved.get("dataset")
            out.append(
                Launch(
                    record,
                    task,
                    params,
                    saved.get("seed"),
                    dataset.get("name") if isinstance(dataset, dict) else None,
                )
            )
    return out


def _row_key(key: str) -> bool:
    """Whether a setting given to runs tells rows apart: any compared setting, and where the data
    is (two image folders are two datasets of one name)."""
    return key not in ("seed", "dataset") and (compared_anywhere(key) or key == "dataset.root")


def own_table(
    runs: list[Run], roots: list[Path], jobs: list[dict[str, str]]
) -> tuple[PaperTable, Callable[[Run], PaperRow | None], dict[tuple[str, str], list[int]], list[str]]:
    """The table of ``runs`` (found under ``roots``), with ``jobs`` the settings of each job their
    launches ran (``seed`` and ``dataset`` given): the table, each run's row, the seeds expected per
    cell (the jobs' and every run's found), and the settings every run and job was given alike."""
    runs = sorted(runs, key=lambda r: (str(r.folder.parent), job_order(r.folder.name)))
    found = [(job_overrides(r.folder), r) for r in runs]
    every = jobs + [given for given, _ in found]
    keys: list[str] = []
    for given in every:
        keys += [k for k in given if k not in keys and _row_key(k)]
    differ = [k for k in keys if len({given.get(k) for given in every}) > 1]
    shared = [f"{k}={every[0][k]}" for k in keys if k not in differ]
    rows: dict[str, PaperRow] = {}

    def row_of(given: dict[str, str]) -> PaperRow:
        chosen = {k: given[k] for k in differ if k in given}
        label = " ".join(f"{k}={v}" for k, v in chosen.items()) or "every run"
        return rows.setdefault(label, PaperRow(label, chosen, {}))

    columns: list[str] = []
    expected: dict[tuple[str, str], list[int]] = {}

    def expect(row: PaperRow, column, seed) -> None:
        if not isinstance(column, str):
            return
        if column not in columns:
            columns.append(column)
        with suppress(TypeError, ValueError):  # (a seed that is not a number: train.py refuses it)
            expected.setdefault((row.label, column), []).append(int(seed))

    for given in jobs:
        expect(row_of(given), given.get("dataset"), given.get("seed"))
    placed: dict[int, PaperRow] = {}
    for given, run in found:
        placed[id(run)] = row = row_of(given)
        expect(row, setting(run.config, "dataset"), setting(run.config, "seed"))
    finished = [r for r in runs if r.finished and isinstance(r.metrics, dict)]
    attacks = sorted(
        {
            k
            for r in finished
            for k, v in r.metrics.items()
            if k.endswith("_error") and not k.startswith("robust_") and isinstance(v, (int, float))
        }
    )
    shown = [k for k in METRICS if any(r.metrics.get(k) is not None for r in finished)] + attacks
    table = PaperTable(
        name=NAME,
        caption=(
            f"The runs under {', '.join(str(r) for r in roots)}: one row per combination of the settings they "
            "were given that differ between them (the seed aside), one column per dataset."
        ),
        units="%",
        columns=columns,
        metrics={k: k for k in shown or ["test_top1"]},
        rows=list(rows.values()),
        own=True,
    )
    return table, lambda run: placed.get(id(run)), expected, shared


def jobs_of(launch: Launch, jobs: list[list[str]]) -> list[dict[str, str]]:
    """Each job of ``launch`` (its overrides, as its sweep expands them) as the settings it was
    given, its seed and dataset filled in from the launch's configuration where it gives none."""
    out = []
    for job in jobs:
        given = given_settings(job)
        if launch.seed is not None:
            given.setdefault("seed", str(launch.seed))
        if launch.dataset is not None:
            given.setdefault("dataset", str(launch.dataset))
        out.append(given)
    return out


def top_k(filled) -> str | None:
    """A line saying where test_top5 is top-k with k under 5 (a dataset of fewer than 5 classes:
    metrics.json's ``top5_k``), per column; None where every run's is top-5."""
    if "test_top5" not in filled.table.metrics.values():
        return None
    found: dict[str, set] = {}
    for (_, column), cell in filled.cells.items():
        for run in cell.finished:
            k = (run.metrics or {}).get("top5_k")
            if k is not None and k != 5:
                found.setdefault(column, set()).add(k)
    if not found:
        return None
    said = "; ".join(f"{column}: top-{', '.join(map(str, sorted(ks)))}" for column, ks in found.items())
    return f"test_top5 is top-k with k the number of classes where there are fewer than 5 ({said})"


def recipe(filled) -> str | None:
    """What the finished runs trained with (model, epochs, image size, ...): a value they share said
    once, else each value with the rows that used it. None without a finished run."""
    finished = [(cell.row.label, r) for cell in filled.cells.values() for r in cell.finished]
    if not finished:
        return None
    parts = []
    for name, key in RECIPE:
        used: dict[str, list[str]] = {}
        for label, run in finished:
            rows = used.setdefault(str(setting(run.config, key)), [])
            if label not in rows:
                rows.append(label)
        if len(used) == 1:
            parts.append(f"{name} {next(iter(used))}")
        else:
            parts.append(
                f"{name} " + ", ".join(f"{value} in {'; '.join(rows)}" for value, rows in used.items())
            )
    return "Recipe of the finished runs: " + ", ".join(parts)
