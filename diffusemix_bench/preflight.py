"""The command line of train.py, generate.py, figure4.py and evaluate.py checked and expanded before
Hydra runs it: sweeps listed (``--multirun --cfg job``), globs written out, each job's settings,
data, edits, starting weights and SLURM resources checked, so a launch that cannot run stops at once
with one message (the entry points themselves: cli)."""

from __future__ import annotations

import re
import shlex
import sys
from collections.abc import Callable
from contextlib import contextmanager, suppress
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from .commands import hydra_quoted, script_command
from .compose import compose_raw, config_groups
from .config import check_protocol_optimiser, no_such_setting, validate_config
from .errors import ConfigError, did_you_mean, user_errors_reported
from .slurm import check_slurm, check_slurm_tasks

LISTING_FLAGS = {"--multirun", "-m"}
CFG_FLAGS = {"--cfg", "-c"}


def before_hydra(config_dir: str, config_name: str = "config") -> bool:
    """An entry script's start (train.py, generate.py, figure4.py), before Hydra reads
    ``sys.argv``: ``glob()`` sweeps written out (expand_globs), generate.py's experiment sweep of
    training settings left out (generation_sweep), then ``--multirun ... --cfg job`` listed
    (False: nothing to run), else the command line checked (True: run it)."""
    with user_errors_reported():
        check_sweeper_params(sys.argv[1:])
        check_group_names(sys.argv[1:], config_dir)
    sys.argv[1:] = multirun_flag_first(expand_globs(sys.argv[1:], config_dir))
    if config_name == "generate":  # a training sweep's methods and seeds make the same edits
        sys.argv[1:] = generation_sweep(sys.argv[1:], config_dir)
    if sweep_listing_requested(sys.argv[1:]):  # Hydra itself refuses --multirun with --cfg
        list_sweep(sys.argv[1:], config_dir, config_name)
        return False
    check_command_line(sys.argv[1:], config_dir, config_name)
    return True


def check_sweeper_params(argv: list[str]) -> None:
    """``hydra.sweeper.params.<key>=...`` on the command line: the sweeper's params are where an
    experiment file lists its sweep; given here, Hydra stopped with a traceback on a single run and
    a sweep read ``7,8`` as two jobs of the sweeper's setting, running the seeds it had. The
    setting itself is swept instead, which replaces the experiment's values of it."""
    for arg in argv:
        key, eq, value = arg.lstrip("+~").partition("=")
        if not eq or not (key == "hydra.sweeper.params" or key.startswith("hydra.sweeper.params.")):
            continue
        name = key.removeprefix("hydra.sweeper.params").lstrip(".")
        swept = f"{name}={value.strip(chr(34) + chr(39))}" if name else "<setting>=<a>,<b>"
        raise ConfigError(
            f"{arg}: hydra.sweeper.params is where an experiment file lists its sweep; on the command line, "
            f"sweep the setting itself with --multirun ({swept}), which replaces the experiment's values of it"
        )


#: Config groups whose option is chosen by the group (``optim=adamw``), its ``name`` with it: their
#: ``name`` given alone (``optim.name=adamw``) kept the other option's settings (SGD's lr 0.1).
NAMED_BY_GROUP = {
    "optim": "optim=sgd's learning rate and weight decay",
    "sched": "sched=multistep's milestones",
}


def check_group_names(argv: list[str], config_dir: str) -> None:
    """``optim.name=<x>`` or ``sched.name=<x>`` on the command line: the name changes alone, and the
    settings of the option chosen (the default's, or a protocol's) stay, so Adam trained with
    SGD's learning rate and weight decay. Refused with the group's option that sets both."""
    for arg in argv:
        key, eq, value = arg.lstrip("+~").partition("=")
        group = key.removesuffix(".name")
        if not eq or key == group or group not in NAMED_BY_GROUP:
            continue
        options = sorted(p.stem for p in (Path(config_dir) / group).glob("*.yaml"))
        raise ConfigError(
            f"{arg}: {group}.name changes the name alone and keeps the settings of the {group} option chosen "
            f"({NAMED_BY_GROUP[group]}, say); choose the option, which sets them too: "
            + (f"{group}={value}" if value in options else f"{group}=<{'|'.join(options)}>")
        )


def multirun_flag_first(argv: list[str]) -> list[str]:
    """``--multirun`` (``-m``) moved before the overrides: Hydra's parser takes the overrides as one
    run of words, and ``train.py dataset=x --multirun aug=a,b`` stopped with its usage ("unrecognized
    arguments"), though ``--cfg job`` listed the same sweep. (No flag of Hydra's takes -m as its
    value.)"""
    flags = [a for a in argv if a in ("--multirun", "-m")]
    return [*flags[:1], *(a for a in argv if a not in ("--multirun", "-m"))] if flags else argv


def sweep_listing_requested(argv: list[str]) -> bool:
    """``--multirun`` with ``--cfg``: Hydra refuses the pair; this framework lists the sweep's runs."""
    return bool(LISTING_FLAGS & set(argv)) and any(a in CFG_FLAGS or a.startswith("--cfg=") for a in argv)


#: What an edit store depends on: a generation sweep keeps an experiment's sweep of these only.
STORE_KEYS = ("dataset", "generator", "paths")


def generation_sweep(argv: list[str], config_dir: str) -> list[str]:
    """``generate.py --multirun experiment=<name>``: the experiment's sweep crosses the datasets
    with its training settings (methods, arms, seeds: 81 jobs for Table 5), which make the same
    edits; ``argv`` with each of those given one value (a setting on the command line replaces
    the experiment's sweep of it), said in one line, so one job generates each store. A sweep
    given on the command line is kept."""
    if not any(a in ("-m", "--multirun") for a in argv):
        return argv
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        # The overrides (not flags, nor a flag's value: --cfg job).
        overrides = [a for a in argv if not a.startswith("-") and ("=" in a or a.startswith("~"))]
        given = OverridesParser.create().parse_overrides(overrides)
        fixed = [o.input_line for o in given if not o.is_sweep_override()]
        params = compose_raw(config_dir, "generate", fixed, hydra_config=True).hydra.sweeper.params or {}
        parser = OverridesParser.create()
        swept = {str(k).lstrip("+"): parser.parse_overrides([f"{k}={v}"])[0] for k, v in params.items()}
    except Exception:  # the checks that follow say what is wrong with the command line
        return argv
    mine = {o.key_or_group.lstrip("+~") for o in given}

    def same_edits(key: str) -> bool:  # generator.num_prompts picks prompts of one store: all of them once
        return key.split(".", 1)[0] not in STORE_KEYS or key == "generator.num_prompts"

    pinned = {}
    for key, override in swept.items():
        if not same_edits(key) or key in mine or not override.is_sweep_override():
            continue  # a store's setting, the command line's own, or one value already
        # One value: all the prompts (num_prompts=null), else the first of the sweep's values whose
        # runs read the edits (a job said to run aug=none, or Table 7's arm of originals alone, read
        # as making none), else the sweep's first.
        values = [str(v) for v in override.sweep_string_iterator()]
        if key == "generator.num_prompts":
            pinned[key] = "null"
        elif key.split(".")[0] in ("aug", "arm"):
            pinned[key] = next(
                (v for v in values if _reads_edits(config_dir, [*fixed, f"{key}={v}"])), values[0]
            )
        else:
            pinned[key] = values[0]
    # The command line's own sweep of generator.num_prompts: its values take the first k prompts of
    # one store, so the largest makes them all (its jobs would write that store one after another,
    # or at once on a cluster).
    counts = [
        o for o in given if o.key_or_group.lstrip("+") == "generator.num_prompts" and o.is_sweep_override()
    ]
    largest = None
    try:
        values = [str(v) for v in counts[0].sweep_string_iterator()] if counts else []
    except Exception:  # interval() and the like: not a list of counts, which the checks say
        values = []
    numbers = [int(v) for v in values if v.isdigit()]
    # Counts of 1 or more, or null (all): else the checks say what is wrong with the sweep.
    if values and all((v.isdigit() and int(v) >= 1) or v in ("null", "None") for v in values):
        largest = "null" if len(numbers) < len(values) else str(max(numbers))
    if not pinned and largest is None:
        return argv
    said = []
    if pinned:
        said.append(
            f"the experiment's sweep of {', '.join(pinned)} is left out (the same edits for every value"
            + ("; all the prompts are made" if "generator.num_prompts" in pinned else "")
            + f"): one job per store, with {' '.join(f'{k}={v}' for k, v in pinned.items())}"
        )
    if largest is not None:
        said.append(
            f"{counts[0].input_line} is one job (each value takes the first prompts of one store): "
            f"generator.num_prompts={largest} makes those of every value, once"
        )
        argv = [a for a in argv if a != counts[0].input_line]
    print(f"generate.py: {'; '.join(said)}", flush=True)
    return [
        *argv,
        *(f"{key}={value}" for key, value in pinned.items()),
        *([f"generator.num_prompts={largest}"] if largest is not None else []),
    ]


def _reads_edits(config_dir: str, overrides: list[str]) -> bool:
    """Whether a generate.py job of ``overrides`` is set up as a run that reads edits (DiffuseMix
    with an arm of edits)."""
    from .reporting.table import reads_edits_of

    try:
        return reads_edits_of(compose_raw(config_dir, "generate", overrides))
    except Exception:  # a composition error: the checks that follow say what is wrong
        return False


