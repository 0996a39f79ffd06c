"""Robustness of a trained classifier: after training (``eval.fgsm=true``, ``eval.pgd=true``) on the
selected checkpoint, or later on a finished run (``python evaluate.py ckpt=<run folder or .ckpt>``),
so robustness can be added to runs without training them again."""

from __future__ import annotations

import json
import logging
import os
import time
from contextlib import contextmanager
from pathlib import Path

import torch
from omegaconf import DictConfig
from torch import nn

from ..config import with_added_settings
from ..data.datamodule import ImageDataModule
from ..data.layouts import DatasetNotFoundError, dataset_root
from ..data.order import SPLIT_ORDER
from ..data.splits import build_splits, verify_as_asked
from ..errors import ConfigError
from ..files import (
    EARLIER_ROBUSTNESS,
    drawn_with,
    placed,
    read_set_aside,
    run_launched_from,
    write_atomic,
)
from ..robustness import ATTACKS, AttackSpec, attack_specs, robust_errors
from .classifier import build_model
from .locate import (
    check_request,
    check_same_classes,
    class_ids,
    finished,
    load_failure_reason,
    load_saved_config,
    other_checkpoint,
    read_metrics,
)

log = logging.getLogger(__name__)


def no_validation_to_attack(dataset: str) -> str:
    return (
        f"eval.split=val, but dataset '{dataset}' has no validation split here (dataset.val_fraction=0 trains "
        "on the whole training split); attack the test split with eval.split=test"
    )


def no_test_to_attack(dataset: str) -> str:
    return (
        f"eval.split=test, but dataset '{dataset}' has no test split here; attack the validation split with "
        "eval.split=val"
    )


def eval_split(eval_cfg, datamodule: ImageDataModule, shared: bool = False):
    """The loader of the split ``eval.split`` names (clean images, the evaluation transform).
    ``eval_cfg`` is checked against ``config.EvalConfig`` first (its split's choices, its batch
    size's range): by train.py's start-up checks, or by evaluate.py's ``check_request``.
    ``shared``: the processes training together each read their own part of it, unpadded."""
    batch = eval_cfg.get("batch_size")
    split = eval_cfg.split if shared else None
    # eval.limit_batches attacks the first batches: taken one class at a time (see eval_loader).
    limited = eval_cfg.get("limit_batches") is not None
    if eval_cfg.split == "val":
        if not len(datamodule.val_set):
            raise ConfigError(no_validation_to_attack(datamodule.cfg.name))
        return datamodule.eval_loader(datamodule.val_set, batch, split=split, limited=limited)
    if datamodule.test_set is None:
        raise ConfigError(no_test_to_attack(datamodule.cfg.name))
    return datamodule.eval_loader(datamodule.test_set, batch, split=split, limited=limited)


def _device(accelerator: str | None) -> torch.device:
    if accelerator != "cpu" and torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


def _unreadable(ckpt: Path, exc: Exception) -> ConfigError:
    """A checkpoint torch.load refused or could not read, in one line: torch's first sentence (not
    its advice to load with weights_only=False)."""
    import pickle

    reason = load_failure_reason(exc)
    if isinstance(exc, pickle.UnpicklingError) and reason.startswith("Unsupported global"):
        return ConfigError(
            f"{ckpt} holds objects other than tensors and plain containers ({reason}); "
            "checkpoints are read with torch.load(weights_only=True), never unpickled in full. Give a "
            "checkpoint train.py wrote (its run folder's checkpoints/)"
        )
    if ckpt.suffix != ".ckpt":  # config_resolved.yaml, metrics.json, ...: not a checkpoint at all
        return ConfigError(
            f"{ckpt} is not a checkpoint (a .ckpt file train.py writes into its run folder's checkpoints/): "
            "give ckpt=<the run folder> (its selected checkpoint) or ckpt=<a .ckpt file in its checkpoints/>"
        )
    return ConfigError(
        f"cannot read the checkpoint {ckpt}: {reason}; it may have been cut short while "
        f"written (a kill, a full disk): {other_checkpoint(ckpt)}"
    )


