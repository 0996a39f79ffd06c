"""Files written whole or not at all."""

from __future__ import annotations

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
