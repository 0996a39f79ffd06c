"""The sweep's sweeper (hydra_plugins/diffusemix_bench_sweeper.py): jobs a user error stopped are
kept and the sweep goes on; a crash of the code stays Hydra's to report."""

import importlib
from types import SimpleNamespace

import pytest
from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import OmegaConf

from diffusemix_bench.errors import SweepJobError


def _plugin():
    """The sweeper's module as Hydra runs it: Hydra's plugin scan runs its plugin modules (its own
    basic sweeper too) again, once per process, so the classes are taken after the scan."""
    Plugins.instance()
    return importlib.import_module("hydra_plugins.diffusemix_bench_sweeper")


def _job(folder: str, status: JobStatus, value) -> JobReturn:
    job = JobReturn(overrides=[f"seed={folder}"], status=status, working_dir="/somewhere")
    job.hydra_cfg = OmegaConf.create({"hydra": {"runtime": {"output_dir": f"/sweep/{folder}"}}})
    job.return_value = value
    return job


def test_jobs_stopped_by_a_user_error_are_kept_and_the_sweep_goes_on(tmp_path):
    plugin = _plugin()
    crash = RuntimeError("a bug")
    jobs = [
        _job("0_seed=0", JobStatus.FAILED, SweepJobError("error: dataset.batch_size=1: a BatchNorm layer")),
        _job("1_seed=1", JobStatus.COMPLETED, 71.5),
        _job("2_seed=2", JobStatus.FAILED, crash),
    ]
    failed: list[JobReturn] = []
    launcher = SimpleNamespace(launch=lambda overrides, initial_job_idx: jobs, name="local")
    handed = plugin._Recording(launcher, failed).launch(
        [["seed=0"], ["seed=1"], ["seed=2"]], initial_job_idx=0
    )
    # The user's error is kept and handed on as ended; the crash stays a failure Hydra reports.
    assert failed == [jobs[0]] and handed[0].status == JobStatus.COMPLETED and handed[0].return_value is None
    assert handed[1] is jobs[1] and handed[2] is jobs[2] and handed[2].status == JobStatus.FAILED
    assert plugin._Recording(launcher, failed).name == "local"  # the launcher's other attributes pass through

    sweeper = plugin.RunAllSweeper(max_batch_size=None)
    sweeper.failed = failed
    sweeper.config = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}})
    (tmp_path / "summary.csv").write_text("job,status\n")
    assert sweeper.failure_line(3) == (
        f"error: 1 of 3 jobs stopped on an error (0_seed=0; each one's error is in its folder's log); "
        f"every job's status: {tmp_path / 'summary.csv'}. The first's: dataset.batch_size=1: a BatchNorm layer"
    )


def test_a_crash_after_jobs_stopped_by_a_user_error_names_them_too(monkeypatch, capsys):
    """A job that crashed (the code's error, reported by Hydra with its stack trace) after jobs a
    user error stopped: their line is said first, then the crash goes on to Hydra."""
    plugin = _plugin()
    sweeper = plugin.RunAllSweeper(max_batch_size=None)
    sweeper.failed = [_job("0_seed=0", JobStatus.FAILED, SweepJobError("error: a corrupt image"))]

    jobs = [_job("1_seed=1", JobStatus.FAILED, RuntimeError("a bug"))]
    ran = SimpleNamespace(launch=lambda overrides, initial_job_idx: jobs)
    sweeper.launcher = plugin._Recording(ran, sweeper.failed)

    def crash(self, arguments):  # BasicSweeper's loop: each batch launched whole, then its results read
        self.overrides = [[["seed=0"], ["seed=1"]], [["seed=2"]], [["seed=3"]]][: self.batches]
        self.batch_index = 0
        while not self.is_done():
            for job in self.launcher.launch(self.get_job_batch(), initial_job_idx=0):
                _ = job.return_value
        return []

    monkeypatch.setattr(plugin.BasicSweeper, "sweep", crash)
    said = "error: 1 job stopped on an error (0_seed=0; each one's error is in its folder's log). The first's: a corrupt image. "
    # Every job ran (one batch): the crash is reported with the line, not as a stopped sweep.
    sweeper.batches = 1
    with pytest.raises(RuntimeError, match="a bug"):
        sweeper.sweep([])
    assert capsys.readouterr().err.strip().splitlines()[-1] == said + "A job crashed too: see below"
    # Batches left (hydra.sweeper.max_batch_size): the crash stopped the sweep before them.
    sweeper.batches = 3
    with pytest.raises(RuntimeError, match="a bug"):
        sweeper.sweep([])
    assert (
        capsys.readouterr().err.strip().splitlines()[-1]
        == said + "A job crashed (below), so the sweep stopped before its last 2 jobs"
    )

    # Ctrl-C while a batch runs: the sweep stopped before its end.
    def stopped(overrides, initial_job_idx):
        raise KeyboardInterrupt

    sweeper.launcher = plugin._Recording(SimpleNamespace(launch=stopped), sweeper.failed)
    with pytest.raises(KeyboardInterrupt):
        sweeper.sweep([])
    assert (
        capsys.readouterr().err.strip().splitlines()[-1]
        == said + "The sweep stopped before its end: see below"
    )
