"""Shared helpers: compose the real Hydra config, shrunk for CPU, on fixture data."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig, OmegaConf, open_dict

from diffusemix_bench.config import register_configs

ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = ROOT / "conf"
SHARED_DATA = ROOT.parent / "shared" / "data"

register_configs()
# Each of the test workers (pytest-xdist, `make test`'s -n) gets its share of the cores: threads
# beyond them only wait on each other. The scripts the tests start inherit it.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
_THREADS = max(1, min(2, os.cpu_count() or 1) // _WORKERS)
torch.set_num_threads(_THREADS)
if _WORKERS > 1:
    os.environ["OMP_NUM_THREADS"] = str(_THREADS)

#: Free space a memory file system needs before the tests' folders go there.
MEMORY_TMP_MIN_FREE = 8 * 2**30


def _memory_tmp_root(candidate: str = "/dev/shm") -> str | None:
    """A RAM-backed folder with room for the tests' folders, or None. Each training test writes
    checkpoints of ~90 MB; on a virtual disk that writes back at ~100 MB/s they take about half the
    suite's time. The folders hold what they hold on disk (the same files, fsynced and renamed as
    train.py writes them), and only failed tests' folders are kept (tmp_path_retention_policy)."""
    try:
        stat = os.statvfs(candidate)
    except OSError:
        return None
    if not os.access(candidate, os.W_OK) or stat.f_bavail * stat.f_frsize < MEMORY_TMP_MIN_FREE:
        return None
    return candidate


# pytest's own variable: a root given by the caller (or --basetemp) wins.
if "PYTEST_DEBUG_TEMPROOT" not in os.environ and (_root := _memory_tmp_root()) is not None:
    os.environ["PYTEST_DEBUG_TEMPROOT"] = _root

# Shrinks any composed config to a few CPU steps on small images.
FAST = [
    "debug=fast",
    # Attacks read the whole (small) test split, as a run's do: debug=fast limits them to 2 batches.
    "eval.limit_batches=null",
    "dataset.batch_size=4",
    "dataset.image_size=32",
    "dataset.resize=36",
    "logger=csv",
    "fractals.count=8",
    "fractals.size=32",
    "fractals.points=20000",
]


def compose_config(overrides: list[str], *, return_hydra_config: bool = False) -> DictConfig:
    """train.py's settings with ``overrides`` (a copy of the composition made once per process)."""
    from diffusemix_bench.compose import compose_raw

    return compose_raw(str(CONF_DIR), "config", list(overrides), return_hydra_config)


def finalize(cfg: DictConfig, run_dir: Path) -> DictConfig:
    """Point the run folder at ``run_dir`` (compose() has no Hydra runtime to resolve it)."""
    with open_dict(cfg):
        cfg.paths.output_dir = str(run_dir)
    return cfg


def point_at_fixture(cfg: DictConfig, fixture: dict) -> DictConfig:
    """Use a dataset written by tests.fixtures.datasets.write_fixture_dataset."""
    with open_dict(cfg):
        if cfg.dataset.name == "imagefolder":
            cfg.dataset.root = str(fixture["data_dir"])
        else:
            cfg.paths.data_dir = str(fixture["data_dir"])
        cfg.dataset.options = OmegaConf.merge(cfg.dataset.options, fixture.get("options", {}))
    return cfg


@pytest.fixture
def make_cfg(tmp_path):
    """Compose ``overrides`` + FAST, write the fixture dataset the config names, return the config."""
    from tests.fixtures.datasets import write_fixture_dataset

    def make(
        overrides: list[str],
        fast: bool = True,
        run_name: str = "run",
        composed: DictConfig | None = None,
        **fixture_kwargs,
    ) -> DictConfig:
        """``composed``: ``compose_config((FAST if fast else []) + overrides)``, when the test has it."""
        cfg = composed if composed is not None else compose_config((FAST if fast else []) + list(overrides))
        fixture = write_fixture_dataset(cfg.dataset.name, tmp_path / "data", **fixture_kwargs)
        point_at_fixture(cfg, fixture)
        with open_dict(cfg):
            # Generated edits and fractal banks go to the test's folder, never the user's cache.
            cfg.paths.cache_dir = str(tmp_path / "cache")
        return finalize(cfg, tmp_path / run_name)

    return make


def run_entry(script: str, args: list[str], cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run a top-level script (``train.py``, ``evaluate.py``, ...) as a user would, in ``cwd``."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run(
        [sys.executable, str(ROOT / script), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def signal_when_ready(
    script: str, args: list[str], ready, sig: int, timeout: float = 300, group: bool = False
) -> tuple[int, str]:
    """Run a top-level script as a user would, send it ``sig`` once ``ready()`` holds (as Ctrl-C or
    a scheduler would), and return its exit code and output (stdout and stderr together).
    ``group``: the script runs in its own process group and the signal goes to the whole group, its
    data-loader workers included, as a terminal's Ctrl-C, ``timeout`` and SLURM send it."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    env.pop("HYDRA_FULL_ERROR", None)
    proc = subprocess.Popen(
        [sys.executable, script, *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=group,
        # Ctrl-C as in a terminal: a shell without job control starts background commands (a test
        # run launched with &) with SIGINT ignored, and Python then keeps it ignored.
        preexec_fn=_default_sigint,
    )
    try:
        deadline = time.monotonic() + timeout
        while not ready() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert proc.poll() is None, f"{script} ended before the signal: {proc.communicate()[0][-3000:]}"
        if group:
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if group:  # nothing of the group is left behind
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
    return proc.returncode, out
