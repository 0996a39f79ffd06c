"""generate.py killed with SIGKILL part-way resumes with every key stored exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from diffusemix_bench.generation.generate import generate
from diffusemix_bench.generation.store import EditStore
from tests.conftest import ROOT
from tests.fixtures.datasets import write_fixture_dataset
from tests.test_generation import _all_keys_stored, compose_generate, gen_overrides


@pytest.fixture
def one_thread():
    """The tiny pipeline gains nothing from threads; on a shared machine they cost a lot."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.slow
def test_generate_killed_midway_resumes_without_loss_or_duplicates(tmp_path, one_thread):
    """A real ``python generate.py`` process is SIGKILLed once some edits exist; the rerun
    finishes the store with every key exactly once and every image decodable."""
    flowers = write_fixture_dataset("flowers102", tmp_path / "data")["data_dir"]
    overrides = gen_overrides(
        flowers, tmp_path / "edits", "generator.batch_size=2", "generator.num_prompts=3"
    )
    store = EditStore.from_config(compose_generate(overrides), "flowers102")
    env = dict(os.environ, OMP_NUM_THREADS="1", HYDRA_FULL_ERROR="1")
    log = tmp_path / "generate.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "generate.py", *overrides, f"hydra.run.dir={tmp_path / 'run'}"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    manifest = store.folder / "manifest"
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            lines = sum(p.read_text().count("\n") for p in manifest.glob("*.txt")) if manifest.is_dir() else 0
            if lines >= 4:
                break
            time.sleep(0.02)
        assert proc.poll() is None, f"generate.py ended before it was killed: {log.read_text()[-3000:]}"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    killed_tmp = store.folder / "tmp"
    assert any(killed_tmp.iterdir())  # the killed process's scratch folder is still there

    done_before = 36 - len(
        EditStore.from_config(compose_generate(overrides), "flowers102").missing(range(12))
    )
    assert 4 <= done_before < 36
    summary = generate(compose_generate(overrides))
    assert summary["existing"] == done_before and summary["generated"] == 36 - done_before
    resumed = EditStore.from_config(compose_generate(overrides), "flowers102")
    _all_keys_stored(resumed, 12)
    lines = [ln for p in manifest.glob("*.txt") for ln in p.read_text().splitlines(keepends=True)]
    assert len([ln for ln in lines if ln.endswith("\n")]) == 36  # every key recorded exactly once
    assert not any(killed_tmp.iterdir())  # the dead process's scratch folder was removed


@pytest.mark.slow
def test_two_ranks_share_the_keys_without_duplicates_and_match_one_rank(tmp_path, one_thread):
    """generate.py with trainer.devices=2 (DDP on CPU): each key is made by exactly one rank, the
    summary counts both ranks, and with generator.batch_invariant=true the bytes equal a
    single-process run with another batch size."""
    flowers = write_fixture_dataset("flowers102", tmp_path / "data")["data_dir"]
    common = ["generator.num_prompts=2", "generator.batch_invariant=true"]
    ddp = gen_overrides(flowers, tmp_path / "ddp", *common, "generator.batch_size=4")
    ddp += ["trainer.accelerator=cpu", "trainer.devices=2", "trainer.strategy=ddp"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    done = subprocess.run(
        [sys.executable, "generate.py", *ddp, f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert [ln for ln in done.stdout.splitlines() if ln.startswith("summary:")] == [
        "summary: generated=24 existing=0 regenerated=0 failed=0"
    ]
    two = EditStore.from_config(compose_generate(ddp), "flowers102")
    manifests = sorted((two.folder / "manifest").glob("*.txt"))
    assert len(manifests) == 2 and all(m.read_text().count("\n") == 12 for m in manifests)
    _all_keys_stored(two, 12)

    single = gen_overrides(flowers, tmp_path / "single", *common, "generator.batch_size=3")
    generate(compose_generate(single))
    one = EditStore.from_config(compose_generate(single), "flowers102")
    for i in range(12):
        for pid in one.prompt_ids:
            assert torch.equal(one.read(i, pid), two.read(i, pid))
