"""One paper table filled from run folders: per row and column, the paper's number beside ours
(mean, standard deviation and count over seeds) and their difference, with every expected run that
is missing, failed or diverged counted, and the settings that differ from the experiment file."""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from omegaconf import DictConfig, OmegaConf

from ..config import BATCH_COUNT_SETTINGS, as_lightning_count
from .paper import PaperRow, PaperTable, same_value, setting
from .runs import ReportError, Run

#: Settings that do not change what is trained (folders, workers, devices, logging, what is
#: printed): runs of one cell may differ in them.
IGNORED = (
    "seed",
    "paths",
    "ckpt_path",
    "task_name",
    "tags",
    "logger",
    "hydra",
    "dataset.root",
    "dataset.num_workers",
    "dataset.eval_batch_size",
    "print_config",
    "trainer.devices",
    "trainer.enable_progress_bar",
    "trainer.log_every_n_steps",
    "generator.edits_dir",
    "generator.batch_size",
    "generator.compile",
    "generator.channels_last",
    "fractals.dir",
    "fractals.cache_dir",
    "model.weights",
    "callbacks",
)


def _flatten(cfg: DictConfig) -> dict[str, Any]:
    out: dict[str, Any] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{prefix}.{k}" if prefix else str(k))
        else:
            out[prefix] = node

    container = OmegaConf.to_container(cfg, resolve=False)
    walk({k: v for k, v in container.items() if k != "paper"}, "")
    return out


def _ignored(key: str) -> bool:
    return any(key == k or key.startswith(k + ".") for k in IGNORED)


@dataclass
class Cell:
    row: PaperRow
    column: str
    expected_seeds: list[int] = field(default_factory=list)
    runs: list[Run] = field(default_factory=list)

    @property
    def finished(self) -> list[Run]:
        return [r for r in self.runs if r.finished]

    @property
    def failed(self) -> list[Run]:
        return [r for r in self.runs if r.status == "failed"]

    @property
    def diverged(self) -> list[Run]:
        return [r for r in self.runs if r.status == "diverged"]

    @property
    def missing_seeds(self) -> list[int]:
        have = {int(setting(r.config, "seed")) for r in self.runs}
        return [s for s in self.expected_seeds if s not in have]

    def values(self, metric_key: str) -> list[float]:
        out = []
        for run in self.finished:
            v = run.metrics.get(metric_key)
            if isinstance(v, (int, float)) and math.isfinite(v):
                out.append(float(v))
        return out

    def stats(self, metric_key: str) -> tuple[float | None, float | None, int]:
        """Mean, sample standard deviation (None below two values) and count over seeds."""
        vals = self.values(metric_key)
        if not vals:
            return None, None, 0
        std = statistics.stdev(vals) if len(vals) > 1 else None
        return statistics.fmean(vals), std, len(vals)

    def mean_of(self, key: str) -> float | None:
        vals = [float(r.metrics[key]) for r in self.finished if isinstance(r.metrics.get(key), (int, float))]
        return statistics.fmean(vals) if vals else None


@dataclass
class FilledTable:
    table: PaperTable
    cells: dict[tuple[str, str], Cell]
    unmatched: list[Run]
    deviations: list[str]
    expected_runs: int

    def counts(self) -> dict[str, int]:
        cells = self.cells.values()
        return {
            "expected": self.expected_runs,
            "finished": sum(len(c.finished) for c in cells),
            "failed": sum(len(c.failed) for c in cells),
            "diverged": sum(len(c.diverged) for c in cells),
            "missing": sum(len(c.missing_seeds) for c in cells),
            "outside": len(self.unmatched),
        }

    def summary(self) -> str:
        c = self.counts()
        line = (
            f"{c['expected']} run{'' if c['expected'] == 1 else 's'} expected: {c['finished']} finished, "
            f"{c['failed']} failed, {c['diverged']} diverged, {c['missing']} missing"
        )
        if c["outside"]:
            names = ", ".join(str(run.folder) for run in self.unmatched[:3])
            more = f" and {c['outside'] - 3} more" if c["outside"] > 3 else ""
            line += (
                f"; {c['outside']} run folder{'' if c['outside'] == 1 else 's'} given belong to no cell of this "
                f"table and are not used ({names}{more})"
            )
        return line


