"""A non-finite training loss stops the run with NonFiniteLossError naming the first bad step, both
when every step is checked (CPU) and when the check is deferred to every log_every_n_steps steps
(accelerators: no host-device synchronisation per step)."""

from __future__ import annotations

import math

import pytest
import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from diffusemix_bench.augment import create_aug
from diffusemix_bench.augment.base import AugContext
from diffusemix_bench.config import LossConfig, OptimConfig, SchedConfig
from diffusemix_bench.training.module import ClassifierModule, NonFiniteLossError


class StepAtError(pl.Callback):
    def __init__(self) -> None:
        self.step = None

    def on_exception(self, trainer, pl_module, exception) -> None:
        self.step = trainer.global_step


def fit_linear(
    lr: float,
    every_step: bool | None,
    callback: pl.Callback,
    items: int,
    max_steps: int,
    accelerator: str = "cpu",
    optimizer: str = "sgd",
    protocol: str | None = None,
    criterion: str = "ce",
):
    """A one-layer model on ``items`` random 8 x 8 images in batches of four, checked every step or
    deferred (``every_step``), logging every 5 steps: its module, trainer and loader."""
    torch.manual_seed(0)
    data = TensorDataset(
        torch.randint(0, 256, (items, 3, 8, 8), dtype=torch.uint8),
        torch.randint(0, 4, (items,)),
        torch.arange(items),
    )
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 4))
    module = ClassifierModule(
        model,
        4,
        create_aug({"name": "none"}, AugContext(num_classes=4, protocol=protocol)),
        "ce",
        LossConfig(name="ce", criterion=criterion),
        OptimConfig(name=optimizer, lr=lr),
        SchedConfig(name="none"),
    )
    module.check_loss_every_step = every_step
    trainer = pl.Trainer(
        max_steps=max_steps,
        accelerator=accelerator,
        devices=1,
        logger=False,
        log_every_n_steps=5,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[callback],
        limit_val_batches=0,
    )
    return module, trainer, DataLoader(data, batch_size=4)


def diverge(every_step: bool | None, accelerator: str = "cpu") -> tuple[str, int]:
    where = StepAtError()
    module, trainer, loader = fit_linear(1e30, every_step, where, 64, 12, accelerator)
    with pytest.raises(NonFiniteLossError) as err:
        trainer.fit(module, train_dataloaders=loader)
    return str(err.value), where.step


def test_the_advice_fits_the_optimiser():
    """SGD may take a paper protocol's recipe; another optimiser is told that such a recipe is SGD."""
    assert "lower optim.lr or pick a paper protocol (protocol=...)" in diverge(every_step=True)[0]
    module, trainer, loader = fit_linear(1e30, True, StepAtError(), 64, 12, optimizer="adamw")
    with pytest.raises(NonFiniteLossError, match=r"optim=sgd protocol=<name>, not optim=adamw"):
        trainer.fit(module, train_dataloaders=loader)
    # A run that already follows a paper protocol is not told to pick one.
    module, trainer, loader = fit_linear(1e30, True, StepAtError(), 64, 12, protocol="scratch_preact")
    with pytest.raises(NonFiniteLossError) as err:
        trainer.fit(module, train_dataloaders=loader)
    assert "lower optim.lr (the run follows protocol=scratch_preact;" in str(err.value)
    assert "pick a paper protocol" not in str(err.value)


def test_non_finite_loss_names_its_first_step_checked_every_step_or_deferred():
    every, at_every = diverge(every_step=True)
    deferred, at_deferred = diverge(every_step=False)
    assert "training loss became nan at step" in every or "training loss became inf at step" in every
    assert deferred == every  # the same first step and value
    # Deferred: noticed only at the next check (every 5 steps), after the step it names.
    first = int(every.split(" at step ")[1].split(" ")[0])
    assert at_every == first
    assert at_deferred == 4 and first < 4


