"""The paper's numbers of one table, as an experiment file's ``paper:`` block holds them, and which
of its rows a run's configuration belongs to."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from ..errors import ConfigError, did_you_mean

#: Short names a row's ``match`` may use for a group's chosen option.
GROUP_KEYS = {"aug": "aug.name", "dataset": "dataset.name", "model": "model.name"}


def setting(cfg: DictConfig, key: str) -> Any:
    """The value of ``key`` (dotted; ``aug``/``dataset``/``model`` name the chosen option) in a run's
    configuration, or None where the run has no such setting."""
    value = OmegaConf.select(cfg, GROUP_KEYS.get(key, key), default=None, throw_on_resolution_failure=False)
    if isinstance(value, (DictConfig, ListConfig)):
        return OmegaConf.to_container(value, resolve=True)
    return value


def used_setting(cfg: DictConfig, key: str, value: Any = None) -> Any:
    """A run's ``value`` of setting ``key`` (``setting``'s where not given) as the run used it: a
    method's setting left null (``aug.alpha``) as its ``aug.dataset_defaults`` resolved it for the
    run's dataset and protocol, as training does (a null not filled so: as it is)."""
    if value is None:
        value = setting(cfg, key)
    if value is None and key.startswith("aug.") and key.count(".") == 1:
        from ..config import dataset_default

        defaults = OmegaConf.select(
            cfg, "aug.dataset_defaults", default=None, throw_on_resolution_failure=False
        )
        if isinstance(defaults, DictConfig):
            value = dataset_default(
                OmegaConf.to_container(defaults, resolve=True),
                key.partition(".")[2],
                setting(cfg, "dataset"),
                setting(cfg, "protocol"),
            )
    return value


