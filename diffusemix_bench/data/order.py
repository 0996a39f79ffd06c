"""The order a batch-limited evaluation reads a split in (light: NumPy only, so that reports and
start-up checks can name it without importing torch)."""

from __future__ import annotations

import numpy as np

# The order a limited evaluation reads a split in (see class_interleaved); recorded in metrics.json.
LIMITED_EVAL_ORDER = "classes interleaved"
# The split's own order: an unlimited evaluation's, and a limited one's recorded before the above.
SPLIT_ORDER = "the split's own order"


def class_interleaved(targets: list[int], seed: int = 0) -> list[int]:
    """Every index of a split once, in an order whose every prefix spreads over the classes as
    evenly as the split allows: one image of each class (classes in a shuffled order), then a
    second of each, and so on, each class's images shuffled. A limited evaluation
    (``trainer.limit_val_batches``, ``eval.limit_batches``) reads the first batches of this order:
    in the split's own order (often sorted by class) a tenth of it covered a tenth of the classes.
    The order is fixed by the labels and ``seed`` alone, so every run of a sweep, whatever its own
    seed, is scored on the same images."""
    labels = np.asarray(targets, dtype=np.int64)
    rng = np.random.default_rng(seed)
    rank = np.empty(len(labels), dtype=np.int64)  # an image's place among its class's images
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        rank[rng.permutation(members)] = np.arange(len(members))
    classes = np.unique(labels)
    place = dict(zip(rng.permutation(classes).tolist(), range(len(classes))))  # a class's turn
    turn = np.array([place[int(c)] for c in labels], dtype=np.int64)
    return np.lexsort((turn, rank)).tolist()
