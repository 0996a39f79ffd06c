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
from omegaconf import OmegaConf

from .paper import GROUP_KEYS, PaperRow, PaperTable, setting, used_setting
from .runs import Run
from .sweeps import given_settings, job_order, job_overrides
from .table import WHERE_FROM, compared_anywhere, launched_from, placed, reads_edits, reads_edits_of

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
    ("loss", "loss.name"),  # (metrics.json's loss where it has one: "auto" resolved)
    ("criterion", "loss.criterion"),  # (its criterion: ce, or the PreActResNet recipe's bce_softmax)
    # The pipeline that made the edits, said of the runs that read edits alone.
    ("edits made by generator", "generator.name"),
)
#: The RECIPE entries metrics.json records, by the name it records them under.
RECORDED = {"loss": "loss", "criterion": "loss_criterion"}


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
    #: The folder it was launched from (a relative path given to its jobs is relative to it).
    cwd: str | None = None


def launches(roots: list[Path]) -> list[Launch]:
    """The training sweeps launched in ``roots``, as their records hold them; a record that is not
    Hydra's, or a sweep of generate.py or figure4.py, is passed over (its runs are still found)."""
    out = []
    for root in roots:
        # (a folder above the sweeps: theirs too, as their runs are found)
        for record in sorted(Path(root).expanduser().rglob("multirun*.yaml")):
            try:
                saved = yaml.safe_load(record.read_text()) or {}
                task = [str(o) for o in saved["hydra"]["overrides"]["task"]]
                params = dict(saved["hydra"]["sweeper"].get("params") or {})
            except (OSError, UnicodeDecodeError, yaml.YAMLError, KeyError, TypeError, AttributeError):
                continue
            if saved.get("task_name", "train") != "train":
                continue
            dataset = saved.get("dataset")
            cwd = (saved["hydra"].get("runtime") or {}).get("cwd")
            out.append(
                Launch(
                    record,
                    task,
                    params,
                    saved.get("seed"),
                    dataset.get("name") if isinstance(dataset, dict) else None,
                    str(cwd) if isinstance(cwd, str) and cwd else None,
                )
            )
    return out


def _row_key(key: str) -> bool:
    """Whether a setting given to runs may tell rows apart: any compared setting, and where a
    run's images, starting weights, edits or fractals came from (``WHERE_FROM``: two image folders
    are two datasets of one name)."""
    return key not in ("seed", "dataset") and (compared_anywhere(key) or key in WHERE_FROM)


#: A setting a run's configuration does not have (``aug.alpha`` of ``aug=none``).
ABSENT = "<absent>"


def _text(value) -> str:
    """A setting's value as a row's label shows it (numbers by value: 0.10 and 1e-1 are 0.1)."""
    if value is None:
        return "null"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_text(v) for v in value) + "]"
    return str(value)


def _values_of(
    config, keys: list[str], groups: set[str], choices: dict, cwd: str | None = None
) -> dict[str, str]:
    """The values ``keys`` take in a run's (or a job's composed) configuration: a config group's
    option as ``choices`` (Hydra's record of the composition) gives it, else as its ``name`` says
    (``aug``, ``dataset``, ``model``), any other setting from the configuration as the run used it
    (a method's null by its dataset's defaults; where its images, weights, edits or fractals came
    from as the place named: a relative path from ``cwd``, the folder it was launched from);
    ``ABSENT`` where it has none."""
    from omegaconf import DictConfig, ListConfig, OmegaConf

    missing = object()
    out = {}
    for key in keys:
        if key in groups:
            chosen = choices.get(key)
            if chosen is None and key in GROUP_KEYS:
                chosen = setting(config, key)
            out[key] = ABSENT if chosen is None else str(chosen)
            continue
        value = OmegaConf.select(config, key, default=missing, throw_on_resolution_failure=False)
        if value is missing:
            out[key] = ABSENT
        elif isinstance(value, (DictConfig, ListConfig)):
            out[key] = _text(OmegaConf.to_container(value, resolve=True))
        elif key in WHERE_FROM:
            out[key] = _text(placed(value, cwd))
        else:  # (a method's setting left null: the value its dataset's defaults gave it)
            out[key] = _text(used_setting(config, key, value))
    return out


