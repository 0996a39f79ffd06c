"""A wandb logger whose resumed run logs each step of a metric once."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from pytorch_lightning.loggers import WandbLogger
from pytorch_lightning.utilities.rank_zero import rank_zero_only

from ..files import write_atomic


class ResumableWandbLogger(WandbLogger):
    """Lightning's wandb logger, which keeps in ``steps_file`` the last step it logged of each
    metric. A resumed run goes on in the interrupted run's wandb run (wandb cannot take back what
    was logged); the steps it trains again, between its checkpoint and where the interrupted part
    stopped, are trained as before and not logged a second time: each metric is logged from the
    step after the last one the earlier parts logged. (CSV and TensorBoard logs are cut back to the
    checkpoint's step instead.)"""

    def __init__(self, *args, steps_file: Path, resuming: bool, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._steps_file = Path(steps_file)
        earlier = {}
        if resuming and self._steps_file.is_file():
            try:
                earlier = {str(k): int(v) for k, v in json.loads(self._steps_file.read_text()).items()}
            except (ValueError, AttributeError):  # unreadable: log everything, as without the file
                earlier = {}
        self._earlier = earlier
        self._last = dict(earlier)

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        if step is None:
            super().log_metrics(metrics, step)
            return
        fresh = {k: v for k, v in metrics.items() if step > self._earlier.get(k, -1)}
        if not fresh:
            return
        super().log_metrics(fresh, step)
        self._last.update({k: max(step, self._last.get(k, -1)) for k in fresh})
        write_atomic(self._steps_file, json.dumps(self._last, sort_keys=True) + "\n")
