"""Augmentation registry: ``@register_aug(name, schema)`` and ``create_aug(cfg, num_classes)``, and the
identity method ``none`` (the paper's "Vanilla")."""

from __future__ import annotations

import logging
from dataclasses import asdict, is_dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from ..config import AUG_SCHEMAS, NoneAugConfig
from .base import AugContext, Augmentation

_AUGS: dict[str, type[Augmentation]] = {}
_SCHEMAS: dict[str, type] = {}


def register_aug(name: str, schema: type):
    """Register an Augmentation subclass and its config dataclass (``conf/aug/<name>.yaml``)."""

    def wrap(cls: type[Augmentation]) -> type[Augmentation]:
        if name in _AUGS:
            raise ValueError(f"augmentation '{name}' registered twice")
        if not is_dataclass(schema):
            raise TypeError(f"schema of augmentation '{name}' must be a dataclass")
        if AUG_SCHEMAS.get(name) is not schema:
            raise TypeError(f"augmentation '{name}' must register the schema config.AUG_SCHEMAS names")
        _AUGS[name] = cls
        _SCHEMAS[name] = schema
        return cls

    return wrap


def list_augs() -> list[str]:
    return sorted(_AUGS)


def list_schemas() -> dict[str, type]:
    return dict(_SCHEMAS)


def aug_class(name: str) -> type[Augmentation]:
    if name not in _AUGS:
        raise KeyError(f"unknown augmentation '{name}'; choose one of: {', '.join(list_augs())}")
    return _AUGS[name]


def resolve_loss(cfg: DictConfig) -> str:
    """loss=auto takes the augmentation method's own loss for its settings (JSD for DiffuseMix,
    AugMix and IPMix; CE for DiffuseMix's static_append, which has a single view)."""
    if cfg.loss.name != "auto":
        return cfg.loss.name
    return aug_class(cfg.aug.name).loss_for(cfg.aug)


def check_loss_views(cfg: DictConfig) -> None:
    """The run's loss (``auto`` resolved) is JSD only with a method that makes three views per
    image; refused with the methods that do."""
    from ..errors import ConfigError

    aug = cfg.aug
    if resolve_loss(cfg) == "jsd" and not aug_class(aug.name).supports_jsd:
        with_views = [name for name in list_augs() if aug_class(name).supports_jsd]
        raise ConfigError(
            f"loss=jsd needs three views per image ([clean, view1, view2]) and aug={aug.name} does not "
            f"make them; use loss=ce or loss=auto, or an augmentation with JSD views ({', '.join(with_views)})"
        )


def run_context(cfg: DictConfig, num_classes: int) -> AugContext:
    """The :class:`AugContext` of a training run's config (``num_classes`` from its data)."""
    return AugContext(
        num_classes=num_classes,
        dataset_name=cfg.dataset.name,
        image_size=cfg.dataset.image_size,
        cache_dir=Path(cfg.paths.cache_dir).expanduser(),
        data_dir=Path(cfg.paths.data_dir).expanduser(),
        seed=cfg.seed,
        protocol=cfg.protocol,
        max_epochs=cfg.trainer.max_epochs,
        loss=resolve_loss(cfg),
        config=cfg,
    )


def check_aug_settings(cfg: DictConfig) -> None:
    """Build the run's augmentation once, to be dropped, so that the method's own checks of its
    settings (those a schema cannot say, e.g. Co-Mixup's ``block_num``) refuse a value before any
    data is read or run folder written. Constructors read no files and take microseconds; their
    log lines (the resolved per-dataset values) are left to the run's own build. The class count
    is a stand-in: no method's settings depend on it."""
    quieted = logging.getLogger(__package__)
    level = quieted.level
    quieted.setLevel(logging.ERROR)
    try:
        create_aug(cfg.aug, run_context(cfg, num_classes=2))
    finally:
        quieted.setLevel(level)


def create_aug(cfg: DictConfig | dict, ctx: AugContext | int) -> Augmentation:
    """Build the augmentation named by ``cfg.name`` with the rest of ``cfg`` as settings;
    ``ctx`` describes the run (a bare class count is enough for methods that need no more)."""
    if isinstance(ctx, int):
        ctx = AugContext(num_classes=ctx)
    if isinstance(cfg, DictConfig):
        cfg = OmegaConf.to_container(cfg, resolve=True)
    elif is_dataclass(cfg):
        cfg = asdict(cfg)
    cfg = dict(cfg)
    aug = aug_class(cfg.pop("name"))(ctx, **cfg)
    aug.given_settings = {k: v for k, v in cfg.items() if k != "dataset_defaults"}
    return aug


@register_aug("none", NoneAugConfig)
class NoAugmentation(Augmentation):
    """No augmentation beyond the dataset's crop and flip (the paper's "Vanilla"): the interface's
    hooks as they are."""
