"""Errors a user causes and fixes with a setting, a file or a command, and the context that reports
them at the entry points with their message alone (no traceback) and exit code 1."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)


class UserError(Exception):
    """The common type of every error a user causes: its message names the setting or file, what was
    expected and the fix. The entry points catch it (:func:`user_errors_reported`)."""


class ConfigError(UserError, ValueError):
    """A configuration value is invalid; the message names the key and the valid choices."""


class PretrainedWeightsError(UserError, RuntimeError):
    """Published weights were asked for (``model.pretrained=true``) but cannot be had."""


# A missing file the user named (a path setting) is theirs to fix too.
USER_ERRORS = (UserError, FileNotFoundError)


def _in_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def user_message(exc: BaseException) -> str:
    """The error's message; an error raised in a data loader worker arrives with the worker's
    traceback inside its text (PyTorch re-raises it so): only its last line, the message, is kept."""
    text = str(exc)
    if "Original Traceback (most recent call last):" in text:
        last = [line for line in text.strip().splitlines() if line.strip()][-1].strip()
        head, sep, rest = last.partition(": ")
        text = rest if sep and head.rsplit(".", 1)[-1].endswith(("Error", "Exception")) else last
    return text


@contextmanager
def user_errors_reported() -> Iterator[None]:
    """A user error ends the run with its message and exit code 1, not a traceback
    (HYDRA_FULL_ERROR=1 shows it). In a ``--multirun`` sweep it fails the job only: the message goes
    to the job's log, Hydra runs the remaining jobs and then reports the failed ones."""
    try:
        yield
    except USER_ERRORS as exc:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        if _in_multirun():
            log.error("error: %s", user_message(exc))
            raise
        raise SystemExit(f"error: {user_message(exc)}") from None
