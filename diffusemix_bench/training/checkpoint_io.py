"""Checkpoints written whole or not at all, next to where they go; and a run folder that moved
(to a larger disk, another cluster) resumes choosing its best checkpoint where it left off."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import torch
from lightning_fabric.plugins import TorchCheckpointIO
from pytorch_lightning.callbacks import Callback, ModelCheckpoint

from ..files import write_atomic


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


class CheckpointOnSigterm(Callback):
    """SIGTERM during training (a scheduler's time limit or preemption, ``kill``): Lightning stops
    before the next step; this writes ``last.ckpt`` at the step just done first, at the point where
    ``callbacks.checkpoint_every_n_steps`` writes it, so the resumed run loses no step.

    With several processes, the processes agree at the end of each step whether any of them got
    the signal; if one did, all save that step together (the save is collective) and all stop
    (Lightning stops by the first process's flag, which is then set everywhere). The signal handler
    itself only notes the signal (``signals.note_sigterm_only``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.saved_step: int | None = None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.saved_step == trainer.global_step:
            return
        stop = trainer.received_sigterm
        if trainer.world_size > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
            flag = torch.tensor([int(stop)], device=trainer.strategy.root_device)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            stop = bool(flag.item())
            if stop:
                trainer._signal_connector.received_sigterm = True
        if stop:
            # The whole training state (optimiser, loops), as last.ckpt is saved at an epoch's end.
            trainer.save_checkpoint(str(self.path), weights_only=False)
            self.saved_step = trainer.global_step