def trained_with(cfg: DictConfig, num_classes: int) -> dict:
    """What a run's weights are for, as its checkpoints record it: the model, the size of its input,
    the dataset and its number of classes."""
    return {
        "model": str(cfg.model.name),
        "image_size": int(cfg.dataset.image_size),
        "dataset": str(cfg.dataset.name),
        "num_classes": int(num_classes),
    }


def _check_trained_with(ckpt: Path, state: dict, expected: dict | None) -> None:
    """A checkpoint whose record of what it was trained for (``trained_with``; absent from those
    written before it was kept) differs from its run folder's settings: another run's checkpoint,
    copied or moved in, whose attack would be written down as this run's."""
    recorded = state.get("trained_with")
    if expected is None or not isinstance(recorded, dict):
        return
    differ = [
        f"{k} {recorded[k]!r} there, {v!r} here"
        for k, v in expected.items()
        if k in recorded and recorded[k] != v
    ]
    if differ:
        raise ConfigError(
            f"{ckpt} was trained with other settings than its run folder's config_resolved.yaml names "
            f"({'; '.join(differ)}): a checkpoint of another run? Attack it in the run folder it was trained in "
            "(ckpt=<that folder, or a checkpoint in its checkpoints/>)"
        )


def load_model_weights(
    model: nn.Module, ckpt: Path, data: str = "", expected: dict | None = None
) -> dict[str, int]:
    """The classifier's weights from a training checkpoint (``weights_only`` loading). ``data``:
    where the classes the model was built for were read (named when the weights do not fit).
    ``expected``: what the run folder's settings say the weights are for (:func:`trained_with`),
    compared with the checkpoint's own record.
    Returns where the checkpoint was taken: ``robust_checkpoint_epoch`` (the epoch it was taken
    in, counted from 0 as Lightning's) and ``robust_checkpoint_step`` (optimiser steps)."""
    if ckpt.is_file() and ckpt.stat().st_size == 0:
        raise ConfigError(
            f"the checkpoint {ckpt} is empty (0 bytes): it was cut short while written (a kill, a full disk); "
            f"{other_checkpoint(ckpt)}"
        )
    try:
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
    except Exception as exc:  # a refused or unreadable file: say which, keep the reason
        raise _unreadable(ckpt, exc) from None
    weights_in = state.get("state_dict") if isinstance(state, dict) else None
    if not isinstance(weights_in, dict) or not all(isinstance(v, torch.Tensor) for v in weights_in.values()):
        raise ConfigError(
            f"{ckpt} is not a training checkpoint of this framework (no 'state_dict' of tensors in it)"
        )
    _check_trained_with(ckpt, state, expected)
    weights = {}
    for key, value in weights_in.items():
        if key.startswith("model."):
            weights[key.removeprefix("model.").replace("_orig_mod.", "", 1)] = value
    target = model.state_dict()
    missing = [k for k in target if k not in weights]
    unexpected = [k for k in weights if k not in target]
    shapes = [
        f"{k}: checkpoint {tuple(weights[k].shape)} vs model {tuple(target[k].shape)}"
        for k in weights
        if k in target and weights[k].shape != target[k].shape
    ]
    if missing or unexpected or shapes:
        problems = [
            f"{len(found)} {what} ({', '.join(found[:3])}{', ...' if len(found) > 3 else ''})"
            for what, found in (
                ("missing", missing),
                ("unexpected", unexpected),
                ("with other shapes", shapes),
            )
            if found
        ]
        why = (
            # (layers missing or extra: another architecture, not another head)
            "They are another model's than the one the run's settings name: a checkpoint of another run?"
            if missing or unexpected
            else "A different class count means other data than the run trained on (evaluate.py's data_dir=)"
        )
        raise ConfigError(
            f"the weights in {ckpt} do not fit the model built from its run folder's config_resolved.yaml"
            f"{' and the classes of ' + data if data else ''}: {'; '.join(problems)}. {why}"
        )
    model.load_state_dict(weights)
    return {
        "robust_checkpoint_epoch": int(state.get("epoch", 0)),
        "robust_checkpoint_step": int(state.get("global_step", 0)),
    }


