"""Co-Mixup (Kim, Choo, Jeong & Song, ICLR 2021): batch-level saliency-guided mixing found by
iterated graph cuts with a supermodular diversity penalty, following snu-mllab/Co-Mixup
(main.py, mixup.py, match.py)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...config import CoMixupConfig
from ...errors import ConfigError
from ..base import AugBatch
from ..registry import register_aug
from .batch_mix import check_alpha
from .graphcut import RANDOM_BLOCK_NUMS, alpha_beta_swap, check_block_grid, check_solver, gco_swap
from .saliency_guided import (
    CleanLossAugmentation,
    gradient_saliency,
    loss_input_gradient,
)

# Soft labels that mix two of three assigned inputs half and half (match.py: graphcut_wrapper), and
# their smoothness costs to those three inputs.
_SOFT_LABELS = np.array([[0.5, 0.5, 0.0], [0.5, 0.0, 0.5], [0.0, 0.5, 0.5]], dtype=np.float32)
_SOFT_SMOOTH = np.array([[0.25, 0.25, 1.0], [0.25, 1.0, 0.25], [1.0, 0.25, 0.25]], dtype=np.float32)


@register_aug("comixup", CoMixupConfig)
class CoMixup(CleanLossAugmentation):
    """Every output of a partition is a block-wise selection among all inputs of the partition,
    chosen jointly to maximise the saliency shown while penalising outputs that reuse the same
    inputs (a thresholded supermodular term, modularised and minimised output by output by graph
    cut)."""

    def __init__(self, ctx, **cfg) -> None:
        super().__init__(ctx, **cfg)
        settings = self.resolve_per_dataset(
            "comixup",
            {"alpha": cfg.get("alpha"), "block_num": cfg.get("block_num")},
            cfg.get("dataset_defaults"),
        )
        self.alpha = float(settings["alpha"])
        check_alpha(self.alpha, "comixup")  # (the Dirichlet prior's concentration)
        self.block_num = int(settings["block_num"])
        self.part = int(cfg.get("part", 20))
        self.beta = float(cfg.get("beta", 0.32))
        self.gamma = float(cfg.get("gamma", 1.0))
        self.thres = float(cfg.get("thres", 0.83))
        self.thres_type = str(cfg.get("thres_type", "hard"))
        self.eta = float(cfg.get("eta", 0.05))
        self.omega = float(cfg.get("omega", 0.001))
        self.set_resolve = bool(cfg.get("set_resolve", True))
        self.niter = int(cfg.get("niter", 4))
        self.clean_lam = float(cfg.get("clean_lam", 1.0))
        self.solver = check_solver(cfg.get("solver", "gco"))
        if self.thres_type not in ("hard", "soft"):
            raise ConfigError(f"aug.thres_type must be 'hard' or 'soft', got '{self.thres_type}'")
        if self.block_num != -1 and self.block_num < 1:
            raise ConfigError(f"aug.block_num must be -1 (random) or >= 1, got {self.block_num}")
        if self.part < 2 or self.niter < 1:
            raise ConfigError(
                f"aug.part must be >= 2 (images mixed together; a part of one is left as it is) and "
                f"aug.niter >= 1, got {self.part} and {self.niter}"
            )
        grids = RANDOM_BLOCK_NUMS if self.block_num == -1 else (self.block_num,)
        check_block_grid("comixup", int(ctx.image_size), grids)

    def apply(
        self, images: torch.Tensor, targets: torch.Tensor, indices: torch.Tensor, model: nn.Module
    ) -> AugBatch:
        n, _, height, width = images.shape
        if height != width:
            raise ValueError(f"Co-Mixup needs square images, got {height}x{width}; use a square crop")
        grad, clean_logits = loss_input_gradient(
            model, images, targets, eval_mode=self.clean_lam == 0, keep_graph=self.clean_lam > 0
        )
        saliency = gradient_saliency(grad)
        block_num = self.block_num if self.block_num != -1 else 2 ** int(torch.randint(1, 5, ()).item())
        with torch.no_grad():
            compat = compatibility_distance(saliency)
            pooled = F.avg_pool2d(saliency[:, None], width // block_num)[:, 0]
            mixed, mixed_targets = co_mixup(
                images,
                targets,
                pooled,
                compat,
                part=self.part,
                alpha=self.alpha,
                beta=self.beta,
                gamma=self.gamma,
                eta=self.eta,
                omega=self.omega,
                thres=self.thres,
                thres_type=self.thres_type,
                set_resolve=self.set_resolve,
                niter=self.niter,
                solver=self.solver,
            )
        if self.clean_lam > 0:
            return self.with_clean_loss(mixed, mixed_targets, images, clean_logits, targets, self.clean_lam)
        return AugBatch(mixed, mixed_targets)


def compatibility_distance(saliency: torch.Tensor) -> torch.Tensor:
    """L1 distance between the most salient 8x8 windows of every pair of images (Co-Mixup main.py)."""
    pooled = F.avg_pool2d(saliency[:, None], kernel_size=8, stride=1)[:, 0]
    flat = pooled.reshape(len(pooled), -1).argmax(1)
    loc = torch.stack([flat // pooled.shape[-1], flat % pooled.shape[-1]], 1).float()
    return (loc[:, None] - loc[None]).abs().sum(-1)


def co_mixup(
    images: torch.Tensor,
    targets: torch.Tensor,
    saliency: torch.Tensor,
    compat: torch.Tensor,
    *,
    part: int,
    alpha: float,
    beta: float,
    gamma: float,
    eta: float,
    omega: float,
    thres: float,
    thres_type: str,
    set_resolve: bool,
    niter: int,
    solver: str = "gco",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Co-Mixup outputs for a batch split into partitions of ``part`` inputs (mixup.py:
    mixup_process). ``saliency`` is pooled to the labelling grid, (N, B, B). Partitions of the same
    size are solved together."""
    n = len(images)
    out_images = torch.empty_like(images)
    out_targets = torch.empty_like(targets)
    starts = list(range(0, n, part))
    for size in sorted({min(part, n - s) for s in starts}):
        group = [s for s in starts if min(part, n - s) == size]
        idx = torch.tensor([s + j for s in group for j in range(size)], device=images.device)
        sc = saliency[idx].reshape(len(group), size, *saliency.shape[1:])
        sc_norm = sc / sc.reshape(len(group), size, -1).sum(-1).clamp_min(1e-30)[..., None, None]
        dist = torch.stack([compat[s : s + size, s : s + size] for s in group])
        # The reference divides by the sum unguarded (NaN when every image peaks at the same place).
        dist = dist / dist.sum((1, 2), keepdim=True).clamp_min(1e-30) * size
        eye = torch.eye(size, device=images.device)
        compat_weight = (1 - omega) * eye + omega * dist
        mask = co_mixup_masks(
            (-sc_norm).float().cpu(),
            compat_weight.float().cpu(),
            alpha=alpha,
            beta=beta,
            gamma=gamma,
            eta=eta,
            thres=thres,
            thres_type=thres_type,
            set_resolve=set_resolve,
            niter=niter,
            solver=solver,
        ).to(images.device, images.dtype)
        mixed, mixed_targets = mix_by_masks(
            mask,
            images[idx].reshape(len(group), size, *images.shape[1:]),
            targets[idx].reshape(len(group), size, -1),
        )
        out_images[idx] = mixed.reshape(-1, *images.shape[1:])
        out_targets[idx] = mixed_targets.reshape(-1, targets.shape[-1])
    return out_images, out_targets


