"""PuzzleMix's block transport (snu-mllab/PuzzleMix mixup.py: mask_transport, transport_image),
batched on the device: which block of each image moves where, and the moving itself."""

from __future__ import annotations

from functools import lru_cache

import torch


@lru_cache(maxsize=16)
def _block_distances(block_num: int, device: str) -> torch.Tensor:
    """Squared grid distance between block positions / (block_num - 1)^2 (PuzzleMix cost_matrix)."""
    idx = torch.arange(block_num * block_num)
    r, c = idx // block_num, idx % block_num
    dist = (r[:, None] - r[None, :]) ** 2 + (c[:, None] - c[None, :]) ** 2
    return (dist.float() / (block_num - 1) ** 2).to(device)


def transport_plan(mask: torch.Tensor, saliency: torch.Tensor, eps: float) -> torch.Tensor:
    """PuzzleMix's iterative approximate transport (mixup.py: mask_transport), batched.

    ``plan[b, i, j] = 1`` moves block i to position j. The cost of moving i to j is eps x their
    distance minus i's saliency where the mask shows this side. Each of block_num rounds: every block
    bids for its cheapest position (first on ties); a position takes the bidder the reference's
    ``(plan * cost).min(-2)`` picks, which is the first most negative bid, or, when no bid is
    negative, the first row whose entry there is zero (only a zero bid from that row can win); every
    other bidder pays 1 more for that position. The last round's winners are the plan: at most one
    1 per row and per column (a partial permutation). Computed sparsely, with the same result as the
    reference's dense rounds.
    """
    n = mask.shape[0]
    block_num = mask.shape[-1]
    k = block_num * block_num
    shown = (mask > 0).to(saliency.dtype).reshape(n, 1, k)
    cost = eps * _block_distances(block_num, str(mask.device))[None] - saliency.reshape(n, k, 1) * shown
    rows = torch.arange(k, device=mask.device).expand(n, k)
    best = cost.argmin(-1)
    for _ in range(block_num):
        bid = cost.gather(-1, best[..., None])[..., 0]
        winner = _position_winners(best, bid, rows)
        won = torch.zeros(n, k, dtype=torch.bool, device=mask.device)
        has = winner >= 0
        won[has.nonzero(as_tuple=True)[0], winner[has]] = True
        lost = ~won
        cost.scatter_add_(-1, best[..., None], lost[..., None].to(cost.dtype))
        batch_idx, row_idx = lost.nonzero(as_tuple=True)
        best[batch_idx, row_idx] = cost[batch_idx, row_idx].argmin(-1)
    plan = torch.zeros(n, k, k, dtype=saliency.dtype, device=mask.device)
    has = winner >= 0
    batch_idx, col_idx = has.nonzero(as_tuple=True)
    plan[batch_idx, winner[has], col_idx] = 1.0
    return plan


def _position_winners(best: torch.Tensor, bid: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """(N, K): the row that wins each position in one transport round, or -1 for none."""
    n, k = best.shape
    inf = torch.full_like(bid, float("inf"))
    lowest = inf.scatter_reduce(1, best, torch.where(bid < 0, bid, inf), "amin")
    at_lowest = (bid < 0) & (bid == lowest.gather(1, best))
    first = torch.full_like(best, k).scatter_reduce(1, best, torch.where(at_lowest, rows, k), "amin")
    # Without a negative bid, the column minimum is a zero: the first row not bidding a positive
    # amount there. That is row 0, except for row 0's own position when its bid is positive, where it
    # is the first row after the run of rows that all bid positively for it.
    blocking = (best == best[:, :1]) & (bid > 0)
    run = blocking.int().cumprod(1).sum(1, keepdim=True)
    zero_row = torch.where(rows == best[:, :1], run, torch.zeros_like(run))
    safe = zero_row.clamp_max(k - 1)
    zero_wins = (zero_row < k) & (best.gather(1, safe) == rows) & (bid.gather(1, safe) == 0)
    return torch.where(lowest < 0, first, torch.where(zero_wins, zero_row, torch.full_like(first, -1)))


def transport_blocks(
    images: torch.Tensor, plan: torch.Tensor, fill: torch.Tensor | float = 0.0
) -> torch.Tensor:
    """Move the blocks of each image by its plan; positions no block moves to show ``fill``
    (PuzzleMix mixup.py: transport_image, which works on normalised images where that is 0)."""
    n, c, width, _ = images.shape
    block_num = int(round(plan.shape[-1] ** 0.5))
    size = width // block_num
    centred = images - fill
    blocks = centred.reshape(n, c, block_num, size, block_num, size).permute(0, 1, 2, 4, 3, 5)
    blocks = blocks.reshape(n, c, block_num * block_num, size * size)
    moved = torch.einsum("bij,bcip->bcjp", plan.to(images.dtype), blocks)
    moved = moved.reshape(n, c, block_num, block_num, size, size).permute(0, 1, 2, 4, 3, 5)
    return moved.reshape(n, c, width, width) + fill
