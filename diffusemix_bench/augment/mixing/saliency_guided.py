"""Shared pieces of the saliency-guided mixing methods (PuzzleMix, Co-Mixup, GuidedMixup):
input-gradient saliency and the clean-input loss term (per-dataset settings: batch_mix.py)."""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import nn

from ..base import AugBatch, Augmentation

log = logging.getLogger(__name__)


def normalized_input(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """``images`` in the model's normalised input space (the space the reference code works in)."""
    normalize = getattr(model, "normalize", None)
    return normalize(images) if normalize is not None else images


def input_std(model: nn.Module) -> torch.Tensor | float:
    normalize = getattr(model, "normalize", None)
    return normalize.std if normalize is not None else 1.0


def input_mean(model: nn.Module) -> torch.Tensor | float:
    normalize = getattr(model, "normalize", None)
    return normalize.mean if normalize is not None else 0.0


def loss_input_gradient(
    model: nn.Module, images: torch.Tensor, targets: torch.Tensor, *, eval_mode: bool, keep_graph: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Gradient of the mean cross-entropy with respect to the model's normalised input.

    A separate forward/backward: ``torch.autograd.grad`` with respect to the input only, so no
    parameter gradient is written. ``eval_mode`` runs it with the model in eval mode (the references'
    choice when no clean loss is trained on); ``keep_graph`` returns the logits with their graph so
    that the clean loss can be trained on this same forward (the references' ``clean_lam > 0`` path).
    """
    was_training = model.training
    if eval_mode:
        model.eval()
    try:
        with torch.enable_grad():
            x = images.detach().requires_grad_(True)
            logits = model(x)
            # Cross-entropy with probability targets: mean over the batch of -sum_k t_k log p_k.
            loss = F.cross_entropy(logits.float(), targets)
            (grad,) = torch.autograd.grad(loss, x, retain_graph=keep_graph)
    finally:
        model.train(was_training)
    # d loss / d x = d loss / d z / std for z = (x - mean) / std: the references differentiate in z.
    return (grad * input_std(model)).detach(), (logits if keep_graph else None)


def gradient_saliency(grad: torch.Tensor) -> torch.Tensor:
    """Per-pixel saliency sqrt(mean over channels of grad^2), (N, H, W) (PuzzleMix main.py)."""
    return grad.pow(2).mean(1).sqrt()


def sum_to_one(maps: torch.Tensor) -> torch.Tensor:
    """Each map divided by its sum over the last two dims; an all-zero map becomes uniform (the
    references divide without a guard, which would turn it into NaN)."""
    total = maps.sum((-2, -1), keepdim=True)
    uniform = torch.full_like(maps, 1.0 / (maps.shape[-1] * maps.shape[-2]))
    return torch.where(total > 0, maps / total.clamp_min(torch.finfo(maps.dtype).tiny), uniform)


class CleanLossAugmentation(Augmentation):
    """An augmentation that may train on a clean-input loss beside the mixed one.

    With weight ``w > 0`` the batch becomes ``[mixed; clean]`` with targets ``[t_mix; t_clean]`` and
    ``num_clean = N``: the training loss adds ``w * CE(clean)`` to the mixed rows' loss (with
    ``loss.criterion=bce_softmax``, the references' ``2 w CE(clean) / K``; see ``TrainLoss``). The
    clean logits are the ones of the saliency forward (train mode), reused by :meth:`logits`, as the
    references back-propagate that same forward.
    """

    def __init__(self, ctx, **cfg) -> None:
        super().__init__(ctx, **cfg)
        self._clean: tuple[torch.Tensor, torch.Tensor] | None = None

    def with_clean_loss(
        self,
        mixed: torch.Tensor,
        mixed_targets: torch.Tensor,
        clean: torch.Tensor,
        clean_logits: torch.Tensor,
        clean_targets: torch.Tensor,
        weight: float,
    ) -> AugBatch:
        inputs = torch.cat([mixed, clean])
        targets = torch.cat([mixed_targets, clean_targets])
        self._clean = (inputs, clean_logits)
        return AugBatch(inputs, targets, num_clean=len(clean), clean_weight=weight)

    def logits(self, model: nn.Module, batch: AugBatch) -> torch.Tensor:
        pending, self._clean = self._clean, None
        if pending is None or pending[0] is not batch.inputs:
            return model(batch.inputs)
        clean_logits = pending[1]
        mixed_logits = model(batch.inputs[: len(batch.inputs) - len(clean_logits)])
        return torch.cat([mixed_logits, clean_logits.to(mixed_logits.dtype)])
