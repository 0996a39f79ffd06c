"""Alpha-beta swap on grid graphs, the solver PuzzleMix and Co-Mixup call through
``gco.cut_grid_graph(..., algorithm='swap')``: gco-v3's C++ solver itself (``solver=gco``, from the
gco-wrapper package, the reference code's own), or this module's NumPy/SciPy version with gco's move
order and tie rule over exact binary min cuts (``solver=python``)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import breadth_first_order, maximum_flow

from ...config import PuzzleMixConfig, choices_of
from ...errors import ConfigError

# Cost that keeps a site out of a binary move (far above any real energy, far below int64 overflow).
_FIXED = np.int64(1) << 40
_INF = np.int64(1) << 62
# Grids up to this many columns are solved by dynamic programming over row states (2**W of them);
# wider ones by max-flow.
_DP_MAX_WIDTH = 4


SOLVERS = choices_of(PuzzleMixConfig, "solver")  # Co-Mixup declares the same


def check_solver(name: str) -> str:
    """aug.solver of the graph-cut mixes, checked."""
    if name not in SOLVERS:
        raise ConfigError(f"aug.solver must be one of {list(SOLVERS)} (graph-cut solver), got '{name}'")
    return name


#: The block grids PuzzleMix draws per batch, and Co-Mixup with aug.block_num=-1.
RANDOM_BLOCK_NUMS = (2, 4, 8, 16)


def check_block_grid(method: str, image_size: int, block_nums, t_size: int | None = None) -> None:
    """The crop (``dataset.image_size``) splits into each block grid the method may draw, and into
    PuzzleMix's transport blocks (``aug.t_size``): refused at start-up, naming the sizes that
    work, rather than a shape error on whichever batch draws a grid that does not fit."""
    bad = [b for b in block_nums if image_size < b or image_size % b]
    if bad:
        step = max(block_nums)
        fits = ", ".join(str(step * k) for k in (2, 3, 4, 7, 14))
        raise ConfigError(
            f"aug={method} splits each image into {' / '.join(f'{b}x{b}' for b in block_nums)} blocks, "
            f"so dataset.image_size={image_size} must be a multiple of {step}, e.g. {fits}"
            + (" (or give aug.block_num one grid that fits)" if method == "comixup" else "")
        )
    if t_size is not None and t_size != -1 and image_size % t_size:
        raise ConfigError(
            f"aug.t_size={t_size} (PuzzleMix's transport block, px) must divide dataset.image_size={image_size}; "
            "or leave it at -1 (the block size of each batch's grid)"
        )


def gco_swap(
    unary: np.ndarray,
    pairwise: np.ndarray,
    cost_v: np.ndarray,
    cost_h: np.ndarray,
    num_labels: np.ndarray | None = None,
) -> np.ndarray:
    """Labels (P, H, W) from gco's C++ alpha-beta swap, one ``gco.cut_grid_graph`` call per problem
    with the arrays the reference code passes: ``unary`` (P, H, W, L), ``pairwise`` (P, L, L) or
    (L, L), ``cost_v`` (P, H-1, W), ``cost_h`` (P, H, W-1). Where any of them is float, pyGCO makes
    every term an int32 (data x 100000, edges x 1000, smoothness x 100, truncated; an int32 data
    array is multiplied in int32 and can wrap, as in the reference). ``num_labels`` (P,) keeps only
    the first ``num_labels[p]`` labels of problem ``p``."""
    import gco  # gco-wrapper

    n_prob, height, width, n_lab = unary.shape
    labels = np.empty((n_prob, height, width), dtype=np.int64)
    for p in range(n_prob):
        n = n_lab if num_labels is None else int(num_labels[p])
        if n == 1:
            # One label (a Co-Mixup part of one image: a batch one more than a multiple of
            # aug.part): every block is its own, as the Python solver gives. gco's C++ code aborts
            # the process on it ("Number of labels must be >= 2"), the reference code's too.
            labels[p] = 0
            continue
        pair = pairwise[p] if pairwise.ndim == 3 else pairwise
        labels[p] = gco.cut_grid_graph(
            np.ascontiguousarray(unary[p, ..., :n]),
            np.ascontiguousarray(pair[:n, :n]),
            np.ascontiguousarray(cost_v[p]),
            np.ascontiguousarray(cost_h[p]),
            algorithm="swap",
        ).reshape(height, width)
    return labels


def grid_energy(
    labels: np.ndarray, unary: np.ndarray, smooth: np.ndarray, weight_v: np.ndarray, weight_h: np.ndarray
) -> np.ndarray:
    """Energy of each labelling: sum of ``unary[p, r, c, label]`` plus ``weight * smooth[l1, l2]`` on
    every vertical and horizontal grid edge (gco's GCoptimization::compute_energy)."""
    p = np.arange(labels.shape[0])[:, None, None]
    data = np.take_along_axis(unary, labels[..., None], axis=-1)[..., 0].sum((1, 2))
    vert = (weight_v * smooth[p, labels[:, :-1], labels[:, 1:]]).sum((1, 2))
    horz = (weight_h * smooth[p, labels[:, :, :-1], labels[:, :, 1:]]).sum((1, 2))
    return data + vert + horz


def alpha_beta_swap(
    unary: np.ndarray,
    smooth: np.ndarray,
    weight_v: np.ndarray,
    weight_h: np.ndarray,
    num_labels: np.ndarray | None = None,
) -> np.ndarray:
    """Minimise a grid energy with alpha-beta swap moves, one problem per leading index.

    ``unary`` is int (P, H, W, L); ``smooth`` is int (P, L, L) (or (L, L) shared), symmetric,
    non-negative, zero on the diagonal; ``weight_v`` (P, H-1, W) and ``weight_h`` (P, H, W-1) are the
    non-negative edge weights. ``num_labels`` (P,) marks labels at or above it as absent for that
    problem. Mirrors gco-v3 GCoptimization::swap as pyGCO runs it: every site starts at label 0;
    a cycle visits the pairs (0, L-1), (0, L-2), ..., (0, 1), (1, L-1), ..., (L-2, L-1); each move
    relabels the sites holding alpha or beta by an exact minimum cut, and where the cut is not unique
    takes the one that puts the fewest sites on beta (what Boykov-Kolmogorov max-flow returns: only
    sites in the sink tree get beta); cycles repeat while a cycle lowers the energy.
    """
    unary = np.asarray(unary, dtype=np.int64)
    n_prob, height, width, n_lab = unary.shape
    smooth = np.asarray(smooth, dtype=np.int64)
    if smooth.ndim == 2:
        smooth = np.broadcast_to(smooth, (n_prob, n_lab, n_lab))
    if (smooth < 0).any() or (np.diagonal(smooth, axis1=1, axis2=2) != 0).any():
        raise ValueError("swap moves here need non-negative smoothness costs with a zero diagonal")
    if (smooth != smooth.transpose(0, 2, 1)).any():
        raise ValueError("smoothness costs must be symmetric (gco's set_smooth_cost requires it)")
    weight_v = np.asarray(weight_v, dtype=np.int64)
    weight_h = np.asarray(weight_h, dtype=np.int64)
    if (weight_v < 0).any() or (weight_h < 0).any():
        raise ValueError("edge weights must be non-negative for a swap move to be a minimum cut")
    if num_labels is None:
        num_labels = np.full(n_prob, n_lab)
    smooth_pad = np.zeros((n_prob, n_lab + 1, n_lab + 1), dtype=np.int64)
    smooth_pad[:, :n_lab, :n_lab] = smooth
    towards = _neighbour_weights(weight_v, weight_h)
    pair_a, pair_b = (
        np.array([(a, b) for a in range(n_lab) for b in range(n_lab - 1, a, -1)]).reshape(-1, 2).T
    )
    labels = np.zeros((n_prob, height, width), dtype=np.int64)
    energy = grid_energy(labels, unary, smooth, weight_v, weight_h)
    running = np.ones(n_prob, dtype=bool)
    while running.any():
        start = 0
        while start < len(pair_a):
            # Moves that provably change nothing are skipped; the others run in gco's order, and
            # after one that changes a labelling the rest of the cycle is checked again.
            rest_a, rest_b = pair_a[start:], pair_b[start:]
            stable = _stable_pairs(labels, unary, smooth_pad, towards)
            todo = (running[:, None] & (rest_b < num_labels[:, None])) & ~stable[:, rest_a, rest_b]
            start = len(pair_a)
            for j in np.nonzero(todo.any(0))[0]:
                idx = np.nonzero(todo[:, j])[0]
                alpha, beta = int(rest_a[j]), int(rest_b[j])
                moved = _swap_move(
                    labels[idx], unary[idx], smooth[idx], weight_v[idx], weight_h[idx], alpha, beta
                )
                if (moved != labels[idx]).any():
                    labels[idx] = moved
                    start = len(pair_a) - len(rest_a) + j + 1
                    break
        new_energy = grid_energy(labels, unary, smooth, weight_v, weight_h)
        # gco keeps cycling while a whole cycle lowered the energy (old_energy > new_energy).
        running &= new_energy < energy
        energy = new_energy
    return labels


def _neighbour_weights(weight_v: np.ndarray, weight_h: np.ndarray) -> np.ndarray:
    """(P, H, W, 4): weight of each site's edge to its upper, lower, left and right neighbour."""
    n_prob, height, width = weight_h.shape[0], weight_h.shape[1], weight_v.shape[2]
    towards = np.zeros((n_prob, height, width, 4), dtype=np.int64)
    towards[:, 1:, :, 0] = weight_v
    towards[:, :-1, :, 1] = weight_v
    towards[:, :, 1:, 2] = weight_h
    towards[:, :, :-1, 3] = weight_h
    return towards


def _stable_pairs(
    labels: np.ndarray, unary: np.ndarray, smooth_pad: np.ndarray, towards: np.ndarray
) -> np.ndarray:
    """(P, L, L): True where the move (a, b) certainly leaves the labelling of problem p unchanged.

    Flipping a set D of the move's sites changes the energy by the sum over D of each site's data
    gain plus, for every edge leaving D, +w where its ends agreed and -w where they differed. So if
    each site's gain exceeds the weight of its edges to move sites on the other side, every flip
    raises the energy strictly: the current labelling is the move's unique minimum, which the cut
    returns. With c(v, l) the cost of label l at v given all neighbours and n(v, l) the edge weight
    from v to neighbours labelled l, that margin is c(v, m) - c(v, own) - V(own, m) n(v, own) for a
    site labelled own facing label m.
    """
    n_prob, height, width = labels.shape
    n_lab = unary.shape[-1]
    border = np.full((n_prob, height + 2, width + 2), n_lab, dtype=np.int64)
    border[:, 1:-1, 1:-1] = labels
    around = np.stack(
        [border[:, :-2, 1:-1], border[:, 2:, 1:-1], border[:, 1:-1, :-2], border[:, 1:-1, 2:]], -1
    ).reshape(n_prob, -1, 4, 1)
    near = ((around == np.arange(n_lab + 1)) * towards.reshape(n_prob, -1, 4, 1)).sum(2)
    cost = unary.reshape(n_prob, -1, n_lab) + near @ smooth_pad[:, :, :n_lab]
    own = labels.reshape(n_prob, -1)
    prob = np.arange(n_prob)[:, None]
    site = np.arange(height * width)[None, :]
    margin = (
        cost
        - cost[prob, site, own][..., None]
        - smooth_pad[prob, own, :n_lab] * near[prob, site, own][..., None]
    )
    holds = own[..., None] == np.arange(n_lab)
    worst = np.where(holds[..., None], margin[:, :, None, :], _INF).min(1)
    return (worst > 0) & (worst.transpose(0, 2, 1) > 0)


def _swap_move(
    labels: np.ndarray,
    unary: np.ndarray,
    smooth: np.ndarray,
    weight_v: np.ndarray,
    weight_h: np.ndarray,
    alpha: int,
    beta: int,
) -> np.ndarray:
    """One alpha-beta move: sites labelled alpha or beta choose between the two (x=1 is beta)."""
    active = (labels == alpha) | (labels == beta)
    e0 = unary[..., alpha].copy()
    e1 = unary[..., beta].copy()
    prob = np.arange(labels.shape[0])[:, None, None]
    # Smoothness cost between each site's current label and alpha (beta): for a neighbour outside
    # the move it is a constant of the move and folds into the data terms of the active sites.
    to_alpha = smooth[prob, alpha, labels] * ~active
    to_beta = smooth[prob, beta, labels] * ~active
    pair = smooth[:, alpha, beta][:, None, None]
    e0[:, :-1] += weight_v * to_alpha[:, 1:]
    e1[:, :-1] += weight_v * to_beta[:, 1:]
    e0[:, 1:] += weight_v * to_alpha[:, :-1]
    e1[:, 1:] += weight_v * to_beta[:, :-1]
    e0[:, :, :-1] += weight_h * to_alpha[:, :, 1:]
    e1[:, :, :-1] += weight_h * to_beta[:, :, 1:]
    e0[:, :, 1:] += weight_h * to_alpha[:, :, :-1]
    e1[:, :, 1:] += weight_h * to_beta[:, :, :-1]
    edge_v = weight_v * pair * (active[:, :-1] & active[:, 1:])
    edge_h = weight_h * pair * (active[:, :, :-1] & active[:, :, 1:])
    if labels.shape[2] <= _DP_MAX_WIDTH:
        choice = _binary_dp(np.where(active, e0, 0), np.where(active, e1, _FIXED), edge_v, edge_h)
    else:
        choice = _binary_maxflow(e0, e1, edge_v, edge_h, active)
    return np.where(active, np.where(choice, beta, alpha), labels)


@lru_cache(maxsize=8)
def _row_states(width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bits of every row state (S, W), flips between horizontal neighbours (S, W-1) and between
    vertically adjacent states (W, S*S), as int64."""
    n_states = 1 << width
    bits = (np.arange(n_states)[:, None] >> np.arange(width)) & 1
    across = bits[:, 1:] ^ bits[:, :-1]
    flips = (bits[:, None, :] ^ bits[None, :, :]).reshape(n_states * n_states, width).T.copy()
    return bits, across, flips


def _binary_dp(e0: np.ndarray, e1: np.ndarray, edge_v: np.ndarray, edge_h: np.ndarray) -> np.ndarray:
    """Exact binary grid labelling by min-sum dynamic programming over row states; returns the
    minimiser with the fewest ones (x=1 exactly where every minimiser has x=1)."""
    n_prob, height, width = e0.shape
    bits, across, flips = _row_states(width)
    n_states = len(bits)
    row = e0 @ (1 - bits).T + e1 @ bits.T + edge_h @ across.T
    step = (edge_v @ flips).reshape(n_prob, height - 1, n_states, n_states)
    fwd = np.empty_like(row)
    bwd = np.zeros_like(row)
    fwd[:, 0] = row[:, 0]
    for r in range(height - 1):
        fwd[:, r + 1] = row[:, r + 1] + (fwd[:, r, :, None] + step[:, r]).min(1)
    for r in range(height - 2, -1, -1):
        bwd[:, r] = (step[:, r] + (row[:, r + 1] + bwd[:, r + 1])[:, None, :]).min(2)
    through = fwd + bwd
    best = through[:, 0].min(-1)
    # Min-marginal of x=0 at every site; x=1 only where no minimiser has x=0.
    zero_best = np.where(bits == 0, through[..., None], _INF).min(2)
    return zero_best > best[:, None, None]


def _binary_maxflow(
    e0: np.ndarray, e1: np.ndarray, edge_v: np.ndarray, edge_h: np.ndarray, active: np.ndarray
) -> np.ndarray:
    """Exact binary labelling of the active sites of all problems by one max-flow on their disjoint
    union; x=1 exactly for the sites that still reach the sink in the residual graph."""
    node = np.full(active.shape, -1, dtype=np.int64)
    n_nodes = int(active.sum())
    node[active] = np.arange(n_nodes)
    source, sink = n_nodes, n_nodes + 1
    diff = (e1 - e0)[active]
    rows = [np.full(int((diff > 0).sum()), source), np.nonzero(diff < 0)[0]]
    cols = [np.nonzero(diff > 0)[0], np.full(int((diff < 0).sum()), sink)]
    caps = [diff[diff > 0], -diff[diff < 0]]
    for weight, a, b in (
        (edge_v, node[:, :-1], node[:, 1:]),
        (edge_h, node[:, :, :-1], node[:, :, 1:]),
    ):
        keep = weight > 0
        rows += [a[keep], b[keep]]
        cols += [b[keep], a[keep]]
        caps += [weight[keep], weight[keep]]
    caps = np.concatenate(caps)
    if caps.size and caps.max() >= np.iinfo(np.int32).max:
        raise OverflowError("graph-cut capacity exceeds int32; the energy scale is out of range")
    graph = sp.csr_matrix(
        (caps.astype(np.int32), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n_nodes + 2, n_nodes + 2),
    )
    flow = maximum_flow(graph, source, sink).flow
    residual = (graph - flow).tocsr()
    residual.data = (residual.data > 0).astype(np.int8)
    residual.eliminate_zeros()
    reaches_sink = breadth_first_order(residual.T.tocsr(), sink, directed=True, return_predecessors=False)
    on_sink = np.zeros(n_nodes + 2, dtype=bool)
    on_sink[reaches_sink] = True
    to_beta = np.zeros(active.shape, dtype=bool)
    to_beta[active] = on_sink[:n_nodes]
    return to_beta
