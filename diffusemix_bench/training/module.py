"""LightningModule: batch augmentation on the device, soft-target loss, top-1/top-5 metrics."""

from __future__ import annotations

import logging
import math
import random
import time
from dataclasses import replace

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torchmetrics.classification import MulticlassAccuracy

from ..augment import Augmentation
from ..config import LossConfig, OptimConfig, SchedConfig
from ..data.datamodule import drops_last_batch
from ..errors import UserError
from ..robustness.adversarial_training import FastAdversarial
from .losses import TrainLoss, smooth_targets
from .optim import build_optimizer, build_scheduler
from .provenance import code_state, device_name, versions


class NonFiniteLossError(UserError, FloatingPointError):
    """The training loss became NaN or infinite: the settings (learning rate, precision) diverge."""


#: Rank r draws from seed + r * RANK_SEED_STRIDE in the main process (a prime, far from small seeds).
RANK_SEED_STRIDE = 1_000_003


#: ``started_from`` of a run resumed from a checkpoint that predates the record.
UNKNOWN = "unknown"

#: A loss this many times a uniform guess's (ln of the number of classes) is a model that has blown
#: up without its loss becoming non-finite: warned of while it trains and recorded in metrics.json
#: (``loss_blew_up``). Healthy training, mixed targets and label smoothing included, stays within a
#: few times that loss.
BLOWN_UP_FACTOR = 100

log = logging.getLogger(__name__)


def uniform_guess_loss(num_classes: int) -> float:
    """The cross-entropy of predicting every class alike: ln of the number of classes."""
    return math.log(max(2, int(num_classes)))


def blown_up(loss, num_classes: int) -> bool:
    """Whether a (finite) loss is ``BLOWN_UP_FACTOR`` times a uniform guess's or more."""
    return (
        isinstance(loss, (int, float))
        and math.isfinite(loss)
        and loss >= BLOWN_UP_FACTOR * uniform_guess_loss(num_classes)
    )


def blew_up_record(
    first: dict | None, last: float | None, val_loss, num_classes: int, criterion: str = "ce"
) -> dict | None:
    """metrics.json's ``loss_blew_up``: where the run's training loss first blew up (``first``,
    the module's ``loss_blew_up`` after fit), the mean training loss of its last epoch (``last``)
    and the selected checkpoint's validation loss (``val_loss``, cross-entropy), beside a uniform
    guess's. ``ended`` when the weights reported are a blown-up model's, judged (``judged_on``) on
    the loss of those weights: the selected checkpoint's validation loss, else (no validation:
    the last weights are reported) the last epoch's training loss, where it is cross-entropy
    (``criterion``; bce_softmax is bounded far below the mark). None when no loss blew up. (Read
    ``first`` and ``last`` before the selected checkpoint is loaded for evaluation: loading it
    restores its own.)"""
    val_loss = float(val_loss) if isinstance(val_loss, (int, float)) else None
    judged_on = (
        "selected_val_loss" if val_loss is not None else "last_train_loss" if criterion == "ce" else None
    )
    judged = {"selected_val_loss": val_loss, "last_train_loss": last}.get(judged_on)
    ended = blown_up(judged, num_classes)
    if first is None and not ended:
        return None
    return {
        "ended": ended,
        "judged_on": judged_on,
        "first_epoch": None if first is None else first["epoch"],
        "first_train_loss": None if first is None else first["train_loss"],
        "last_train_loss": last,
        "selected_val_loss": val_loss,
        "uniform_guess_loss": uniform_guess_loss(num_classes),
        "factor": BLOWN_UP_FACTOR,
    }