def attack_checkpoint(
    model: nn.Module,
    ckpt: str | Path | None,
    loader,
    specs: list[AttackSpec],
    seed: int,
    accelerator: str | None = None,
    split: str = "test",
    limit_batches: int | None = None,
    data: str = "",
    strategy=None,
    record_position: bool = False,
    expected: dict | None = None,
) -> dict:
    """Attack ``model`` with the selected checkpoint's weights (loaded first when ``ckpt`` is given)
    on ``loader`` (its first ``limit_batches`` batches when given); returns the ``metrics.json``
    entries (``fgsm_error``, ``pgd_error``, ...). ``strategy``: Lightning's, where several
    processes each attack their own part of the split (``loader`` reads that part); the counts
    are summed over them. ``record_position``: the entries name the epoch and step of the
    checkpoint loaded (a last.ckpt replaced as its run goes on), from the weights attacked."""
    model = getattr(model, "_orig_mod", model)  # attack the eager model, not a compiled wrapper
    position = load_model_weights(model, Path(ckpt), data, expected) if ckpt else {}
    processes = strategy.world_size if strategy is not None else 1

    def summed(counts):
        return strategy.reduce(counts, reduce_op="sum")

    result = robust_errors(
        model,
        loader,
        specs,
        device=strategy.root_device if strategy is not None else _device(accelerator),
        seed=seed,
        limit_batches=limit_batches,
        sum_over_processes=summed if processes > 1 else None,
    )
    out = {"robust_split": split, "robust_batch_size": getattr(loader, "batch_size", None)}
    if record_position:
        out.update(position)
    if any(spec.settings().get("random_start") for spec in specs):
        # The seed of PGD's random start (FGSM draws nothing: an FGSM-only result leaves the seed
        # of a PGD number kept beside it as it was).
        out["robust_seed"] = seed
        if processes > 1:
            # Each process drew the random starts of its own part from the seed: the draws, and
            # so the PGD number, depend on the number of processes as on the seed.
            out["robust_processes"] = processes
    if limit_batches is not None:
        out["robust_limit_batches"] = limit_batches
        # Which images the first batches hold (a loader of eval_split takes the classes in turn).
        out["robust_limit_order"] = getattr(loader, "read_order", SPLIT_ORDER)
    out.update({f"robust_{k}" if k in ("images", "clean_error") else k: v for k, v in result.items()})
    # What measured each attack's number (the training's process, or evaluate.py's later): the
    # code's commit, the attack library and the device (PGD's random start is the device's draw).
    device = strategy.root_device if strategy is not None else _device(accelerator)
    from .provenance import code_state, device_name, versions

    found = versions()
    measured_by = {
        "git": code_state(),
        "torch": found.get("torch"),
        "torchattacks": found.get("torchattacks"),
        "device": device_name(device),
        "processes": processes,
    }
    for spec in specs:
        out[f"{spec.name}_measured_by"] = measured_by
        log.info(
            "%s error %.2f%% on %d images (%s)",
            spec.name.upper(),
            out[f"{spec.name}_error"],
            result["images"],
            spec.settings(),
        )
    return out


def robustness_keys(metrics: dict) -> list[str]:
    """The entries of ``metrics`` that one robustness measurement writes (``robust_*`` and each
    attack's ``<attack>_error``, ``<attack>_settings`` and ``<attack>_measured_by``)."""
    own = {f"{name}_{part}" for name in ATTACKS for part in ("error", "settings", "measured_by")}
    return [key for key in metrics if key.startswith("robust_") or key in own]


