"""What ``evaluate.py`` is asked, checked before the training stack is imported: a checkpoint and
its run folder, and an attack."""

from __future__ import annotations

import json
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from ..commands import hydra_quoted
from ..config import EvalConfig, check_budget, check_fields, check_pgd_step
from ..errors import ConfigError
from ..files import COMMAND_RECORD, write_atomic


def check_evaluate_settings(cfg: DictConfig) -> None:
    """evaluate.py's own settings: none it does not have (``+eval.fgsmm=true`` adds a key Hydra
    lets through), and an accelerator it can use."""
    from dataclasses import fields

    from ..config import EvaluateConfig, no_such_setting

    for node, schema, section in ((cfg, EvaluateConfig, ""), (cfg.eval, EvalConfig, "eval.")):
        names = {f.name for f in fields(schema)}
        unknown = sorted(set(node.keys()) - names - {"hydra"})
        if unknown:
            where = f"'{section[:-1]}'" if section else "evaluate.py"
            raise ConfigError(no_such_setting(f"{section}{unknown[0]}", where, names - {"eval", "task_name"}))
    accelerator = str(cfg.accelerator)
    choices = next(f for f in fields(EvaluateConfig) if f.name == "accelerator").metadata["choices"]
    if accelerator not in choices:
        raise ConfigError(f"accelerator must be one of {', '.join(choices)}; got '{accelerator}'")
    if accelerator == "gpu":
        import torch

        if not torch.cuda.is_available():
            raise ConfigError(
                "accelerator=gpu but this machine has no CUDA GPU; use accelerator=cpu (or auto)"
            )


def check_request(cfg: DictConfig) -> tuple[Path, Path]:
    """(run folder, checkpoint) of ``evaluate.py``'s ``ckpt=``, with at least one attack asked for
    and usable attack settings; else ConfigError saying what to give."""
    attacks = bool(cfg.eval.fgsm or cfg.eval.pgd)
    if OmegaConf.is_missing(cfg, "ckpt"):
        raise ConfigError(
            "evaluate.py needs ckpt=<run folder written by train.py, or a .ckpt file in one>"
            + ("" if attacks else " and an attack: eval.fgsm=true and/or eval.pgd=true")
        )
    check_evaluate_settings(cfg)
    if cfg.get("data_dir") is not None and not str(cfg.data_dir).strip():
        raise ConfigError(
            "data_dir is empty: give the folder of the data (data_dir=<folder>), or leave it out"
        )
    check_fields(cfg.eval, EvalConfig, "eval")
    # (a budget or step written as a fraction: refused here, before the attacks' stack loads, and
    # before a missing attack, so that adding one is not met by a second refusal)
    if float(cfg.eval.eps) > 0:
        check_budget("eval.eps", float(cfg.eval.eps), "Table 4's budget")
    if cfg.eval.pgd:
        check_pgd_step(float(cfg.eval.pgd_step_size))
    if not attacks:
        raise ConfigError("nothing to evaluate: add eval.fgsm=true and/or eval.pgd=true")
    run_dir, ckpt = locate_checkpoint(Path(str(cfg.ckpt)))
    from ..files import folder_problem

    problem = folder_problem(run_dir)
    if problem:  # checked before the attack, whose numbers would have nowhere to go
        raise ConfigError(
            f"evaluate.py writes its numbers into the run folder {run_dir} (metrics.json), and {problem}: copy "
            "the run folder where you may write and give the copy as ckpt=<its folder>"
        )
    return run_dir, ckpt


