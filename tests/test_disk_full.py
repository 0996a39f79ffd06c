"""A disk that fills up ends train.py and generate.py with one message (where the files go, the
disk's free space, how the work resumes) and exit code 1, loses no finished work, leaves no partial
file, and the same command resumes once there is room.

Each test runs the real entry points on a small tmpfs of its own, mounted in a private user and
mount namespace (``unshare -rm``), so no real disk is filled; where namespaces are not allowed the
tests are skipped (and counted as skipped). The advised resume runs on a copy of what the full
disk left, as if moved to a disk with room."""

from __future__ import annotations

import csv
import errno
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import ROOT, compose_config, finalize
from tests.fixtures.datasets import write_fixture_dataset
from tests.test_generation import compose_generate


def _namespaces_allowed() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True)
    return probe.returncode == 0


needs_namespaces = pytest.mark.skipif(
    not _namespaces_allowed(), reason="needs user and mount namespaces (unshare -rm) for a small tmpfs"
)


def _on_small_disk(mount: Path, size_kb: int, cmd: list[str], copy: Path) -> subprocess.CompletedProcess:
    """Run ``cmd`` with a tmpfs of ``size_kb`` at ``mount``; copy what it left there to ``copy``
    (the mount ends with its namespace) and return the command's result."""
    mount.mkdir(parents=True, exist_ok=True)
    log = mount.parent / "run.log"
    script = (
        f"mount -t tmpfs -o size={size_kb}k tmpfs {mount}\n"
        f"{shlex.join(cmd)} > {log} 2>&1; echo $? > {log}.rc\n"
        f"cp -a {mount} {copy}"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    env.pop("HYDRA_FULL_ERROR", None)
    subprocess.run(["unshare", "-rm", "sh", "-c", script], cwd=ROOT, env=env, check=True, timeout=600)
    return subprocess.CompletedProcess(cmd, int(Path(f"{log}.rc").read_text()), log.read_text(), "")


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


@needs_namespaces
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
    net = build_model(compose_config(args), 3, load_weights=False)  # the fixture has 3 classes
    size = 2 * sum(p.numel() * p.element_size() for p in net.parameters())
    mount = tmp_path / "disk"
    run_dir = mount / "run"
    full = _on_small_disk(
        mount,
        int(2.5 * size / 1024),
        [sys.executable, "train.py", *args, f"hydra.run.dir={run_dir}"],
        tmp_path / "after",
    )
    assert full.returncode == 1, full.stdout[-3000:]
    assert "Traceback" not in full.stdout
    (message,) = [line for line in full.stdout.splitlines() if line.startswith("error: ")]
    assert message.startswith("error: the disk is full (No space left on device")
    assert f"The run folder {run_dir} is on a disk with" in message
    assert f"ckpt_path=last hydra.run.dir={run_dir} (hydra.run.dir: or the folder's new place)" in message
    assert " train.py " + " ".join(args) + " ckpt_path=last" in message  # the command itself

    # The run folder as the full disk left it: the first epoch's checkpoints whole, nothing partial.
    after = tmp_path / "after" / "run"
    checkpoints = [f for f in _files(after) if "checkpoints" in f]
    assert checkpoints == ["checkpoints/best-epoch000.ckpt", "checkpoints/last.ckpt"], checkpoints
    last = torch.load(after / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert last["global_step"] == 2
    assert json.loads((after / "failure.json").read_text())["status"] == "failed"

    # The advised resume, on that folder moved to a disk with room (in this process: quicker).
    from diffusemix_bench.training.run import train

    cfg = finalize(compose_config([*args, "ckpt_path=last"]), after)
    metrics = train(cfg)
    assert metrics["resumed"]
    last = torch.load(after / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert last["global_step"] == 4
    rows = list(csv.DictReader((after / "summary.csv").open()))
    assert [(r["epoch"], r["step"]) for r in rows] == [("0", "2"), ("1", "4")]  # epoch 1's row once
    # The moved run chose its best checkpoint as the unmoved run would: the first epoch of the best
    # validation top-1 (a later epoch replaces it only by doing better), and no other file is left.
    best = max(rows, key=lambda r: (float(r["val_top1"]), -int(r["epoch"])))["epoch"]
    assert metrics["best_checkpoint"] == str(after / "checkpoints" / f"best-epoch{int(best):03d}.ckpt")
    assert [f for f in _files(after) if "checkpoints" in f] == [
        f"checkpoints/best-epoch{int(best):03d}.ckpt",
        "checkpoints/last.ckpt",
    ]
    assert not (after / "failure.json").exists()
    assert not [f for f in _files(after) if f.endswith(".part")]


@needs_namespaces
def test_a_full_disk_stops_generation_keeping_every_edit_written_and_it_resumes(tmp_path, capsys):
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
    full = _on_small_disk(mount, 24, gen, tmp_path / "after")
    assert full.returncode == 1, full.stdout[-3000:]
    assert "Traceback" not in full.stdout
    (message,) = [line for line in full.stdout.splitlines() if line.startswith("error: ")]
    assert message.startswith("error: the disk is full (No space left on device")
    assert f"generator.edits_dir={edits}, on a disk with" in message
    assert "run the same command again" in message
    store = next((tmp_path / "after" / "edits" / "flowers102" / "train").iterdir())
    kept = len(_files(store / "edits"))
    assert kept >= 1  # what the disk had room for
    assert not _files(store / "tmp")  # the partial file of the failed write was removed

    # The same command on the store moved to a disk with room (in this process: quicker).
    from diffusemix_bench.generation.generate import generate

    moved = [a for a in gen[2:] if not a.startswith(("generator.edits_dir=", "hydra."))]
    generate(compose_generate([*moved, f"generator.edits_dir={tmp_path / 'after' / 'edits'}"]))
    out = capsys.readouterr().out
    assert f"6 edits planned: {kept} already stored, {6 - kept} generated" in out  # none made twice
    assert len(_files(store / "edits")) == 6


def test_a_result_file_is_written_whole_or_not_at_all(tmp_path, monkeypatch):
    """metrics.json (rewritten by evaluate.py with the attack's numbers), config_resolved.yaml and
    the other result files go through files.write_atomic: a write that fails leaves the previous
    file as it was (a plain write would have emptied it first) and no partial file."""
    from diffusemix_bench import files

    path = tmp_path / "metrics.json"
    path.write_text('{"val_top1": 71.5}\n')

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files.os, "replace", disk_full)
    with pytest.raises(OSError, match="No space left"):
        files.write_atomic(path, '{"val_top1": 71.5, "fgsm_error": 40.0}\n')
    assert path.read_text() == '{"val_top1": 71.5}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]
    monkeypatch.undo()
    files.write_atomic(path, b"{}\n", sync=True)
    assert path.read_text() == "{}\n" and [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_evaluate_names_the_metrics_file_a_full_disk_stopped(tmp_path):
    from omegaconf import OmegaConf

    from diffusemix_bench.cli import evaluation_disk_full_advice
    from diffusemix_bench.errors import disk_full_message

    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "checkpoints" / "last.ckpt").write_bytes(b"")
    for ckpt in (run_dir, run_dir / "checkpoints" / "last.ckpt"):
        advice = evaluation_disk_full_advice(OmegaConf.create({"ckpt": str(ckpt)}))
        message = disk_full_message(OSError(errno.ENOSPC, "No space left on device"), advice)
        assert message.startswith(
            f"the disk is full (No space left on device). evaluate.py adds its numbers to {run_dir / 'metrics.json'}, on a disk with "
        )
        assert message.endswith(
            "free; that file is kept as it was. Free space there, then run the same command again."
        )