def _measured_on(metrics: dict) -> tuple:
    """(split, checkpoint file name, images attacked, limit and its order, data folder) of the robustness entries:
    after training they were measured on its selected checkpoint, by evaluate.py on
    ``robust_checkpoint``; a short check (``eval.limit_batches``) attacks fewer images than the
    whole split, and is another measurement than the whole split's."""
    # (A run without a checkpoint selected on validation reports last.ckpt's numbers.)
    ckpt = metrics.get("robust_checkpoint") or metrics.get("best_checkpoint") or "last.ckpt"
    return (
        metrics.get("robust_split"),
        Path(ckpt).name,
        metrics.get("robust_images"),
        metrics.get("robust_limit_batches"),  # (a limit that covers the whole split is still named)
        metrics.get("robust_limit_order"),  # (absent: a limit's first batches in the split's order)
        metrics.get("robust_data_dir"),  # another copy of the data (evaluate.py data_dir=)
    )


def with_robustness(metrics: dict, result: dict) -> tuple[dict, list[str]]:
    """``metrics`` with the robustness entries of ``result``, and the earlier entries left out.
    Attacks measured before on the same split, checkpoint and images are kept beside the new ones
    (FGSM then PGD fills one table row); entries measured on another split or checkpoint, or on
    other images (a short check beside the whole split, another copy of the data), are left out, so metrics.json never mixes
    two measurements."""
    if not result:  # nothing measured this time: what was, stays
        return dict(metrics), []
    earlier = robustness_keys(metrics)
    merged = dict(metrics)
    dropped = []
    # The new measurement is what the result says (a key it lacks, robust_limit_batches say, is
    # absent from it), on the run's selected checkpoint unless it names another.
    new = {**{k: v for k, v in metrics.items() if k not in earlier}, **result}
    if earlier and _measured_on(metrics) != _measured_on(new):
        dropped = [key for key in earlier if key not in result]
        for key in earlier:
            merged.pop(key)
    if "robust_seed" in result and "robust_processes" not in result:
        merged.pop("robust_processes", None)  # a random start drawn by one process this time
    kept = [name for name in ATTACKS if f"{name}_error" in merged and f"{name}_error" not in result]
    size_before = merged.get("robust_batch_size")
    merged.update(result)
    if kept and "robust_batch_size" in result and size_before != result["robust_batch_size"]:
        # Attacks kept beside the new ones were measured in other batches (PGD's random starts
        # depend on them): each attack's batch size, one number where they agree.
        before = size_before if isinstance(size_before, dict) else dict.fromkeys(kept, size_before)
        sizes = {name: before.get(name) for name in kept}
        sizes.update({name: result["robust_batch_size"] for name in ATTACKS if f"{name}_error" in result})
        merged["robust_batch_size"] = sizes if len(set(sizes.values())) > 1 else next(iter(sizes.values()))
    return merged, dropped


