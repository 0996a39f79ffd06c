"""Load a local weight file (safetensors or a weights-only torch pickle) into an ImageClassifier."""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from ..errors import UserError
from .classifier import ImageClassifier

# Where a model's state dict sits inside a saved object: a Lightning checkpoint, {"model": ...}, or
# PyTorch's tutorial form ({"epoch", "model_state_dict", "optimizer_state_dict", ...}).
_CONTAINER_KEYS = ("state_dict", "model", "model_state_dict")
# Prefixes in front of the backbone's own keys: none (a bare timm / torchvision model), an
# ImageClassifier, a LightningModule holding the backbone or the ImageClassifier as `model`.
_PREFIXES = ("", "backbone.", "model.", "model.backbone.")
# Wrappers that insert a segment in every key: DistributedDataParallel and torch.compile.
_WRAPPERS = ("module.", "_orig_mod.")
_SHOWN = 5


def _strip_wrappers(key: str) -> str:
    stripped = True
    while stripped:
        stripped = False
        for wrapper in _WRAPPERS:
            if key.startswith(wrapper):
                key, stripped = key[len(wrapper) :], True
    # torch.compile's segment anywhere (a compiled model held by a module: model._orig_mod.backbone.)
    return key.replace("._orig_mod.", ".")


class WeightsFileError(UserError, ValueError):
    """A weight file (model.weights) cannot be read, or its tensors do not fit the model."""


#: What a weight file that cannot be read is to be instead.
_READABLE = "give model.weights a file written by torch.save or safetensors' save_file"


def load_refusal(err: BaseException) -> str:
    """Why ``torch.load(weights_only=True)`` refused a file, in its own first sentence: torch wraps
    the unpickler's reason in advice to retry with weights_only=False (never taken here)."""
    detail = str(err).split("WeightsUnpickler error:", 1)[-1].split("Check the documentation")[0]
    return " ".join(detail.split()).split(". ")[0]