def expand_globs(argv: list[str], config_dir: str) -> list[str]:
    """``aug=glob(*mix)``: Hydra's sweep over the options of a group whose names match, written out
    (``aug=cutmix,mixup,...``) before anything reads the command line, so that the checks, the
    ``--cfg job`` listing and Hydra see the same sweep (the checks stopped with a traceback on a
    glob, which needs Hydra's config loader to expand). A glob of a plain setting, or one that
    matches no option, is one message."""
    with user_errors_reported():
        return [glob_written_out(arg, config_dir) for arg in argv]


def glob_written_out(arg: str, config_dir: str) -> str:
    """One override with a ``glob()`` sweep of a config group's options written out as a list
    (anything else as it is); a glob of a plain setting, or one that matches nothing, is refused."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import ValueType
    from hydra.errors import HydraException

    if arg.startswith("-") or "=" not in arg or "glob(" not in arg:
        return arg
    try:
        (o,) = OverridesParser.create().parse_overrides([arg])
    except HydraException:
        return arg  # preflight's to report
    if o.value_type != ValueType.GLOB_CHOICE_SWEEP:
        return arg
    key = o.get_key_element()
    group = Path(config_dir) / o.key_or_group.lstrip("+~")  # (aug@foo: the group aug)
    if not group.is_dir():
        raise ConfigError(
            f"{arg}: glob() sweeps over the options of a config group (aug=glob(*mix)), and "
            f"{key.lstrip('+~')} is a setting: give its values as a list, {key.lstrip('+~')}=a,b,c"
        )
    names = o.value().filter(sorted(p.stem for p in group.glob("*.yaml")))
    if not names:
        raise ConfigError(
            f"{arg}: no option of conf/{o.key_or_group.lstrip('+~')}/ matches; its options are "
            f"{', '.join(sorted(p.stem for p in group.glob('*.yaml')))}"
        )
    return f"{key}={','.join(names)}"


def sweep_jobs(overrides: list[str], config_dir: str, config_name: str = "config") -> list[list[str]]:
    """The runs ``--multirun <overrides>`` launches: the experiment's ``hydra.sweeper.params``
    (a setting given on the command line replaces its sweep) crossed with the command line's own
    sweeps, in the order Hydra's basic sweeper runs them."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    given = parser.parse_overrides(overrides)
    fixed = [o.input_line for o in given if not o.is_sweep_override()]
    cfg = compose_raw(config_dir, config_name, fixed, hydra_config=True)
    return expand_sweep(cfg.hydra.sweeper.params or {}, overrides, config_dir)


def expand_sweep(params, overrides: list[str], config_dir: str | None = None) -> list[list[str]]:
    """The jobs of a sweep: ``params`` (an experiment's ``hydra.sweeper.params``; a setting on the
    command line replaces its entry) crossed with the command line's own sweeps, in the order
    Hydra's basic sweeper runs them. Composes nothing, so it is safe inside a running Hydra.
    ``config_dir``: where a ``glob()`` among ``params`` finds its group's options."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    keys = {o.get_key_element() for o in parser.parse_overrides(list(overrides))}
    lines = [f"{key}={value}" for key, value in params.items() if key not in keys]
    if config_dir is not None:
        lines = [glob_written_out(line, config_dir) for line in lines]
    batches = BasicSweeper.split_arguments(parser.parse_overrides(lines + list(overrides)), None)
    return [job for batch in batches for job in batch]


def list_sweep(argv: list[str], config_dir: str, config_name: str = "config") -> None:
    """Print the runs of ``train.py --multirun <overrides> --cfg job`` (one line each), run nothing;
    ``--cfg hydra``: the sweep's Hydra settings (launcher, sweeper) instead, ``--cfg all``: both."""
    skip = False
    overrides = []
    shown = "job"
    for arg in argv:
        if skip:
            skip, shown = False, arg
        elif arg in CFG_FLAGS:
            skip = True  # its value: job, hydra or all
        elif arg.startswith("--cfg="):
            shown = arg.split("=", 1)[1]
        elif not arg.startswith("-"):
            overrides.append(arg)
    if shown not in ("job", "hydra", "all"):
        with user_errors_reported():
            raise ConfigError(
                f"--cfg {shown}: give --cfg job (the sweep's runs), hydra (its Hydra settings) or all"
            )
    from hydra.errors import HydraException

    with user_errors_reported():
        # The checks the sweep itself gets before it runs: a misspelt name is refused, not listed.
        preflight(overrides, config_dir, config_name)
        check_sweep_base(["--multirun", *overrides], config_dir, config_name)
        check_swept_experiment(["--multirun", *overrides], config_dir, config_name)
        check_arms(overrides, config_dir)
        if "hydra/launcher=slurm" in overrides:  # the jobs' SLURM tasks against their trainers' devices
            check_slurm_tasks(overrides, config_dir, config_name)
        try:
            jobs = sweep_jobs(overrides, config_dir, config_name)
        except HydraException as exc:  # a composition error (unknown experiment, bad override)
            raise ConfigError(str(exc)) from None
        # Every value of the sweep, each composed once in the first job's company (a name is
        # misspelt alone, whatever the others are), and its value checked as its run would be.
        for variant, _ in _variants(jobs):
            preflight(variant, config_dir, config_name)
        if config_name == "config":
            check_jobs_apart(jobs, overrides)
            check_sweep_values(jobs, config_dir, config_name, _launcher(argv))
            check_sweep_methods(jobs, config_dir, config_name, first_too=True)
    if shown in ("job", "all"):
        print(f"{len(jobs)} run{'s' if len(jobs) != 1 else ''}:")
        for k, job in enumerate(jobs):
            print(f"  {k}: {' '.join(job)}")
        _note_what_the_sweep_lacks(overrides, config_dir, config_name, jobs)
    if shown in ("hydra", "all"):
        print(sweep_hydra_yaml(overrides, config_dir, config_name), end="")


def _note_what_the_sweep_lacks(
    overrides: list[str], config_dir: str, config_name: str, jobs: list[list[str]]
) -> None:
    """After a listing: what would stop the sweep itself before its first job (its datasets, or a
    training sweep's DiffuseMix edits, not there yet), as a note. Listing a table's runs before downloading or
    generating is fine; learning only at the start that the edits are missing is not."""
    argv = ["--multirun", *overrides]
    for check in (check_sweep_data, check_sweep_edits):
        try:
            check(argv, config_dir, config_name)
        except ConfigError as exc:
            # (the refusal's "no job was started" is the sweep's; this listing ran nothing anyway)
            why = str(exc).replace(", so no job was started", "").replace(" so no job was started", "")
            print(
                f"note: the {len(jobs)} runs are listed, but running the sweep now would stop before its first "
                f"job: {why}",
                file=sys.stderr,
            )
            return