def load_saved_config(path: Path, needs: tuple[str, ...] = ()) -> DictConfig:
    """A run folder's ``config_resolved.yaml`` (the settings its numbers and checkpoints were made
    with); a damaged one, or one without a section of ``needs`` (cut short, or edited by hand), is
    one ConfigError naming the file, not YAML's multi-line report or a key error later."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        said = " ".join(str(exc).split())
        raise ConfigError(
            f"{path} is damaged ({said}): it records the settings the run was trained with, so its "
            "checkpoints cannot be read or resumed without it. Restore it from a copy, or train the run "
            "again in a new folder"
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path} holds no settings (a run folder's config_resolved.yaml is a YAML mapping written by "
            "train.py); restore it from a copy, or train the run again in a new folder"
        )
    absent = [key for key in needs if key not in data]
    if absent:
        raise ConfigError(
            f"{path} is incomplete (no {', '.join(absent)}: cut short, or edited by hand): it records the "
            "settings the run was trained with. Restore it from a copy (the run's .hydra/config.yaml holds the "
            "same settings), or train the run again in a new folder"
        )
    return OmegaConf.create(data)


def run_folder_of(path: Path) -> Path:
    """The run folder of ``ckpt=<run folder, its checkpoints/ folder, or a .ckpt file>``."""
    path = path.expanduser()
    if path.is_dir() and path.name == "checkpoints" and (path.parent / "config_resolved.yaml").is_file():
        return path.parent  # a run's checkpoints/ folder: the run folder meant
    if not path.is_file():
        return path
    return path.parent.parent if path.parent.name == "checkpoints" else path.parent


def load_failure_reason(exc: BaseException) -> str:
    """What torch.load said of a file it could not read: its first sentence, in whole words
    (its advice on weights_only and its documentation left out)."""
    text = " ".join(str(exc).split("Check the documentation")[0].split())
    if "WeightsUnpickler error:" in text:  # (the refusal's cause, after its advice on weights_only)
        text = text.split("WeightsUnpickler error:", 1)[1].strip()
    return text.split(". ")[0].rstrip(".") or type(exc).__name__


def other_checkpoint(ckpt: Path) -> str:
    """The advice after a checkpoint that cannot be read: another of its folder's to give (the
    newest), or that none is left."""
    others = sorted(
        (
            p
            for p in ckpt.parent.glob("*.ckpt")
            if p.name != ckpt.name and p.is_file() and p.stat().st_size > 0
        ),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    if others:
        return f"give another checkpoint of the run (ckpt={others[0]})"
    return f"no other checkpoint is in {ckpt.parent}: train the run again"


def locate_checkpoint(path: Path) -> tuple[Path, Path]:
    """(run folder, checkpoint) for ``ckpt=<run folder or .ckpt file>``: a run folder gives the
    checkpoint its training selected (``best_checkpoint`` in metrics.json), else ``last.ckpt``."""
    path = path.expanduser()
    if not path.exists():
        raise ConfigError(
            f"ckpt={path} does not exist; give a run folder (with config_resolved.yaml) or a .ckpt file in it"
        )
    path = run_folder_of(path) if path.is_dir() else path
    if path.is_file():
        run_dir, ckpt = run_folder_of(path), path
    else:
        run_dir, ckpt = path, None
        if not (run_dir / "config_resolved.yaml").is_file():
            _not_a_run_folder(run_dir)
        metrics = read_metrics(run_dir)
        if metrics is not None:
            best = metrics.get("best_checkpoint")
            if best is not None and not isinstance(best, str):
                raise ConfigError(
                    f"{run_dir / 'metrics.json'} is damaged (best_checkpoint is {best!r}, not a file name); "
                    "give the checkpoint with ckpt=<run folder>/checkpoints/<file>.ckpt"
                )
            if best and (run_dir / "checkpoints" / Path(best).name).is_file():
                ckpt = run_dir / "checkpoints" / Path(best).name
            elif best:
                # Another checkpoint's robustness would sit beside the selected one's test numbers.
                there = sorted((run_dir / "checkpoints").glob("*.ckpt"))
                other = (
                    f"attack another checkpoint by naming it (ckpt={there[-1] if len(there) == 1 else '<run folder>/checkpoints/<file>.ckpt'}"
                    f"{'; there: ' + ', '.join(p.name for p in there) if len(there) > 1 else ''}), whose numbers then "
                    "belong to other weights than the run's test numbers"
                    if there
                    else "train the run again: no other checkpoint is left there to attack instead"
                )
                raise ConfigError(
                    f"the checkpoint the run selected ({Path(best).name}, metrics.json's best_checkpoint) is not in "
                    f"{run_dir / 'checkpoints'}, and its test numbers were measured on it: put it back, or {other}"
                )
        if ckpt is None and (run_dir / "checkpoints" / "last.ckpt").is_file():
            ckpt = run_dir / "checkpoints" / "last.ckpt"
        if ckpt is None:
            raise ConfigError(
                f"no checkpoint in {run_dir / 'checkpoints'}: the run folder holds no selected checkpoint "
                "or last.ckpt; give the .ckpt file with ckpt=<path>"
            )
    if not (run_dir / "config_resolved.yaml").is_file():
        raise ConfigError(
            f"{run_dir} has no config_resolved.yaml, so the model and data of {ckpt.name} are unknown; "
            "give a checkpoint inside a run folder written by train.py"
        )
    return run_dir, ckpt


def _not_a_run_folder(folder: Path) -> None:
    """ckpt= a folder that is no run folder: a sweep's (its jobs are run folders), or another."""
    jobs = sorted(p.parent for p in folder.glob("*/config_resolved.yaml"))
    if jobs:
        shown = ", ".join(p.name for p in jobs[:3]) + (f" and {len(jobs) - 3} more" if len(jobs) > 3 else "")
        raise ConfigError(
            f"ckpt={folder} holds {len(jobs)} run folder(s) ({shown}), a sweep's: evaluate.py attacks one run; "
            f"give one of them, e.g. {hydra_quoted('ckpt', str(jobs[0]))} (each in its own command; a job "
            "folder's = and , are quoted for Hydra)"
        )
    raise ConfigError(
        f"ckpt={folder} is not a run folder written by train.py (it has no config_resolved.yaml); give a "
        "run folder (outputs/train/<dataset>/<aug>/<time>/, or a sweep's job folder) or a .ckpt file in one"
    )


