"""Entry points behind train.py, evaluate.py, generate.py and figure4.py, and the Hydra callbacks that
check a run as it starts and sum a sweep up: user errors end with a message, not a traceback (the
command line's checks before Hydra: preflight; report.py: report_cli)."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from contextlib import contextmanager, suppress
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from .commands import quoted_arg, resume_command, sweep_command
from .config import check_protocol_optimiser, validate_config
from .errors import ConfigError, free_space, user_errors_reported
from .preflight import check_job_edits, expand_sweep


def run_train(cfg: DictConfig) -> float | None:
    """Run training; return validation top-1 (the value Hydra sweepers optimise).

    The config and the dataset are checked before the training stack is imported, so a typo or
    missing data is reported within seconds."""
    try:
        return _run_train(cfg)
    except BaseException as exc:
        if not isinstance(exc, Exception):  # Ctrl-C or SIGTERM: Hydra calls no callback after the job
            _summary_after_stop()
        raise
    finally:
        _keep_runs_record(cfg)
        _refresh_sweep_summary(cfg)


def _refresh_sweep_summary(cfg: DictConfig) -> None:
    """A single run in a sweep job's folder (resumed there with ``hydra.run.dir=<job>``): the
    sweep's summary.csv is written again with the job's new outcome (a sweep's own jobs write it
    through SweepSummary)."""
    from .errors import in_multirun

    with suppress(Exception):  # the run's outcome is its own to report, never this summary's
        if not in_multirun():
            update_sweep_summary(Path(str(cfg.paths.output_dir)).expanduser().resolve().parent)


def _keep_runs_record(cfg: DictConfig) -> None:
    """A job that trained nothing in an earlier run's folder (a sweep's job refused for other
    settings, a resume refused for other classes, a finished run with nothing to do): Hydra
    rewrote the folder's ``.hydra/`` with this command before the job started, and the run's own
    record is put back."""
    with suppress(Exception):  # the job's outcome is its own to report, never this record's
        from .training.locate import restore_command_record

        restore_command_record(Path(str(cfg.paths.output_dir)).expanduser())


def _summary_after_stop() -> None:
    """A sweep's job stopped by Ctrl-C or SIGTERM: the sweep folder's summary.csv is written with it
    (its failure.json says it was stopped), as after a job that ends."""
    from .errors import in_multirun

    with suppress(Exception):  # the stop is the run's to report, never this summary's
        if in_multirun():
            from hydra.core.hydra_config import HydraConfig

            from .reporting.sweeps import write_summary

            write_summary(Path(str(HydraConfig.get().sweep.dir)))


def _run_train(cfg: DictConfig) -> float | None:
    from .generation.store import sizes_read_once

    with (
        user_errors_reported(
            lambda: training_disk_full_advice(cfg),
            lambda: training_memory_advice(cfg),
            lambda by_sigterm: training_resume_advice(cfg, by_sigterm),
        ),
        sizes_read_once(),  # the check below and DiffuseMix's at start-up read the same images
    ):
        with refusal_leaves_no_folder(cfg):
            quick_checks(cfg)
            # After the checks that take no time: a setting or folder refused at once is one line.
            if cfg.get("print_config", False):
                print_config_tree(cfg)
            from .data.splits import build_splits

            splits = build_splits(cfg.dataset, cfg.paths.data_dir)
            from .training.run import (
                check_fractions_leave_a_batch,
                check_trainer_settings,
                check_validation_settings,
            )

            # (dataset.val_fraction=0: no split to read; an attack of a test split there is not)
            check_validation_settings(cfg, len(splits.val), splits.test is not None)
            check_fractions_leave_a_batch(cfg, splits.train, splits.val, splits.test, _given_by_debug())
            check_trainer_settings(cfg, validating=len(splits.val) > 0)
            if _starts_anew(cfg):
                from .training.classifier import check_model_runs, fetch_pretrained

                # Model options, an image size or a weights file its model cannot take: no run folder
                check_model_runs(cfg, splits.train.num_classes)
                fetch_pretrained(cfg)  # nor published weights that cannot be had
            if cfg.aug.name == "diffusemix" and cfg.get("ckpt_path") is None:
                check_job_edits(
                    cfg, set(), splits, sizes=True
                )  # a new run without its edits leaves no folder
        from .errors import UserError
        from .training.run import train

        # (train's own checks of the settings and the folder, before it records a failure: a
        # refusal there leaves no folder, or a sweep job's with failure.json, as those above)
        with refusal_leaves_no_folder(cfg, refused=lambda exc: isinstance(exc, UserError)):
            metrics = train(cfg, splits=splits)
    return metrics.get("val_top1")


def _starts_anew(cfg: DictConfig) -> bool:
    """A run that builds its model from its starting weights: no checkpoint to resume from
    (``ckpt_path`` unset, or ``auto`` with no last.ckpt in its folder)."""
    given = cfg.get("ckpt_path")
    if given is None:
        return True
    last = Path(str(cfg.paths.output_dir)).expanduser() / "checkpoints" / "last.ckpt"
    return str(given) == "auto" and not last.is_file()


def _given_by_debug() -> Callable[[str], str]:
    """For a trainer setting's message: `` (debug=limit's)`` where the run's ``debug`` option set it
    (the command line did not), else ""."""
    try:
        from hydra.core.hydra_config import HydraConfig

        hc = HydraConfig.get()
        choice = hc.runtime.choices.get("debug")
        task = [o.lstrip("+~") for o in hc.overrides.task]
    except Exception:  # (no Hydra run: the API)
        return lambda key: ""
    if choice in (None, "none", "null"):
        return lambda key: ""
    return lambda key: "" if any(o.startswith(f"trainer.{key}=") for o in task) else f" (debug={choice}'s)"


@contextmanager
def refusal_leaves_no_folder(cfg: DictConfig, refused: Callable[[BaseException], bool] = lambda exc: True):
    """A run refused before training (its data, found wrong as it is read): Hydra has made the run
    folder and written its files there. A single run's folder that holds nothing else is removed,
    as a command refused at start-up makes none; a sweep job's is kept with ``failure.json``, so the
    sweep's summary and reports count it as failed. A folder with earlier work is left as it was.
    ``refused``: whether an error is such a refusal (every error, unless it says otherwise)."""
    try:
        yield
    except BaseException as exc:
        from .errors import in_multirun

        if not refused(exc):
            raise

        with suppress(Exception):  # the error is the run's to report, never this clean-up's
            run_dir = Path(str(cfg.paths.output_dir)).expanduser()
            # Hydra's files: its .hydra/ folder and the job's log (<task_name>.log).
            hydra_files = {".hydra", f"{cfg.get('task_name', 'train')}.log"}
            if run_dir.is_dir() and {p.name for p in run_dir.iterdir()} <= hydra_files:
                if in_multirun():
                    from .training.run import record_failure

                    record_failure(run_dir, exc)
                else:
                    shutil.rmtree(run_dir)
        raise


def generation_refused(exc: BaseException) -> bool:
    """A generate.py refused (a setting, a file, the data, a store) or stopped before it planned its
    edits or changed a store: its log says nothing the message did not. The log of a run that began
    its work (a store converted, the plan, why it stopped), or of an error in the code, stays."""
    from .errors import SweepJobError, UserError

    if not isinstance(exc, (UserError, SweepJobError, SystemExit, KeyboardInterrupt)):
        return False
    chain: BaseException | None = exc  # (the message's exit keeps the error it reports as context)
    seen = []
    while chain is not None and chain not in seen:
        if getattr(chain, "work_begun", 0):
            return False
        seen.append(chain)
        chain = chain.__cause__ or chain.__context__
    return True


def run_figure4(cfg: DictConfig) -> None:
    """figure4.py's work: one message for a user error, and a refused command (its edits missing,
    say) leaves no folder that holds only Hydra's files, as train.py's."""
    from .augment.diffusemix.figure4 import run_figure4 as draw

    with refusal_leaves_no_folder(cfg):
        draw(cfg)


def quick_checks(cfg: DictConfig) -> None:
    """The checks that read no data: the settings, the dataset's folder, the model's name."""
    check_working_folder()
    validate_config(cfg)
    check_protocol_optimiser(cfg)
    check_data_present(cfg)
    from .training.classifier import check_model

    check_model(cfg)  # an architecture timm lacks is named before the data is read
    from .augment.registry import check_aug_settings, check_loss_views

    check_loss_views(cfg)  # loss=jsd with a method of one view per image
    check_aug_settings(cfg)  # the method's own checks (Co-Mixup's block_num=0)


def run_dir_override(run_dir: Path) -> str:
    """``hydra.run.dir=<run_dir>`` as a shell passes it to Hydra (see ``commands.quoted_arg``)."""
    return quoted_arg("hydra.run.dir", str(run_dir))


def training_resume_advice(cfg: DictConfig, by_sigterm: bool = False) -> str:
    """How the run in ``paths.output_dir`` goes on: from its last checkpoint, or from the start; a
    sweep's job, with the rest of its sweep (``sweep_command``).
    ``by_sigterm``: a SIGTERM stopped it (last.ckpt was written at the step it stopped after,
    unless the signal came outside the training steps)."""
    run_dir = Path(str(cfg.paths.output_dir)).expanduser()
    has_last = (run_dir / "checkpoints" / "last.ckpt").is_file()
    when = ""
    if has_last:
        every = cfg.callbacks.get("checkpoint_every_n_steps")
        steps = "every optimiser step" if every == 1 else f"every {every} optimiser steps"
        when = "every epoch's end" + (f" and {steps}" if every else "")
        if by_sigterm:
            when = f"the step the SIGTERM came in, if it came during training; else at {when}"
    sweep = sweep_command()
    if sweep is not None:
        job = (
            f"this job ({run_dir.name}) goes on from its last checkpoint (written at {when})"
            if has_last
            else f"this job ({run_dir.name}) starts again (it had no checkpoint yet)"
        )
        return (
            f"go on with the sweep in its folder: {sweep} (its finished jobs have nothing to do, {job}, "
            "and the jobs not run yet run)."
        )
    if has_last:
        # Checkpoints are written whole or not at all (training/checkpoint_io.py): last.ckpt is sound.
        command = resume_command(run_dir)
        if command is not None:
            return (
                f"resume the run from its last checkpoint (written at {when}): {command} (hydra.run.dir: "
                "or the folder's new place)."
            )
        return (
            f"resume the run from its last checkpoint (written at {when}): the same command with "
            f"ckpt_path=last and {run_dir_override(run_dir)} (or the folder's new place)."
        )
    if cfg.get("ckpt_path") not in (None, "auto", "last"):
        return f"run the same command again: it starts again from ckpt_path={cfg.ckpt_path}."
    return "run the same command again (the run had no checkpoint yet)."


def training_disk_full_advice(cfg: DictConfig) -> str:
    run_dir = Path(str(cfg.paths.output_dir)).expanduser()
    advice = (
        f"The run folder {run_dir} is on a disk with {free_space(run_dir)} free. Free space there (or move "
        "the folder to a larger disk), then "
    )
    return advice + training_resume_advice(cfg)


def training_memory_advice(cfg: DictConfig) -> str:
    d = cfg.dataset
    run_dir = Path(str(cfg.paths.output_dir)).expanduser()
    precision = str(cfg.trainer.get("precision"))
    advice = f"If it ran out while training, lower dataset.batch_size (now {d.batch_size})"
    if "16" not in precision:
        advice += f" or train in bf16 (trainer.precision=bf16-mixed; now {precision})"
    advice += " and start a new run (a resumed run keeps its batch size and precision)"
    later = (
        "dataset.eval_batch_size (now "
        + (str(d.eval_batch_size) if d.eval_batch_size else "the training batch")
        + ")"
    )
    if cfg.eval.fgsm or cfg.eval.pgd:
        later += ", or eval.batch_size if while attacking the selected checkpoint"
    sweep = sweep_command()
    if sweep is not None:
        resume = f"and go on with the sweep in its folder, the lower setting added: {sweep}"
    elif (run_dir / "checkpoints" / "last.ckpt").is_file():
        resume = f"and resume the run: the same command with ckpt_path=last and {run_dir_override(run_dir)}"
    else:
        resume = "and run it again"
    return f"{advice}. If while validating or testing, lower {later}, {resume}."


def check_settings(cfg: DictConfig) -> None:
    """Every section against its schema (types, choices, ranges), before torch is imported."""
    with user_errors_reported():
        check_working_folder()
        validate_config(cfg)


def check_working_folder(hydra_cfg: DictConfig | None = None) -> None:
    """``hydra.job.chdir=true`` refused: the scripts read a relative path (the data, the dataset's
    root, the caches) from the folder they are launched from, as the settings' comments and the
    start-up checks do, and write every file into the run folder by its path; in the run folder,
    those paths would name folders that are not there."""
    from hydra.core.hydra_config import HydraConfig

    if hydra_cfg is None and HydraConfig.initialized():
        hydra_cfg = HydraConfig.get()
    if hydra_cfg is None or OmegaConf.select(hydra_cfg, "job.chdir") is not True:
        return
    script = Path(sys.argv[0]).name if sys.argv and sys.argv[0].endswith(".py") else "this command"
    raise ConfigError(
        f"hydra.job.chdir=true: {script} reads relative paths (paths.data_dir, dataset.root, the caches) "
        "from the folder it is launched from and writes its files into the run folder by their paths, so it "
        "runs where it is launched; leave hydra.job.chdir out (or give hydra.job.chdir=false)"
    )


def check_data_present(cfg: DictConfig) -> None:
    """Stop at once when the dataset's folder is missing (unless dataset.download will fetch it),
    before torch and the readers are imported; the readers check every file they need later."""
    from .data.layouts import check_present

    with user_errors_reported():
        check_present(cfg.dataset, cfg.paths.data_dir)


ORDER = (
    "dataset",
    "model",
    "aug",
    "loss",
    "optim",
    "sched",
    "trainer",
    "generator",
    "fractals",
    "eval",
    "adv",
)


def print_config_tree(cfg: DictConfig) -> None:
    """The resolved settings, one branch per group (the paper's numbers of an experiment left out)."""
    data = OmegaConf.to_container(cfg, resolve=True)
    data.pop("paper", None)
    groups = [k for k in ORDER if k in data] + [
        k for k in data if k not in ORDER and isinstance(data[k], dict)
    ]
    top = {k: v for k, v in data.items() if not isinstance(v, dict)}
    try:
        from rich.console import Console
        from rich.syntax import Syntax
        from rich.tree import Tree
    except ModuleNotFoundError:
        print(OmegaConf.to_yaml({**top, **{k: data[k] for k in groups}}), flush=True)
        return
    tree = Tree("config", guide_style="dim")
    texts = {key: OmegaConf.to_yaml(data[key]) for key in groups} | {"run": OmegaConf.to_yaml(top)}
    for key, text in texts.items():
        tree.add(key).add(Syntax(text, "yaml", background_color="default"))
    # Wide enough for the longest line (rich cuts lines at its width, 80 columns in a log: a
    # run folder's path cut short read as another path); a terminal wraps what it cannot show.
    longest = max((len(line) for text in texts.values() for line in text.splitlines()), default=0)
    console = Console()
    console.width = max(console.width, longest + 12)  # (the tree's indent: 8 columns)
    console.print(tree)


def run_evaluate(cfg: DictConfig) -> dict:
    """Attack a finished run's checkpoint (FGSM/PGD) and add the errors to its metrics.json."""
    with user_errors_reported(
        lambda: evaluation_disk_full_advice(cfg),
        lambda: evaluation_memory_advice(cfg),
        lambda _: "metrics.json is kept as it was; run the same command again.",
    ):
        from .training.locate import check_request

        check_request(cfg)  # a missing ckpt=, attack or checkpoint: answered before torch loads
        from .training.evaluate import evaluate_run
        from .training.locate import run_folder_of

        result = evaluate_run(cfg)
    update_sweep_summary(run_folder_of(Path(str(cfg.ckpt))).resolve().parent)
    return result


def update_sweep_summary(folder: Path) -> None:
    """A run of a sweep evaluated again: its sweep's ``summary.csv`` gets the new numbers, when
    ``folder`` is a sweep's (Hydra's multirun.yaml beside the summary; a run folder's own
    summary.csv is its epochs'). A summary that cannot be written is said, not an error:
    metrics.json holds the numbers."""
    if not (folder / "summary.csv").is_file() or not (folder / "multirun.yaml").is_file():
        return
    from .reporting.sweeps import write_summary

    try:
        write_summary(folder)
    except Exception as exc:
        print(f"{folder / 'summary.csv'} not updated ({exc}); metrics.json holds the numbers", flush=True)


def evaluation_memory_advice(cfg: DictConfig) -> str:
    now = cfg.eval.batch_size or "the run's evaluation batch"
    return f"Lower eval.batch_size (the images attacked at once; now {now}) and run the same command again."


def evaluation_disk_full_advice(cfg: DictConfig) -> str:
    from .training.locate import run_folder_of

    run_dir = run_folder_of(Path(str(cfg.ckpt)))
    return (
        f"evaluate.py adds its numbers to {run_dir / 'metrics.json'}, on a disk with {free_space(run_dir)} "
        "free; that file is kept as it was. Free space there, then run the same command again."
    )


try:  # Hydra's callback base (no-op hooks for the events this callback does not use)
    from hydra.experimental.callback import Callback as HydraCallback
except ImportError:  # pragma: no cover
    HydraCallback = object


class SweepSummary(HydraCallback):
    """Hydra callback (``hydra.callbacks.sweep_summary``): after each job of a ``--multirun``
    sweep, one line says how many of its jobs so far finished, failed (naming their folders) or
    diverged and how many are still to run (left unrun if the sweep stops), and
    ``summary.csv`` in the sweep folder lists each job folder with its status, the settings the
    sweep varies and its numbers (``reporting.sweeps``; written after every job, since Hydra stops
    calling callbacks once a failed job is reported; evaluate.py writes it again)."""

    planned: int | None = None

    def __init__(self) -> None:
        self.ended: set[str] = set()  # the folders of this launch's jobs that have ended
        self.errors: set[str] = set()  # those whose job ended on an error

    def on_multirun_start(self, config, **kwargs) -> None:
        """How many jobs the sweep will run (the command line's overrides crossed with the
        experiment's sweep), so each line can say how many are still to run."""
        if _not_training(config):
            return
        try:
            params = config.hydra.sweeper.get("params") or {}
            conf = [str(c.path) for c in config.hydra.runtime.config_sources if c.provider == "main"]
            self.planned = len(
                expand_sweep(params, list(config.hydra.overrides.task), conf[0] if conf else None)
            )
        except Exception:  # a summary must never fail the sweep
            self.planned = None
        keep_earlier_launch(Path(str(config.hydra.sweep.dir)), list(config.hydra.overrides.task))

    def on_job_end(self, config, job_return=None, **kwargs) -> None:
        from hydra.types import RunMode

        if config.hydra.mode != RunMode.MULTIRUN or _not_training(config):
            return
        try:
            from hydra.core.utils import JobStatus

            folder = Path(str(config.hydra.runtime.output_dir)).name
            self.ended.add(folder)
            if job_return is not None and getattr(job_return, "status", None) == JobStatus.FAILED:
                self.errors.add(folder)
            self.write(Path(str(config.hydra.sweep.dir)))
        except Exception as exc:  # a summary must never fail the sweep
            print(f"sweep summary not written: {exc}", flush=True)

    def write(self, sweep: Path) -> None:
        from .reporting.sweeps import write_summary

        if not sweep.is_dir():
            return
        rows = write_summary(sweep)
        # This launch's jobs when they are known (one process runs them all: Hydra's local
        # launcher); else (each job in its own process, on SLURM) every run in the folder.
        mine = [r for r in rows if r["job"] in self.ended] if self.planned is not None else rows
        counts = {s: sum(r["status"] == s for r in mine) for s in ("finished", "failed", "diverged")}
        stopped = [r["job"] for r in mine if r["status"] in ("failed", "diverged")]
        # A job refused before it touched its folder (an earlier launch's finished run there,
        # without ckpt_path=auto): the folder's run is counted as it is, the refusal said.
        refused = [r["job"] for r in mine if r["job"] in self.errors and r["status"] == "finished"]
        planned = f" of {self.planned}" if self.planned is not None else ""
        left = f", {max(self.planned - len(self.ended), 0)} not run yet" if self.planned is not None else ""
        others = len(rows) - len(mine)
        print(
            f"sweep so far: {len(mine)}{planned} jobs: {counts['finished']} finished"
            + (
                f" ({len(refused)} of them an earlier run whose job this launch refused: {_first(refused)})"
                if refused
                else ""
            )
            + f", {counts['failed']} failed, {counts['diverged']} diverged{left}; {sweep / 'summary.csv'}"
            # Runs in the folder this launch has not ended (yet): an earlier launch's, which a
            # relaunch's jobs still to run may be.
            + (f" lists {len(rows)} runs of the folder, earlier launches' included" if others else "")
            + (f"; failed or diverged: {_first(stopped)}" if stopped else ""),
            flush=True,
        )


def _not_training(config) -> bool:
    """A sweep of generate.py or figure4.py (their configs hold the training's, callbacks too): no
    training summary (it listed their jobs as runs with no numbers)."""
    return config.get("task_name", "train") != "train"


def keep_earlier_launch(sweep: Path, overrides: list[str]) -> Path | None:
    """A sweep launched again in its folder with other settings (more seeds, another value):
    Hydra overwrites ``multirun.yaml``, the record of the launch, so the earlier one is kept
    beside it as ``multirun.<its time>.yaml``; the same command again (a resume) keeps nothing.
    Returns the kept file, if any."""
    import yaml

    record = sweep / "multirun.yaml"
    try:
        earlier = (yaml.safe_load(record.read_text()) or {})["hydra"]["overrides"]["task"]
    except Exception:  # none, or not Hydra's: nothing to keep
        earlier = None
    if earlier is None or _launch(earlier) == _launch(overrides):
        return None
    from datetime import datetime

    stamp = datetime.fromtimestamp(record.stat().st_mtime).strftime("%Y-%m-%d_%H-%M-%S")
    kept, k = sweep / f"multirun.{stamp}.yaml", 1
    while kept.exists():
        kept, k = sweep / f"multirun.{stamp}-{k}.yaml", k + 1
    with suppress(OSError):  # a record kept must never fail the sweep
        record.rename(kept)
        print(f"the sweep folder's earlier launch ({' '.join(earlier)}) is kept in {kept.name}", flush=True)
        return kept
    return None


def _launch(overrides) -> set[str]:
    """A launch's settings as a set: in any order, without ``ckpt_path`` (a sweep's resume adds
    ``ckpt_path=auto``, sweep_command's advice)."""
    return {str(o) for o in overrides if not str(o).lstrip("+~").startswith("ckpt_path=")}


def _first(names: list[str], shown: int = 5) -> str:
    """The first ``shown`` names, and how many more (summary.csv lists them all)."""
    more = f" and {len(names) - shown} more (summary.csv's status column)" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


class StartChecks(HydraCallback):
    """Hydra callback (``hydra.callbacks.start_checks``) of train.py: the checks that need no data
    (settings, the dataset's folder, the model's name, a resume's checkpoint and saved settings)
    run before Hydra writes the job's ``.hydra/`` files and ``train.log``. A refused command makes
    no run folder, and leaves a resumed one's record of its own command as it was; a resume of a
    finished run says so and exits 0 without touching it. (The jobs of a ``--multirun`` are checked
    when they start, by ``run_train`` and ``training.run.train``.)"""

    def on_multirun_start(self, config, **kwargs) -> None:
        """A sweep's folder that cannot be made or written, or ``hydra.job.chdir=true``: refused
        before the sweep makes its folder."""
        import os

        try:
            sweep_dir = Path(os.path.abspath(str(OmegaConf.select(config, "hydra.sweep.dir"))))
        except Exception:  # a folder this check cannot resolve: the sweep meets it as before
            return
        with user_errors_reported():
            check_working_folder(config.hydra)
            _check_run_folder(sweep_dir, "hydra.sweep.dir")

    def on_run_start(self, config, **kwargs) -> None:
        from hydra.core.hydra_config import HydraConfig

        before = HydraConfig.instance().cfg
        try:
            task, run_dir = _task_config(config)
        except Exception:  # a config this check cannot read: run_train checks it again at the start
            HydraConfig.instance().cfg = before
            return
        try:
            with user_errors_reported():  # a user error: one message, exit code 1
                _check_run_folder(run_dir)
                _check_resume_settings_first(task, run_dir)
                quick_checks(task)
                _check_resume_at_start(task, run_dir)
        except Exception:  # anything else is run_train's to meet and report, as without this check
            return
        finally:
            HydraConfig.instance().cfg = before


def _check_run_folder(run_dir: Path, setting: str = "hydra.run.dir") -> None:
    """The run (or sweep) folder can be made and written, before Hydra makes it (its own error
    there was a traceback)."""
    from .files import folder_problem

    problem = folder_problem(run_dir)
    if problem:
        raise ConfigError(
            f"{setting}={run_dir}: the folder cannot be made or written there ({problem}); give another with "
            f"{setting}=<folder> (or paths.log_dir=<folder>, under which runs get their own folders)"
        )


def _task_config(config) -> tuple[DictConfig, Path]:
    """The task's config as run_job will give it (``${hydra:...}`` resolving to the run folder),
    with Hydra's config set for it (the caller puts the previous one back), and the run folder."""
    import copy
    import os

    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    hydra_config = copy.deepcopy(config)
    run_dir = Path(os.path.abspath(str(OmegaConf.select(hydra_config, "hydra.run.dir"))))
    with open_dict(hydra_config.hydra.runtime):
        hydra_config.hydra.runtime.output_dir = str(run_dir)
    HydraConfig.instance().set_config(hydra_config)
    task = copy.deepcopy(hydra_config)
    with open_dict(task):
        del task["hydra"]
    return task, run_dir


def _check_resume_settings_first(task: DictConfig, run_dir: Path) -> None:
    """The run folder and ``ckpt_path`` before the dataset is looked for: a new run into a folder
    holding an earlier run is refused (it met the default dataset's absence first, not the advice to
    go on with ckpt_path=last); a ckpt_path that is no checkpoint (lats) is named; a resume's
    settings are compared with the run's saved ones (a resume given the run folder alone, the
    README's form, gets the run's own command). _check_resume_at_start makes the rest of a
    resume's checks after quick_checks."""
    from .training.resume import check_checkpoint_given, check_no_earlier_run, check_resume_matches

    name = str(task.get("task_name", "train"))
    if name != "train":  # (figure4.py: the run folder is for its own files)
        ran = (run_dir / "metrics.json").is_file() or any((run_dir / "checkpoints").glob("*.ckpt"))
        if ran:
            raise ConfigError(
                f"hydra.run.dir={run_dir} holds a training run (metrics.json or checkpoints/), and {name}.py "
                f"writes its own files into its run folder ({'figure4.png, ' if name == 'figure4' else ''}.hydra/, "
                f"{name}.log): give it a folder of "
                "its own (hydra.run.dir=<new folder>), or leave hydra.run.dir out"
            )
        return
    given = task.get("ckpt_path")
    if not given:
        check_no_earlier_run(run_dir, None)
        return
    check_checkpoint_given(str(given))  # (before the settings, whose refusal repeats the value)
    if given == "auto" and not (run_dir / "checkpoints" / "last.ckpt").is_file():
        check_no_earlier_run(run_dir, "auto")  # a new run there (a finished run's folder refused)
        return
    saved = run_dir / "config_resolved.yaml"
    if saved.is_file():
        check_resume_matches(task, saved, str(given))


def _check_resume_at_start(task: DictConfig, run_dir: Path) -> None:
    """A resume into a folder saved with other settings, or from a checkpoint that is not there, is
    refused, as is a new run into a folder holding an earlier run's checkpoints or results; a resume
    of a finished run that asks for nothing new ends here (exit 0)."""
    from .training.resume import (
        asks_more,
        check_resume,
        check_settings_kept,
        checkpoint_step,
        finished_metrics,
        nothing_to_do,
        resolve_auto_resume,
    )

    given = task.ckpt_path
    resolve_auto_resume(task, run_dir)
    if given == "auto" and task.ckpt_path is None:  # no checkpoint yet: a new run, from model.weights
        from .config import check_weights_there

        check_weights_there(task)
    check_resume(task, run_dir, given)
    if task.ckpt_path is None:
        return
    from .training.run import _resolve_ckpt_path

    _resolve_ckpt_path(task, run_dir / "checkpoints")  # a checkpoint past trainer.max_epochs: refused
    check_settings_kept(task, run_dir, given)
    if not (run_dir / "metrics.json").is_file():
        return
    ckpt = run_dir / "checkpoints" / "last.ckpt" if task.ckpt_path == "last" else Path(task.ckpt_path)
    try:
        step = checkpoint_step(ckpt.expanduser())
    except Exception:  # not a readable checkpoint: training.run.train says so, naming the file
        return
    earlier = finished_metrics(task, run_dir, step)
    from .robustness import attack_specs

    if earlier is not None and not asks_more(task, earlier, attack_specs(task.eval)):
        print(nothing_to_do(run_dir, earlier), flush=True)
        raise SystemExit(0)