def sweep_hydra_yaml(overrides: list[str], config_dir: str, config_name: str = "config") -> str:
    """The Hydra settings a ``--multirun`` sweep runs with (its launcher and sweeper included), as
    ``--cfg hydra`` prints them for a single run: composed with the command line's settings that
    are not swept."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    fixed = [
        o.input_line for o in OverridesParser.create().parse_overrides(overrides) if not o.is_sweep_override()
    ]
    cfg = compose_raw(config_dir, config_name, fixed, hydra_config=True)
    return OmegaConf.to_yaml(OmegaConf.create({"hydra": OmegaConf.to_container(cfg.hydra, resolve=False)}))


def preflight(argv: list[str], config_dir: str, config_name: str = "config"):
    """Compose the command line's config before Hydra runs it; a misspelt group option or key
    stops with one message naming it and the closest valid names (the first value of a sweep
    stands for the sweep). Returns the composed config."""
    import re

    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    overrides = [a for a in argv if not a.startswith("-") and "=" in a]
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except HydraException as exc:
        raise ConfigError(_unparsed_override(overrides) or str(exc).splitlines()[0]) from None
    plain = []
    for o in parsed:
        if o.is_sweep_override():
            if not o.is_discrete_sweep():  # interval(a,b): no values to enumerate
                key = o.get_key_element()
                raise ConfigError(
                    f"{o.input_line}: an interval is a search space for a sweeper that samples it (Optuna, "
                    "Nevergrad); the sweeps here run Hydra's basic sweeper, which runs given values: list them "
                    f"({key}=a,b,c) or give a range ({key}=range(start,stop,step))"
                )
            values = list(o.sweep_string_iterator())
            _check_swept_options(o.get_key_element(), values[1:], config_dir)
            if values:
                plain.append(f"{o.get_key_element()}={values[0]}")
        else:
            plain.append(o.input_line)
    try:
        return compose_raw(config_dir, config_name, plain)
    except HydraException as exc:
        cause = str(exc)
        if exc.__cause__ is not None and str(exc.__cause__).strip():
            # "Error merging override x=y" alone does not say why: add the reason's first line.
            cause = f"{cause.splitlines()[0]}: {str(exc.__cause__).strip().splitlines()[0]}"
    wrong_type = re.search(
        r"Error merging override (\S+?)=(.*?): Value '.*?' (?:of type '\w+' could not be converted to (\w+)|is not a valid (bool))",
        cause,
    )
    not_list = re.search(
        r"Error merging override (\S+?)=(.*?): Invalid value assigned: \w+ is not a ListConfig", cause
    )
    list_into_text = re.search(r"Error merging override (\S+?)=(.*?): Cannot convert 'list' to string", cause)
    if list_into_text:  # aug.masks=[hv]: a setting of one value given a list
        given, value = list_into_text.groups()
        key = given.lstrip("+~")
        raise ConfigError(
            f"{given}={value}: {key} takes one value, not a list: give one ({key}=<value>), or sweep several with "
            f"--multirun ({key}=<a>,<b>)"
        )
    null_item = re.search(
        r"Error merging override (\S+?)=(.*?): Invalid type assigned: NoneType is not a subclass of (\w+)",
        cause,
    )
    if null_item:  # generator.prompts=[a,null]: a list of values with null among them
        given, value, kind = null_item.groups()
        kinds = {"str": "text", "int": "whole numbers", "float": "numbers", "bool": "true or false"}
        raise ConfigError(
            f"{given}={value}: the items of {given.lstrip('+~')} are {kinds.get(kind, kind)}, and null is none: leave "
            "it out of the list"
        )
    into_text = re.search(r"Error merging override (\S+?)=(.*?): Cannot convert 'dict' to string", cause)
    if into_text:  # protocol.lr=0.1: a setting whose value is a name (protocol=<name>) given a key
        given, value = into_text.groups()
        top = given.lstrip("+~").split(".")[0]
        from .config import BUDGETS

        options = sorted(p.stem for p in (Path(config_dir) / top).glob("*.yaml"))
        listed = f" (conf/{top}/: {', '.join(options)})" if options else ""
        listed = f" ({', '.join(BUDGETS)})" if top == "budget" else listed
        raise ConfigError(
            f"{given}={value}: {top} takes a name{listed}, not settings of its own"
            + (
                "; the settings a protocol sets are optim.*, sched.*, trainer.* (and some loss.*, model.*), given as "
                "they are "
                f"(optim.{given.split('.', 1)[1]}={value}, say)"
                if top == "protocol"
                else f"; give {top}=<name>"
            )
        )
    not_optional = re.search(r"Error merging override (\S+?)=(.*?): field '[^']+' is not Optional", cause)
    if not_optional:
        given, value = not_optional.groups()
        key = given.lstrip("+~")  # (+key=null: the setting is the key without its sign)
        rest = [o for o in plain if o.split("=", 1)[0].lstrip("+~") != key]
        default = None
        with suppress(Exception):
            default = OmegaConf.select(compose_raw(config_dir, config_name, rest), key)
        # What kind of value it takes, told by its default's.
        kind = (
            "true or false"
            if isinstance(default, bool)
            else {int: "a whole number", float: "a number", str: "a text"}.get(type(default), "a value")
        )
        raise ConfigError(
            f"{given}={value}: {key} needs {kind}, not {value}"
            + (
                f" (its default: {str(default).lower() if isinstance(default, bool) else default})"
                if default is not None
                else ""
            )
            + f"; give one, or leave {key} out"
        )
    if not_list:
        key, value = not_list.groups()
        raise ConfigError(
            f"{key}={value}: {key} takes a list: give {key}=[{value}] (several values: [a,b]; quoted for the "
            f"shell: '{key}=[{value}]')"
        )
    if wrong_type:
        key, value, kind, boolean = wrong_type.groups()
        expected = {
            "Integer": "a whole number (such as 1 or 300)",
            "Float": "a number (such as 0.1 or 5e-4)",
        }.get(kind or "", "true or false" if boolean else (kind or "another type"))
        unit = (
            " in 1/255 units of the pixel range: 8 for 8/255"
            if key in ("eval.eps", "eval.pgd_step_size", "aug.adv_eps", "adv.eps", "adv.step")
            else ""
        )
        if unit:  # (a budget below one grey level, 0.1, is refused: the example is one that is not)
            expected = "a number (such as 8 or 2.5)"
        raise ConfigError(f"{key}={value}: {key} takes {expected}{unit}, not {value!r}")
    missing = re.search(r"Could not find '([\w/]+)/([^']+)'", cause)
    if missing:
        group, option = missing.groups()
        top = group.split("/", 1)[0]
        # A path to the option's file (experiment=experiments/table5.yaml); hydra/launcher is a group itself.
        path_given = group != top and not (Path(config_dir) / group).is_dir()
        if path_given and (Path(config_dir) / top).is_dir():
            given = f"{group[len(top) + 1 :]}/{option}"
            options = sorted(p.stem for p in (Path(config_dir) / top).glob("*.yaml"))
            raise ConfigError(
                f"{top}={given}: give the option's name, not a path to its file{did_you_mean(Path(option).stem, options)} "
                f"(choices: {', '.join(options)})"
            )
        options = sorted(p.stem for p in (Path(config_dir) / group).glob("*.yaml"))
        raise ConfigError(
            f"{group}={option}: no such option in conf/{group}/{did_you_mean(option, options)} "
            f"(choices: {', '.join(options)})"
        )
    twice = re.search(
        r"Multiple values for ([\w/]+)\. To override a value use 'override [\w/]+: ([^']*)'", cause
    )
    if twice and any(o.startswith(f"+{twice.group(1)}=") for o in plain):  # +group= of a chosen group
        group, option = twice.groups()
        raise ConfigError(
            f"+{group}={option}: {group} is already chosen by the defaults, so '+' (add) does not apply; "
            f"give {group}={option}"
        )
    there = re.search(r"Could not append to config\. An item is already at '([^']+)'", cause)
    if there:  # +key=value of a setting the config has: '+' adds a setting it lacks
        key = there.group(1)
        given = next((o for o in plain if o.split("=", 1)[0] == f"+{key}"), f"+{key}=...")
        raise ConfigError(
            f"{given}: {key} is a setting the config has already, so '+' (add) does not apply; give "
            f"{given[1:]}"
        )
    bad = re.search(r"Could not override '([^']+)'", cause)
    if bad:
        key = bad.group(1)
        parent, _, leaf = key.rpartition(".")
        rest = [o for o in plain if o.split("=", 1)[0].lstrip("+~") != key]
        try:  # Hydra's own settings (hydra.launcher.*) are in the composition with Hydra's config only
            base = compose_raw(config_dir, config_name, rest, hydra_config=key.startswith("hydra."))
        except HydraException:
            base = None
        node = OmegaConf.select(base, parent) if base is not None and parent else base
        # One of train.py's settings given to evaluate.py (paths.data_dir, dataset.*): its word on
        # it; a misspelt setting of evaluate.py's own gets the close names below.
        top = key.split(".", 1)[0]
        if (
            config_name == "evaluate"
            and base is not None
            and top not in base
            and (
                key in _EVALUATE_NAMES
                or top in compose_raw(config_dir, "config", [])
                or top in config_groups(config_dir, "config")
            )
        ):
            raise ConfigError(_not_an_evaluate_setting(key))
        keys = list(node.keys()) if node is not None and hasattr(node, "keys") else []
        if not parent:  # the groups this entry point chooses (evaluate.py: eval alone)
            own = config_groups(config_dir, config_name)
            keys += [p.name for p in Path(config_dir).iterdir() if p.is_dir() and p.name in own]
        where = f"'{parent}'" if parent else "the top level"
        if parent == "aug" and node is not None and isinstance(node.get("name"), str):
            where = f"aug={node.name}"  # each augmentation has its own settings
            if not any(o.split("=", 1)[0].lstrip("+~") == "aug" for o in plain):
                where += f" ({_chosen_by(config_dir, config_name, plain, str(node.name))})"
            keys = [k for k in keys if k not in ("name", "dataset_defaults")]  # the group's, not settings
        message = no_such_setting(key, where, keys)
        if parent == "model.kwargs" and not keys:  # (the builder's options: none set by default)
            message = (
                f"{key}: model.kwargs passes options to the model's builder and holds none until one is added: "
                f"add it with a +, +{key}={given_value(plain, key)}"
            )
        if parent == "aug":
            message += _swept_methods_advice(config_dir, config_name, rest, key, argv)
        raise ConfigError(message)
    unknown = re.search(
        r"In '(\w+)/([^']+)': ConfigKeyError.*\nKey '[^']+' not in '\w+'\n\s*full_key: ([\w.]+)", cause
    )
    if unknown:  # a config file (an experiment) sets a setting the group's choice lacks
        group, option, key = unknown.groups()
        top = key.split(".", 1)[0]
        given = [o for o in plain if o.split("=", 1)[0].lstrip("+") == top]
        chosen = given[-1].split("=", 1)[1] if given else None  # (the last one given is Hydra's)
        without = [o for o in plain if o not in given]
        try:  # the file with its own choice of the group: is the setting its own mistake?
            compose_raw(config_dir, config_name, without)
            fits_its_own = chosen is not None
        except HydraException:
            fits_its_own = False
        if fits_its_own:
            raise ConfigError(
                f"{group}={option} sets {key}, and {top}={chosen}, given here, has no such setting: the "
                f"{group}'s runs are meant for its own {top} choice. Leave {top}={chosen} out, or choose "
                f"another {top} that has {key}"
            )
        file = (Path(config_dir) / group / f"{option}.yaml").resolve()
        raise ConfigError(
            f"{group}={option} sets {key}, which its {top} has no setting of: correct or remove it in "
            f"{file if file.is_file() else f'the {group} file {option}.yaml'}"
        )
    lines = [line.strip() for line in cause.splitlines() if line.strip()]
    if lines and lines[0].endswith(":") and len(lines) > 1:  # "... raised while composing config:" then why
        raise ConfigError(f"{lines[0]} {lines[1]}")
    raise ConfigError(lines[0] if lines else "the command line could not be composed")


#: train.py's settings whose counterpart evaluate.py takes under another name.
_EVALUATE_NAMES = {"paths.data_dir": "data_dir", "trainer.accelerator": "accelerator", "ckpt_path": "ckpt"}


def given_value(overrides: list[str], key: str) -> str:
    """The value ``overrides`` give ``key`` (``+``/``~`` signs left off), as typed."""
    return next((o.split("=", 1)[1] for o in overrides if o.split("=", 1)[0].lstrip("+~") == key), "<value>")


def _not_an_evaluate_setting(key: str) -> str:
    """evaluate.py given one of train.py's settings: its own name for it, or where the run's
    settings come from."""
    own = "ckpt, data_dir, accelerator, seed, eval.*"
    if key in _EVALUATE_NAMES:
        name = _EVALUATE_NAMES[key]
        return f"{key}: a train.py setting; evaluate.py takes it as {name}=<value> (its settings: {own})"
    return (
        f"{key}: evaluate.py has no such setting: the run's own settings ({key.split('.', 1)[0]}...) come "
        f"from its folder (config_resolved.yaml) and are not changed here; evaluate.py's settings: {own}"
    )


def _swept_methods_advice(
    config_dir: str, config_name: str, plain: list[str], key: str, argv: list[str]
) -> str:
    """For a setting of one method under an experiment whose sweep runs several (``aug=`` or
    ``arm=``): the experiment sweeps them, and a method's setting goes with that method."""
    from hydra.errors import HydraException

    on_line = _methods_swept_on_the_line(config_dir, config_name, plain, key, argv)
    if on_line is not None:
        return on_line
    given = {o.split("=", 1)[0].lstrip("+~") for o in argv if "=" in o}
    try:
        params = compose_raw(config_dir, config_name, plain, hydra_config=True).hydra.sweeper.params or {}
    except HydraException:
        return ""
    swept = [str(k) for k in params if str(k) in ("aug", "arm") and str(k) not in given]
    if not swept:
        return ""
    sweep = swept[0]
    return (
        f"; the experiment sweeps {sweep} ({params[sweep]}), and a setting of one method goes with that "
        f"method: limit the sweep to the {sweep}s that have it ({sweep}=<name> {key}=..., or for several "
        f"{sweep}=<name>,<name> ++{key}=...)"
    )


