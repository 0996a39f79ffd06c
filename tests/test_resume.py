"""A run stopped mid-epoch and resumed with ckpt_path=last is the uninterrupted run: same weights,
same metrics, same per-epoch summary. Exact equality (no tolerance) is expected on CPU: the
resumed run reads the same images in the same order with the same per-image draws (seeded by
position, data/sampling.py), and the main process's random streams come back from the checkpoint."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from omegaconf import open_dict

from diffusemix_bench.training import run as run_module
from diffusemix_bench.training.run import train
from tests.conftest import ROOT, run_entry, signal_when_ready

COMPARED = ("val_top1", "test_top1", "val_loss", "test_loss", "optimizer_steps", "images_seen", "epochs")


class StopAt(pl.Callback):
    """Stops the run (an exception, as a crash would) before the step ``step`` begins."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer, *args) -> None:
        if trainer.global_step == self.step:
            raise RuntimeError(f"stopped before step {self.step}")


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)[
        "state_dict"
    ]


def _summary(run_dir: Path) -> list[dict]:
    rows = list(csv.DictReader((run_dir / "summary.csv").open()))
    return [{k: r[k] for k in ("epoch", "step", "lr", "train_loss", "val_loss", "val_top1")} for r in rows]


def _same_run(a: dict, a_dir: Path, b: dict, b_dir: Path) -> None:
    assert {k: a.get(k) for k in COMPARED} == {k: b.get(k) for k in COMPARED}
    wa, wb = _weights(a_dir), _weights(b_dir)
    assert wa.keys() == wb.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa), [k for k in wa if not torch.equal(wa[k], wb[k])][:5]
    assert _summary(a_dir) == _summary(b_dir)


def test_a_run_stopped_mid_epoch_resumes_to_the_uninterrupted_run(make_cfg, tmp_path, monkeypatch):
    overrides = [
        "dataset=cifar100",
        "aug=mixup",  # batch draws in the main process, from the global generator
        "trainer.max_epochs=3",
        "trainer.limit_train_batches=3",
        "callbacks.checkpoint_every_n_steps=1",
        "logger=csv",
        "trainer.log_every_n_steps=1",
    ]
    whole = train(make_cfg(overrides, run_name="whole", per_class=6))

    real = run_module.build_callbacks
    monkeypatch.setattr(
        run_module, "build_callbacks", lambda cfg, d, *rest: real(cfg, d, *rest) + [StopAt(4)]
    )
    with pytest.raises(RuntimeError, match="stopped before step 4"):
        train(make_cfg(overrides, run_name="parts", per_class=6))
    monkeypatch.setattr(run_module, "build_callbacks", real)
    saved = torch.load(
        tmp_path / "parts" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True
    )
    assert saved["global_step"] == 4 and saved["epoch"] == 1  # one batch into the second epoch
    # The same stop with a checkpoint from before the module kept the epoch's loss so far.
    shutil.copytree(tmp_path / "parts", tmp_path / "old")
    del saved["epoch_loss"]
    torch.save(saved, tmp_path / "old" / "checkpoints" / "last.ckpt")

    for name in ("parts", "old"):
        cfg = make_cfg(overrides, run_name=name, per_class=6)
        with open_dict(cfg):
            cfg.ckpt_path = "last"
        assert train(cfg)["resumed"]
    resumed = json.loads((tmp_path / "parts" / "metrics.json").read_text())
    _same_run(whole, tmp_path / "whole", resumed, tmp_path / "parts")
    # The CSV log too: the rows before the checkpoint's step kept (Lightning's writer would have
    # deleted them), those of the steps trained again logged once.
    whole_log, parts_log = (
        (tmp_path / name / "logs" / "metrics.csv").read_text() for name in ("whole", "parts")
    )
    assert parts_log == whole_log and "train/loss_step" in whole_log
    # The old checkpoint: the resumed epoch's training loss is missing, never the resumed part's mean.
    old, right = _summary(tmp_path / "old"), _summary(tmp_path / "parts")
    assert [r["train_loss"] for r in old] == [right[0]["train_loss"], "", right[2]["train_loss"]]
    assert [r["val_top1"] for r in old] == [r["val_top1"] for r in right]


