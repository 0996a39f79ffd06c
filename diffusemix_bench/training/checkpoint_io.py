"""Checkpoints written whole or not at all, next to where they go; and a run folder that moved
(to a larger disk, another cluster) resumes choosing its best checkpoint where it left off."""

from __future__ import annotations

import io
import logging
import os
from pathlib import Path
from typing import Any

import torch
from lightning_fabric.plugins import TorchCheckpointIO
from pytorch_lightning.callbacks import Callback, ModelCheckpoint

from ..files import write_atomic

log = logging.getLogger(__name__)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's own save writes the file in the system's temporary folder and then moves it into
    place. Across two file systems (a node-local ``/tmp`` and a shared run folder) that move is a
    copy over the old file, so a disk that fills during it leaves a cut-short ``last.ckpt`` where the
    last good one was, and every checkpoint passes through ``/tmp`` first. Here the checkpoint is
    written beside its final path, synced, and renamed over it: a kill or a full disk leaves the
    previous checkpoint as it was, and the partial file is removed."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        if storage_options is not None or "://" in str(path):  # remote storage: Lightning's own way
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Serialised in memory first (as Lightning does), so a failed write is Python's OSError.
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        write_atomic(path, buffer.getbuffer(), sync=True)
        # Partial files a killed process left for this name.
        for stale in path.parent.glob(f".{path.name}.*.part"):
            stale.unlink(missing_ok=True)


class RunCheckpoint(ModelCheckpoint):
    """Lightning's checkpoint callback, which keeps its state (the best score so far and the paths
    of the files it wrote) with absolute paths. When the run folder has moved, Lightning keeps only
    the old ``best_model_path`` and forgets the best score: the first epoch after the resume would
    count as the best whatever its score, and the real best file would be left behind. Here the
    saved paths are moved with the folder (same names under the new checkpoint folder), so a moved
    run selects and replaces its checkpoints as the unmoved run would."""

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        old = state_dict.get("dirpath")
        if (
            old is not None
            and self.dirpath is not None
            and os.path.normpath(old) != os.path.normpath(self.dirpath)
        ):
            state_dict = moved_state(state_dict, old, self.dirpath)
        best = state_dict.get("best_model_path")
        if best and "://" not in str(best) and not Path(best).is_file():
            # The best file is not where the state says (a checkpoint resumed outside its run
            # folder, or the file deleted): the selection starts anew with the next validation,
            # rather than keep a score whose checkpoint cannot be tested.
            log.warning(
                "The best checkpoint so far, %s, is not there (a checkpoint resumed outside its run folder, or "
                "the file removed): the best checkpoint is chosen anew from the next validation on",
                best,
            )
            state_dict = {
                **{k: v for k, v in state_dict.items() if k not in ("kth_best_model_path", "kth_value")},
                "best_model_path": "",
                "best_model_score": None,
                "best_k_models": {},
            }
        super().load_state_dict(state_dict)


