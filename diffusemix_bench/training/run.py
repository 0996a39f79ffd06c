"""The training job: build data, model and augmentation from a config, fit, test once, report."""

from __future__ import annotations

import inspect
import json
import logging
import math
import os
import sys
import time
import uuid
from collections.abc import Callable
from contextlib import contextmanager, suppress
from dataclasses import asdict
from pathlib import Path

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import (
    Callback,
    EarlyStopping,
    LearningRateMonitor,
    RichProgressBar,
    TQDMProgressBar,
)
from pytorch_lightning.utilities.exceptions import MisconfigurationException
from pytorch_lightning.utilities.rank_zero import rank_zero_only

from .. import quiet  # noqa: F401  (library messages a user cannot act on)
from ..augment import create_aug
from ..augment.registry import check_loss_views, run_context
from ..config import (
    BATCH_COUNT_SETTINGS,
    as_lightning_count,
    check_protocol_optimiser,
    outside_the_table,
    validate_config,
)
from ..data.datamodule import ImageDataModule
from ..data.layouts import dataset_root
from ..data.order import SPLIT_ORDER
from ..data.splits import Splits, build_splits, verify_as_asked
from ..errors import ConfigError, UserError, is_interrupt, is_terminated, trainer_refusal, user_message
from ..files import COMMAND_RECORD, read_attempts, write_atomic
from ..models.weights import key_listing
from ..progress import progress_bar
from ..robustness import attack_specs
from ..robustness.adversarial_training import FastAdversarial
from ..signals import note_sigterm_only, sigterm_stops_between_runs
from .checkpoint_io import AtomicCheckpointIO, CheckpointOnSigterm, RunCheckpoint, StepCheckpoint
from .classifier import build_model
from .evaluate import (
    attack_checkpoint,
    data_folder,
    eval_split,
    no_test_to_attack,
    no_validation_to_attack,
    place_where_launched,
    robustness_keys,
    set_aside_replaced,
    trained_with,
    with_robustness,
)
from .locate import (
    check_same_classes,
    check_same_data,
    class_ids,
    data_record,
    keep_command_record,
    load_failure_reason,
    load_saved_config,
    write_classes,
    write_data_record,
)
from .module import UNKNOWN, ClassifierModule, blew_up_record, vanilla_batches_per_epoch
from .provenance import code_state, device_name, shortened_by, versions, weights_file
from .resume import (
    TRAINED_FURTHER,
    asks_more,
    check_resume,
    check_settings_kept,
    finished_metrics,
    keep_earlier_attempt,
    nothing_to_do,
    resolve_auto_resume,
)
from .summary import EpochSummary

log = logging.getLogger(__name__)

#: What reading image folders noticed, recorded under metrics.json's data_notes.
DATA_NOTES = (
    "skipped_files",
    "empty_class_folders",
    "links_not_followed",
    "classes_absent",
    "hidden_folders",
    "differs_from_release",
)


def _resolve_ckpt_path(cfg: DictConfig, ckpt_dir: Path) -> tuple[str | None, int | None]:
    """The checkpoint a run resumes from (``last``: the run folder's ``last.ckpt``), checked, and
    the optimiser step it was taken at; (None, None) for a fresh run. A checkpoint that has trained
    more epochs than ``trainer.max_epochs`` is refused (the run would be recorded with fewer epochs
    than it trained)."""
    ckpt_path = cfg.ckpt_path
    if ckpt_path is None:
        return None, None
    if ckpt_path == "last":  # that it is there was checked with the settings (resume.check_resume)
        ckpt_path = str(ckpt_dir / "last.ckpt")
    ckpt = load_checkpoint(Path(ckpt_path).expanduser(), "ckpt_path")
    progress = ckpt.get("loops", {}).get("fit_loop", {}).get("epoch_progress", {}).get("current", {})
    # A checkpoint taken mid-epoch has started one more epoch than it processed.
    whole = int(progress.get("processed", 0))
    trained = max(whole, int(progress.get("started", 0)))
    wanted = cfg.trainer.max_epochs
    if wanted is not None and wanted >= 1 and trained > wanted:
        done = f"{trained} epochs" if trained == whole else f"{whole} epochs and part of epoch {trained}"
        raise ConfigError(
            f"ckpt_path={cfg.ckpt_path}: the checkpoint {ckpt_path} has trained {done}, more than "
            f"trainer.max_epochs={wanted}. Resume with trainer.max_epochs={trained} or more (the run's own "
            "number, or longer), or evaluate the run as it is with evaluate.py"
        )
    return ckpt_path, int(ckpt.get("global_step", 0))


def check_checkpoint_fits(module: torch.nn.Module, path: Path) -> None:
    """The checkpoint's weights are the built model's (names and shapes; a compiled run's names
    read without torch.compile's ``_orig_mod.``): one message counting what differs, not the load's
    error after the run folder was set up."""

    def plain(state) -> dict:
        return {k.replace("_orig_mod.", ""): tuple(getattr(v, "shape", ())) for k, v in state.items()}

    saved = plain(load_checkpoint(path, "ckpt_path")["state_dict"])
    built = plain(module.state_dict())
    missing = sorted(built.keys() - saved.keys())
    unexpected = sorted(saved.keys() - built.keys())
    shapes = sorted(k for k in built.keys() & saved.keys() if built[k] != saved[k])
    if not (missing or unexpected or shapes):
        return
    parts = []
    if missing:
        parts.append(f"{len(missing)} of the model's tensors missing ({key_listing(missing)})")
    if unexpected:
        parts.append(f"{len(unexpected)} not in the model ({key_listing(unexpected)})")
    if shapes:
        shown = [f"{k}: {list(saved[k])} in the checkpoint, {list(built[k])} here" for k in shapes]
        parts.append(f"{len(shapes)} of other shapes ({key_listing(shown)})")
    raise CheckpointFileError(
        f"ckpt_path={path} holds the weights of another model than these settings build ({'; '.join(parts)}): "
        "resume with the settings it was trained with (its run folder's config_resolved.yaml), or start a new "
        "run from its weights with model.weights=<a weight file>"
    )


class CheckpointFileError(UserError, ValueError):
    """A checkpoint file cannot be read as one (truncated, not a checkpoint, or holding objects
    a weights-only load refuses)."""


def load_checkpoint(path: Path, setting: str) -> dict:
    """Open ``path`` as a checkpoint (weights-only, memory-mapped: nothing is unpickled in full and
    nothing is copied) before training or evaluation starts, so a bad file is named at once."""
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic[:2] != b"PK":  # torch.save writes a zip archive
        raise CheckpointFileError(
            f"{setting}={path} is not a checkpoint (not the zip archive torch.save writes: truncated, or "
            "another kind of file). Point it at a .ckpt written by train.py (checkpoints/last.ckpt or "
            "best-*.ckpt of a run folder)."
        )
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:  # torch raises many types for a bad file; all mean the same here
        raise CheckpointFileError(
            f"{setting}={path} is not a readable checkpoint ({load_failure_reason(exc)}). Point {setting} at "
            "a .ckpt written by train.py (checkpoints/last.ckpt or best-*.ckpt of a run folder)."
        ) from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise CheckpointFileError(
            f"{setting}={path} holds no 'state_dict': it is not a checkpoint written by train.py (a bare weight "
            "file goes to model.weights=<file> instead)."
        )
    return ckpt