def set_aside_replaced(path: Path, before: dict, after: dict, one_process: bool = False) -> None:
    """The attacks ``before`` (metrics.json as it was) measured that ``after`` (as it is about to be
    written) replaces with another number or measurement, or leaves out: each named in the log with
    its number and what took its place, and the earlier entries appended to robustness_earlier.jsonl
    beside ``path``, so a short check or another budget never loses the whole split's measurement."""
    from pytorch_lightning.utilities.rank_zero import rank_zero_only

    # (every process of a DDP run merges, the first writes; ``one_process``: evaluate.py, which
    # writes whatever rank a launcher's environment gives it)
    if not one_process and rank_zero_only.rank != 0:
        return
    earlier = {key: before[key] for key in robustness_keys(before)}
    gone = []
    for name in ATTACKS:
        if f"{name}_error" not in earlier:
            continue
        # The number, its settings and what it attacked (measured again alike, by other code or in
        # other batches, it is the same measurement: no news).
        same = all(after.get(k) == earlier.get(k) for k in (f"{name}_error", f"{name}_settings"))
        if not same or _measured_on(before) != _measured_on(after):
            gone.append(name)
    if not gone:
        return
    for name in gone:
        why = _another_measurement(before, after, name)
        new = after.get(f"{name}_error")
        log.warning(
            "%s: %s error %s (%s, %s images of %s) %s%s",
            path,
            name.upper(),
            _percent(earlier[f"{name}_error"]),
            earlier.get(f"{name}_settings"),
            earlier.get("robust_images"),
            earlier.get("robust_split"),
            "left out"
            if new is None
            else f"replaced by {_percent(new)} ({after.get(f'{name}_settings')}, {after.get('robust_images')} images "
            f"of {after.get('robust_split')})",
            why,
        )
    record = {"set_aside": time.strftime("%Y-%m-%dT%H:%M:%S"), **earlier}
    kept = path.parent / EARLIER_ROBUSTNESS
    if _already_kept(kept, earlier):  # (kept by an attempt whose metrics.json was then not written)
        log.warning("%s: the earlier measurement is already kept in %s", path, kept)
        return
    try:  # (a last line cut short: the record starts a line of its own, not glued onto it)
        cut = kept.read_bytes()[-1:] not in (b"", b"\n")
    except OSError:
        cut = False
    with open(kept, "a") as f:
        f.write(("\n" if cut else "") + json.dumps(record) + "\n")
    log.warning("%s: the earlier measurement is kept in %s", path, kept)


#: What each entry of _measured_on is, as the log names it.
_MEASURED_ON = ("split", "checkpoint", "images", "eval.limit_batches", "limit order", "data folder")


#: What each entry of files.drawn_with is, as the log names it.
_DRAWN_WITH = ("eval.batch_size", "seed", "processes")


def _another_measurement(before: dict, after: dict, name: str) -> str:
    """What the attack ``name`` of ``after`` was measured on that ``before``'s was not (the
    checkpoint, the split, a limit, the data folder) or measured with (the batch size, seed and
    processes, for an attack that draws random starts: PGD's), as a clause for the log; empty where they agree, or where
    ``after`` holds no attack."""
    if not robustness_keys(after):
        return ""

    def changes(names, was_all, now_all) -> list[str]:
        def said(what, value) -> str:  # (no data folder recorded: the run's own)
            return str(value) if value is not None else ("the run's own" if what == "data folder" else "none")

        return [
            f"{what} {said(what, was)} -> {said(what, now)}"
            for what, was, now in zip(names, was_all, now_all, strict=True)
            if was != now
        ]

    differ = changes(_MEASURED_ON, _measured_on(before), _measured_on(after))
    # (an attack left out was not measured again: no batches to name; one that draws nothing,
    # FGSM or PGD without random starts, is the same whatever its batches, seed and processes)
    settings = after.get(f"{name}_settings")
    draws = isinstance(settings, dict) and bool(settings.get("random_start"))
    if f"{name}_error" in after and draws:
        differ += changes(_DRAWN_WITH, drawn_with(before, name), drawn_with(after, name))
    return f": another measurement ({', '.join(differ)})" if differ else ""


def _already_kept(kept: Path, earlier: dict) -> bool:
    """Whether robustness_earlier.jsonl holds ``earlier`` already (whenever it was set aside)."""
    return any(
        {k: v for k, v in record.items() if k != "set_aside"} == earlier
        for record in read_set_aside(kept.parent)
    )


def _percent(value) -> str:
    return f"{value:.2f}%" if isinstance(value, (int, float)) else repr(value)


