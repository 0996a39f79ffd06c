"""Every built-in dataset reader, imported for its registration (``@register_dataset``)."""

from . import aircraft, cars, cifar, cub, flowers, imagefolder, imagenet, tinyimagenet  # noqa: F401
