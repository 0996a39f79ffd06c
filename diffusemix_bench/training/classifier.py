"""The classifier of a run, built from its config (the model group, and the dataset's statistics)."""

from __future__ import annotations

import logging

import torch
from omegaconf import DictConfig

from ..config import IMAGENET_MEAN, IMAGENET_STD
from ..errors import ConfigError, UserError
from ..models import Normalize, create_model, list_models
from ..models.factory import check_model_options, check_options_set_elsewhere, check_timm_model

log = logging.getLogger(__name__)


def check_model(cfg: DictConfig) -> None:
    """Refuse a model the config names that does not exist (a built-in name, or a timm architecture
    and its pretrained weights), before the data is read."""
    m = cfg.model
    check_options_set_elsewhere(dict(m.kwargs or {}))
    if m.source == "timm":
        check_timm_model(m.name, bool(m.pretrained) and m.weights is None)
    elif m.source == "builtin":
        if m.name not in list_models():
            raise ConfigError(
                f"model.name='{m.name}' is not a built-in model ({', '.join(list_models())}); "
                "for a timm model use model=timm model.name=<timm name>"
            )
        check_model_options(str(m.name), dict(m.kwargs or {}))
    else:
        raise ConfigError(f"model.source must be 'builtin' or 'timm', got '{m.source}'")


def check_input_size(model: torch.nn.Module, cfg: DictConfig) -> None:
    """A model built for one input size (a timm vision transformer's patch embedding) refuses other
    sizes at its first step, deep in a stack: named here, before training, with the two fixes."""
    size = int(cfg.dataset.image_size)
    for module in model.modules():
        fixed = getattr(module, "img_size", None)
        if fixed is None or not getattr(module, "strict_img_size", False):
            continue
        if getattr(module, "dynamic_img_size", False):
            continue
        if tuple(fixed) != (size, size):
            h, w = tuple(fixed)
            raise ConfigError(
                f"model.name={cfg.model.name} takes {h} x {w} images, and dataset.image_size={size}: set "
                f"dataset.image_size={h} (with dataset.resize), or build the model for the data's size "
                f"with +model.kwargs.img_size={size}"
            )
        return


def fetch_pretrained(cfg: DictConfig) -> None:
    """The published weights a new run of ``cfg`` starts from (``model.pretrained`` with no
    ``model.weights``; the caller knows it is no resume), fetched into their cache now if they
    are not there (the model is built once with them): weights that cannot be had are refused
    (PretrainedWeightsError) before a run folder is made or a sweep's first job starts, not as
    each run builds its model."""
    from ..models.factory import pretrained_cached

    m = cfg.model
    if not m.pretrained or m.weights is not None:
        return
    if pretrained_cached("timm", str(m.name)) if m.source == "timm" else pretrained_cached(str(m.name)):
        return
    build_model(cfg, 2, log_normalisation=False)


def check_model_runs(cfg: DictConfig, num_classes: int) -> None:
    """A new run's model built (without its starting weights) and given one image of the run's
    size before its run folder fills: options its builder refuses (``model.kwargs``) and an image
    size its layers cannot take are one ConfigError naming the settings, where they had been a
    traceback from the library after the folder was written. The file it starts from
    (``model.weights``) is read and fitted to it (WeightsFileError where it is no weights file or
    fits another model); the run reads it again as it builds its model."""
    m = cfg.model
    name = f"model=timm model.name={m.name}" if m.source == "timm" else f"model={m.name}"
    kwargs = ", ".join(f"model.kwargs.{k}={v}" for k, v in dict(m.kwargs).items())
    try:
        model = build_model(cfg, num_classes, load_weights=False, log_normalisation=False)
    except UserError:
        raise
    except (TypeError, ValueError, AssertionError, RuntimeError) as exc:
        raise ConfigError(
            f"{name} cannot be built with {kwargs or 'no model.kwargs'}: {_first_line(exc)}; give the options its builder takes (or "
            "leave model.kwargs out)"
        ) from exc
    size = int(cfg.dataset.image_size)
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, size, size))
    except (RuntimeError, AssertionError, ValueError) as exc:
        raise ConfigError(
            f"{name}{f' with {kwargs}' if kwargs else ''} cannot take the run's images, 3 x {size} x {size} "
            f"(dataset.image_size={size}: {_first_line(exc)}): give a larger dataset.image_size (with "
            f"dataset.resize above it){', other model.kwargs' if kwargs else ''}, or another model"
        ) from exc
    if m.weights is not None:
        from ..models.weights import load_weights

        load_weights(model, m.weights)


def _first_line(exc: BaseException) -> str:
    """An exception's message, its first line, as the library wrote it (its type where empty)."""
    text = str(exc).strip().splitlines()
    return " ".join(text[0].split()) if text else type(exc).__name__


def _same_stats(a, b) -> bool:
    return len(a) == len(b) and all(abs(float(x) - float(y)) < 1e-9 for x, y in zip(a, b, strict=True))


def build_model(
    cfg: DictConfig, num_classes: int, load_weights: bool = True, log_normalisation: bool = True
) -> torch.nn.Module:
    """The classifier with normalisation inside: mean/std from model.*, else the pretrained
    weights', else the dataset's. ``load_weights=False`` builds the same model without reading or
    downloading its starting weights (a checkpoint's weights replace them)."""
    m = cfg.model
    kwargs = dict(m.kwargs)
    if m.source == "timm":
        name, kwargs["name"] = "timm", m.name
    else:
        check_model(cfg)
        name = m.name
    model = create_model(
        name,
        num_classes,
        pretrained=m.pretrained and load_weights,
        weights=m.weights if load_weights else None,
        **kwargs,
    )
    check_input_size(model, cfg)
    mean, std = list(cfg.dataset.mean), list(cfg.dataset.std)
    # (an image folder's defaults, and many datasets', are ImageNet's statistics, not its own)
    imagenet = _same_stats(mean, IMAGENET_MEAN) and _same_stats(std, IMAGENET_STD)
    source = "dataset.mean/dataset.std" + (": ImageNet's statistics" if imagenet else "")
    # Published weights, or a file of them (model.weights), were trained with the architecture's
    # own normalisation.
    if (m.pretrained or m.weights is not None) and model.pretrained_mean_std is not None:
        mean, std = (list(v) for v in model.pretrained_mean_std)
        source = "the pretrained weights'"
    if m.mean is not None and m.std is not None:
        source = "model.mean/model.std"
    elif m.mean is not None or m.std is not None:  # (one given: the other as it would have been)
        given, other = ("mean", "std") if m.mean is not None else ("std", "mean")
        source = f"model.{given}; the {other}: {source}"
    mean, std = (m.mean if m.mean is not None else mean), (m.std if m.std is not None else std)
    if load_weights and log_normalisation:
        log.info("normalisation in the model: mean %s, std %s (%s)", list(mean), list(std), source)
    model.normalize = Normalize(mean, std)
    if m.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model
