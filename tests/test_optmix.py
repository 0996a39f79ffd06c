"""PuzzleMix, Co-Mixup and GuidedMixup: the graph-cut solver against brute force, the defining
properties of each method's mixed images and labels, per-dataset settings, and one training step."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from diffusemix_bench.augment import AugContext, create_aug
from diffusemix_bench.augment.mixing.comixup import (
    _graphcut_outputs,
    co_mixup,
    co_mixup_masks,
    compatibility_distance,
    mix_by_masks,
)
from diffusemix_bench.augment.mixing.graphcut import (
    _binary_dp,
    _binary_maxflow,
    alpha_beta_swap,
    gco_swap,
    grid_energy,
)
from diffusemix_bench.augment.mixing.guidedmixup import greedy_cycle_pairing, guided_mix, spectral_residual
from diffusemix_bench.augment.mixing.puzzlemix import graphcut_masks, puzzle_mix
from diffusemix_bench.augment.mixing.saliency_guided import loss_input_gradient
from diffusemix_bench.augment.mixing.transport import transport_blocks, transport_plan
from diffusemix_bench.errors import ConfigError
from diffusemix_bench.models import Normalize
from diffusemix_bench.training.losses import TrainLoss, soft_target_cross_entropy
from tests.conftest import compose_config

METHODS = ["puzzlemix", "comixup", "guided_sr", "guided_ap"]


class TinyNet(nn.Module):
    """A small classifier with the framework's normaliser inside, for saliency passes."""

    def __init__(self, num_classes: int = 5) -> None:
        super().__init__()
        self.normalize = Normalize((0.5, 0.4, 0.3), (0.2, 0.25, 0.3))
        self.net = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(2),
            nn.Flatten(),
            nn.Linear(32, num_classes),
        )
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.net(self.normalize(x))


