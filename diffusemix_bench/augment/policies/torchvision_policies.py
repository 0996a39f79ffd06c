"""AutoAugment, RandAugment and TrivialAugmentWide: torchvision's v2 implementations as per-image
policies on uint8 tensors, after the dataset's crop and flip."""

from __future__ import annotations

from torchvision.transforms import v2

from ...config import AutoAugmentConfig, RandAugmentConfig, TrivialAugmentConfig, choices_of
from ...errors import ConfigError
from ..base import AugContext, Augmentation
from ..registry import register_aug


def is_cifar(ctx: AugContext) -> bool:
    """The references ship two recipes, CIFAR and ImageNet; CIFAR's applies to CIFAR datasets."""
    return ctx.dataset_name.lower().startswith("cifar")


_POLICIES = {
    "cifar10": v2.AutoAugmentPolicy.CIFAR10,
    "imagenet": v2.AutoAugmentPolicy.IMAGENET,
    "svhn": v2.AutoAugmentPolicy.SVHN,
}
_INTERPOLATIONS = choices_of(TrivialAugmentConfig, "interpolation")


def _interpolation(name: str) -> v2.InterpolationMode:
    if name not in _INTERPOLATIONS:
        raise ConfigError(f"aug.interpolation must be one of {_INTERPOLATIONS}, got '{name}'")
    return v2.InterpolationMode(name)


class _TorchvisionPolicy(Augmentation):
    """A torchvision v2 auto-augment transform as the method's per-image policy."""

    transform: v2.Transform

    def sample_transform(self) -> v2.Transform:
        return self.transform


@register_aug("autoaugment", AutoAugmentConfig)
class AutoAugment(_TorchvisionPolicy):
    def __init__(self, ctx: AugContext, **cfg) -> None:
        super().__init__(ctx, **cfg)
        c = AutoAugmentConfig(**cfg)
        name = c.policy if c.policy != "auto" else ("cifar10" if is_cifar(ctx) else "imagenet")
        self.resolved["policy"] = name
        if name not in _POLICIES:
            raise ConfigError(f"aug.policy must be auto or one of {sorted(_POLICIES)}, got '{c.policy}'")
        self.transform = v2.AutoAugment(_POLICIES[name], interpolation=_interpolation(c.interpolation))


@register_aug("randaugment", RandAugmentConfig)
class RandAugment(_TorchvisionPolicy):
    def __init__(self, ctx: AugContext, **cfg) -> None:
        super().__init__(ctx, **cfg)
        c = RandAugmentConfig(**cfg)
        if c.num_magnitude_bins < 2:  # torchvision's posterize levels divide by num_magnitude_bins - 1
            raise ConfigError(
                f"aug.num_magnitude_bins of aug=randaugment must be >= 2, got {c.num_magnitude_bins}"
            )
        if not 0 <= c.magnitude < c.num_magnitude_bins:
            raise ConfigError(
                f"aug.magnitude of aug=randaugment must be in [0, aug.num_magnitude_bins={c.num_magnitude_bins}), got "
                f"{c.magnitude}"
            )
        if c.num_ops < 0:
            raise ConfigError(f"aug.num_ops of aug=randaugment must be >= 0, got {c.num_ops}")
        self.transform = v2.RandAugment(
            c.num_ops, c.magnitude, c.num_magnitude_bins, interpolation=_interpolation(c.interpolation)
        )


@register_aug("trivialaugment", TrivialAugmentConfig)
class TrivialAugment(_TorchvisionPolicy):
    def __init__(self, ctx: AugContext, **cfg) -> None:
        super().__init__(ctx, **cfg)
        c = TrivialAugmentConfig(**cfg)
        if c.num_magnitude_bins < 2:
            raise ConfigError(
                f"aug.num_magnitude_bins of aug=trivialaugment must be >= 2, got {c.num_magnitude_bins}"
            )
        self.transform = v2.TrivialAugmentWide(
            c.num_magnitude_bins, interpolation=_interpolation(c.interpolation)
        )