def own_table(
    runs: list[Run],
    roots: list[Path],
    jobs: list[dict[str, str]],
    groups: set[str],
    compose: Callable[[dict[str, str]], object | None],
) -> tuple[PaperTable, Callable[[Run], PaperRow | None], dict[tuple[str, str], list[int]], list[str]]:
    """The table of ``runs`` (found under ``roots``), with ``jobs`` the settings of each job their
    launches ran (``seed`` and ``dataset`` given). Rows are told apart by the settings given to the
    runs whose values (as the runs used them; a job without a run folder: its configuration,
    ``compose``d) differ between runs of one dataset; ``groups`` are the config groups' names.
    Returns the table, each run's row, the seeds expected per cell (the jobs' and every run's
    found), and the settings every run and job was given alike (``key=value``)."""
    from .table import MISSING, group_choice

    runs = sorted(runs, key=lambda r: (str(r.folder.parent), job_order(r.folder.name)))
    found = [(_placed_given(job_overrides(r.folder), launched_from(r)), r) for r in runs]
    every = jobs + [given for given, _ in found]
    keys: list[str] = []
    for given in every:
        keys += [k for k in given if k not in keys and _row_key(k)]
    # Runs with no record of the settings they were given (made through the API, not train.py):
    # the settings their configurations differ in tell them apart.
    # (compared with every run: one may differ from train.py's runs alone)
    if any(not (r.folder / ".hydra" / "overrides.yaml").is_file() for r in runs):
        keys += [k for k in _differing(runs) if k not in keys]
    given_keys = list(dict.fromkeys(k for given in every for k in given if k not in ("seed", "dataset")))
    shared = [
        f"{k}={every[0][k]}"
        for k in given_keys
        if all(k in given and given[k] == every[0][k] for given in every)
    ]

    def recorded(run: Run) -> dict:
        """The run's record of its config groups' options (``.hydra/hydra.yaml``), where it has one."""
        found = {g: group_choice(run, g) for g in keys if g in groups}
        return {g: c for g, c in found.items() if c is not MISSING}

    # A job of a launch takes the values of a run given the same settings (the same job, another
    # seed); one without such a run, those of its configuration composed.
    items: list[tuple[dict[str, str], object, object, Run | None]] = []
    by_settings: dict[tuple, tuple[dict[str, str], bool]] = {}
    unread: list[bool] = []  # (per item: whether it reads no edits)
    for given, run in found:
        values = _values_of(run.config, keys, groups, recorded(run), launched_from(run))
        # (a job's settings name its dataset, given or the launch's: the run's as well)
        no_edits = not reads_edits_of(run.config)
        by_settings.setdefault(
            _settings({"dataset": str(setting(run.config, "dataset")), **given}), (values, no_edits)
        )
        items.append((values, setting(run.config, "dataset"), setting(run.config, "seed"), run))
        unread.append(no_edits)
    for given in jobs:
        known = by_settings.get(_settings(given))
        if known is None:
            config = compose(given)
            if config is None:  # (cannot be composed here): the settings as given
                known = ({k: _text_of(given, k) for k in keys}, _reads_no_edits_as_given(given))
            else:
                choices = OmegaConf.select(config, "hydra.runtime.choices", default=None) or {}
                known = (_values_of(config, keys, groups, dict(choices)), not reads_edits_of(config))
            by_settings[_settings(given)] = known
        items.append((known[0], given.get("dataset"), given.get("seed"), None))
        unread.append(known[1])
    items = _unread_left_out(items, unread)
    # A setting is a row's when its values differ between runs of one dataset (one that differs
    # only between datasets, their image size say, is a column's: its rows stay one). A run without
    # it differs from one with it where both have the same option of the group that owns it (a
    # model.kwargs entry given to some runs of one model); not where their options differ (aug.alpha
    # given to some mixup runs, all of one value, tells them from no aug=none run).
    per_column: dict[object, list[dict[str, str]]] = {}
    for values, column, _, _ in items:
        per_column.setdefault(column, []).append(values)

    def differs(key: str, group: list[dict[str, str]]) -> bool:
        owner = key.partition(".")[0]
        by_option: dict[str, set[str]] = {}
        for v in group:
            by_option.setdefault(v.get(owner, ""), set()).add(v[key])
        present = {v[key] for v in group} - {ABSENT}
        return len(present) > 1 or any(len(found) > 1 for found in by_option.values())

    differ = [k for k in keys if any(differs(k, group) for group in per_column.values())]
    rows: dict[str, PaperRow] = {}

    def row_of(values: dict[str, str]) -> PaperRow:
        chosen = {k: values[k] for k in differ if values[k] != ABSENT}
        label = " ".join(f"{k}={v}" for k, v in chosen.items()) or (
            f"without {', '.join(differ)}" if differ else "all runs"
        )
        return rows.setdefault(label, PaperRow(label, chosen, {}))

    columns: list[str] = []
    expected: dict[tuple[str, str], list[int]] = {}
    placed: dict[int, PaperRow] = {}
    # Rows in the order of the launches' jobs, then of the run folders.
    for values, column, seed, run in items[len(found) :] + items[: len(found)]:
        row = row_of(values)
        if run is not None:
            placed[id(run)] = row
        if not isinstance(column, str):
            continue
        if column not in columns:
            columns.append(column)
        with suppress(TypeError, ValueError):  # (a seed that is not a number: train.py refuses it)
            expected.setdefault((row.label, column), []).append(int(seed))
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


