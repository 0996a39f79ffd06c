"""generate.py killed with SIGKILL part-way resumes with every key stored exactly once."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time

import pytest
import torch

from diffusemix_bench.generation.generate import generate
from diffusemix_bench.generation.store import EditStore
from tests.conftest import ROOT, signal_when_ready
from tests.fixtures.datasets import write_fixture_dataset
from tests.test_generation import _all_keys_stored, compose_generate, gen_overrides


@pytest.fixture
def one_thread():
    """The tiny pipeline gains nothing from threads; on a shared machine they cost a lot."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _manifest_lines(store: EditStore) -> int:
    mdir = store.folder / "manifest"
    return sum(p.read_text().count("\n") for p in mdir.glob("*.txt")) if mdir.is_dir() else 0


def _start(overrides: list[str], run_dir, log) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1", HYDRA_FULL_ERROR="1")
    with open(log, "a") as out:
        return subprocess.Popen(
            [sys.executable, "generate.py", *overrides, f"hydra.run.dir={run_dir}"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _generate_py(args: list[str]) -> subprocess.CompletedProcess:
    """``python generate.py <args>`` run to its end, one thread per process, output captured."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run(
        [sys.executable, "generate.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )


def _stored_bytes(store: EditStore, n: int) -> dict[tuple[int, str], bytes]:
    return {(i, pid): store.path(i, pid).read_bytes() for i in range(n) for pid in store.prompt_ids}


@pytest.mark.slow
def test_generate_killed_at_five_random_points_ends_byte_identical(tmp_path, one_thread):
    """A real ``python generate.py`` is SIGKILLed five times, at seeded random points (after 2 to
    33 of the 36 edits are recorded), and run again each time; the store it ends with holds every
    key exactly once, with the bytes of an uninterrupted run (batched calls: each group is always
    generated whole, so a resumed group gives the same bytes)."""
    flowers = write_fixture_dataset("flowers102", tmp_path / "data")["data_dir"]
    reference = gen_overrides(flowers, tmp_path / "ref", "generator.num_prompts=3")
    generate(compose_generate(reference))
    expected = _stored_bytes(EditStore.from_config(compose_generate(reference), "flowers102"), 12)

    overrides = gen_overrides(flowers, tmp_path / "edits", "generator.num_prompts=3")
    store = EditStore.from_config(compose_generate(overrides), "flowers102")
    log = tmp_path / "generate.log"
    points = sorted(random.Random(0).sample(range(2, 34), 5))
    for point in points:
        proc = _start(overrides, tmp_path / "run", log)
        deadline = time.monotonic() + 240
        try:
            while time.monotonic() < deadline and proc.poll() is None and _manifest_lines(store) < point:
                time.sleep(0.005)
            assert proc.poll() is None, f"generate.py ended before it was killed: {log.read_text()[-3000:]}"
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        assert proc.returncode == -signal.SIGKILL
    killed_tmp = store.folder / "tmp"
    assert any(killed_tmp.iterdir())  # a killed process's scratch folder is still there
    done_before = 36 - len(
        EditStore.from_config(compose_generate(overrides), "flowers102").missing(range(12))
    )
    assert points[-1] <= done_before < 36
    summary = generate(compose_generate(overrides))
    assert summary["existing"] == done_before and summary["generated"] == 36 - done_before
    resumed = EditStore.from_config(compose_generate(overrides), "flowers102")
    _all_keys_stored(resumed, 12)
    assert _manifest_lines(resumed) == 36  # every key recorded exactly once
    assert _stored_bytes(resumed, 12) == expected
    assert not any(killed_tmp.iterdir())  # the dead processes' scratch folders were removed


@pytest.mark.slow
def test_two_generate_processes_on_one_store_share_the_work(tmp_path, one_thread):
    """Two ``generate.py`` started together on one store: each group is claimed by one of them, so
    together they make each edit once (every key recorded once, the two 'generated' counts sum to
    the plan), and the bytes equal a single run's."""
    flowers = write_fixture_dataset("flowers102", tmp_path / "data", per_class=8)["data_dir"]
    common = ["generator.num_prompts=3", "generator.steps=6"]
    overrides = gen_overrides(flowers, tmp_path / "edits", *common)
    procs = [_start(overrides, tmp_path / f"run{k}", tmp_path / f"log{k}") for k in range(2)]
    for proc in procs:
        proc.wait(timeout=600)
    logs = [(tmp_path / f"log{k}").read_text() for k in range(2)]
    assert all(p.returncode == 0 for p in procs), logs[0][-2000:] + logs[1][-2000:]
    counts = [re.search(r"^summary: generated=(\d+) existing=(\d+)", text, re.M) for text in logs]
    made = [int(c.group(1)) for c in counts]
    assert sum(made) == 72, logs
    store = EditStore.from_config(compose_generate(overrides), "flowers102")
    _all_keys_stored(store, 24, size=(40, 48))
    assert _manifest_lines(store) == 72

    single = gen_overrides(flowers, tmp_path / "single", *common)
    generate(compose_generate(single))
    assert _stored_bytes(store, 24) == _stored_bytes(
        EditStore.from_config(compose_generate(single), "flowers102"), 24
    )


@pytest.mark.slow
def test_two_ranks_share_the_keys_without_duplicates_and_match_one_rank(tmp_path, one_thread):
    """generate.py with trainer.devices=2 (DDP on CPU): each key is made by exactly one rank, the
    summary counts both ranks, and the bytes equal a single-process run's (batched calls: the same
    groups whatever the number of ranks)."""
    flowers = write_fixture_dataset("flowers102", tmp_path / "data")["data_dir"]
    common = ["generator.num_prompts=2", "generator.batch_size=4"]
    ddp = gen_overrides(flowers, tmp_path / "ddp", *common)
    ddp += ["trainer.accelerator=cpu", "trainer.devices=2", "trainer.strategy=ddp"]
    done = _generate_py([*ddp, f"hydra.run.dir={tmp_path / 'run'}"])
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert [ln for ln in done.stdout.splitlines() if ln.startswith("summary:")] == [
        "summary: generated=24 existing=0 regenerated=0 failed=0"
    ]
    two = EditStore.from_config(compose_generate(ddp), "flowers102")
    manifests = sorted((two.folder / "manifest").glob("*.txt"))
    assert len(manifests) == 2 and all(m.read_text().count("\n") == 12 for m in manifests)
    _all_keys_stored(two, 12)
    assert len(list((two.folder / "images").glob("*.txt"))) == 1  # the first rank recorded them

    single = gen_overrides(flowers, tmp_path / "single", *common)
    generate(compose_generate(single))
    one = EditStore.from_config(compose_generate(single), "flowers102")
    for i in range(12):
        for pid in one.prompt_ids:
            assert torch.equal(one.read(i, pid), two.read(i, pid))

    # An image replaced since: the first rank refuses the store, and both ranks stop (none waits).
    from diffusemix_bench.data import create_dataset

    first = create_dataset("flowers102", flowers, "train").paths[0]
    first.write_bytes(first.read_bytes() + b"\0")
    done = _generate_py([*ddp, f"hydra.run.dir={tmp_path / 'run2'}"])
    out = done.stdout + done.stderr
    assert done.returncode == 1 and "would be paired with the wrong images" in out, out[-3000:]
    assert "Traceback" not in out


@pytest.mark.parametrize(
    ("sig", "said"),
    [
        (signal.SIGINT, "interrupted (Ctrl-C)"),
        # Lightning notes a SIGTERM but its predict loop would go on: generate.py stops between groups.
        (signal.SIGTERM, "stopped by SIGTERM (a scheduler's time limit or preemption, or kill)"),
    ],
    ids=["ctrl_c", "sigterm"],
)
def test_a_signal_stops_generate_py_with_what_was_kept_and_the_way_on(tmp_path, one_thread, sig, said):
    """Ctrl-C (SIGINT) or SIGTERM during generation, sent to the whole process group with a
    data-loader worker: generate.py prints how far it got and that the same command goes on, exits
    with code 1 and no traceback; every edit recorded is in the store."""
    flowers = write_fixture_dataset("flowers102", tmp_path / "data")["data_dir"]
    overrides = gen_overrides(
        flowers, tmp_path / "edits", "generator.num_prompts=3", "generator.steps=12", "dataset.num_workers=1"
    )
    store = EditStore.from_config(compose_generate(overrides), "flowers102")
    code, out = signal_when_ready(
        "generate.py",
        [*overrides, f"hydra.run.dir={tmp_path / 'run'}"],
        lambda: _manifest_lines(store) >= 2,
        sig,
        group=True,
    )
    assert code == 1, out[-3000:]
    assert "Traceback" not in out and "Detected KeyboardInterrupt" not in out  # (Lightning's line)
    made = int(re.search(r"^stopped: summary: generated=(\d+) existing=0", out, re.M).group(1))
    assert out.strip().splitlines()[-1] == (
        f"{said}: every edit written so far is kept; the same command goes on from here."
    )
    assert 2 <= made < 36 and made == 36 - len(store.missing(range(12)))
    # The stopped run's edits and time are logged, for reports' generation hours.
    (logged,) = [
        json.loads(line) for line in (store.folder / "generation_log.jsonl").read_text().splitlines()
    ]
    assert logged["generated"] == made and logged["stopped"] is True and logged["seconds"] > 0


def test_ctrl_c_never_parts_an_edit_written_from_its_count():
    """Ctrl-C arriving just after an edit's file and manifest line are written (before the count):
    the edit is counted, the rest of the batch is not written, and the interruption still stops the
    run. (It was raised between the two: the stop line said one edit fewer than the store held.)"""
    from types import SimpleNamespace

    from diffusemix_bench.generation.generate import Counts, EditKey, EditResult, StoreWriter

    written, released = [], []

    class Store:
        def write(self, index, prompt_id, edit, full=None):
            written.append((index, prompt_id))
            os.kill(os.getpid(), signal.SIGINT)  # as if Ctrl-C came right after the manifest line

        def release(self, claim):
            released.append(claim)

    counts = Counts()
    edit = torch.zeros(3, 4, 4, dtype=torch.uint8)
    results = [EditResult(EditKey("train", 0, pid), edit, None, attempts=1) for pid in ("0", "1")]
    prediction = SimpleNamespace(
        group=SimpleNamespace(split="train"), results=results, claim="lock", by_others=0
    )
    with pytest.raises(KeyboardInterrupt):
        StoreWriter({"train": Store()}, counts).write_on_batch_end(None, None, prediction, None, None, 0, 0)
    assert written == [(0, "0")] and counts.generated == 1 and released == ["lock"]


@pytest.mark.slow
def test_sigterm_stops_two_generating_ranks_with_what_was_kept(tmp_path, one_thread):
    """SIGTERM to every process of generate.py on two CPU ranks (as SLURM sends it): each rank stops
    between two groups, the run ends with exit code 1 and the resume advice, no traceback, no hang;
    every edit recorded is in the store."""
    flowers = write_fixture_dataset("flowers102", tmp_path / "data")["data_dir"]
    overrides = gen_overrides(flowers, tmp_path / "edits", "generator.num_prompts=3", "generator.steps=12")
    overrides += ["trainer.accelerator=cpu", "trainer.devices=2", "trainer.strategy=ddp"]
    store = EditStore.from_config(compose_generate(overrides), "flowers102")
    code, out = signal_when_ready(
        "generate.py",
        [*overrides, f"hydra.run.dir={tmp_path / 'run'}"],
        lambda: _manifest_lines(store) >= 2,
        signal.SIGTERM,
        group=True,
    )
    assert code == 1 and "Traceback" not in out, out[-3000:]
    assert "every edit written so far is kept; the same command goes on from here." in out
    made = _manifest_lines(store)
    assert 2 <= made < 36 and made == 36 - len(store.missing(range(12)))
    # Each process says what it made, named: together they are what the store holds.
    said = {
        int(m.group(1)): int(m.group(2))
        for m in re.finditer(r"^stopped \(process (\d) of 2\): summary: generated=(\d+) ", out, re.M)
    }
    assert set(said) == {1, 2} and sum(said.values()) == made, out[-3000:]
