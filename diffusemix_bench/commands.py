"""The project's commands as a message shows them, so that they run when pasted where the user is."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]


def script_command(script: str) -> str:
    """``<python> <script>`` for one of the project's scripts (``generate.py``, ``train.py``, ...):
    ``python`` where that name runs this very interpreter (an activated environment, ``uv run``),
    else this interpreter's path (``.venv/bin/python`` from the project folder); the script's path
    from the working directory (``generate.py`` in the project folder), else absolute."""
    which = shutil.which("python")
    here = Path.cwd()
    if which is not None and os.path.abspath(which) == os.path.abspath(sys.executable):
        python = "python"
    else:
        python = _from(here, Path(os.path.abspath(sys.executable)))
    return f"{shlex.quote(python)} {shlex.quote(_from(here, PROJECT / script))}"


def _from(here: Path, path: Path) -> str:
    """``path`` relative to ``here`` when it lies below it, else absolute."""
    return path.relative_to(here).as_posix() if path.is_relative_to(here) else str(path)


def quoted_arg(key: str, value: str) -> str:
    """``key=value`` as a shell passes it to Hydra: a value that Hydra's override grammar would
    split or refuse (a sweep job's folder ``0_aug=none,seed=0``) is quoted for Hydra, then for the
    shell. Hydra's grammar reads unquoted letters of ASCII alone (``/data/josé`` is quoted)."""
    if re.fullmatch(r"[A-Za-z0-9_./:+~@-]+", value) and not value.startswith("~"):
        return f"{key}={value}"
    return hydra_quoted(key, value)


def hydra_quoted(key: str, value: str) -> str:
    """``key=value`` with the value quoted for Hydra's override grammar, then for the shell:
    ``'hydra.run.dir="/runs/0_aug=none,seed=0"'``."""
    quote = "'" if '"' in value else '"'
    return shlex.quote(f"{key}={quote}{value}{quote}")


def sweep_command() -> str | None:
    """In a ``--multirun`` job: the sweep's command that goes on with it (its own overrides and
    Hydra overrides, a launcher say, from the sweep folder's multirun.yaml, with ``ckpt_path=auto``
    and the sweep folder), or None outside a sweep. Finished jobs then have nothing to do, the
    others resume or run."""

    import yaml

    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
            return None
        sweep = Path(str(HydraConfig.get().sweep.dir)).expanduser()
        saved = (yaml.safe_load((sweep / "multirun.yaml").read_text()) or {})["hydra"]["overrides"]
        given = [*(saved.get("hydra") or []), *(saved.get("task") or [])]
    except Exception:  # no or a damaged multirun.yaml: the advice falls back to the job's own
        return None
    return _train_command(["--multirun"], given, "ckpt_path=auto", "hydra.sweep.dir", sweep)


def resume_command(run_dir: Path) -> str | None:
    """In a single run Hydra started: its own command (the overrides it was given, Hydra's too)
    with ``ckpt_path=last`` and the run folder, the command that resumes it; None elsewhere (an API
    call: the advice describes the command instead)."""

    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        if not HydraConfig.initialized() or HydraConfig.get().mode == RunMode.MULTIRUN:
            return None
        overrides = HydraConfig.get().overrides
        given = [*(overrides.get("hydra") or []), *(overrides.get("task") or [])]
    except Exception:
        return None
    return _train_command([], given, "ckpt_path=last", "hydra.run.dir", run_dir)


def saved_resume_command(run_dir: Path, resume: str = "ckpt_path=last") -> str | None:
    """The command that resumes the run in ``run_dir`` with its own settings: the overrides Hydra
    recorded for the command that made them (the run's copy of that record, ``.hydra/run/``: a
    sweep launched again with other settings has rewritten ``.hydra/`` by the time its job reads
    it; else ``.hydra/overrides.yaml``), ``resume`` and the folder; None where no readable record
    is there."""
    import yaml

    from .files import COMMAND_RECORD, run_launched_from

    kept = Path(run_dir) / COMMAND_RECORD / "overrides.yaml"
    record = str(COMMAND_RECORD) if kept.is_file() else ".hydra"
    try:
        given = yaml.safe_load((Path(run_dir) / record / "overrides.yaml").read_text())
    except (OSError, yaml.YAMLError):
        return None
    if not isinstance(given, list) or not all(isinstance(o, str) for o in given):
        return None
    cwd = run_launched_from(run_dir, record)  # (its relative paths are relative to where it was launched)
    if cwd is not None and os.path.abspath(cwd) != os.path.abspath(os.getcwd()):
        given = [placed_override(o, cwd) for o in given]
    return _train_command([], given, resume, "hydra.run.dir", Path(run_dir))


#: The settings that name a file or folder: a relative one is relative to where its command ran.
PATH_SETTINGS = frozenset(
    (
        "paths.data_dir",
        "paths.log_dir",
        "paths.cache_dir",
        "dataset.root",
        "generator.edits_dir",
        "generator.local_dir",
        "fractals.dir",
        "fractals.cache_dir",
        "model.weights",
    )
)

_PLAIN = re.compile(r"[A-Za-z0-9_./:+@-]+")  # (as Hydra reads bare: ASCII)


def placed_override(override: str, cwd: str) -> str:
    """``override`` as it reads from anywhere: a relative path given to a setting of
    ``PATH_SETTINGS`` joined to ``cwd``, the folder its command was launched from
    (``dataset.root=data`` -> ``dataset.root=/home/me/project/data``); any other as it is."""
    head = override[: len(override) - len(override.lstrip("+~"))]
    key, eq, value = override[len(head) :].partition("=")
    if not eq or key not in PATH_SETTINGS:
        return override
    quote = value[:1] if len(value) >= 2 and value[0] in "'\"" and value[-1] == value[0] else ""
    bare = value[1:-1] if quote else value
    if not bare or bare == "null" or bare.startswith("~") or os.path.isabs(bare):
        return override
    if "${" in bare or (not quote and not _PLAIN.fullmatch(bare)):  # (an interpolation, a sweep)
        return override
    from .files import placed

    where = str(placed(bare, cwd))
    if _PLAIN.fullmatch(where):
        return f"{head}{key}={where}"
    mark = "'" if '"' in where else '"'
    return f"{head}{key}={mark}{where}{mark}"


def _train_command(flags: list[str], given: list, resume: str, folder_key: str, folder: Path) -> str:
    """``train.py`` with ``given`` overrides (those set here, and Hydra's mode, left out), then
    ``resume`` (``ckpt_path=...``) and ``folder_key=folder``."""
    import shlex

    own = ("ckpt_path=", f"{folder_key}=", "hydra.mode=")
    kept = [str(o) for o in given if not str(o).lstrip("+~").startswith(own)]
    # A setting given twice (a resume's own value after the first command's): the last one, as
    # Hydra applies it.
    key = [o.lstrip("+~").partition("=")[0] for o in kept]
    first = {}  # each key's first form: "+foo=1" adds a setting the schema lacks, "foo=2" then sets it
    for i, o in enumerate(kept):
        first.setdefault(key[i], o[: len(o) - len(o.lstrip("+~"))])
    kept = [
        first[key[i]] + o.lstrip("+~") if first[key[i]] == "+" else o
        for i, o in enumerate(kept)
        if "=" not in o or key[i] not in key[i + 1 :]
    ]
    return " ".join(
        [
            script_command("train.py"),
            *flags,
            *(shlex.quote(o) for o in kept),
            resume,
            quoted_arg(folder_key, str(folder)),
        ]
    )