@pytest.mark.slow
def test_train_killed_mid_epoch_resumes_bit_identical(tmp_path):
    """A real ``python train.py`` (DiffuseMix on tiny edits, two data workers, last.ckpt every
    step) is SIGKILLed at a seeded random checkpoint of its second epoch; ``ckpt_path=last`` then
    ends with the uninterrupted run's weights, metrics and summary."""
    from diffusemix_bench.generation.generate import generate
    from tests.fixtures.datasets import write_fixture_dataset
    from tests.test_generation import compose_generate

    data = write_fixture_dataset("cifar100", tmp_path / "data", per_class=12)["data_dir"]
    common = [
        "dataset=cifar100",
        f"paths.data_dir={data}",
        f"paths.cache_dir={tmp_path / 'cache'}",
        "generator=tiny",
        "generator.num_prompts=2",
    ]
    generate(compose_generate([*common, "debug=fast"]))
    args = [
        *common,
        "aug=diffusemix",
        "model=preactresnet18",
        "trainer.accelerator=cpu",
        "trainer.max_epochs=3",
        "dataset.batch_size=6",
        "dataset.num_workers=2",
        "fractals.count=8",
        "fractals.size=32",
        "fractals.points=20000",
        "logger=csv",
        "callbacks.checkpoint_every_n_steps=1",
        "callbacks.progress_bar=none",
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))

    def run(name: str, *extra: str) -> subprocess.Popen:
        log = open(tmp_path / f"{name}.log", "a")  # noqa: SIM115
        return subprocess.Popen(
            [sys.executable, "train.py", *args, f"hydra.run.dir={tmp_path / name}", *extra],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    whole = run("whole")
    assert whole.wait(timeout=900) == 0, (tmp_path / "whole.log").read_text()[-3000:]

    # Kill at the k-th rewrite of last.ckpt after the first epoch's summary row (6 steps an epoch).
    k = random.Random(0).randint(1, 4)
    proc = run("parts")
    last = tmp_path / "parts" / "checkpoints" / "last.ckpt"
    summary = tmp_path / "parts" / "summary.csv"
    seen: set[int] = set()
    deadline = time.monotonic() + 900
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if summary.is_file() and last.is_file():
                with contextlib.suppress(FileNotFoundError):  # between a write and its rename
                    seen.add(last.stat().st_mtime_ns)
                if len(seen) > k:
                    break
            time.sleep(0.002)
        assert proc.poll() is None, "train.py ended before it was killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    step = torch.load(last, map_location="cpu", weights_only=True)["global_step"]
    assert step % 6 != 0, f"the kill should land mid-epoch (step {step})"

    resumed = run("parts", "ckpt_path=last")
    assert resumed.wait(timeout=900) == 0, (tmp_path / "parts.log").read_text()[-3000:]
    # (Lightning's warning that the resumed run's own checkpoints folder is not empty: left out)
    assert "exists and is not empty" not in (tmp_path / "parts.log").read_text()
    a = json.loads((tmp_path / "whole" / "metrics.json").read_text())
    b = json.loads((tmp_path / "parts" / "metrics.json").read_text())
    assert b["resumed"]
    _same_run(a, tmp_path / "whole", b, tmp_path / "parts")
    logs = [(tmp_path / name / "logs" / "metrics.csv").read_text() for name in ("whole", "parts")]
    assert logs[0] == logs[1] and "val/top1" in logs[0]


def _tensorboard_scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar of the run's TensorBoard log as TensorBoard's own reader shows it."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_a_resumed_runs_tensorboard_log_reads_as_the_uninterrupted_runs(make_cfg, tmp_path, monkeypatch):
    """Resumed from a checkpoint written mid-epoch (step 4, stopped before step 5: step 4 is
    trained again) and from one written at an epoch's end (step 3, after its validation).

    TensorBoard's reader orders a folder's event files by name, and a name ends in the process's
    count of writers (``...<pid>.99`` sorts after ``...<pid>.100``). Each run part writes one file
    (Lightning's stages used to open one each, and a part's files opened in the same second across
    such a step were read out of order, the later one's data dropped): the count starts at 95 here,
    where that used to happen."""
    from tensorboard.summary.writer import event_file_writer

    monkeypatch.setattr(event_file_writer._global_uid, "_value", 95)
    overrides = [
        "dataset=cifar100",
        "trainer.max_epochs=2",
        "trainer.limit_train_batches=3",
        "logger=tensorboard",
        "trainer.log_every_n_steps=1",
    ]
    train(make_cfg(overrides, run_name="whole", per_class=6))
    whole = _tensorboard_scalars(tmp_path / "whole")
    assert len(list((tmp_path / "whole").rglob("events.out.tfevents.*"))) == 1  # fit, validate, test
    assert len(whole["train/loss_step"]) == 6 and whole["val/top1"][0][0] == 2, sorted(whole)
    real = run_module.build_callbacks
    for name, stop, every in (("mid", 5, "2"), ("end", 4, "null")):
        extra = [*overrides, f"callbacks.checkpoint_every_n_steps={every}"]
        monkeypatch.setattr(
            run_module, "build_callbacks", lambda cfg, d, *rest, s=stop: real(cfg, d, *rest) + [StopAt(s)]
        )
        with pytest.raises(RuntimeError, match=f"stopped before step {stop}"):
            train(make_cfg(extra, run_name=name, per_class=6))
        monkeypatch.setattr(run_module, "build_callbacks", real)
        cfg = make_cfg(extra, run_name=name, per_class=6)
        with open_dict(cfg):
            cfg.ckpt_path = "last"
        assert train(cfg)["resumed"]
        assert _tensorboard_scalars(tmp_path / name) == whole, name
        assert len(list((tmp_path / name).rglob("events.out.tfevents.*"))) == 2, name  # one per part


def test_a_resumed_run_logs_to_the_interrupted_runs_wandb_run(make_cfg, tmp_path, monkeypatch):
    """Both parts of an interrupted run log to one wandb run (offline here: one folder per part,
    each named by the run's id, which `wandb sync` uploads into that one run), each metric's step
    once: the step trained again after the checkpoint is not logged a second time."""
    wandb = pytest.importorskip("wandb")
    from wandb.sdk.wandb_run import Run

    assert wandb.run is None
    logged: list[dict] = []  # every row the runs hand to wandb, both parts
    real_log = Run.log
    monkeypatch.setattr(
        Run, "log", lambda self, data, *a, **k: (logged.append(dict(data)), real_log(self, data, *a, **k))[1]
    )
    overrides = [
        "dataset=cifar100",
        "trainer.max_epochs=2",
        "trainer.limit_train_batches=3",
        "logger=wandb",
        "logger.mode=offline",
        # A checkpoint at step 3; the first part trains and logs step 4 too, then stops.
        "callbacks.checkpoint_every_n_steps=3",
    ]
    real = run_module.build_callbacks
    monkeypatch.setattr(
        run_module, "build_callbacks", lambda cfg, d, *rest: real(cfg, d, *rest) + [StopAt(5)]
    )
    with pytest.raises(RuntimeError, match="stopped before step 5"):
        train(make_cfg(overrides, run_name="parts", per_class=6))
    monkeypatch.setattr(run_module, "build_callbacks", real)
    first_part = len(logged)
    time.sleep(1.1)  # the parts' offline folders are named by the second they start
    run_id = (tmp_path / "parts" / "wandb_run_id").read_text().strip()
    cfg = make_cfg(overrides, run_name="parts", per_class=6)
    with open_dict(cfg):
        cfg.ckpt_path = "last"
    assert train(cfg)["resumed"]
    parts = sorted(p.name for p in (tmp_path / "parts" / "wandb").glob("offline-run-*"))
    assert len(parts) == 2 and all(name.endswith("-" + run_id) for name in parts), (run_id, parts)
    assert (tmp_path / "parts" / "wandb_run_id").read_text().strip() == run_id
    # Every optimiser step's loss once, in order, across the two parts (debug=fast logs every step).
    losses = [row["trainer/global_step"] for row in logged if "train/loss_step" in row]
    assert losses == list(range(6)), losses
    assert 3 in [row["trainer/global_step"] for row in logged[:first_part] if "train/loss_step" in row]
    # (Lightning adds "epoch" to each row it logs, and an epoch's end logs two rows at one step.)
    pairs = [
        (key, row["trainer/global_step"])
        for row in logged
        for key in row
        if key not in ("trainer/global_step", "epoch")
    ]
    twice = sorted({p for p in pairs if pairs.count(p) > 1})
    assert not twice, twice
    # The next run in the same process (a sweep's next job) is another wandb run: each run ends
    # its wandb run (Lightning's logger would log into one still in progress).
    assert wandb.run is None
    train(make_cfg([*overrides, "trainer.max_epochs=1"], run_name="other", per_class=6))
    other = (tmp_path / "other" / "wandb_run_id").read_text().strip()
    assert other != run_id and len(list((tmp_path / "other" / "wandb").glob(f"offline-run-*-{other}"))) == 1
    assert wandb.run is None


@pytest.mark.parametrize(
    ("sig", "said", "recorded"),
    [
        # Ctrl-C's one line is also checked in the default suite by tests/test_startup.py and
        # generate.py's signal test; the whole run here is in the slow suite.
        pytest.param(
            signal.SIGINT, "interrupted (Ctrl-C)", "interrupted (Ctrl-C)", marks=pytest.mark.slow, id="ctrl_c"
        ),
        pytest.param(
            signal.SIGTERM,
            "stopped by SIGTERM (a scheduler's time limit or preemption, or kill)",
            "stopped by SIGTERM",
            id="sigterm",
        ),
    ],
)
def test_a_signal_ends_train_py_with_the_command_that_resumes_it(tmp_path, sig, said, recorded):
    """Ctrl-C (SIGINT) or SIGTERM during training, sent to the whole process group with two
    data-loader workers (as a terminal, ``timeout`` and SLURM send it): Lightning stops; train.py
    then says how to go on (the run's last checkpoint and the resume command), exit code 1
    (Lightning alone ends a SIGTERM with status 0, which a scheduler counts as done), no traceback
    (a worker killed by SIGTERM ended the run with PyTorch's error), and failure.json says why it
    stopped (reports count the run as failed, not as missing)."""
    from tests.fixtures.datasets import write_fixture_dataset

    data = write_fixture_dataset("cifar100", tmp_path / "data", per_class=12)["data_dir"]
    run_dir = tmp_path / "run"
    args = [
        "dataset=cifar100",
        f"paths.data_dir={data}",
        f"paths.cache_dir={tmp_path / 'cache'}",
        "model=preactresnet18",
        "optim.lr=0.01",
        "trainer.accelerator=cpu",
        "trainer.max_epochs=50",
        "dataset.batch_size=6",
        "dataset.num_workers=2",
        "logger=none",
        "callbacks.checkpoint_every_n_steps=1",
        "callbacks.progress_bar=none",
        "ckpt_path=auto",
        f"hydra.run.dir={run_dir}",
    ]
    last = run_dir / "checkpoints" / "last.ckpt"
    code, out = signal_when_ready("train.py", args, last.is_file, sig, group=True)
    assert code == 1, out[-3000:]
    assert "Traceback" not in out
    (line,) = [x for x in out.splitlines() if x.startswith(said)]
    when = "every epoch's end and every optimiser step"
    if sig == signal.SIGTERM:
        when = f"the step the SIGTERM came in, if it came during training; else at {when}"
    # The command itself: the run's own settings, ckpt_path=last and its folder (it was described).
    from diffusemix_bench.commands import script_command

    kept = [a for a in args if not a.startswith(("ckpt_path=", "hydra.run.dir="))]
    command = " ".join([script_command("train.py"), *kept, "ckpt_path=last", f"hydra.run.dir={run_dir}"])
    assert line == (
        f"{said}: resume the run from its last checkpoint (written at {when}): {command} (hydra.run.dir: "
        "or the folder's new place)."
    ), line
    failure = json.loads((run_dir / "failure.json").read_text())
    assert failure["status"] == "failed" and failure["error"] == recorded
    assert not (run_dir / "metrics.json").exists()
    # The run's log keeps why this part stopped (after a resume, failure.json is gone).
    assert line in (run_dir / "train.log").read_text()


def test_sigterm_in_the_attack_after_training_stops_the_run_with_its_record(make_cfg, monkeypatch):
    """SIGTERM while the selected checkpoint is attacked (eval.fgsm, after fit: no Lightning run in
    progress) stops the run as in training, with failure.json (train.py then prints the resume
    advice, exit code 1); by default the signal ended the process at once, with no record. The
    handler is put back after."""
    from pytorch_lightning.utilities.exceptions import SIGTERMException

    cfg = make_cfg(["eval.fgsm=true"])

    def attacked(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the signal's handler raises before this ends
        raise AssertionError("SIGTERM did not stop the attack")

    monkeypatch.setattr(run_module, "attack_checkpoint", attacked)
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SIGTERMException):
        train(cfg)
    run_dir = Path(cfg.paths.output_dir)
    assert json.loads((run_dir / "failure.json").read_text())["error"] == "stopped by SIGTERM"
    assert not (run_dir / "metrics.json").exists() and (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert signal.getsignal(signal.SIGTERM) == before


#: Loaded by every process of the run below (a ``sitecustomize`` on its PYTHONPATH): the first
#: rank sends SIGTERM to the whole process group as step 7 begins (every rank gets it, as from
#: SLURM), and each rank writes the step it stopped at when Lightning stops it.
TERM_EVERY_RANK_AT_STEP_7 = """
import os, signal
import pytorch_lightning as pl
from diffusemix_bench.training import run

class TermAndNote(pl.Callback):
    def on_train_batch_start(self, trainer, *args):
        if trainer.global_step == 6 and trainer.global_rank == 0:
            os.killpg(os.getpgrp(), signal.SIGTERM)

    def on_exception(self, trainer, module, exc):
        with open(os.path.join(os.environ["STOPPED_AT"], f"rank{trainer.global_rank}"), "w") as f:
            f.write(str(trainer.global_step))

real = run.build_callbacks
run.build_callbacks = lambda cfg, d, *rest: real(cfg, d, *rest) + [TermAndNote()]
"""


@pytest.mark.slow
def test_sigterm_with_two_ranks_saves_the_step_in_progress(tmp_path):
    """``train.py`` on two CPU ranks (DDP), checkpointing every 5 steps, gets SIGTERM in every
    process as step 7 begins: step 7 finishes, both ranks save it together (Lightning alone would
    leave the step-5 file, and its handler's exchange of the signal between the ranks could hang
    the run) and stop there, with exit code 1 and no traceback."""
    from tests.fixtures.datasets import write_fixture_dataset

    fixture = write_fixture_dataset("flowers102", tmp_path / "data", per_class=20)  # 60 train images
    run = tmp_path / "run"
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(TERM_EVERY_RANK_AT_STEP_7)
    args = ["dataset=flowers102", "model=resnet18", f"paths.data_dir={fixture['data_dir']}",
            "dataset.image_size=32", "dataset.resize=36", "dataset.batch_size=2", "dataset.num_workers=0",
            "trainer.accelerator=cpu", "trainer.devices=2", "trainer.strategy=ddp", "trainer.max_epochs=1",
            "callbacks.checkpoint_every_n_steps=5", "callbacks.progress_bar=none", f"hydra.run.dir={run}"]  # fmt: skip
    env = dict(
        os.environ, OMP_NUM_THREADS="1", PYTHONPATH=f"{hook}{os.pathsep}{ROOT}", STOPPED_AT=str(tmp_path)
    )
    env.pop("HYDRA_FULL_ERROR", None)
    done = subprocess.run(
        [sys.executable, "train.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        start_new_session=True,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 1 and "Traceback" not in out, out[-3000:]
    assert "stopped by SIGTERM" in out
    assert [(tmp_path / f"rank{r}").read_text() for r in (0, 1)] == ["7", "7"]
    last = run / "checkpoints" / "last.ckpt"
    assert torch.load(last, map_location="cpu", weights_only=True)["global_step"] == 7
    assert json.loads((run / "failure.json").read_text())["error"] == "stopped by SIGTERM"


class TermAt(pl.Callback):
    """Sends this process SIGTERM (as a scheduler would) as the step ``step`` begins."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer, *args) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGTERM)


def test_sigterm_writes_last_ckpt_at_the_step_in_progress_and_auto_resumes_to_the_uninterrupted_run(
    make_cfg, tmp_path, monkeypatch
):
    """SIGTERM mid-epoch (checkpoints otherwise at epoch ends only): the step in progress finishes,
    last.ckpt is written at it and the run stops (Lightning's exit); ckpt_path=auto then resumes it
    and ends with the uninterrupted run's weights, metrics and summary; in a folder without
    last.ckpt, ckpt_path=auto starts a new run."""
    overrides = [
        "dataset=cifar100",
        "trainer.max_epochs=3",
        "trainer.limit_train_batches=3",
        "ckpt_path=auto",
    ]
    whole = train(make_cfg(overrides, run_name="whole", per_class=6))
    assert not whole["resumed"]
    real = run_module.build_callbacks
    monkeypatch.setattr(
        run_module, "build_callbacks", lambda cfg, d, *rest: real(cfg, d, *rest) + [TermAt(4)]
    )
    with pytest.raises(SystemExit) as stopped:
        train(make_cfg(overrides, run_name="parts", per_class=6))
    monkeypatch.setattr(run_module, "build_callbacks", real)
    assert type(stopped.value).__name__ == "SIGTERMException"
    last = tmp_path / "parts" / "checkpoints" / "last.ckpt"
    assert torch.load(last, map_location="cpu", weights_only=True)["global_step"] == 5  # mid-epoch 2
    assert json.loads((tmp_path / "parts" / "failure.json").read_text())["error"] == "stopped by SIGTERM"
    resumed = train(make_cfg(overrides, run_name="parts", per_class=6))
    assert resumed["resumed"]
    _same_run(whole, tmp_path / "whole", resumed, tmp_path / "parts")


class TermInValidation(pl.Callback):
    """Sends this process SIGTERM at the first batch of epoch ``epoch``'s validation."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_validation_batch_start(self, trainer, *args) -> None:
        if trainer.state.fn == "fit" and not trainer.sanity_checking and trainer.current_epoch == self.epoch:
            os.kill(os.getpid(), signal.SIGTERM)


class StopInValidation(TermInValidation):
    """Stops the run (as SIGKILL would, nothing saved after) in epoch ``epoch``'s validation."""

    def on_validation_batch_start(self, trainer, *args) -> None:
        if trainer.state.fn == "fit" and not trainer.sanity_checking and trainer.current_epoch == self.epoch:
            raise RuntimeError("killed in validation")


@pytest.mark.parametrize(
    ("stop", "every_step", "step_saved"),
    [
        (TermAt(2), False, 3),  # SIGTERM at an epoch's last step: its validation, then its end
        (TermInValidation(1), False, 6),  # SIGTERM in the epoch's validation: the validation ends
        (TermInValidation(1), True, 6),
        (StopInValidation(1), True, 5),  # killed in validation: the step before the epoch's last
    ],
)
def test_a_stop_at_an_epochs_end_resumes_with_that_epochs_validation(
    make_cfg, tmp_path, monkeypatch, stop, every_step, step_saved
):
    """A checkpoint taken at an epoch's last step, before its validation (a SIGTERM there, or
    callbacks.checkpoint_every_n_steps), resumed past the validation: the epoch's score never
    counted for the best checkpoint (its summary row was missing) and the next epoch's training
    loss averaged two epochs. Now the stop waits for the epoch's end, and the step checkpoints
    skip an epoch's last step: the resumed run is the uninterrupted one, summary included."""
    overrides = [
        "dataset=cifar100",
        "trainer.max_epochs=3",
        "trainer.limit_train_batches=3",
        "ckpt_path=auto",
    ]
    overrides.append("dataset.eval_batch_size=1")  # a validation of several batches
    if every_step:
        overrides.append("callbacks.checkpoint_every_n_steps=1")
    whole = train(make_cfg(overrides, run_name="whole", per_class=6))
    real = run_module.build_callbacks
    monkeypatch.setattr(run_module, "build_callbacks", lambda cfg, d, *rest: real(cfg, d, *rest) + [stop])
    with pytest.raises((SystemExit, RuntimeError)):
        train(make_cfg(overrides, run_name="parts", per_class=6))
    monkeypatch.setattr(run_module, "build_callbacks", real)
    last = tmp_path / "parts" / "checkpoints" / "last.ckpt"
    assert torch.load(last, map_location="cpu", weights_only=True)["global_step"] == step_saved
    resumed = train(make_cfg(overrides, run_name="parts", per_class=6))
    assert resumed["resumed"]
    _same_run(whole, tmp_path / "whole", resumed, tmp_path / "parts")


def test_a_resume_from_a_folder_with_a_damaged_config_is_one_message(make_cfg, tmp_path):
    """ckpt_path=last in a run folder whose config_resolved.yaml is damaged: one message naming
    the file and what to do (YAML's own report was a traceback of train.py)."""
    from diffusemix_bench.errors import ConfigError
    from diffusemix_bench.training.resume import check_resume, check_settings_kept

    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "checkpoints" / "last.ckpt").write_bytes(b"")
    (run_dir / "config_resolved.yaml").write_text("trainer:\n  max_epochs: [3\n")
    with pytest.raises(ConfigError) as refused:
        check_resume(make_cfg(["ckpt_path=last"]), run_dir)
    said = str(refused.value)
    assert "config_resolved.yaml is damaged (" in said and "Restore it from a copy" in said
    assert "\n" not in said
    # Cut short: said so, not a list of "other settings" key by key.
    (run_dir / "config_resolved.yaml").write_text("dataset:\n  name: cifar100\n")
    with pytest.raises(
        ConfigError, match=r"config_resolved\.yaml is incomplete \(no model, aug, optim, trainer, seed: "
    ):
        check_resume(make_cfg(["ckpt_path=last"]), run_dir)
    # Gone altogether: refused too (any settings used to pass, another method's among them).
    (run_dir / "config_resolved.yaml").unlink()
    with pytest.raises(ConfigError, match=r"whose config_resolved\.yaml \(the settings it was trained with"):
        check_settings_kept(make_cfg(["ckpt_path=last", "aug=mixup"]), run_dir)


def test_a_new_run_is_refused_in_a_folder_holding_an_earlier_runs_checkpoints_or_results(
    make_cfg, tmp_path, monkeypatch
):
    """The same command run again in a run folder that holds checkpoints (a stopped run) or
    metrics.json (a finished one) would overwrite them and leave the earlier best checkpoint beside
    the new one's: refused, saying how to go on or train anew. A folder whose run stopped before its
    first checkpoint (failure.json alone) takes the same command again, as its stop advice says."""
    from diffusemix_bench.cli import _check_resume_at_start
    from diffusemix_bench.errors import ConfigError

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "failure.json").write_text('{"status": "failed", "error": "stopped by SIGTERM"}')
    _check_resume_at_start(make_cfg([]), run_dir)  # nothing to lose

    (run_dir / "checkpoints").mkdir()
    (run_dir / "checkpoints" / "last.ckpt").write_bytes(b"")
    (run_dir / "checkpoints" / "best-epoch000.ckpt").write_bytes(b"")
    with pytest.raises(ConfigError) as refused:
        _check_resume_at_start(make_cfg([]), run_dir)
    assert str(refused.value) == (
        f"{run_dir} holds an unfinished run (checkpoints/best-epoch000.ckpt, checkpoints/last.ckpt): a new "
        "run there would overwrite it. Go on with it: the same command with ckpt_path=last; or train anew "
        "in another folder (hydra.run.dir=<new folder>) or remove this one"
    )
    (run_dir / "checkpoints" / "last.ckpt").unlink()  # auto finds no last.ckpt, a best one is there
    with pytest.raises(ConfigError, match=r"and ckpt_path=auto found no checkpoints/last.ckpt to go on from"):
        _check_resume_at_start(make_cfg(["ckpt_path=auto"]), run_dir)
    with pytest.raises(ConfigError, match=r"It has no checkpoints/last.ckpt to go on from: train anew"):
        _check_resume_at_start(make_cfg([]), run_dir)
    (run_dir / "metrics.json").write_text("{}")
    before = sorted(p.relative_to(run_dir) for p in run_dir.rglob("*"))
    # train() (the API, and each job of a sweep) refuses it too, before touching the folder.
    with pytest.raises(ConfigError, match=r"holds a finished run \(metrics.json, checkpoints/best-epoch000"):
        train(make_cfg([]))
    assert sorted(p.relative_to(run_dir) for p in run_dir.rglob("*")) == before
    (run_dir / "checkpoints" / "last.ckpt").write_bytes(b"")
    with pytest.raises(
        ConfigError, match=r"To train this run longer, run the same command with ckpt_path=last and"
    ):
        _check_resume_at_start(make_cfg([]), run_dir)
    # A job of a finished sweep launched again without ckpt_path=auto: that setting is the fix.
    from diffusemix_bench import errors
    from diffusemix_bench.training import resume

    monkeypatch.setattr(errors, "in_multirun", lambda: True)
    monkeypatch.setattr(resume, "sweep_command", lambda: "python train.py --multirun seed=0,1 ckpt_path=auto")
    with pytest.raises(ConfigError) as refused:
        resume.check_no_earlier_run(run_dir, None)
    assert str(refused.value).endswith(
        "Run python train.py --multirun seed=0,1 ckpt_path=auto: with ckpt_path=auto it leaves the sweep's "
        "finished jobs as they are and trains the others (with a larger trainer.max_epochs, this run longer); "
        "or run the sweep anew in another folder (hydra.sweep.dir=<new folder>) or remove this one"
    )


@pytest.mark.slow  # two jobs trained, one twice (~40 s); the advice's form is checked in the default suite too
def test_an_interrupted_sweep_says_how_to_go_on_with_it_and_that_command_does(tmp_path):
    """Ctrl-C during the second job of a sweep in a folder Hydra named by the time: the message
    gives the sweep's own command with ckpt_path=auto and that sweep folder (the same command again
    would make a new folder and train the finished job again). Run as printed, it leaves the
    finished job as it was and ends the second one from its checkpoint."""
    import shlex

    from tests.fixtures.datasets import write_fixture_dataset

    data = write_fixture_dataset("cifar100", tmp_path / "data", per_class=4)["data_dir"]
    args = [
        "--multirun",
        "seed=0,1",
        f"paths.data_dir={data}",
        f"paths.cache_dir={tmp_path / 'cache'}",
        f"paths.log_dir={tmp_path / 'logs'}",
        "debug=fast",
        "trainer.max_epochs=3",
        "callbacks.checkpoint_every_n_steps=1",
        "callbacks.progress_bar=none",
        "hydra.job.chdir=false",  # a Hydra setting of the sweep (a launcher, say) goes on with it
    ]
    sweeps = tmp_path / "logs" / "multirun" / "train"

    def second_job_stepped() -> bool:
        return any(sweeps.glob("*/1_seed=1/checkpoints/last.ckpt"))

    code, out = signal_when_ready("train.py", args, second_job_stepped, signal.SIGINT, group=True)
    assert code != 0 and "Traceback" not in out, out[-3000:]
    (sweep,) = sweeps.iterdir()
    first = (sweep / "0_seed=0" / "metrics.json").read_bytes()
    assert not (sweep / "1_seed=1" / "metrics.json").exists()
    # summary.csv lists the stopped job too (Hydra calls no callback after an interrupted job).
    rows = list(csv.DictReader((sweep / "summary.csv").open()))
    assert [(r["job"], r["status"]) for r in rows] == [("0_seed=0", "finished"), ("1_seed=1", "failed")]
    assert "interrupted" in rows[1]["reason"]
    (line,) = [x for x in out.splitlines() if "go on with the sweep" in x]
    command = line.split("go on with the sweep in its folder: ", 1)[1].split(" (its finished jobs", 1)[0]
    assert "ckpt_path=auto" in command and f"hydra.sweep.dir={sweep}" in command and "seed=0,1" in command
    assert "hydra.job.chdir=false" in command and "hydra.mode" not in command
    assert "this job (1_seed=1) goes on from its last checkpoint" in line
    argv = shlex.split(command)
    done = run_entry("train.py", argv[argv.index("--multirun") :], tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert [p.name for p in sweeps.iterdir()] == [sweep.name]  # no new sweep folder
    assert (sweep / "0_seed=0" / "metrics.json").read_bytes() == first  # not trained again
    resumed = json.loads((sweep / "1_seed=1" / "metrics.json").read_text())
    assert resumed["resumed"] and resumed["epochs"] == 3


def test_sigterm_while_an_evaluation_call_sets_up_is_raised_when_it_returns(monkeypatch):
    """After fit, a SIGTERM that comes while validate or test is running but before Lightning's own
    handler is in place (loading the checkpoint) is noted, passed on to the trainer's processes, and
    raised when the call returns; outside a call it is raised at once. The handler is put back."""
    from types import SimpleNamespace

    from pytorch_lightning.trainer.states import TrainerStatus
    from pytorch_lightning.utilities.exceptions import SIGTERMException

    from diffusemix_bench.signals import sigterm_stops_between_runs

    killed = []
    trainer = SimpleNamespace(
        state=SimpleNamespace(status=TrainerStatus.RUNNING),
        received_sigterm=False,
        strategy=SimpleNamespace(launcher=SimpleNamespace(kill=killed.append)),
    )
    before = signal.getsignal(signal.SIGTERM)
    with sigterm_stops_between_runs(trainer) as check:
        check()  # nothing yet
        os.kill(os.getpid(), signal.SIGTERM)  # during the call: noted, not raised
        time.sleep(0.1)
        assert killed == [signal.SIGTERM]
        with pytest.raises(SIGTERMException):
            check()
    assert signal.getsignal(signal.SIGTERM) == before
    trainer.state.status = TrainerStatus.FINISHED
    with pytest.raises(SIGTERMException), sigterm_stops_between_runs(trainer):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
    assert signal.getsignal(signal.SIGTERM) == before


def test_a_finished_run_whose_later_evaluation_stopped_reads_finished_again(make_cfg, tmp_path, caplog):
    """A finished run resumed to add a number (run_test=true), that part stopped (a bad test image,
    Ctrl-C in the attack): failure.json stayed beside the finished metrics.json, and the original
    command said "nothing to do" and left it, so reports counted the run failed for good."""
    from diffusemix_bench.reporting.runs import read_run

    cfg = make_cfg(["dataset=cifar100", "trainer.max_epochs=1"], per_class=6)
    train(cfg)
    run_dir = Path(cfg.paths.output_dir)
    (run_dir / "failure.json").write_text(json.dumps({"status": "failed", "error": "CorruptImageError: ..."}))
    assert read_run(run_dir).status == "failed"
    with open_dict(cfg):
        cfg.ckpt_path = "last"
    with caplog.at_level("INFO"):
        train(cfg)
    assert "failure.json, left by a later part that evaluated it" in caplog.text
    assert not (run_dir / "failure.json").exists() and read_run(run_dir).status == "finished"


def test_a_mid_epoch_checkpoint_is_not_resumed_with_the_epochs_it_has_begun_cut_off(
    make_cfg, tmp_path, monkeypatch
):
    """Stopped one step into epoch 2 and resumed with trainer.max_epochs=1: the checkpoint has
    begun an epoch the settings leave out. It was accepted and recorded as a finished 1-epoch run
    of 4 steps (the check counted the epochs processed alone); refused now, the folder untouched."""
    from types import SimpleNamespace

    from omegaconf import OmegaConf

    from diffusemix_bench.errors import ConfigError
    from diffusemix_bench.training.run import _max_steps_cut

    overrides = ["dataset=cifar100", "trainer.max_epochs=2", "trainer.limit_train_batches=3"]
    overrides.append("callbacks.checkpoint_every_n_steps=1")
    real = run_module.build_callbacks
    monkeypatch.setattr(
        run_module, "build_callbacks", lambda cfg, d, *rest: real(cfg, d, *rest) + [StopAt(4)]
    )
    with pytest.raises(RuntimeError, match="stopped before step 4"):
        train(make_cfg(overrides, per_class=6))
    monkeypatch.setattr(run_module, "build_callbacks", real)
    run_dir = tmp_path / "run"
    before = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    shorter = [*overrides, "trainer.max_epochs=1", "ckpt_path=last"]
    with pytest.raises(
        ConfigError, match=r"has trained 1 epochs and part of epoch 2, more than trainer\.max_epochs=1"
    ):
        train(make_cfg(shorter, per_class=6))
    assert {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()} == before
    # Lightning's max_steps=-1 (no limit) cuts no epoch short.
    trainer = SimpleNamespace(num_training_batches=3, accumulate_grad_batches=1)
    cfg = OmegaConf.create({"trainer": {"max_epochs": 2, "max_steps": -1}})
    assert not _max_steps_cut(cfg, trainer)
    cfg.trainer.max_steps = 4
    assert _max_steps_cut(cfg, trainer)


def test_a_checkpoint_cut_short_is_named_with_torchs_first_sentence_whole(tmp_path):
    """ckpt_path= a checkpoint cut short (a kill while it was copied): torch's reason in whole
    words (it was cut at 300 characters, mid-word), without its advice."""
    from diffusemix_bench.training.run import CheckpointFileError, load_checkpoint

    path = tmp_path / "last.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(1000)}}, path)
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(CheckpointFileError) as refused:
        load_checkpoint(path, "ckpt_path")
    assert str(refused.value) == (
        f"ckpt_path={path} is not a readable checkpoint (PytorchStreamReader failed reading zip archive: "
        "failed finding central directory). Point ckpt_path at a .ckpt written by train.py "
        "(checkpoints/last.ckpt or best-*.ckpt of a run folder)."
    )


def test_a_refused_load_is_said_by_its_cause():
    """torch.load(weights_only=True) refusing a file: the cause after its advice on weights_only
    (its first sentence, "Weights only load failed", said nothing)."""
    import pickle

    from diffusemix_bench.training.locate import load_failure_reason

    with pytest.raises(pickle.UnpicklingError) as refused:
        torch.load(io.BytesIO(b"garbage" * 10), weights_only=True)
    assert load_failure_reason(refused.value).startswith("Unsupported operand")
    assert load_failure_reason(EOFError()) == "EOFError"


def test_a_checkpoint_of_another_model_is_one_message(make_cfg, tmp_path):
    """A checkpoint copied out of its run folder (whose settings would be checked) and resumed with
    settings that build another model: a count of what differs, not the load's traceback. With the
    same model it resumes into the new folder, choosing its best checkpoint there."""
    from diffusemix_bench.training.run import CheckpointFileError

    first = make_cfg(
        ["dataset=cifar100", "trainer.max_epochs=1", "model=preactresnet18"], run_name="a", per_class=6
    )
    train(first)
    foreign = tmp_path / "elsewhere" / "x.ckpt"
    foreign.parent.mkdir()
    shutil.copy(tmp_path / "a" / "checkpoints" / "last.ckpt", foreign)
    other = make_cfg(
        ["dataset=cifar100", "trainer.max_epochs=2", "model=resnet18", f"ckpt_path={foreign}"],
        run_name="b",
        per_class=6,
    )
    with pytest.raises(
        CheckpointFileError, match=r"holds the weights of another model than these settings build \(\d+ of"
    ):
        train(other)
    # The same model resumes from it.
    same = make_cfg(
        ["dataset=cifar100", "trainer.max_epochs=2", "model=preactresnet18", f"ckpt_path={foreign}"],
        run_name="c",
        per_class=6,
    )
    # Its best file is not in the new folder: the selection starts anew (the test read a missing
    # best checkpoint, a FileNotFoundError's traceback).
    resumed = train(same)
    assert resumed["epochs"] == 2 and resumed["best_checkpoint"].startswith(str(tmp_path / "c"))


def test_a_stop_in_a_validation_inside_an_epoch_resumes_with_that_validation(make_cfg, tmp_path, monkeypatch):
    """trainer.val_check_interval=0.5: a validation after the epoch's second step too. A step
    checkpoint taken at that step, before the validation, resumed past it (the validations a
    resumed run logged lacked it); the step checkpoints skip a step a validation follows."""
    import csv

    overrides = [
        "dataset=cifar100",
        "trainer.max_epochs=2",
        "trainer.limit_train_batches=4",
        "trainer.val_check_interval=0.5",
        "callbacks.checkpoint_every_n_steps=1",
        "dataset.eval_batch_size=1",
        "logger=csv",
        "ckpt_path=auto",
    ]

    def validated_at(run_dir):
        with open(run_dir / "logs" / "metrics.csv") as fh:
            return sorted({int(r["step"]) for r in csv.DictReader(fh) if r.get("val/loss")})

    whole = train(make_cfg(overrides, run_name="whole", per_class=8))
    assert validated_at(tmp_path / "whole") == [1, 3, 5, 7]

    class StopInFirstValidationOfEpoch1(StopInValidation):
        def on_validation_batch_start(self, trainer, *args) -> None:
            if trainer.state.fn == "fit" and not trainer.sanity_checking and trainer.global_step == 6:
                raise RuntimeError("killed in validation")

    real = run_module.build_callbacks
    monkeypatch.setattr(
        run_module,
        "build_callbacks",
        lambda cfg, d, *rest: real(cfg, d, *rest) + [StopInFirstValidationOfEpoch1(1)],
    )
    with pytest.raises(RuntimeError):
        train(make_cfg(overrides, run_name="parts", per_class=8))
    monkeypatch.setattr(run_module, "build_callbacks", real)
    last = tmp_path / "parts" / "checkpoints" / "last.ckpt"
    assert torch.load(last, map_location="cpu", weights_only=True)["global_step"] == 5
    resumed = train(make_cfg(overrides, run_name="parts", per_class=8))
    assert validated_at(tmp_path / "parts") == validated_at(tmp_path / "whole")
    _same_run(whole, tmp_path / "whole", resumed, tmp_path / "parts")


def test_epochs_are_counted_from_the_loop_whatever_the_earlier_parts_steps():
    """Whole epochs and the steps of an epoch in progress at fit's end come from the loop, not from
    the global step divided by this part's steps per epoch: a run that went on from an epoch's end
    on fewer devices (16 steps an epoch on 2, then 32 on 1) was recorded as 2 epochs and 16 steps."""
    from types import SimpleNamespace

    from omegaconf import OmegaConf

    from diffusemix_bench.training.run import _epochs_trained

    def trainer(done, epoch, begun):
        progress = SimpleNamespace(current=SimpleNamespace(processed=done))
        return SimpleNamespace(
            num_training_batches=32,
            accumulate_grad_batches=1,
            global_step=16 + 32 * 2 if done == 32 else 16 + 32 + done,
            current_epoch=epoch,
            fit_loop=SimpleNamespace(
                epoch_loop=SimpleNamespace(batch_progress=progress),
                epoch_progress=SimpleNamespace(current=SimpleNamespace(started=begun)),
            ),
        )

    cfg = OmegaConf.create({"trainer": {"max_epochs": 3, "max_steps": -1}})
    assert _epochs_trained(cfg, trainer(32, 3, 3)) == (3, 0)
    # Stopped 5 steps into the third epoch, which Lightning closed (current_epoch 3) or not (2).
    assert _epochs_trained(cfg, trainer(5, 3, 3)) == (2, 5)
    assert _epochs_trained(cfg, trainer(5, 2, 3)) == (2, 5)


def test_a_saved_resume_command_gives_each_setting_once(tmp_path):
    """A run resumed with a setting of its own (trainer.max_epochs=6 after the first command's 5)
    has both in .hydra/overrides.yaml: the resume command it is told gives the last, once (it
    printed both, which read as a contradiction though Hydra takes the last)."""
    from diffusemix_bench.commands import saved_resume_command

    (tmp_path / ".hydra").mkdir()
    (tmp_path / ".hydra" / "overrides.yaml").write_text(
        "- dataset=cub\n- trainer.max_epochs=5\n- ckpt_path=last\n- +foo.bar=1\n- trainer.max_epochs=6\n"
        "- +extra.key=1\n- extra.key=2\n"
        f"- hydra.run.dir={tmp_path}\n"
    )
    command = saved_resume_command(tmp_path)
    words = command.split()
    assert words[words.index("dataset=cub") :] == [
        "dataset=cub",
        "+foo.bar=1",
        "trainer.max_epochs=6",
        "+extra.key=2",  # (added by the first form: the last value, added)
        "ckpt_path=last",
        f"hydra.run.dir={tmp_path}",
    ]


def test_a_saved_resume_command_reads_its_relative_paths_where_the_run_was_launched(tmp_path, monkeypatch):
    """The run's own command, printed by a refused resume, runs from where the user is: a relative
    folder it was given (``dataset.root=probe/data``, launched from another folder) is given as the
    place it named; other settings, absolute paths and interpolations as they were."""
    import shlex

    import yaml

    from diffusemix_bench.commands import saved_resume_command

    run = tmp_path / "run"
    (run / ".hydra").mkdir(parents=True)
    launched = tmp_path / "launch"
    given = [
        "dataset=imagefolder",
        "dataset.root=probe/data",
        "generator.edits_dir='my edits'",
        "+model.weights=w.safetensors",
        "paths.cache_dir=/abs/cache",
        "paths.data_dir=${oc.env:HOME}/data",
        "trainer.max_epochs=3",
    ]
    (run / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(given))
    (run / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump({"hydra": {"runtime": {"cwd": str(launched)}}}))
    monkeypatch.chdir(tmp_path)
    words = shlex.split(saved_resume_command(run))
    assert words[words.index("dataset=imagefolder") :] == [
        "dataset=imagefolder",
        f"dataset.root={launched / 'probe' / 'data'}",
        f'generator.edits_dir="{launched / "my edits"}"',
        f"+model.weights={launched / 'w.safetensors'}",
        "paths.cache_dir=/abs/cache",
        "paths.data_dir=${oc.env:HOME}/data",
        "trainer.max_epochs=3",
        "ckpt_path=last",
        f"hydra.run.dir={run}",
    ]
    # Where it was launched, the command is its own, as given.
    monkeypatch.chdir(launched.mkdir() or launched)
    assert "dataset.root=probe/data" in shlex.split(saved_resume_command(run))


#: A tiny image-folder run through train.py (its dataset.root given apart).
TINY_IMAGEFOLDER = [
    "dataset=imagefolder",
    "model=resnet18",
    "dataset.image_size=32",
    "dataset.resize=36",
    "debug=fast",
    "callbacks.progress_bar=none",
]


def test_a_resume_reading_other_images_is_refused_and_a_moved_copy_resumes(tmp_path):
    """data.json records the images each split held as the run started: a resume that reads other
    ones (an image added, one renamed or moved to another class, another folder with the same
    classes) is refused through train.py, naming the split and the fix, and leaves the run folder's
    files as they were; the same images in another place (a moved copy) resume."""
    from tests.fixtures.datasets import write_fixture_dataset

    root = Path(write_fixture_dataset("imagefolder", tmp_path / "data", per_class=3)["data_dir"])
    run = tmp_path / "run"
    args = [
        *TINY_IMAGEFOLDER,
        f"paths.cache_dir={tmp_path / 'cache'}",
        f"hydra.run.dir={run}",
    ]
    first = run_entry("train.py", [*args, f"dataset.root={root}"], tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    record = json.loads((run / "data.json").read_text())
    assert {k: v["images"] for k, v in record.items()} == {"train": 9, "val": 9, "test": 9}
    moved = tmp_path / "moved"
    shutil.copytree(root, moved)
    longer = [*args, "trainer.max_epochs=2", "ckpt_path=last"]

    def kept() -> dict:
        return {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != "train.log"}

    def move_one() -> None:  # (9 images again, one of them in another class)
        (moved / "train" / "class 0" / "new.png").rename(moved / "train" / "class 1" / "new.png")
        next((moved / "train" / "class 1").glob("img_0.*")).unlink()

    def without_test() -> None:  # (the run's train and val images, no test/)
        shutil.rmtree(moved)
        shutil.copytree(root, moved, ignore=shutil.ignore_patterns("test"))

    before = kept()
    changes = [
        (
            lambda: shutil.copy(
                next((moved / "train" / "class 0").glob("img_0.*")), moved / "train" / "class 0" / "new.png"
            ),
            "its train split holds 10 images, the run's held 9",
        ),
        (
            move_one,
            "its train split holds 9 images as the run's did, under other file names",
        ),
        (without_test, "the run's had a test split, this data has none"),
    ]
    for change, said in changes:
        change()
        refused = run_entry("train.py", [*longer, f"dataset.root={moved}"], tmp_path)
        assert refused.returncode == 1 and "Traceback" not in refused.stderr, refused.stderr[-3000:]
        assert (
            f"error: the data read from {moved} is not the data the run in {run} started with ({said}; the run's "
            f"are recorded in {run / 'data.json'}). Give the data the run started with (dataset.root, else "
            "paths.data_dir), or train a new run on this data in another folder" in refused.stderr
        ), refused.stderr[-3000:]
        assert kept() == before
    shutil.rmtree(moved)
    shutil.copytree(root, moved)
    resumed = run_entry("train.py", [*longer, f"dataset.root={moved}"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert json.loads((run / "metrics.json").read_text())["epochs"] == 2


def test_a_sweep_launched_again_in_its_folder_finds_its_jobs_data_and_gives_their_own_commands(tmp_path):
    """A sweep over two data folders launched again with one of them finds the jobs that read it;
    launched on other data, each job is refused (not "nothing to do" with the other data's numbers)
    and told to give this data a sweep folder of its own; launched with another setting, the
    command each refusal gives is the job's own (the launch's own setting left out), and it runs."""
    import shlex

    from tests.fixtures.datasets import write_fixture_dataset

    roots = [
        Path(write_fixture_dataset("imagefolder", tmp_path / name, per_class=2, seed=k)["data_dir"])
        for k, name in enumerate(("a", "b"))
    ]
    sweep = tmp_path / "sweep"
    args = [
        "--multirun",
        *TINY_IMAGEFOLDER,
        "ckpt_path=auto",
        f"paths.cache_dir={tmp_path / 'cache'}",
        f"hydra.sweep.dir={sweep}",
    ]
    first = run_entry("train.py", [*args, "seed=0,1", f"dataset.root={roots[0]},{roots[1]}"], tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    metrics = {p.name: p.joinpath("metrics.json").read_bytes() for p in sweep.iterdir() if p.is_dir()}
    assert len(metrics) == 4
    again = run_entry("train.py", [*args, "seed=0,1", f"dataset.root={roots[1]}"], tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    found = sorted(
        line.split("The run in ")[1].split(" has finished")[0]
        for line in again.stdout.splitlines()
        if "has finished" in line
    )
    given = {p.name: yaml_given(p) for p in sweep.iterdir() if p.is_dir()}
    assert [given[Path(f).name] for f in found] == [str(roots[1])] * 2  # the jobs that read b
    # Other data (b's images in another place, one added): refused, not "nothing to do".
    other = tmp_path / "other"
    shutil.copytree(roots[1], other)
    shutil.copy(next((other / "train" / "class 0").glob("img_0.*")), other / "train" / "class 0" / "new.png")
    refused = run_entry("train.py", [*args, "seed=0,1", f"dataset.root={other}"], tmp_path)
    assert refused.returncode == 1 and "has finished" not in refused.stdout, refused.stdout[-3000:]
    assert "launch the sweep on this data into a sweep folder of its own (hydra.sweep.dir=" in refused.stderr
    # Another setting: each job's refusal gives the job's own command, which goes on with it.
    changed = run_entry(
        "train.py", [*args, "seed=0,1", f"dataset.root={roots[0]}", "optim.lr=0.05"], tmp_path
    )
    assert changed.returncode == 1, changed.stderr[-3000:]
    line = next(x for x in changed.stderr.splitlines() if "as its own command did: " in x)
    command = line.split("as its own command did: ")[1].split(", or launch the sweep with these settings")[0]
    assert "optim.lr" not in command and f"dataset.root={roots[0]}" in command
    words = shlex.split(command)
    done = run_entry("train.py", words[[w.endswith("train.py") for w in words].index(True) + 1 :], tmp_path)
    assert done.returncode == 0 and "Nothing to do" in done.stdout, done.stderr[-3000:]
    assert {p.name: p.joinpath("metrics.json").read_bytes() for p in sweep.iterdir() if p.is_dir()} == metrics


def yaml_given(job: Path) -> str | None:
    """The dataset.root a sweep job's folder records it was given."""
    import yaml

    for override in yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text()):
        if override.startswith("dataset.root="):
            return override.partition("=")[2]
    return None
