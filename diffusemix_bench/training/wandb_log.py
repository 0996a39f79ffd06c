"""A wandb logger whose resumed run logs each step of a metric once."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from pytorch_lightning.loggers import WandbLogger
from pytorch_lightning.utilities.rank_zero import rank_zero_only

from ..errors import ConfigError
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
        # Lightning hands wandb.init anonymous=None when it is not asked for; wandb then warns that
        # the (unused) setting has no effect. Left out unless given.
        if self._wandb_init.get("anonymous") is None:
            self._wandb_init.pop("anonymous", None)
        self._steps_file = Path(steps_file)
        earlier = {}
        if resuming and self._steps_file.is_file():
            try:
                earlier = {str(k): int(v) for k, v in json.loads(self._steps_file.read_text()).items()}
            except (ValueError, AttributeError):  # unreadable: log everything, as without the file
                earlier = {}
        self._earlier = earlier
        self._last = dict(earlier)

    @property
    def experiment(self):
        """Lightning's wandb run, started on first use. wandb's refusal to start it (online with no
        API key it can find, an unknown entity or project) is a setting to change, said in one line
        instead of wandb's traceback from inside training's setup."""
        import wandb

        try:
            return WandbLogger.experiment.fget(self)
        except wandb.errors.UsageError as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            if "api key" in reason.lower() or "wandb login" in reason.lower():
                raise ConfigError(
                    f"logger=wandb: wandb could not start this run online ({reason}); log in with `wandb "
                    "login` (or set WANDB_API_KEY), or log to the run folder with logger.mode=offline and "
                    "send it later with `wandb sync <run folder>/wandb/offline-run-*`"
                ) from None
            # Another setting wandb refuses (a project or run name it cannot take, say).
            raise ConfigError(
                f"logger=wandb: wandb refused to start this run: {reason} (see logger.project, "
                "logger.run_name, logger.tags and tags=; or log with logger=csv)"
            ) from None

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
