"""The edit stores under an edits folder, listed: what each holds, the settings that made it (as
the settings that pick it again) and the time spent on it. ``stores.py`` prints this."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..config import GeneratorConfig
from ..errors import ConfigError, did_you_mean
from ..progress import duration_text
from .store import EditStore, _as_setting, settings_hash

USAGE = """python stores.py [paths.cache_dir=<folder> | generator.edits_dir=<folder>] [dataset=<name>] [disk=true]

Lists the edit stores generate.py made: one line per store (dataset/split, the folder's settings
hash, the edits recorded, their prompts, the settings that differ from the defaults, as the
settings that pick the store in train.py and generate.py, and the device time spent generating).
  paths.cache_dir / generator.edits_dir   where the stores are, as given to train.py
                                          (default: generator.edits_dir of the default settings)
  dataset=<name>                          only that dataset's stores
  disk=true                               add each store's size on disk (walks every file)
A store is a folder of its own: deleting it deletes those edits and nothing else (while no
generate.py writes to it)."""

#: The settings every store records that are the defaults' (left out of its line unless they differ).
_SHOWN_FIRST = ("generator", "model", "steps", "resolution", "store_size", "format", "batching")


def default_edits_dir(config_dir: str | None) -> Path:
    """``generator.edits_dir`` of the default settings (a machine's conf/local/default.yaml and
    ``DIFFUSEMIX_CACHE`` honoured); an empty one is refused, as train.py refuses it."""
    from omegaconf import OmegaConf

    from ..config import PathsConfig

    if config_dir is not None:
        cfg = _compose(config_dir, [])
    else:
        cfg = OmegaConf.create(
            {
                "paths": {"cache_dir": PathsConfig.cache_dir},
                "generator": {"edits_dir": GeneratorConfig.edits_dir},
            }
        )
    for key in ("paths.cache_dir", "generator.edits_dir"):
        if not str(OmegaConf.select(cfg, key) or "").strip():
            raise ConfigError(
                f"{key} is empty in the default settings: give the edits folder, paths.cache_dir=<folder>"
            )
    return Path(str(cfg.generator.edits_dir)).expanduser().absolute()


def _compose(config_dir: str, overrides: list[str]):
    """train.py's settings with ``overrides`` (no Hydra run)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from ..config import register_configs

    register_configs()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
            return compose("config", overrides=overrides)
    finally:
        GlobalHydra.instance().clear()


_DEFAULTS: dict[tuple, dict] = {}  # (config folder, dataset, split, generator preset) -> settings


def default_settings(
    config_dir: str | None, dataset: str, split: str, generator: str | None = None
) -> dict[str, Any] | None:
    """The store settings train.py's defaults give ``dataset``/``split`` (None without a config
    folder, or for a dataset the configs do not name); with ``generator``, those of that
    generator's preset (``generator=tiny``: its own resolution and batch size)."""
    if config_dir is None or not (Path(config_dir) / "dataset" / f"{dataset}.yaml").is_file():
        return None
    if generator is not None and not (Path(config_dir) / "generator" / f"{generator}.yaml").is_file():
        generator = None
    key = (config_dir, dataset, split, generator)
    if key not in _DEFAULTS:
        from .store import store_settings

        overrides = [f"dataset={dataset}"] + ([f"generator={generator}"] if generator else [])
        _DEFAULTS[key] = store_settings(_compose(config_dir, overrides), dataset, split)
    return _DEFAULTS[key]


