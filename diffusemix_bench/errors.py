"""Errors a user causes and fixes with a setting, a file or a command, and the context that reports
them at the entry points with their message alone (no traceback) and exit code 1."""

from __future__ import annotations

import errno
import logging
import os
import re
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from hydra.errors import CompactHydraException

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


class SweepJobError(CompactHydraException):
    """A ``--multirun`` job stopped by a user error (its message is in the job's log): the sweep's
    sweeper (hydra_plugins/diffusemix_bench_sweeper.py) runs the other jobs and names it in the
    sweep's last line."""


def in_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def did_you_mean(word: str, choices, n: int = 3, cutoff: float = 0.6, said_as: str = "{}") -> str:
    """``; did you mean a or b?`` naming the ``choices`` close to ``word`` (up to ``n``), each
    written as ``said_as`` writes it (``dataset={}``); empty where none is close."""
    import difflib

    found = difflib.get_close_matches(str(word), sorted({str(c) for c in choices}), n=n, cutoff=cutoff)
    return f"; did you mean {' or '.join(said_as.format(c) for c in found)}?" if found else ""


def user_message(exc: BaseException) -> str:
    """The error's message; an error raised in a data loader worker arrives with the worker's
    traceback inside its text (PyTorch re-raises it so): only its last line, the message, is kept."""
    return message_of(str(exc))


def message_of(text: str) -> str:
    """``text`` without a data loader worker's traceback: its last line, the message, alone."""
    if "Original Traceback (most recent call last):" in text:
        last = [line for line in text.strip().splitlines() if line.strip()][-1].strip()
        head, sep, rest = last.partition(": ")
        text = rest if sep and head.rsplit(".", 1)[-1].endswith(("Error", "Exception")) else last
    return text


#: The error numbers of a full disk and of an exhausted disk quota.
DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})


def is_disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in DISK_FULL


def free_space(path: str | os.PathLike) -> str:
    """The free space of the disk holding ``path`` (or its nearest existing parent), e.g. '1.2 GB'."""
    here = Path(path).expanduser().absolute()
    while not here.exists() and here != here.parent:
        here = here.parent
    try:
        free = float(shutil.disk_usage(here).free)
    except OSError:
        return "unknown space"
    for unit in ("bytes", "KB", "MB", "GB"):
        if free < 1000 or unit == "GB":
            return f"{free:.0f} {unit}" if unit == "bytes" else f"{free:.1f} {unit}"
        free /= 1000
    return "unknown space"  # pragma: no cover


def disk_full_message(exc: OSError, advice: str) -> str:
    """What a full disk stopped, and the entry point's ``advice`` (where its files go and how the
    work resumes)."""
    where = " and ".join(str(f) for f in (exc.filename, exc.filename2) if f is not None)
    return f"the disk is full ({exc.strerror}{': ' + where if where else ''}). {advice}"


#: The error numbers of a folder or file that cannot be written where a setting put it: a
#: read-only disk, no permission, a file where a folder is expected (or a folder where a file is).
NOT_WRITABLE = frozenset({errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR, errno.EEXIST, errno.EISDIR})