def _methods_swept_on_the_line(
    config_dir: str, config_name: str, plain: list[str], key: str, argv: list[str]
) -> str | None:
    """For a setting of one method with ``aug=a,b`` swept on the command line (checked with the
    first method): which methods of the sweep have it, and how to give it to those alone; or, none
    having it, the close names among theirs. None without such a sweep."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    line = next((o for o in argv if o.split("=", 1)[0].lstrip("+~") == "aug" and "," in o), None)
    if line is None:
        return None
    (parsed,) = OverridesParser.create().parse_overrides([line.lstrip("+~")])
    if not parsed.is_sweep_override():
        return None
    leaf = key.rsplit(".", 1)[-1]
    value = next((o.split("=", 1)[1] for o in argv if o.split("=", 1)[0].lstrip("+~") == key), "...")
    others = [o for o in plain if o.split("=", 1)[0].lstrip("+~") != "aug"]
    having, names = [], set()
    for name in parsed.sweep_string_iterator():
        try:
            node = compose_raw(config_dir, config_name, [*others, f"aug={name}"]).aug
        except HydraException:
            continue
        own = {str(k) for k in node} - {"name", "dataset_defaults"}
        names |= own
        if leaf in own:
            having.append(str(name))
    if having:
        return (
            f"; of the methods swept ({line}), aug={','.join(having)} {'has' if len(having) == 1 else 'have'} "
            f"it: launch {'that' if len(having) == 1 else 'those'} with it (aug={','.join(having)} {key}={value}) "
            "and the others without, into the same hydra.sweep.dir"
        )
    return f"; no method of the sweep ({line}) has it{did_you_mean(leaf, names, said_as='aug.{}')}"


def _chosen_by(config_dir: str, config_name: str, plain: list[str], aug: str) -> str:
    """What chose ``aug=<aug>`` when the command line does not name it: the ``arm=`` or
    ``experiment=`` without which another augmentation is composed, else the config's default."""
    from hydra.errors import HydraException

    def key(o: str) -> str:
        return o.split("=", 1)[0].lstrip("+~")

    # The arm alone, the experiment alone, then both (an arm may choose what its experiment does).
    arms = [o for o in plain if key(o) == "arm"]
    experiments = [o for o in plain if key(o) == "experiment"]
    candidates = [given for given in (arms, experiments) if given]
    if len(candidates) > 1:
        candidates.append(arms + experiments)
    for left_out in candidates:
        rest = [o for o in plain if o not in left_out and key(o) != "aug" and not key(o).startswith("aug.")]
        try:
            if str(compose_raw(config_dir, config_name, rest).aug.name) != aug:
                return f"chosen by {' '.join(sorted(left_out, key=lambda o: key(o) != 'experiment'))}"
        except HydraException:
            continue
    return "the default"


def _check_swept_options(key: str, values: list[str], config_dir: str) -> None:
    """The values of a sweep over a config group (``aug=none,snapmx``) after its first (composed
    with the rest of the command line), each an option file of the group; else one message."""
    group = Path(config_dir) / key.lstrip("+~")
    if not group.is_dir():
        return
    options = sorted(p.stem for p in group.glob("*.yaml"))
    for value in values:
        if value not in options:
            raise ConfigError(
                f"{key}={value}: no such option in conf/{key}/{did_you_mean(value, options)} (choices: {', '.join(options)})"
            )


def _unparsed_override(overrides: list[str]) -> str | None:
    """The first override Hydra's grammar cannot read whose value holds characters of that grammar
    (a sweep job's folder, ``0_aug=none,seed=0``): how to quote it. None when there is none."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parser = OverridesParser.create()
    for override in overrides:
        try:
            parser.parse_overrides([override])
        except HydraException:
            key, _, value = override.partition("=")
            items = _list_items(value)
            if items is not None:  # a list: each item quoted, not the list (a string of brackets)
                typed = shlex.quote(f"{key}=[{', '.join(_hydra_item(item) for item in items)}]")
                return (
                    f"{key}: its list {value} holds items Hydra's override grammar cannot read bare (spaces, "
                    f"letters outside ASCII, = , ~ or quotes): quote each item for Hydra, inside the shell's "
                    f"quotes: {typed}"
                )
            if re.search(r"[=,\[\]{}()'\" ~]", value):
                typed = hydra_quoted(key, value)
                return (
                    f"{key}: its value {value} holds characters Hydra's override grammar reads as syntax "
                    f"(= , ~, brackets, quotes or spaces; a sweep job's folder has = and ,). Quote it for "
                    f"Hydra inside the shell's quotes: {typed}"
                )
            if not value.isascii():
                return (
                    f"{key}: its value {value} holds letters outside ASCII, which Hydra's override grammar "
                    f"reads only inside quotes. Quote it for Hydra inside the shell's quotes: "
                    f"{hydra_quoted(key, value)}"
                )
    return None


def _list_items(value: str) -> list[str] | None:
    """The items of a list value typed bare, ``[café au lait, snowy]``; None for another value (or
    a list with quotes or nested brackets already, left to the other advice)."""
    if not (value.startswith("[") and value.endswith("]")) or re.search(r"[\[\]{}()'\"]", value[1:-1]):
        return None
    items = [item.strip() for item in value[1:-1].split(",")]
    return items if all(items) else None


def _hydra_item(item: str) -> str:
    """One item of a list for Hydra's grammar: bare where it reads it so, else in double quotes."""
    return item if re.fullmatch(r"[A-Za-z0-9_./:+@-]+", item) else f'"{item}"'


#: Hydra's flags that take the next argument as their value.
_FLAGS_WITH_VALUE = frozenset(
    ("--config-path", "-cp", "--config-name", "-cn", "--config-dir", "-cd", "--cfg", "-c", "--package", "-p")
    + ("--experimental-rerun", "--shell-completion", "-sc")
)