def list_stores(edits_dir: str | Path, dataset: str | None = None, disk: bool = False) -> list[dict]:
    """One record per store folder under ``edits_dir`` (``<dataset>/<split>/<hash>``), in order."""
    root = Path(edits_dir).expanduser()
    if not root.is_dir():
        # (paths.cache_dir given the edits folder itself: the stores are in the folder above)
        above = ""
        if root.parent.is_dir() and _store_files(root.parent, "*/*/*/settings.json"):
            above = f"; {root.parent} holds edit stores itself: give generator.edits_dir={root.parent}"
        elif root.parent.is_dir() and (near := inside_the_stores(root.parent)):
            above = f"; {near}"  # (a folder below the edits folder given as paths.cache_dir)
        raise ConfigError(
            f"{root}: no such folder of edit stores"
            + (
                above
                or "; give the folder generate.py wrote to (paths.cache_dir=<folder> or "
                "generator.edits_dir=<folder>, as given to generate.py)"
            )
        )
    found = []
    for folder in _store_folders(root):
        settings_file = folder / "settings.json"
        name, split = folder.parent.parent.name, folder.parent.name
        if dataset is not None and name != dataset:
            continue
        if not settings_file.exists():
            found.append(
                {
                    "folder": folder,
                    "dataset": name,
                    "split": split,
                    "problem": (
                        "settings.json missing, its edits still there (generate.py with the settings "
                        "that made them writes it again: the folder's name is their hash)"
                    ),
                }
            )
            continue
        try:
            settings = json.loads(settings_file.read_text())
            if not isinstance(settings, dict):
                raise ValueError(f"it holds a {type(settings).__name__}, not the settings' table")
        except (OSError, ValueError) as exc:
            found.append(
                {
                    "folder": folder,
                    "dataset": name,
                    "split": split,
                    "problem": f"settings.json unreadable ({exc})",
                }
            )
            continue
        if settings_hash(settings) != folder.name:  # (a store's folder is named by its settings' hash)
            found.append(
                {
                    "folder": folder,
                    "dataset": name,
                    "split": split,
                    "problem": (
                        "settings.json was edited (its settings do not hash to the folder's name, so they are not "
                        "the ones its edits were made with); generate.py with the settings that made them writes "
                        "it again"
                    ),
                }
            )
            continue
        store = EditStore(folder, [], settings)
        per_prompt = store.recorded_per_prompt()
        record = {
            "folder": folder,
            "dataset": name,
            "split": split,
            "settings": settings,
            "edits": sum(per_prompt.values()),
            "prompts": sorted(per_prompt),
            "images": max(per_prompt.values(), default=0),
            # (edits/ holds files the record of finished edits, manifest/, no longer lists)
            "manifest_gone": not (folder / "manifest").is_dir() and _holds_a_file(folder / "edits"),
        }
        runs = store.generation_runs()
        # The prompts generate.py was asked for (its generator.num_prompts), where its runs say.
        asked = [r["prompts"] for r in runs if r.get("prompts")]
        record["asked_prompts"] = max((len(p) for p in asked), default=None)
        # Each prompt named as generator.prompts lists it, where a run recorded its text.
        texts = {i: t for r in runs for i, t in r.get("prompt_texts", {}).items()}
        record["prompts"] = [_named(texts.get(i, i)) for i in record["prompts"]]
        record["device_seconds"] = sum(r["device_seconds"] for r in runs) if runs else None
        # (hours spent by the store these edits were converted from: said of it)
        record["converted_seconds"] = {}
        for r in runs:
            if r.get("converted_from"):
                was = record["converted_seconds"].get(r["converted_from"], 0.0)
                record["converted_seconds"][r["converted_from"]] = was + r["device_seconds"]
        record["last_run"] = next((r["time"] for r in reversed(runs) if r["time"]), None)
        # (the last generate.py logged stopped part-way: Ctrl-C, SIGTERM or an error after edits)
        record["stopped"] = (
            bool(runs) and runs[-1].get("stopped", False) and not runs[-1].get("converted_from")
        )
        if disk:
            record["bytes"] = _size(folder)
            record["gone"], record["unrecorded"] = store.checked_on_disk()
        found.append(record)
    return found


