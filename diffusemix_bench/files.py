"""Files written whole or not at all."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def write_atomic(
    path: str | os.PathLike,
    data: str | bytes | memoryview | Callable[[BinaryIO], object],
    *,
    sync: bool = False,
) -> None:
    """Write ``data`` to ``path`` through a partial file beside it, renamed over it: a full disk or
    a kill leaves the previous file (if any) as it was, never a cut-short one, and the partial
    file is removed. The partial file's name holds the host and process, so processes on several
    machines sharing the folder never write the same one. ``data`` may be a function that writes
    into the open binary file (``lambda f: np.save(f, array)``). ``sync``: fsync before the rename."""
    path = Path(path)
    partial = path.with_name(f".{path.name}.{socket.gethostname()}-{os.getpid()}.part")
    try:
        # Text is written as given (newline=""): the same bytes on every platform.
        with open(partial, "w", newline="") if isinstance(data, str) else open(partial, "wb") as f:
            if callable(data):
                data(f)
            else:
                f.write(data)
            if sync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def folder_problem(folder: str | os.PathLike) -> str | None:
    """Why ``folder`` cannot be made or written (a file where it or a folder above it should be, a
    read-only disk, no permission), or None when it can: checked before work that writes there, so
    the refusal comes first and no work is lost to it."""
    here = Path(folder).expanduser().absolute()
    probe = here
    while not probe.exists() and probe != probe.parent:
        if probe.is_symlink():  # a link to nothing: mkdir would fail on it
            return f"{probe} is a link to {os.readlink(probe)}, which does not exist"
        probe = probe.parent
    if not probe.is_dir():
        return f"{probe} is a file, where {'a folder above ' + str(here) if probe != here else 'a folder'} is expected"
    if not os.access(probe, os.W_OK | os.X_OK):
        try:
            read_only = bool(os.statvfs(probe).f_flag & os.ST_RDONLY)
        except OSError:
            read_only = False
        return f"{probe} is on a read-only disk" if read_only else f"this user may not write in {probe}"
    return None


#: A run folder's earlier attempts: a run that failed or diverged before its first checkpoint, then
#: started anew in the same folder, keeps the attempt's record in ``attempts/<n>/`` (``attempt.json``:
#: status, error, the settings that differ from the new run's; its failure.json and settings.yaml).
ATTEMPTS_DIR = "attempts"


def read_attempts(run_dir: str | os.PathLike) -> list[dict]:
    """The earlier attempts kept in a run folder, oldest first (an unreadable record is said so)."""
    found = []
    for record in Path(run_dir, ATTEMPTS_DIR).glob("*/attempt.json"):
        if not record.parent.name.isdigit():
            continue
        try:
            attempt = json.loads(record.read_text())
        except (OSError, ValueError):
            attempt = None
        if not isinstance(attempt, dict):
            attempt = {"status": "unknown", "error": f"{record} cannot be read"}
        found.append((int(record.parent.name), {"folder": f"{ATTEMPTS_DIR}/{record.parent.name}", **attempt}))
    return [attempt for _, attempt in sorted(found, key=lambda pair: pair[0])]


#: Where a run folder keeps a copy of Hydra's record (``.hydra/*.yaml``) of the command that made
#: its settings: Hydra rewrites ``.hydra/`` before each job of a sweep starts, a refused one too.
COMMAND_RECORD = Path(".hydra") / "run"

#: Beside a run's metrics.json: each robustness measurement a later one replaced or left out, one
#: JSON line each (its entries as metrics.json held them, and when they were set aside).
EARLIER_ROBUSTNESS = "robustness_earlier.jsonl"


def hydra_runtime(run_dir: str | os.PathLike, record: str = ".hydra") -> dict:
    """A run folder's ``.hydra/hydra.yaml`` ``hydra.runtime`` (its choices, the folder it was
    launched from); empty without that record. ``record``: the folder of the record read, in the
    run folder (``.hydra/run``: the copy kept of the command that wrote its settings)."""
    import yaml

    try:
        with open(Path(run_dir) / record / "hydra.yaml") as f:
            runtime = yaml.safe_load(f)["hydra"]["runtime"]
    except (OSError, UnicodeDecodeError, yaml.YAMLError, KeyError, TypeError):
        return {}
    return runtime if isinstance(runtime, dict) else {}


def run_launched_from(run_dir: str | os.PathLike, record: str = ".hydra") -> str | None:
    """The folder the run in ``run_dir`` was launched from (Hydra's ``hydra.runtime.cwd``): the
    folder a relative path among its settings is relative to. None without that record."""
    cwd = hydra_runtime(run_dir, record).get("cwd")
    return str(cwd) if isinstance(cwd, str) and cwd else None


def placed(value, cwd: str | None):
    """A path setting's value as the place it names: a relative path joined to the folder the run
    was launched from (``cwd``), where that is known; anything else as it is."""
    if not isinstance(value, str) or not value or cwd is None:
        return value
    path = Path(value).expanduser()
    return value if path.is_absolute() else os.path.normpath(Path(cwd) / path)


def drawn_with(metrics: dict, attack: str) -> tuple:
    """(batch size, seed, processes) that ``attack``'s number in ``metrics`` (metrics.json, or a
    record set aside) was measured with: PGD's random starts are drawn per batch, from the seed,
    on each process (absent entries: none recorded)."""
    size = metrics.get("robust_batch_size")
    if isinstance(size, dict):  # (attacks kept side by side, measured in batches of other sizes)
        size = size.get(attack)
    return (size, metrics.get("robust_seed"), metrics.get("robust_processes"))


def read_set_aside(run_dir: str | os.PathLike) -> list[dict]:
    """The robustness measurements set aside in a run folder, oldest first (unreadable lines left
    out)."""
    try:  # (bytes that are not text read as such: their lines are left out below)
        lines = Path(run_dir, EARLIER_ROBUSTNESS).read_text(errors="replace").splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            found.append(record)
    return found
