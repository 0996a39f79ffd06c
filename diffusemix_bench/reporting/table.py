"""One paper table filled from run folders: per row and column, the paper's number beside ours
(mean, standard deviation and count over seeds) and their difference, with every expected run that
is missing, failed or diverged counted, and the settings that differ from the experiment file."""

from __future__ import annotations

import math
import re
import statistics
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

from omegaconf import DictConfig, OmegaConf

from ..commands import quoted_arg
from ..config import BATCH_COUNT_SETTINGS, as_lightning_count
from ..data.order import LIMITED_EVAL_ORDER, SPLIT_ORDER
from ..files import (
    EARLIER_ROBUSTNESS,
    drawn_with,
    hydra_runtime,
    placed,
    read_attempts,
    read_set_aside,
    run_launched_from,
)
from .paper import PaperRow, PaperTable, same_value, setting, used_setting
from .runs import ReportError, Run, blew_up_said, shortened_settings

#: Settings that do not change what is trained (folders, workers, devices, logging, what is
#: printed, what is measured after training): runs of one cell may differ in them. ``eval.*`` says
#: which attacks train.py ran after training, but evaluate.py adds them later without changing
#: config_resolved.yaml: the robustness a run's metrics.json records is checked instead (``measured``).
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
    "trainer.accelerator",
    "trainer.devices",
    "trainer.enable_model_summary",
    "trainer.enable_progress_bar",
    "trainer.log_every_n_steps",
    "trainer.num_sanity_val_steps",
    "generator.edits_dir",
    "generator.revision",  # the store records the commit itself (runtime.json) and refuses another
    "generator.batch_size",
    "generator.compile",
    "generator.channels_last",
    "fractals.dir",
    "fractals.cache_dir",
    "model.weights",
    # How often checkpoints are written and what is shown; callbacks.monitor, mode and
    # early_stopping_patience choose the checkpoint tested and when training stops: compared.
    "callbacks.save_top_k",
    "callbacks.save_last",
    "callbacks.checkpoint_every_n_steps",
    "callbacks.lr_monitor",
    "callbacks.progress_bar",
    "eval",
)

#: Of those, the settings that say where what a run trained from is (its images, the weights it
#: started from, its edits, its fractals): a setting given to report.py chooses runs by them, and
#: a table of one's own runs tells rows apart by them (two image folders are two datasets of one name).
WHERE_FROM = ("dataset.root", "model.weights", "generator.edits_dir", "fractals.dir")


def same_place(a: Any, b: Any) -> bool:
    """Two values of a ``WHERE_FROM`` setting name one file or folder (as written, or resolved
    from here: ``data/x`` and ``./data/x``)."""
    if a is None or b is None:
        return a is b
    if str(a) == str(b):
        return True
    try:
        return Path(str(a)).expanduser().resolve() == Path(str(b)).expanduser().resolve()
    except (OSError, RuntimeError, ValueError):
        return False


#: metrics.json's record of a robustness measurement, and the setting of evaluate.py that chooses it.
MEASUREMENT_SETTINGS = {
    "eps_255": "eval.eps",
    "step_size_255": "eval.pgd_step_size",
    "steps": "eval.pgd_steps",
    "random_start": "eval.pgd_random_start",
    "split": "eval.split",
    "limit_batches": "eval.limit_batches",
}


def flat_settings(cfg: DictConfig) -> dict[str, Any]:
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


#: What a run's record lacks (a setting it has no such key for, a choice it did not record).
MISSING = object()


def _hydra_record(run: Run) -> dict:
    """The run's ``.hydra/hydra.yaml`` ``hydra.runtime`` (its choices, the folder it was launched
    from); empty without that record."""
    return hydra_runtime(run.folder)


def launched_from(run: Run) -> str | None:
    """The folder a run was launched from (Hydra's ``hydra.runtime.cwd``): the folder a relative
    path among its settings is relative to. None without that record."""
    return run_launched_from(run.folder)


def where_from(run: Run, key: str) -> Any:
    """A run's value of ``WHERE_FROM`` setting ``key`` as the place it names (``MISSING`` where it
    has none)."""
    value = OmegaConf.select(run.config, key, default=MISSING, throw_on_resolution_failure=False)
    return value if value is MISSING else placed(value, launched_from(run))


def group_choice(run: Run, group: str):
    """The option of config group ``group`` a run was composed with (``.hydra/hydra.yaml``'s
    ``hydra.runtime.choices``; ``None`` for a group left out), or ``MISSING`` without that record."""
    choices = _hydra_record(run).get("choices", MISSING)
    return choices.get(group, MISSING) if isinstance(choices, dict) else MISSING


def compared_anywhere(key: str) -> bool:
    """Whether runs' setting ``key`` is compared between them at all (not seed, paths, ... ``IGNORED``)."""
    return not _ignored(key)


def reads_edits(aug, components) -> bool:
    """Whether method ``aug`` with ``aug.components`` reads edits: DiffuseMix, but not its arms
    without edits (I or I + F: ``originals...``)."""
    return aug == "diffusemix" and not str(components or "").startswith("originals")


def reads_edits_of(config) -> bool:
    """A DiffuseMix run whose arm reads edits (not I or I + F)."""
    return reads_edits(setting(config, "aug"), setting(config, "aug.components"))


def _compared(key: str, config) -> bool:
    """Whether a run's setting ``key`` is compared with others: not one that changes nothing
    trained (``IGNORED``), nor the generator's settings in a run that reads no edits."""
    return not _ignored(key) and not (key.startswith("generator.") and not reads_edits_of(config))


def _attack_of(metric_key: str) -> str | None:
    """The attack whose error ``metric_key`` is (``fgsm_error``: fgsm), None for any other metric."""
    if not metric_key.endswith("_error") or metric_key.startswith("robust_"):
        return None
    from ..robustness import ATTACKS  # only for a table of errors (imports torch)

    name = metric_key.removesuffix("_error")
    return name if name in ATTACKS else None


def is_robustness(metric_key: str) -> bool:
    """A number an attack's evaluation writes (``fgsm_error``, ``pgd_error``, ``robust_clean_error``):
    what it was measured with is in metrics.json, not necessarily in config_resolved.yaml."""
    return metric_key.startswith("robust_") or _attack_of(metric_key) is not None


def measured(metrics: dict, metric_key: str) -> dict[str, Any] | None:
    """What produced ``metrics[metric_key]`` as metrics.json records it: the attack's settings
    (``<attack>_settings``) and the split attacked (``robust_split``); None for a metric that is no
    robustness number. A setting metrics.json does not record is None."""
    if not is_robustness(metric_key):
        return None
    out: dict[str, Any] = {}
    attack = _attack_of(metric_key)
    if attack is not None:
        settings = metrics.get(f"{attack}_settings")
        out.update(settings if isinstance(settings, dict) else {"settings": None})
    out["split"] = metrics.get("robust_split")
    out["limit_batches"] = metrics.get("robust_limit_batches")  # None: every batch
    if out["limit_batches"] is not None:  # which images those batches held
        out["limit_order"] = metrics.get("robust_limit_order", SPLIT_ORDER)
    # The weights attacked: the checkpoint training selected (the one its test numbers are of)
    # unless evaluate.py was given another (ckpt=<run>/checkpoints/last.ckpt), named then.
    # (A run without a checkpoint selected on validation reports last.ckpt's numbers, and
    # evaluate.py attacks last.ckpt for it.)
    # Another copy of the data than the run's own (evaluate.py data_dir=): named, as it is other images.
    if metrics.get("robust_data_dir"):
        out["data_dir"] = str(metrics["robust_data_dir"])
    attacked, selected = metrics.get("robust_checkpoint"), metrics.get("best_checkpoint") or "last.ckpt"
    if attacked and PurePath(str(attacked)).name != PurePath(str(selected)).name:
        out["checkpoint"] = PurePath(str(attacked)).name
    return out


