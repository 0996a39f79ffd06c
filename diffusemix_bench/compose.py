"""Hydra configs composed outside Hydra's own run (the checks before it, report.py): a composition
kept per config folder state, and the config groups a command line can choose."""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: Compositions already made in this process (each costs a large part of a second; the checks
#: before Hydra runs and report.py compose the same command lines again): a composition is a pure
#: function of the config folder's files, the config name and the overrides, so its key holds the
#: folder's fingerprint and an edited file is composed afresh.
_composed: dict[tuple, Any] = {}
_COMPOSED_KEPT = 256


def config_fingerprint(config_dir: str) -> tuple:
    """Every file under ``config_dir`` with its size and modification time."""
    root = Path(config_dir)
    found = []
    for path in root.rglob("*"):
        try:
            if path.is_file():
                stat = path.stat()
                found.append((str(path.relative_to(root)), stat.st_size, stat.st_mtime_ns))
        except OSError:  # a file going away while listed: composed afresh next time
            found.append((str(path), -1, -1))
    return tuple(sorted(found))


def compose_raw(config_dir: str, config_name: str, overrides: list[str], hydra_config: bool = False):
    """Compose ``config_name`` with ``overrides`` (with Hydra's own settings: ``hydra_config``);
    Hydra's own exceptions propagate. A composition asked for again is a copy of the first."""
    import copy

    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    key = (config_dir, config_name, tuple(overrides), hydra_config, config_fingerprint(config_dir))
    if key in _composed:
        return copy.deepcopy(_composed[key])
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=config_dir, version_base="1.3"):
            cfg = compose(config_name, overrides=overrides, return_hydra_config=hydra_config)
    finally:
        GlobalHydra.instance().clear()
    if len(_composed) >= _COMPOSED_KEPT:
        del _composed[next(iter(_composed))]
    _composed[key] = copy.deepcopy(cfg)
    return cfg


def config_groups(config_dir: str, config_name: str) -> set[str]:
    """The config groups ``config_name``'s defaults list chooses (those of the configs it builds on
    included): the groups a command line of its entry point can set with ``group=option``."""
    import yaml

    groups: set[str] = set()
    seen: set[str] = set()
    names = [config_name]
    while names:
        name = names.pop()
        path = Path(config_dir) / f"{name}.yaml"
        if name in seen or not path.is_file():
            continue
        seen.add(name)
        for entry in (yaml.safe_load(path.read_text()) or {}).get("defaults") or []:
            if isinstance(entry, str):
                names.append(entry)
            elif isinstance(entry, dict):
                for key in entry:
                    group = str(key).split()[-1]  # ("optional local", "override hydra/launcher")
                    if "/" not in group:
                        groups.add(group)
    return groups