def batch(n: int = 8, size: int = 32, classes: int = 5, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(n, 3, size, size, generator=g)
    targets = nn.functional.one_hot(torch.randint(0, classes, (n,), generator=g), classes).float()
    return images, targets


def make_aug(name: str, dataset: str = "cifar100", classes: int = 5, **overrides):
    """The method as conf/aug/<name>.yaml configures it, with overrides."""
    cfg = OmegaConf.to_container(compose_config([f"aug={name}", f"dataset={dataset}"]).aug, resolve=True)
    cfg.update(overrides)
    return create_aug(cfg, AugContext(num_classes=classes, dataset_name=dataset))


# ---------------------------------------------------------------- graph cuts


def brute_binary(e0, e1, ev, eh):
    """Minimum energy and the minimiser with the fewest ones, over all 2^(H W) labellings."""
    h, w = e0.shape
    best, minimisers = None, []
    for bits in itertools.product([False, True], repeat=h * w):
        x = np.array(bits).reshape(h, w)
        energy = (
            np.where(x, e1, e0).sum() + (ev * (x[:-1] ^ x[1:])).sum() + (eh * (x[:, :-1] ^ x[:, 1:])).sum()
        )
        if best is None or energy < best:
            best, minimisers = energy, [x]
        elif energy == best:
            minimisers.append(x)
    return best, np.logical_and.reduce(minimisers)


@pytest.mark.parametrize("solver", ["dp", "maxflow"])
def test_binary_cut_is_the_exact_minimum_with_gcos_tie_rule(solver):
    rng = np.random.default_rng(0)
    for _ in range(60):
        # Small integer costs make ties frequent, so the tie rule is exercised.
        e0, e1 = rng.integers(0, 5, (2, 1, 3, 3))
        ev, eh = rng.integers(0, 3, (1, 2, 3)), rng.integers(0, 3, (1, 3, 2))
        if solver == "dp":
            x = _binary_dp(e0, e1, ev, eh)[0]
        else:
            x = _binary_maxflow(e0, e1, ev, eh, np.ones((1, 3, 3), dtype=bool))[0]
        best, fewest = brute_binary(e0[0], e1[0], ev[0], eh[0])
        energy = np.where(x, e1[0], e0[0]).sum() + (ev[0] * (x[:-1] ^ x[1:])).sum()
        energy += (eh[0] * (x[:, :-1] ^ x[:, 1:])).sum()
        assert energy == best
        np.testing.assert_array_equal(x, fewest)


def test_two_label_swap_is_the_global_optimum_of_a_3x3_grid():
    rng = np.random.default_rng(1)
    labelings = np.array(list(itertools.product([0, 1], repeat=9))).reshape(-1, 3, 3)
    for _ in range(30):
        unary = rng.integers(0, 20, (1, 3, 3, 2))
        smooth = np.array([[0, 7], [7, 0]])
        wv, wh = rng.integers(0, 4, (1, 2, 3)), rng.integers(0, 4, (1, 3, 2))
        labels = alpha_beta_swap(unary, smooth, wv, wh)
        n = len(labelings)
        energies = grid_energy(
            labelings,
            np.repeat(unary, n, 0),
            np.broadcast_to(smooth, (n, 2, 2)),
            np.repeat(wv, n, 0),
            np.repeat(wh, n, 0),
        )
        assert grid_energy(labels, unary, smooth[None], wv, wh)[0] == energies.min()


def naive_swap(unary, smooth, wv, wh):
    """gco's swap written plainly: cycles over (0, L-1), (0, L-2), ..., each move by brute force over
    the moving sites with ties to the fewest beta sites, until a cycle stops lowering the energy."""
    h, w, n_lab = unary.shape
    labels = np.zeros((h, w), dtype=np.int64)

    def energy(lab):
        return grid_energy(lab[None], unary[None], smooth[None], wv[None], wh[None])[0]

    current = energy(labels)
    while True:
        before = current
        for a in range(n_lab):
            for b in range(n_lab - 1, a, -1):
                sites = np.argwhere((labels == a) | (labels == b))
                if not len(sites):
                    continue
                options = []
                for bits in itertools.product([False, True], repeat=len(sites)):
                    trial = labels.copy()
                    trial[tuple(sites.T)] = np.where(bits, b, a)
                    options.append((energy(trial), np.array(bits)))
                best = min(e for e, _ in options)
                fewest = np.logical_and.reduce([bits for e, bits in options if e == best])
                labels[tuple(sites.T)] = np.where(fewest, b, a)
        current = energy(labels)
        if not current < before:
            return labels


@pytest.mark.parametrize("shape", [(3, 3), (2, 5)])
def test_swap_follows_gcos_move_sequence(shape):
    """Both binary back ends (rows of <= 4 sites: dynamic programming; wider: max-flow)."""
    rng = np.random.default_rng(2)
    h, w = shape
    for n_lab in (3, 4):
        for _ in range(4):
            unary = rng.integers(0, 30, (h, w, n_lab))
            levels = np.arange(n_lab)
            smooth = (levels[:, None] - levels[None]) ** 2 * 3
            wv, wh = rng.integers(0, 5, (h - 1, w)), rng.integers(0, 5, (h, w - 1))
            got = alpha_beta_swap(unary[None], smooth, wv[None], wh[None])[0]
            np.testing.assert_array_equal(got, naive_swap(unary, smooth, wv, wh))


def test_gco_solver_and_this_frameworks_swap_give_the_same_labels():
    """aug.solver=gco (gco-v3's C++ solver, as the reference calls it) and aug.solver=python agree
    label for label: on integer grid problems, and on the energies PuzzleMix and Co-Mixup build (a
    scratch run over 1,700 random problems of both found no difference either)."""
    rng = np.random.default_rng(5)
    for n_lab in (2, 3, 5):
        unary = rng.integers(0, 50, (6, 4, 5, n_lab)).astype(np.int32)
        levels = np.arange(n_lab)
        smooth = ((levels[:, None] - levels[None]) ** 2 * 4).astype(np.int32)
        wv = rng.integers(0, 6, (6, 3, 5)).astype(np.int32)
        wh = rng.integers(0, 6, (6, 4, 4)).astype(np.int32)
        np.testing.assert_array_equal(gco_swap(unary, smooth, wv, wh), alpha_beta_swap(unary, smooth, wv, wh))
    for _ in range(12):
        bn, n_labels = int(rng.choice([2, 4, 8, 16])), int(rng.choice([2, 3, 4]))
        own, partner = (rng.random((3, bn, bn)).astype(np.float32) ** 3 for _ in range(2))
        own, partner = own / own.sum((1, 2), keepdims=True), partner / partner.sum((1, 2), keepdims=True)
        edge_v = (rng.random((3, bn - 1, bn)) * 0.01).astype(np.float32)
        edge_h = (rng.random((3, bn, bn - 1)) * 0.01).astype(np.float32)
        kw = dict(lam=float(rng.random()), beta=1.2 / bn / 16, eta=0.2, n_labels=n_labels)
        np.testing.assert_array_equal(
            graphcut_masks(own, partner, edge_v, edge_h, solver="gco", **kw),
            graphcut_masks(own, partner, edge_v, edge_h, solver="python", **kw),
        )
    for first_pass in (True, False):
        for _ in range(6):
            bn = int(rng.choice([2, 4, 8]))
            unary = torch.from_numpy(rng.random((4, bn, bn, 6)).astype(np.float32) * 0.1)
            counts = torch.from_numpy(rng.integers(0, 3, (4, 6)).astype(np.float32))
            torch.testing.assert_close(
                _graphcut_outputs(unary, counts, 0.32 / bn**2, first_pass, solver="gco"),
                _graphcut_outputs(unary, counts, 0.32 / bn**2, first_pass, solver="python"),
                rtol=0,
                atol=0,
            )


def test_an_unknown_solver_is_refused():
    with pytest.raises(ConfigError, match="aug.solver"):
        create_aug(
            {"name": "comixup", "alpha": 2.0, "block_num": 4, "solver": "fast"},
            AugContext(num_classes=10, dataset_name="cifar100"),
        )


# ---------------------------------------------------------------- PuzzleMix


def puzzle(images, perm, **kw):
    g = torch.Generator().manual_seed(3)
    saliency = torch.rand(images.shape[0], *images.shape[2:], generator=g) ** 3
    settings = dict(
        block_num=4, lam=0.5, beta=1.2, gamma=0.5, eta=0.2, neigh_size=4, n_labels=2,
        transport=False, t_eps=0.8, t_size=-1, fill=0.5,
    )  # fmt: skip
    settings.update(kw)
    return puzzle_mix(images, saliency, perm, **settings)


def test_puzzlemix_without_transport_takes_each_pixel_from_one_source_in_place():
    images, _ = batch(8)
    perm = torch.randperm(8, generator=torch.Generator().manual_seed(0))
    mixed, ratio = puzzle(images, perm)
    own = (mixed == images).all(1)
    partner = (mixed == images[perm]).all(1)
    assert (own | partner).all()
    torch.testing.assert_close(ratio, own.float().mean((1, 2)))
    # Blocks of 8 px: the choice is constant inside each block.
    blocks = own.float().reshape(8, 4, 8, 4, 8).mean((2, 4))
    assert ((blocks == 0) | (blocks == 1)).all()


def test_puzzlemix_three_labels_mix_blocks_by_halves():
    images, _ = batch(8)
    perm = torch.roll(torch.arange(8), 1)
    mixed, ratio = puzzle(images, perm, n_labels=3)
    candidates = torch.stack([images[perm], (images + images[perm]) / 2, images])  # mask 0, 0.5, 1
    error = (mixed[None] - candidates).abs().amax(2)
    level = error.argmin(0).float() / 2
    assert error.amin(0).max() < 1e-6
    torch.testing.assert_close(ratio, level.mean((1, 2)))


def test_puzzlemix_transport_moves_whole_blocks_inside_each_side():
    images, _ = batch(6, seed=4)
    perm = torch.roll(torch.arange(6), 2)
    mixed, ratio = puzzle(images, perm, transport=True, t_eps=0.05)
    for i in range(6):
        own_blocks = images[i].reshape(3, 4, 8, 4, 8).permute(1, 3, 0, 2, 4).reshape(16, -1)
        partner_blocks = images[perm[i]].reshape(3, 4, 8, 4, 8).permute(1, 3, 0, 2, 4).reshape(16, -1)
        out_blocks = mixed[i].reshape(3, 4, 8, 4, 8).permute(1, 3, 0, 2, 4).reshape(16, -1)
        n_own = 0
        for block in out_blocks:
            if (block == 0.5).all():
                continue  # a position no block was moved to shows the fill
            from_own = (own_blocks == block).all(1).any()
            from_partner = (partner_blocks == block).all(1).any()
            assert from_own or from_partner
            n_own += int(from_own)
        assert n_own <= round(float(ratio[i]) * 16)


def test_transport_plan_is_a_partial_permutation_and_moves_blocks():
    g = torch.Generator().manual_seed(5)
    mask = (torch.rand(4, 1, 4, 4, generator=g) > 0.5).float()
    plan = transport_plan(mask, torch.rand(4, 4, 4, generator=g), eps=0.3)
    assert ((plan == 0) | (plan == 1)).all()
    assert (plan.sum(1) <= 1).all() and (plan.sum(2) <= 1).all()
    # A full permutation plan moves block i to position j and nothing else.
    images, _ = batch(1, size=8)
    order = torch.tensor([3, 0, 1, 2])
    perm_plan = torch.zeros(1, 4, 4)
    perm_plan[0, order, torch.arange(4)] = 1.0
    moved = transport_blocks(images, perm_plan)
    blocks = images.reshape(3, 2, 4, 2, 4).permute(1, 3, 0, 2, 4).reshape(4, 3, 4, 4)
    moved_blocks = moved.reshape(3, 2, 4, 2, 4).permute(1, 3, 0, 2, 4).reshape(4, 3, 4, 4)
    torch.testing.assert_close(moved_blocks, blocks[order])


def dense_transport_rounds(mask, saliency, eps):
    """mixup.py's mask_transport written out densely: each round every row takes its cheapest
    column, each column keeps the row (plan * cost).min(-2) picks, the other takers pay 1."""
    n, block_num = mask.shape[0], mask.shape[-1]
    r, c = torch.arange(block_num**2) // block_num, torch.arange(block_num**2) % block_num
    dist = ((r[:, None] - r[None]) ** 2 + (c[:, None] - c[None]) ** 2).float() / (block_num - 1) ** 2
    cost = eps * dist - saliency.reshape(n, -1, 1) * (mask > 0).float().reshape(n, 1, -1)
    for _ in range(block_num):
        plan = torch.zeros_like(cost).scatter_(-1, cost.min(-1)[1][..., None], 1)
        win = torch.zeros_like(cost).scatter_(-2, (plan * cost).min(-2)[1][:, None], 1) * plan
        cost = cost + (1 - win) * plan
    return win


def test_transport_plan_matches_the_reference_dense_rounds():
    g = torch.Generator().manual_seed(12)
    for trial in range(60):
        block_num = (2, 4, 8)[trial % 3]
        mask = (torch.rand(3, 1, block_num, block_num, generator=g) > 0.4).float()
        saliency = torch.rand(3, block_num, block_num, generator=g)
        if trial % 2:  # coarse values: ties between bids and zero bids
            saliency = (saliency * 3).round() / 3
        saliency = saliency / saliency.sum((1, 2), keepdim=True).clamp_min(1e-9)
        eps = (0.8, 0.05, 0.0)[trial % 3]
        torch.testing.assert_close(
            transport_plan(mask, saliency, eps), dense_transport_rounds(mask, saliency, eps), rtol=0, atol=0
        )


def test_puzzlemix_mask_follows_saliency_and_prior():
    zeros_v, zeros_h = np.zeros((1, 3, 4), np.float32), np.zeros((1, 4, 3), np.float32)
    flat = np.zeros((1, 4, 4), np.float32)
    for lam, expected in ((0.99, 1.0), (0.01, 0.0)):
        masks = graphcut_masks(flat, flat, zeros_v, zeros_h, lam=lam, beta=0.02, eta=0.2, n_labels=3)
        assert (masks == expected).all()
    # Showing the own image at a block costs the partner's saliency there.
    partner_saliency = np.zeros((1, 4, 4), np.float32)
    partner_saliency[0, 1, 2] = 1.0
    mask = graphcut_masks(
        partner_saliency, 1 - partner_saliency, zeros_v, zeros_h, lam=0.5, beta=0.0, eta=0.0, n_labels=2
    )
    expected = np.ones((1, 4, 4), np.float32)
    expected[0, 1, 2] = 0.0
    np.testing.assert_array_equal(mask, expected)


def test_saliency_is_the_gradient_in_normalised_space_and_leaves_parameters_alone():
    model = TinyNet()
    images, targets = batch(4)
    grad, _ = loss_input_gradient(model, images, targets, eval_mode=True, keep_graph=False)
    assert model.training and all(p.grad is None for p in model.parameters())
    model.eval()
    z = model.normalize(images).detach().requires_grad_(True)
    loss = -(targets * model.net(z).log_softmax(-1)).sum(-1).mean()
    (expected,) = torch.autograd.grad(loss, z)
    torch.testing.assert_close(grad, expected)


@pytest.mark.parametrize(("name", "clean_lam"), [("puzzlemix", 0.0), ("puzzlemix", 1.0), ("comixup", 1.0)])
def test_clean_loss_rows_and_no_gradient_leak(name, clean_lam):
    model = TinyNet()
    images, targets = batch(8)
    aug = make_aug(name, clean_lam=clean_lam)
    out = aug.apply(images, targets, torch.arange(8), model)
    assert all(p.grad is None for p in model.parameters())
    calls = model.calls
    logits = aug.logits(model, out)
    assert model.calls == calls + 1  # the clean logits come from the saliency pass
    if clean_lam == 0:
        assert out.inputs.shape[0] == 8
        torch.testing.assert_close(out.targets.sum(1), torch.ones(8))
        return
    assert out.inputs.shape[0] == logits.shape[0] == 16
    torch.testing.assert_close(out.inputs[8:], images)
    torch.testing.assert_close(out.targets.sum(1), torch.ones(16))
    torch.testing.assert_close(out.targets[8:], targets)
    assert (out.num_clean, out.clean_weight) == (8, clean_lam)
    # The training loss is CE(mixed) + clean_lam * CE(clean).
    loss = TrainLoss("ce")(logits, out.targets, 1, out.num_clean, out.clean_weight)
    ce = soft_target_cross_entropy
    expected = ce(logits[:8], out.targets[:8]) + clean_lam * ce(logits[8:], targets)
    torch.testing.assert_close(loss, expected)


def test_adversarial_puzzlemix_stays_in_the_eps_ball():
    model = TinyNet()
    images, targets = batch(8)
    aug = make_aug("puzzlemix", adv_p=1.0, n_labels=2, transport=False)
    torch.manual_seed(0)
    mixed = aug.apply(images, targets, torch.arange(8), model).inputs
    # Every pixel is a pixel of some batch image moved by at most adv_eps / 255, and noise was added.
    gap = (mixed[:, None] - images[None]).abs().amax(2).amin(1)
    assert 0 < gap.max() <= 10 / 255 + 1e-6


# ---------------------------------------------------------------- Co-Mixup


def _co_mixup_of_random_batch(n: int, seed: int, solver: str = "gco"):
    """A random batch of ``n`` 32 px images, its 4 x 4 saliency and compatibility, mixed by
    co_mixup in parts of 5 with the reference's CIFAR settings: (images, targets, mixed, mixed targets)."""
    images, targets = batch(n, seed=seed)
    g = torch.Generator().manual_seed(seed + 1)
    saliency = torch.rand(n, 4, 4, generator=g) ** 3
    compat = compatibility_distance(torch.rand(n, 32, 32, generator=g))
    torch.manual_seed(0)
    mixed, mixed_targets = co_mixup(
        images, targets, saliency, compat, part=5, alpha=2.0, beta=0.32, gamma=1.0, eta=0.05,
        omega=0.001, thres=0.83, thres_type="hard", set_resolve=True, niter=4, solver=solver,
    )  # fmt: skip
    return images, targets, mixed, mixed_targets


def test_comixup_outputs_are_block_mixtures_labelled_by_area():
    images, targets, mixed, mixed_targets = _co_mixup_of_random_batch(10, seed=6)
    for p in range(2):
        inputs = images[5 * p : 5 * p + 5]
        blocks = inputs.reshape(5, 3, 4, 8, 4, 8)
        for o in range(5):
            out = mixed[5 * p + o].reshape(3, 4, 8, 4, 8)
            weights = torch.zeros(5)
            for r, c in itertools.product(range(4), range(4)):
                block = out[:, r, :, c]
                found = [
                    w
                    for w in _convex_weights(blocks[:, :, r, :, c])
                    if torch.allclose(torch.einsum("i,icyx->cyx", w, blocks[:, :, r, :, c]), block, atol=1e-6)
                ]
                assert found, "an output block is not a whole input block nor a half-half mix of two"
                weights += found[0] / 16
            torch.testing.assert_close(mixed_targets[5 * p + o], weights @ targets[5 * p : 5 * p + 5])


def _convex_weights(blocks):
    n = len(blocks)
    yield from torch.eye(n)
    for i, j in itertools.combinations(range(n), 2):
        w = torch.zeros(n)
        w[[i, j]] = 0.5
        yield w


def test_comixup_masks_are_one_input_or_half_half_per_block():
    g = torch.Generator().manual_seed(8)
    sal = torch.rand(2, 6, 4, 4, generator=g) ** 4
    cost = -(sal / sal.sum((2, 3), keepdim=True))
    torch.manual_seed(1)
    mask = co_mixup_masks(
        cost, torch.eye(6).expand(2, 6, 6), alpha=2.0, beta=0.32, gamma=1.0, eta=0.05, thres=0.83,
        thres_type="hard", set_resolve=True, niter=4,
    )  # fmt: skip
    torch.testing.assert_close(mask.sum(-1), torch.ones(2, 6, 4, 4))
    assert ((mask == 0) | (mask == 0.5) | (mask == 1)).all()
    mixed, mixed_targets = mix_by_masks(mask, torch.rand(2, 6, 3, 8, 8), torch.eye(6).expand(2, 6, 6))
    torch.testing.assert_close(mixed_targets, mask.mean((2, 3)))


def test_compatibility_is_l1_distance_of_saliency_peaks():
    saliency = torch.zeros(2, 16, 16)
    saliency[0, 0:8, 0:8] = 1.0  # window at (0, 0)
    saliency[1, 5:13, 6:14] = 1.0  # window at (5, 6)
    torch.testing.assert_close(compatibility_distance(saliency), torch.tensor([[0.0, 11.0], [11.0, 0.0]]))


# ---------------------------------------------------------------- GuidedMixup


def cycle_length(partner: np.ndarray) -> int:
    i, steps = 0, 0
    while True:
        i, steps = partner[i], steps + 1
        if i == 0:
            return steps


def test_greedy_pairing_is_one_cycle_chosen_greedily():
    rng = np.random.default_rng(9)
    for n in (2, 5, 9):
        dist = rng.random((n, n)).astype(np.float32)
        dist = dist + dist.T
        partner = greedy_cycle_pairing(dist)
        assert sorted(partner) == list(range(n)) and cycle_length(partner) == n
        # Start at the farthest pair, then always step to the farthest image not yet visited.
        masked = dist.copy()
        np.fill_diagonal(masked, -np.inf)
        start = int(np.argmax(masked)) // n
        visited, node = [start], start
        for _ in range(n - 1):
            options = [j for j in range(n) if j not in visited]
            assert dist[node, partner[node]] == max(dist[node, j] for j in options)
            node = partner[node]
            visited.append(node)


def test_greedy_pairing_reaches_the_brute_force_optimum_on_two_clusters():
    # Maps within a cluster are close and across clusters far: the best cycle alternates clusters.
    points = np.array([0.0, 0.1, 0.2, 5.0, 5.1, 5.2])
    dist = np.abs(points[:, None] - points[None]).astype(np.float32)
    partner = greedy_cycle_pairing(dist)
    best = max(
        sum(dist[c[k], c[(k + 1) % 6]] for k in range(6))
        for c in ((0,) + p for p in itertools.permutations(range(1, 6)))
    )
    assert math.isclose(sum(dist[i, partner[i]] for i in range(6)), best, rel_tol=1e-6)


def test_guided_mix_is_the_saliency_weighted_pixel_mix():
    images, _ = batch(4)
    g = torch.Generator().manual_seed(10)
    saliency = torch.rand(4, 32, 32, generator=g)
    perm = torch.tensor([1, 2, 3, 0])
    mixed, ratio = guided_mix(images, saliency, perm)
    weight = saliency / (saliency + saliency[perm])
    torch.testing.assert_close(mixed, weight[:, None] * images + (1 - weight[:, None]) * images[perm])
    torch.testing.assert_close(ratio, weight.mean((1, 2)))


@pytest.mark.parametrize("size", [32, 160])
def test_spectral_residual_matches_a_numpy_transcription(size):
    """GuidedMixup's spectral residual recomputed with numpy's FFT and scipy's filters: grey, log
    amplitude minus its 3x3 mean (edge-replicated), original phase, |inverse FFT|, Gaussian blur
    (7 taps, sigma 3, mirrored border); images above 128 px are handled at 128 px."""
    from scipy import ndimage

    images = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(11))
    got = spectral_residual(images).numpy()
    gray = np.tensordot(np.array([0.2989, 0.587, 0.114]), images.double().numpy(), axes=([0], [1]))
    if size > 128:
        gray = nn.functional.interpolate(torch.from_numpy(gray)[:, None], size=(128, 128), mode="bilinear")
        gray = gray[:, 0].numpy()
    freq = np.fft.fft2(gray)
    log_amp = np.log(np.sqrt(np.abs(freq) ** 2 + 1e-10))
    residual = log_amp - ndimage.uniform_filter(log_amp, size=(1, 3, 3), mode="nearest")
    saliency = np.abs(np.fft.ifft2(np.exp(residual + 1j * np.angle(freq))))
    saliency = ndimage.gaussian_filter(saliency, sigma=(0, 3, 3), truncate=1.0, mode="mirror")
    if size > 128:
        saliency = nn.functional.interpolate(
            torch.from_numpy(saliency)[:, None], size=(size, size), mode="bilinear"
        )
        saliency = saliency[:, 0].numpy()
    np.testing.assert_allclose(got, saliency, rtol=2e-3, atol=2e-4)