def mix_by_masks(
    mask: torch.Tensor, images: torch.Tensor, targets: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Outputs and soft targets from block masks (P, O, B, B, I) over the inputs (match.py:
    mix_input): each output block is the mask-weighted sum of the inputs' blocks, and its target the
    inputs' targets weighted by their share of the output's area."""
    n_prob, n_out, block_num, _, n_in = mask.shape
    _, _, channels, height, width = images.shape
    pixel_mask = F.interpolate(
        mask.permute(0, 1, 4, 2, 3).reshape(n_prob * n_out, n_in, block_num, block_num), size=width
    ).reshape(n_prob, n_out, n_in, height * width)
    # Per pixel, (outputs x inputs) @ (inputs x channels).
    mixed = pixel_mask.permute(0, 3, 1, 2) @ images.reshape(n_prob, n_in, channels, -1).permute(0, 3, 1, 2)
    mixed = mixed.permute(0, 2, 3, 1).reshape(n_prob, n_out, channels, height, width)
    weights = mask.sum((2, 3))
    mixed_targets = torch.einsum("poi,pik->pok", weights, targets)
    return mixed, mixed_targets / mixed_targets.sum(-1, keepdim=True)


def co_mixup_masks(
    cost: torch.Tensor,
    compat: torch.Tensor,
    *,
    alpha: float,
    beta: float,
    gamma: float,
    eta: float,
    thres: float,
    thres_type: str,
    set_resolve: bool,
    niter: int,
    solver: str = "gco",
) -> torch.Tensor:
    """Block masks (P, O, B, B, I) of every output over the inputs of each partition (match.py:
    get_onehot_matrix): ``cost`` (P, I, B, B) is minus the normalised saliency, ``compat`` (P, I, I)
    the compatibility-weighted identity A. Outputs are updated one at a time, each by a graph cut
    on its saliency cost plus the modularised diversity penalty of the other outputs."""
    n_prob, n_in, height, width = cost.shape
    n_out = n_in
    thres = thres * height * width
    beta = beta / height / width
    gamma = gamma / height / width
    eta = eta / height / width
    prior = torch.distributions.Dirichlet(torch.full((n_prob, n_in), float(alpha))).sample()
    cost = cost - eta * torch.log(prior + 1e-8)[..., None, None]
    labels = torch.randint(0, n_in, (n_prob, n_out, height, width))
    mask = F.one_hot(labels, n_in).float()
    loss_prev = _objective(cost, mask, beta, gamma)
    usage = mask.sum((1, 2, 3))
    add_cost = None
    running = torch.ones(n_prob, dtype=torch.bool)
    for it in range(niter):
        live = torch.nonzero(running)[:, 0]
        for i in range(n_out):
            counts = mask[live, i].sum((1, 2))
            usage[live] -= counts
            weights, used = compat[live], usage[live][..., None]
            weighted = (weights @ used)[..., 0]
            over = (weighted > thres).float()
            if thres_type == "hard":
                # match.py writes (A @ p > thres).float() * A @ p, which Python evaluates as
                # ((A @ p > thres) * A) @ p: the indicator weights A's columns, not its rows.
                modular = 2 * gamma * ((over[:, None, :] * weights) @ used)[..., 0]
            else:
                modular = 2 * gamma * over * (weighted - thres)
            unary = cost[live] + modular[..., None, None]
            if add_cost is not None:
                unary = unary + gamma * add_cost[live, i][..., None, None]
            mask[live, i] = _graphcut_outputs(
                unary.permute(0, 2, 3, 1), counts, beta, first_pass=it == 0, solver=solver
            )
            usage[live] += mask[live, i].sum((1, 2))
        if it == niter - 2 and set_resolve:
            add_cost = _resolve_duplicates((mask.sum((2, 3)) > 0).float())
        loss = _objective(cost, mask, beta, gamma)
        # match.py stops once an outer iteration changes the objective by less than 1e-6 (relative).
        running &= ~((loss_prev - loss).abs() / loss.abs() < 1e-6)
        loss_prev = loss
        if not running.any():
            break
    return mask


def _objective(cost: torch.Tensor, mask: torch.Tensor, beta: float, gamma: float) -> torch.Tensor:
    """Co-Mixup objective without thresholding (match.py: obj_fn), one value per problem."""
    n_prob, n_out = mask.shape[:2]
    counts = mask.reshape(n_prob, n_out, -1, mask.shape[-1]).sum(2)
    loss = (cost.permute(0, 2, 3, 1)[:, None] * mask).sum((1, 2, 3, 4))
    loss = loss + beta / 2 * (
        ((mask[:, :, :-1] - mask[:, :, 1:]) ** 2).sum((1, 2, 3, 4))
        + ((mask[:, :, :, :-1] - mask[:, :, :, 1:]) ** 2).sum((1, 2, 3, 4))
    )
    return loss + gamma * ((counts.sum(1) ** 2).sum(-1) - (counts**2).sum((1, 2)))


def _resolve_duplicates(assigned: torch.Tensor) -> torch.Tensor:
    """For outputs that use the same set of inputs (more than one), a unit cost on the first input
    for the earlier output and on the second for the later (match.py: resolve_label)."""
    add_cost = torch.zeros_like(assigned)
    for p in range(len(assigned)):
        same = (assigned[p][:, None] - assigned[p][None]).abs().sum(-1) == 0
        for i1, i2 in torch.nonzero(torch.triu(same, diagonal=1)).tolist():
            used = torch.nonzero(assigned[p, i1])[:, 0]
            if len(used) > 1:
                add_cost[p, i1, used[0]] = 1.0
                add_cost[p, i2, used[1]] = 1.0
    return add_cost


def _graphcut_outputs(
    unary: torch.Tensor, counts: torch.Tensor, beta: float, first_pass: bool, solver: str = "gco"
) -> torch.Tensor:
    """One output's block mask per problem by alpha-beta swap (match.py: graphcut_wrapper).

    After the first pass, an output that used exactly two inputs may also take a half-half mix of
    them, and one that used three or more may take half-half mixes of its three most used inputs;
    those extra labels cost the mean of their inputs' costs minus 5e-4. Costs are made integers as
    pyGCO does for float energies (data x 100000, edge weight x 1000, smoothness x 100, truncated).
    """
    n_prob, height, width, n_in = unary.shape
    unary = unary.numpy().astype(np.float32)
    counts = counts.numpy()
    n_lab = n_in + 3
    data = np.zeros((n_prob, height, width, n_lab), dtype=np.float32)
    data[..., :n_in] = unary
    smooth = np.broadcast_to(1.0 - np.eye(n_lab, dtype=np.float32), (n_prob, n_lab, n_lab)).copy()
    num_labels = np.full(n_prob, n_in)
    soft = np.zeros((n_prob, 3, n_in), dtype=np.float32)
    for p in range(n_prob):
        used = np.nonzero(counts[p] > 0)[0]
        if first_pass or len(used) < 2:
            continue
        if len(used) == 2:
            data[p, ..., n_in] = unary[p][..., used].mean(-1) - np.float32(5e-4)
            smooth[p, n_in, used] = smooth[p, used, n_in] = 0.25
            soft[p, 0, used] = 0.5
            num_labels[p] = n_in + 1
        else:
            top = np.sort(torch.topk(torch.from_numpy(counts[p]), 3).indices.numpy())
            data[p, ..., n_in:] = unary[p][..., top] @ _SOFT_LABELS - np.float32(5e-4)
            extra = np.arange(n_in, n_lab)
            smooth[p][np.ix_(extra, top)] = _SOFT_SMOOTH
            smooth[p][np.ix_(top, extra)] = _SOFT_SMOOTH.T
            soft[p][:, top] = _SOFT_LABELS
            num_labels[p] = n_in + 3
    if solver == "gco":
        # The reference's own arrays (graphcut_multi): float32 costs, edge weights beta * ones.
        edge = np.float32(beta)
        labels = gco_swap(
            data,
            smooth,
            np.full((n_prob, height - 1, width), edge, dtype=np.float32),
            np.full((n_prob, height, width - 1), edge, dtype=np.float32),
            num_labels,
        )
    else:
        # pyGCO scales the float32 edge weight beta by 1000 in float32 and truncates.
        weight_int = (np.float32(beta) * np.float32(1000)).astype(np.int32)
        labels = alpha_beta_swap(
            (data * np.float32(100000)).astype(np.int32),
            (smooth * np.float32(100)).astype(np.int32),
            np.full((n_prob, height - 1, width), weight_int),
            np.full((n_prob, height, width - 1), weight_int),
            num_labels,
        )
    onehot = np.eye(n_lab, dtype=np.float32)[labels]
    mask = onehot[..., :n_in] + np.einsum("phwk,pki->phwi", onehot[..., n_in:], soft)
    return torch.from_numpy(mask)
