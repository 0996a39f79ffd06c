"""The sweeper of diffusemix-bench's ``--multirun`` sweeps (``hydra/sweeper: run_all``): Hydra's
basic sweeper (the same ``params`` and ``max_batch_size``), except for jobs stopped by a user error
(a corrupt image, missing edits, a refused setting: each said in the job's own log). Hydra's sweeper
stops after the batch of the first such job and prints its error again with a hint about stack
traces; this one runs every batch and ends with one line: how many jobs failed, which, the first
one's error, and the sweep's summary.csv; exit code 1. A job that crashed (an error of the code,
not the user's) is reported as Hydra reports it, with its stack trace.

It lives in Hydra's plugin namespace (``hydra_plugins``), where Hydra looks for sweepers. (No
``from __future__ import annotations``: Hydra runs the module before it is in sys.modules, where a
dataclass with string annotations cannot be made.)"""

import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper, BasicSweeperConf
from hydra.core.config_store import ConfigStore
from hydra.core.utils import JobReturn, JobStatus


@dataclass
class RunAllSweeperConf(BasicSweeperConf):
    _target_: str = "hydra_plugins.diffusemix_bench_sweeper.RunAllSweeper"


ConfigStore.instance().store(
    group="hydra/sweeper", name="run_all", node=RunAllSweeperConf, provider="diffusemix_bench"
)


def _is_user_error(job: JobReturn) -> bool:
    from diffusemix_bench.errors import SweepJobError

    return job.status == JobStatus.FAILED and isinstance(job._return_value, SweepJobError)


def _job_folder(job: JobReturn):
    """The job's run folder (its output_dir; the working directory where that is unknown)."""
    from omegaconf import OmegaConf

    folder = (
        OmegaConf.select(job.hydra_cfg, "hydra.runtime.output_dir") if job.hydra_cfg is not None else None
    )
    return folder or job.working_dir


class _Recording:
    """The sweeper's launcher, which keeps the jobs a user error stopped and hands the sweeper
    them as ended (so that it goes on to the next batch)."""

    def __init__(self, launcher, failed: list[JobReturn]) -> None:
        self._launcher = launcher
        self._failed = failed
        self.returned = False  # whether the current batch's launch returned (its jobs all ran)

    def launch(self, job_overrides, initial_job_idx):
        self.returned = False
        results = list(self._launcher.launch(job_overrides, initial_job_idx=initial_job_idx))
        self.returned = True
        handed = []
        for job in results:
            if _is_user_error(job):
                self._failed.append(job)
                job = dataclasses.replace(job, status=JobStatus.COMPLETED, _return_value=None)
            handed.append(job)
        return handed

    def __getattr__(self, name):
        return getattr(self._launcher, name)


class RunAllSweeper(BasicSweeper):
    def __init__(self, max_batch_size: int | None, params: dict[str, str] | None = None) -> None:
        super().__init__(max_batch_size=max_batch_size, params=params)
        self.failed: list[JobReturn] = []

    def setup(self, *, hydra_context, task_function, config) -> None:
        super().setup(hydra_context=hydra_context, task_function=task_function, config=config)
        self.launcher = _Recording(self.launcher, self.failed)

    def get_job_batch(self):
        if isinstance(self.launcher, _Recording):
            self.launcher.returned = False  # (a stop before this batch's launch returns: not a crash)
        return super().get_job_batch()

    def sweep(self, arguments):
        try:
            returns = super().sweep(arguments)
        except BaseException:
            if self.failed:  # a job crashed (Hydra reports it next), or the sweep was stopped
                if getattr(self.launcher, "returned", False):  # the batch ran; a job of it crashed
                    left = sum(len(batch) for batch in (self.overrides or [])[self.batch_index :])
                    what = (
                        f"A job crashed (below), so the sweep stopped before its last {left} "
                        f"job{'s' if left != 1 else ''}"
                        if left
                        else "A job crashed too: see below"
                    )
                else:
                    what = "The sweep stopped before its end: see below"
                print(f"{self.failure_line().rstrip('.')}. {what}", file=sys.stderr, flush=True)
            raise
        if self.failed:
            raise SystemExit(self.failure_line(sum(len(batch) for batch in returns)))
        return returns

    def failure_line(self, jobs: int | None = None) -> str:
        """One line for the jobs a user error stopped (out of ``jobs``, when the sweep ended)."""
        from diffusemix_bench.errors import user_message

        n = len(self.failed)
        count = f"{n} of {jobs} jobs" if jobs is not None else f"{n} job{'s' if n > 1 else ''}"
        names = [Path(str(_job_folder(job))).name for job in self.failed]
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        first = user_message(self.failed[0]._return_value).removeprefix("error: ")
        summary = Path(str(self.config.hydra.sweep.dir)) / "summary.csv" if self.config is not None else None
        where = f"; every job's status: {summary}" if summary is not None and summary.is_file() else ""
        return (
            f"error: {count} stopped on an error ({shown}; each one's error is in "
            f"its folder's log){where}. The first's: {first}"
        )