def _read(path: Path) -> object:
    with open(path, "rb") as f:
        start = f.read(9)
    if not start:
        raise WeightsFileError(f"{path} is empty (0 bytes: a copy or download cut short?); {_READABLE}")
    # A safetensors file starts with its header's length and the header's "{"; a torch file is a zip
    # ("PK") or a pickle: read as what the bytes are, whatever the name's suffix.
    if len(start) == 9 and start[8:9] == b"{":
        try:
            return load_file(path, device="cpu")
        except SafetensorError as err:
            raise WeightsFileError(f"{path} is not a readable safetensors file ({err}); {_READABLE}") from err
    try:
        with open(path, "rb") as f:  # (an open file: torch.load reads a path by its suffix too)
            return torch.load(f, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        reason = load_refusal(err)
        if not reason.startswith("Unsupported global"):
            raise WeightsFileError(f"{path} is not a readable torch file ({reason}); {_READABLE}") from err
        raise WeightsFileError(
            f"{path} holds objects other than tensors and plain containers ({reason}); weight files are "
            "read with torch.load(weights_only=True), never unpickled in full. Re-save only the weights, "
            "e.g. torch.save(checkpoint['state_dict'], 'weights.pt') or safetensors' save_file, and set "
            "model.weights=<that file>"
        ) from err
    except (RuntimeError, EOFError) as err:
        raise WeightsFileError(f"{path} is not a readable torch file ({err}); {_READABLE}") from err
    except OSError:
        raise
    except Exception as err:  # bytes the unpickler stops on (KeyError, ValueError, ...): not a torch file
        raise WeightsFileError(
            f"{path} is not a readable torch file (reading it stopped on {type(err).__name__}: {err}); {_READABLE}"
        ) from err


def _state_dict(obj: object, path: Path) -> dict[str, torch.Tensor]:
    while isinstance(obj, Mapping):
        inner = next((obj[k] for k in _CONTAINER_KEYS if isinstance(obj.get(k), Mapping)), None)
        if inner is None:
            break
        obj = inner
    if not isinstance(obj, Mapping) or not obj:
        raise WeightsFileError(
            f"{path} holds no state dict (expected a mapping of names to tensors, at the top or under "
            f"{' / '.join(repr(k) for k in _CONTAINER_KEYS)}), got {'an empty ' if not obj else ''}"
            f"{type(obj).__name__}; re-save the model's state dict (torch.save(model.state_dict(), 'weights.pt')) "
            "and set model.weights=<that file>"
        )
    not_tensors = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:
        raise WeightsFileError(
            f"{path}: {len(not_tensors)} entries of the state dict are not tensors: {not_tensors[:_SHOWN]}; "
            "re-save the model's own state dict alone (torch.save(model.state_dict(), 'weights.pt')) and set "
            "model.weights=<that file>"
        )
    return {_strip_wrappers(str(k)): v for k, v in obj.items()}


def _pick_prefix(keys: list[str], expected: set[str]) -> str:
    def matches(prefix: str) -> int:
        return sum(k.startswith(prefix) and _strip_wrappers(k[len(prefix) :]) in expected for k in keys)

    return max(_PREFIXES, key=matches)


def key_listing(keys: list[str]) -> str:
    """The first keys of a list, and how many more (for messages about tensors that differ)."""
    more = f", ... (+{len(keys) - _SHOWN})" if len(keys) > _SHOWN else ""
    return ", ".join(keys[:_SHOWN]) + more


def load_weights(model: ImageClassifier, path: str | Path, *, strict_head: bool = False) -> dict:
    """Load ``path`` (``model.weights``) into ``model`` and return what was loaded.

    The file holds a bare timm / torchvision backbone, a whole ImageClassifier, or a Lightning
    checkpoint of either (``state_dict`` with ``model.`` or ``model.backbone.`` keys); DDP ``module.``
    and torch.compile ``_orig_mod.`` segments are dropped. A head of other shapes (another class
    count) is left at its initialisation and reported, or raises when ``strict_head``; every other
    missing, unexpected or mis-shaped key raises. Returns ``{"path", "prefix", "loaded",
    "dropped_head", "missing_head", "ignored"}``: ``prefix`` was cut from the file's keys, ``loaded``
    counts tensors copied, ``ignored`` lists file keys outside ``prefix`` (other modules of a checkpoint).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"weights file {path} not found; set model.weights=<file> to an existing file"
        )
    state = _state_dict(_read(path), path)

    target = model.backbone.state_dict()
    keys = list(state)
    prefix = _pick_prefix(keys, set(target))
    selected = {_strip_wrappers(k[len(prefix) :]): state[k] for k in keys if k.startswith(prefix)}
    ignored = [k for k in keys if not k.startswith(prefix)]
    if not set(selected) & set(target):
        raise WeightsFileError(
            f"{path}: no key fits model '{model.arch}'; file keys: {key_listing(keys)}; model keys: "
            f"{key_listing(list(target))}. Check model.name and model.weights"
        )

    head_prefixes = tuple(p[len("backbone.") :] for p in model.head_names())

    def is_head(key: str) -> bool:
        return key.startswith(head_prefixes)

    misshaped = [k for k in selected if k in target and selected[k].shape != target[k].shape]
    dropped_head = sorted(k for k in selected if is_head(k)) if any(map(is_head, misshaped)) else []
    missing_head = sorted(k for k in target if is_head(k) and k not in selected)
    if strict_head and (dropped_head or missing_head):
        raise WeightsFileError(
            f"{path}: the head of model '{model.arch}' does not fit the file (different shapes: "
            f"{[k for k in misshaped if is_head(k)]}, absent: {missing_head}); the file is for another "
            "class count. Load it without strict_head to start a fresh head"
        )

    missing = [
        k for k in target if k not in selected and not is_head(k) and not k.endswith("num_batches_tracked")
    ]
    unexpected = [k for k in selected if k not in target]
    misshaped = [k for k in misshaped if not is_head(k)]
    if missing or unexpected or misshaped:
        problems = []
        if missing:
            problems.append(f"{len(missing)} missing ({key_listing(missing)})")
        if unexpected:
            problems.append(f"{len(unexpected)} unexpected ({key_listing(unexpected)})")
        if misshaped:
            shapes = [
                f"{k}: file {tuple(selected[k].shape)} vs model {tuple(target[k].shape)}" for k in misshaped
            ]
            problems.append(f"{len(misshaped)} with other shapes ({key_listing(shapes)})")
        raise WeightsFileError(
            f"{path} does not fit model '{model.arch}'"
            + (f" (after cutting prefix '{prefix}')" if prefix else "")
            + f": {'; '.join(problems)}. The file is for another architecture or settings; check model.name "
            "and its options, or model.weights"
        )

    to_load = {k: v for k, v in selected.items() if k not in dropped_head}
    model.backbone.load_state_dict(to_load, strict=False)
    return {
        "path": str(path),
        "prefix": prefix,
        "loaded": len(to_load),
        "dropped_head": dropped_head,
        "missing_head": missing_head,
        "ignored": ignored,
    }