def check_bare_words(argv: list[str], config_dir: str, config_name: str = "config") -> None:
    """A word on the command line that is neither a flag nor a setting (``seed``, ``cub``): Hydra
    reads every other argument as an override, ``key=value``, and answers a bare word with its
    grammar's parse error. Said here with the fix (the group whose option it names, if any)."""
    after_flag = False
    previous = ""
    for arg in argv:
        if after_flag:
            after_flag = False
            continue
        if arg in _FLAGS_WITH_VALUE:
            after_flag = True
            continue
        if arg.startswith(("-", "~")) or "=" in arg:  # a flag, a setting, or ~key (removes one)
            previous = arg
            continue
        own = config_groups(config_dir, config_name)
        groups = sorted(p.parent.name for p in Path(config_dir).glob(f"*/{arg}.yaml") if p.parent.name in own)
        if Path(arg).expanduser().exists() and config_name == "evaluate":  # a run folder, or a checkpoint
            raise ConfigError(f"'{arg}' is not a setting: give the run folder or checkpoint as ckpt={arg}")
        if groups:
            raise ConfigError(
                f"'{arg}' is not a setting (settings are key=value): {arg} is an option of "
                f"{' and of '.join(groups)}; give {' or '.join(f'{g}={arg}' for g in groups)}"
            )
        given = previous.split("=", 1)[0].lstrip("+")
        if "=" in previous and not previous.startswith("-") and given not in own:  # a value's rest?
            raise ConfigError(
                f"'{arg}' is not a setting (settings are key=value). If it is the rest of {previous}'s "
                f'value: a value with a space in it is quoted whole ("{previous} {arg}"), a list is '
                "written [a,b] with no space"
            )
        example = f"{arg}=<value>" if re.fullmatch(r"[A-Za-z_][\w.]*", arg) else "seed=3"
        raise ConfigError(f"'{arg}' is not a setting: settings are given as key=value ({example})")


def check_command_line(argv: list[str], config_dir: str, config_name: str) -> None:
    """The entry scripts' check before Hydra runs: a misspelt name is one message and exit code 1.
    ``--help`` is answered here (print_help); ``--cfg`` and Hydra's other flags pass through to Hydra."""
    if any(a in ("-h", "--help") for a in argv):
        with user_errors_reported():
            print_help(argv, config_dir, config_name)
        sys.exit(0)
    if any(a in ("--hydra-help", "--info", "-i") for a in argv):
        return
    with user_errors_reported(), _each_warning_once():
        check_bare_words(argv, config_dir, config_name)
        check_sweep_needs_multirun(argv, config_dir, config_name)
        composed = preflight(argv, config_dir, config_name)
        check_sweep_base(argv, config_dir, config_name)
        check_swept_experiment(argv, config_dir, config_name)
        check_single_run_of_a_sweep(argv, composed, config_dir)
        check_arms(argv, config_dir)
        check_slurm(argv, config_dir, config_name)
        warn_debug_over_trainer(argv)
        jobs = None
        if config_name == "config" and _lists_one_run(argv):
            # The printed config of one run passes the checks its start would make of the values
            # (those that need no torch), as a sweep's listing does.
            validate_config(composed, here=False)  # (a preview: GPU and weight file not looked for)
            check_protocol_optimiser(composed)
        if config_name == "config":  # train.py's settings, before any dataset is looked for
            jobs = _jobs_to_check(argv, config_dir, config_name)
            # Every value of the sweep composed once, as the listing does: a value of the wrong
            # type (aug.lam=0.1,O.3) is the same one message, not Hydra's once its job starts.
            for variant, _ in _variants(jobs or []):
                preflight(variant, config_dir, config_name)
            if jobs:
                check_jobs_apart(jobs, argv)
                check_sweep_values(jobs, config_dir, config_name, _launcher(argv))
            if jobs and _launcher(argv) in (None, "basic"):  # (a cluster's nodes may hold the file)
                check_auto_resume_weights(jobs, config_dir, config_name)
        if config_name == "generate":
            check_generation_jobs_apart(argv, config_dir)
        check_sweep_data(argv, config_dir, config_name)
        if jobs:  # (before the edits: a value refused here is said before hours of generating)
            check_sweep_methods(jobs, config_dir, config_name, first_too=True)
        if jobs and _launcher(argv) in (None, "basic"):  # (a cluster's nodes have their own caches)
            check_sweep_pretrained(jobs, config_dir, config_name)
        check_sweep_edits(argv, config_dir, config_name)
    mark_swept_keys(argv)


def check_sweep_pretrained(jobs: list[list[str]], config_dir: str, config_name: str) -> None:
    """The published weights a sweep's jobs start from (``model.pretrained``, no ``model.weights``),
    fetched once before any job starts: weights that cannot be had (no network, no cached copy)
    are refused here, not by each job in turn. A sweep going on in its folder (``ckpt_path=auto``
    with a job's last.ckpt there) is left to its jobs: those resumed need none."""
    from .errors import PretrainedWeightsError
    from .training.classifier import fetch_pretrained

    # One job of each combination of the settings that choose a model and its weights (every
    # combination: model=a,b crossed with model.pretrained=false,true is not one change at a time).
    chooses = ("model", "protocol", "experiment", "dataset", "ckpt_path")
    variants: dict[tuple, tuple[list[str], str]] = {}
    for job in jobs:
        mine = tuple(
            o for o in job if o.partition("=")[0].lstrip("+~").split(".")[0].split("/")[0] in chooses
        )
        variants.setdefault(mine, (job, " ".join(o for o in mine if o not in jobs[0])))
    seen: set[tuple] = set()
    for variant, changed in variants.values():
        try:
            cfg = compose_raw(config_dir, config_name, variant, hydra_config=True)
            key = (
                str(cfg.model.get("source")),
                str(cfg.model.name),
                bool(cfg.model.pretrained),
                str(cfg.model.weights),
            )
        except Exception:  # a composition error: preflight's, or the job's to report
            continue
        if key in seen or not cfg.model.pretrained or cfg.model.weights is not None:
            continue
        seen.add(key)
        if cfg.get("ckpt_path") is not None and str(cfg.get("ckpt_path")) != "auto":
            return  # (jobs resumed from checkpoints: their weights are there)
        if str(cfg.get("ckpt_path")) == "auto" and _sweep_resumes(cfg):
            return
        try:
            fetch_pretrained(cfg)
        except PretrainedWeightsError as exc:
            which = f"the sweep's runs with {changed}" if changed else "the sweep's runs"
            raise ConfigError(f"{which} cannot start, so no job was started: {exc}") from None


@contextmanager
def _each_warning_once():
    """The checks before a sweep read its data more than once (its data, then its edits): a warning
    of what they read (no test split) is said once, not once per check."""
    import logging

    said: dict[str, logging.LogRecord] = {}

    def first(record: logging.LogRecord) -> bool:  # (the first record of a text, to every handler)
        if record.levelno < logging.WARNING:
            return True
        return said.setdefault(record.getMessage(), record) is record

    # (on the handlers: a logger's filter does not apply to its children's records; before Hydra
    # configures logging, Python's last-resort handler is the one that prints them)
    handlers = [h for h in (*logging.getLogger().handlers, logging.lastResort) if h is not None]
    for handler in handlers:
        handler.addFilter(first)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(first)


def _sweep_resumes(cfg: DictConfig) -> bool | None:
    """Whether the sweep folder of ``cfg`` (composed with Hydra's settings) holds a job's
    last.ckpt: a sweep going on there, whose jobs ``ckpt_path=auto`` resumes. None where the
    folder cannot be resolved."""
    try:
        sweep = Path(str(cfg.hydra.sweep.dir)).expanduser()
        return sweep.is_dir() and any(sweep.glob("*/checkpoints/last.ckpt"))
    except Exception:  # (a folder not resolved or not readable)
        return None


def check_auto_resume_weights(jobs: list[list[str]], config_dir: str, config_name: str) -> None:
    """A sweep with ``ckpt_path=auto`` whose folder holds no checkpoint yet starts every job anew,
    from ``model.weights``: a file not there is refused before any job (each would fail in turn).
    Once some job has a checkpoint, each job is checked as it starts (its resume reads the
    checkpoint's weights)."""
    from .config import check_weights_there

    # Only a command that asks for ckpt_path=auto (no experiment file sets it): every other sweep
    # is not composed once more at start-up.
    if not any(o.lstrip("+~").replace(" ", "") == "ckpt_path=auto" for o in jobs[0]):
        return
    try:
        first = compose_raw(config_dir, config_name, jobs[0], hydra_config=True)
        if str(first.get("ckpt_path")) != "auto":
            return
        check_weights_there(first)
        return
    except ConfigError as exc:
        refusal = exc
    except Exception:  # a composition error: preflight's, or the job's to report
        return
    if _sweep_resumes(first) is not False:  # (unresolved: each job checks as it starts)
        return
    raise ConfigError(
        f"{refusal} (ckpt_path=auto, and no job of this sweep has a checkpoint to resume from), "
        "so no job was started"
    ) from None


def warn_debug_over_trainer(argv: list[str]) -> None:
    """``trainer=gpu debug=fast``: the debug preset sets ``trainer.accelerator=cpu`` after the trainer
    group, so the smoke run trains on the CPU; said, with the setting that keeps the GPU."""
    given = dict(a.split("=", 1) for a in argv if "=" in a and not a.startswith("-"))
    trainer, debug = given.get("trainer", ""), given.get("debug", "")
    accelerated = {v for v in trainer.split(",") if v in ("gpu", "ddp")}
    if accelerated and debug == "fast" and "trainer.accelerator" not in given:
        print(
            f"warning: debug=fast trains on the CPU (it sets trainer.accelerator=cpu, over trainer="
            f"{sorted(accelerated)[0]}); for a smoke run on the GPU add trainer.accelerator=gpu",
            file=sys.stderr,
            flush=True,
        )