def _store_folders(root: Path) -> list[Path]:
    """The store folders under an edits folder (``<dataset>/<split>/<hash>``): each with its
    settings.json (see _store_files), and each whose settings.json is gone but whose edits or
    record of them is still there."""
    folders = {path.parent for path in _store_files(root, "*/*/*/settings.json")}
    for held in ("edits", "manifest"):
        folders |= {
            path.parent for path in root.glob(f"*/*/*/{held}") if not (path.parent / "settings.json").exists()
        }
    return sorted(folders)


def _store_files(root: Path, pattern: str) -> list[Path]:
    """The settings.json files matching ``pattern`` under ``root`` that are an edit store's (or
    unreadable, listed as a damaged store): a table of settings that names no generator is another
    folder's (a fractal bank's, beside the edits in a cache folder), not a store."""
    found = []
    for path in sorted(root.glob(pattern)):
        try:
            settings = json.loads(path.read_text())
        except (OSError, ValueError):
            settings = None
        if not (isinstance(settings, dict) and "generator" not in settings):
            found.append(path)
    return found


def where_stores_are(edits_dir: str | Path, dataset: str | None = None) -> str:
    """Why no store was listed under ``edits_dir`` when stores are near: another dataset's name
    (``dataset=`` misspelt), or the folder given one level above or below the edits folder (a
    cache folder given as generator.edits_dir, or one dataset's folder). Empty when none is near."""
    root = Path(edits_dir).expanduser()
    held = sorted({p.parent.parent.parent.name for p in _store_files(root, "*/*/*/settings.json")})
    if dataset is not None and held:
        return (
            f"no store of dataset {dataset} there{did_you_mean(dataset, held, n=1, said_as='dataset={}')} "
            f"(stores are held for: {', '.join(held)})"
        )
    if held:
        return ""
    below = sorted(
        {p.parents[3] for depth in (4, 5) for p in _store_files(root, "*/" * depth + "settings.json")}
    )
    if below:  # (a cache folder given as the edits folder: its stores are in <cache>/edits)
        more = f" (and {len(below) - 1} more folder(s))" if len(below) > 1 else ""
        also = f" (or paths.cache_dir={root})" if below[0] == root / "edits" else ""
        return f"stores are further down, in {below[0]}{more}: give generator.edits_dir={below[0]}{also}"
    return inside_the_stores(root)


def inside_the_stores(edits_dir: str | Path) -> str:
    """Where ``edits_dir`` is a folder inside a folder of stores (one dataset's, one split's, one
    store), what it is and the setting that gives the folder of stores; else empty."""
    root = Path(edits_dir).expanduser()
    if _store_files(root, "*/*/settings.json"):  # (one dataset's folder: <edits>/<dataset>)
        return (
            f"{root} is one dataset's folder of stores: give generator.edits_dir={root.parent} "
            f"dataset={root.name}"
        )
    # One split's folder (<edits>/<dataset>/<split>), or one store (the folder generate.py names).
    at = root.absolute()
    if _store_files(root, "*/settings.json"):
        return f"{root} is one split's folder of stores: give generator.edits_dir={at.parents[1]} dataset={at.parent.name}"
    if _store_files(root, "settings.json") and len(at.parents) > 2:
        return (
            f"{root} is one edit store: give generator.edits_dir={at.parents[2]} dataset={at.parents[1].name}"
        )
    return ""


def _named(prompt: str) -> str:
    """A prompt in a list of prompts: in quotes where its own commas would split it."""
    return f'"{prompt}"' if "," in prompt else prompt


def _holds_a_file(folder: Path) -> bool:
    """Whether ``folder`` holds a file anywhere below it (its walk stops at the first)."""
    return any(files for _, _, files in os.walk(folder))


def _size(folder: Path) -> int:
    total = 0
    for top, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(top, name)).st_size
            except OSError:
                continue
    return total