@pytest.mark.parametrize("name", ["guided_sr", "guided_ap"])
def test_guided_apply_labels_match_the_mean_mix_ratio(name):
    model = TinyNet()
    images, targets = batch(6)
    torch.manual_seed(0)
    out = make_aug(name, prob=1.0).apply(images, targets, torch.arange(6), model)
    assert out.inputs.shape == images.shape
    torch.testing.assert_close(out.targets.sum(1), torch.ones(6))
    assert all(p.grad is None for p in model.parameters())


# ---------------------------------------------------------------- configuration and training


@pytest.mark.parametrize(
    ("name", "dataset", "expected"),
    [
        ("puzzlemix", "cifar100", {"t_size": 4, "clean_lam": 0.0, "neigh_size": 4}),
        ("puzzlemix", "tinyimagenet", {"t_size": -1, "clean_lam": 1.0}),
        ("puzzlemix", "cub", {"neigh_size": 2, "smoothness_input": "normalized", "clean_lam": 1.0}),
        ("comixup", "cifar100", {"alpha": 2.0, "block_num": 4}),
        ("comixup", "aircraft", {"alpha": 1.0, "block_num": 16}),
        ("guided_ap", "cifar100", {"clean_lam": 0.0}),
        ("guided_ap", "tinyimagenet", {"clean_lam": 1.0}),
    ],
)
def test_reference_settings_per_dataset(name, dataset, expected):
    aug = make_aug(name, dataset)
    assert {key: getattr(aug, key) for key in expected} == expected


