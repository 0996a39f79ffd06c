"""The run's ``logs/metrics.csv`` through a resume: Lightning's CSV writer deletes an existing
``metrics.csv`` when it starts, so a resumed run would keep only the rows of its own part. Here a
resumed run keeps the rows the interrupted run logged before its checkpoint's step and drops those
of the steps it trains again (they are logged anew): the file reads as the uninterrupted run's."""

from __future__ import annotations

import csv
import io
import os

from lightning_fabric.loggers.logger import rank_zero_experiment
from pytorch_lightning.loggers import CSVLogger
from pytorch_lightning.loggers.csv_logs import ExperimentWriter

from ..files import write_atomic


class _ResumedWriter(ExperimentWriter):
    def __init__(self, log_dir: str, resume_step: int) -> None:
        self._resume_step = resume_step
        super().__init__(log_dir=log_dir)

    def _check_log_dir_exists(self) -> None:
        if not os.path.isfile(self.metrics_file_path):
            return
        with open(self.metrics_file_path, newline="") as f:
            reader = csv.DictReader(f)
            fields = sorted(reader.fieldnames or [])
            rows = [r for r in reader if not _from_step(r, self._resume_step)]
        out = io.StringIO(newline="")
        writer = csv.DictWriter(out, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
        write_atomic(self.metrics_file_path, out.getvalue())
        # New rows append under this header; a key it lacks rewrites the file with both (Lightning).
        self.metrics_keys = fields


def _from_step(row: dict, step: int) -> bool:
    """Whether ``row`` was logged at ``step`` or later (a row without a step is kept)."""
    try:
        return int(float(row.get("step") or "")) >= step
    except ValueError:
        return False


class ResumableCSVLogger(CSVLogger):
    """Lightning's CSVLogger; with ``resume_step`` (the step of the checkpoint a run resumes from)
    the rows logged before that step are kept and those from it on dropped."""

    def __init__(self, *args, resume_step: int | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._resume_step = resume_step

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None and self._resume_step is not None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _ResumedWriter(self.log_dir, self._resume_step)
        return super().experiment