def _bytes_said(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def _rank(key: str) -> int:
    return _SHOWN_FIRST.index(key) if key in _SHOWN_FIRST else len(_SHOWN_FIRST)


def _listed_setting(key: str, value: Any, default: Any, settings: dict) -> str:
    """A store's setting as train.py's setting that gives it (empty: implied by another shown)."""
    if key == "model" and settings.get("generator") == "tiny":
        return ""  # (generator=tiny names its weights)
    if key == "store_size" and value is not None:
        # store_size=auto stores at dataset.resize: the size settings give both commands the store.
        return f"dataset.resize={value} (its edits' size; with dataset.image_size to match)"
    if key == "store_size":
        return (
            "generator.store_size=null (edits at their originals' size, as auto makes them where "
            "dataset.train_transform does not resize first)"
        )
    if key == "store_size_rule" and value is None:
        return ""  # (no rule where the edits keep their originals' size: said by store_size)
    return _as_setting(key, value, default)


def describe(record: dict, config_dir: str | None = None) -> str:
    """One store as a line: where, what it holds, the settings apart from the defaults', the time."""
    head = f"{record['dataset']}/{record['split']} {record['folder'].name}"
    if "problem" in record:
        return f"{head}: {record['problem']}"
    settings = record["settings"]
    if record["edits"] == 0 and record.get("manifest_gone"):
        holds = (
            "no edit recorded: its manifest/ folder (the record of finished edits) is gone while edits/ "
            "holds files (generate.py with these settings records each edit file it finds whole and "
            "makes the rest)"
        )
    elif record["edits"] == 0:
        holds = "no edit recorded (a generate.py stopped before its first, or one still starting)"
    else:
        prompts = len(record["prompts"])
        # (a store some of whose prompts hold fewer images: one stopped part-way, or with failed edits)
        short = record["edits"] < record["images"] * prompts
        why = (
            "; not every prompt has every image: a generate.py stopped part-way, or edits that failed "
            "(its command, run again, makes them)"
        )
        images = f"{record['images']} image{'' if record['images'] == 1 else 's'}"
        holds = (
            f"{record['edits']} edits ({'up to ' if short else ''}{images} x {prompts} prompt{'' if prompts == 1 else 's'}: "
            f"{', '.join(record['prompts'][:4])}{', ...' if prompts > 4 else ''}{why if short else ''})"
        )
    if record.get("stopped") and record["edits"]:
        holds += "; its last generate.py stopped part-way (its command, run again, goes on)"
    # With disk=true: recorded edits whose file is gone or cut short, and files no record lists.
    if record.get("gone"):
        holds += (
            f"; {record['gone']} of its recorded edits {'is' if record['gone'] == 1 else 'are'} missing or "
            "damaged on disk (generate.py with these settings makes them again)"
        )
    if record.get("unrecorded") and not record.get("manifest_gone"):
        holds += (
            f"; {record['unrecorded']} edit file{' is' if record['unrecorded'] == 1 else 's are'} not "
            "recorded as finished (generate.py with these settings records each that is whole and makes "
            "the rest)"
        )
    defaults = default_settings(config_dir, record["dataset"], record["split"])
    if defaults is None:  # (an image folder of the user's own: its main settings, all named)
        keys = [k for k in _SHOWN_FIRST if k in settings]
        defaults = {}
    else:
        keys = sorted(set(settings) | set(defaults), key=lambda k: (_rank(k), k))
        # Another generator preset: the rest beside that preset's own values (generator=tiny
        # names its resolution and batch size).
        preset = settings.get("generator")
        if isinstance(preset, str) and preset != defaults.get("generator"):
            own = default_settings(config_dir, record["dataset"], record["split"], preset)
            defaults = {**(own or defaults), "generator": defaults.get("generator")}
    differ = [
        _listed_setting(k, settings.get(k), defaults.get(k), settings)
        for k in keys
        if k not in ("dataset", "split") and settings.get(k) != defaults.get(k)
    ]
    differ = [said for said in differ if said]
    # Training asks for every prompt by default: fewer asked of generate.py (as its runs record),
    # or, where no run says, fewer held by a store that has each of their images.
    shown = record.get("asked_prompts")
    if shown is None and record["edits"] == record["images"] * len(record["prompts"]):
        shown = len(record["prompts"])
    if shown and shown < len(GeneratorConfig().prompts):
        differ.append(f"generator.num_prompts={shown}")
    picked = ", ".join(differ) if differ else "the default settings"
    extra = []
    if record.get("device_seconds") is not None:
        said = f"generation {duration_text(record['device_seconds'])} of device time"
        converted = record.get("converted_seconds") or {}
        for fmt, seconds in sorted(converted.items()):
            whole = len(converted) == 1 and abs(seconds - record["device_seconds"]) < 1e-9
            share = "" if whole else f"{duration_text(seconds)} of it "
            said += f", {share}spent by a {fmt} store these edits were converted from"
        extra.append(said)
    if record.get("last_run"):
        extra.append(f"last run {record['last_run']}")
    if "bytes" in record:
        extra.append(_bytes_said(record["bytes"]))
    return f"{head}: {holds}; {picked}" + (f" [{'; '.join(extra)}]" if extra else "")


def run_stores(argv: list[str], config_dir: str | None = None) -> None:
    """stores.py's entry: the listing, or one message for a bad setting."""
    from ..errors import user_errors_reported

    if any(a in ("-h", "--help") for a in argv):
        print(USAGE)
        return
    with user_errors_reported():
        given: dict[str, str] = {}
        for arg in argv:
            key, eq, value = arg.partition("=")
            if not eq or key not in ("paths.cache_dir", "generator.edits_dir", "dataset", "disk"):
                raise ConfigError(
                    f"{arg}: stores.py takes paths.cache_dir=, generator.edits_dir=, dataset= and disk=true "
                    "(python stores.py --help says more)"
                )
            if not value.strip():
                raise ConfigError(f"{key} is empty: give a value ({key}=<value>), or leave it out")
            given[key] = value
        if given.get("disk", "false") not in ("true", "false"):
            raise ConfigError(f"disk={given['disk']}: give disk=true or disk=false")
        if "generator.edits_dir" in given:
            edits_dir = Path(given["generator.edits_dir"]).expanduser().absolute()
        elif "paths.cache_dir" in given:
            edits_dir = Path(given["paths.cache_dir"]).expanduser().absolute() / "edits"
        else:
            edits_dir = default_edits_dir(config_dir)
        records = list_stores(edits_dir, given.get("dataset"), disk=given.get("disk") == "true")
        which = f" of {given['dataset']}" if "dataset" in given else ""
        lines = [f"  {describe(record, config_dir)}" for record in records]
        name, hint = given.get("dataset"), ""
        if not records:
            # Stores near, the folder given not theirs (a level too high or too low): refused.
            if folder_hint := where_stores_are(edits_dir):
                raise ConfigError(f"0 edit stores{which} under {edits_dir}: {folder_hint}")
            hint = where_stores_are(edits_dir, name) if name is not None else ""
            if (
                name is not None
                and config_dir is not None
                and not (Path(config_dir) / "dataset" / f"{name}.yaml").is_file()
            ):
                # (no dataset of that name: misspelt; a dataset with no store yet is listed as none)
                known = sorted(p.stem for p in (Path(config_dir) / "dataset").glob("*.yaml"))
                meant = did_you_mean(name, known, n=1, cutoff=0.5, said_as="dataset={}")
                raise ConfigError(
                    f"0 edit stores{which} under {edits_dir}: {hint}; {name} is no dataset of the configs "
                    f"either (datasets: {', '.join(known)})"
                    if hint
                    else f"dataset={name}: no such dataset{meant} (datasets: {', '.join(known)})"
                )
    print(
        f"{len(records)} edit store{'' if len(records) == 1 else 's'}{which} under {edits_dir}"
        + (":" if records else f": {hint}" if hint else "")
    )
    for line in lines:
        print(line)
