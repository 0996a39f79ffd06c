"""Model registry: ``@register_model(name)``, ``create_model(name, num_classes, ...)`` and ``list_models()``."""

from __future__ import annotations

import difflib
import inspect
import logging
import pickle
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import NamedTuple

import torch
import torchvision.models as tvm
from safetensors import SafetensorError
from torch import nn

from ..errors import ConfigError, PretrainedWeightsError
from .classifier import IMAGENET_MEAN, IMAGENET_STD, ImageClassifier, MeanStd
from .preact_resnet import preact_resnet18
from .weights import load_refusal, load_weights

log = logging.getLogger(__name__)


class Backbone(NamedTuple):
    """What a registered builder returns: the network, its head module name(s), its weights' mean/std."""

    module: nn.Module
    head: tuple[str, ...]
    pretrained_mean_std: MeanStd | None


_BUILDERS: dict[str, Callable[..., Backbone]] = {}


def register_model(name: str):
    """Register a builder ``fn(num_classes: int, *, pretrained: bool, **options) -> Backbone``.

    With ``pretrained`` the builder loads the published weights and then fits a fresh
    ``num_classes`` head, so the result is ready for fine-tuning.
    """

    def wrap(fn):
        if name in _BUILDERS:
            raise ValueError(f"model '{name}' registered twice")
        _BUILDERS[name] = fn
        return fn

    return wrap


def list_models() -> list[str]:
    return sorted(_BUILDERS)


#: Options of a model's builder that settings of their own give (model.kwargs may not).
_SET_ELSEWHERE = {
    "num_classes": "the dataset's classes",
    "pretrained": "model.pretrained",
    "name": "model.name",
}


def check_options_set_elsewhere(options: dict) -> None:
    """``model.kwargs`` giving an option its own setting gives: ConfigError naming that setting."""
    taken = next((key for key in _SET_ELSEWHERE if key in options), None)
    if taken is not None:
        raise ConfigError(
            f"model.kwargs.{taken}: {taken} is set by {_SET_ELSEWHERE[taken]}, not by model.kwargs; leave it out of "
            "model.kwargs" + (f" (give model.{taken})" if taken != "num_classes" else "")
        )


def check_model_options(name: str, options: dict) -> None:
    """The keyword options ``model.kwargs`` gives a built-in model are its builder's (a builder that
    takes any, timm's, passes them on); else ConfigError naming the first unknown one, the close
    names and the model's options."""
    from ..errors import did_you_mean

    builder = _BUILDERS.get(name)
    if builder is None:
        return  # (an unknown model: create_model and check_model name it)
    params = inspect.signature(builder).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    allowed = [n for n, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY and n != "pretrained"]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        listed = f"its options: {', '.join(allowed)}" if allowed else "it takes none"
        raise ConfigError(
            f"model.kwargs.{unknown[0]}: model '{name}' has no option '{unknown[0]}' ({listed})"
            f"{did_you_mean(unknown[0], allowed, said_as='model.kwargs.{}') or '; remove it, or pick another model.name'}"
        )


def create_model(
    name: str,
    /,
    num_classes: int,
    *,
    pretrained: bool = False,
    weights: str | Path | None = None,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    **options,
) -> ImageClassifier:
    """Build a registered model as an ImageClassifier taking [0, 1] images.

    ``pretrained`` downloads the published weights (torch hub / Hugging Face hub cache); ``weights``
    loads a local file instead (see ``load_weights``), and when both are set the file wins and
    nothing is downloaded. ``options`` go to the builder (``stem_stride`` for ``preactresnet18``;
    ``name`` and any ``timm.create_model`` keyword for ``timm``). ``name`` is positional-only so
    that ``timm``'s ``name`` option can be passed by keyword.
    """
    if name not in _BUILDERS:
        raise ConfigError(f"unknown model '{name}'; set model.name to one of: {', '.join(list_models())}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be at least 1, got {num_classes}")
    builder = _BUILDERS[name]
    check_model_options(name, options)
    download = pretrained and weights is None
    arch = f"timm:{options['name']}" if name == "timm" else name
    if pretrained and weights is not None:
        log.info(
            "model.weights=%s is loaded instead of downloading the pretrained weights of '%s'", weights, arch
        )
    backbone = builder(num_classes, pretrained=download, **options)
    model = ImageClassifier(
        backbone.module,
        backbone.head,
        mean=mean,
        std=std,
        arch=arch,
        pretrained_mean_std=backbone.pretrained_mean_std,
    )
    if weights is not None:
        report = load_weights(model, weights)
        log.info(
            "loaded %d tensors from %s into '%s'%s",
            report["loaded"],
            report["path"],
            arch,
            f"; fresh head (file's head {report['dropped_head']} has another class count)"
            if report["dropped_head"]
            else "",
        )
    return model


def _offline_error(what: str, location: Path, cause: BaseException) -> PretrainedWeightsError:
    return PretrainedWeightsError(
        f"cannot get the pretrained weights {what}; they are downloaded once into {location}. Without "
        "network access put them there, or save them to a file and set model.weights=<file>, or train "
        f"from scratch with model.pretrained=false ({type(cause).__name__}: {cause})"
    )