def is_not_writable(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in NOT_WRITABLE


def not_writable_message(exc: OSError) -> str:
    """What could not be used and why, and the fix: another folder, or its permissions."""
    where = " and ".join(str(f) for f in (exc.filename, exc.filename2) if f is not None) or "a file"
    settings = (
        "(the run folder: hydra.run.dir or paths.log_dir; edits and caches: paths.cache_dir; data: "
        "paths.data_dir or dataset.root; a report: out=)"
    )
    if exc.errno in (errno.EISDIR, errno.ENOTDIR):  # (no permission would help)
        what = (
            "it is a folder where a file is expected"
            if exc.errno == errno.EISDIR
            else "a part of that path is a file where a folder is expected"
        )
        return (
            f"cannot use {where}: {what}. A dataset's file or folder: extract the dataset again (or put the "
            f"right one in its place); a file a command writes: point the setting that names its folder {settings} "
            "elsewhere, then run the command again"
        )
    return (
        f"cannot use {where} ({exc.strerror}): point the setting that names its folder {settings} at a folder "
        "this user may read and write, or change its permissions, then run the command again"
    )


def is_interrupt(exc: BaseException) -> bool:
    """Ctrl-C: a KeyboardInterrupt, or the exit Lightning makes of one (code 1, after its
    graceful shutdown)."""
    if isinstance(exc, KeyboardInterrupt):
        return True
    return isinstance(exc, SystemExit) and exc.code == 1 and isinstance(exc.__context__, KeyboardInterrupt)


def is_terminated(exc: BaseException) -> bool:
    """SIGTERM: the exit Lightning makes after the step in progress (its SIGTERMException, an exit
    with no code, which would end the process with status 0)."""
    return isinstance(exc, SystemExit) and type(exc).__name__ == "SIGTERMException"


def is_out_of_memory(exc: BaseException) -> bool:
    """A GPU allocation failed (torch.cuda.OutOfMemoryError; torch is not imported for the check)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(exc, torch.cuda.OutOfMemoryError)


def out_of_memory_message(exc: BaseException, advice: str) -> str:
    """What ran out, in PyTorch's first three sentences (that CUDA ran out, the size asked for, the
    GPU's capacity and free memory; not its allocator notes), and the entry point's ``advice``."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else "CUDA out of memory"
    said = ". ".join(first.split(". ")[:3]).rstrip(".")
    return f"the GPU ran out of memory ({said}). {advice}"


@contextmanager
def user_errors_reported(
    disk_full_advice: Callable[[], str] | None = None,
    out_of_memory_advice: Callable[[], str] | None = None,
    interrupted_advice: Callable[[bool], str] | None = None,
) -> Iterator[None]:
    """A user error ends the run with its message and exit code 1, not a traceback
    (HYDRA_FULL_ERROR=1 shows it). In a ``--multirun`` sweep it fails the job only: the message goes
    to the job's log, the remaining jobs run and the sweep's last line names the failed ones.

    A full disk (or quota) is reported the same way, with ``disk_full_advice()``: the entry point's
    word on where its files go, their disk's free space and how the work resumes; so is a GPU out
    of memory, with ``out_of_memory_advice()``: the settings that need less of it; and Ctrl-C or
    SIGTERM, with ``interrupted_advice(by_sigterm)``: what was kept and how the work goes on."""
    try:
        yield
    except (KeyboardInterrupt, SystemExit) as exc:
        stopped = is_interrupt(exc) or is_terminated(exc)
        if interrupted_advice is None or not stopped or os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        how = (
            "interrupted (Ctrl-C)"
            if is_interrupt(exc)
            else "stopped by SIGTERM (a scheduler's time limit or preemption, or kill)"
        )
        _quiet_worker_exits()
        message = f"{how}: {interrupted_advice(is_terminated(exc))}"
        to_log_files(message, logging.WARNING)  # the run folder's log keeps why a part stopped
        raise SystemExit(message) from None
    except (*USER_ERRORS, OSError, RuntimeError) as exc:
        known = is_disk_full(exc) or is_out_of_memory(exc) or is_not_writable(exc)
        if not isinstance(exc, USER_ERRORS) and not known:
            raise
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        if isinstance(exc, USER_ERRORS):
            message = user_message(exc)
        elif is_not_writable(exc):
            message = not_writable_message(exc)
        elif is_out_of_memory(exc):
            advice = out_of_memory_advice() if out_of_memory_advice is not None else ""
            message = out_of_memory_message(exc, advice or "Run it with smaller batches.")
        else:
            advice = disk_full_advice() if disk_full_advice is not None else ""
            message = disk_full_message(exc, advice or "Free space on that disk and run the command again.")
        _report(message)
    except Exception as exc:
        # Lightning's refusal of a trainer setting (a batch limit that leaves no batch, say) is the
        # user's to fix: its message, with the settings named as train.py takes them.
        if type(exc).__name__ != "MisconfigurationException" or os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        _report(lightning_message(str(exc)))


#: Trainer arguments Lightning's messages name (quoted, or given a value), which train.py takes as
#: ``trainer.<name>``; the same words in prose ("16-bit precision") are left as they are.
_TRAINER_ARGS = re.compile(
    r"(?<![\w.])(limit_(?:train|val|test|predict)_batches|val_check_interval|overfit_batches|"
    r"check_val_every_n_epoch|num_sanity_val_steps|log_every_n_steps|accumulate_grad_batches|"
    r"max_epochs|max_steps|precision|devices|num_nodes|accelerator|strategy)(?=`|=| must)"
)


def trainer_refusal(exc: BaseException) -> ConfigError:
    """Lightning's Trainer refusing the trainer settings it was built with (an unknown strategy or
    accelerator, FSDP on the CPU): its words, with the settings named as the commands take them."""
    return ConfigError(f"Lightning's Trainer refuses these settings: {lightning_message(str(exc))}")


def lightning_message(text: str) -> str:
    """A Lightning misconfiguration's message with its Trainer arguments as train.py's settings
    (``limit_train_batches`` -> ``trainer.limit_train_batches``)."""
    return _TRAINER_ARGS.sub(r"trainer.\1", " ".join(text.split()))


def _report(message: str) -> None:
    if in_multirun():
        log.error("error: %s", message)
        # The remaining jobs run; the sweep's last line names the failed ones and the first's
        # error (the run_all sweeper; Hydra's basic sweeper would report it as this one line).
        raise SweepJobError(f"error: {message}") from None
    _quiet_worker_exits()
    to_log_files(f"error: {message}", logging.ERROR)  # the run folder's log keeps why it stopped
    raise SystemExit(f"error: {message}") from None


def _quiet_worker_exits() -> None:
    """The process ends: data-loader workers of a loop the error left (validation's, say) are ended
    at exit, and PyTorch's SIGCHLD handler would report each as a traceback after the message."""
    import signal

    if hasattr(signal, "SIGCHLD"):
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)


def to_log_files(message: str, level: int = logging.INFO) -> None:
    """Write ``message`` to the log files of the logging set-up alone (Hydra's ``<task>.log`` in the
    run folder), not to the console, which shows it already."""
    root = logging.getLogger()
    files = [h for h in root.handlers if isinstance(h, logging.FileHandler) and level >= h.level]
    if files:
        record = root.makeRecord("diffusemix_bench", level, "", 0, message.strip(), None, None)
        for handler in files:
            handler.handle(record)
