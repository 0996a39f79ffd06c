"""The entry point behind report.py: run folders read, the table filled (a paper table beside the
paper's numbers, or the runs' own), written as markdown, LaTeX, CSV and plots."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from omegaconf import OmegaConf

from .commands import hydra_quoted, script_command
from .compose import compose_raw
from .errors import ConfigError, user_errors_reported
from .preflight import check_arms, expand_sweep, preflight, sweep_jobs

#: ``experiment=`` given to report.py for the runs' own table (not an experiment file's).
OWN_TABLE = "none"

REPORT_USAGE = """usage: python report.py [experiment=<name>|none] runs=<folder>[,<folder>...] [out=<folder>] [<settings>]

Reads the run folders under runs= (sweep folders `train.py --multirun` wrote, or runs' folders) and
writes report.md, report.tex (booktabs), report.csv and plots in out= (default: <first runs
folder>/report), and prints the markdown.
With experiment=<name> (taken from the runs when every one was made by the same experiment file):
the table in the paper's layout beside the paper's numbers; sweep overrides given to the multirun
(for example seed=0,1) tell the report which runs to expect.
Without, or with experiment=none (runs of one's own sweep, one's own data): a row for each combination of the settings the
runs were given that differ between them (the seed aside), a column per dataset, mean +- std over
seeds; the jobs the sweep's launch ran (its multirun.yaml) are expected.
Other settings (aug.lam=0.1, seed=0,1) choose the runs reported; the others are counted, not used."""


def run_folders(value: str) -> list[Path]:
    """The folders of ``runs=<folder>[,<folder>...]``. A sweep job's folder has commas in its name
    (``0_aug=none,seed=0``): a value in quotes is one folder, and otherwise each comma-separated
    piece is joined with the pieces after it as long as that names an existing folder (the
    longest such name wins)."""
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return [Path(value[1:-1])]
    pieces = value.split(",")
    out, i = [], 0
    while i < len(pieces):
        end = next(
            (j for j in range(len(pieces), i + 1, -1) if Path(",".join(pieces[i:j])).expanduser().exists()),
            i + 1,
        )
        if ",".join(pieces[i:end]):
            out.append(Path(",".join(pieces[i:end])))
        i = end
    return out


def _parse_report_args(argv: list[str]) -> tuple[str, list[Path], Path | None, list[str]]:
    experiment, runs, out, extra = None, [], None, []
    for arg in argv:
        key, sep, value = arg.partition("=")
        if not sep:
            raise ConfigError(f"report.py: '{arg}' is not key=value\n{REPORT_USAGE}")
        if key == "experiment":
            # (none, None, null: no experiment file's table, the runs' own)
            experiment = OWN_TABLE if value.strip().lower() in (OWN_TABLE, "null") else value
        elif key == "runs":
            runs += run_folders(value)
        elif key == "out":
            if not value.strip():
                raise ConfigError(
                    "out= names no folder: give out=<folder>, or leave it out for the report's own folder "
                    "(<first runs folder>/report)"
                )
            out = Path(value)
        else:
            extra.append(arg)
    import dataclasses
    import difflib

    from .config import Config

    # report.py's own settings misspelt (output=, rnus=): said as such, not taken for a setting
    # that chooses runs (which no run has).
    settings = {f.name for f in dataclasses.fields(Config)}  # (experiment_name=x chooses runs)
    hints = [
        f"{arg.partition('=')[0]}=: did you mean {close[0]}=?"
        for arg in extra
        if arg.partition("=")[0] not in settings
        and (
            close := difflib.get_close_matches(
                arg.partition("=")[0], ["experiment", "runs", "out"], n=1, cutoff=0.6
            )
            or (["out"] if arg.partition("=")[0] in ("output", "outdir", "output_dir", "out_dir") else [])
        )
    ]
    if experiment == "" or not runs:
        hint = f" ({'; '.join(hints)})" if hints else ""
        raise ConfigError(
            f"report.py needs runs=<sweep folder> (and experiment=<name> for a paper's table){hint}\n{REPORT_USAGE}"
        )
    if hints:
        raise ConfigError(f"report.py {'; '.join(hints)}\n{REPORT_USAGE}")
    return experiment, runs, out, extra


def _run_selectors(extra: list[str], sweep_keys: set[str]) -> tuple[list[tuple[str, list, str]], list[str]]:
    """The settings given to report.py that the experiment file's sweep does not vary and that
    tell runs apart (not the seed): ``(key, values, as given)`` each (``aug.lam=0.1``: one value;
    ``aug.lam=0.1,0.3``: two); where a run's images, weights, edits or fractals came from
    (``WHERE_FROM``: ``dataset.root=<folder>``) choose runs too. Also, those given that choose no
    run, as given (``paths.data_dir=...``, ``trainer.devices=2``: pasted from a sweep's command,
    they change nothing trained), for the report to say so."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from .reporting.table import WHERE_FROM, compared_anywhere

    parser = OverridesParser.create()
    out, unused = [], []
    for override in parser.parse_overrides(extra):
        key = override.get_key_element().lstrip("+~")
        if key in sweep_keys or key == "seed":
            continue
        # (where things are, the launcher, what is measured after training: no run is chosen by them)
        if "/" in key or not (compared_anywhere(key) or key in WHERE_FROM):
            unused.append(override.input_line)
            continue
        texts = list(override.sweep_string_iterator()) if override.is_sweep_override() else None
        values = (
            [parser.parse_override(f"{key}={text}").value() for text in texts]
            if texts is not None
            else [override.value()]
        )
        out.append((key, values, override.input_line))
    return out, unused


def _chosen_runs(runs: list, selectors: list[tuple[str, list, str]], config_dir: str) -> tuple[list, list]:
    """``runs`` split into those whose settings take one of each selector's values, and the rest. A
    run without the setting (``aug.lam`` of an ``aug=none`` run) is not told apart by it: chosen. A
    config group's option (``trainer=gpu``) is read from the run's record of its choices
    (``.hydra/hydra.yaml``); a run without that record is chosen. A value of a setting that none
    of the runs with the setting takes is refused (it would report the runs without it alone)."""
    from .reporting.runs import ReportError
    from .reporting.table import MISSING, named_runs

    chosen, rest = [], []
    for run in runs:
        ok = all(
            _takes(_run_value(run, key, config_dir), key, values, config_dir) for key, values, _ in selectors
        )
        (chosen if ok else rest).append(run)
    for key, values, text in selectors:
        if (Path(config_dir) / key).is_dir():  # (a run without a record of its groups: not known)
            continue
        having = [r for r in runs if _run_value(r, key, config_dir) is not MISSING]
        if having and not any(
            _takes(_run_value(r, key, config_dir), key, values, config_dir) for r in having
        ):
            used = _in_order({_said(_run_value(r, key, config_dir)) for r in having})
            raise ReportError(
                f"report.py {text}: none of the {len(having)} runs with the setting {key} ran with "
                f"{'that value' if len(values) == 1 else 'those values'} (they ran with {key}={', '.join(used[:6])}"
                f"{', ...' if len(used) > 6 else ''}: {named_runs(having)}); give one of those, or leave it out"
            )
    return chosen, rest


def _takes(value, key: str, values: list, config_dir: str) -> bool:
    """Whether a run's (or a job's) ``value`` of setting ``key`` is one of ``values`` given to
    report.py: a config group's option by name, a number by value, a folder or file by the place
    it names; ``MISSING`` (a run without the setting, or without a record of its groups) is not
    told apart by it."""
    from .reporting.paper import same_value
    from .reporting.table import MISSING, WHERE_FROM, same_place

    if value is MISSING:
        return True
    if (Path(config_dir) / key).is_dir():
        return any(str(value) == _said(v) for v in values)
    if key in WHERE_FROM:
        return any(same_place(value, v) for v in values)
    return any(same_value(value, v) for v in values)


def _in_order(texts: set[str]) -> list[str]:
    """Values as said on a command line, numbers by value (seeds 2 before 10), then the rest."""

    def key(text: str):
        try:
            return (0, float(text), "")
        except ValueError:
            return (1, 0.0, text)

    return sorted(texts, key=key)


def _said(value) -> str:
    """A setting's value as it is written on a command line (null for None)."""
    return "null" if value is None else str(value)


def _run_value(run, key: str, config_dir: str):
    """A run's value of setting ``key``: a config group's option as the run recorded it
    (``.hydra/hydra.yaml``; without that record, the option's name in its configuration, for
    ``aug``, ``dataset`` and ``model``), else from its configuration, where its images, weights,
    edits or fractals came from as the place named (a relative path from the folder the run was
    launched from), a method's setting left null as its dataset's defaults resolved it; ``MISSING``
    where it has none."""
    from .reporting.paper import GROUP_KEYS, used_setting
    from .reporting.table import MISSING, WHERE_FROM, group_choice, where_from

    if (Path(config_dir) / key).is_dir():
        chosen = group_choice(run, key)
        if chosen is MISSING and key in GROUP_KEYS:  # (a run folder made without train.py)
            chosen = OmegaConf.select(run.config, GROUP_KEYS[key], default=MISSING)
        return chosen
    if key in WHERE_FROM:
        return where_from(run, key)
    value = OmegaConf.select(run.config, key, default=MISSING, throw_on_resolution_failure=False)
    # (a method's setting left null: the value its dataset's defaults gave it, as trained)
    return value if value is MISSING else used_setting(run.config, key, value)


def _compose(config_dir: str, overrides: list[str], hydra_config: bool = False):
    from hydra.errors import HydraException

    try:
        return compose_raw(config_dir, "config", overrides, hydra_config)
    except HydraException as exc:
        raise ConfigError(str(exc)) from None


def _generation_hours(filled) -> dict[tuple[str, str], float]:
    """Per cell of the table whose runs read edits: the hours generating the edits one of its runs
    reads took (its training images x its prompts, at the device-seconds per edit its store logged;
    a store filled for ten prompts charges a run of three prompts three tenths)."""
    from .generation.store import EditStore
    from .reporting.table import reads_edits_of

    hours: dict[tuple[str, str], float] = {}
    for key, cell in filled.cells.items():
        for run in cell.finished:
            images = (run.metrics or {}).get("train_images")
            if not reads_edits_of(run.config) or not isinstance(images, int):
                continue
            try:
                store = EditStore.from_config(run.config, key[1], split="train")
                per_edit = store.generation_seconds_per_edit()
            except Exception:  # a store that cannot be located or read from here adds no hours
                continue
            if per_edit is not None:
                hours[key] = per_edit * images * len(store.prompt_ids) / 3600
                break
    return hours


def build_report(argv: list[str], config_dir: str) -> dict:
    """The report of ``report.py``'s arguments: files written, and the filled table."""

    from .reporting.paper import PaperTable, setting
    from .reporting.table import fill

    experiment, roots, out, extra = _parse_report_args(argv)
    from .preflight import glob_written_out

    extra = [glob_written_out(arg, config_dir) for arg in extra]  # (aug=glob(*mix): its options)
    found_by = None
    if experiment == OWN_TABLE:
        return _own_report(_found_runs(roots), roots, out, extra, config_dir)
    if experiment is None:
        found = _found_runs(roots)
        experiment = _experiment_of(found, config_dir)
        if experiment is None:
            return _own_report(found, roots, out, extra, config_dir)
        found_by = (
            f"experiment={experiment}: every run under runs= was made by it (experiment={OWN_TABLE}: "
            "the runs' own table instead)"
        )
    # A misspelt name (the experiment, or an option of a swept group): one line with "did you mean"
    # (report.py's own choice, none, among the experiment files).
    files = sorted(p.stem for p in (Path(config_dir) / "experiment").glob("*.yaml"))
    if experiment not in files:
        from .errors import did_you_mean

        raise ConfigError(
            f"experiment={experiment}: no such experiment file in conf/experiment/"
            f"{did_you_mean(experiment, [*files, OWN_TABLE])} (choices: {', '.join(files)}; or "
            f"experiment={OWN_TABLE}: the runs' own table)"
        )
    preflight([f"experiment={experiment}", *extra], config_dir)
    check_arms([f"experiment={experiment}", *extra], config_dir)  # as train.py refuses the sweep
    base = _compose(config_dir, [f"experiment={experiment}"], hydra_config=True)
    table = PaperTable.from_config(base, experiment)
    if found_by is None:  # (a misspelt experiment= is said before the runs are looked for)
        found = _found_runs(roots)
    sweep_keys = set((base.get("hydra") or {}).get("sweeper", {}).get("params", {}) or {})
    # Settings the experiment file does not sweep (aug.lam=0.1 for a sweep of lambda over demo's
    # rows) choose the runs reported: one with another value is left out, and counted.
    selectors, unused = _run_selectors(extra, sweep_keys)
    runs, not_chosen = _chosen_runs(found, selectors, config_dir)

    def own_instead(datasets: list[str]) -> dict:
        # (experiment=table2 dataset=imagefolder: made by the experiment file, on data its table
        # has no column for)
        return _own_report(
            found,
            roots,
            out,
            extra,
            config_dir,
            found_by=(
                f"The runs' own table: every run under runs= was made by experiment={experiment}, but on "
                f"{', '.join(datasets)}, which its table has no column for (its columns: "
                f"{', '.join(map(str, table.columns))})"
            ),
        )

    datasets = sorted({str(setting(r.config, "dataset")) for r in runs or found})
    if found_by and not set(datasets) & set(map(str, table.columns)):
        return own_instead(datasets)
    mine = [r for r in runs if setting(r.config, "experiment_name") == experiment]
    if mine and len(mine) == len(runs) and not set(datasets) & set(map(str, table.columns)):
        # (experiment=lambda given runs of it on one's own image folder: an all-missing table and
        # an empty plot, exit 0, hid it)
        from .reporting.runs import ReportError

        given = ",".join(str(r) for r in roots)
        raise ReportError(
            f"report.py experiment={experiment}: "
            + (
                f"the {len(runs)} runs under runs={given} trained"
                if len(runs) > 1
                else f"the run under runs={given} trained"
            )
            + " on "
            f"{', '.join(datasets)}, which {table.name} has no column for (its columns: "
            f"{', '.join(map(str, table.columns))}), so no run would be reported. Report "
            + (
                "them in their own table (a row per setting they differ in)"
                if len(runs) > 1
                else "it in its own table"
            )
            + f": {script_command('report.py')} experiment={OWN_TABLE} runs={given}"
            + (f" out={out}" if out is not None else "")
        )
    try:
        jobs = sweep_jobs([f"experiment={experiment}", *extra], config_dir)
    except Exception as exc:
        raise ConfigError(
            f"report.py: the sweep of experiment={experiment} {' '.join(extra)}: {exc}"
        ) from None
    expected: dict[tuple[str, str], list[int]] = {}
    references = {}
    composed: dict[tuple, tuple] = {}

    def cell_of(job: list[str]) -> tuple:
        # The experiment file's own settings for this job: its sweep keys, nothing else given.
        own = [o for o in job if o.split("=", 1)[0].lstrip("+~") in sweep_keys | {"experiment"}]
        key = tuple(sorted(o for o in own if not o.startswith("seed=")))
        if key not in composed:
            cfg = _compose(config_dir, [f"experiment={experiment}", *key])
            row = table.row_of(cfg)
            composed[key] = (row, setting(cfg, "dataset"), cfg)
        return composed[key]

    sweep_runs = None
    if extra:
        # A report narrowed to some of the sweep (dataset=cifar100) still compares the runs found
        # in its other cells with the experiment file's settings there (they are shown too), and
        # says how many runs the whole sweep makes.
        sweep_runs = 0
        for job in sweep_jobs([f"experiment={experiment}"], config_dir):
            row, column, cfg = cell_of(job)
            if row is not None and column in table.columns:
                references[(row.label, column)] = cfg
                sweep_runs += 1
    for job in jobs:
        row, column, cfg = cell_of(job)
        if row is None or column not in table.columns:
            continue
        seed = next((o.split("=", 1)[1] for o in job if o.startswith("seed=")), cfg.seed)
        try:
            seed = int(seed)
        except (TypeError, ValueError):
            raise ConfigError(f"seed={seed}: a seed is a whole number (seed=0,1,2)") from None
        expected.setdefault((row.label, column), []).append(seed)
        references[(row.label, column)] = cfg
    outside = sorted({str(column) for _, column, _ in composed.values()} - set(map(str, table.columns)))
    if jobs and not expected and outside and found_by:
        return own_instead(outside)
    if jobs and not expected and outside:
        from .reporting.runs import ReportError

        raise ReportError(
            f"report.py experiment={experiment} {' '.join(extra)}: the sweep runs on {', '.join(outside)}, which "
            f"{table.name} has no column for (its columns: {', '.join(map(str, table.columns))}), so no run "
            f"would be reported. Runs on your own data are reported in their own table (report.py experiment={OWN_TABLE} "
            f"runs=<sweep folder>: a row per setting the runs differ in), or report {', '.join(map(str, table.columns))}'s runs"
        )
    if selectors and not_chosen and not runs:
        _none_chosen(selectors, not_chosen, config_dir)
    filled = fill(table, runs, expected, references, experiment=experiment)
    params = dict((base.get("hydra") or {}).get("sweeper", {}).get("params", {}) or {})
    # (only where no swept value is given: one that chooses runs, or nothing, leaves it to be said)
    swept_given = any(o.partition("=")[0].lstrip("+~") in sweep_keys for o in extra)
    hint = None if swept_given else _launched_narrower(roots, params, experiment)
    filled.hints = [hint] if hint else []
    filled.narrowed_by, filled.sweep_runs = list(extra), sweep_runs
    filled.not_chosen, filled.chosen_by = not_chosen, [text for _, _, text in selectors]
    filled.choosing_none = unused
    others = [r for r in filled.unmatched if filled._made_by_another(r)]
    kept = f" out={out}" if out is not None else ""  # (the advice keeps where the report goes)
    if others and len(others) == len(runs):
        # Every run given was made by other experiment files: a report of none of them, as an empty
        # table with exit code 0, hid the mistaken experiment=.
        from .reporting.runs import ReportError

        names = sorted({str(setting(r.config, "experiment_name")) for r in others})
        given = ",".join(str(r) for r in roots)
        raise ReportError(
            f"report.py experiment={experiment}: none of the {len(runs)} run folders under runs={given} was made "
            f"by it: they were made by experiment={', '.join(names)}. Report them with "
            + " or ".join(
                f"{script_command('report.py')} experiment={name} runs={given}{kept}" for name in names
            )
        )
    own = [r for r in filled.unmatched if setting(r.config, "experiment_name") is None]
    if runs and len(own) == len(runs):
        # Every run given is one's own (no experiment file): none is this table's, and an empty
        # table with exit code 0 hid the mistaken experiment=.
        from .reporting.runs import ReportError

        given = ",".join(str(r) for r in roots)
        raise ReportError(
            f"report.py experiment={experiment}: none of the {len(runs)} run folders under runs={given} was made "
            f"by it, nor by any experiment file (train.py experiment=<name>): report them in their own table, "
            f"{script_command('report.py')} experiment={OWN_TABLE} runs={given}{kept}"
        )
    if runs and len(others) + len(own) == len(runs):
        # Runs of other experiment files and one's own, none of this one: an empty table with exit
        # code 0 hid the mistake as well. (Runs of this experiment that no cell takes are its
        # report's: its notes say why each is not used.)
        from .reporting.runs import ReportError

        given = ",".join(str(r) for r in roots)
        names = sorted({str(setting(r.config, "experiment_name")) for r in others})
        said = f"{len(others)} {'was' if len(others) == 1 else 'were'} made by experiment={', '.join(names)}"
        commands = [f"{script_command('report.py')} experiment={name} runs={given}{kept}" for name in names]
        raise ReportError(
            f"report.py experiment={experiment}: none of the {len(runs)} run folders under runs={given} was made "
            f"by it, so no number would be reported: {said}, {len(own)} by no experiment file. Report "
            f"each experiment's with {' or '.join(commands)} (the others given are noted there), or every run "
            f"in a table of their own with {script_command('report.py')} experiment={OWN_TABLE} runs={given}{kept}"
        )
    return _write_report(filled, roots, out, found_by)


def _launched_narrower(roots: list[Path], params: dict, experiment: str) -> str | None:
    """Where every sweep under ``runs=`` was launched with the same other values of settings the
    experiment file sweeps (``params``: ``dataset=flowers102``, as Hydra's multirun.yaml records),
    a report not given them expects the whole sweep (the other columns counted missing): the line
    that says how to expect only what was launched. None otherwise."""
    from .reporting.own import launches

    def narrows(override: str) -> bool:  # (a value the experiment file does not sweep)
        key, _, value = override.partition("=")
        key = key.lstrip("+~")
        return key in params and "".join(value.split()) != "".join(str(params[key]).split())

    given = set()
    for launch in launches(roots):
        if f"experiment={experiment}" not in launch.task:
            return None  # (a sweep of another experiment, or none: not this table's launch)
        given.add(tuple(sorted(o for o in launch.task if narrows(o))))
    if len(given) != 1 or not next(iter(given)):
        return None
    narrowed = " ".join(next(iter(given)))
    return (
        f"The sweep under runs= was launched with {narrowed} (its multirun.yaml), and this report expects "
        f"the experiment file's whole sweep: give {narrowed} to report.py too to expect only the runs "
        "launched"
    )


def _found_runs(roots: list[Path]) -> list:
    """The run folders under ``runs=``: none is an error saying what a run folder is."""
    from .reporting.runs import ReportError, find_runs

    files = [r for r in roots if r.expanduser().is_file()]
    if files:
        raise ReportError(
            f"runs={files[0]} is a file; runs= takes folders: the sweep folder(s) that `python train.py "
            "--multirun ...` wrote, or a run's folder (the one holding its config_resolved.yaml)"
        )
    runs = find_runs(roots)
    sweeps = [r for r in roots if (r / "multirun.yaml").is_file()]
    if not runs and sweeps:  # a sweep launched whose jobs have made no folder yet
        raise ReportError(
            f"runs={','.join(str(r) for r in sweeps)}: a sweep's folder (its multirun.yaml) with no job's run "
            "folder yet: its jobs have not started, or were refused before making one (the sweep's log says "
            "which); nothing to report until its first job has run"
        )
    if not runs:
        raise ReportError(
            f"runs={','.join(str(r) for r in roots)}: no run folders under it (a run folder holds "
            "config_resolved.yaml or .hydra/config.yaml); give the sweep folder(s) that "
            "`python train.py --multirun ...` wrote (by default outputs/multirun/train/<date>_<time>, "
            "or its hydra.sweep.dir), or a run's folder"
        )
    return runs


def _experiment_of(runs: list, config_dir: str) -> str | None:
    """The experiment file every one of ``runs`` was made by (``experiment_name``), when there is
    one and it is still in conf/experiment/: its table is the report. None: the runs' own table."""
    from .reporting.paper import setting

    names = {setting(r.config, "experiment_name") for r in runs}
    if len(names) != 1 or None in names:
        return None
    name = str(next(iter(names)))
    return name if (Path(config_dir) / "experiment" / f"{name}.yaml").is_file() else None


def _own_report(
    runs: list,
    roots: list[Path],
    out: Path | None,
    extra: list[str],
    config_dir: str,
    found_by: str | None = None,
) -> dict:
    """report.py without experiment= (or experiment=none): the table of ``runs``, the run folders
    found under ``roots`` (reporting/own.py)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    from .reporting.own import jobs_of, launches, own_table, reused_folders
    from .reporting.paper import setting, used_setting
    from .reporting.table import MISSING, fill

    parser = OverridesParser.create()
    for given in extra:  # one that Hydra's grammar cannot read: named, with the form it takes
        try:
            parser.parse_overrides([given])
        except HydraException as exc:
            reason = re.split(r" expecting | See https", " ".join(str(exc).split()))[0]
            raise ConfigError(
                f"report.py {given}: not a setting Hydra's override grammar reads ({reason}); give key=value, or "
                "several values as key=a,b (a value holding commas, brackets or quotes in quotes: "
                f"{hydra_quoted(given.partition('=')[0], given.partition('=')[2])})"
            ) from None
    parsed = parser.parse_overrides(extra)
    for override in parsed:
        if override.is_sweep_override() and not override.is_discrete_sweep():
            raise ConfigError(
                f"report.py {override.input_line}: give the values that choose the runs ({override.get_key_element()}=a,b "
                f"or range(start,stop)), not an interval"
            )
        try:
            list(override.sweep_string_iterator()) if override.is_sweep_override() else override.value()
        except HydraException as exc:
            raise ConfigError(f"report.py {override.input_line}: {' '.join(str(exc).split())}") from None
    seeds = None
    for override in parsed:
        if override.get_key_element().lstrip("+~") == "seed":
            texts = (
                list(override.sweep_string_iterator()) if override.is_sweep_override() else [override.value()]
            )
            if not all(isinstance(t, (str, int)) and str(t).strip().lstrip("-").isdigit() for t in texts):
                raise ConfigError(
                    f"{override.input_line}: seeds are whole numbers, given as seed=0 or seed=0,1,2 (or seed=range(0,3))"
                )
            seeds = {str(t).strip() for t in texts}
    selectors, unused = _run_selectors(extra, set())
    if unused:  # (a misspelt key among them: "did you mean", as a paper table's report says)
        preflight(unused, config_dir)
    _check_selectors_known(runs, selectors, config_dir)
    runs, not_chosen = _chosen_runs(runs, selectors, config_dir)
    if selectors and not_chosen and not runs:
        _none_chosen(selectors, not_chosen, config_dir)
    if seeds is not None:
        not_chosen += [r for r in runs if str(setting(r.config, "seed")) not in seeds]
        runs = [r for r in runs if str(setting(r.config, "seed")) in seeds]
        if not runs:
            _none_chosen(
                [*selectors, ("seed", [], f"seed={','.join(sorted(seeds, key=int))}")], not_chosen, config_dir
            )

    composed: dict[tuple, object] = {}

    def compose(job: list[str]):
        """A job's configuration (Hydra's choices included), once per settings; None where it
        cannot be composed here (an experiment file since removed)."""
        settings = tuple(o for o in job if not o.startswith("seed="))
        if settings not in composed:
            try:
                composed[settings] = _compose(config_dir, list(settings), hydra_config=True)
            except Exception:
                composed[settings] = None
        return composed[settings]

    def job_value(given: dict[str, str], job: list[str], key: str):
        """A job's value of ``key``: as given, else as it would run (its configuration composed;
        a method's setting left null as its dataset's defaults resolve it)."""
        value = parser.parse_override(f"{key}={given[key]}").value() if key in given else MISSING
        if value is not MISSING and value is not None:
            return value
        cfg = compose(job)
        if cfg is None:
            return value
        if (Path(config_dir) / key).is_dir():
            return OmegaConf.select(cfg, f"hydra.runtime.choices.{key}", default=MISSING)
        value = OmegaConf.select(cfg, key, default=MISSING, throw_on_resolution_failure=False)
        return value if value is MISSING else used_setting(cfg, key, value)

    def job_chosen(given: dict[str, str], job: list[str]) -> bool:
        if seeds is not None and given.get("seed") not in seeds:
            return False
        return all(
            _takes(job_value(given, job, key), key, values, config_dir) for key, values, _ in selectors
        )

    jobs, raw, reused = [], {}, []
    for launch in launches(roots):
        try:
            expanded = expand_sweep(launch.params, launch.task, config_dir)
        except Exception:  # a record this version cannot expand: its runs are still counted as found
            continue
        settings = jobs_of(launch, expanded)
        # (a job resumed alone with other settings: its folder's run is reported in its own row)
        again = {
            id(given): (given, run, other) for given, run, other in reused_folders(launch, settings, runs)
        }
        for given, job in zip(settings, expanded):
            if id(given) in again:
                reused.append(again[id(given)])
                continue
            if job_chosen(given, job):
                jobs.append(given)
                raw[id(given)] = job
    groups = {p.name for p in Path(config_dir).iterdir() if p.is_dir()}
    table, row_of, expected, shared = own_table(
        runs, roots, jobs, groups, lambda given: compose(raw[id(given)])
    )
    if shared:
        table.notes.append("Given to every run: " + " ".join(shared))
    said = set()  # (a folder two launches both ran as a job: said once, with the first's settings)
    for given, run, differ in reused:
        if run.folder in said:
            continue
        said.add(run.folder)
        table.notes.append(
            f"{run.folder} was a job of its sweep's launch ({' '.join(f'{k}={v}' for k, v in given.items())}) and "
            f"was trained again there with other settings ({' '.join(differ)}): the job is not expected, its "
            "folder's run is in the row of its settings"
        )
    filled = fill(table, runs, expected, row_of=row_of)
    filled.not_chosen, filled.choosing_none = not_chosen, unused
    filled.chosen_by = [text for _, _, text in selectors] + (
        [f"seed={','.join(sorted(seeds, key=int))}"] if seeds else []
    )
    return _write_report(filled, roots, out, found_by)


def _check_selectors_known(runs: list, selectors: list, config_dir: str) -> None:
    """A setting given to report.py that no run has (a misspelt key) would choose every run: refused."""
    import difflib

    from .reporting.runs import ReportError
    from .reporting.table import MISSING, flat_settings

    for key, _, text in selectors:
        # (a run's null value is a value; a group's option not recorded is not)
        absent = (MISSING, None) if (Path(config_dir) / key).is_dir() else (MISSING,)
        if all(any(_run_value(r, key, config_dir) is a for a in absent) for r in runs):
            keys = sorted(
                {k for r in runs for k in flat_settings(r.config)}
                | {p.name for p in Path(config_dir).iterdir()}
            )
            close = difflib.get_close_matches(key, keys, n=2, cutoff=0.6)
            raise ReportError(
                f"report.py {text}: none of the {len(runs)} runs given has the setting {key}"
                + (f"; did you mean {' or '.join(close)}?" if close else "")
                + " (a setting given to report.py chooses the runs that ran with it)"
            )


def _none_chosen(selectors: list, not_chosen: list, config_dir: str) -> None:
    """No run took the settings given to report.py: refused, with the values the runs took."""
    from .reporting.runs import ReportError
    from .reporting.table import MISSING, named_runs

    took = []
    for key, _, _ in selectors:
        values = _in_order(
            {_said(v) for r in not_chosen if (v := _run_value(r, key, config_dir)) is not MISSING}
        )
        if values:
            took.append(f"{key}={','.join(values[:6])}{',...' if len(values) > 6 else ''}")
    raise ReportError(
        f"report.py {' '.join(text for _, _, text in selectors)}: none of the {len(not_chosen)} run folders "
        f"given ran with {'that setting' if len(selectors) == 1 else 'those settings'} "
        f"({named_runs(not_chosen)}{'; they ran with ' + ' '.join(took) if took else ''}); leave it out to "
        "report them, or give the runs that did"
    )


def _write_report(filled, roots: list[Path], out: Path | None, found_by: str | None = None) -> dict:
    """report.md, report.tex, report.csv and the plots of ``filled`` in ``out`` (default:
    ``<first runs folder>/report``)."""
    from .reporting import formats, plots

    table = filled.table
    out = (out or Path(roots[0]) / "report").expanduser()
    _make_report_folder(out)
    figures = _figure4_sources(filled)
    filled.hints += [
        f"figure4_{column}.png: Figure 4's grid as {run.folder} drew it"
        + (f" ({said}; no run of the full method has one)" if (said := _arm_of(run)) else "")
        for column, run in figures.items()
    ]
    written = {
        "markdown": out / "report.md",
        "latex": out / "report.tex",
        "csv": out / "report.csv",
    }
    written["markdown"].write_text(formats.markdown(filled))
    written["latex"].write_text(formats.latex(filled))
    written["csv"].write_text(formats.csv_text(filled))
    # The figures an earlier report wrote here are not left to pass for this one's.
    names = [f"{table.name}.png", "accuracy_vs_compute.png", *(f"figure4_{c}.png" for c in table.columns)]
    for stale in (out / name for name in names):
        if stale.is_file() and not stale.is_symlink():
            stale.unlink()
    curve = plots.curve(filled, out / f"{table.name}.png")
    if curve is not None:
        written["curve"] = curve
    compute = plots.accuracy_vs_compute(filled, out / "accuracy_vs_compute.png", _generation_hours(filled))
    if compute is not None:
        written["compute"] = compute
    for column, run in figures.items():
        target = out / f"figure4_{column}.png"
        shutil.copyfile(run.folder / "figure4.png", target)
        written[f"figure4_{column}"] = target
    return {"files": written, "filled": filled, "found_by": found_by}


def _figure4_sources(filled) -> dict:
    """Per column, the finished run whose ``figure4.png`` the report copies: one of the full method
    (DiffuseMix with its default ``aug.components``) where one has it, else the first that has one
    (an ablation arm's grid, said as such: Table 7's edits-only arm draws no hybrid)."""
    found: dict = {}
    for (_, column), cell in filled.cells.items():
        for run in cell.finished:
            if not (run.folder / "figure4.png").is_file():
                continue
            if column not in found or (_arm_of(found[column]) and not _arm_of(run)):
                found[column] = run
    return found


def _arm_of(run) -> str | None:
    """``aug.components=edits``: the ablation arm a DiffuseMix run's Figure 4 grid was drawn for;
    None for the full method (the default components)."""
    import dataclasses

    from .config import DiffuseMixConfig
    from .reporting.paper import setting

    components = setting(run.config, "aug.components")
    full = next(f.default for f in dataclasses.fields(DiffuseMixConfig) if f.name == "components")
    if setting(run.config, "aug") != "diffusemix" or components in (None, full):
        return None
    return f"aug.components={components}"


def _make_report_folder(out: Path) -> None:
    """``out=``: the folder report.md, report.tex, report.csv and the plots go to."""
    from .reporting.runs import ReportError

    usage = "out= is the folder the report's files (report.md, report.tex, report.csv, plots) go to"
    if out.suffix.lower() in (".md", ".tex", ".csv", ".png") and not out.is_dir():
        raise ReportError(f"out={out}: {usage}, not a file name; give a folder (out={out.with_suffix('')})")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ReportError(f"out={out} is a file; {usage}: give a folder's name") from None
    except OSError as exc:
        raise ReportError(
            f"out={out}: the folder cannot be made ({exc.strerror}); {usage}: give one you may write to"
        ) from None
    from .files import folder_problem

    problem = folder_problem(out)
    if problem:
        raise ReportError(f"out={out}: {problem}; {usage}: give one you may write to")


def run_report(argv: list[str], config_dir: str) -> None:
    """report.py's entry: prints the markdown table and the files written; user errors end with a
    message, not a traceback."""
    if any(a in ("-h", "--help") for a in argv):
        print(REPORT_USAGE)
        return
    from .config import register_configs

    with user_errors_reported():
        register_configs()
        result = build_report(argv, config_dir)
    if result.get("found_by"):
        print(result["found_by"], flush=True)
    print(result["files"]["markdown"].read_text())
    for kind, path in result["files"].items():
        print(f"{kind}: {path}")