def moved_state(state: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    """``state`` with each path under the folder ``old`` put under ``new``."""

    def move(path: Any) -> Any:
        if not isinstance(path, str) or not path:
            return path
        rel = os.path.relpath(path, old)
        return path if rel.startswith("..") else os.path.join(new, rel)

    moved = {k: move(v) if k.endswith("_path") else v for k, v in state.items()}
    if isinstance(state.get("best_k_models"), dict):
        moved["best_k_models"] = {move(k): v for k, v in state["best_k_models"].items()}
    moved["dirpath"] = new
    return moved


def validation_or_epoch_end_follows(trainer) -> bool:
    """Whether the step just done is an epoch's last, or one a validation follows
    (``trainer.val_check_interval``): a checkpoint saved at it, before that validation, resumes
    past the validation (Lightning counts it done), so its score would never be compared for the
    best checkpoint."""
    loop = trainer.fit_loop.epoch_loop
    if loop._num_ready_batches_reached():
        return True
    fetcher = getattr(trainer.fit_loop, "_data_fetcher", None)
    return fetcher is not None and loop._should_check_val_fx(fetcher)


class StepCheckpoint(RunCheckpoint):
    """``last.ckpt`` every ``callbacks.checkpoint_every_n_steps`` steps, but not at a step a
    validation or the epoch's end follows (validation_or_epoch_end_follows): the checkpoint after
    them (the epoch-end ``last.ckpt``, or the next step's) holds it."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if validation_or_epoch_end_follows(trainer):
            return
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    def _generate_state_key(self, **kwargs: Any) -> str:
        # The name its state had in checkpoints written before this class: they resume with it.
        return f"RunCheckpoint{kwargs!r}"


class CheckpointOnSigterm(Callback):
    """SIGTERM during training (a scheduler's time limit or preemption, ``kill``): Lightning stops
    before the next step; this writes ``last.ckpt`` at the step just done first, at the point where
    ``callbacks.checkpoint_every_n_steps`` writes it, so the resumed run loses no step.

    At an epoch's last step, or during the epoch's validation, the stop waits for the epoch's end:
    its validation runs whole and the epoch-end ``last.ckpt`` is written as every epoch's is (a
    checkpoint taken before the validation resumed past it: the epoch's score never counted for
    the best checkpoint, and the next epoch's training loss averaged two epochs). A signal during a
    validation inside an epoch (``trainer.val_check_interval``) stops after the next step.

    With several processes, the processes agree at the end of each step (and of each validation)
    whether any of them got the signal; if one did, all save that step together (the save is
    collective) and all stop (Lightning stops by the first process's flag, which is then set
    everywhere). The signal handler itself only notes the signal (``signals.note_sigterm_only``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.saved_step: int | None = None
        self.deferred = False  # a signal noted, the stop waiting for the epoch's end (or next step)

    @staticmethod
    def _agreed(trainer, stop: bool) -> bool:
        if trainer.world_size > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
            flag = torch.tensor([int(stop)], device=trainer.strategy.root_device)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            stop = bool(flag.item())
        return stop

    @staticmethod
    def _note(trainer, received: bool) -> None:
        trainer._signal_connector.received_sigterm = received

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.saved_step == trainer.global_step:
            return
        stop = self._agreed(trainer, trainer.received_sigterm or self.deferred)
        if not stop:
            return
        if validation_or_epoch_end_follows(trainer):
            # The epoch's last step, or a validation follows: that validation first, then the
            # epoch's end (on_train_epoch_end) or the next step.
            self.deferred = True
            self._note(trainer, False)
            return
        # The whole training state (optimiser, loops), as last.ckpt is saved at an epoch's end.
        trainer.save_checkpoint(str(self.path), weights_only=False)
        self.saved_step = trainer.global_step
        self.deferred = False
        self._note(trainer, True)

    def _in_fit_validation(self, trainer) -> bool:
        from pytorch_lightning.trainer.states import TrainerFn

        return trainer.state.fn == TrainerFn.FITTING and not trainer.sanity_checking

    def on_validation_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0
    ) -> None:
        # A signal during the validation of a step not saved yet: the validation goes on to its end.
        if (
            self._in_fit_validation(trainer)
            and trainer.received_sigterm
            and self.saved_step != trainer.global_step
        ):
            self.deferred = True
            self._note(trainer, False)

    def on_validation_end(self, trainer, pl_module) -> None:
        if not self._in_fit_validation(trainer) or self.saved_step == trainer.global_step:
            return
        # Every process the same: a signal one of them noted during the validation, or since.
        stop = self._agreed(trainer, trainer.received_sigterm or self.deferred)
        self.deferred = stop
        self._note(trainer, False)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self.deferred:
            # The epoch-end last.ckpt (written after this hook) holds the whole epoch; Lightning
            # stops after the epoch-end hooks.
            self.deferred = False
            self._note(trainer, True)