def check_sweep_needs_multirun(argv: list[str], config_dir: str, config_name: str = "config") -> None:
    """A value Hydra's grammar reads as a sweep (``dataset.root=/data/a,b``: a comma; ``range(0,3)``)
    on a command line without ``--multirun``: one message with the forms that work, instead of
    Hydra's multi-line answer (a quoted value only where one value can have a comma)."""
    if any(a in ("-m", "--multirun") for a in argv):
        return
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import ValueType
    from hydra.errors import HydraException

    parser = OverridesParser.create()
    for arg in argv:
        if arg.startswith("-") or "=" not in arg:
            continue
        try:
            (override,) = parser.parse_overrides([arg])
        except HydraException:
            continue  # preflight's to report
        if override.is_sweep_override() and override.is_discrete_sweep():  # (an interval: preflight's)
            key, value = arg.split("=", 1)
            group = (Path(config_dir) / key.lstrip("+~")).is_dir()  # one option per run
            kind = "other"
            if override.value_type == ValueType.SIMPLE_CHOICE_SWEEP and not group:
                kind = _value_kind(argv, arg, key.lstrip("+~"), config_dir, config_name)
            head = f"{arg}: Hydra reads a value with a comma as a sweep, and this command has no --multirun. "
            if kind == "list":
                raise ConfigError(
                    f"{head}For a list, give it in brackets: {key}=[{value}]; to run once per value, add --multirun"
                )
            if kind == "text":
                raise ConfigError(
                    f"{head}For one value, quote it for Hydra: {hydra_quoted(key, value)}; to run once per value, add "
                    "--multirun"
                )
            raise ConfigError(
                f"{arg} is a sweep (one run per value), and this command has no --multirun: add it"
            )


def _value_kind(argv: list[str], arg: str, key: str, config_dir: str, config_name: str) -> str:
    """Whether ``key`` holds text (or nothing yet), a list, or another type (a number, a switch),
    in the settings the rest of the command line composes; ``other`` when they cannot be."""
    from omegaconf import ListConfig

    rest = [a for a in argv if a != arg and not a.startswith("-") and "=" in a]
    try:
        value = OmegaConf.select(compose_raw(config_dir, config_name, rest), key, default=None)
    except Exception:  # a composition error: preflight's to report
        return "other"
    if isinstance(value, ListConfig):
        return "list"
    return "text" if value is None or isinstance(value, str) else "other"


def check_single_run_of_a_sweep(argv: list[str], cfg, config_dir: str) -> None:
    """An experiment run without ``--multirun`` is one run of its sweep: a dataset the sweep does
    not run (the config's default, ``experiment=table6`` training CIFAR-100) is refused, naming the
    sweep's datasets."""
    if any(a in ("-m", "--multirun") for a in argv) or cfg is None or "dataset" not in cfg:
        return
    import yaml
    from hydra.core.override_parser.overrides_parser import OverridesParser

    given = dict(a.split("=", 1) for a in argv if "=" in a and not a.startswith("-"))
    given = {k.lstrip("+~"): v for k, v in given.items()}
    path = Path(config_dir) / "experiment" / f"{given.get('experiment')}.yaml"
    if "experiment" not in given or "dataset" in given or "dataset.root" in given or not path.is_file():
        return
    data = yaml.safe_load(path.read_text()) or {}
    swept = (((data.get("hydra") or {}).get("sweeper") or {}).get("params") or {}).get("dataset")
    if swept is None:
        return
    (parsed,) = OverridesParser.create().parse_overrides([f"dataset={swept}"])
    names = list(parsed.sweep_string_iterator()) if parsed.is_sweep_override() else [str(parsed.value())]
    if str(cfg.dataset.name) not in names:
        raise ConfigError(
            f"experiment={given['experiment']} runs on {', '.join(names)} (its sweep), and this single run "
            f"would use the default dataset, {cfg.dataset.name}: name one with "
            + (f"dataset={names[0]}" if len(names) == 1 else f"dataset=<{'|'.join(names)}>")
            + ", or run the whole sweep with --multirun"
        )


def _lists_one_run(argv: list[str]) -> bool:
    """``--cfg job`` (or hydra, all) of one run, not of a sweep."""
    printed = any(a in CFG_FLAGS or a.startswith("--cfg=") for a in argv)
    return printed and not any(a in ("-m", "--multirun") for a in argv)


def check_jobs_apart(jobs: list[list[str]], argv: list[str]) -> None:
    """Each job of a training sweep trains into a folder of its own, named by its swept settings: a
    sweep that gives two jobs one folder (a value given twice, ``seed=0,0``; ``hydra.sweep.subdir``
    given one name for all) had its second job refused there after the first had trained."""
    subdir = next((a for a in argv if a.lstrip("+~").startswith("hydra.sweep.subdir=")), None)
    if subdir is not None and len(jobs) > 1 and "${" not in subdir:
        raise ConfigError(
            f"{subdir} names the folder of every one of the sweep's {len(jobs)} jobs alike: they would train into "
            "one folder (each after the first refused there); leave hydra.sweep.subdir out: each job's folder is "
            "named by its number and swept settings"
        )
    seen: dict[frozenset, int] = {}
    for number, job in enumerate(jobs):
        key = frozenset(job)
        if key in seen:
            raise ConfigError(
                f"jobs {seen[key]} and {number} of the sweep have the same settings ({' '.join(job)}): a value "
                "given twice (seed=0,0)? They would train into one folder, the second refused there after the "
                "first trained; give each value once"
            )
        seen[key] = number


def check_generation_jobs_apart(argv: list[str], config_dir: str) -> None:
    """A ``generate.py --multirun`` whose jobs read two data folders (``dataset.root=a,b``) into one
    edit store (a store is named by its dataset and settings, not its folder): the second job was
    refused after the first had generated its edits, hours with InstructPix2Pix. One message
    before any job instead."""
    jobs = _jobs_to_check(argv, config_dir, "generate")
    if not jobs or len(jobs) < 2:
        return
    from .data.layouts import dataset_root
    from .generation.store import EditStore

    made: dict[str, tuple[int, str]] = {}
    for number, job in enumerate(jobs):
        try:
            cfg = compose_raw(config_dir, "generate", job)
            root = str(dataset_root(cfg.dataset, cfg.paths.data_dir).absolute())
            folders = [
                str(EditStore.from_config(cfg, cfg.dataset.name, split).folder)
                for split in cfg.generator.splits
            ]
        except Exception:  # a composition error: preflight's, or the job's to report
            continue
        for folder in folders:
            first = made.setdefault(folder, (number, root))
            if first[1] != root:
                raise ConfigError(
                    f"jobs {first[0]} and {number} of this sweep would make their edits in one store ({folder}) from "
                    f"two data folders ({first[1]} and {root}): a store is named by its dataset and settings, so the "
                    "second would be refused after the first had made its edits, and no job was started. Give each "
                    "data folder an edits folder of its own (generator.edits_dir=<folder>, one generate.py command "
                    "each; train.py takes the same)"
                )


def _jobs_to_check(argv: list[str], config_dir: str, config_name: str) -> list[list[str]] | None:
    """The jobs a ``--multirun`` command line will run, for the checks before it starts; None when
    it is no sweep, only lists one (``--cfg``), or its jobs cannot be listed (they meet the error
    and report it themselves)."""
    if not any(a in ("-m", "--multirun") for a in argv) or any(a in CFG_FLAGS for a in argv):
        return None
    from hydra.errors import HydraException

    overrides = [a for a in argv if not a.startswith("-") and "=" in a]
    try:
        return sweep_jobs(overrides, config_dir, config_name)
    except (HydraException, ValueError):
        return None


def _multirun_overrides(argv: list[str]):
    """The parsed overrides of a ``--multirun`` command line; None without ``--multirun`` or when
    they do not parse (preflight's to report)."""
    if not any(a in ("-m", "--multirun") for a in argv):
        return None
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        return OverridesParser.create().parse_overrides(
            [a for a in argv if not a.startswith("-") and "=" in a]
        )
    except HydraException:
        return None


def check_sweep_base(argv: list[str], config_dir: str, config_name: str) -> None:
    """Hydra composes a ``--multirun``'s base settings, before its jobs, from the command line's
    settings that are not swept, so a swept group (``arm=table9_hv,table9_paper4``) is at its
    default there: a setting of the chosen options (``aug.seam_px=20``) that the default lacks
    stopped the sweep with Hydra's own error, whose ``+`` advice fails too. One message with the
    form that works (``++``: set where each job's option has it)."""
    parsed = _multirun_overrides(argv)
    if parsed is None:
        return
    from hydra.errors import HydraException

    swept = [o.get_key_element() for o in parsed if o.is_sweep_override()]
    if not swept:
        return
    fixed = [o.input_line for o in parsed if not o.is_sweep_override()]
    try:
        compose_raw(config_dir, config_name, fixed, hydra_config=True)  # as sweep_jobs composes it
    except HydraException as exc:
        bad = re.search(r"Could not override '([^']+)'", str(exc))
        if bad is None:
            return
        key = bad.group(1)
        value = next((o.input_line.split("=", 1)[1] for o in parsed if o.get_key_element() == key), "<value>")
        raise ConfigError(
            f"{key}={value} with a sweep over {', '.join(swept)}: Hydra composes the sweep's base settings before "
            f"its jobs with the default option of each swept group, which has no {key}; give it as "
            f"++{key}={value}, which each job sets in its own option"
        ) from None