def _unread(key: str) -> bool:
    """A setting of the generator: it changes nothing in a run that reads no edits."""
    return key == "generator" or key.startswith("generator.")


def _reads_no_edits_as_given(given: dict[str, str]) -> bool:
    """Whether a job that cannot be composed reads no edits, as far as its settings given say: a
    method other than DiffuseMix, or DiffuseMix's arm without edits (``aug.components=originals...``).
    A job given no method (its experiment's, or the default) may read them."""
    return "aug" in given and not reads_edits(given["aug"], given.get("aug.components"))


def _unread_left_out(items: list, unread: list[bool]) -> list:
    """``items`` (values, dataset, seed, run) with the generator's settings left out of the values
    of those that read no edits (``unread``): ``aug=none`` launched beside DiffuseMix with
    ``generator=ip2p_fast`` is one row ``aug=none``, not ``aug=none generator=ip2p``. Where that
    would put two runs (or jobs) of one seed and dataset that were launched with different
    generator settings into one row, the rows they would share keep those settings apart (each is
    a run of its own, and a cell averages seeds)."""
    reduced = [
        {k: (ABSENT if no_edits and _unread(k) else v) for k, v in values.items()}
        for (values, *_), no_edits in zip(items, unread)
    ]
    seen: dict[tuple, dict] = {}
    apart: set[tuple] = set()
    for (values, column, seed, _), less in zip(items, reduced):
        row = tuple(sorted(less.items()))
        first = seen.setdefault((row, str(column), str(seed)), values)
        if first != values:
            apart.add(row)
    return [
        (values if tuple(sorted(less.items())) in apart else less, *rest)
        for (values, *rest), less in zip(items, reduced)
    ]


def _differing(runs: list[Run]) -> list[str]:
    """The settings (that may tell rows apart) whose values differ between ``runs`` of one dataset,
    from their configurations: an option of a config group by its name (``aug``, ``model``, or
    ``optim.name`` for a group named in a ``name`` field), and a field of such an option only where
    it differs between runs of the same option (``aug.alpha`` between two mixup runs, not the
    ``aug.alpha`` that ``aug=none`` lacks); a setting some runs lack is compared between those that
    have it."""
    from .table import flat_settings

    if len(runs) < 2:
        return []
    flats = [flat_settings(r.config) for r in runs]
    names = {
        k.rpartition(".")[0] for flat in flats for k in flat if k.endswith(".name") and k.count(".") == 1
    }
    out = []
    for run, flat in zip(runs, flats):  # (a folder as the place it names)
        for key in WHERE_FROM:
            if key in flat:
                flat[key] = placed(flat[key], launched_from(run))
    for key in dict.fromkeys(k for flat in flats for k in flat):
        node = key.partition(".")[0]
        shown = next((g for g, name in GROUP_KEYS.items() if name == key), key)
        if not _row_key(shown) or key.startswith("dataset.name"):
            continue
        by: dict[tuple, set[str]] = {}
        for run, flat in zip(runs, flats):
            option = flat.get(f"{node}.name") if node in names and key != f"{node}.name" else None
            values = by.setdefault((str(setting(run.config, "dataset")), str(option)), set())
            if key in flat:  # (a setting a run lacks, older than it or not of its method: not a difference)
                values.add(_text(flat[key]))
        if any(len(values) > 1 for values in by.values()) and shown not in out:
            out.append(shown)
    return out


def _placed_given(given: dict[str, str], cwd: str | None) -> dict[str, str]:
    """Settings given to a job, a relative path among ``WHERE_FROM``'s joined to the folder the job
    was launched from (two launches' ``dataset.root=data`` from two folders name two folders)."""
    return {k: str(placed(v, cwd)) if k in WHERE_FROM else v for k, v in given.items()}


def _settings(given: dict[str, str]) -> tuple:
    return tuple(sorted((k, v) for k, v in given.items() if k != "seed"))


def _text_of(given: dict[str, str], key: str) -> str:
    """A setting as given on a command line, as a row shows a value (``0.10``: 0.1)."""
    if key not in given:
        return ABSENT
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        return _text(OverridesParser.create().parse_override(f"{key}={given[key]}").value())
    except Exception:  # (a value the parser refuses: as written)
        return given[key]