def check_validation_settings(cfg: DictConfig, val_images: int, has_test: bool = True) -> None:
    """Settings that read the validation split, refused when there is none (dataset.val_fraction=0
    on a dataset without an official one), and an attack of a test split the data lacks: before any
    run folder is made (cli) and again here. Data with neither split (an image folder without
    test/, dataset.val_fraction=0) is refused: the run would measure nothing."""
    if not val_images and not has_test:
        raise ConfigError(
            f"dataset.val_fraction={cfg.dataset.val_fraction:g} leaves no validation split and dataset "
            f"'{cfg.dataset.name}' has no test split here, so the run would measure nothing (its metrics.json "
            "without a top-1): hold out a validation split (dataset.val_fraction=0.1), or give the data a test "
            "split (an image folder's test/<class>/ images)"
        )
    if (cfg.eval.fgsm or cfg.eval.pgd) and cfg.eval.split == "test" and not has_test:
        raise ConfigError(no_test_to_attack(cfg.dataset.name))
    if val_images:
        return
    c = cfg.callbacks
    if c.early_stopping_patience is not None:
        raise ConfigError(
            f"callbacks.early_stopping_patience={c.early_stopping_patience} stops on the validation split, and "
            "dataset.val_fraction=0 leaves none: give callbacks.early_stopping_patience=null, or hold out a "
            "validation split (dataset.val_fraction=0.1)"
        )
    if c.save_top_k > 1:
        raise ConfigError(
            f"callbacks.save_top_k={c.save_top_k} keeps the best checkpoints on the validation split, and "
            "dataset.val_fraction=0 leaves none: give callbacks.save_top_k=1 (the last epoch's; -1 keeps every "
            "epoch's)"
        )
    if (cfg.eval.fgsm or cfg.eval.pgd) and cfg.eval.split == "val":
        raise ConfigError(no_validation_to_attack(cfg.dataset.name))


def build_callbacks(cfg: DictConfig, ckpt_dir: Path, validating: bool = True) -> list[Callback]:
    """The checkpoints (the one selected on ``callbacks.monitor``, ``last.ckpt``), early stopping,
    the learning-rate log and the progress bar. Without a validation split (``validating`` False:
    dataset.val_fraction=0) the selected checkpoint is the last epoch's: ``last.ckpt`` itself, or
    with callbacks.save_last=false (or callbacks.save_top_k=-1: every epoch's kept) a
    ``best-epoch*.ckpt`` written each epoch (see :func:`selected_checkpoint`)."""
    c = cfg.callbacks
    if not validating:
        check_validation_settings(cfg, 0)
    callbacks: list[Callback] = []
    if validating or not c.save_last or c.save_top_k == -1:
        callbacks.append(
            RunCheckpoint(
                dirpath=ckpt_dir,
                filename="best-epoch{epoch:03d}",
                auto_insert_metric_name=False,
                monitor=c.monitor if validating else None,
                mode=c.mode,
                save_top_k=c.save_top_k,
                save_last=False,
            )
        )
    if c.save_last:
        # last.ckpt: the state at the end of every epoch (and every checkpoint_every_n_steps steps), so
        # that ckpt_path=last resumes where the run stopped, not at the best epoch (the selection
        # callback above rewrites its own files only when validation improves).
        callbacks.append(
            RunCheckpoint(
                dirpath=ckpt_dir,
                filename="last",
                enable_version_counter=False,
                every_n_epochs=1,
                save_on_train_epoch_end=True,
            )
        )
        if c.checkpoint_every_n_steps:  # (not at an epoch's last step: before its validation)
            callbacks.append(
                StepCheckpoint(
                    dirpath=ckpt_dir,
                    filename="last",
                    enable_version_counter=False,
                    every_n_train_steps=c.checkpoint_every_n_steps,
                )
            )
        callbacks.append(CheckpointOnSigterm(ckpt_dir / "last.ckpt"))
    if c.early_stopping_patience is not None:
        callbacks.append(EarlyStopping(monitor=c.monitor, mode=c.mode, patience=c.early_stopping_patience))
    if c.lr_monitor and cfg.logger.name != "none":
        callbacks.append(LearningRateMonitor(logging_interval="step"))
    # trainer.enable_progress_bar=false turns the bar off whatever callbacks.progress_bar says.
    bar = progress_bar(c.progress_bar) if cfg.trainer.get("enable_progress_bar", True) is not False else None
    if bar is not None:
        callbacks.append(bar)
    return callbacks


def selected_checkpoint(callbacks: list[Callback], ckpt_dir: Path) -> str | None:
    """The checkpoint a finished fit reports: the selection callback's best file, else (no
    validation split, last.ckpt kept) ``last.ckpt``, the last epoch's; None where none was written
    (trainer.fast_dev_run: the weights training ended with)."""
    selection = next(
        (cb for cb in callbacks if isinstance(cb, RunCheckpoint) and str(cb.filename).startswith("best-")),
        None,
    )
    if selection is not None:
        return selection.best_model_path or None
    last = ckpt_dir / "last.ckpt"
    return str(last) if last.is_file() else None


def build_logger(cfg: DictConfig, run_dir: Path, resume_step: int | None = None):
    """The run's logger; ``resume_step``: the step of the checkpoint a resumed run starts from (the
    CSV and TensorBoard logs keep what the interrupted run logged before it, and only that; wandb
    logs each metric's steps once)."""
    lg = cfg.logger
    if lg.name == "none":
        return False
    if lg.name == "csv":
        from .csv_log import ResumableCSVLogger

        return ResumableCSVLogger(save_dir=str(run_dir), name="logs", version="", resume_step=resume_step)
    if lg.name == "tensorboard":
        try:
            from pytorch_lightning.loggers import TensorBoardLogger

            # A resumed run's writer marks its start at the checkpoint's step: TensorBoard's readers
            # then drop what the interrupted run logged from that step on (trained again).
            purge = {} if resume_step is None else {"purge_step": resume_step}

            class OneWriterTensorBoardLogger(TensorBoardLogger):
                """One event file per run part. Lightning finalizes the logger after each stage
                (fit, the re-validation, test) and the base class then closes its writer, so the
                next stage opened another file. TensorBoard reads a folder's files in name order,
                and a name ends in the process's count of writers: two files opened in the same
                second across a digit step (``...9``, ``...10``, as in a ``--multirun`` sweep, whose
                jobs share a process) were read out of order and the later one's data dropped.
                Here each stage's end flushes; the run's end closes (``close_writer``)."""

                def finalize(self, status: str) -> None:
                    if self._experiment is not None:
                        self.experiment.flush()
                    if status == "success":
                        self.save()

                def close_writer(self) -> None:
                    if self._experiment is not None:
                        self.experiment.close()

            return OneWriterTensorBoardLogger(
                save_dir=str(run_dir), name="", version="", default_hp_metric=False, **purge
            )
        except ModuleNotFoundError as exc:
            raise ModuleNotFoundError(
                "logger=tensorboard needs the tensorboard package: uv sync --extra tensorboard"
            ) from exc
    if lg.name == "wandb":
        try:
            import wandb  # noqa: F401
        except ModuleNotFoundError as exc:
            raise ModuleNotFoundError("logger=wandb needs the wandb package: uv sync --extra wandb") from exc
        from .wandb_log import ResumableWandbLogger

        mode = wandb_mode(lg.mode)
        resuming = resume_step is not None
        return ResumableWandbLogger(
            steps_file=run_dir / "wandb_steps.json",
            resuming=resuming,
            project=lg.project,
            # Unnamed, a run is named by its folder (a sweep job's names its settings), not wandb's
            # random words.
            name=lg.run_name or f"{run_dir.parent.name}/{run_dir.name}",
            save_dir=str(run_dir),
            offline=mode == "offline",
            tags=list(dict.fromkeys([*lg.tags, *cfg.get("tags", [])])) or None,
            config=OmegaConf.to_container(cfg, resolve=True),
            id=_wandb_run_id(run_dir, resuming=resuming),
            resume="allow",
        )
    raise ConfigError(f"logger.name must be csv, wandb, tensorboard or none; got '{lg.name}'")