def check_swept_experiment(argv: list[str], config_dir: str, config_name: str) -> None:
    """``--multirun experiment=table5,table6``: Hydra reads a sweep's parameters from the settings
    it composes before the jobs, where a swept group is at its default, so each experiment ran once
    with its base settings and without its own sweep (2 runs, not Table 5's 81 and Table 6's). One
    message with the command per experiment instead; unless the command line gives every setting
    the experiments sweep (then Hydra's jobs are the ones asked for)."""
    parsed = _multirun_overrides(argv)
    if parsed is None:
        return
    import shlex

    from hydra.core.override_parser.types import ValueType

    given = {o.key_or_group.lstrip("+~") for o in parsed}
    for o in parsed:
        if o.key_or_group.lstrip("+~") != "experiment" or not o.is_sweep_override():
            continue
        if o.value_type == ValueType.GLOB_CHOICE_SWEEP:
            names = o.value().filter(sorted(p.stem for p in (Path(config_dir) / "experiment").glob("*.yaml")))
        elif o.value_type in (ValueType.CHOICE_SWEEP, ValueType.SIMPLE_CHOICE_SWEEP):
            names = list(o.sweep_string_iterator())
        else:
            return  # a range or interval of experiments: preflight's to report
        lost = {}  # experiment: the settings its own sweep varies that the command line does not give
        for name in names:
            try:
                cfg = compose_raw(config_dir, config_name, [f"experiment={name}"], hydra_config=True)
            except Exception:  # preflight's to report
                continue
            keys = [str(k).lstrip("+~") for k in (cfg.hydra.sweeper.params or {})]
            if [k for k in keys if k not in given]:
                lost[name] = keys
        if not lost:
            return  # no experiment loses a sweep of its own: one run each, as asked
        rest = [shlex.quote(a) for a in argv if a not in ("-m", "--multirun") and a != o.input_line]
        script = {"config": "train.py", "generate": "generate.py", "figure4": "figure4.py"}.get(
            config_name, "train.py"
        )
        commands = "; ".join(
            " ".join([script_command(script), "--multirun", f"experiment={n}", *rest]) for n in names
        )
        sweeps = "; ".join(f"{n} sweeps {', '.join(keys)}" for n, keys in lost.items())
        raise ConfigError(
            f"{o.input_line}: a sweep over experiments runs each experiment once with its base settings, "
            f"without its own sweep ({sweeps}, in hydra.sweeper.params, which Hydra reads only from an "
            f"experiment given one value): run one command per experiment: {commands}"
        )


def _launcher(argv: list[str]) -> str | None:
    """The Hydra launcher the command line picks (``hydra/launcher=slurm``), None for the default."""
    picked = [a.split("=", 1)[1] for a in argv if a.lstrip("+~").startswith("hydra/launcher=")]
    return picked[-1] if picked else None


def _variants(jobs: list[list[str]]) -> list[tuple[list[str], str | None]]:
    """The first job, and the first job with one of its settings changed to each other value the
    sweep gives it (seeds left out: a seed changes no setting's validity): every value once. Each
    with the setting changed (None for the first job)."""
    first = jobs[0] if jobs else []
    found: list[tuple[list[str], str | None]] = [(first, None)] if first else []
    seen = {tuple(first)}
    for job in jobs[1:]:
        for k, item in enumerate(job):
            if k < len(first) and item != first[k] and not item.startswith("seed="):
                variant = first[:k] + [item] + first[k + 1 :]
                if tuple(variant) not in seen:
                    seen.add(tuple(variant))
                    found.append((variant, item))
    return found


def check_sweep_values(
    jobs: list[list[str]], config_dir: str, config_name: str, launcher: str | None = None
) -> None:
    """Each value a sweep gives a setting, checked against the settings' schemas and ranges as its
    run's start-up checks it, before any job starts: ``aug.lam=0.1,1.5`` is refused at once instead
    of when its job comes up after the others have trained. (The checks that build the method,
    which import torch, come last: ``check_sweep_methods``.)"""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    # A launcher other than Hydra's local one runs the jobs on other machines (SLURM's nodes).
    elsewhere = launcher not in (None, "basic")
    parser = OverridesParser.create()
    first = None

    def accepted(other: list[str], value: str) -> bool:  # (another variant passes these checks)
        try:
            cfg = _with_value(first, value, parser)
            if cfg is None:
                cfg = compose_raw(config_dir, config_name, other)
            validate_config(cfg, here=not elsewhere)
            check_protocol_optimiser(cfg)
        except Exception:
            return False
        return True

    for variant, changed in _variants(jobs):
        try:
            parser.parse_overrides(variant)
            cfg = _with_value(first, changed, parser)
            if cfg is None:
                cfg = compose_raw(config_dir, config_name, variant)
            if changed is None:
                first = cfg
        except Exception:  # a composition error: preflight's, or the job's to report
            continue
        try:
            validate_config(cfg, here=not elsewhere)
            check_protocol_optimiser(cfg)
            continue
        except ConfigError as exc:
            why = str(exc)
        # (outside the handler: the other variants' checks must not see this refusal as their cause)
        raise ConfigError(
            f"{_which_runs(jobs, variant, changed, why, accepted)} refused, so no job was started: {why}"
        )


def _which_runs(
    jobs: list[list[str]],
    variant: list[str],
    changed: str | None,
    why: str = "",
    accepted: Callable[[list[str], str], bool] | None = None,
) -> str:
    """The runs a refused variant of the sweep stands for, as the subject of "... refused": the
    value it changed, or (the first job) every run where ``why`` (the refusal) names a setting all
    the runs share and no other variant passes the same checks (``accepted(variant, value)``:
    ``dataset.resize=100`` refused for one dataset of the sweep may suit another), else its values
    of the settings the sweep varies (seeds aside), or all its settings."""
    if changed:
        return f"the sweep's runs with {changed} are"
    keys = {o.split("=", 1)[0] for job in jobs for o in job} - {"seed"}
    varied = {k for k in keys if len({o for job in jobs for o in job if o.split("=", 1)[0] == k}) > 1}

    def named(key: str) -> bool:
        return re.search(rf"(?<![\w.]){re.escape(key)}(?![\w.])", why) is not None

    shared = [o for o in variant if o.split("=", 1)[0] in keys - varied and named(o.split("=", 1)[0])]
    if (
        shared
        and not any(named(key) for key in varied)  # (a varied one named: those runs alone)
        and (accepted is None or not any(accepted(v, c) for v, c in _variants(jobs) if c is not None))
    ):
        return f"all the sweep's runs ({', '.join(shared)}: every run's) are"
    return f"the sweep's runs with {' '.join(o for o in variant if o.split('=', 1)[0] in varied) or ' '.join(variant)} are"


def _with_value(first, changed: str | None, parser):
    """The first job's composed settings with one plain setting's value changed (``aug.lam=1.5``:
    what Hydra's composition of that job gives, without composing again, which takes a large part
    of a second each); None where it must be composed (a group's option, a key it lacks)."""
    import copy

    from omegaconf import open_dict

    if first is None or changed is None:
        return None
    (override,) = parser.parse_overrides([changed])
    key = override.get_key_element()
    if override.is_sweep_override() or "." not in key or key.startswith(("+", "~", "hydra")):
        return None
    parent, _, leaf = key.rpartition(".")
    node = OmegaConf.select(first, parent, default=None)
    if not OmegaConf.is_dict(node) or leaf not in node:
        return None
    cfg = copy.deepcopy(first)
    with open_dict(cfg):
        OmegaConf.update(cfg, key, override.value(), merge=False)
    return cfg


def check_sweep_data(argv: list[str], config_dir: str, config_name: str) -> None:
    """A ``--multirun`` sweep whose datasets are not there (``make table N=5`` before CUB is
    downloaded): one message naming each missing dataset's folder before any job starts, instead
    of every job failing alike. Each dataset setting of the sweep is composed once."""
    jobs = _jobs_to_check(argv, config_dir, config_name)
    if jobs is None:
        return
    from .data.layouts import DatasetNotFoundError, check_present

    missing, seen = [], set()
    for job in jobs:
        key = tuple(o for o in job if o.lstrip("+~").startswith(("dataset", "paths", "experiment")))
        if key in seen:
            continue
        seen.add(key)
        try:
            cfg = compose_raw(config_dir, config_name, list(key))
            if "dataset" not in cfg:
                return
            check_present(cfg.dataset, cfg.paths.data_dir)
        except DatasetNotFoundError as exc:
            missing.append((str(cfg.dataset.name), str(exc)))
        except Exception:  # a setting the jobs resolve otherwise (Hydra's run folder, say)
            continue
    if missing:
        others = sorted({name for name, _ in missing[1:]} - {missing[0][0]})
        more = f"\nAlso missing for this sweep: {', '.join(others)}." if others else ""
        raise ConfigError(f"this sweep's data is not all there, so no job was started: {missing[0][1]}{more}")


