"""The augmentation interface: a per-image CPU policy, a training-set wrapper and a batch step on
the device."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from ..config import dataset_default
from ..errors import ConfigError

log = logging.getLogger(__name__)


def resolve_dataset_settings(
    method: str,
    settings: Mapping[str, Any],
    dataset_defaults: Mapping[str, Mapping[str, Any]],
    dataset: str,
    protocol: str | None = None,
) -> dict[str, Any]:
    """Fill each ``None`` in ``settings`` from ``dataset_defaults[protocol]`` (a paper recipe whose
    reference code sets its own values, e.g. fine-tuning against training from scratch), else from
    ``dataset_defaults[dataset]``, else from ``dataset_defaults["default"]``; a value set
    explicitly always wins.

    ``dataset_defaults`` is the per-dataset table of ``conf/aug/<method>.yaml`` (the references'
    settings per dataset or protocol); the resolved values are logged since the saved config shows
    ``null``.
    """
    for row_name, row in dataset_defaults.items():
        unknown = sorted(set(row) - set(settings))
        if unknown:
            raise ConfigError(
                f"aug.dataset_defaults.{row_name} of aug={method} has unknown key(s) {unknown}; "
                f"valid keys: {sorted(settings)}"
            )
    resolved = {}
    for key, value in settings.items():
        if value is None:
            value = dataset_default(dataset_defaults, key, dataset, protocol)
        if value is None:
            raise ConfigError(
                f"aug.{key} of aug={method} is null and aug.dataset_defaults has no value for dataset "
                f"'{dataset}' nor a 'default' row; set aug.{key}=<value>"
            )
        resolved[key] = value
    log.info(
        "aug=%s on dataset '%s': %s", method, dataset, ", ".join(f"{k}={v}" for k, v in resolved.items())
    )
    return resolved


@dataclass
class AugBatch:
    """What the model is trained on for one batch.

    ``inputs`` holds ``num_views`` views of the batch stacked along dim 0 (view-major: all of
    view 0, then all of view 1, ...), float in [0, 1]. ``targets`` are soft targets (N x K) shared
    by every view. With several views the first is the clean one (AugMix/DiffuseMix JSD form).
    """

    inputs: torch.Tensor
    targets: torch.Tensor
    num_views: int = 1
    # The last ``num_clean`` rows are clean images trained with a cross-entropy term of weight
    # ``clean_weight`` beside the mixed rows' loss (PuzzleMix, Co-Mixup, Guided-AP ``clean_lam``).
    num_clean: int = 0
    clean_weight: float = 0.0


@dataclass
class AugContext:
    """What a method may need to know about the run besides its own settings."""

    num_classes: int
    dataset_name: str = ""
    image_size: int = 224
    cache_dir: Path = Path("~/.cache/diffusemix_bench")
    data_dir: Path = Path("data")
    seed: int = 0
    max_epochs: int = 1
    # The paper protocol of the run (conf/protocol): a method's per-protocol values win over its
    # per-dataset ones.
    protocol: str = "custom"
    # The resolved training loss: "ce", or "jsd" (then apply returns [clean, view1, view2]).
    loss: str = "ce"
    # The whole run config, for methods that read other groups (generator, fractals, paths).
    config: Any = None


class Augmentation:
    """Base class of every augmentation method.

    Hooks, each optional:

    - ``sample_transform``: a per-image CPU policy (uint8 CHW in and out), applied after the
      dataset's crop and flip (AutoAugment, RandAugment, ...).
    - ``train_dataset``: wrap the training split, for methods whose samples carry more than one
      image (DiffuseMix pairs each image with its stored edits) or that change the set itself.
      The wrapper yields ``(images, label, index)`` batches that ``apply`` understands.
    - ``apply``: mix or compose whole batches on the device, returning an :class:`AugBatch`.
      Methods that need the model (saliency, CAM) receive it here; they never reach into the
      training module.
    - ``logits``: the forward pass; hidden-state mixing (Manifold Mixup) overrides it.
    - ``callbacks``: Lightning callbacks added to the trainer.
    """

    #: The loss the method is defined with; ``loss=auto`` (the default) picks it.
    default_loss: str = "ce"
    #: Whether ``apply`` can return the three JSD views when ``ctx.loss == "jsd"``.
    supports_jsd: bool = False
    # True where the method applies fast adversarial training (adv.p) in its reference's own form;
    # otherwise the training loop perturbs the views the method returns.
    own_adversarial: bool = False

    @classmethod
    def loss_for(cls, aug_cfg: Any) -> str:
        """The loss ``loss=auto`` picks for these settings (``default_loss`` unless a setting
        rules it out)."""
        return cls.default_loss

    def __init__(self, ctx: AugContext, **cfg) -> None:
        self.ctx = ctx
        self.num_classes = ctx.num_classes
        self.cfg = cfg
        # Settings as configured (create_aug fills them in) and the values that replaced their
        # nulls (per-dataset defaults, ``auto`` choices): together, what the run used.
        self.given_settings: dict[str, Any] = {}
        self.resolved: dict[str, Any] = {}

    def settings(self) -> dict[str, Any]:
        """The method's settings as this run uses them: configured values with each null or
        ``auto`` replaced by what it resolved to (written to ``metrics.json`` as ``aug_settings``)."""
        return {**self.given_settings, **self.resolved}

    def resolve_per_dataset(
        self,
        method: str,
        settings: Mapping[str, Any],
        dataset_defaults: Mapping[str, Mapping[str, Any]] | None,
    ) -> dict[str, Any]:
        """:func:`resolve_dataset_settings` for this run's dataset, recorded in :meth:`settings`."""
        resolved = resolve_dataset_settings(
            method, settings, dataset_defaults or {}, self.ctx.dataset_name, self.ctx.protocol
        )
        self.resolved.update(resolved)
        return resolved

    def sample_transform(self) -> Callable[[torch.Tensor], torch.Tensor] | None:
        return None

    def train_dataset(self, dataset: Dataset) -> Dataset:
        return dataset

    def check_model(self, model: nn.Module, image_size: int) -> None:
        """Called once the model is built, before training: a method that reads the model's
        structure (SnapMix's class activation maps) refuses one it cannot use. Every model suits
        the others."""

    def prepare(self, train_set: Dataset) -> None:
        """Called once before the model is built: check what the method reads from disk and
        build what it makes (DiffuseMix: its edits first, then its fractal bank), so a missing
        input is named at once, before any long preparation."""

    def apply(
        self, images: torch.Tensor, targets: torch.Tensor, indices: torch.Tensor, model: nn.Module
    ) -> AugBatch:
        return AugBatch(images, targets)

    def logits(self, model: nn.Module, batch: AugBatch) -> torch.Tensor:
        return model(batch.inputs)

    def rng_state(self) -> dict | None:
        """The state of this method's own random generators (beyond the global ones), saved in
        every checkpoint so a resumed run draws what the uninterrupted run would; None if none."""
        return None

    def set_rng_state(self, state: dict | None) -> None:
        """Restore :meth:`rng_state` (called before the first step of a resumed run)."""

    def callbacks(self) -> list:
        """Lightning callbacks the method adds to training (for example a figure of its images)."""
        return []
