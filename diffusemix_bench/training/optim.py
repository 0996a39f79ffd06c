"""Optimiser with per-parameter-group learning rates, and epoch-exact step-wise schedules."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from ..config import OptimConfig, SchedConfig
from ..errors import ConfigError


def build_optimizer(cfg: OptimConfig, model: nn.Module) -> torch.optim.Optimizer:
    """SGD (optionally Nesterov), Adam or AdamW; the head gets ``head_lr`` when set."""
    if cfg.head_lr is not None and hasattr(model, "head_parameters"):
        head = list(model.head_parameters())
        head_ids = {id(p) for p in head}
        backbone = [p for p in model.parameters() if id(p) not in head_ids]
        groups = [
            {"params": [p for p in backbone if p.requires_grad], "lr": cfg.lr, "name": "backbone"},
            {"params": [p for p in head if p.requires_grad], "lr": cfg.head_lr, "name": "head"},
        ]
    elif cfg.head_lr is not None:
        raise ConfigError("optim.head_lr needs a model that exposes head_parameters()")
    else:
        groups = [{"params": [p for p in model.parameters() if p.requires_grad], "lr": cfg.lr, "name": "all"}]
    name = cfg.name.lower()
    if name == "sgd":
        return torch.optim.SGD(
            groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov, weight_decay=cfg.weight_decay
        )
    if name in ("adam", "adamw"):
        cls = torch.optim.AdamW if name == "adamw" else torch.optim.Adam
        return cls(groups, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)
    raise ConfigError(f"optim.name must be one of sgd, adam, adamw; got '{cfg.name}'")


def lr_factor_fn(cfg: SchedConfig, steps_per_epoch: int, total_steps: int) -> Callable[[int], float]:
    """Multiplier of the base learning rate at a given optimiser step.

    Step and multistep decay happen at epoch boundaries; cosine decays every step over the whole
    run; warm-up ramps linearly from ``warmup_start_factor`` over ``warmup_epochs``.
    """
    if steps_per_epoch < 1:
        raise ConfigError("the training set yields no batch per epoch; lower dataset.batch_size")
    name = cfg.name.lower()
    if name not in ("none", "step", "multistep", "cosine"):
        raise ConfigError(f"sched.name must be one of none, step, multistep, cosine; got '{cfg.name}'")
    warmup_steps = round(cfg.warmup_epochs * steps_per_epoch)
    total_steps = max(1, total_steps)

    def factor(step: int) -> float:
        if step < warmup_steps:
            return cfg.warmup_start_factor + (1 - cfg.warmup_start_factor) * step / warmup_steps
        epoch = step // steps_per_epoch
        if name == "step":
            return cfg.gamma ** (epoch // cfg.step_size)
        if name == "multistep":
            return cfg.gamma ** sum(epoch >= m for m in cfg.milestones)
        if name == "cosine":
            t = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
            return cfg.min_lr_factor + (1 - cfg.min_lr_factor) * 0.5 * (1 + math.cos(math.pi * t))
        return 1.0

    return factor


def build_scheduler(
    cfg: SchedConfig, optimizer: torch.optim.Optimizer, steps_per_epoch: int, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor_fn(cfg, steps_per_epoch, total_steps))
