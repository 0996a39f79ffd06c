"""PuzzleMix and Co-Mixup mixing per batch against their authors' code on the same inputs (CPU).

The reference functions are imported from checkouts given on the command line (they are not part
of this project): ``mixup.py`` of snu-mllab/PuzzleMix (``mixup_graph``) and ``match.py`` of
snu-mllab/Co-Mixup (``get_onehot_matrix`` and ``mix_input``, run over the batch's partitions as its
``mixup_process`` does, on the CPU). Both call gco-v3 through gco-wrapper, as this framework does by
default (``aug.solver=gco``); ``aug.solver=python`` is timed too. Every arm mixes the same images
with the same saliency maps, partners, mixing ratio and block count; the time is the mixing alone
(the saliency pass, identical for both, is left out).

    .venv/bin/python -m benchmarks.optmix_vs_reference --puzzlemix <PuzzleMix checkout> \\
        --comixup <Co-Mixup checkout>

Results: benchmarks/results/optmix_vs_reference_<size>px_b<batch>_cpu.{json,md}.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
from pathlib import Path
from types import SimpleNamespace

import torch
import torch.nn.functional as F

from benchmarks.common import timed, write_results
from diffusemix_bench.augment.mixing.comixup import co_mixup, compatibility_distance
from diffusemix_bench.augment.mixing.puzzlemix import puzzle_mix
from diffusemix_bench.config import CoMixupConfig, PuzzleMixConfig


def load(path: Path, name: str):
    """A reference module from its file, under ``name`` (both repositories have a mixup.py)."""
    sys.path.insert(0, str(path.parent))  # Co-Mixup's mixup.py imports its sibling match.py
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--puzzlemix", type=Path, required=True, help="checkout of snu-mllab/PuzzleMix")
    p.add_argument("--comixup", type=Path, required=True, help="checkout of snu-mllab/Co-Mixup")
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--classes", type=int, default=100)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(1)
    cpu = torch.device("cpu")
    ref_pm = load(a.puzzlemix / "mixup.py", "puzzlemix_reference")
    ref_match = load(a.comixup / "match.py", "match")

    g = torch.Generator().manual_seed(0)
    images = torch.rand(a.batch, 3, a.size, a.size, generator=g)
    saliency = torch.rand(a.batch, a.size, a.size, generator=g) ** 3
    perm = torch.randperm(a.batch, generator=g)
    targets = F.one_hot(torch.randint(0, a.classes, (a.batch,), generator=g), a.classes).float()
    pm = PuzzleMixConfig()
    cm = CoMixupConfig()
    rows, times = [], {}

    # PuzzleMix at each block count it draws (2, 4, 8, 16 per side), CIFAR-100's settings; the
    # reference un-normalises its input with mean and std: identity here, as the images are in [0, 1].
    zero, one = torch.zeros(1, 3, 1, 1), torch.ones(1, 3, 1, 1)
    for block_num in (2, 4, 8, 16):
        settings = dict(block_num=block_num, beta=pm.beta, gamma=pm.gamma, eta=pm.eta, neigh_size=4,
                        n_labels=pm.n_labels, transport=True, t_eps=pm.t_eps, t_size=4)  # fmt: skip

        def reference(settings=settings):
            ref_pm.mixup_graph(
                images, saliency, perm, alpha=0.5, mean=zero, std=one, device="cpu", **settings
            )

        def ours(solver, settings=settings):
            puzzle_mix(images, saliency, perm, lam=0.5, solver=solver, **settings)

        for arm, fn in (
            ("reference mixup_graph (gco)", reference),
            ("ours, solver=gco (default)", lambda: ours("gco")),
            ("ours, solver=python", lambda: ours("python")),
        ):
            torch.manual_seed(0)
            times[f"puzzlemix {block_num}x{block_num}: {arm}"] = timed(fn, cpu, a.warmup, a.repeats)

    # Co-Mixup on the 4x4 grid (CIFAR-100's setting), partitions of 20, as mixup_process runs them.
    block = 4
    pooled = F.avg_pool2d(saliency[:, None], a.size // block)[:, 0]
    compat = compatibility_distance(saliency)

    def reference_comixup():
        args = SimpleNamespace(m_part=cm.part, m_omega=cm.omega)
        for i in range(0, a.batch, args.m_part):
            sc = pooled[i : i + args.m_part]
            n = sc.shape[0]
            cost = -(sc / sc.reshape(n, -1).sum(1).reshape(n, 1, 1))
            dist = compat[i : i + n, i : i + n]
            dist = dist / dist.sum() * n
            weight = (1 - args.m_omega) * torch.eye(n) + args.m_omega * dist
            mask = ref_match.get_onehot_matrix(
                cost, weight, n_output=n, beta=cm.beta, gamma=cm.gamma, eta=cm.eta, mixup_alpha=2.0,
                thres=cm.thres, thres_type=cm.thres_type, set_resolve=cm.set_resolve, niter=cm.niter,
                device="cpu",
            )  # fmt: skip
            ref_match.mix_input(mask, images[i : i + n], targets[i : i + n])

    def ours_comixup(solver):
        co_mixup(images, targets, pooled, compat, part=cm.part, alpha=2.0, beta=cm.beta, gamma=cm.gamma,
                 eta=cm.eta, omega=cm.omega, thres=cm.thres, thres_type=cm.thres_type,
                 set_resolve=cm.set_resolve, niter=cm.niter, solver=solver)  # fmt: skip

    for arm, fn in (
        ("reference get_onehot_matrix + mix_input (gco)", reference_comixup),
        ("ours, solver=gco (default)", lambda: ours_comixup("gco")),
        ("ours, solver=python", lambda: ours_comixup("python")),
    ):
        torch.manual_seed(0)
        times[f"comixup {block}x{block}: {arm}"] = timed(fn, cpu, a.warmup, a.repeats)

    for name, ts in times.items():
        what, arm = name.split(": ", 1)
        # The first arm of each mix is the reference.
        base = statistics.median(times[next(k for k in times if k.split(": ", 1)[0] == what)])
        median = statistics.median(ts)
        rows.append(
            {
                "mix": what,
                "arm": arm,
                "median_s": round(median, 4),
                "min_s": round(min(ts), 4),
                "max_s": round(max(ts), 4),
                "vs_reference": f"{base / median:.2f}x",
            }
        )
        print(rows[-1], flush=True)
    settings = {
        "batch": a.batch,
        "image_size": a.size,
        "device": "cpu",
        "torch_threads": 1,
        "repeats": a.repeats,
        "warmup": a.warmup,
        "puzzlemix": f"CIFAR-100 settings: beta {pm.beta}, gamma {pm.gamma}, eta {pm.eta}, neigh_size 4, "
        f"{pm.n_labels} labels, transport t_eps {pm.t_eps} t_size 4, lam 0.5",
        "comixup": f"4x4 grid, part {cm.part}, beta {cm.beta}, gamma {cm.gamma}, eta {cm.eta}, "
        f"thres {cm.thres}, niter {cm.niter}, alpha 2.0",
        "reference_checkouts": f"{a.puzzlemix}, {a.comixup}",
    }
    write_results(
        f"optmix_vs_reference_{a.size}px_b{a.batch}_cpu",
        {"settings": settings, "rows": rows, "times_s": times},
        rows,
        notes=(
            "Seconds of mixing per batch (median over repeats), the saliency pass excluded. Baseline: "
            "the authors' function on the same inputs in the same run; vs_reference above 1 is faster. "
            "Each arm draws its own random initialisation (seeded alike), so the masks need not match "
            "draw for draw; reference/test_optmix pin that the computations agree."
        ),
    )


if __name__ == "__main__":
    main()