#: The run folders whose settings this process wrote (keep_command_record).
_settings_written: set[Path] = set()


def keep_command_record(run_dir: Path) -> None:
    """As a run writes its settings (config_resolved.yaml): a copy of Hydra's record of the
    command in ``.hydra/run/``."""
    _settings_written.add(run_dir.resolve())
    hydra_dir = run_dir / ".hydra"
    if not hydra_dir.is_dir():
        return
    (run_dir / COMMAND_RECORD).mkdir(exist_ok=True)
    for path in hydra_dir.glob("*.yaml"):
        write_atomic(run_dir / COMMAND_RECORD / path.name, path.read_bytes())


def restore_command_record(run_dir: Path) -> bool:
    """A job that wrote no settings in ``run_dir`` (refused, or finding its run finished):
    Hydra's record of its command, written over the run's own, is replaced by the run's own copy,
    so that ``.hydra/`` says what made the folder's numbers. Whether it was."""
    kept = run_dir / COMMAND_RECORD
    if run_dir.resolve() in _settings_written or not kept.is_dir():
        return False
    for path in kept.glob("*.yaml"):
        write_atomic(run_dir / ".hydra" / path.name, path.read_bytes())
    return True


#: A run folder's list of its classes, one per line: label k is line k.
CLASSES_FILE = "classes.txt"


def class_ids(dataset) -> list[str]:
    """What identifies each class of ``dataset`` in label order: the wnids of the ImageNet datasets
    (Tiny-ImageNet's readable names depend on whether words.txt is there), else its class names
    (an image folder's folder names, the official names of the others)."""
    return list(dataset.info.get("wnids") or dataset.classes)


def write_classes(run_dir: Path, ids: list[str]) -> None:
    """``classes.txt`` (UTF-8; a folder name that is not keeps its bytes)."""
    write_atomic(
        run_dir / CLASSES_FILE, "".join(f"{name}\n" for name in ids).encode("utf-8", "surrogateescape")
    )


def check_same_classes(run_dir: Path, ids: list[str], where: str, advice: str | None = None) -> None:
    """The classes read from ``where`` are the run's, in the order its labels number them (its
    ``classes.txt``; a run written before the file was kept is not checked): another copy of the
    data with a class renamed, added or in another order would score or train the model against
    labels it never learnt. Else ConfigError naming the first difference, with ``advice`` (by
    default: the run's folder, or a copy with its classes)."""
    path = run_dir / CLASSES_FILE
    if not path.is_file():
        return
    trained = path.read_bytes().decode("utf-8", "surrogateescape").split("\n")
    if trained and trained[-1] == "":
        trained.pop()  # the last line's end
    if trained == list(ids):
        return
    if len(trained) != len(ids):
        differ = f"{len(trained)} classes in the run, {len(ids)} there"
    else:
        k = next(i for i, (a, b) in enumerate(zip(trained, ids, strict=True)) if a != b)
        differ = f"label {k} is '{trained[k]}' in the run and '{ids[k]}' there"
    raise ConfigError(
        f"the data read from {where} does not hold the classes the run was trained on ({differ}; the run's "
        f"are listed in {path}): its labels would not be the model's. "
        + (advice or "Give the folder the run was trained on, or a copy with the same classes")
    )