def wanted(reference: DictConfig, metric_key: str) -> dict[str, Any] | None:
    """What the experiment file's ``eval:`` settings would measure ``metric_key`` with, in the form
    :func:`measured` reads from metrics.json."""
    if not is_robustness(metric_key):
        return None
    from ..robustness import attack_specs

    eval_cfg = OmegaConf.merge(reference.get("eval") or {}, {"fgsm": True, "pgd": True})
    out: dict[str, Any] = {}
    attack = _attack_of(metric_key)
    if attack is not None:
        out.update(next(spec for spec in attack_specs(eval_cfg) if spec.name == attack).settings())
    out["split"] = eval_cfg.get("split", "test")
    out["limit_batches"] = eval_cfg.get("limit_batches")
    if out["limit_batches"] is not None:
        out["limit_order"] = LIMITED_EVAL_ORDER
    return out


def measurement_text(measurement: dict[str, Any]) -> str:
    """``eps_255=8.0 on the test split``: a measurement as the report's lines name it."""
    parts = [
        "settings not recorded" if k == "settings" else f"{k}={v}"
        for k, v in measurement.items()
        if k not in ("split", "data_dir")
        and not (k == "limit_batches" and v is None)
        and not (k == "limit_order" and v == LIMITED_EVAL_ORDER)
    ]
    split = measurement.get("split")
    if not parts:  # robust_clean_error: the clean images an attack's evaluation counted
        parts.append("no attack")
    parts.append(f"on the {split} split" if split else "on a split not recorded")
    if measurement.get("data_dir"):  # (another copy of the data than the run's own)
        parts.append(f"of the data in {measurement['data_dir']}")
    return " ".join(parts)