# One training step of every method runs in tests/test_train.py (test_every_option_trains_one_step).


@pytest.mark.parametrize("solver", ["gco", "python"])
def test_a_comixup_part_of_one_image_is_left_as_it_is(solver):
    """A batch one more than a multiple of aug.part ends with a part of one image: it is its own
    output with its own label, with either solver (gco's C++ code aborted the process on it)."""
    images, targets, mixed, mixed_targets = _co_mixup_of_random_batch(6, seed=9, solver=solver)
    torch.testing.assert_close(mixed[5], images[5])
    torch.testing.assert_close(mixed_targets[5], targets[5])


@pytest.mark.parametrize(
    ("name", "settings", "size", "said"),
    [
        (
            "puzzlemix",
            {},
            36,
            r"aug=puzzlemix splits each image into 2x2 / 4x4 / 8x8 / 16x16 blocks, so dataset\.image_size=36 must be a multiple of 16",
        ),
        ("puzzlemix", {"t_size": 5}, 32, r"aug\.t_size=5 .* must divide dataset\.image_size=32"),
        ("comixup", {"block_num": -1}, 8, r"dataset\.image_size=8 must be a multiple of 16"),
        (
            "comixup",
            {"block_num": 3},
            32,
            r"3x3 blocks, so dataset\.image_size=32 must be a multiple of 3, e\.g\. .*aug\.block_num",
        ),
        ("comixup", {"part": 1}, 32, r"aug\.part must be >= 2"),
    ],
)
def test_block_grids_that_do_not_fit_the_crop_are_refused_at_start(name, settings, size, said):
    """A crop the method's block grids do not divide failed on whichever batch drew such a grid
    (PuzzleMix draws one per batch), with a shape error or a message naming the wrong setting."""
    cfg = OmegaConf.to_container(compose_config([f"aug={name}", "dataset=cifar100"]).aug, resolve=True)

    def make(image_size: int, **changed):
        ctx = AugContext(num_classes=10, dataset_name="cifar100", image_size=image_size)
        return create_aug({**cfg, **settings, **changed}, ctx)

    with pytest.raises(ConfigError, match=said):
        make(size)
    make(48, part=20) if name == "comixup" else make(48, t_size=-1)  # a crop every grid divides