def same_value(a: Any, b: Any) -> bool:
    """Equal as settings: numbers by value (1 == 1.0), anything else by equality of its text."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b))
    return a == b or (a is not None and b is not None and str(a) == str(b))


#: The keys of an experiment file's ``paper:`` block and of each of its rows.
TABLE_KEYS = (
    "table",
    "caption",
    "units",
    "columns",
    "metrics",
    "rows",
    "lower_is_better",
    "notes",
    "x",
    "values_available",
)
ROW_KEYS = ("label", "match", "values", "note", "uncertain", "reported_only")


def _check_keys(block: dict, known: tuple[str, ...], where: str) -> None:
    """A misspelt key of the paper's numbers (``lower_is_beter``) would be read as absent, and the
    report would say something else than the file means: named instead."""
    import difflib

    unknown = sorted(set(block) - set(known))
    if unknown:
        close = difflib.get_close_matches(unknown[0], known, n=1)
        raise ConfigError(
            f"{where} has the key {unknown[0]!r}, which reports do not read"
            + (f" (did you mean {close[0]!r}?)" if close else "")
            + f"; its keys are {', '.join(known)}"
        )


@dataclass
class PaperRow:
    label: str
    match: dict[str, Any] | None  # None: reported only (a method this framework does not run)
    values: dict[str, dict[str, float | None]]  # column -> metric -> the paper's number (None: dash)
    note: str | None = None
    uncertain: str | None = None

    @property
    def reported_only(self) -> bool:
        return self.match is None

    def matches(self, cfg: DictConfig) -> bool:
        return self.match is not None and all(same_value(setting(cfg, k), v) for k, v in self.match.items())


def _check_values(paper: dict, where: str) -> None:
    """Each row's ``values``: columns of the table, metrics of the table (by the paper's name),
    and each value a number or null (a cell the paper leaves empty or prints as a dash)."""
    columns = [str(c) for c in paper.get("columns") or []]
    metrics = [str(m) for m in (paper.get("metrics") or {})]
    for r in paper.get("rows") or []:
        label = r.get("label")
        values = r.get("values") or {}
        if not isinstance(values, dict):
            raise ConfigError(
                f"{where} row {label!r}: values must map each column to its numbers, got {values!r}"
            )
        for column, numbers in values.items():
            if str(column) not in columns:
                hint = (
                    did_you_mean(column, columns, n=1, cutoff=0.6) or f" (its columns: {', '.join(columns)})"
                )
                raise ConfigError(
                    f"{where} row {label!r}: values name column {column!r}, not one of the table's{hint}"
                )
            if numbers is not None and not isinstance(numbers, dict):
                raise ConfigError(
                    f"{where} row {label!r}: values of {column} must map each metric to its number "
                    f"({', '.join(f'{m}: <number>' for m in metrics)}), got {numbers!r}"
                )
            for metric, value in (numbers or {}).items():
                if str(metric) not in metrics:
                    hint = did_you_mean(metric, metrics, n=1) or f" (its metrics: {', '.join(metrics)})"
                    raise ConfigError(
                        f"{where} row {label!r}: values of {column} name metric {metric!r}, not one of the "
                        f"table's{hint}"
                    )
                if value is not None and (
                    isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
                ):
                    raise ConfigError(
                        f"{where} row {label!r}: {column} {metric} is {value!r}, not a number; write the paper's "
                        "number, or null where it prints none (a dash)"
                    )


@dataclass
class PaperTable:
    """``columns`` are datasets (a run's column is its ``dataset.name``); ``metrics`` maps each of
    the paper's metric names to the ``metrics.json`` key compared with it."""

    name: str
    caption: str
    units: str
    columns: list[str]
    metrics: dict[str, str]
    rows: list[PaperRow]
    lower_is_better: bool = False
    notes: list[str] = field(default_factory=list)
    # Figures: the swept setting on the x axis (Figure 5: generator.num_prompts; lambda: aug.lam).
    x: str | None = None
    # A table of one's own runs (report.py without experiment=): no paper numbers, no experiment
    # file; its rows are the settings the runs were given (reporting/own.py).
    own: bool = False

    @classmethod
    def from_config(cls, cfg: DictConfig, experiment: str = "") -> PaperTable:
        paper = cfg.get("paper")
        if paper is None:
            raise ConfigError(
                f"experiment={experiment or cfg.get('experiment_name')} has no `paper:` block with the paper's "
                "numbers to report against; pick a table's experiment (experiments/table*.yaml, figure5, lambda)"
            )
        p = OmegaConf.to_container(paper, resolve=True)
        _check_keys(p, TABLE_KEYS, f"experiment={experiment or cfg.get('experiment_name')}: paper")
        for r in p.get("rows") or []:
            _check_keys(
                r,
                ROW_KEYS,
                f"experiment={experiment or cfg.get('experiment_name')}: paper row {r.get('label')!r}",
            )
        _check_values(p, f"experiment={experiment or cfg.get('experiment_name')}: paper")
        values_available = bool(p.get("values_available", True))
        printed = [
            (r.get("label"), column, metric)
            for r in p.get("rows") or []
            for column, numbers in (r.get("values") or {}).items()
            for metric, value in (numbers or {}).items()
            if value is not None
        ]
        if not values_available and printed:
            label, column, metric = printed[0]
            raise ConfigError(
                f"experiment={experiment or cfg.get('experiment_name')}: paper.values_available is false (the "
                f"paper prints no numbers), but row {label!r} gives {column} {metric}; set the value to null, "
                "or values_available to true"
            )
        notes = list(p.get("notes") or [])
        if not values_available:
            notes.append(
                "The paper prints no numbers for this (paper.values_available: false): its column is empty, "
                "and only this framework's numbers are shown."
            )
        rows = [
            PaperRow(
                label=str(r["label"]),
                match=None if r.get("reported_only") or "match" not in r else dict(r["match"]),
                values=r.get("values") or {},
                note=r.get("note"),
                uncertain=r.get("uncertain") if isinstance(r.get("uncertain"), str) else None,
            )
            for r in p.get("rows") or []
        ]
        return cls(
            name=str(p.get("table", experiment)),
            caption=str(p.get("caption", "")),
            units=str(p.get("units", "")),
            columns=list(p.get("columns") or []),
            metrics=dict(p.get("metrics") or {}),
            rows=rows,
            lower_is_better=bool(p.get("lower_is_better", False)),
            notes=notes,
            x=p.get("x"),
        )

    def row_of(self, cfg: DictConfig) -> PaperRow | None:
        """The one row whose ``match`` this run's configuration satisfies (None: no row); a run
        matching two rows is an error in the experiment file."""
        found = [row for row in self.rows if row.matches(cfg)]
        if len(found) > 1:
            raise ConfigError(
                f"the paper table {self.name}: a run matches rows {[r.label for r in found]}; each row's `match` "
                "must pick out different runs (add the setting that tells them apart)"
            )
        return found[0] if found else None