#: A run folder's record of the images each split held when the run started (data.json).
DATA_FILE = "data.json"


def data_record(splits) -> dict:
    """``{split: {"images": n, "names_sha256": hex}}`` for the train, val and test splits of
    ``splits`` (test None where there is none): the digest of the sorted paths of its image files
    under the dataset's folder (class folders included, so an image moved to another class
    counts), None for data held in memory (CIFAR's arrays, fixed by the official files)."""
    import hashlib

    out = {}
    for name in ("train", "val", "test"):
        split = getattr(splits, name, None)
        if split is None:
            out[name] = None
            continue
        paths = getattr(split, "paths", None)
        digest = None
        if paths:
            root = getattr(split, "root", None)
            names = sorted(
                Path(p).relative_to(root).as_posix()
                if root is not None and Path(p).is_relative_to(root)
                else Path(p).name
                for p in paths
            )
            data = "\n".join(names).encode("utf-8", "surrogateescape")
            digest = hashlib.sha256(data).hexdigest()
        out[name] = {"images": len(split), "names_sha256": digest}
    return out


def write_data_record(run_dir: Path, record: dict) -> None:
    write_atomic(run_dir / DATA_FILE, json.dumps(record, indent=2) + "\n")


def check_same_data(run_dir: Path, record: dict, where: str, advice: str) -> None:
    """The images read from ``where`` are those the run started with (its ``data.json``; a run
    written before the file was kept is not checked): a resume that read other images (some added,
    removed or renamed, or another folder's) would train its remaining epochs on them, and a
    validation split held out of the training images anew could hold images it trained on. Else
    ConfigError naming the first split that differs, with ``advice``."""
    path = run_dir / DATA_FILE
    try:
        started = json.loads(path.read_text())
    except (OSError, ValueError):
        return  # none kept (an earlier version's run), or cut short: nothing to compare with
    if not isinstance(started, dict):
        return
    for name in ("train", "val", "test"):
        was, now = started.get(name), record.get(name)
        if was == now or not isinstance(was, dict | None):
            continue
        if was is None or now is None:
            differ = f"the run's had {'no' if was is None else 'a'} {name} split, this data has {'one' if was is None else 'none'}"
        elif was.get("images") != now.get("images"):
            differ = f"its {name} split holds {now.get('images')} images, the run's held {was.get('images')}"
        elif was.get("names_sha256") is None or now.get("names_sha256") is None:
            continue  # (data held in memory: its counts alone are compared)
        else:
            differ = (
                f"its {name} split holds {now.get('images')} images as the run's did, under other file names"
            )
        raise ConfigError(
            f"the data read from {where} is not the data the run in {run_dir} started with ({differ}; the run's "
            f"are recorded in {path}). {advice}"
        )


def read_metrics(run_dir: Path) -> dict | None:
    """The run folder's ``metrics.json`` (None when there is none); a damaged one is a ConfigError
    that says how to get it back, since evaluate.py adds to it."""
    path = run_dir / "metrics.json"
    if not path.is_file():
        return None
    try:
        metrics = json.loads(path.read_text())
        if not isinstance(metrics, dict):
            raise ValueError("not a JSON object")
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"{path} is damaged ({exc}), so the run's numbers and selected checkpoint are unknown and "
            "evaluate.py cannot add to it. Restore it from a copy, or move it aside and run the same "
            "train.py command with ckpt_path=last and hydra.run.dir=<this run folder>, which writes it "
            "again from the last checkpoint"
        ) from None
    return metrics


def finished(run_dir: Path) -> bool:
    """Whether the run in ``run_dir`` finished: its metrics.json is there and no failure.json
    (written when a run stops with an error, removed when it finishes) is beside it."""
    return (run_dir / "metrics.json").is_file() and not (run_dir / "failure.json").is_file()