def jobs_of(launch: Launch, jobs: list[list[str]]) -> list[dict[str, str]]:
    """Each job of ``launch`` (its overrides, as its sweep expands them) as the settings it was
    given, its seed and dataset filled in from the launch's configuration where it gives none."""
    out = []
    for job in jobs:
        given = _placed_given(given_settings(job), launch.cwd)
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
    """What the finished runs trained with (model, epochs, image size, ...; the loss as metrics.json
    records it): a value they share said once, else each value with the columns (a dataset's own
    value) or the cells that used it. None without a finished run."""
    finished = [(cell.row.label, cell.column, r) for cell in filled.cells.values() for r in cell.finished]
    if not finished:
        return None
    parts = []
    for name, key in RECIPE:
        used: dict[str, list[tuple[str, str]]] = {}
        for label, column, run in finished:
            if key.startswith("generator.") and not reads_edits_of(run.config):
                continue
            recorded = (run.metrics or {}).get(RECORDED[name]) if name in RECORDED else None
            value = recorded if recorded is not None else setting(run.config, key)
            if key == "generator.name" and value is not None:
                value = _pipeline_said(run.config, value)
            cells = used.setdefault("not recorded" if value is None else str(value), [])
            if (label, column) not in cells:
                cells.append((label, column))
        if not used or list(used) == ["not recorded"]:  # (none reads edits; settings predating it)
            continue
        if len(used) == 1:
            parts.append(f"{name} {next(iter(used))}")
            continue
        by_column = all(
            len({v for v, cells in used.items() if (c in {col for _, col in cells})}) == 1
            for c in filled.table.columns
        )
        said = [
            f"{value} ({', '.join(dict.fromkeys(col for _, col in cells)) if by_column else '; '.join(f'{row} ({col})' for row, col in cells)})"
            for value, cells in used.items()
        ]
        parts.append(f"{name} " + " / ".join(said))
    return "Recipe of the finished runs: " + "; ".join(parts)


def _pipeline_said(config, name) -> str:
    """The generator a run's edits were made by: its name, its scheduler and steps; the tiny
    pipeline said to be random (its edits are no InstructPix2Pix edits)."""
    if name == "tiny":
        return "tiny (a small random pipeline: no real InstructPix2Pix edits)"
    scheduler, steps = setting(config, "generator.scheduler"), setting(config, "generator.steps")
    return (
        f"{name} ({scheduler}, {steps} steps)" if scheduler is not None and steps is not None else str(name)
    )


def reused_folders(
    launch: Launch, jobs: list[dict[str, str]], runs: list[Run]
) -> list[tuple[dict[str, str], Run, list[str]]]:
    """The jobs of ``launch`` (their settings, as ``jobs_of`` gives them) whose folder holds a run
    given other settings since (a job resumed alone to train further, ``trainer.max_epochs=2``): no
    run of the job's own settings is there, and a run in the launch's folder was given the job's
    values of the settings its jobs differ in (and its seed) with others beside them, in a folder
    of the job's number (``0_aug=none,seed=0``). Each such job with that run and the settings it
    was given otherwise (``key=value``, where things are as the places named)."""
    varying = {k for k in {k for given in jobs for k in given} if len({given.get(k) for given in jobs}) > 1}
    varying |= {"seed"}
    here = [r for r in runs if r.folder.parent.resolve() == launch.record.parent.resolve()]
    given_of = {id(r): _placed_given(job_overrides(r.folder), launched_from(r)) for r in here}

    def value(run: Run, key: str):
        given = given_of[id(run)]
        return (
            given[key]
            if key in given
            else (str(setting(run.config, key)) if key in ("seed", "dataset") else None)
        )

    def same(run: Run, job: dict[str, str]) -> bool:
        theirs = {k: v for k, v in given_of[id(run)].items() if k not in ("seed", "dataset")}
        return theirs == {k: v for k, v in job.items() if k not in ("seed", "dataset")} and all(
            value(run, k) == job.get(k) for k in ("seed", "dataset") if k in job
        )

    out = []
    for number, job in enumerate(jobs):
        if any(same(r, job) for r in here):
            continue
        # (its folder: the job's number, and the values its launch's jobs differ in)
        reused = [
            r
            for r in here
            if r.folder.name.partition("_")[0] == str(number)
            and all(value(r, k) == job.get(k) for k in varying)
        ]
        if len(reused) == 1:
            theirs = given_of[id(reused[0])]
            other = [
                f"{k}={theirs.get(k, '(not given)')}"
                for k in sorted(set(theirs) | set(job))
                if k not in ("seed", "dataset") and theirs.get(k) != job.get(k)
            ]
            out.append((job, reused[0], other))
    return out