def _check_saved_settings(run_cfg: DictConfig, path: Path) -> None:
    """A run's saved settings that hold a value its dataset or model schema refuses (edited by
    hand): one message naming the file, not an error from deep in the data or model code."""
    from dataclasses import fields

    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from ..config import DatasetConfig, ModelConfig, check_fields

    try:
        seed = run_cfg.get("seed")
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise ConfigError(f"seed is {seed!r}, not a whole number")
        for section, schema in (("dataset", DatasetConfig), ("model", ModelConfig)):
            node = run_cfg[section]
            if not OmegaConf.is_dict(node):
                raise ConfigError(f"{section} is not a mapping of settings")
            # Each setting the schema knows, of its type (a setting of an older or newer version is left).
            for f in fields(schema):
                if f.name in node:
                    try:
                        OmegaConf.merge(OmegaConf.structured(schema), {f.name: node[f.name]})
                    except OmegaConfBaseException as exc:
                        raise ConfigError(f"{section}.{f.name}: {str(exc).splitlines()[0]}") from None
            check_fields(node, schema, section)
    except ConfigError as exc:
        raise ConfigError(
            f"{path} holds a setting this run cannot have been trained with ({exc}); restore it from a "
            "copy (the run's .hydra/config.yaml holds the same settings), or train the run again"
        ) from None


#: The run's settings that name a folder evaluation reads.
_FOLDERS = ("paths.data_dir", "dataset.root", "paths.cache_dir")


def place_where_launched(
    run_cfg: DictConfig, run_dir: Path, record: str = ".hydra", say: bool = True
) -> None:
    """A folder the run's settings give as a relative path (``dataset.root=imgs``) read where
    the run read it: relative to the folder it was launched from (its Hydra record in ``record``),
    not to this command's own (from another folder it named a folder that is not there).
    ``say``: each folder placed so is logged."""
    from omegaconf import OmegaConf, open_dict

    cwd = run_launched_from(run_dir, record)
    if cwd is None or Path(cwd).resolve() == Path.cwd().resolve():
        return
    for key in _FOLDERS:
        value = OmegaConf.select(run_cfg, key, default=None, throw_on_resolution_failure=False)
        where = placed(value, cwd)
        # (a launch folder gone or moved since, a project copied elsewhere: read as given, here)
        if where != value and Path(str(where)).exists():
            with open_dict(run_cfg):
                OmegaConf.update(run_cfg, key, where, merge=False)
            if say:
                log.info(
                    "%s=%s read as %s (relative to %s, where the run was launched)", key, value, where, cwd
                )


def evaluate_run(cfg: DictConfig) -> dict:
    """``evaluate.py``: attack a finished run's checkpoint on its own dataset and model, and add
    the results to the run folder's ``metrics.json``."""
    run_dir, ckpt = check_request(cfg)
    specs = attack_specs(cfg.eval)
    run_cfg = load_saved_config(run_dir / "config_resolved.yaml", needs=("dataset", "model", "paths", "seed"))
    with_added_settings(run_cfg)  # a run saved before a dataset or model setting existed
    place_where_launched(run_cfg, run_dir)
    _check_saved_settings(run_cfg, run_dir / "config_resolved.yaml")
    with _saved_settings_read(run_dir / "config_resolved.yaml"):
        return _evaluate_run(cfg, run_dir, ckpt, specs, run_cfg)


@contextmanager
def _saved_settings_read(path: Path):
    """A setting the run's saved settings lack (a line deleted by hand) where evaluation reads it:
    one message naming the file and the setting, not OmegaConf's error from the data code."""
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError

    try:
        yield
    except (ConfigAttributeError, ConfigKeyError) as exc:
        key = getattr(exc, "full_key", None) or str(exc).splitlines()[0]
        if str(key).split(".")[0] in ("eval", "ckpt", "data_dir", "accelerator"):  # evaluate.py's own
            raise
        raise ConfigError(
            f"{path} has no {key}, which evaluation reads; restore the file from a copy (the run's "
            ".hydra/config.yaml holds the same settings), or train the run again"
        ) from None