def _measurement_differs(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    return sorted(k for k in a.keys() | b.keys() if not same_value(a.get(k), b.get(k)))


def evaluate_command(
    metric_key: str, measurement: dict[str, Any], folder: Any = "<run folder>", more: tuple[str, ...] = ()
) -> str:
    """The evaluate.py command that measures ``metric_key`` of the run in ``folder`` again with
    ``measurement`` (and the settings ``more``: data_dir=, seed=, ...)."""
    from ..commands import quoted_arg, script_command

    attack = _attack_of(metric_key) or "fgsm"  # robust_clean_error comes with any attack
    args = [quoted_arg("ckpt", str(folder)), f"eval.{attack}=true"]
    # (eval.limit_batches is null unless given: every batch.)
    args += [
        f"{MEASUREMENT_SETTINGS[k]}={v}"
        for k, v in measurement.items()
        if k in MEASUREMENT_SETTINGS and v is not None
    ]
    return f"{script_command('evaluate.py')} {' '.join([*args, *more])}"


def _value(run: Run, metric_key: str) -> float | None:
    v = run.metrics.get(metric_key) if run.metrics else None
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def training_seconds(run: Run) -> tuple[float | None, bool]:
    """The run's training time and whether it is that: ``fit_seconds`` (the fits alone, summed over
    resumed parts), else ``wall_time_s`` (start-up, evaluation and attacks included; False)."""
    fit = _value(run, "fit_seconds")
    return (fit, True) if fit is not None else (_value(run, "wall_time_s"), False)


@dataclass
class Cell:
    row: PaperRow
    column: str
    expected_seeds: list[int] = field(default_factory=list)
    runs: list[Run] = field(default_factory=list)
    # Runs of a seed left out for another run of it that went further (a failed run for a
    # finished one), each with the run that replaces it.
    replaced: list[tuple[Run, Run]] = field(default_factory=list)

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

    @property
    def expected(self) -> list[Run]:
        """Runs of the seeds the sweep runs in this cell."""
        return [r for r in self.runs if int(setting(r.config, "seed")) in self.expected_seeds]

    @property
    def unexpected(self) -> list[Run]:
        """Runs of seeds the sweep does not run in this cell (given in runs=; used all the same)."""
        return [r for r in self.runs if int(setting(r.config, "seed")) not in self.expected_seeds]

    def values(self, metric_key: str) -> list[float]:
        return [v for v in (_value(r, metric_key) for r in self.finished) if v is not None]

    def without(self, metric_key: str) -> list[Run]:
        """Finished runs with no (finite) value for ``metric_key``: the cell says how many."""
        return [r for r in self.finished if _value(r, metric_key) is None]

    def measurement(self, metric_key: str) -> dict[str, Any] | None:
        """What the cell's number of ``metric_key`` was measured with (one, see ``_check_cell``)."""
        found = [measured(r.metrics, metric_key) for r in self.finished if _value(r, metric_key) is not None]
        return found[0] if found else None

    def stats(self, metric_key: str) -> tuple[float | None, float | None, int]:
        """Mean, sample standard deviation (None below two values) and count over seeds."""
        vals = self.values(metric_key)
        if not vals:
            return None, None, 0
        std = statistics.stdev(vals) if len(vals) > 1 else None
        return statistics.fmean(vals), std, len(vals)

    def mean_of(self, key: str) -> float | None:
        """The mean of ``key`` over the finished runs; None unless every one of them has it (a run
        that predates the record): never the mean of some runs said as the cell's."""
        vals = [_value(r, key) for r in self.finished]
        return statistics.fmean(vals) if vals and None not in vals else None

    def shortened_by(self) -> list[str]:
        """What cut the cell's finished runs short of their epochs or splits (metrics.json's
        shortened_by, ``name=value``, each once): their number is not the protocol's."""
        return sorted({said for r in self.finished for said in shortened_settings(r.metrics)})

    def training_seconds(self) -> tuple[float | None, bool]:
        """Mean training time per finished run, and whether every run recorded its fits alone
        (``fit_seconds``; False: wall time stands in for the runs without it). None unless every
        finished run recorded a time (never the mean of some runs said as the cell's)."""
        found = [training_seconds(r) for r in self.finished]
        if not found or any(s is None for s, _ in found):
            return None, True
        return statistics.fmean(s for s, _ in found), all(fit for _, fit in found)


@dataclass
class FilledTable:
    table: PaperTable
    cells: dict[tuple[str, str], Cell]
    unmatched: list[Run]
    deviations: list[str]
    expected_runs: int
    measurements: list[str] = field(default_factory=list)
    experiment: str | None = None  # the experiment file reported: runs made by another are not used
    # Per cell: the settings (name=value as the runs used it) and measurements that differ from
    # the experiment file.
    cell_deviations: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    # A report narrowed on its command line (seed=0, dataset=cub): those settings, and the runs the
    # experiment file's whole sweep makes in the table's cells.
    narrowed_by: list[str] = field(default_factory=list)
    sweep_runs: int | None = None
    # Runs given with other values of the settings report.py was given that the sweep does not
    # vary (aug.lam=0.1): not used, and counted.
    not_chosen: list[Run] = field(default_factory=list)
    chosen_by: list[str] = field(default_factory=list)
    # Settings given to report.py that choose no runs (where things are, workers, devices, logging,
    # what is measured after training: pasted from a sweep's command, they change nothing trained).
    choosing_none: list[str] = field(default_factory=list)
    # Lines said under the counts: how to expect what was launched (report.py dataset=...).
    hints: list[str] = field(default_factory=list)

    def uneven(self) -> bool:
        """Whether the cells with runs differ from the experiment file in different ways (rows
        side by side trained or measured unlike each other): such cells are marked in the tables."""
        return len({tuple(self.cell_deviations.get(k, [])) for k, c in self.cells.items() if c.runs}) > 1

    def shared_deviations(self) -> set[str]:
        """The ways every cell with runs differs from the experiment file alike."""
        with_runs = [set(self.cell_deviations.get(k, [])) for k, c in self.cells.items() if c.runs]
        return set.intersection(*with_runs) if with_runs else set()

    def marked(self, key: tuple[str, str]) -> bool:
        """A cell whose runs differ from the experiment file in a way other cells with runs do not,
        where the table's cells are uneven (the baselines beside a DiffuseMix row made with another
        generator: that row alone)."""
        return self.uneven() and bool(set(self.cell_deviations.get(key, [])) - self.shared_deviations())

    def counts(self) -> dict[str, int]:
        """The expected runs (one per cell and seed the sweep runs) by what became of them, which add
        up to ``expected``; ``unexpected``: runs of a cell the sweep does not run (another seed),
        used in their cells; ``outside``: runs given that belong to no cell, not used."""
        cells = self.cells.values()
        expected = [r for c in cells for r in c.expected]
        return {
            "expected": self.expected_runs,
            "finished": sum(r.finished for r in expected),
            "failed": sum(r.status == "failed" for r in expected),
            "diverged": sum(r.status == "diverged" for r in expected),
            "missing": sum(len(c.missing_seeds) for c in cells),
            "unexpected": sum(len(c.unexpected) for c in cells),
            "outside": len(self.unmatched),
        }

    def summary(self) -> str:
        c = self.counts()
        line = (
            f"{c['expected']} run{'' if c['expected'] == 1 else 's'} expected: {c['finished']} finished, "
            f"{c['failed']} failed, {c['diverged']} diverged, {c['missing']} missing"
        )
        if self.narrowed_by and self.sweep_runs is not None and self.sweep_runs != c["expected"]:
            line += (
                f" (narrowed by {' '.join(self.narrowed_by)}: the experiment file's sweep makes "
                f"{self.sweep_runs} runs in this table)"
            )
        # Runs the sweep (as narrowed) does not expect: of other seeds in its cells, or in cells it
        # does not run at all (report.py aug=none given runs of every row): used, and counted apart.
        for extra, where in (
            (
                [r for cell in self.cells.values() if cell.expected_seeds for r in cell.unexpected],
                "of the table's cells, with seeds this sweep does not run there",
            ),
            (
                [r for cell in self.cells.values() if not cell.expected_seeds for r in cell.runs],
                f"in cells this sweep{', as narrowed,' if self.narrowed_by else ''} does not run",
            ),
        ):
            if not extra:
                continue
            by_status = ", ".join(
                f"{sum(r.status == s for r in extra)} {s}"
                for s in ("finished", "failed", "diverged")
                if any(r.status == s for r in extra)
            )
            line += (
                f"; {len(extra)} more run{'' if len(extra) == 1 else 's'} {where} ({by_status}), "
                f"{'is' if len(extra) == 1 else 'are'} used too ({named_runs(extra)})"
            )
        others = [r for r in self.unmatched if self._made_by_another(r)]
        outside = [r for r in self.unmatched if not self._made_by_another(r)]
        if self.not_chosen:
            n = len(self.not_chosen)
            line += (
                f"; {n} run folder{'' if n == 1 else 's'} given {'has' if n == 1 else 'have'} other settings than "
                f"{' '.join(self.chosen_by)} (given to report.py) and {'is' if n == 1 else 'are'} not used "
                f"({named_runs(self.not_chosen)})"
            )
        if self.choosing_none:
            line += (
                f"; {' '.join(self.choosing_none)} (given to report.py) {'chooses' if len(self.choosing_none) == 1 else 'choose'} "
                "no runs: where things are, workers, devices, logging and what is measured after training change "
                "nothing trained"
            )
        if others:
            names = sorted({str(setting(r.config, "experiment_name")) for r in others})
            line += (
                f"; {len(others)} run folder{'' if len(others) == 1 else 's'} given {'was' if len(others) == 1 else 'were'} "
                f"made by another experiment file (experiment={', '.join(names)}) and "
                f"{'is' if len(others) == 1 else 'are'} not used ({named_runs(others)})"
            )
        if outside:
            line += (
                f"; {len(outside)} run folder{'' if len(outside) == 1 else 's'} given "
                f"belong{'s' if len(outside) == 1 else ''} to no cell of this table and "
                f"{'is' if len(outside) == 1 else 'are'} not used ({named_runs(outside)}{self._why_outside(outside)})"
            )
        return line

    def _why_outside(self, runs: list[Run]) -> str:
        """Why runs belong to no cell: a dataset the table has no column for, or no row's settings."""
        columns = self.table.columns
        other = sorted({str(setting(r.config, "dataset")) for r in runs} - set(columns))
        parts = []
        if other:
            parts.append(
                f"dataset {', '.join(other)} is not a column of {self.table.name} (its columns: {', '.join(columns)})"
            )
        within = [r for r in runs if str(setting(r.config, "dataset")) in columns]
        if within:
            whose = (
                ("the other's" if len(within) == 1 else "the others'")
                if other
                else ("its" if len(within) == 1 else "their")
            )
            parts.append(f"{whose} settings match none of {self.table.name}'s rows")
        return ": " + "; ".join(parts) if parts else ""

    def _made_by_another(self, run: Run) -> bool:
        made_by = setting(run.config, "experiment_name")
        return self.experiment is not None and made_by is not None and made_by != self.experiment

    def validation(self) -> list[str]:
        """A line naming, per column, the split the finished runs selected their checkpoint on
        (metrics.json's ``val_rule``): a holdout of the training split trains on the rest alone."""
        rules: dict[str, set[str]] = defaultdict(set)
        for (_, column), cell in self.cells.items():
            for run in cell.finished:
                rules[column].add(str((run.metrics or {}).get("val_rule") or "not recorded"))
        if not rules:
            return []
        parts = [
            f"{column}: {', '.join(sorted(rules[column]))}"
            for column in self.table.columns
            if column in rules
        ]
        held = any("holdout" in rule for found in rules.values() for rule in found)
        tail = (
            " (a holdout is left out of training: the runs trained on the rest of the training split)"
            if held
            else ""
        )
        lines = ["Checkpoints selected on " + "; ".join(parts) + tail]
        # A column of runs with no test split: its only accuracy is that of the split that chose
        # the checkpoint (the best epoch there), optimistic.
        finished = defaultdict(list)
        for (_, column), cell in self.cells.items():
            finished[column] += [r for r in cell.finished if isinstance(r.metrics, dict)]
        untested = [
            column
            for column in self.table.columns
            if finished[column] and all(r.metrics.get("test_top1") is None for r in finished[column])
        ]
        if untested and "val_top1" in self.table.metrics.values():
            lines.append(
                f"{', '.join(untested)}: no test split, so val_top1 is measured on the split each run selected "
                "its checkpoint on (its best epoch there): it reads higher than a number measured once on images "
                "that chose nothing (an image folder's test/ folder gives one)"
            )
        return lines

    def data_differs(self) -> list[str]:
        """A line per column whose runs (of different rows) were trained on data of different sizes
        (metrics.json's class count and split sizes): rows compared there saw different images."""
        lines = []
        for column in self.table.columns:
            runs = [r for (_, c), cell in self.cells.items() if c == column for r in cell.runs if r.metrics]
            for other in runs[1:]:
                differ = _data_differs(runs[0], other)
                if differ:
                    lines.append(
                        f"{column}: runs were trained on different data ({', '.join(differ)}: {runs[0].folder} "
                        f"and {other.folder}); its rows are not compared on the same images"
                    )
                    break
        return lines

    def release_differs(self) -> list[str]:
        """A line per column whose runs read an official split of another size than the published
        release's (metrics.json's data_notes: a list cut short, another release, a subset): their
        numbers, and so their difference from the paper's, do not compare with the paper's."""
        lines = []
        for column in self.table.columns:
            notes: dict[tuple[str, ...], list[Run]] = {}  # the runs of each set of notes
            for (_, c), cell in self.cells.items():
                for run in cell.runs if c == column else []:
                    data_notes = (run.metrics or {}).get("data_notes")
                    # The splits of each note: a holdout of the official train split has its note.
                    splits: dict[str, list[str]] = {}
                    for split, found in (data_notes if isinstance(data_notes, dict) else {}).items():
                        if isinstance(found, dict) and found.get("differs_from_release"):
                            splits.setdefault(str(found["differs_from_release"]), []).append(split)
                    said = tuple(f"{' and '.join(names)}: {note}" for note, names in splits.items())
                    if said:
                        notes.setdefault(said, []).append(run)
            for said, runs in notes.items():
                lines.append(
                    f"{column}: {len(runs)} run{'' if len(runs) == 1 else 's'} read data unlike the published "
                    f"release ({'; '.join(said)}: {named_runs(runs)}): "
                    + (
                        "not comparable with numbers measured on that release"
                        if self.table.own
                        else "not comparable with the paper's numbers, nor is the difference from them"
                    )
                )
        return lines

    def code(self) -> list[str]:
        """One line naming the code the runs were made with (metrics.json's git commit and whether
        the tree had uncommitted changes), when the runs name more than one or any was dirty."""
        found: dict[str, list[Run]] = {}
        for cell in self.cells.values():
            for run in cell.runs:
                if run.metrics is None:
                    continue
                # A run trained in parts names the code of each (metrics.json's parts).
                parts = run.metrics.get("parts")
                gits = (
                    [p.get("git") if isinstance(p, dict) else None for p in parts]
                    if isinstance(parts, list)
                    else []
                )
                names = [_code_name(git) for git in gits or [run.metrics.get("git")]]
                names = [name for k, name in enumerate(names) if name not in names[:k]]
                found.setdefault(" then ".join(names), []).append(run)
        if len(found) <= 1 and not any("uncommitted" in name or " then " in name for name in found):
            return []
        listed = "; ".join(
            f"{name} ({len(runs)} run{'' if len(runs) == 1 else 's'})" for name, runs in found.items()
        )
        if len(found) == 1:
            return [f"Code: every run was made by commit{'s' if ' then ' in listed else ''} {listed}"]
        return [f"Code: the runs were made by {len(found)} states of the code: {listed}"]

    def replaced(self) -> list[str]:
        """Lines naming the runs left out of a cell for a run of the same seed that went further,
        and why each did not finish (a damaged metrics.json, say, is no run that stopped)."""
        return [
            f"{cell.row.label} ({cell.column}): the {old.status} run in {old.folder} is left out for the "
            f"{new.status} run of the same seed in {new.folder}"
            + (f" ({old.folder.name} {old.status}: {old.reason})" if old.reason else "")
            for cell in self.cells.values()
            for old, new in cell.replaced
        ]

    def attempts(self) -> list[str]:
        """Lines naming the runs that started anew in a folder where an earlier attempt failed or
        diverged before its first checkpoint (kept in ``attempts/<n>/``), and how it differed."""
        lines = []
        for cell in self.cells.values():
            for run in cell.runs:
                for attempt in read_attempts(run.folder):
                    differ = attempt.get("settings_differ")
                    if isinstance(differ, list) and differ:
                        how = f"; settings, that attempt's -> this run's: {'; '.join(str(d) for d in differ)}"
                    elif differ == []:
                        how = "; the same settings"
                    else:
                        how = ""
                    status = attempt.get("status")
                    lines.append(
                        f"{cell.row.label} ({cell.column}): the {run.status} run in {run.folder} started anew "
                        f"after an attempt that {status if status in ('failed', 'diverged') else 'stopped'} there "
                        f"({attempt.get('error') or 'no reason recorded'}; kept in {attempt['folder']}{how})"
                    )
        return lines

    def stopped(self, shown: int = 5) -> list[str]:
        """Lines naming the failed and diverged runs of the table's cells, each with its reason
        (failure.json's error, a damaged or missing metrics.json)."""
        runs = [r for c in self.cells.values() for r in c.runs if r.status in ("failed", "diverged")]
        lines = [f"{r.status}: {r.folder}: {r.reason or 'no reason recorded'}" for r in runs[:shown]]
        if len(runs) > shown:
            lines.append(
                f"... and {len(runs) - shown} more failed or diverged run(s) (summary.csv of each sweep lists them)"
            )
        return lines

    def shortened(self) -> list[str]:
        """A line naming the finished runs that trainer settings cut short of their epochs or splits
        (metrics.json's shortened_by), with what cut each."""
        cut = [
            (r, by) for c in self.cells.values() for r in c.finished if (by := shortened_settings(r.metrics))
        ]
        if not cut:
            return []
        shown = "; ".join(f"{r.folder}: {', '.join(sorted(by))}" for r, by in cut[:3])
        more = f"; and {len(cut) - 3} more" if len(cut) > 3 else ""
        return [
            f"{len(cut)} finished run{'' if len(cut) == 1 else 's'} {'was' if len(cut) == 1 else 'were'} cut "
            f"short of {'its' if len(cut) == 1 else 'their'} epochs or splits by trainer settings "
            f"(metrics.json's shortened_by): {shown}{more}"
        ]

    def blew_up(self) -> list[str]:
        """A line naming the finished runs whose reported weights are a blown-up model's
        (metrics.json's loss_blew_up ended: a loss far above a uniform guess's, yet finite)."""
        said = [
            (r, text) for c in self.cells.values() for r in c.finished if (text := blew_up_said(r.metrics))
        ]
        if not said:
            return []
        runs = [r for r, _ in said]
        one = len(runs) == 1
        shown = "; ".join(f"{r.folder}: {text}" for r, text in said[:3])
        more = f"; and {len(runs) - 3} more" if len(runs) > 3 else ""
        return [
            f"{len(runs)} finished run{'' if one else 's'} ended with a loss over "
            f"{runs[0].metrics['loss_blew_up'].get('factor', 100)} times a uniform guess's, yet finite "
            f"(metrics.json's loss_blew_up): {'its' if one else 'their'} numbers, counted in "
            f"{'its cell' if one else 'their cells'} as measured, are a blown-up model's (lower optim.lr "
            f"and train again): {shown}{more}"
        ]

    def skipped_images(self) -> list[str]:
        """A line naming the finished runs that left corrupt images out of their splits
        (``dataset.on_bad_image=skip``: metrics.json's bad_images; evaluate.py's attacked split,
        robust_bad_images_skipped), with how many per split: their numbers are over fewer images
        than the split holds."""

        def count(n) -> bool:
            return isinstance(n, int) and not isinstance(n, bool) and n > 0

        said = []
        for cell in self.cells.values():
            for run in cell.finished:
                metrics = run.metrics or {}
                bad = metrics.get("bad_images")
                counts = (
                    [f"{split} {n}" for split, n in bad.items() if count(n)] if isinstance(bad, dict) else []
                )
                attacked = metrics.get("robust_bad_images_skipped")  # (evaluate.py's attacked split)
                if count(attacked):
                    split = metrics.get("robust_split")
                    counts.append(
                        f"{attacked} of the {split or 'attacked'} split its attacks were measured on"
                    )
                if counts:
                    said.append((run, ", ".join(counts)))
        if not said:
            return []
        one = len(said) == 1
        shown = "; ".join(f"{r.folder}: {text}" for r, text in said[:3])
        more = f"; and {len(said) - 3} more" if len(said) > 3 else ""
        return [
            f"{len(said)} finished run{'' if one else 's'} left corrupt images out of {'its' if one else 'their'} "
            "splits (dataset.on_bad_image=skip; the run folder's bad_images.txt lists those training left out): "
            f"{'its' if one else 'their'} numbers are over the images left ({shown}{more})"
        ]

    def unshown_attacks(self) -> list[str]:
        """A line per attack's error that finished runs of the table hold and the table has no
        column for (Table 4's runs attacked again by ``evaluate.py eval.pgd=true``): measured, so
        said with what it was measured on and where it is shown, not silently left out."""
        if self.table.own:  # (an own table has a column for each attack some run has)
            return []
        shown = set(self.table.metrics.values())
        held: dict[str, list[Run]] = {}
        for cell in self.cells.values():
            for run in cell.finished:
                for key in run.metrics or {}:
                    if key not in shown and _attack_of(key) is not None and _value(run, key) is not None:
                        held.setdefault(key, []).append(run)
        lines = []
        for key, runs in sorted(held.items()):
            texts = sorted({measurement_text(measured(r.metrics, key) or {}) for r in runs})
            on = texts[0] if len(texts) == 1 else f"{len(texts)} measurements, the first {texts[0]}"
            one = len(runs) == 1
            lines.append(
                f"{len(runs)} finished run{'' if one else 's'} of this table also {'holds' if one else 'hold'} "
                f"{key} ({on}), which is not a column of the paper's table: report.py experiment=none with "
                f"the same runs= gives it a column ({'its' if one else 'each'} metrics.json holds it; "
                f"{named_runs(runs)})"
            )
        return lines

    def without_values(self) -> list[str]:
        """Lines naming the finished runs that have no value for a metric of the table."""
        lines = []
        for metric, key in self.table.metrics.items():
            runs = [r for c in self.cells.values() for r in c.without(key)]
            if runs:
                one = len(runs) == 1
                paper = "" if metric == key else f" (the paper's {metric})"
                lines.append(
                    f"{len(runs)} finished run{'' if one else 's'} {'has' if one else 'have'} no {key}{paper}, "
                    f"counted in {'its cell' if one else 'their cells'} as 'finished without a value' "
                    f"({named_runs(runs)})"
                )
                lines += _set_aside(runs, key)
        if self.table.own:
            # An own table has a column for each attack some run holds: one whose every number a later
            # measurement set aside has none, and is said here with the command that measures it again.
            from ..robustness import ATTACKS

            finished = [r for c in self.cells.values() for r in c.finished]
            for key in (f"{attack}_error" for attack in ATTACKS):
                if key not in self.table.metrics.values():
                    lines += _set_aside([r for r in finished if key not in (r.metrics or {})], key, False)
        return lines


def _set_aside(runs: list[Run], key: str, of_them: bool = True) -> list[str]:
    """Lines naming the ``runs`` whose value of ``key`` a later measurement set aside (evaluate.py
    on other images or another checkpoint: robustness_earlier.jsonl), with the command that
    measures it again as it was measured then (its settings, split and checkpoint): one line per
    such measurement. ``of_them``: the lines follow one that counts the runs (``3 of them had``)."""
    attack = _attack_of(key)
    if attack is None:
        return []
    held: dict[tuple[str, tuple[str, ...]], tuple[str, list[Run]]] = {}
    for run in runs:
        records = [record for record in read_set_aside(run.folder) if key in record]
        if not records:
            continue
        record = records[-1]  # (the latest set aside)
        # (a set-aside record names the checkpoint attacked; the one training selected is the run's)
        selected = record.get("best_checkpoint") or (run.metrics or {}).get("best_checkpoint")
        was = measured({**record, "best_checkpoint": selected}, key) or {}
        was.pop("data_dir", None)  # (said below, with the setting that reads it again)
        checkpoint = was.pop("checkpoint", None)  # (another than the selected one: named)
        folder = run.folder / "checkpoints" / checkpoint if checkpoint else run.folder
        text = measurement_text(was) + (f" of {checkpoint}" if checkpoint else "")
        more: list[str] = []
        if record.get("robust_data_dir"):  # (measured on another copy of the data)
            text += f", data {record['robust_data_dir']}"
            more.append(quoted_arg("data_dir", str(record["robust_data_dir"])))
        settings = record.get(f"{attack}_settings")
        if isinstance(settings, dict) and settings.get("random_start"):
            # Random starts are drawn per batch, from the seed, on each process.
            size, seed, processes = drawn_with(record, attack)
            drawn = []
            if seed is not None and seed != setting(run.config, "seed"):
                # (evaluate.py draws from the run's own seed unless told another)
                drawn.append(f"from seed {seed}")
                more.append(f"seed={seed}")
            more += [f"eval.batch_size={size}"] if size is not None else []
            if isinstance(processes, int) and processes > 1:
                drawn.append(
                    f"on {processes} processes (evaluate.py attacks on one: its starts are drawn otherwise)"
                )
            text += f", random starts drawn {' '.join(drawn)}" if drawn else ""
        command = evaluate_command(key, was, folder, tuple(more))
        held.setdefault((text, tuple(more)), (command, []))[1].append(run)
    lines = []
    for (text, _), (command, group) in held.items():
        one = len(group) == 1
        again = (
            f"{command} measures it again"
            if one
            else f"evaluate.py with each run's own ckpt= and these settings measures it again (the first's: {command})"
        )
        who = f"{len(group)} of them" if of_them else f"{len(group)} finished run{'' if one else 's'}"
        lines.append(
            f"{who} had {'its' if one else 'their'} {key} ({text}) set aside by a later "
            f"measurement on other images or another checkpoint ({EARLIER_ROBUSTNESS} beside "
            f"{'its' if one else 'their'} metrics.json keeps it): {again} ({named_runs(group)})"
        )
    return lines


def named_runs(runs: list[Run], shown: int = 3) -> str:
    """The folders of ``runs``, the first ``shown``, and how many more."""
    names = ", ".join(str(run.folder) for run in runs[:shown])
    return names + (f" and {len(runs) - shown} more" if len(runs) > shown else "")


def fill(
    table: PaperTable,
    runs: list[Run],
    expected: dict[tuple[str, str], list[int]],
    references: dict[tuple[str, str], DictConfig] | None = None,
    experiment: str | None = None,
    row_of: Callable[[Run], PaperRow | None] | None = None,
) -> FilledTable:
    """Place each run in its (row, column) cell. ``expected`` holds the seeds the sweep runs per
    cell (a cell the sweep does not run expects none; a seed named twice is one run); ``references``
    the experiment file's own configuration per cell (for the settings lines). A run made by another
    experiment file (``experiment_name``) is not a run of this table, even where its settings match
    a row. ``row_of``: each run's row (default: the row whose ``match`` its settings satisfy)."""
    references = references or {}
    row_of = row_of or (lambda run: table.row_of(run.config))
    cells: dict[tuple[str, str], Cell] = {}
    for row in table.rows:
        for column in table.columns:
            if not row.reported_only:
                seeds = list(dict.fromkeys(int(s) for s in expected.get((row.label, column), [])))
                cells[(row.label, column)] = Cell(row, column, seeds)
    unmatched = []
    for run in runs:
        made_by = setting(run.config, "experiment_name")
        if experiment is not None and made_by is not None and made_by != experiment:
            unmatched.append(run)
            continue
        row = row_of(run)
        column = setting(run.config, "dataset")
        if row is None or not isinstance(column, str) or (row.label, column) not in cells:  # (a damaged name)
            unmatched.append(run)
            continue
        cells[(row.label, column)].runs.append(run)
    for key, cell in cells.items():
        _check_cell(table, cell, references.get(key))
    deviations, per_cell = _deviations(table, cells, references)
    robust_deviations, measurements, robust_per_cell = _measurements(table, cells, references)
    for key, found in robust_per_cell.items():
        per_cell.setdefault(key, []).extend(found)
    expected_runs = sum(len(c.expected_seeds) for c in cells.values())
    return FilledTable(
        table,
        cells,
        unmatched,
        deviations + robust_deviations,
        expected_runs,
        measurements,
        experiment,
        {key: sorted(set(found)) for key, found in per_cell.items() if found},
    )


def _check_cell(table: PaperTable, cell: Cell, reference: DictConfig | None = None) -> None:
    """One run per seed, every run of the cell trained with the same settings but its seed, and
    each robustness number of the cell measured alike (metrics.json's record of it)."""
    by_seed: dict[int, list[Run]] = defaultdict(list)
    for run in cell.runs:
        by_seed[int(setting(run.config, "seed"))].append(run)
    for seed, group in by_seed.items():
        if len(group) > 1:
            group = _went_furthest(cell, group)
        if len(group) > 1:
            differ = _settings_differ(group[0], group[1])
            key, _, values = differ[0].partition("=") if differ else ("", "", "")
            first, _, second = (v if v != "None" else "null" for v in values.partition(" vs "))
            # (a setting of the runs' configuration whose values are plain words: not the world
            # size or the weights' contents, which no setting given to report.py chooses)
            plain = re.fullmatch(r"[A-Za-z_][\w.]*", key) and all(
                re.fullmatch(r"[\w.+-]+", v) for v in (first, second)
            )
            each = (
                f"report each value's runs on their own: add {key}={first} to report.py's command, then "
                f"{key}={second}"
                if plain
                else "report each setting's runs on their own"
            )
            why = (
                f", which differ in {', '.join(differ[:4])}{', ...' if len(differ) > 4 else ''}: the rows of "
                f"{table.name} do not tell them apart ({each}; or use an experiment whose rows separate them)"
                if differ
                else _same_seed_data(group[0], group[1])
            )
            raise ReportError(
                f"{table.name}, row '{cell.row.label}', {cell.column}: {len(group)} runs of seed {seed} "
                f"({', '.join(str(r.folder) for r in group)}){why}; give the report only one of them (runs=...)"
            )
    if len(cell.runs) < 2:
        return
    first = cell.runs[0]
    for other in cell.runs[1:]:
        differ = _settings_differ(first, other)
        if differ:
            shown = ", ".join(differ[:6])
            raise ReportError(
                f"{table.name}, row '{cell.row.label}', {cell.column}: runs {first.folder} and {other.folder} "
                f"were trained with different settings ({shown}{', ...' if len(differ) > 6 else ''}); a cell "
                "averages seeds of one setting: report them separately (runs=...)"
            )
    with_sizes = [r for r in cell.runs if isinstance(r.metrics, dict)]
    for other in with_sizes[1:]:
        differ = _data_differs(with_sizes[0], other)
        if differ:
            raise ReportError(
                f"{table.name}, row '{cell.row.label}', {cell.column}: runs {with_sizes[0].folder} and "
                f"{other.folder} were trained on different data ({', '.join(differ)} in their metrics.json; "
                "where the data is, dataset.root, is not compared): a cell averages seeds of one dataset: "
                "report them separately (runs=...)"
            )
    _check_lengths(table, cell)
    for key in table.metrics.values():
        if not is_robustness(key):
            continue
        found = [(r, measured(r.metrics, key)) for r in cell.finished if _value(r, key) is not None]
        # One measurement attacks the same images: a count that differs is other data (evaluate.py's
        # data_dir=, bad images skipped) or another eval.batch_size under eval.limit_batches.
        counts = [
            (r, r.metrics.get("robust_images"))
            for r, _ in found
            if r.metrics.get("robust_images") is not None
        ]
        for other, theirs in counts[1:]:
            run, ours = counts[0]
            if ours == theirs:
                continue
            read = [
                f"{r.folder}: {r.metrics['robust_data_dir']}"
                for r, _ in counts
                if r.metrics.get("robust_data_dir")
            ]
            raise ReportError(
                f"{table.name}, row '{cell.row.label}', {cell.column}: {key} of runs {run.folder} and "
                f"{other.folder} was measured on different numbers of images ({ours} vs {theirs}: metrics.json's "
                "robust_images; another copy of the data (evaluate.py data_dir=), bad images skipped, or another "
                f"eval.batch_size with eval.limit_batches{'; read from ' + '; '.join(read) if read else ''}); a "
                "cell averages one measurement: measure the runs again on the same data and settings "
                "(evaluate.py ckpt=<run folder>), or report them separately (runs=...)"
            )
        for other, theirs in found[1:]:
            run, ours = found[0]
            differ = _measurement_differs(ours, theirs)
            if not differ:
                continue
            shown = ", ".join(f"{k}={_shown(k, ours.get(k))} vs {_shown(k, theirs.get(k))}" for k in differ)
            fix = wanted(reference, key) if reference is not None else dict(ours)
            if fix.get("limit_batches") is not None:  # (a limit's batches are read in today's order)
                fix["limit_order"] = LIMITED_EVAL_ORDER
            source = {
                "split": "robust_split",
                "limit_batches": "robust_limit_batches",
                "limit_order": "robust_limit_order",
                "checkpoint": "robust_checkpoint",
                "data_dir": "robust_data_dir",
            }
            sources = sorted({source.get(k, f"{_attack_of(key)}_settings") for k in differ})
            redo = [r for r, m in found if _measurement_differs(m, fix)]
            command = evaluate_command(key, fix, redo[0].folder if len(redo) == 1 else "<run folder>")
            each = "" if len(redo) == 1 else f" for each of {named_runs(redo)}"
            raise ReportError(
                f"{table.name}, row '{cell.row.label}', {cell.column}: {key} of runs {run.folder} and "
                f"{other.folder} was measured with different settings ({shown}; metrics.json's "
                f"{' and '.join(sources)}); a cell "
                f"averages one measurement: measure again with "
                f"{'the experiment file' if reference is not None else 'the first run'}'s {measurement_text(fix)} "
                f"({command}{each}), or report the runs separately (runs=...)"
            )


#: What metrics.json says of how long a run trained and on how many images it was scored.
_LENGTH_KEYS = ("epochs", "partial_epoch_steps", "optimizer_steps")
_EVALUATED_KEYS = ("val_images_evaluated", "test_images_evaluated")


_EVAL_LIMITS = {"limit_val_batches", "limit_test_batches", "fast_dev_run", "overfit_batches"}


def _limited_order(metrics: dict) -> str | None:
    """The order whose first batches a run's batch-limited evaluation read, as metrics.json says
    it (per split where they differ; None: no limit cut its validation or test split)."""
    cut = metrics.get("shortened_by")
    if not isinstance(cut, dict) or not _EVAL_LIMITS & set(cut):
        return None
    order = metrics.get("limited_eval_order", SPLIT_ORDER)
    if isinstance(order, dict):
        return ", ".join(f"{split}: {said}" for split, said in sorted(order.items()))
    return str(order)


def _check_lengths(table: PaperTable, cell: Cell) -> None:
    """The finished runs of a cell trained alike long (epochs and optimiser steps: a run that
    ``trainer.max_time`` stopped early is not averaged with whole ones) and were scored on as many
    images (another batch size under a batch limit scores other images)."""
    runs = [r for r in cell.finished if isinstance(r.metrics, dict)]
    where = f"{table.name}, row '{cell.row.label}', {cell.column}"
    for other in runs[1:]:
        first = runs[0]
        # Early stopping (callbacks.early_stopping_patience, a setting the runs share) ends each
        # seed where its own validation stops improving: their lengths differ by design.
        stopped = any(r.metrics.get("early_stopped_at_epoch") is not None for r in (first, other))
        differ = [
            f"{k} {first.metrics.get(k)} vs {other.metrics.get(k)}"
            for k in _LENGTH_KEYS
            if not stopped
            if None not in (first.metrics.get(k), other.metrics.get(k))  # (a run predating the record)
            and first.metrics.get(k) != other.metrics.get(k)
        ]
        if differ:
            cut = [
                f"{r.folder} was cut short by {', '.join(sorted(r.metrics['shortened_by']))}"
                for r in (first, other)
                if isinstance(r.metrics.get("shortened_by"), dict) and r.metrics["shortened_by"]
            ]
            # A resume keeps a run's time and batch limits (they are not settings a resume may
            # change): a run they cut is trained again, not on. max_steps and max_epochs may change.
            kept = sorted(
                {
                    key
                    for r in (first, other)
                    if isinstance(r.metrics.get("shortened_by"), dict)
                    for key in r.metrics["shortened_by"]
                    if key in ("max_time", "limit_train_batches", "overfit_batches", "fast_dev_run")
                }
            )
            fix = (
                f"train the cut run again in a new folder without trainer.{kept[0]} (a resume keeps "
                f"{', '.join('trainer.' + k for k in kept)})"
                if kept
                else "train the shorter one on (train.py hydra.run.dir=<its folder> ckpt_path=last, with the "
                "other's trainer.max_epochs and trainer.max_steps)"
            )
            raise ReportError(
                f"{where}: runs {first.folder} and {other.folder} trained for different lengths "
                f"({', '.join(differ)}{'; ' + '; '.join(cut) if cut else ''}); a cell averages runs of one "
                f"length: {fix}, or report them separately (runs=...)"
            )
        scored = [
            f"{k} {first.metrics.get(k)} vs {other.metrics.get(k)}"
            for k in _EVALUATED_KEYS
            if None not in (first.metrics.get(k), other.metrics.get(k))
            and first.metrics.get(k) != other.metrics.get(k)
        ]
        if scored:
            raise ReportError(
                f"{where}: runs {first.folder} and {other.folder} were scored on different numbers of images "
                f"({', '.join(scored)}: a batch limit with another dataset.eval_batch_size, or other data); a "
                "cell averages one measurement: train the odd one again with the others' dataset.eval_batch_size "
                "and trainer.limit_val_batches/limit_test_batches, or report them separately (runs=...)"
            )
        orders = {r.folder: _limited_order(r.metrics) for r in (first, other)}
        if None not in orders.values() and len(set(orders.values())) > 1:
            raise ReportError(
                f"{where}: runs {first.folder} and {other.folder} were scored on other images of their split "
                f"(the first batches of a batch limit in {' vs '.join(orders.values())}: a run trained before "
                "limited evaluations took the classes in turn); a cell averages one measurement: train the odd "
                "one again, or report them separately (runs=...)"
            )


def _code_name(git) -> str:
    """A run's (or a part's) code as reports name it: its commit, and whether the tree had
    uncommitted changes."""
    if isinstance(git, dict) and git.get("commit"):
        return str(git["commit"])[:10] + (" with uncommitted changes" if git.get("dirty") else "")
    return "no commit recorded"


def _settings_differ(a: Run, b: Run) -> list[str]:
    """``key=a vs b`` for each setting two runs were trained with differently (the seed and the
    settings that change nothing trained, ``IGNORED``, left out)."""
    # (a method's setting left null as its dataset's defaults resolved it: what was trained)
    base = {
        k: used_setting(a.config, k, v)
        for k, v in flat_settings(a.config).items()
        if _compared(k, a.config) and k != "seed"
    }
    flat = {
        k: used_setting(b.config, k, v)
        for k, v in flat_settings(b.config).items()
        if _compared(k, b.config) and k != "seed"
    }
    keys = sorted(k for k in base.keys() | flat.keys() if not _same_setting(k, base.get(k), flat.get(k)))
    found = [f"{k}={_shown(k, base.get(k))} vs {_shown(k, flat.get(k))}" for k in keys]
    sizes = world_size(a), world_size(b)
    if None not in sizes and sizes[0] != sizes[1]:
        found.append(f"{WORLD_SIZE}={sizes[0]} vs {sizes[1]}")
    # model.weights says where the file was (left out); metrics.json's sha256 says what it held.
    recorded = all("model_weights" in (r.metrics or {}) for r in (a, b))  # not by a run that predates it
    loaded = [_entry(r, "model_weights", "sha256") for r in (a, b)]
    if recorded and loaded[0] != loaded[1]:
        shown = [f"sha256 {str(h)[:12]}" if h else "none" for h in loaded]
        found.append(f"model.weights (the file's contents)={shown[0]} vs {shown[1]}")
    # fractals.dir says where a folder of mixing pictures was (left out); aug_settings' fractal_bank
    # says what it held (runs that read no folder record none).
    pictures = [_entry(r, "aug_settings", "fractal_bank") for r in (a, b)]
    hashes = [p.get("sha256") if isinstance(p, dict) else None for p in pictures]
    if None not in hashes and hashes[0] != hashes[1]:  # (a run that read no folder, or predates the record)
        shown = [f"{p.get('images')} pictures, sha256 {str(h)[:12]}" for p, h in zip(pictures, hashes)]
        found.append(f"fractals.dir (the pictures' contents)={shown[0]} vs {shown[1]}")
    return found


def _entry(run: Run, key: str, field: str):
    """``metrics.json[key][field]`` of ``run``, None where either is absent or not a mapping (a file
    edited by hand, or written before the entry was)."""
    value = (run.metrics or {}).get(key)
    return value.get(field) if isinstance(value, dict) else None


#: How reports name metrics.json's world_size: trainer.devices is left out of the comparisons
#: (where things run), but the processes that trained together multiply the batch of a step.
WORLD_SIZE = "world size (devices x nodes; dataset.batch_size is per device)"


def world_size(run: Run) -> int | tuple[int, ...] | None:
    """The processes that trained ``run`` together (metrics.json): a number, or the sizes of its
    parts where they differ; None where unknown (a run, or a part, that predates the record)."""
    value = (run.metrics or {}).get("world_size")
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if (
        isinstance(value, list)
        and value
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        return tuple(value)
    return None


#: What metrics.json says of a run's data: runs of one dataset agree on them wherever the data is.
DATA_SIZES = ("num_classes", "train_images", "val_images", "test_images")


def _same_seed_data(a: Run, b: Run) -> str:
    """Why two runs of one seed trained with the same settings are both in a cell: the same run
    twice, or one run on each of two data folders (``dataset.root``, else ``paths.data_dir``;
    another data where their metrics.json's sizes differ, else perhaps copies), with the setting
    that chooses each."""
    roots = [where_from(r, "dataset.root") for r in (a, b)]
    named = all(r not in (None, MISSING) for r in roots)  # (both set dataset.root: a chooser)
    places = [_data_place(r) for r in (a, b)]
    apart = None not in places and not same_place(*places)
    sizes = _data_differs(a, b)
    if not apart and not sizes:
        return ", trained alike (the same run twice)"
    key = "dataset.root" if named else "their data folder (dataset.root, else paths.data_dir)"
    said = [f"{key}={places[0]} vs {places[1]}"] if apart else []
    choose = (
        f" (add dataset.root={roots[0]} to report.py's command, then dataset.root={roots[1]})"
        if apart and named and all(re.fullmatch(r"[\w./+-]+", str(r)) for r in roots)
        else ""
    )
    what = "different data" if sizes else "the same settings from two data folders"
    return f", trained on {what} ({', '.join(said + sizes)}): report each folder's runs on their own{choose}"


def _data_place(run: Run) -> str | None:
    """The folder a run's data was read from (``dataset.root``, else ``paths.data_dir``), placed
    where it was launched; None where its settings name neither."""
    for key in ("dataset.root", "paths.data_dir"):
        value = OmegaConf.select(run.config, key, default=None, throw_on_resolution_failure=False)
        if value not in (None, ""):
            return str(placed(value, launched_from(run)))
    return None


def _data_differs(a: Run, b: Run) -> list[str]:
    """``key=a vs b`` for each of :data:`DATA_SIZES` both runs' metrics.json record and differ in."""
    ma, mb = a.metrics or {}, b.metrics or {}
    return [
        f"{k}={ma[k]} vs {mb[k]}"
        for k in DATA_SIZES
        if ma.get(k) is not None and mb.get(k) is not None and ma[k] != mb[k]
    ]


#: A run's outcome, the furthest first: a seed run again after a failure counts its new run.
_OUTCOME = {"finished": 0, "diverged": 1, "failed": 2}


def _went_furthest(cell: Cell, group: list[Run]) -> list[Run]:
    """Runs of one seed of ``cell``: the one that went furthest (finished, else diverged) when it
    is the only one, the others left out of the cell and recorded as replaced by it; where none
    finished and those that went furthest were trained alike (a seed that failed twice), the
    latest of them; else all (two finished runs of a seed are the report's user's to choose)."""
    best = min(_OUTCOME.get(r.status, 2) for r in group)
    top = [r for r in group if _OUTCOME.get(r.status, 2) == best]
    if len(top) == 1 and best != _OUTCOME["failed"]:
        kept = top[0]
    elif best != _OUTCOME["finished"] and not any(_settings_differ(top[0], r) for r in top[1:]):
        kept = max(top, key=_last_written)
    else:
        return group
    for run in group:
        if run is not kept:
            cell.runs.remove(run)
            cell.replaced.append((run, kept))
    return [kept]


def _last_written(run: Run) -> float:
    """When a run folder's outcome was last written (failure.json, metrics.json, or its settings)."""
    for name in ("failure.json", "metrics.json", "config_resolved.yaml", ".hydra/config.yaml"):
        path = run.folder / name
        if path.is_file():
            return path.stat().st_mtime
    return 0.0


def _same_setting(name: str, a: Any, b: Any) -> bool:
    """``same_value``, but a batch limit of ``1`` (one batch, as Lightning reads an int) is not
    ``1.0`` (the whole split, a fraction)."""
    if name.startswith("trainer.") and name.split(".", 1)[1] in BATCH_COUNT_SETTINGS:
        # null is Lightning's default: every batch (1.0), and no overfitting (0.0).
        default = 0.0 if name.endswith("overfit_batches") else 1.0
        a, b = (as_lightning_count(default if v is None else v) for v in (a, b))
        numbers = [isinstance(v, (int, float)) and not isinstance(v, bool) for v in (a, b)]
        if all(numbers) and isinstance(a, int) != isinstance(b, int):
            return False
    return same_value(a, b)


def _shown(name: str, value: Any) -> str:
    """A setting's value as the run used it: a whole number of batches (``2.0`` in the float-typed
    ``trainer.limit_train_batches``) as the count it is, not a fraction of the split."""
    if name.startswith("trainer.") and name.split(".", 1)[1] in BATCH_COUNT_SETTINGS:
        value = as_lightning_count(value)
    return "null" if value is None else repr(value)  # (as the command line and the file write it)


def _deviations(
    table: PaperTable, cells: dict, references: dict[tuple[str, str], DictConfig]
) -> tuple[list[str], dict[tuple[str, str], list[str]]]:
    """Lines naming each setting whose value in the runs differs from the experiment file: every
    setting both have (a setting a run predates is left out), but where things are, how many
    workers and devices, logging and the seed (``IGNORED``). Where the runs do not all share one
    value, the line says which cells had which (rows trained alike can then be told apart from rows
    that were not). Also, per cell, those settings as ``name=value``."""
    found: dict[str, dict] = defaultdict(lambda: {"used": defaultdict(set), "file": set(), "as_file": set()})
    per_cell: dict[tuple[str, str], list[str]] = defaultdict(list)
    for key, cell in cells.items():
        reference = references.get(key)
        if reference is None:
            continue
        where = f"{cell.row.label} ({cell.column})"
        wanted_keys = {k for k in flat_settings(reference) if not _ignored(k)}
        for run in cell.runs:
            names = sorted(wanted_keys & {k for k in flat_settings(run.config) if _compared(k, run.config)})
            for name in names:
                # (a method's setting left null: as its dataset's defaults resolved it, both sides)
                used, wanted_value = used_setting(run.config, name), used_setting(reference, name)
                if not _same_setting(name, used, wanted_value):
                    found[name]["used"][_shown(name, used)].add(where)
                    found[name]["file"].add(_shown(name, wanted_value))
                    per_cell[key].append(f"{name}={_shown(name, used)}")
                else:
                    found[name]["as_file"].add(where)
            # The experiment files' batches are for one device (the paper's): more multiply it.
            size = world_size(run)
            if size is not None and size != 1:
                found[WORLD_SIZE]["used"][str(size)].add(where)
                found[WORLD_SIZE]["file"].add("1")
                per_cell[key].append(f"world_size={size}")
            elif size is not None:
                found[WORLD_SIZE]["as_file"].add(where)
            # model.weights says where a file was (left out above): a run that started from a file
            # where the experiment file names none (its model.pretrained weights, or none) or another.
            started = _started_from(run, reference)
            if started is not None:
                (used_file, wanted_file) = started
                if used_file is None:
                    found[WEIGHTS]["as_file"].add(where)
                else:
                    found[WEIGHTS]["used"][used_file].add(where)
                    found[WEIGHTS]["file"].add(wanted_file)
                    per_cell[key].append(f"model.weights={used_file}")
    lines = []
    for name, v in sorted(found.items()):
        if not v["used"]:  # every run as the experiment file
            continue
        file = ", ".join(sorted(v["file"]))
        as_file = v["as_file"] - set().union(*v["used"].values())
        if len(v["used"]) == 1 and not as_file:
            # (the generator's settings are compared in the runs that read edits alone)
            runs = "the runs that read edits" if name.startswith("generator.") else "the runs"
            lines.append(f"{name}: {next(iter(v['used']))} in {runs} (experiment file: {file})")
            continue
        parts = [f"{value} in {_listed(sorted(where))}" for value, where in sorted(v["used"].items())]
        if as_file:
            parts.append(f"as the experiment file in {_listed(sorted(as_file))}")
        lines.append(f"{name}: {'; '.join(parts)} (experiment file: {file})")
    return lines, per_cell


#: How reports name the weights a run started from (metrics.json's ``model_weights``).
WEIGHTS = "model.weights (the file the model started from)"


def _started_from(run: Run, reference: DictConfig) -> tuple[str | None, str] | None:
    """The weight file ``run`` started from where the experiment file (``reference``) names none
    or another (``(shown, the experiment file's)``); ``(None, ...)`` where it started as the file
    says; None where metrics.json does not record it (a run that predates the record, or resumed)."""
    if "model_weights" not in (run.metrics or {}):
        return None
    loaded = run.metrics["model_weights"]
    wanted = setting(reference, "model.weights")
    if wanted in (None, ""):
        wanted_text = (
            "none; the model's pretrained weights"
            if setting(reference, "model.pretrained")
            else "none; random initial weights"
        )
    else:
        wanted_text = str(wanted)
    if not isinstance(loaded, dict) or not loaded.get("file"):
        return (None, wanted_text) if wanted in (None, "") else ("none", wanted_text)
    if wanted not in (None, "") and same_place(loaded["file"], placed(wanted, launched_from(run))):
        return None, wanted_text
    return f"{loaded['file']} (sha256 {str(loaded.get('sha256'))[:12]})", wanted_text


def _listed(names: list[str], shown: int = 3) -> str:
    return ", ".join(names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown else "")


def _measurements(
    table: PaperTable, cells: dict, references: dict[tuple[str, str], DictConfig]
) -> tuple[list[str], list[str], dict[tuple[str, str], list[str]]]:
    """For each robustness metric of the table, from the runs' metrics.json: lines naming the cells
    whose numbers were measured otherwise than the experiment file says (its ``eval:`` settings),
    a line saying what the numbers were measured with, per cell where they differ, and per cell
    its measurements that differ from the experiment file."""
    deviations, lines = [], []
    per_cell: dict[tuple[str, str], list[str]] = defaultdict(list)
    for key in table.metrics.values():
        if not is_robustness(key):
            continue
        used: dict[str, list[str]] = defaultdict(list)
        differ: dict[tuple[str, str], list[str]] = defaultdict(list)
        for (label, column), cell in cells.items():
            ours = cell.measurement(key)
            if ours is None:
                continue
            name = f"{label} ({column})"
            used[measurement_text(ours)].append(name)
            reference = references.get((label, column))
            if reference is not None:
                theirs = wanted(reference, key)
                if _measurement_differs(ours, theirs):
                    differ[(measurement_text(ours), measurement_text(theirs))].append(name)
                    per_cell[(label, column)].append(f"{key} measured with {measurement_text(ours)}")
        for (ours, theirs), names in sorted(differ.items()):
            deviations.append(f"{key} measured with {ours} in {', '.join(names)} (experiment file: {theirs})")
        if len(used) == 1:
            lines.append(f"{key}: measured with {next(iter(used))} (metrics.json) in every cell that has it")
        elif used:
            lines.append(
                f"{key}: measured with "
                + "; ".join(f"{text} in {', '.join(names)}" for text, names in sorted(used.items()))
                + " (metrics.json)"
            )
    return deviations, lines, per_cell
