"""PuzzleMix (Kim, Choo & Song, ICML 2020): saliency-guided graph-cut mixing masks and optimal
transport of blocks, following snu-mllab/PuzzleMix (mixup.py, main.py)."""

from __future__ import annotations

from math import comb

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...config import PuzzleMixConfig, check_budget
from ...errors import ConfigError
from ..base import AugBatch
from ..registry import register_aug
from .graphcut import RANDOM_BLOCK_NUMS, alpha_beta_swap, check_block_grid, check_solver, gco_swap
from .saliency_guided import (
    CleanLossAugmentation,
    gradient_saliency,
    input_mean,
    loss_input_gradient,
    normalized_input,
    sum_to_one,
)
from .transport import transport_blocks, transport_plan


@register_aug("puzzlemix", PuzzleMixConfig)
class PuzzleMix(CleanLossAugmentation):
    """Each image is mixed with a random partner through a block mask found by graph cut (maximise
    the saliency shown, keep labels and image content smooth, prior towards lambda), and the salient
    blocks of each side are moved by an approximate optimal transport into the region it shows.
    Fast adversarial training (``adv.p`` or ``aug.adv_p``) runs in main.py's form: two coins per
    batch, the noise added to each chosen source before mixing."""

    own_adversarial = True

    def __init__(self, ctx, **cfg) -> None:
        super().__init__(ctx, **cfg)
        settings = self.resolve_per_dataset(
            "puzzlemix",
            {key: cfg.get(key) for key in ("neigh_size", "smoothness_input", "t_size", "clean_lam")},
            cfg.get("dataset_defaults"),
        )
        self.alpha = float(cfg.get("alpha", 1.0))
        if self.alpha < 0:  # (0: lam = 1 as in the reference, which takes no negative value either)
            raise ConfigError(
                f"aug.alpha of aug=puzzlemix must be >= 0 (0: no mixing ratio drawn, lam = 1), got {self.alpha}"
            )
        self.n_labels = int(cfg.get("n_labels", 3))
        self.beta = float(cfg.get("beta", 1.2))
        self.gamma = float(cfg.get("gamma", 0.5))
        self.eta = float(cfg.get("eta", 0.2))
        self.neigh_size = int(settings["neigh_size"])
        self.smoothness_input = settings["smoothness_input"]
        self.transport = bool(cfg.get("transport", True))
        self.t_eps = float(cfg.get("t_eps", 0.8))
        self.t_size = int(settings["t_size"])
        self.clean_lam = float(settings["clean_lam"])
        self.adv_p = float(cfg.get("adv_p", 0.0))
        # Settings of one form of the method, refused where they would change nothing.
        defaults = PuzzleMixConfig()
        if not self.transport and self.t_eps != defaults.t_eps:
            raise ConfigError(
                f"aug.t_eps={self.t_eps} of aug=puzzlemix is the transport's, and aug.transport=false runs none; "
                "drop it, or leave aug.transport on"
            )
        if self.adv_p <= 0 and float(cfg.get("adv_eps", defaults.adv_eps)) != defaults.adv_eps:
            raise ConfigError(
                f"aug.adv_eps={cfg.get('adv_eps')} of aug=puzzlemix is the budget of its adversarial sources, and "
                "aug.adv_p=0 makes none (adv.p's runs use adv.eps); drop it, or give aug.adv_p"
            )
        if self.adv_p > 0:
            check_budget("aug.adv_eps", float(cfg.get("adv_eps", 10.0)), "near its reference's 10")
        self.adv_eps = float(cfg.get("adv_eps", 10.0)) / 255.0
        self._take_training_adversarial()
        self.prob = float(cfg.get("prob", 1.0))
        self.solver = check_solver(cfg.get("solver", "gco"))
        if self.n_labels not in (2, 3, 4):
            raise ConfigError(f"aug.n_labels must be 2, 3 or 4 (PuzzleMix's priors), got {self.n_labels}")
        if self.smoothness_input not in ("pixels", "normalized"):
            raise ConfigError(
                f"aug.smoothness_input must be 'pixels' or 'normalized', got '{self.smoothness_input}'"
            )
        if self.neigh_size < 1 or (self.t_size != -1 and self.t_size < 1):
            raise ConfigError(
                f"aug.neigh_size must be >= 1 and aug.t_size -1 or >= 1, got {self.neigh_size}, {self.t_size}"
            )
        check_block_grid(
            "puzzlemix", int(ctx.image_size), RANDOM_BLOCK_NUMS, self.t_size if self.transport else None
        )

    def _take_training_adversarial(self) -> None:
        """``adv.p`` (fast adversarial training for every method) runs here in PuzzleMix's own form:
        two coins per batch, the noise added to each chosen source before mixing."""
        config = self.ctx.config
        adv = config.get("adv") if config is not None else None
        if adv is None or float(adv.p) <= 0:
            return
        if self.adv_p > 0 and (self.adv_p != float(adv.p) or self.adv_eps != float(adv.eps) / 255.0):
            raise ConfigError(
                f"aug.adv_p={self.adv_p} and adv.p={adv.p} both ask for adversarial PuzzleMix with other "
                "settings: give one of them"
            )
        if (adv.step is not None and float(adv.step) != float(adv.eps) + 2.0) or adv.scale != "uniform":
            raise ConfigError(
                "aug=puzzlemix runs adv.p in PuzzleMix's own form (step eps + 2, perturbation scaled by "
                f"u ~ U(0, 1)); adv.step={adv.step} and adv.scale={adv.scale} cannot apply: leave them at "
                "their defaults (null, uniform)"
            )
        self.adv_p = float(adv.p)
        self.adv_eps = float(adv.eps) / 255.0

    def apply(
        self, images: torch.Tensor, targets: torch.Tensor, indices: torch.Tensor, model: nn.Module
    ) -> AugBatch:
        if self.prob < 1.0 and torch.rand(()).item() >= self.prob:
            return AugBatch(images, targets)
        n, _, height, width = images.shape
        if height != width:
            raise ValueError(f"PuzzleMix needs square images, got {height}x{width}; use a square crop")
        adv_sides = (torch.rand(2) < self.adv_p).tolist() if self.adv_p > 0 else [False, False]
        noise = None
        source = images
        if any(adv_sides):
            # Random start in the eps-ball, kept inside [0, 1] (PuzzleMix main.py).
            noise = torch.empty_like(images).uniform_(-self.adv_eps, self.adv_eps)
            source = (images + noise).clamp(0, 1)
            noise = source - images
        grad, clean_logits = loss_input_gradient(
            model, source, targets, eval_mode=self.clean_lam == 0, keep_graph=self.clean_lam > 0
        )
        saliency = gradient_saliency(grad)
        if noise is not None:
            # One signed step of eps + 2/255, projected, then scaled by a random coefficient.
            noise = noise + (self.adv_eps + 2.0 / 255.0) * grad.sign()
            noise = noise.clamp(-self.adv_eps, self.adv_eps) * torch.rand(()).item()
        perm = torch.randperm(n).to(images.device)
        lam = float(torch.distributions.Beta(self.alpha, self.alpha).sample()) if self.alpha > 0 else 1.0
        block_num = 2 ** int(torch.randint(1, 5, ()).item())
        smooth_images = normalized_input(model, images) if self.smoothness_input == "normalized" else images
        with torch.no_grad():
            mixed, ratio = puzzle_mix(
                images,
                saliency,
                perm,
                block_num=block_num,
                lam=lam,
                beta=self.beta,
                gamma=self.gamma,
                eta=self.eta,
                neigh_size=self.neigh_size,
                n_labels=self.n_labels,
                transport=self.transport,
                t_eps=self.t_eps,
                t_size=self.t_size,
                smooth_images=smooth_images,
                fill=input_mean(model),
                noise=noise,
                adv_sides=adv_sides,
                solver=self.solver,
            )
        ratio = ratio[:, None]
        mixed_targets = ratio * targets + (1 - ratio) * targets[perm]
        if self.clean_lam > 0:
            return self.with_clean_loss(mixed, mixed_targets, source, clean_logits, targets, self.clean_lam)
        return AugBatch(mixed, mixed_targets)