def fill(
    table: PaperTable,
    runs: list[Run],
    expected: dict[tuple[str, str], list[int]],
    references: dict[tuple[str, str], DictConfig] | None = None,
    experiment: str | None = None,
) -> FilledTable:
    """Place each run in its (row, column) cell. ``expected`` holds the seeds the sweep runs per
    cell (a cell the sweep does not run expects none); ``references`` the experiment file's own
    configuration per cell (for the settings line). A run made by another experiment file
    (``experiment_name``) is not a run of this table, even where its settings match a row."""
    cells: dict[tuple[str, str], Cell] = {}
    for row in table.rows:
        for column in table.columns:
            if not row.reported_only:
                cells[(row.label, column)] = Cell(row, column, list(expected.get((row.label, column), [])))
    unmatched = []
    for run in runs:
        made_by = setting(run.config, "experiment_name")
        if experiment is not None and made_by is not None and made_by != experiment:
            unmatched.append(run)
            continue
        row = table.row_of(run.config)
        column = setting(run.config, "dataset")
        if row is None or (row.label, column) not in cells:
            unmatched.append(run)
            continue
        cells[(row.label, column)].runs.append(run)
    for cell in cells.values():
        _check_cell(table, cell)
    deviations = _deviations(table, cells, references or {})
    expected = sum(len(c.expected_seeds) for c in cells.values())
    return FilledTable(table, cells, unmatched, deviations, expected)


def _check_cell(table: PaperTable, cell: Cell) -> None:
    """One run per seed, and every run of the cell trained with the same settings but its seed."""
    by_seed: dict[int, list[Run]] = defaultdict(list)
    for run in cell.runs:
        by_seed[int(setting(run.config, "seed"))].append(run)
    for seed, group in by_seed.items():
        if len(group) > 1:
            raise ReportError(
                f"{table.name}, row '{cell.row.label}', {cell.column}: {len(group)} runs of seed {seed} "
                f"({', '.join(str(r.folder) for r in group)}); give the report only one of them (runs=...)"
            )
    if len(cell.runs) < 2:
        return
    first = cell.runs[0]
    base = {k: v for k, v in _flatten(first.config).items() if not _ignored(k)}
    for other in cell.runs[1:]:
        flat = {k: v for k, v in _flatten(other.config).items() if not _ignored(k)}
        differ = sorted(k for k in base.keys() | flat.keys() if not same_value(base.get(k), flat.get(k)))
        if differ:
            shown = ", ".join(f"{k}={_shown(k, base.get(k))} vs {_shown(k, flat.get(k))}" for k in differ[:6])
            raise ReportError(
                f"{table.name}, row '{cell.row.label}', {cell.column}: runs {first.folder} and {other.folder} "
                f"were trained with different settings ({shown}{', ...' if len(differ) > 6 else ''}); a cell "
                "averages seeds of one setting: report them separately (runs=...)"
            )


def _shown(name: str, value: Any) -> str:
    """A setting's value as the run used it: a whole number of batches (``2.0`` in the float-typed
    ``trainer.limit_train_batches``) as the count it is, not a fraction of the split."""
    if name.startswith("trainer.") and name.split(".", 1)[1] in BATCH_COUNT_SETTINGS:
        value = as_lightning_count(value)
    return repr(value)


def _deviations(table: PaperTable, cells: dict, references: dict[tuple[str, str], DictConfig]) -> list[str]:
    """Lines naming each setting whose value in the runs differs from the experiment file: every
    setting both have (a setting a run predates is left out), but where things are, how many
    workers and devices, logging and the seed (``IGNORED``)."""
    found: dict[str, dict[str, set]] = defaultdict(lambda: {"used": set(), "file": set()})
    for key, cell in cells.items():
        reference = references.get(key)
        if reference is None:
            continue
        wanted_keys = {k for k in _flatten(reference) if not _ignored(k)}
        for run in cell.runs:
            names = sorted(wanted_keys & {k for k in _flatten(run.config) if not _ignored(k)})
            for name in names:
                used, wanted = setting(run.config, name), setting(reference, name)
                if not same_value(used, wanted):
                    found[name]["used"].add(_shown(name, used))
                    found[name]["file"].add(_shown(name, wanted))
    return [
        f"{name}: {', '.join(sorted(v['used']))} in the runs (experiment file: {', '.join(sorted(v['file']))})"
        for name, v in sorted(found.items())
    ]