def _wandb_run_id(run_dir: Path, resuming: bool) -> str:
    """The wandb run of this run folder: a resumed run goes on logging into the interrupted run's
    wandb run (its id is kept in the folder's ``wandb_run_id``), a new run gets a new id."""
    path = run_dir / "wandb_run_id"
    if resuming and path.is_file():
        return path.read_text().strip()
    if resuming:
        log.warning("%s is missing: the resumed part logs to a new wandb run", path)
    run_id = uuid.uuid4().hex[:16]  # wandb's run ids: up to 64 of [a-z0-9]
    if rank_zero_only.rank == 0:  # the other processes of a multi-GPU run log nothing to wandb
        write_atomic(path, run_id + "\n")
    return run_id


def wandb_mode(setting: str | None) -> str:
    """logger.mode if given, else online only with an API key found (WANDB_API_KEY or ~/.netrc);
    a WANDB_MODE=online the user set without a key found is told why the run logs offline."""
    if setting:
        return setting
    if _wandb_key_configured():
        return "online"
    if os.environ.get("WANDB_MODE", "").strip().lower() == "online":
        log.warning(
            "WANDB_MODE=online, but no wandb API key was found here (WANDB_API_KEY or ~/.netrc): this "
            "run logs offline to its folder's wandb/ (send it later with wandb sync). Log in with "
            "`wandb login`, or give logger.mode=online if the key is kept where this check does not look"
        )
    return "offline"


def _wandb_key_configured() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    netrc = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    return netrc.exists() and "api.wandb.ai" in netrc.read_text(errors="ignore")


def build_trainer(
    cfg: DictConfig, run_dir: Path, callbacks: list[Callback], logger, validating: bool = True
) -> pl.Trainer:
    t = OmegaConf.to_container(cfg.trainer, resolve=True)
    # Unset limits mean "no limit" (Lightning's own defaults); a whole number of batches stays one.
    kwargs = {
        k: as_lightning_count(v) if k in BATCH_COUNT_SETTINGS else v for k, v in t.items() if v is not None
    }
    if not validating:  # no validation split (dataset.val_fraction=0): no validation loop
        kwargs["limit_val_batches"] = 0
        kwargs["num_sanity_val_steps"] = 0
    accepted = set(inspect.signature(pl.Trainer.__init__).parameters) - {"self"}
    unknown = sorted(set(kwargs) - accepted)
    if unknown:
        import difflib

        hints = {k: difflib.get_close_matches(k, sorted(accepted), n=1) for k in unknown}
        raise ConfigError(
            "not arguments of Lightning's Trainer: "
            + ", ".join(
                f"trainer.{k}" + (f" (did you mean trainer.{hints[k][0]}?)" if hints[k] else "")
                for k in unknown
            )
        )
    profiler = kwargs.get("profiler")
    if isinstance(profiler, str) and profiler in ("simple", "advanced", "pytorch"):
        # Lightning's profiler named by a string only prints its report; this one also writes it to
        # the run folder (fit-profiler.txt).
        from pytorch_lightning import profilers

        kind = {"simple": profilers.SimpleProfiler, "advanced": profilers.AdvancedProfiler}
        kind["pytorch"] = profilers.PyTorchProfiler
        kwargs["profiler"] = kind[profiler](dirpath=str(run_dir), filename="profiler")
    if not any(isinstance(cb, (TQDMProgressBar, RichProgressBar)) for cb in callbacks):
        kwargs["enable_progress_bar"] = False
    kwargs["plugins"] = [*(kwargs.get("plugins") or []), AtomicCheckpointIO()]
    try:
        return pl.Trainer(default_root_dir=str(run_dir), callbacks=callbacks, logger=logger, **kwargs)
    except (ValueError, TypeError, ImportError, MisconfigurationException) as exc:
        # Lightning's refusal of the trainer settings (an unknown strategy or accelerator, FSDP on
        # the CPU, a precision whose package is missing): its words, the settings as train.py's.
        raise trainer_refusal(exc) from exc


def check_trainer_settings(cfg: DictConfig, validating: bool = True) -> None:
    """The trainer settings as Lightning's Trainer takes them, checked before the run folder fills
    (an unknown strategy, FSDP on the CPU, a GPU trainer where none is): a Trainer built from them
    alone, with no callbacks or logger, its messages about the devices it found left to the run's
    own Trainer. ConfigError where Lightning refuses them."""
    import warnings

    loggers = [logging.getLogger(name) for name in ("pytorch_lightning", "lightning_fabric", "lightning")]
    levels = [each.level for each in loggers]
    try:
        for each in loggers:
            each.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            build_trainer(cfg, Path(str(cfg.paths.output_dir)).expanduser(), [], False, validating)
    finally:
        for each, level in zip(loggers, levels, strict=True):
            each.setLevel(level)


def _log_once_an_epoch_at_least(cfg: DictConfig, trainer: pl.Trainer, train_images: int) -> None:
    """An epoch shorter than ``trainer.log_every_n_steps`` (a small dataset: 3 batches against 50)
    logged no step loss in most epochs (and Lightning warned so): the interval becomes the epoch's
    batches, said once. Nothing trained changes."""
    every = int(trainer.log_every_n_steps or 0)
    batches = vanilla_batches_per_epoch(
        train_images,
        cfg.dataset.batch_size,
        cfg.dataset.drop_last,
        trainer.world_size,
        trainer.limit_train_batches,
    )
    # (the interval counts optimiser steps: one per accumulate_grad_batches batches)
    batches = math.ceil(batches / max(1, int(trainer.accumulate_grad_batches or 1)))
    if 0 < batches < every:
        log.info(
            "trainer.log_every_n_steps=%d is more than an epoch's %d optimiser steps: the step loss is "
            "logged every %d steps (once an epoch)",
            every,
            batches,
            batches,
        )
        trainer.log_every_n_steps = batches