@pytest.mark.gpu
def test_non_finite_loss_on_a_gpu_is_checked_deferred_and_names_its_first_step():
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    every, _ = diverge(every_step=True)
    on_gpu, at = diverge(every_step=None, accelerator="gpu")  # the accelerator's default: deferred
    first = int(on_gpu.split(" at step ")[1].split(" ")[0])
    assert at == 4 and first < 4
    assert first == int(every.split(" at step ")[1].split(" ")[0])


class ReadsPerStep(pl.Callback):
    """Counts reads of tensor values by the host (``.item()``, ``float(t)``, ``bool(t)``: each one a
    wait for the device on an accelerator) during each training step."""

    def __init__(self) -> None:
        self.reads: dict[int, int] = {}
        self.losses: list[float] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        from torch.utils._python_dispatch import TorchDispatchMode

        counts = self.reads
        step = trainer.global_step

        class Reads(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                if func is torch.ops.aten._local_scalar_dense.default:
                    counts[step] = counts.get(step, 0) + 1
                return func(*args, **(kwargs or {}))

        counts.setdefault(step, 0)
        self.mode = Reads()
        self.mode.__enter__()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.mode.__exit__(None, None, None)
        self.losses.append(float(outputs["loss"]))


def test_deferred_check_reads_no_value_between_log_steps():
    """With the accelerators' deferred check, a training step reads nothing back from the device
    except every log_every_n_steps steps, and the epoch's mean loss still counts every step."""
    reads = ReadsPerStep()
    module, trainer, loader = fit_linear(0.01, False, reads, 40, 10)
    trainer.fit(module, train_dataloaders=loader)
    assert sorted(reads.reads) == list(range(10))
    assert [step for step, n in reads.reads.items() if n] == [4, 9]  # the log steps only
    # The epoch's mean over its 40 images (ten batches of four): every step's loss counts, also
    # those between the log steps.
    assert len(reads.losses) == 10
    assert module.epoch_train_loss() == pytest.approx(sum(reads.losses) / 10, rel=1e-6)


DDP_SCRIPT = """
import sys

import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from diffusemix_bench.augment import create_aug
from diffusemix_bench.augment.base import AugContext
from diffusemix_bench.config import LossConfig, OptimConfig, SchedConfig
from diffusemix_bench.training.module import ClassifierModule, NonFiniteLossError


class NanOnRankOne(ClassifierModule):
    def on_after_batch_transfer(self, batch, dataloader_idx):
        images, labels, indices = super().on_after_batch_transfer(batch, dataloader_idx)
        if self.global_rank == 1 and self.global_step == BAD_STEP:
            images = images * float("nan")
        return images, labels, indices


EVERY_STEP = {"every": True, "deferred": False}[sys.argv[1]]
BAD_STEP = int(sys.argv[2])
torch.manual_seed(0)
data = TensorDataset(
    torch.randint(0, 256, (96, 3, 8, 8), dtype=torch.uint8), torch.randint(0, 4, (96,)), torch.arange(96)
)
module = NanOnRankOne(
    nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 4)),
    4,
    create_aug({"name": "none"}, 4),
    "ce",
    LossConfig(name="ce"),
    OptimConfig(lr=0.01),
    SchedConfig(name="none"),
)
module.check_loss_every_step = EVERY_STEP  # every step (CPUs) or deferred (accelerators)
trainer = pl.Trainer(
    max_steps=10,
    accelerator="cpu",
    devices=2,
    strategy="ddp",
    logger=False,
    log_every_n_steps=5,
    enable_checkpointing=False,
    enable_progress_bar=False,
    enable_model_summary=False,
    limit_val_batches=0,
)
try:
    trainer.fit(module, train_dataloaders=DataLoader(data, batch_size=4))
except NonFiniteLossError as exc:
    print(f"rank {trainer.global_rank}: {exc}", flush=True)
    sys.exit(3)
print(f"rank {trainer.global_rank}: finished", flush=True)
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    ("check", "bad_step", "rank0_says"),
    [
        ("deferred", 4, "non-finite on another process at step 4 or before"),
        # Rank 1's NaN gradients reach rank 0's weights: its own loss is NaN from the next step.
        ("deferred", 2, "nan at step 3"),
        ("every", 2, "non-finite on another process at step 2 or before"),
    ],
)
def test_a_non_finite_loss_on_one_rank_stops_every_rank(tmp_path, check, bad_step, rank0_says):
    """Two CPU ranks; rank 1's loss alone turns NaN at ``bad_step``. Every rank stops at the next
    check (every step, or the next log step when deferred) with the message: rank 0 names its own
    first non-finite step, or the other process. Without the ranks' agreement rank 1 stops alone and
    rank 0 fails in its next gradient exchange (seen on CPU: gloo's "Connection closed by peer"
    traceback; NCCL waits for the peer until its timeout)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = tmp_path / "ddp_nan.py"
    script.write_text(DDP_SCRIPT)
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=str(root))
    result = subprocess.run(
        [sys.executable, str(script), check, str(bad_step)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = result.stdout + result.stderr
    assert result.returncode != 0, out[-3000:]
    assert f"rank 0: training loss became {rank0_says} (" in out, out[-3000:]


def test_a_loss_that_blows_up_yet_stays_finite_is_warned_of_once_and_kept(caplog):
    """An epoch whose mean training loss is at least BLOWN_UP_FACTOR times a uniform guess's is
    warned of once (the first such epoch) and kept across a checkpoint; a healthy run notes
    nothing, nor does one with bce_softmax (bounded far below the mark)."""
    from diffusemix_bench.training.module import BLOWN_UP_FACTOR, blew_up_record

    module, trainer, loader = fit_linear(1e3, True, pl.Callback(), 64, 32)  # two epochs of 16 steps
    with caplog.at_level("WARNING", logger="diffusemix_bench.training.module"):
        trainer.fit(module, train_dataloaders=loader)
    warned = [r.getMessage() for r in caplog.records if "has blown up" in r.getMessage()]
    assert len(warned) == 1 and warned[0].startswith("the mean training loss of epoch 0 is ")
    assert f"at least {BLOWN_UP_FACTOR} times a uniform guess's 1.39 (ln of 4 classes)" in warned[0]
    assert "lower optim.lr or pick a paper protocol (protocol=...). It goes on;" in warned[0]
    first = module.loss_blew_up
    assert first["epoch"] == 0 and first["train_loss"] > BLOWN_UP_FACTOR * math.log(4)
    checkpoint: dict = {}
    module.on_save_checkpoint(checkpoint)
    again, _, _ = fit_linear(1e3, True, pl.Callback(), 64, 32)
    again.on_load_checkpoint(checkpoint)
    assert again.loss_blew_up == first
    # The record: ended when the loss of the weights reported is blown up: the selected
    # checkpoint's validation loss, else (no validation) the last epoch's training loss.
    last = module.epoch_train_loss()
    record = blew_up_record(first, last, None, 4)
    assert record["ended"] and record["judged_on"] == "last_train_loss" and record["first_epoch"] == 0
    assert record["last_train_loss"] == last and record["uniform_guess_loss"] == pytest.approx(math.log(4))
    # (blew up after the epoch selected: the weights reported are not a blown-up model's)
    record = blew_up_record(first, last, 0.5, 4)
    assert record["ended"] is False and record["judged_on"] == "selected_val_loss"
    assert blew_up_record(first, 1.0, None, 4)["ended"] is False  # blew up, then came back
    assert blew_up_record(None, 1e6, 1e6, 4)["ended"] is True
    assert blew_up_record(None, 1e6, None, 4, "bce_softmax") is None  # (its loss is not cross-entropy)
    assert blew_up_record(None, 1.0, 0.5, 4) is None

    for healthy, trainer, loader in (
        fit_linear(0.01, True, pl.Callback(), 64, 32),
        fit_linear(1e3, True, pl.Callback(), 64, 32, criterion="bce_softmax"),
    ):
        caplog.clear()
        trainer.fit(healthy, train_dataloaders=loader)
        assert healthy.loss_blew_up is None and not [
            r for r in caplog.records if "blown up" in r.getMessage()
        ]


def test_a_run_that_blew_up_says_so_in_its_log_metrics_report_and_sweep_summary(tmp_path):
    """train.py on noise images at a learning rate far too high for them: the loss blows up by
    orders of magnitude without becoming non-finite. The run finishes (exit 0), warns, records it in
    metrics.json; report.py and a sweep's summary.csv say its numbers are a blown-up model's."""
    import json

    import numpy as np
    from PIL import Image

    from diffusemix_bench.reporting.sweeps import write_summary
    from tests.conftest import run_entry

    rng = np.random.default_rng(0)
    for split, n in (("train", 8), ("val", 4)):
        for c in range(3):
            folder = tmp_path / "images" / split / f"c{c}"
            folder.mkdir(parents=True)
            for i in range(n):
                Image.fromarray((rng.random((20, 20, 3)) * 255).astype(np.uint8)).save(folder / f"{i}.png")
    run = tmp_path / "sweep" / "0"
    settings = [
        "dataset=imagefolder",
        f"dataset.root={tmp_path / 'images'}",
        "dataset.image_size=16",
        "dataset.resize=18",
        "dataset.batch_size=8",
        "optim.lr=0.3",
        "logger=csv",
        "trainer.enable_progress_bar=false",
        f"hydra.run.dir={run}",
    ]
    done = run_entry("train.py", [*settings, "trainer.max_epochs=2"], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads((run / "metrics.json").read_text())["loss_blew_up"]
    guess = math.log(3)
    assert record["ended"] and record["first_epoch"] in (0, 1) and record["factor"] == 100
    assert record["uniform_guess_loss"] == pytest.approx(guess)
    assert record["selected_val_loss"] > 100 * guess and math.isfinite(record["selected_val_loss"])
    assert record["judged_on"] == "selected_val_loss"
    logged = done.stdout + done.stderr
    assert "the training has blown up without the loss becoming non-finite (optim.lr=0.3," in logged
    assert "this run ended with the selected checkpoint's validation loss " in logged
    assert "are a blown-up model's, as metrics.json's loss_blew_up records and report.py notes" in logged
    # Trained one epoch further from its last.ckpt: where it first blew up is kept.
    further = run_entry("train.py", [*settings, "trainer.max_epochs=3", "ckpt_path=last"], tmp_path)
    assert further.returncode == 0, further.stderr[-3000:]
    again = json.loads((run / "metrics.json").read_text())
    assert again["epochs"] == 3 and again["resumed"] is True
    assert again["loss_blew_up"]["first_epoch"] == record["first_epoch"]
    assert again["loss_blew_up"]["first_train_loss"] == record["first_train_loss"]

    report = run_entry("report.py", [f"runs={run}"], tmp_path)
    assert report.returncode == 0, report.stderr[-3000:]
    assert (
        "1 finished run ended with a loss over 100 times a uniform guess's, yet finite (metrics.json's "
        "loss_blew_up): its numbers, counted in its cell as measured, are a blown-up model's"
    ) in report.stdout
    assert f"{run}: training loss (last epoch) " in report.stdout and "a uniform guess 1.1" in report.stdout
    (row,) = write_summary(tmp_path / "sweep")
    assert row["status"] == "finished" and row["reason"].startswith(
        "loss blew up: training loss (last epoch) "
    )


@pytest.mark.gpu
def test_a_blown_up_loss_on_a_gpu_is_noted():
    """On a GPU the epoch's loss sum lives on the device: the check stacks its count beside it there
    (a CPU count beside it stopped every epoch's end)."""
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    module, trainer, loader = fit_linear(1e3, True, pl.Callback(), 64, 32, accelerator="gpu")
    trainer.fit(module, train_dataloaders=loader)
    assert module.loss_blew_up is not None and module.loss_blew_up["epoch"] == 0