def data_folder(dataset: DictConfig, data_dir) -> str:
    """The absolute folder a run's dataset settings read (``dataset.root``, else ``paths.data_dir``)."""
    return str(dataset_root(dataset, data_dir).resolve())


def _evaluate_run(cfg: DictConfig, run_dir: Path, ckpt: Path, specs, run_cfg: DictConfig) -> dict:
    own = data_folder(run_cfg.dataset, run_cfg.paths.data_dir)  # the folder the run's settings name
    if cfg.data_dir is not None:
        run_cfg.paths.data_dir = cfg.data_dir
        if run_cfg.dataset.get("root"):  # an image folder (or a dataset given by its own folder)
            run_cfg.dataset.root = cfg.data_dir
    try:
        splits = build_splits(run_cfg.dataset, run_cfg.paths.data_dir, read=(cfg.eval.split,))
    except DatasetNotFoundError as exc:  # evaluate.py's own setting for the folder
        raise exc.for_evaluate() from None
    # The attacked split's bad files left out as the run left them out (or named at once).
    bad = verify_as_asked(splits, run_cfg.dataset, run_cfg.paths.cache_dir, names=(cfg.eval.split,))
    skipped = sum(len(found) for found in bad.values())
    datamodule = ImageDataModule(run_cfg.dataset, run_cfg.paths.data_dir, seed=run_cfg.seed, splits=splits)
    datamodule.build()
    where = dataset_root(run_cfg.dataset, run_cfg.paths.data_dir)
    check_same_classes(run_dir, class_ids(datamodule.train_set), str(where))
    model = build_model(run_cfg, datamodule.num_classes, load_weights=False)
    accelerator = cfg.accelerator
    loader = eval_split(cfg.eval, datamodule)
    result = attack_checkpoint(
        model,
        ckpt,
        loader,
        specs,
        run_cfg.seed if cfg.seed is None else cfg.seed,
        accelerator,
        cfg.eval.split,
        cfg.eval.get("limit_batches"),
        data=f"{run_cfg.dataset.name} read from {where} ({datamodule.num_classes} classes)",
        record_position=not finished(run_dir),
        expected=trained_with(run_cfg, datamodule.num_classes),
    )
    result["robust_checkpoint"] = os.path.abspath(ckpt)  # absolute, as best_checkpoint
    if (
        data_folder(run_cfg.dataset, run_cfg.paths.data_dir) != own
    ):  # another copy than the run's settings name
        result["robust_data_dir"] = data_folder(run_cfg.dataset, run_cfg.paths.data_dir)
    if skipped:
        result["robust_bad_images_skipped"] = skipped
    if finished(run_dir):
        metrics_path = run_dir / "metrics.json"
        before = read_metrics(run_dir) or {}
        metrics, _ = with_robustness(before, result)
        set_aside_replaced(metrics_path, before, metrics, one_process=True)
        write_atomic(metrics_path, json.dumps(metrics, indent=2) + "\n")  # never a cut-short result
        log.info("Robustness of %s added to %s", ckpt, metrics_path)
    else:
        # A metrics.json here would make an unfinished run count as finished (reports, sweeps).
        # (the checkpoint attacked, last.ckpt say, is replaced as the run goes on: the result
        # names its epoch and step, from the weights attacked)
        path = run_dir / "robustness.json"
        write_atomic(path, json.dumps(result, indent=2) + "\n")
        log.warning(
            "The run in %s has not finished (%s), so %s: the robustness of %s is written to %s alone",
            run_dir,
            "it stopped with an error: failure.json"
            if (run_dir / "failure.json").is_file()
            else "no metrics.json",
            "its metrics.json is left as it is"
            if (run_dir / "metrics.json").is_file()
            else "none is written",
            ckpt.name
            + (
                f" (epoch {result['robust_checkpoint_epoch']}, step {result['robust_checkpoint_step']})"
                if "robust_checkpoint_step" in result
                else ""
            ),
            path,
        )
    print(json.dumps(result, indent=2))
    return result