class ClassifierModule(pl.LightningModule):
    """Trains ``model`` (pixel-space input in [0, 1], normalisation inside) with ``aug``.

    Batches arrive as uint8 ``(images, labels, indices)``; they are scaled to float on the
    device, where the augmentation mixes whole batches. Validation and test use clean images.
    Metrics are logged as ``{stage}/loss``, ``{stage}/top1`` and ``{stage}/top5`` (fractions);
    the selected checkpoint's validation after training as ``val_selected/...`` (``val_name``), so
    the loggers do not show it as one more epoch's validation.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        num_classes: int,
        aug: Augmentation,
        loss_name: str,
        loss: LossConfig,
        optim: OptimConfig,
        sched: SchedConfig,
        adversarial: FastAdversarial | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.num_classes = num_classes
        self.aug = aug
        self.loss_cfg = loss
        self.optim_cfg = optim
        self.sched_cfg = sched
        self.criterion = TrainLoss(loss_name, loss.jsd_weight, loss.criterion)
        # Fast adversarial training (adv.p): batches perturbed so far, kept across a resume.
        self.adversarial = adversarial or FastAdversarial()
        self.adversarial_batches = 0
        # Images each evaluation actually saw (its last run; limit_*_batches can shorten it).
        self.evaluated = {"val": 0, "test": 0}
        # The name validation logs under: "val" during fit, "val_selected" for the selected checkpoint.
        self.val_name = "val"
        # What the run's parts trained with, carried in its checkpoints: the number of processes of
        # each part ([None] for a part whose checkpoint predates the record) and the weight file the
        # run started from (its sha256; set by the caller for a new run).
        self.world_sizes_before: list[int | None] = []
        self.started_from: dict | None = None
        # What the weights are for (the model, its input size, the dataset and its classes), in every
        # checkpoint: evaluate.py refuses a checkpoint whose record differs from its run folder's.
        self.trained_with: dict | None = None
        # What each part before this process trained with (its steps, processes, device, precision,
        # code and package versions; None for a part whose checkpoint predates the record), and this
        # process's part (set when its training starts).
        self.parts_before: list[dict | None] = []
        self.this_part: dict | None = None
        # Seconds of fit before this process (a resumed run), and when this process's fit began.
        self.wall_time_before = 0.0
        self._fit_started: float | None = None
        # The run's wall time before this process (start-up and evaluation included, up to the
        # checkpoint resumed from), and when this process's part began (set by the caller).
        self.wall_seconds_before = 0.0
        self.part_started: float | None = None
        # Top-5 is capped at the number of classes so tiny label sets still report a value.
        self.top5_k = min(5, num_classes)
        # Training items this run has fed to the model (all ranks), kept across a resume.
        self.images_seen = 0
        # The training losses (on the device, detached), batch sizes and steps not yet summed or
        # checked, and the epoch's loss summed over its images (on the device) and how many: see
        # _watch_loss and _flush_losses.
        self._pending: list[tuple[torch.Tensor, int, int]] = []
        self._first_bad: tuple[int, float] | None = None  # (step, loss), noted by _flush_losses
        self._loss_sum: torch.Tensor | None = None
        self._loss_count = 0
        # Set when a resumed epoch's loss before the checkpoint is not known (see on_load_checkpoint).
        self._loss_unknown = False
        # The first epoch whose mean training loss blew up (BLOWN_UP_FACTOR), kept across a resume:
        # {"epoch", "train_loss"}.
        self.loss_blew_up: dict | None = None
        # None: check the loss every step on a CPU, deferred on an accelerator (_watch_loss).
        self.check_loss_every_step: bool | None = None
        self.metrics = torch.nn.ModuleDict(
            {
                f"{stage}_{name}": MulticlassAccuracy(num_classes, top_k=k, average="micro")
                for stage in ("val", "test")
                for name, k in (("top1", 1), ("top5", self.top5_k))
            }
        )

    def __setattr__(self, name: str, value) -> None:
        # Lightning names the running hook in _current_fx_name around every hook call, about 50
        # times a training step; nn.Module.__setattr__ would check each of these strings against
        # the parameters, buffers and submodules (a few microseconds each). A name that is never
        # one of them is set directly.
        if name == "_current_fx_name":
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    def on_validation_epoch_start(self) -> None:
        self.evaluated["val"] = 0

    def on_test_epoch_start(self) -> None:
        self.evaluated["test"] = 0

    def on_validation_epoch_end(self) -> None:
        self._sum_evaluated("val")

    def on_test_epoch_end(self) -> None:
        self._sum_evaluated("test")

    def _sum_evaluated(self, stage: str) -> None:
        """The images every process evaluated, summed: each process evaluates its own part of the
        split (DataModule.eval_loader, unpadded), and the parts differ by an image where the split
        does not divide evenly."""
        if self.trainer.world_size > 1:
            count = torch.tensor(self.evaluated[stage], device=self.device, dtype=torch.long)
            self.evaluated[stage] = int(self.trainer.strategy.reduce(count, reduce_op="sum"))

    def fit_seconds(self) -> float:
        """Seconds of fit so far, the parts before a resume included."""
        running = time.time() - self._fit_started if self._fit_started is not None else 0.0
        return self.wall_time_before + running

    def on_fit_start(self) -> None:
        self._fit_started = time.time()
        # seed_everything seeds every rank's global generators alike (data workers get their own,
        # per rank). Draws made in the main process (batch mixing ratios and partners, per-image
        # choices with dataset.num_workers=0) would then repeat on every rank: offset them by rank.
        trainer = self.trainer
        if trainer.world_size > 1:
            seed = (self.aug.ctx.seed + RANK_SEED_STRIDE * trainer.global_rank) % 2**32
            random.seed(seed)
            np.random.seed(seed)
            torch.manual_seed(seed)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images)

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        if isinstance(batch, torch.Tensor):  # the model summary's example input (float, as given)
            return batch
        images, labels, indices = batch
        if images.dtype == torch.uint8:
            images = images.float().div_(255.0)
        return images, labels, indices

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        images, labels, indices = batch
        targets = smooth_targets(labels, self.num_classes, self.loss_cfg.label_smoothing)
        aug_batch = self.aug.apply(images, targets, indices, self.model)

        def loss_of(logits: torch.Tensor) -> torch.Tensor:
            return self.criterion(
                logits, aug_batch.targets, aug_batch.num_views, aug_batch.num_clean, aug_batch.clean_weight
            )

        if not self.aug.own_adversarial and self.adversarial.draw():
            aug_batch.inputs = self.adversarial.perturb(
                lambda x: self.aug.logits(self.model, replace(aug_batch, inputs=x)), aug_batch.inputs, loss_of
            )
            self.adversarial_batches += 1
        logits = self.aug.logits(self.model, aug_batch)
        loss = loss_of(logits)
        self._watch_loss(loss, len(labels))
        self._log_loss(loss)
        self.images_seen += len(labels) * self.trainer.world_size
        return loss

    def _watch_loss(self, loss: torch.Tensor, n: int) -> None:
        """Stop on a non-finite training loss. On a CPU every step is checked. On an accelerator
        (or with ``check_loss_every_step=False``) reading the loss each step would make the host
        wait for every step to finish before it queues the next one, so each step's loss is only
        kept (no device work at all: the host's time per step is what a small model's step costs)
        and checked every ``trainer.log_every_n_steps`` steps (when a logger reads the loss
        anyway), before a checkpoint is saved and at the end of each epoch: the error names the
        first non-finite step. The loss of the ``n`` images is kept for the epoch's mean."""
        loss = loss.detach()
        self._pending.append((loss, n, self.global_step))
        self._loss_count += n
        every_step = self.check_loss_every_step
        now = every_step if every_step is not None else loss.device.type == "cpu"
        several = self.trainer.world_size > 1
        if now and not several and not torch.isfinite(loss):
            self._raise_non_finite(self.global_step, loss.item())
        if self._log_step() or (now and several):  # several ranks: they check this step together
            self._flush_losses(across_ranks=True)

    def _flush_losses(self, *, stop: bool = True, across_ranks: bool = False) -> None:
        """Add the kept losses to the epoch's sum (one stacked product on the device) and note the
        first non-finite one: one read of the device per call. With ``stop``, raise on the first
        noted so far. With ``across_ranks`` (called where every rank is at once: the log steps, the
        epoch's end, a checkpoint) the ranks also agree whether any of them noted one, and all stop
        together: a rank stopping alone would leave the others waiting for it in their next
        exchange. The summary's read of the epoch's mean (rank zero alone) neither stops nor asks
        the others."""
        pending, self._pending = self._pending, []
        if pending:
            losses = torch.stack([loss for loss, _, _ in pending]).float()
            counts = losses.new_tensor([n for _, n, _ in pending])
            total = torch.dot(losses, counts)
            self._loss_sum = total if self._loss_sum is None else self._loss_sum + total
            bad = torch.nonzero(~torch.isfinite(losses)).flatten().tolist()
            if bad and self._first_bad is None:
                self._first_bad = (pending[bad[0]][2], float(losses[bad[0]]))
        if not stop:
            return
        first = self._first_bad
        if across_ranks and self.trainer.world_size > 1:
            anywhere = self.trainer.strategy.reduce_boolean_decision(first is not None, all=False)
            if anywhere and first is None:
                self._raise_non_finite(self.global_step, None)
        if first is not None:
            self._raise_non_finite(*first)

    def _log_step(self) -> bool:
        """Whether this step is one of every ``trainer.log_every_n_steps``."""
        every = max(1, int(getattr(self.trainer, "log_every_n_steps", 50) or 50))
        return (self.global_step + 1) % every == 0

    def _log_loss(self, loss: torch.Tensor) -> None:
        """``train/loss_step`` (this step's loss) to the loggers and the progress bar every
        ``trainer.log_every_n_steps`` steps, ``train/loss_epoch`` (the mean over the epoch's images)
        at the end of each epoch. Lightning's ``self.log`` costs about a millisecond of host time
        per call, which a GPU step of a few milliseconds cannot hide, and reading the loss makes
        the host wait for the step: so neither happens every step, and the epoch's sum stays on
        the device (see _watch_loss)."""
        if not self._log_step():
            return
        value = float(loss.detach())
        # A tensor on the CPU: the progress bar reads this value at every step it refreshes (a
        # rich bar: every step), which for a value on an accelerator would make the host wait
        # for the step to finish each time.
        self.log("train/loss", torch.tensor(value), on_step=True, on_epoch=False, prog_bar=True, logger=False)
        for logger in self.loggers:  # Lightning's loggers write on rank zero only
            logger.log_metrics({"train/loss_step": value, "epoch": self.current_epoch}, step=self.global_step)

    def epoch_train_loss(self) -> float | None:
        """The mean training loss over this epoch's images so far (None before any step, or when
        the epoch was resumed from a checkpoint that did not keep its loss so far)."""
        self._flush_losses(stop=False)
        if self._loss_unknown or not self._loss_count:
            return None
        return float(self._loss_sum) / self._loss_count

    def _raise_non_finite(self, step: int, value: float | None) -> None:
        """``value`` None: another rank's loss became non-finite, at ``step`` or before."""
        what = (
            f"training loss became {value} at step {step}"
            if value is not None
            else f"training loss became non-finite on another process at step {step} or before"
        )
        raise NonFiniteLossError(f"{what} {self.lower_lr_advice()}")

    def lower_lr_advice(self) -> str:
        """What to change when the training loss diverges: the learning rate, with the recipe to
        take it from, and the precision where it is 16-bit."""
        precision = str(self.trainer.precision)
        protocol = getattr(getattr(self.aug, "ctx", None), "protocol", None)
        if protocol not in (None, "custom"):
            recipe = f"(the run follows protocol={protocol}; its learning rate is for its own batch size)"
        elif self.optim_cfg.name == "sgd":
            recipe = "or pick a paper protocol (protocol=...)"
        else:
            recipe = (
                "or train with a paper protocol's SGD recipe "
                f"(optim=sgd protocol=<name>, not optim={self.optim_cfg.name})"
            )
        return (
            f"(optim.lr={self.optim_cfg.lr}, trainer.precision={precision}); lower optim.lr "
            + recipe
            + (
                ", or use 32-true / bf16-mixed precision instead of 16-mixed"
                if precision.startswith("16")
                else ""
            )
        )

    def on_train_epoch_start(self) -> None:
        # Not called for an epoch resumed mid-way: its sum so far comes from the checkpoint.
        self._loss_sum, self._loss_count, self._pending = None, 0, []
        self._loss_unknown = False

    def on_train_epoch_end(self) -> None:
        self._flush_losses(across_ranks=True)
        if self._loss_count and not self._loss_unknown:
            self.log("train/loss_epoch", self._loss_sum / self._loss_count, on_step=False, on_epoch=True)
            self._note_blown_up()

    def _note_blown_up(self) -> None:
        """Warn once (the first process) when an epoch's mean training loss over every process's
        images has blown up, and keep that epoch for metrics.json: the run goes on (its numbers are
        reported as measured). Cross-entropy only: bce_softmax's loss is bounded below the mark."""
        if self.criterion.criterion != "ce":
            return
        # (every process is here, at its epoch's end: the sum and count of all of them)
        total = self._loss_sum.detach().float().reshape(())
        # (the count on the sum's own device: on a GPU, a CPU tensor beside it cannot be stacked)
        both = torch.stack([total, total.new_tensor(float(self._loss_count))])
        both = self.trainer.strategy.reduce(both.to(self.device), reduce_op="sum")
        mean = float(both[0] / both[1])
        if self.loss_blew_up is not None or not blown_up(mean, self.num_classes):
            return
        self.loss_blew_up = {"epoch": int(self.current_epoch), "train_loss": mean}
        if self.global_rank == 0:
            log.warning(
                "the mean training loss of epoch %d is %.3g, at least %d times a uniform guess's %.3g (ln of %d "
                "classes): the training has blown up without the loss becoming non-finite %s. It goes on; "
                "metrics.json records it (loss_blew_up)",
                self.current_epoch,
                mean,
                BLOWN_UP_FACTOR,
                uniform_guess_loss(self.num_classes),
                self.num_classes,
                self.lower_lr_advice(),
            )

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # Never a checkpoint of weights a non-finite loss has reached (every rank dumps the state).
        self._flush_losses(across_ranks=True)
        # The loggers' rows so far on disk with the checkpoint: a run killed after it resumes from
        # it with every row up to its step (the CSV logger otherwise writes every 100 steps).
        for logger in self.loggers:
            logger.save()
        checkpoint["images_seen"] = self.images_seen
        # The epoch's loss so far, so a run resumed mid-epoch logs the whole epoch's mean.
        checkpoint["epoch_loss"] = {
            "sum": 0.0 if self._loss_sum is None else float(self._loss_sum),
            "count": self._loss_count,
        }
        checkpoint["adversarial_batches"] = self.adversarial_batches
        checkpoint["loss_blew_up"] = self.loss_blew_up
        checkpoint["fit_seconds"] = self.fit_seconds()
        if self.part_started is not None:
            checkpoint["wall_seconds"] = self.wall_seconds_before + (time.time() - self.part_started)
        checkpoint["world_sizes"] = self.world_sizes()
        checkpoint["parts"] = self.parts()
        checkpoint["started_from"] = self.started_from
        if self.trained_with is not None:
            checkpoint["trained_with"] = self.trained_with
        # The random streams of the main process (batch mixing draws, dropout, the method's own
        # generators), so a resumed run continues them where the checkpoint was taken. The data
        # loader's draws need none: each image is seeded by its position (data/sampling.py).
        checkpoint["rng_states"] = {
            "python": random.getstate(),
            "numpy": _numpy_state(),
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "aug": self.aug.rng_state(),
            "rank": self.global_rank,
        }

    def world_sizes(self) -> list[int | None]:
        """The processes that trained together in each part of the run so far, each size once (a
        process that only evaluates, its run's training finished before, adds none)."""
        here = [] if self.this_part is None and self.world_sizes_before else [self.trainer.world_size]
        sizes = [*self.world_sizes_before, *here]
        return [size for k, size in enumerate(sizes) if size not in sizes[:k]]

    def parts(self) -> list[dict | None]:
        """What each part of the run so far trained with, this process's part last (up to the
        step reached); a part whose checkpoint predates the record is None."""
        if self.this_part is None:  # (no training started in this process)
            return list(self.parts_before)
        return [*self.parts_before, {**self.this_part, "to_step": int(self.trainer.global_step)}]

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.images_seen = int(checkpoint.get("images_seen", 0))
        epoch_loss = checkpoint.get("epoch_loss")
        # A checkpoint from before the module kept the epoch's loss: if it was taken mid-epoch,
        # the mean over the steps before it is lost, and that epoch's loss is reported as missing
        # (an empty train_loss in summary.csv), never as the mean of the resumed part alone. An
        # epoch-end checkpoint loses nothing: the next epoch starts and clears this.
        self._loss_unknown = epoch_loss is None
        if epoch_loss and epoch_loss.get("count"):
            self._loss_sum = torch.tensor(float(epoch_loss["sum"]))
            self._loss_count = int(epoch_loss["count"])
        self.adversarial_batches = int(checkpoint.get("adversarial_batches", 0))
        self.loss_blew_up = checkpoint.get("loss_blew_up")
        self.wall_time_before = float(checkpoint.get("fit_seconds", 0.0))
        # (a checkpoint that predates the record: its fit seconds, the part of it known)
        self.wall_seconds_before = float(checkpoint.get("wall_seconds", self.wall_time_before))
        self.world_sizes_before = list(checkpoint.get("world_sizes", [None]))
        self.parts_before = list(checkpoint.get("parts", [None]))
        # A checkpoint that predates the record: what the run started from is unknown.
        self.started_from = checkpoint.get("started_from", UNKNOWN)
        self._rng_to_restore = checkpoint.get("rng_states")
        self._resumed = True

    def _align_learning_rates(self) -> None:
        """After a resume, each optimiser group's learning rate is this run's schedule at the
        step reached. The optimiser's state restores the rate the checkpoint's run set for its next
        step; a run trained further (a larger trainer.max_epochs) has another cosine schedule, whose
        rate at that step differs (it used to train one step at the old schedule's last rate). For
        a plain resume the value is the same float (LambdaLR's closed form, as its step computes)."""
        for config in self.trainer.lr_scheduler_configs:
            sched = config.scheduler
            if not isinstance(sched, torch.optim.lr_scheduler.LambdaLR):
                continue
            lrs = [
                base * fn(sched.last_epoch) for base, fn in zip(sched.base_lrs, sched.lr_lambdas, strict=True)
            ]
            for group, lr in zip(sched.optimizer.param_groups, lrs, strict=True):
                group["lr"] = lr
            sched._last_lr = lrs

    def on_train_start(self) -> None:
        """A resumed run takes up the random streams saved in its checkpoint, just before its first
        step (nothing between the checkpoint and that step draws from them in the uninterrupted
        run). The checkpoint holds rank 0's streams: other ranks derive theirs from their rank and
        the step, so a multi-GPU resume is reproducible but not bitwise the uninterrupted run."""
        self.this_part = part_record(self.trainer, self.device)
        if getattr(self, "_resumed", False):
            self._resumed = False
            self._align_learning_rates()
        states, self._rng_to_restore = getattr(self, "_rng_to_restore", None), None
        if not states:
            return
        if self.global_rank == int(states.get("rank", 0)):
            random.setstate(states["python"])
            _set_numpy_state(states["numpy"])
            torch.set_rng_state(states["torch"])
            if (
                states.get("cuda")
                and torch.cuda.is_available()
                and len(states["cuda"]) == torch.cuda.device_count()
            ):
                torch.cuda.set_rng_state_all(states["cuda"])
            self.aug.set_rng_state(states.get("aug"))
        else:
            seed = (self.aug.ctx.seed + RANK_SEED_STRIDE * self.global_rank + self.global_step) % 2**32
            random.seed(seed)
            np.random.seed(seed)
            torch.manual_seed(seed)

    def _eval_step(self, batch, stage: str) -> None:
        images, labels, _ = batch
        logits = self.model(images)
        loss = F.cross_entropy(logits, labels)
        top1, top5 = self.metrics[f"{stage}_top1"], self.metrics[f"{stage}_top5"]
        top1.update(logits, labels)
        top5.update(logits, labels)
        n = len(labels)
        self.evaluated[stage] += n  # this process's; summed over processes at the epoch's end
        name = self.val_name if stage == "val" else stage
        self.log(f"{name}/loss", loss, on_epoch=True, batch_size=n, sync_dist=True)
        self.log(f"{name}/top1", top1, on_epoch=True, prog_bar=True, batch_size=n)
        self.log(f"{name}/top5", top5, on_epoch=True, batch_size=n)

    def validation_step(self, batch, batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch, batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def _steps_per_epoch(self) -> int:
        """Optimiser steps in one epoch of this rank, as the trainer will run it (its shard of the
        data under DDP, ``limit_train_batches`` and gradient accumulation)."""
        trainer = self.trainer
        # Reading estimated_stepping_batches sets up this rank's training loader; num_training_batches
        # is then its length after the distributed sampler and the batch limit.
        total = int(trainer.estimated_stepping_batches)
        batches = trainer.num_training_batches
        if not math.isfinite(batches):  # an iterable dataset without a length
            epochs = trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else 1
            return max(1, total // epochs)
        # Lightning steps on every accumulate_grad_batches-th batch and on the last one of an epoch.
        return max(1, math.ceil(int(batches) / max(1, trainer.accumulate_grad_batches)))

    def configure_optimizers(self):
        optimizer = build_optimizer(self.optim_cfg, self.model)
        steps_per_epoch = self._steps_per_epoch()
        total_steps = int(self.trainer.estimated_stepping_batches)
        scheduler = build_scheduler(self.sched_cfg, optimizer, steps_per_epoch, total_steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def vanilla_batches_per_epoch(
    items: int,
    batch_size: int,
    drop_last: bool,
    world_size: int = 1,
    limit_train_batches: int | float | None = None,
) -> int:
    """Training batches per epoch of one rank for a training set of ``items`` served as the
    DataModule serves it (a last batch of one image is dropped; DDP pads each rank's shard to
    ``ceil(items / world_size)``), after Lightning's ``limit_train_batches``."""
    shard = math.ceil(items / world_size)
    drop = drops_last_batch(shard, batch_size, drop_last)  # per rank, as the loader decides it
    batches = shard // batch_size if drop else math.ceil(shard / batch_size)
    if isinstance(limit_train_batches, float) and limit_train_batches <= 1.0:
        batches = int(batches * limit_train_batches)
    elif limit_train_batches is not None:
        batches = min(batches, int(limit_train_batches))
    return max(1, batches)


def part_record(trainer: pl.Trainer, device: torch.device) -> dict:
    """What one part of a run (one process's fit) trains with: the step it starts from, the
    processes, the device and precision, the code's commit and the package versions."""
    return {
        "from_step": int(trainer.global_step),
        "world_size": int(trainer.world_size),
        "device": device_name(device),
        "precision": str(trainer.precision),
        "git": code_state(),
        "versions": versions(),
    }


def _numpy_state() -> tuple:
    """NumPy's global generator state in types a ``weights_only`` load accepts (no ndarray)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return (name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached))


def _set_numpy_state(state: tuple) -> None:
    name, keys, pos, has_gauss, cached = state
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