@register_model("preactresnet18")
def _preactresnet18(
    num_classes: int, *, pretrained: bool, stem_stride: int = 1, final_bn_relu: bool = False
) -> Backbone:
    if pretrained:
        raise PretrainedWeightsError(
            "preactresnet18 has no published pretrained weights; set model.pretrained=false "
            "or load your own with model.weights=<file>"
        )
    net = preact_resnet18(num_classes, stem_stride=stem_stride, final_bn_relu=final_bn_relu)
    return Backbone(net, ("linear",), None)


@contextmanager
def _no_empty_folders_left(*folders: Path) -> Iterator[None]:
    """A failed download leaves none of the empty cache folders it made on its way (torch hub
    makes ``<hub>/checkpoints`` before it fetches): the cache is as it was before the attempt."""
    made = [p for folder in folders for p in (folder, *folder.parents) if not p.exists()]
    try:
        yield
    except BaseException:
        for p in sorted(set(made), key=lambda q: len(q.parts), reverse=True):  # deepest first
            with suppress(OSError):  # rmdir removes only a folder left empty
                p.rmdir()
        raise


def _torchvision_resnet(
    num_classes: int, pretrained: bool, build: Callable[..., tvm.ResNet], weights: tvm.WeightsEnum
) -> Backbone:
    preset = weights.transforms()
    mean_std = (tuple(preset.mean), tuple(preset.std))
    if not pretrained:
        return Backbone(build(num_classes=num_classes), ("fc",), mean_std)
    location = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
    try:
        with _no_empty_folders_left(location.parent):
            # torchvision's build(weights=...) reads the file with torch.load(weights_only=False):
            # the same file, read as tensors only (a cached file is never unpickled in full).
            state = torch.hub.load_state_dict_from_url(
                weights.url, map_location="cpu", check_hash=True, weights_only=True
            )
    except OSError as err:
        raise _offline_error(f"{weights} ({weights.url})", location, err) from err
    except (RuntimeError, pickle.UnpicklingError, EOFError, ValueError) as err:
        raise PretrainedWeightsError(
            f"{location} is not the weight file {weights} (torch.load with weights_only=True refused it: "
            f"{load_refusal(err)}); delete it and run again to download it, or train from scratch with "
            "model.pretrained=false"
        ) from None
    net = build(num_classes=len(weights.meta["categories"]))
    try:
        net.load_state_dict(state)
    except (RuntimeError, TypeError) as err:
        raise PretrainedWeightsError(
            f"{location} does not hold the tensors of {weights} ({str(err).splitlines()[0][:300]}); delete it "
            "and run again to download it, or train from scratch with model.pretrained=false"
        ) from None
    if net.fc.out_features != num_classes:
        net.fc = nn.Linear(net.fc.in_features, num_classes)
    return Backbone(net, ("fc",), mean_std)


#: The published weights of the torchvision models (their file's name in torch hub's cache is the URL's).
TORCHVISION_WEIGHTS = {
    "resnet18": tvm.ResNet18_Weights.IMAGENET1K_V1,
    "resnet50": tvm.ResNet50_Weights.IMAGENET1K_V1,
}


def pretrained_cached(name: str, timm_name: str | None = None) -> bool:
    """Whether the published weights of model ``name`` (``timm``: of timm's ``timm_name``) are in
    their cache: torch hub's for torchvision's and timm's URL weights, the Hugging Face hub's for
    timm's hub weights. False where not known (another source)."""
    checkpoints = Path(torch.hub.get_dir()) / "checkpoints"
    if name != "timm":
        weights = TORCHVISION_WEIGHTS.get(name)
        return weights is not None and (checkpoints / Path(weights.url).name).is_file()
    import huggingface_hub
    import timm

    cfg = timm.models.get_pretrained_cfg(timm_name) if timm_name else None
    if cfg is None:
        return False
    if cfg.hf_hub_id:
        files = ("model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin")
        return any(isinstance(huggingface_hub.try_to_load_from_cache(cfg.hf_hub_id, f), str) for f in files)
    return bool(cfg.url) and (checkpoints / Path(str(cfg.url)).name).is_file()


@register_model("resnet18")
def _resnet18(num_classes: int, *, pretrained: bool) -> Backbone:
    return _torchvision_resnet(num_classes, pretrained, tvm.resnet18, TORCHVISION_WEIGHTS["resnet18"])


@register_model("resnet50")
def _resnet50(num_classes: int, *, pretrained: bool) -> Backbone:
    return _torchvision_resnet(num_classes, pretrained, tvm.resnet50, TORCHVISION_WEIGHTS["resnet50"])


def _module_names(net: nn.Module, modules: nn.Module | Sequence[nn.Module]) -> tuple[str, ...]:
    names = {id(m): n for n, m in net.named_modules()}
    modules = modules if isinstance(modules, Sequence) else [modules]
    return tuple(names[id(m)] for m in modules)


