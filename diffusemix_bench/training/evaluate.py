"""Robustness of a trained classifier: after training (``eval.fgsm=true``, ``eval.pgd=true``) on the
selected checkpoint, or later on a finished run (``python evaluate.py ckpt=<run folder or .ckpt>``),
so robustness can be added to runs without training them again."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import torch
from omegaconf import DictConfig
from torch import nn

from ..data.datamodule import ImageDataModule
from ..data.layouts import DatasetNotFoundError
from ..data.splits import build_splits
from ..errors import ConfigError
from ..files import write_atomic
from ..robustness import ATTACKS, AttackSpec, attack_specs, robust_errors
from .classifier import build_model
from .locate import check_request, finished, load_saved_config, read_metrics

log = logging.getLogger(__name__)


def eval_split(eval_cfg, datamodule: ImageDataModule):
    """The loader of the split ``eval.split`` names (clean images, the evaluation transform).
    ``eval_cfg`` is checked against ``config.EvalConfig`` first (its split's choices, its batch
    size's range): by train.py's start-up checks, or by evaluate.py's ``check_request``."""
    batch = eval_cfg.get("batch_size")
    if eval_cfg.split == "val":
        return datamodule.eval_loader(datamodule.val_set, batch)
    if datamodule.test_set is None:
        raise ConfigError(
            f"eval.split=test, but dataset '{datamodule.cfg.name}' has no test split here; "
            "attack the validation split with eval.split=val"
        )
    return datamodule.eval_loader(datamodule.test_set, batch)


def _device(accelerator: str | None) -> torch.device:
    if accelerator != "cpu" and torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


def load_model_weights(model: nn.Module, ckpt: Path) -> None:
    """The classifier's weights from a training checkpoint (``weights_only`` loading)."""
    try:
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
    except Exception as exc:  # a refused or unreadable file: say which, keep the reason
        raise ConfigError(f"cannot read the checkpoint {ckpt}: {exc}") from None
    if not isinstance(state, dict) or "state_dict" not in state:
        raise ConfigError(f"{ckpt} is not a training checkpoint of this framework (no 'state_dict' in it)")
    weights = {}
    for key, value in state["state_dict"].items():
        if key.startswith("model."):
            weights[key.removeprefix("model.").replace("_orig_mod.", "", 1)] = value
    try:
        model.load_state_dict(weights)
    except RuntimeError as exc:
        raise ConfigError(
            f"the weights in {ckpt} do not fit the model its run folder's config_resolved.yaml describes: "
            f"{str(exc).splitlines()[0]}"
        ) from None


def attack_checkpoint(
    model: nn.Module,
    ckpt: str | Path | None,
    loader,
    specs: list[AttackSpec],
    seed: int,
    accelerator: str | None = None,
    split: str = "test",
    limit_batches: int | None = None,
) -> dict:
    """Attack ``model`` with the selected checkpoint's weights (loaded first when ``ckpt`` is given)
    on ``loader`` (its first ``limit_batches`` batches when given); returns the ``metrics.json``
    entries (``fgsm_error``, ``pgd_error``, ...)."""
    model = getattr(model, "_orig_mod", model)  # attack the eager model, not a compiled wrapper
    if ckpt:
        load_model_weights(model, Path(ckpt))
    result = robust_errors(
        model, loader, specs, device=_device(accelerator), seed=seed, limit_batches=limit_batches
    )
    out = {"robust_split": split, "robust_batch_size": getattr(loader, "batch_size", None)}
    if limit_batches is not None:
        out["robust_limit_batches"] = limit_batches
    out.update({f"robust_{k}" if k in ("images", "clean_error") else k: v for k, v in result.items()})
    for spec in specs:
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
    attack's ``<attack>_error`` and ``<attack>_settings``)."""
    own = {f"{name}_{part}" for name in ATTACKS for part in ("error", "settings")}
    return [key for key in metrics if key.startswith("robust_") or key in own]


def _measured_on(metrics: dict) -> tuple:
    """(split, checkpoint file name) of the robustness entries in ``metrics``: after training they
    were measured on its selected checkpoint, by evaluate.py on ``robust_checkpoint``."""
    ckpt = metrics.get("robust_checkpoint") or metrics.get("best_checkpoint")
    return metrics.get("robust_split"), Path(ckpt).name if ckpt else None


def with_robustness(metrics: dict, result: dict) -> tuple[dict, list[str]]:
    """``metrics`` with the robustness entries of ``result``, and the earlier entries left out.
    Attacks measured before on the same split and checkpoint are kept beside the new ones (FGSM
    then PGD fills one table row); entries measured on another split or checkpoint are left out, so
    metrics.json never mixes two measurements."""
    earlier = robustness_keys(metrics)
    merged = dict(metrics)
    dropped = []
    if earlier and _measured_on(metrics) != _measured_on({**metrics, **result}):
        dropped = [key for key in earlier if key not in result]
        for key in earlier:
            merged.pop(key)
    merged.update(result)
    return merged, dropped


def log_left_out(path: Path, dropped: list[str]) -> None:
    """Say which earlier entries of ``path`` (metrics.json) the new results left out."""
    if dropped:
        log.warning(
            "%s: %s left out (measured on other weights, or another split, than these results)",
            path,
            ", ".join(dropped),
        )


def evaluate_run(cfg: DictConfig) -> dict:
    """``evaluate.py``: attack a finished run's checkpoint on its own dataset and model, and add
    the results to the run folder's ``metrics.json``."""
    run_dir, ckpt = check_request(cfg)
    specs = attack_specs(cfg.eval)
    run_cfg = load_saved_config(run_dir / "config_resolved.yaml")
    if cfg.data_dir is not None:
        run_cfg.paths.data_dir = cfg.data_dir
        if run_cfg.dataset.get("root"):  # an image folder (or a dataset given by its own folder)
            run_cfg.dataset.root = cfg.data_dir
    try:
        splits = build_splits(run_cfg.dataset, run_cfg.paths.data_dir)
        datamodule = ImageDataModule(
            run_cfg.dataset, run_cfg.paths.data_dir, seed=run_cfg.seed, splits=splits
        )
        datamodule.build()
    except DatasetNotFoundError as exc:  # evaluate.py's own setting for the folder
        raise exc.for_evaluate() from None
    model = build_model(run_cfg, datamodule.num_classes, load_weights=False)
    accelerator = cfg.accelerator
    loader = eval_split(cfg.eval, datamodule)
    result = attack_checkpoint(
        model, ckpt, loader, specs, cfg.seed, accelerator, cfg.eval.split, cfg.eval.get("limit_batches")
    )
    result["robust_checkpoint"] = os.path.abspath(ckpt)  # absolute, as best_checkpoint
    if finished(run_dir):
        metrics_path = run_dir / "metrics.json"
        metrics, dropped = with_robustness(read_metrics(run_dir) or {}, result)
        log_left_out(metrics_path, dropped)
        write_atomic(metrics_path, json.dumps(metrics, indent=2) + "\n")  # never a cut-short result
        log.info("Robustness of %s added to %s", ckpt, metrics_path)
    else:
        # A metrics.json here would make an unfinished run count as finished (reports, sweeps).
        path = run_dir / "robustness.json"
        write_atomic(path, json.dumps(result, indent=2) + "\n")
        log.warning(
            "The run in %s has not finished (%s), so its metrics.json is left as it is: the robustness "
            "of %s is written to %s alone",
            run_dir,
            "it stopped with an error: failure.json"
            if (run_dir / "failure.json").is_file()
            else "no metrics.json",
            ckpt.name,
            path,
        )
    print(json.dumps(result, indent=2))
    return result