def puzzle_mix(
    images: torch.Tensor,
    saliency: torch.Tensor,
    perm: torch.Tensor,
    *,
    block_num: int,
    lam: float,
    beta: float,
    gamma: float,
    eta: float,
    neigh_size: int,
    n_labels: int,
    transport: bool,
    t_eps: float,
    t_size: int,
    smooth_images: torch.Tensor | None = None,
    fill: torch.Tensor | float = 0.0,
    noise: torch.Tensor | None = None,
    adv_sides: tuple[bool, bool] | list[bool] = (False, False),
    solver: str = "gco",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mix ``images`` with ``images[perm]`` (PuzzleMix mixup.py: mixup_graph); returns the mixed
    batch and each output's share of its first image. ``fill`` is what a block left empty by the
    transport plan shows: the reference transports normalised images, where empty means the mean."""
    n, _, _, width = images.shape
    block_size = width // block_num
    neigh_size = min(neigh_size, block_size)
    t_size = min(t_size, block_size)
    beta = beta / block_num / 16
    unary1 = sum_to_one(F.avg_pool2d(saliency[:, None], block_size)[:, 0])
    unary2 = unary1[perm]
    smooth_images = images if smooth_images is None else smooth_images
    pool1 = F.avg_pool2d(smooth_images, neigh_size)
    pool2 = pool1[perm]
    k = block_size // neigh_size
    # pair[a][b]: cost of an edge whose first site shows side a and second side b (1: own, 0: partner).
    sides = (pool2, pool1)
    pairs = [[neigh_penalty(first, second, k) for second in sides] for first in sides]
    pw_x = torch.stack([torch.stack([pairs[a][b][0] for b in (0, 1)], 1) for a in (0, 1)], 1)
    pw_y = torch.stack([torch.stack([pairs[a][b][1] for b in (0, 1)], 1) for a in (0, 1)], 1)
    pw_x = beta * gamma * pw_x
    pw_y = beta * gamma * pw_y
    # Standard reparametrisation of the 2x2 edge tables into data terms plus a Potts weight.
    cost_own = unary2.clone()
    cost_partner = unary1.clone()
    cost_own[:, :-1, :] += (pw_x[:, 1, 0] + pw_x[:, 1, 1]) / 2.0
    cost_partner[:, :-1, :] += (pw_x[:, 0, 1] + pw_x[:, 0, 0]) / 2.0
    cost_own[:, 1:, :] += (pw_x[:, 0, 1] + pw_x[:, 1, 1]) / 2.0
    cost_partner[:, 1:, :] += (pw_x[:, 1, 0] + pw_x[:, 0, 0]) / 2.0
    cost_own[:, :, :-1] += (pw_y[:, 1, 0] + pw_y[:, 1, 1]) / 2.0
    cost_partner[:, :, :-1] += (pw_y[:, 0, 1] + pw_y[:, 0, 0]) / 2.0
    cost_own[:, :, 1:] += (pw_y[:, 0, 1] + pw_y[:, 1, 1]) / 2.0
    cost_partner[:, :, 1:] += (pw_y[:, 1, 0] + pw_y[:, 0, 0]) / 2.0
    edge_v = (pw_x[:, 1, 0] + pw_x[:, 0, 1] - pw_x[:, 1, 1] - pw_x[:, 0, 0]) / 2
    edge_h = (pw_y[:, 1, 0] + pw_y[:, 0, 1] - pw_y[:, 1, 1] - pw_y[:, 0, 0]) / 2
    mask = graphcut_masks(
        cost_own.float().cpu().numpy(),
        cost_partner.float().cpu().numpy(),
        edge_v.float().cpu().numpy(),
        edge_h.float().cpu().numpy(),
        lam=lam,
        beta=beta,
        eta=eta,
        n_labels=n_labels,
        solver=solver,
    )
    mask = torch.from_numpy(mask).to(images.device, images.dtype)[:, None]

    input1 = images
    input2 = images[perm]
    if adv_sides[0]:
        input1 = (input1 + noise).clamp(0, 1)
    if adv_sides[1]:
        input2 = (input2 + noise[perm]).clamp(0, 1)

    if transport:
        if t_size == -1:
            t_block_num, t_size = block_num, block_size
            t_unary1 = unary1
        elif t_size < block_size:
            t_block_num = width // t_size
            mask = F.interpolate(mask, size=t_block_num)
            t_unary1 = sum_to_one(F.avg_pool2d(saliency[:, None], t_size)[:, 0])
        else:
            t_block_num = block_num
            t_unary1 = unary1
        if t_block_num * t_size != width:
            raise ValueError(
                f"PuzzleMix transport needs the image width ({width}) to be a multiple of the "
                f"transport block ({t_size} px); choose aug.t_size accordingly or aug.transport=false"
            )
        input1 = transport_blocks(input1, transport_plan(mask, t_unary1, t_eps), fill)
        input2 = transport_blocks(input2, transport_plan(1 - mask, t_unary1[perm], t_eps), fill)

    ratio = mask.reshape(n, -1).mean(-1)
    mask = F.interpolate(mask, size=width)
    return mask * input1 + (1 - mask) * input2, ratio


def neigh_penalty(first: torch.Tensor, second: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean absolute colour jump across each block border when ``first`` is shown above/left of
    ``second`` (PuzzleMix mixup.py: neigh_penalty), (N, B-1, B) and (N, B, B-1)."""
    pw_x = first[:, :, :-1, :] - second[:, :, 1:, :]
    pw_y = first[:, :, :, :-1] - second[:, :, :, 1:]
    pw_x = pw_x[:, :, k - 1 :: k, :]
    pw_y = pw_y[:, :, :, k - 1 :: k]
    pw_x = F.avg_pool2d(pw_x.abs().mean(1), kernel_size=(1, k))
    pw_y = F.avg_pool2d(pw_y.abs().mean(1), kernel_size=(k, 1))
    return pw_x, pw_y


def label_prior(lam: float, n_labels: int, eps: float = 1e-8) -> np.ndarray:
    """-log of the binomial probability of each mask level under lambda (PuzzleMix graphcut_multi)."""
    n = n_labels - 1
    k = np.arange(n_labels)
    binom = np.array([comb(n, int(i)) for i in k], dtype=np.float64)
    return -np.log(binom * lam ** (n - k) * (1 - lam) ** k + eps)


def graphcut_masks(
    cost_own: np.ndarray,
    cost_partner: np.ndarray,
    edge_v: np.ndarray,
    edge_h: np.ndarray,
    *,
    lam: float,
    beta: float,
    eta: float,
    n_labels: int,
    solver: str = "gco",
) -> np.ndarray:
    """Mask of each image's own share per block, from the energy PuzzleMix hands to gco.

    Label l means the block shows ``1 - l / (n_labels - 1)`` of the own image. The costs are built in
    float32 and truncated to integers exactly as graphcut_multi and pyGCO do (data x 100000, edge
    weight x 1000, smoothness (l1 - l2)^2 / (n - 1)^2 x 100); the common factor 1000 is dropped and
    the products are taken in int64 (pyGCO's int32 product can wrap for a block holding more than
    about 8% of an image's saliency at 16x16 blocks). ``solver=gco`` hands gco the reference's own
    arrays instead (int32 data and edge weights, float32 smoothness), wrap included.
    """
    block_num = cost_own.shape[-1]
    large_val = np.float32(1000 * block_num**2)
    prior = eta * label_prior(lam, n_labels) / block_num**2
    levels = np.linspace(0, 1, n_labels)
    # Label 0 shows the own image and so loses the partner's saliency (graphcut_multi's unary1).
    data = np.stack(
        [
            large_val * (np.float32(1 - t) * cost_own + np.float32(t) * cost_partner + np.float32(prior[i]))
            for i, t in enumerate(levels)
        ],
        axis=-1,
    ).astype(np.int32)
    # The reparametrised weight goes negative where both images jump across a block border in
    # opposite ways (possible for gamma > 1, or on normalised images); gco would then build a
    # negative capacity, whose result is undefined. Such an edge gets weight 0 here.
    weight_v = (large_val * (edge_v + np.float32(beta))).astype(np.int32).clip(min=0)
    weight_h = (large_val * (edge_h + np.float32(beta))).astype(np.int32).clip(min=0)
    step = np.arange(n_labels)[:, None] - np.arange(n_labels)[None, :]
    pairwise = (step**2 / (n_labels - 1) ** 2).astype(np.float32)
    if solver == "gco":
        labels = gco_swap(data, pairwise, weight_v, weight_h)
    else:
        smooth = (np.float32(100) * pairwise).astype(np.int32)
        labels = alpha_beta_swap(100 * data.astype(np.int64), smooth, weight_v, weight_h)
    return (1.0 - labels / (n_labels - 1)).astype(np.float32)
