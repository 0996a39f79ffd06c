"""Classifiers for the benchmarks: PreActResNet-18, torchvision ResNets and any timm model, in pixel space."""

from .classifier import IMAGENET_MEAN, IMAGENET_STD, ImageClassifier, Normalize
from .factory import Backbone, PretrainedWeightsError, create_model, list_models, register_model
from .preact_resnet import PreActBlock, PreActResNet, preact_resnet18
from .weights import load_weights

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "Backbone",
    "ImageClassifier",
    "Normalize",
    "PreActBlock",
    "PreActResNet",
    "PretrainedWeightsError",
    "create_model",
    "list_models",
    "load_weights",
    "preact_resnet18",
    "register_model",
]