def check_sweep_edits(argv: list[str], config_dir: str, config_name: str) -> None:
    """A ``--multirun`` of train.py whose DiffuseMix jobs lack their edits (``make table N=6``
    before generate.py): one message before any job starts, instead of the DiffuseMix jobs failing
    after the baselines have trained. Each store and training split is checked once. A sweep
    going on in its folder (``ckpt_path=auto`` with an existing ``hydra.sweep.dir``) is left to its
    jobs: finished ones need no edits, and the others check their own."""
    given = dict(a.split("=", 1) for a in argv if "=" in a and not a.startswith("-"))
    sweep_dir = given.get("hydra.sweep.dir", "").strip("'\"")
    if given.get("ckpt_path") == "auto" and sweep_dir and Path(sweep_dir).expanduser().is_dir():
        return
    jobs = _jobs_to_check(argv, config_dir, config_name) if config_name == "config" else None
    if jobs is None:
        return
    from .generation.store import EditStoreError, MissingEditError

    seen: set[tuple] = set()
    composed: set[tuple] = set()
    for job in jobs:
        # A run's seed changes neither its edits nor its training split (dataset.split_seed does).
        settings = tuple(o for o in job if not o.startswith("seed="))
        if settings in composed:
            continue
        composed.add(settings)
        try:
            cfg = compose_raw(config_dir, config_name, job)
            if cfg.aug.name != "diffusemix":
                continue
            check_job_edits(cfg, seen)
        except (MissingEditError, EditStoreError) as exc:
            raise ConfigError(
                f"this sweep's DiffuseMix edits are not all there, so no job was started. {exc}"
            ) from None
        except ConfigError as exc:  # a setting of the edits (a prompt count beyond the prompts)
            raise ConfigError(
                f"a DiffuseMix run of this sweep is refused, so no job was started: {exc}"
            ) from None
        except Exception:  # anything else is the job's to meet and report
            continue


def check_sweep_methods(
    jobs: list[list[str]], config_dir: str, config_name: str, first_too: bool = False
) -> None:
    """The method's own checks of each value a sweep gives a setting (those no schema can say:
    Co-Mixup's ``block_num=0``, a block grid the crop size does not divide, ``loss=jsd`` with a
    method of one view), as each job's start makes them, before any job starts. After the data is
    found (building a method imports torch, which its jobs then use), before the edits are: a
    refusal met after generating them would have cost the hours of their generation. The first
    job's own start makes them again; ``first_too`` (a listing, which runs nothing, or a sweep
    whose edits are checked next) checks it here too."""
    from .augment.registry import check_aug_settings, check_loss_views

    def accepted(other: list[str], value: str) -> bool:  # (another variant passes these checks)
        try:
            cfg = compose_raw(config_dir, config_name, other)
            check_loss_views(cfg)
            check_aug_settings(cfg)
        except Exception:
            return False
        return True

    for variant, changed in _variants(jobs):
        if changed is None and not first_too:  # the first job: its own start comes next
            continue
        try:
            cfg = compose_raw(config_dir, config_name, variant)
        except Exception:  # a composition error: the job's to report
            continue
        try:
            check_loss_views(cfg)
            check_aug_settings(cfg)
            continue
        except ConfigError as exc:
            why = str(exc)
        raise ConfigError(
            f"{_which_runs(jobs, variant, changed, why, accepted)} refused, so no job was started: {why}"
        )


def check_job_edits(cfg: DictConfig, seen: set[tuple], splits=None, sizes: bool = False) -> None:
    """The edits a DiffuseMix job trains from, checked as the job would (its training split, its
    store), unless a job with the same store and split was checked already. ``splits``: the
    dataset's splits when the caller has read them. ``sizes``: the images' sizes compared with the
    store's record too (the run's own check, before its folder is written: an image replaced by
    one of the same name, or another folder's of the same names, is refused there)."""
    import copy

    from .augment.registry import create_aug, run_context
    from .data.datamodule import ImageDataModule
    from .data.splits import build_splits, verify_as_asked
    from .generation.store import image_files, image_root, split_indices

    aug = create_aug(cfg.aug, run_context(cfg, num_classes=2))  # the class count plays no part here
    if not aug.uses_edits:
        return
    store = aug.edit_store()
    # The prompts too: Figure 5's prompt counts share one store, and a count its edits lack fails.
    key = (
        str(store.folder),
        tuple(store.prompt_ids),
        OmegaConf.to_yaml(cfg.dataset),
        str(cfg.paths.data_dir),
    )
    if key in seen:
        return
    seen.add(key)
    # The training images as the job reads them: with dataset.on_bad_image=skip, its corrupt files
    # left out (they have no edits; generate.py skips them alike). On a copy: the job verifies (and
    # records) its splits itself, from the cache this check fills.
    splits = copy.copy(splits) if splits is not None else build_splits(cfg.dataset, cfg.paths.data_dir)
    verify_as_asked(splits, cfg.dataset, cfg.paths.cache_dir, names=("train",), quiet=True)
    datamodule = ImageDataModule(cfg.dataset, cfg.paths.data_dir, seed=cfg.seed, splits=splits)
    datamodule.build()
    train = datamodule.train_set
    # A sweep's launch: names, not sizes (no stat per image for every job in the launching process;
    # each job checks them). A run's own check (sizes=True) reads them before its folder is written;
    # DiffuseMix's start-up check reads them again only outside _run_train's sizes_read_once.
    aug.check_edits(store, split_indices(train), image_files(train, sizes=sizes), image_root(train))


def check_arms(argv: list[str], config_dir: str) -> None:
    """A row of an ablation table (``arm=``, conf/arm/) chooses its run's method; ``aug=`` on the
    same command line would replace every arm's method (``experiment=study_flowers aug=none,mixup``
    trains the same method once per arm, then the report refuses the duplicates)."""
    import yaml

    pairs = [a.split("=", 1) for a in argv if "=" in a and not a.startswith("-")]
    given = {k.lstrip("+~"): v for k, v in pairs}
    if "aug" not in given:
        return
    arms = given.get("arm") not in (None, "null")
    experiment = given.get("experiment")
    path = Path(config_dir) / "experiment" / f"{experiment}.yaml"
    if not arms and experiment and path.is_file():
        data = yaml.safe_load(path.read_text()) or {}
        params = ((data.get("hydra") or {}).get("sweeper") or {}).get("params") or {}
        arms = "arm" in params
    if arms:
        raise ConfigError(
            f"aug={given['aug']}: the runs' methods are chosen by arm= (conf/arm/"
            + (f", swept by experiment={experiment}" if "arm" not in given else "")
            + "), and aug= would replace every arm's method: leave aug= out and pick rows with "
            "arm=<name>[,<name>...] (their settings, aug.<key>=..., may still be given)"
        )


def mark_swept_keys(argv: list[str]) -> None:
    """For a --multirun, tell each job which keys the command line sweeps (its folder is named by
    them, config.swept_dirname)."""
    import os

    from hydra.core.override_parser.overrides_parser import OverridesParser

    from .config import SWEPT_KEYS_ENV

    if not LISTING_FLAGS & set(argv):
        return
    overrides = OverridesParser.create().parse_overrides(
        [a for a in argv if not a.startswith("-") and "=" in a]
    )
    os.environ[SWEPT_KEYS_ENV] = ",".join(o.get_key_element() for o in overrides if o.is_sweep_override())


def _groups_of(config_file: Path) -> list[str]:
    """The config groups a primary config's defaults list names (``aug: none``, ``experiment:
    null``), sorted; Hydra's own settings and the machine's ``local`` group left out."""
    import yaml

    defaults = (yaml.safe_load(config_file.read_text()) or {}).get("defaults") or []
    names = set()
    for entry in defaults:
        if isinstance(entry, dict):
            for key in entry:
                name = key.split()[-1]  # "optional local", "override hydra/job_logging"
                if "/" not in name and name not in ("hydra", "local"):
                    names.add(name)
        elif isinstance(entry, str) and (config_file.parent / f"{entry}.yaml").is_file():
            names.update(_groups_of(config_file.parent / f"{entry}.yaml"))  # another config's (generate's)
    return sorted(n for n in names if (config_file.parent / n).is_dir())


def print_help(argv: list[str], config_dir: str, config_name: str) -> None:
    """``--help``: the config groups and their options (read from the config folder) and the
    composed config with the command line's overrides. Hydra's own help lists the same, but takes
    seconds per dozen groups to build; ``--hydra-help`` still shows Hydra's flags."""

    script = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "train.py"
    root = Path(config_dir)
    groups = {}
    for name in _groups_of(root / f"{config_name}.yaml"):
        options = sorted(f.stem for f in (root / name).glob("*.yaml"))
        if options:
            groups[name] = options
    cfg = preflight(argv, config_dir, config_name)
    lines = [
        f"usage: python {script} [group=option ...] [key=value ...] [--multirun] [--cfg job]",
        "",
        "== Configuration groups ==",
        "Compose your configuration from those groups (group=option)",
        "",
        *(f"{name}: {', '.join(options)}" for name, options in groups.items()),
        "",
        "== Config ==",
        "Override anything in the config (foo.bar=value)",
        "",
        OmegaConf.to_yaml(cfg).rstrip(),
        "",
        "Use --hydra-help to view Hydra specific help",
    ]
    print("\n".join(lines), flush=True)
