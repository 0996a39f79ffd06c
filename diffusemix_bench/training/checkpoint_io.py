"""Checkpoints written whole or not at all, next to where they go."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import torch
from lightning_fabric.plugins import TorchCheckpointIO


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
        partial = path.with_name(f".{path.name}.{os.getpid()}.part")
        try:
            with open(partial, "wb") as f:
                f.write(buffer.getbuffer())
                f.flush()
                os.fsync(f.fileno())
            os.replace(partial, path)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        # Partial files a killed process left for this name.
        for stale in path.parent.glob(f".{path.name}.*.part"):
            stale.unlink(missing_ok=True)
