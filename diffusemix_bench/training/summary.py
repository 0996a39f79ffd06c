"""summary.csv in the run folder, one row per epoch as timm's train.py writes it: epoch, learning
rate, train loss, validation top-1/top-5 and loss, training images per second, wall seconds."""

from __future__ import annotations

import csv
import io
import logging
import time
from pathlib import Path

from pytorch_lightning.callbacks import Callback

from ..files import write_atomic
from ..progress import duration_text

log = logging.getLogger(__name__)

FIELDS = (
    "epoch",
    "step",
    "lr",
    "head_lr",
    "train_loss",
    "val_loss",
    "val_top1",
    "val_top5",
    "images_per_s",
    "epoch_s",
)


def _say_time_left(trainer, epoch_seconds: float) -> None:
    """After the first epoch a process trains: how long the epochs left will take at its pace (a
    full protocol run started by mistake, 300 epochs at 224 px on a CPU, is seen at once)."""
    done = trainer.current_epoch + 1
    left = [trainer.max_epochs - done] if trainer.max_epochs is not None and trainer.max_epochs > 0 else []
    per_epoch = trainer.num_training_batches / max(1, trainer.accumulate_grad_batches)
    if trainer.max_steps is not None and trainer.max_steps > 0 and 0 < per_epoch < float("inf"):
        left.append((trainer.max_steps - trainer.global_step) / per_epoch)
    if not left or min(left) <= 0 or epoch_seconds <= 0:
        return
    seconds = min(left) * epoch_seconds
    ends = time.strftime("%Y-%m-%d %H:%M", time.localtime(time.time() + seconds))
    log.info(
        "epoch %d took %s: the %s epoch%s left will take about %s at this pace (ending near %s)",
        trainer.current_epoch,
        duration_text(epoch_seconds),
        f"{min(left):.3g}",
        "" if min(left) == 1 else "s",
        duration_text(seconds),
        ends,
    )


def _rates(optimizer) -> tuple[float | None, float | None]:
    """The first parameter group's learning rate, and the head's where it has its own group."""
    groups = optimizer.param_groups
    head = [g["lr"] for g in groups if g.get("name") == "head"]
    return groups[0]["lr"], head[0] if head else None


def _value(metrics: dict, key: str) -> float | None:
    value = metrics.get(key)
    return None if value is None else round(float(value), 6)


class EpochSummary(Callback):
    """Appends a row at the end of each training epoch (after its validation); a resumed run goes
    on appending to the same file, replacing the rows of epochs it trains again. The epoch's train
    loss (mean over its images), wall seconds and images per second count the whole epoch when it
    was interrupted and resumed: the running sums travel in the checkpoint (this callback's state).
    ``lr`` is the learning rate the epoch's last step trained with (first parameter group: the
    backbone's where ``optim.head_lr`` gives the head its own, ``head_lr``, else empty). The
    validation columns are those of a validation run in that epoch (else empty), and images per
    second leave the epoch's validations out (``epoch_s`` is the whole epoch's wall time)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._part_start: float | None = None  # when this process began its part of the epoch
        self._seconds_before = 0.0  # seconds of the epoch spent before a resume
        self._seen = 0  # pl_module.images_seen at the epoch's start
        self._lr: float | None = None  # the rate of the last step trained (before its scheduler step)
        self._head_lr: float | None = None  # the head's own (optim.head_lr), None without one
        self._validated: int | None = None  # the last epoch a validation ran in
        self._val_seconds = 0.0  # seconds of this epoch's validations (left out of images_per_s)
        self._val_start: float | None = None
        self._told = False  # whether this process has said how long the run's rest will take

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._part_start = time.time()
        self._seconds_before = 0.0
        self._val_seconds = 0.0
        self._seen = pl_module.images_seen

    def on_validation_start(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            self._val_start = time.time()

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking or self._val_start is None:
            return
        self._val_seconds += time.time() - self._val_start
        self._val_start = None
        self._validated = trainer.current_epoch

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.optimizers:
            self._lr, self._head_lr = _rates(trainer.optimizers[0])

    def on_train_start(self, trainer, pl_module) -> None:
        if self._part_start is None:  # resumed mid-epoch: on_train_epoch_start is not called again
            self._part_start = time.time()

    def _seconds(self) -> float:
        return self._seconds_before + (
            time.time() - self._part_start if self._part_start is not None else 0.0
        )

    def state_dict(self) -> dict:
        return {
            "seconds": self._seconds(),
            "seen": self._seen,
            "val_seconds": self._val_seconds,
            "validated": self._validated,
        }

    def load_state_dict(self, state: dict) -> None:
        self._seconds_before = float(state.get("seconds", 0.0))
        self._seen = int(state.get("seen", 0))
        self._val_seconds = float(state.get("val_seconds", 0.0))
        self._validated = state.get("validated")

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if not trainer.is_global_zero or trainer.sanity_checking:
            return
        m = trainer.callback_metrics
        seconds = self._seconds()
        optimizers = trainer.optimizers
        lr, head_lr = self._lr, self._head_lr
        if lr is None and optimizers:
            lr, head_lr = _rates(optimizers[0])
        # The module's own sum over the epoch's images (kept across a resume in its checkpoint).
        train_loss = pl_module.epoch_train_loss()
        # Validation numbers of this epoch only (check_val_every_n_epoch > 1 leaves epochs without
        # one: their cells stay empty, not the last validation's again).
        if self._validated != trainer.current_epoch:
            m = {}
        training_s = seconds - self._val_seconds  # images per second of training, validation apart
        if not self._told:
            self._told = True
            _say_time_left(trainer, seconds)
        row = {
            "epoch": trainer.current_epoch,
            "step": trainer.global_step,
            "lr": lr,
            "head_lr": head_lr,
            "train_loss": None if train_loss is None else round(train_loss, 6),
            "val_loss": _value(m, "val/loss"),
            "val_top1": None if m.get("val/top1") is None else round(100 * float(m["val/top1"]), 4),
            "val_top5": None if m.get("val/top5") is None else round(100 * float(m["val/top5"]), 4),
            "images_per_s": round((pl_module.images_seen - self._seen) / training_s, 2)
            if training_s > 0
            else None,
            "epoch_s": round(seconds, 2),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        kept = self._rows_before(trainer.current_epoch)
        if kept is None:
            with open(self.path, "a", newline="") as f:
                csv.DictWriter(f, fieldnames=FIELDS).writerow(row)
            return
        # A new file, or a run resumed from a checkpoint older than the file's last rows (the run
        # stopped after writing them, before its next checkpoint): those epochs are trained again
        # and their rows replaced, so each epoch has one row, from the run that continues.
        text = io.StringIO(newline="")
        writer = csv.DictWriter(text, fieldnames=FIELDS, extrasaction="ignore")  # (a column since dropped)
        writer.writeheader()
        writer.writerows([*kept, row])
        write_atomic(self.path, text.getvalue())

    def _rows_before(self, epoch: int) -> list[dict] | None:
        """The file's rows of the epochs before ``epoch``, or None when it holds no other rows (then
        the row is appended)."""
        if not self.path.is_file():
            return []
        with open(self.path, newline="") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
        kept = [r for r in rows if r.get("epoch", "").isdigit() and int(r["epoch"]) < epoch]
        # (a file written before a column was added is written anew with it, its rows' cells empty)
        same_columns = tuple(reader.fieldnames or ()) == FIELDS
        return None if len(kept) == len(rows) and same_columns else kept