def check_timm_model(name: str | None, pretrained: bool) -> None:
    """Refuse a timm architecture that timm does not have (naming close ones), or its download of
    pretrained weights it has none of; called before the data is read, and again when built."""
    import timm

    if not name:
        raise ConfigError(
            "model 'timm' needs the timm architecture as option name=<timm model> "
            "(in the config: model=timm model.name=<timm model>), e.g. resnet10t"
        )
    if not timm.is_model(name):
        base = name.split(".")[0].lower()
        close = difflib.get_close_matches(base, timm.list_models(), n=3)
        # A pattern that lists some models: the name's longest run of letters, else a close name's
        # (a misspelt family, resnt18, lists none).
        listing = "timm.list_models()"
        for source in (base, *close[:1]):
            family = max(re.findall("[a-z]+", source) or [source], key=len)
            if timm.list_models(f"*{family}*"):
                listing = f"timm.list_models('*{family}*')"
                break
        raise ConfigError(
            f"model.name: '{name}' is not a timm model (timm {timm.__version__})"
            + (f"; close names: {', '.join(close)}" if close else "")
            + f"; list the choices with {listing} and set model.name to one"
        )
    arch, dot, tag = name.partition(".")
    if dot:  # a pretrained tag (resnet50.tv_in1k): timm knows the architecture whatever the tag
        try:  # timm's own config of the tag (".untrained" tags have one, and no weights)
            known = timm.models.get_pretrained_cfg(name) is not None
        except RuntimeError:  # "Invalid pretrained tag"
            known = False
        tagged = timm.list_pretrained(f"{arch}.*")
        if not known:
            raise ConfigError(
                f"model.name: '{name}': timm {timm.__version__} has no weights tagged '{tag}' for {arch}"
                + (
                    f"; its tags: {', '.join(t.partition('.')[2] for t in tagged)}"
                    if tagged
                    else "; it has none"
                )
                + f" (model.name={arch} alone: timm's default weights, or none with model.pretrained=false)"
            )
    if pretrained and not timm.models.is_model_pretrained(name):
        raise PretrainedWeightsError(
            f"timm has no pretrained weights for '{name}'; pick one of timm.list_pretrained('{arch}.*') "
            "for model.name, or set model.pretrained=false"
        )


@contextmanager
def _hub_offline_where_unreachable(pretrained: bool) -> Iterator[None]:
    """Where the Hugging Face hub's host cannot even be named (no network, no DNS), its client is
    put in offline mode for the download: weights in its cache load at once, and missing ones fail
    at once, where each request was retried for about a minute first, warning each time."""
    import socket
    from urllib.parse import urlparse

    import huggingface_hub.constants as hub

    host = urlparse(hub.ENDPOINT).hostname
    unreachable = False
    if pretrained and host and not hub.HF_HUB_OFFLINE:
        try:
            socket.getaddrinfo(host, 443)
        except OSError:
            unreachable = True
    before = hub.HF_HUB_OFFLINE
    if unreachable:
        hub.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        hub.HF_HUB_OFFLINE = before


@register_model("timm")
def _timm(num_classes: int, *, pretrained: bool, name: str | None = None, **timm_options) -> Backbone:
    # timm (and the hub's settings) load only when a timm model is built: start-up stays quick.
    import huggingface_hub.constants
    import timm

    check_timm_model(name, pretrained)
    caches = (Path(torch.hub.get_dir()) / "checkpoints", Path(huggingface_hub.constants.HF_HUB_CACHE))
    try:
        # timm drops the pretrained classifier itself when num_classes differs and starts a fresh one.
        with _no_empty_folders_left(*caches), _hub_offline_where_unreachable(pretrained):
            net = timm.create_model(name, pretrained=pretrained, num_classes=num_classes, **timm_options)
    except (SafetensorError, pickle.UnpicklingError, EOFError) as err:  # a cached file damaged
        cfg = timm.models.get_pretrained_cfg(name)
        location = (
            Path(huggingface_hub.constants.HF_HUB_CACHE) / f"models--{cfg.hf_hub_id.replace('/', '--')}"
            if cfg is not None and cfg.hf_hub_id
            else Path(torch.hub.get_dir()) / "checkpoints"
        )
        raise PretrainedWeightsError(
            f"the cached pretrained weights of timm '{name}' (under {location}) cannot be read "
            f"({load_refusal(err)}): delete that folder's copy and run again to download them, or train from "
            "scratch with model.pretrained=false"
        ) from None
    except OSError as err:
        cfg = timm.models.get_pretrained_cfg(name)
        if cfg is not None and cfg.hf_hub_id:
            source = f"hf-hub:{cfg.hf_hub_id}"
            location = (
                Path(huggingface_hub.constants.HF_HUB_CACHE) / f"models--{cfg.hf_hub_id.replace('/', '--')}"
            )
        else:
            source = cfg.url if cfg is not None else "unknown source"
            location = Path(torch.hub.get_dir()) / "checkpoints"
        raise _offline_error(f"of timm '{name}' ({source})", location, err) from err
    cfg = net.pretrained_cfg
    mean_std = (tuple(cfg["mean"]), tuple(cfg["std"])) if "mean" in cfg and "std" in cfg else None
    return Backbone(net, _module_names(net, net.get_classifier()), mean_std)
