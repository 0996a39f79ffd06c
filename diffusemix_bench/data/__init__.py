"""Dataset readers for every paper dataset and any image folder."""

from . import aircraft, cars, cifar, cub, flowers, imagefolder, imagenet, tinyimagenet  # noqa: F401  (registration)
from .base import (
    CorruptImageError,
    DatasetNotFoundError,
    ImageClassificationDataset,
    SplitNotAvailableError,
    per_class_subset,
    stratified_holdout,
)
from .layouts import DATASET_LAYOUTS
from .registry import create_dataset, list_datasets, register_dataset

__all__ = [
    "DATASET_LAYOUTS",
    "CorruptImageError",
    "DatasetNotFoundError",
    "ImageClassificationDataset",
    "SplitNotAvailableError",
    "create_dataset",
    "list_datasets",
    "per_class_subset",
    "register_dataset",
    "stratified_holdout",
]
