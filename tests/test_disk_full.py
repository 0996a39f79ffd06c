"""A disk that fills up ends train.py and generate.py with one message (where the files go, the
disk's free space, how the work resumes) and exit code 1, loses no finished work, leaves no partial
file, and the same command resumes once there is room.

Each test runs the real entry points on a small tmpfs of its own, mounted in a private user and
mount namespace (``unshare -rm``), so no real disk is filled; where namespaces are not allowed the
tests are skipped (and counted as skipped)."""

from __future__ import annotations

import csv
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import ROOT, compose_config
from tests.fixtures.datasets import write_fixture_dataset


def _namespaces_allowed() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True)
    return probe.returncode == 0


pytestmark = pytest.mark.skipif(
    not _namespaces_allowed(), reason="needs user and mount namespaces (unshare -rm) for a small tmpfs"
)


def _on_small_disk(
    mount: Path, size_kb: int, steps: list[list[str]], grow_kb: int
) -> list[subprocess.CompletedProcess]:
    """Mount a tmpfs of ``size_kb`` at ``mount``, run the first command, grow the tmpfs to
    ``grow_kb`` and run the others; return each command's result (its output in a log file)."""
    mount.mkdir(parents=True, exist_ok=True)
    logs = [mount.parent / f"step{k}.log" for k in range(len(steps))]
    lines = [f"mount -t tmpfs -o size={size_kb}k tmpfs {mount}"]
    for k, (cmd, log) in enumerate(zip(steps, logs, strict=True)):
        if k == 1:
            lines.append(f"mount -o remount,size={grow_kb}k {mount}")
        lines.append(f"{shlex.join(cmd)} > {log} 2>&1; echo $? > {log}.rc")
    # The mount lives as long as the namespace: what the test checks afterwards is copied out.
    lines.append(f"cp -a {mount} {mount.parent / 'after'}")
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    env.pop("HYDRA_FULL_ERROR", None)
    subprocess.run(
        ["unshare", "-rm", "sh", "-c", "\n".join(lines)], cwd=ROOT, env=env, check=True, timeout=600
    )
    return [
        subprocess.CompletedProcess(cmd, int(Path(f"{log}.rc").read_text()), log.read_text(), "")
        for cmd, log in zip(steps, logs, strict=True)
    ]


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_a_full_disk_stops_training_with_its_last_checkpoint_whole_and_it_resumes(tmp_path):
    data = write_fixture_dataset("flowers102", tmp_path / "data")["data_dir"]
    args = [
        "dataset=flowers102",
        f"paths.data_dir={data}",
        "debug=fast",
        "dataset.batch_size=4",
        "dataset.image_size=32",
        "dataset.resize=36",
        "logger=csv",
        "trainer.accelerator=cpu",
        "trainer.max_epochs=2",
        "callbacks.progress_bar=none",
    ]
    from diffusemix_bench.training.classifier import build_model

    # A checkpoint is the weights and their SGD momentum: room for two and a half of them. The first
    # epoch writes best-epoch000.ckpt and last.ckpt; the second's last.ckpt does not fit beside them.
    net = build_model(compose_config(args), 102, load_weights=False)
    size = 2 * sum(p.numel() * p.element_size() for p in net.parameters())
    mount = tmp_path / "disk"
    run_dir = mount / "run"
    train = [sys.executable, "train.py", *args, f"hydra.run.dir={run_dir}"]
    full, resumed = _on_small_disk(
        mount, int(2.5 * size / 1024), [train, [*train, "ckpt_path=last"]], grow_kb=int(5 * size / 1024)
    )

    assert full.returncode == 1, full.stdout[-3000:]
    assert "Traceback" not in full.stdout
    (message,) = [line for line in full.stdout.splitlines() if line.startswith("error: ")]
    assert message.startswith("error: the disk is full (No space left on device")
    assert f"The run folder {run_dir} is on a disk with" in message
    assert f"the same command with ckpt_path=last and hydra.run.dir={run_dir}" in message

    assert resumed.returncode == 0, resumed.stdout[-3000:]
    after = tmp_path / "after" / "run"
    # No partial file anywhere, the checkpoints whole; each epoch one row in summary.csv.
    checkpoints = [f for f in _files(after) if "checkpoints" in f]
    assert len(checkpoints) == 2 and checkpoints[0].startswith("checkpoints/best-epoch00"), checkpoints
    assert checkpoints[1] == "checkpoints/last.ckpt"
    last = torch.load(after / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert last["global_step"] == 4
    rows = list(csv.DictReader((after / "summary.csv").open()))
    assert [(r["epoch"], r["step"]) for r in rows] == [("0", "2"), ("1", "4")]
    assert not (after / "failure.json").exists()


def test_a_full_disk_stops_generation_keeping_every_edit_written_and_it_resumes(tmp_path):
    data = write_fixture_dataset("flowers102", tmp_path / "data")["data_dir"]
    mount = tmp_path / "disk"
    edits = mount / "edits"
    gen = [
        sys.executable,
        "generate.py",
        "dataset=flowers102",
        "generator=tiny",
        "generator.num_prompts=2",
        "generator.limit=3",
        f"paths.data_dir={data}",
        f"generator.edits_dir={edits}",
        f"hydra.run.dir={tmp_path / 'hydra'}",
    ]
    # Room for the store's settings and about one edit (the tiny pipeline's edits are ~4 KB).
    full, resumed = _on_small_disk(mount, 24, [gen, gen], grow_kb=4096)

    assert full.returncode == 1, full.stdout[-3000:]
    assert "Traceback" not in full.stdout
    (message,) = [line for line in full.stdout.splitlines() if line.startswith("error: ")]
    assert message.startswith("error: the disk is full (No space left on device")
    assert f"generator.edits_dir={edits}, on a disk with" in message
    assert "run the same command again" in message

    assert resumed.returncode == 0, resumed.stdout[-3000:]
    kept = int(resumed.stdout.split(" already stored")[0].rsplit(": ", 1)[-1])
    assert kept >= 1  # what the full disk had room for was kept, not made again
    assert f"6 edits planned: {kept} already stored, {6 - kept} generated" in resumed.stdout
    store = next((tmp_path / "after" / "edits" / "flowers102" / "train").iterdir())
    assert len(_files(store / "edits")) == 6
    assert not _files(store / "tmp")  # the partial file of the failed write was removed