def _train_limit_cut(cfg: DictConfig, trainer: pl.Trainer, train_images: int) -> bool:
    """Whether ``trainer.limit_train_batches`` left batches of an epoch out (a limit above the
    epoch's batches cuts nothing). Under budget=vanilla_steps the epoch is the vanilla run's batches."""
    if cfg.trainer.limit_train_batches is None:
        return False
    if cfg.budget == "vanilla_steps":
        epoch = vanilla_batches_per_epoch(
            train_images, cfg.dataset.batch_size, cfg.dataset.drop_last, trainer.world_size
        )
    else:
        try:
            epoch = len(trainer.train_dataloader)
        except TypeError:  # no fit this part (its epochs were done): say the limit was set
            return True
    return trainer.num_training_batches < epoch


def check_fractions_leave_a_batch(
    cfg: DictConfig, train_set, val_set, test_set, given_by: Callable[[str], str] = lambda key: ""
) -> None:
    """A fraction of a split's batches (``trainer.limit_train_batches=0.1``, debug=limit) that
    keeps none of them: Lightning refuses it when training starts, after the fractal bank and the
    edits were read; refused before the run folder is made (cli) and again here, with a number of
    batches to give instead. ``given_by(key)``: where the setting's value came from, said after it
    (`` (debug=limit's)``), or "". (The training split of ``aug.mode=static_append`` grows with the
    method's copies: left to Lightning.)"""
    t = cfg.trainer
    train_batch = cfg.dataset.batch_size
    eval_batch = cfg.dataset.eval_batch_size or train_batch
    splits = [("limit_val_batches", val_set, eval_batch)]
    if cfg.get("run_test", True):
        splits.append(("limit_test_batches", test_set, eval_batch))
    if cfg.aug.get("mode") != "static_append" and not t.get("overfit_batches"):
        splits.append(("limit_train_batches", train_set, train_batch))
    for key, dataset, batch in splits:
        fraction = t.get(key)
        if dataset is None or not len(dataset) or not isinstance(fraction, float) or not 0 < fraction < 1:
            continue
        batches = -(-len(dataset) // batch)  # (one process: several are checked in _check_eval_fractions)
        if int(batches * fraction) == 0:
            raise ConfigError(
                f"trainer.{key}={fraction}{given_by(key)}: {fraction} of the {batches} "
                f"batch{'es' if batches != 1 else ''} of {len(dataset)} images (batch {batch}) is none; give a "
                f"number of batches instead, trainer.{key}=1, or a fraction of at least {1 / batches:.3g}"
            )


def _check_eval_fractions(cfg: DictConfig, trainer: pl.Trainer, datamodule: ImageDataModule) -> None:
    """Several processes each evaluate their own part of a split (unpadded: the parts may differ
    by a batch). A fraction of the batches (``limit_val_batches=0.25``) that leaves one process no
    batch while the others have some stops that process alone in Lightning, and the others wait
    for it: refused at start with the number of batches to give instead."""
    world = trainer.world_size
    if world == 1:
        return
    batch = cfg.dataset.eval_batch_size or cfg.dataset.batch_size
    test = datamodule.test_set if cfg.get("run_test", True) else None  # (not tested: not limited)
    for key, dataset in (("limit_val_batches", datamodule.val_set), ("limit_test_batches", test)):
        fraction = getattr(trainer, key)
        if dataset is None or not isinstance(fraction, float) or not 0 < fraction < 1:
            continue
        batches = [-(-len(range(rank, len(dataset), world)) // batch) for rank in range(world)]
        kept = [int(n * fraction) for n in batches]
        if min(kept) == 0 < max(kept):
            raise ConfigError(
                f"trainer.{key}={fraction}: with {world} processes each evaluates its own part of the split "
                f"({min(batches)} to {max(batches)} batches), and this fraction leaves one of them no batch while "
                "others have some (Lightning would stop that process alone, the others waiting for it); give a "
                f"number of batches instead, trainer.{key}={max(1, max(kept))}"
            )


def _limited_order(datamodule: ImageDataModule, val_cut: bool, test_cut: bool) -> str | dict[str, str]:
    """The order the splits a batch limit cut were read in (their loaders' own record): one name,
    or one per split where they differ (``debug=overfit`` validates in the split's own order)."""
    orders = {
        split: datamodule.read_orders.get(stage, SPLIT_ORDER)
        for split, stage, cut in (("val", "validation", val_cut), ("test", "test", test_cut))
        if cut
    }
    return next(iter(orders.values())) if len(set(orders.values())) == 1 else orders


def _max_steps_cut(cfg: DictConfig, trainer: pl.Trainer) -> bool:
    """Whether ``trainer.max_steps`` comes before the end of ``max_epochs`` epochs."""
    epochs, steps = cfg.trainer.max_epochs, cfg.trainer.max_steps
    if epochs is None or epochs < 0:  # trained by steps alone: nothing is cut short
        return False
    if steps is None or steps < 0:  # no step limit (Lightning's -1)
        return False
    steps_per_epoch = math.ceil(trainer.num_training_batches / trainer.accumulate_grad_batches)
    return cfg.trainer.max_steps < epochs * steps_per_epoch


def _max_time_cut(trainer: pl.Trainer) -> bool:
    """Whether ``trainer.max_time`` ended the training (Lightning's Timer ran out of time)."""
    from pytorch_lightning.callbacks import Timer

    timers = [c for c in trainer.callbacks if isinstance(c, Timer)]
    return any(t.time_remaining("train") is not None and t.time_remaining("train") <= 0 for t in timers)


def _early_stopped_at(trainer: pl.Trainer) -> int | None:
    """The epoch after which early stopping ended the training, or None."""
    stops = [
        c.stopped_epoch for c in trainer.callbacks if isinstance(c, EarlyStopping) and c.stopped_epoch > 0
    ]
    return stops[0] if stops else None


def _epochs_trained(cfg: DictConfig, trainer: pl.Trainer) -> tuple[int, int]:
    """Whole epochs trained, and the steps of an epoch that ``trainer.max_steps`` cut short.
    Lightning counts a cut epoch as done; metrics.json counts it apart."""
    # The batches of the epoch in progress when fit ended (an epoch that ended counts them all),
    # read from the loop: the steps before it may have had other lengths (a part on more devices).
    # Lightning closes an epoch that max_steps (or max_time) cut short as if it ended: the whole
    # epochs are those begun before it.
    batches = trainer.num_training_batches
    done = trainer.fit_loop.epoch_loop.batch_progress.current.processed
    if not 0 < batches < math.inf or not 0 < done < batches:
        return trainer.current_epoch, 0
    begun = trainer.fit_loop.epoch_progress.current.started
    return max(0, begun - 1), math.ceil(done / trainer.accumulate_grad_batches)


def _percent(value) -> float | None:
    return None if value is None else round(float(value) * 100.0, 4)


def where_trained(module, trainer: pl.Trainer, parts: list[dict | None]) -> dict:
    """The device, precision, code and package versions that trained a run's weights (its last
    part): this process's when it trained, else the last part's record (None where unknown) and
    this process's as ``evaluated_by``."""
    here = {
        "device": device_name(module.device),
        "precision": str(trainer.precision),
        "git": code_state(),
        "versions": versions(),
    }
    if module.this_part is not None:
        return here
    last = parts[-1] if parts and isinstance(parts[-1], dict) else {}
    evaluated_by = {key: here[key] for key in ("device", "precision", "git", "versions")}
    return {**{key: last.get(key) for key in here}, "evaluated_by": evaluated_by}


def _with_earlier(metrics: dict, earlier: dict | None, path: Path) -> dict:
    """The metrics a run writes, with what its metrics.json held before kept where it still holds.
    A finished run evaluated again (``earlier``: the same weights) keeps its other entries (the
    robustness evaluate.py added, see ``with_robustness``) and counts its earlier wall time; a run
    trained further leaves out the robustness measured on its earlier weights, saying so."""
    if earlier is not None:
        robust = {key: metrics.pop(key) for key in robustness_keys(metrics)}
        # What the training was (this part only evaluated): as recorded, or unknown when it predates the record.
        for key in (
            "world_size",
            "model_weights",
            "device",
            "precision",
            "parts",
            "git",
            "versions",
            "resumed",
        ):
            metrics.pop(key, None)
        merged, _ = with_robustness({**earlier, **metrics}, robust)
        set_aside_replaced(path, earlier, merged)
        merged["wall_time_s"] = round(earlier.get("wall_time_s", 0.0) + metrics["wall_time_this_part_s"], 2)
        merged["fit_seconds"] = earlier.get("fit_seconds", metrics["fit_seconds"])  # no training this part
    else:
        try:
            before = json.loads(path.read_text()) if path.is_file() else {}
        except (OSError, ValueError):
            before = {}
        merged = metrics
        _known_from(before, merged)
        set_aside_replaced(path, before, merged)  # (measured on the weights trained further from)
    # (set_aside_replaced names each measurement replaced or left out, once)
    return merged


def _known_from(before: dict, metrics: dict) -> None:
    """A run trained further from a checkpoint that predates the records of what it trained with:
    the earlier part's metrics.json still says it (its world size, the weights it started from)."""
    sizes = metrics.get("world_size")
    if isinstance(sizes, list) and sizes[:1] == [None] and before.get("world_size") is not None:
        earlier = before["world_size"] if isinstance(before["world_size"], list) else [before["world_size"]]
        known = [*earlier, *sizes[1:]]
        known = [size for k, size in enumerate(known) if size not in known[:k]]
        metrics["world_size"] = known[0] if len(known) == 1 else known
    if "model_weights" not in metrics and "model_weights" in before:
        metrics["model_weights"] = before["model_weights"]


#: Written in the run folder when training stops with an error, so reports count the run as
#: diverged (a non-finite loss) or failed instead of missing; removed when the run finishes.
FAILURE_FILE = "failure.json"


def _set_aside_unfinished_robustness(run_dir: Path) -> None:
    """evaluate.py's robustness.json of the run before it finished measured weights of a checkpoint
    training has since gone on from (last.ckpt rewritten): renamed, so that it is not read as this
    run's robustness (metrics.json holds that, once measured)."""
    path = run_dir / "robustness.json"
    if path.is_file():
        aside = run_dir / "robustness_before_resume.json"
        os.replace(path, aside)
        log.warning(
            "%s measured the run before it finished (on an earlier checkpoint): renamed %s. Measure the "
            "finished run with evaluate.py ckpt=%s",
            path,
            aside.name,
            run_dir,
        )


@contextmanager
def failure_recorded(run_dir: Path, further: bool = False):
    try:
        yield
    except BaseException as exc:
        record_failure(run_dir, exc, further)
        raise


def record_failure(run_dir: Path, exc: BaseException, further: bool = False) -> None:
    """``failure.json`` in the run folder: diverged (a non-finite loss) or failed, and the error;
    ``further``: the part that stopped was training a finished run further (the mark stays)."""
    status = "diverged" if isinstance(exc, FloatingPointError) else "failed"
    if is_interrupt(exc):
        error = "interrupted (Ctrl-C)"
    elif is_terminated(exc):
        error = "stopped by SIGTERM"
    else:
        # The message alone: an error raised in a data loader worker holds the worker's traceback.
        error = f"{type(exc).__name__}: {user_message(exc)}".strip().rstrip(":")
    record = {"status": status, "error": error, "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
    if further:  # a part training further stopped: still not a finished run
        record[TRAINED_FURTHER] = True
    with suppress(OSError):  # whole or not at all (every rank of a DDP run writes it)
        write_atomic(run_dir / FAILURE_FILE, json.dumps(record, indent=2) + "\n")


@contextmanager
def wandb_run_ended():
    """A wandb run that training started ends with it, marked failed when training failed:
    Lightning's WandbLogger logs into a run still in progress, so the next job of a sweep in
    the same process would otherwise log into this one's."""
    wandb = sys.modules.get("wandb")
    before = getattr(wandb, "run", None)
    try:
        yield
    except BaseException:
        _end_wandb_run(before, exit_code=1)
        raise
    _end_wandb_run(before, exit_code=0)


def _end_wandb_run(before, exit_code: int) -> None:
    wandb = sys.modules.get("wandb")
    run = getattr(wandb, "run", None)
    if run is not None and run is not before:
        run.finish(exit_code=exit_code)


def train(cfg: DictConfig, splits: Splits | None = None) -> dict:
    """Fit on train, select the checkpoint on val, evaluate test once; write ``metrics.json``
    and ``config_resolved.yaml`` in the run folder and return the metrics. ``splits`` are the
    dataset's splits when the caller has read them already. A run that stops with an error leaves
    ``failure.json`` (status diverged or failed, and the error) in its folder."""
    validate_config(cfg)
    check_protocol_optimiser(cfg)
    code_state()  # the commit of the code this process runs, read as its first run starts
    adversarial = FastAdversarial(**OmegaConf.to_container(cfg.adv, resolve=True))
    run_dir = Path(cfg.paths.output_dir).expanduser()
    start = time.time()
    # Checks of the settings alone, before the run folder is touched: a refused resume of a finished
    # run leaves its folder as it was (no failure.json beside its metrics.json).
    given = cfg.ckpt_path
    if resolve_auto_resume(cfg, run_dir):
        log.info(
            "ckpt_path=auto: %s", "resuming from last.ckpt" if cfg.ckpt_path else "no last.ckpt, a new run"
        )
    check_resume(cfg, run_dir, given)
    attacks = attack_specs(cfg.eval)  # a bad attack budget stops here, before any work
    resumed = _resolve_ckpt_path(cfg, run_dir / "checkpoints")  # a bad or longer checkpoint too
    check_settings_kept(cfg, run_dir, given)
    earlier = finished_metrics(cfg, run_dir, resumed[1])
    if resumed[0] is not None:
        # A resume may read its data from another folder: the same classes, the same images? (A
        # finished run too: a sweep launched again on other data finds its folders by their names.)
        splits = splits or build_splits(cfg.dataset, cfg.paths.data_dir)
        where, advice = str(dataset_root(cfg.dataset, cfg.paths.data_dir)), _other_data_advice(cfg)
        check_same_classes(run_dir, class_ids(splits.train), where, advice)
        check_same_data(run_dir, data_record(splits), where, advice)
    if earlier is not None and not asks_more(cfg, earlier, attacks):
        log.info(nothing_to_do(run_dir, earlier))
        return earlier
    outside = outside_the_table(cfg)
    if outside:
        log.warning("%s (the experiment's settings are used as they are)", outside)
    run_dir.mkdir(parents=True, exist_ok=True)
    if resumed[0] is None and rank_zero_only.rank == 0:
        attempt = keep_earlier_attempt(cfg, run_dir)
        if attempt is not None:
            differ = attempt["settings_differ"]
            log.warning(
                "the earlier attempt in this folder (%s: %s) is kept in %s%s",
                attempt["status"],
                attempt["error"],
                run_dir / attempt["folder"],
                f" (its settings differ: {'; '.join(differ)})" if differ else "",
            )
    further = earlier is None and (run_dir / "metrics.json").is_file()
    if further:
        # Trained further than a finished part: until this part ends, metrics.json holds the earlier
        # part's numbers while config_resolved.yaml will hold the longer run's settings. Said so from
        # now on (a report meanwhile, or after a kill that leaves no word, counts no finished run).
        record = {
            "status": "failed",
            "error": "trained further than its metrics.json (the earlier part's numbers): this part has "
            "not finished (still running, or killed); resume it with ckpt_path=last (a sweep's job: the "
            "sweep's command with ckpt_path=auto)",
            "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
            # Until this part ends, the folder's metrics.json and settings do not say the run has
            # finished (resume.finished_metrics): a resume after a kill, and the other ranks of a
            # DDP run (started by fit, after the settings are rewritten), train on.
            TRAINED_FURTHER: True,
        }
        write_atomic(run_dir / FAILURE_FILE, json.dumps(record, indent=2) + "\n")
    # A finished run evaluated again from another copy of its data (paths.data_dir or dataset.root
    # changed): its new attacks are measured there, never kept beside those of the first copy.
    moved = _data_moved(cfg, run_dir) if earlier is not None else None
    with failure_recorded(run_dir, further), wandb_run_ended():
        metrics = _train(cfg, splits, adversarial, run_dir, attacks, resumed, start, earlier, moved)
    if rank_zero_only.rank == 0:  # after its metrics.json is whole (the other processes write none)
        (run_dir / FAILURE_FILE).unlink(missing_ok=True)
    return metrics


@contextmanager
def _training_kept(run_dir: Path):
    """After fit, a test or validation image found missing or corrupt (read for the first time,
    or changed since): the message says training finished and how to evaluate without training
    again. Its own advice, dataset.on_bad_image=skip, is a setting a resume of this run refuses."""
    from ..commands import hydra_quoted
    from ..data.base import CorruptImageError
    from ..errors import user_message

    try:
        yield
    except CorruptImageError as exc:
        said = user_message(exc)
        for advice in (": put the file back", ". Replace it", ": move it out"):
            said = said.split(advice)[0]
        raise CorruptImageError(
            f"{said}. Training itself finished, and its checkpoints are kept in {run_dir / 'checkpoints'}: replace "
            "or remove the file, then run the same command with ckpt_path=last and "
            f"{hydra_quoted('hydra.run.dir', str(run_dir))} (a sweep's job: the sweep's command with "
            "ckpt_path=auto), which evaluates the selected checkpoint without training again"
        ) from None


def _other_data_advice(cfg: DictConfig) -> str:
    """What to do about a resume that reads other images than its run started with."""
    from ..errors import in_multirun

    if in_multirun():
        return (
            "A sweep launched again in its folder goes on with the data its jobs started with: give that "
            "data, or launch the sweep on this data into a sweep folder of its own (hydra.sweep.dir=<another "
            "folder>)"
        )
    return (
        "Give the data the run started with (dataset.root, else paths.data_dir), or train a new run on this "
        "data in another folder (without ckpt_path; from this run's weights: model.weights=<its checkpoint>)"
    )


def _data_moved(cfg: DictConfig, run_dir: Path) -> str | None:
    """The data folder this process reads, where it is not the one the run folder's saved settings
    name (None where they agree or none are saved)."""
    saved = run_dir / "config_resolved.yaml"
    if not saved.is_file():
        return None
    before = load_saved_config(saved, needs=("dataset", "paths"))
    # (a relative folder read where the command that wrote those settings was launched: the copy
    # of its record kept in .hydra/run/, which this command's Hydra has not written over)
    place_where_launched(before, run_dir, str(COMMAND_RECORD), say=False)
    now = data_folder(cfg.dataset, cfg.paths.data_dir)
    return now if data_folder(before.dataset, before.paths.data_dir) != now else None


def _evaluate_selected(cfg, trainer, module, datamodule, best, attacks, stop_if_terminated, moved=None):
    """After fit: the selected checkpoint validated again, tested once and attacked; returns
    (val, test, robustness) metrics."""
    val_metrics = {}
    if not len(datamodule.val_set):  # no validation split (dataset.val_fraction=0)
        pass
    elif not cfg.trainer.fast_dev_run:
        # Re-validate the selected checkpoint so the reported val numbers belong to it (logged as
        # val_selected/*: not one more epoch's val/* in the loggers' files).
        module.val_name = "val_selected"
        selected = trainer.validate(module, datamodule=datamodule, ckpt_path=best or None, verbose=False)[0]
        stop_if_terminated()
        val_metrics = {k.replace("val_selected/", "val/", 1): v for k, v in selected.items()}
    else:
        val_metrics = {k: v.item() for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
    test_metrics = {}
    if cfg.run_test and datamodule.test_set is not None:
        test_metrics = trainer.test(module, datamodule=datamodule, ckpt_path=best or None, verbose=False)[0]
        stop_if_terminated()
    robust = {}
    if attacks:
        # With several processes, each attacks its own part of the split (counts summed).
        shared = trainer.world_size > 1
        robust = attack_checkpoint(
            module.model,
            best,
            eval_split(cfg.eval, datamodule, shared=shared),
            attacks,
            cfg.seed,
            cfg.trainer.accelerator,
            cfg.eval.split,
            cfg.eval.get("limit_batches"),
            strategy=trainer.strategy if shared else None,
        )
        robust["robust_checkpoint"] = best  # None: the weights training ended with (fast_dev_run)
        if moved:
            robust["robust_data_dir"] = moved
    return val_metrics, test_metrics, robust


def _train(
    cfg: DictConfig,
    splits: Splits | None,
    adversarial: FastAdversarial,
    run_dir: Path,
    attacks: list,
    resumed: tuple[str | None, int | None],
    start: float,
    earlier: dict | None = None,
    moved: str | None = None,
) -> dict:
    # (The first process keeps an earlier attempt's settings first.) A finished run evaluated again
    # keeps the settings it was trained with: the data folder they name stays the run's own.
    if earlier is None:
        if rank_zero_only.rank == 0:
            write_atomic(run_dir / "config_resolved.yaml", OmegaConf.to_yaml(cfg, resolve=True))
        keep_command_record(run_dir)  # Hydra's record of the command that made these settings
    # (a finished run evaluated again: its .hydra/ is put back to the record of the command that
    # made its settings as the job ends, cli._keep_runs_record, so that the two agree)
    if cfg.float32_matmul_precision:
        torch.set_float32_matmul_precision(cfg.float32_matmul_precision)
    pl.seed_everything(cfg.seed, workers=True)

    aug_name = cfg.aug.name
    splits = splits or build_splits(cfg.dataset, cfg.paths.data_dir)
    if resumed[0] is None and earlier is None and rank_zero_only.rank == 0:
        # The images each split holds as the run starts (before a skip of bad ones), which a resume
        # reads again: check_same_data.
        write_data_record(run_dir, data_record(splits))
    bad_images = verify_as_asked(splits, cfg.dataset, cfg.paths.cache_dir)
    if bad_images:
        (run_dir / "bad_images.txt").write_text(
            "".join(f"{split}\t{path}\n" for split, paths in bad_images.items() for path in paths)
        )
        log.info("the skipped images: %s (metrics.json counts them)", run_dir / "bad_images.txt")
    datamodule = ImageDataModule(cfg.dataset, cfg.paths.data_dir, seed=cfg.seed, splits=splits)
    datamodule.build()  # fail fast on missing data, before the model is built
    # Label k is line k (class_ids: folder names, official names, or wnids): for whoever loads the
    # checkpoints, and for the checks that another copy of the data holds the same classes in order.
    write_classes(run_dir, class_ids(datamodule.train_set))
    check_validation_settings(cfg, len(datamodule.val_set), datamodule.test_set is not None)  # (API callers)
    if attacks:
        eval_split(cfg.eval, datamodule)
    # (before a fractal bank or edits are made)
    check_fractions_leave_a_batch(cfg, datamodule.train_set, datamodule.val_set, datamodule.test_set)
    num_classes = datamodule.num_classes
    aug = create_aug(cfg.aug, run_context(cfg, num_classes))
    check_loss_views(cfg)  # also at start-up (cli.quick_checks), for API callers here
    datamodule.set_augmentation(aug)
    aug.prepare(datamodule.train_set)  # missing edits named before a fractal bank is made

    # A resume takes its weights from the checkpoint: the starting weights (a download, or the
    # model.weights file, which may be gone by now) are neither read nor fetched again.
    resuming = resumed[0] is not None
    model = build_model(cfg, num_classes, load_weights=not resuming)
    aug.check_model(model, int(cfg.dataset.image_size))  # a method that cannot use it says so now
    module = ClassifierModule(
        model, num_classes, aug, aug.ctx.loss, cfg.loss, cfg.optim, cfg.sched, adversarial=adversarial
    )
    # The weight file a new run starts from, as loaded now (a resume restores its run's record).
    module.started_from = None if resuming else weights_file(cfg.model.weights)
    module.trained_with = trained_with(cfg, num_classes)
    module.part_started = start
    if resuming:  # a checkpoint of another model (outside a run folder, whose settings are checked)
        check_checkpoint_fits(module, Path(resumed[0]).expanduser())
    if not cfg.model.compile:  # (a compiled model would be compiled for this shape first)
        # One image at the crop size: Lightning's model summary counts the FLOPs of the model's
        # forward pass with it (without one it shows "Total FLOPs: 0").
        size = int(cfg.dataset.image_size)
        module.example_input_array = torch.zeros(1, 3, size, size)
    if cfg.model.compile:
        module.model = torch.compile(module.model)

    ckpt_dir = run_dir / "checkpoints"
    validating = len(datamodule.val_set) > 0  # none with dataset.val_fraction=0: the last epoch is reported
    callbacks = (
        build_callbacks(cfg, ckpt_dir, validating)
        + list(aug.callbacks())
        + [EpochSummary(run_dir / "summary.csv")]
    )
    ckpt_path, resume_step = resumed
    logger = build_logger(cfg, run_dir, resume_step=resume_step)
    trainer = build_trainer(cfg, run_dir, callbacks, logger, validating)
    note_sigterm_only(trainer)  # the processes agree on a SIGTERM at each step's end (CheckpointOnSigterm)
    _check_eval_fractions(cfg, trainer, datamodule)
    if cfg.budget == "vanilla_steps":
        # Each epoch is cut to the batches of a vanilla run of this protocol (the original images):
        # equal optimiser steps per epoch and in all, validation and schedules at the same steps;
        # a longer set (static_append) is reshuffled every epoch, so each epoch draws from all of it.
        trainer.limit_train_batches = vanilla_batches_per_epoch(
            len(datamodule.train_set),
            cfg.dataset.batch_size,
            cfg.dataset.drop_last,
            trainer.world_size,
            cfg.trainer.limit_train_batches,
        )
    _log_once_an_epoch_at_least(cfg, trainer, len(datamodule.train_set))
    log.info(
        "Training %s on %s (%d train / %d val / %s test images, %d classes) with aug=%s",
        cfg.model.name,
        cfg.dataset.name,
        len(datamodule.train_set),
        len(datamodule.val_set),
        len(datamodule.test_set) if datamodule.test_set is not None else "no",
        num_classes,
        aug_name,
    )
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
    except ValueError as exc:
        if "Expected more than 1 value per channel when training" not in str(exc):
            raise
        # BatchNorm over one image whose feature map is 1 x 1 at that layer: nothing to normalise.
        raise ConfigError(
            f"dataset.batch_size={cfg.dataset.batch_size}: a BatchNorm layer of model={cfg.model.name} got "
            "one value per channel (one image, a 1 x 1 feature map there) and cannot normalise it; use "
            "dataset.batch_size >= 2 (or a larger dataset.image_size)"
        ) from None
    train_cut = _train_limit_cut(cfg, trainer, len(datamodule.train_set))
    epochs, partial_epoch_steps = _epochs_trained(cfg, trainer)
    # Read before the selected checkpoint is tested: loading it restores the callbacks' states.
    time_cut, early_stop = _max_time_cut(trainer), _early_stopped_at(trainer)
    # Read before validate/test load the selected checkpoint (and its counts) into the module.
    images_seen = module.images_seen
    adversarial_batches = module.adversarial_batches
    fit_seconds = module.fit_seconds()
    earlier_seconds = module.wall_seconds_before
    world_sizes, started_from = module.world_sizes(), module.started_from
    parts = module.parts()
    # What trained the weights: this process, or (a resume that found the training finished and
    # only evaluates) the last part, as its checkpoint records it (unknown when it predates the
    # record); this process is then the evaluating one, recorded as evaluated_by.
    trained = where_trained(module, trainer, parts)

    # (before the selected checkpoint is loaded for evaluation, which restores its own)
    blew_up, last_train_loss = module.loss_blew_up, module.epoch_train_loss()

    best = selected_checkpoint(callbacks, ckpt_dir)
    with sigterm_stops_between_runs(trainer) as stop_if_terminated, _training_kept(run_dir):
        val_metrics, test_metrics, robust = _evaluate_selected(
            cfg, trainer, module, datamodule, best, attacks, stop_if_terminated, moved
        )

    # A batch limit that left images of a split unevaluated.
    val_cut = 0 < module.evaluated["val"] < len(datamodule.val_set)
    test_cut = bool(test_metrics) and module.evaluated["test"] < len(datamodule.test_set)
    adv_training = None
    if adversarial.enabled:
        adv_training = {**asdict(adversarial), "step": round(adversarial.step_size * 255.0, 6)}
    elif aug.own_adversarial and float(getattr(aug, "adv_p", 0.0)) > 0:
        # aug=puzzlemix aug.adv_p: the method's own form (its two sources perturbed before mixing).
        eps = round(float(aug.adv_eps) * 255.0, 6)
        adv_training = {"p": float(aug.adv_p), "eps": eps, "step": eps + 2.0, "scale": "uniform"}
    metrics = {
        "dataset": cfg.dataset.name,
        "model": cfg.model.name,
        "aug": aug_name,
        # The method's settings as used: per-dataset defaults and auto choices resolved.
        "aug_settings": aug.settings(),
        "loss": aug.ctx.loss,
        "loss_criterion": cfg.loss.criterion,
        "protocol": cfg.protocol,
        "experiment": cfg.experiment_name,
        "seed": cfg.seed,
        "val_top1": _percent(val_metrics.get("val/top1")),
        "val_top5": _percent(val_metrics.get("val/top5")),
        "test_top1": _percent(test_metrics.get("test/top1")),
        "test_top5": _percent(test_metrics.get("test/top5")),
        "top5_k": module.top5_k,
        # Whole epochs; an epoch max_steps cut short is counted in partial_epoch_steps.
        "epochs": epochs,
        "partial_epoch_steps": partial_epoch_steps,
        "optimizer_steps": trainer.global_step,
        "images_seen": images_seen,
        "budget": cfg.budget,
        # Processes that trained together (devices x nodes): dataset.batch_size is per process. A
        # list where the run's parts differ (None: a part whose checkpoint predates the record).
        "world_size": world_sizes[0] if len(world_sizes) == 1 else world_sizes,
        # Where the last part trained (a resume may change them: ``parts`` lists each part's).
        "device": trained["device"],
        "precision": trained["precision"],
        # Fast adversarial training (adv.p > 0): its settings and how many batches it perturbed.
        # (its step as used: adv.step=null is eps + 2)
        "adv_training": adv_training,
        "adv_form": (
            ("method" if aug.own_adversarial else "training_views") if adv_training is not None else None
        ),
        "adversarial_batches": None if aug.own_adversarial else adversarial_batches,
        # Across a resume: the fit of every part (each checkpoint carries its fit seconds) plus
        # this part's evaluation; wall_time_this_part_s is this process alone.
        "wall_time_s": round(earlier_seconds + (time.time() - start), 2),
        "wall_time_this_part_s": round(time.time() - start, 2),
        "fit_seconds": round(fit_seconds, 2),
        "resumed": cfg.ckpt_path is not None,
        "best_checkpoint": best,
        "train_images": len(datamodule.train_set),
        # Items in one epoch as the method serves them (DiffuseMix static_append grows the set).
        "train_items": len(datamodule.train_dataloader().dataset),
        "val_images": len(datamodule.val_set),
        "test_images": len(datamodule.test_set) if datamodule.test_set is not None else 0,
        # Images the reported numbers were computed on (limit_*_batches and fast_dev_run cut them).
        "val_images_evaluated": module.evaluated["val"] if val_metrics else 0,
        "test_images_evaluated": module.evaluated["test"] if test_metrics else 0,
        # Which images a batch limit's first batches held (data/order.py).
        **(
            {"limited_eval_order": _limited_order(datamodule, val_cut, test_cut)}
            if val_cut or test_cut
            else {}
        ),
        "shortened_by": shortened_by(
            cfg,
            {
                "limit_train_batches": train_cut,
                "limit_val_batches": val_cut,
                "limit_test_batches": test_cut,
                "max_steps": _max_steps_cut(cfg, trainer),
                "max_time": time_cut,
            },
        ),
        # A training loss that blew up without becoming non-finite (module.BLOWN_UP_FACTOR times a
        # uniform guess's): where, and whether the weights reported are a blown-up model's (None: never).
        "loss_blew_up": blew_up_record(
            blew_up, last_train_loss, val_metrics.get("val/loss"), num_classes, cfg.loss.criterion
        ),
        # The epoch early stopping (callbacks.early_stopping_patience) ended the run after.
        **({"early_stopped_at_epoch": early_stop} if early_stop is not None else {}),
        "edit_store": aug.store_record() if hasattr(aug, "store_record") else None,
        # The last part's code and packages; a run trained in parts lists what each part trained
        # with (its steps, processes, device, precision, commit and versions; None: a part whose
        # checkpoint predates the record).
        "git": trained["git"],
        "versions": trained["versions"],
        **({"parts": parts} if len(parts) > 1 else {}),
        # A process that only evaluated weights trained before: its code, packages and device.
        # (and the data folder it read, where it is not the one the run's settings name)
        **(
            {"evaluated_by": {**trained["evaluated_by"], **({"data_dir": moved} if moved else {})}}
            if "evaluated_by" in trained
            else {}
        ),
        # The weight file the run started from and its sha256 (left out where unknown).
        **({} if started_from == UNKNOWN else {"model_weights": started_from}),
        "val_rule": datamodule.val_set.info.get("val_rule"),
        # Corrupt files left out with dataset.on_bad_image=skip (listed in bad_images.txt).
        "bad_images": {split: len(paths) for split, paths in bad_images.items()},
        # What reading the image folders noticed: files that are not images, classes without images,
        # linked folders not followed (loops).
        "data_notes": {
            split: {k: ds.info[k] for k in DATA_NOTES if ds.info.get(k)}
            for split, ds in (
                ("train", datamodule.train_set),
                ("val", datamodule.val_set if validating else None),  # (none: val_fraction=0)
                ("test", datamodule.test_set),
            )
            if ds is not None and any(ds.info.get(k) for k in DATA_NOTES)
        },
        "num_classes": num_classes,
        **({"tags": list(cfg.tags)} if cfg.get("tags") else {}),
        # Attempts that failed in this folder before this run started anew (attempts/<n>/).
        **({"earlier_attempts": attempts} if (attempts := read_attempts(run_dir)) else {}),
        **robust,
    }
    if hasattr(logger, "close_writer"):  # logger=tensorboard: its one file is complete
        logger.close_writer()
    metrics = _with_earlier(metrics, earlier, run_dir / "metrics.json")
    if rank_zero_only.rank != 0:  # the first process writes the run's numbers (the others' alike or its own)
        return metrics
    write_atomic(run_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    _set_aside_unfinished_robustness(run_dir)
    # The headline numbers (every entry is in the file).
    shown = ("val_top1", "test_top1", "test_top5", "fgsm_error", "pgd_error", "epochs", "optimizer_steps")
    numbers = ", ".join(f"{k} {metrics[k]:.4g}" for k in shown if isinstance(metrics.get(k), (int, float)))
    log.info("Metrics written to %s%s", run_dir / "metrics.json", f": {numbers}" if numbers else "")
    _warn_blown_up(metrics.get("loss_blew_up"), numbers, module.lower_lr_advice())
    return metrics


def _warn_blown_up(record: dict | None, numbers: str, advice: str) -> None:
    """The run's numbers are a blown-up model's (metrics.json's loss_blew_up ended): said last."""
    if not record or not record.get("ended"):
        return
    what = {
        "selected_val_loss": "the selected checkpoint's validation loss",
        "last_train_loss": "the mean training loss of the last epoch (the weights reported)",
    }[record["judged_on"]]
    log.warning(
        "this run ended with %s %.3g, against %.3g for a uniform guess: its numbers%s are a blown-up model's, "
        "as metrics.json's loss_blew_up records and report.py notes %s, and train again",
        what,
        record[record["judged_on"]],
        record["uniform_guess_loss"],
        f" ({numbers})" if numbers else "",
        advice,
    )
