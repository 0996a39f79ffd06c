"""GPU hours of each paper table at paper scale, estimated from throughputs measured on a GPU.

For every run of a table's sweep (the runs `train.py --multirun experiment=<table> --cfg job`
lists), the run's composed config gives the model, crop size, batch, epochs, method, loss and
budget; the images its model sees per epoch are the training images (the paper-scale split sizes
below) times the views per image (3 with JSD), times 1 + the share of batches with an adversarial
pass, times 1 + k for `static_append` with `budget=epochs`. Those images at the framework's measured
training throughput on that shape (`train_step_overhead_gpu_bf16`, aug=none), plus the measured
per-batch mixing time of the optimisation mixes where it was measured at that shape
(`optmix_overhead_*_cuda`), give the run's hours. Generation: every training image times the number
of prompts, at the measured seconds per edit of the default batched generation at the run's
resolution (`generation_vs_official_sd15_cuda`), once per dataset and generator setting.

Not counted: evaluation passes, data loading stalls (the loader is assumed to keep up), start-up.
A method with an extra cost per batch that was not measured at a run's shape (a saliency pass, a
graph-cut solver) is counted at the aug=none step: its hours are a lower bound, marked ">=".

    .venv/bin/python -m benchmarks.table_costs        # reads benchmarks/results/*_cuda*.json
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from benchmarks.common import RESULTS, write_results
from diffusemix_bench.config import register_configs
from diffusemix_bench.preflight import sweep_jobs

CONF = Path(__file__).resolve().parents[1] / "conf"
TABLES = ["table2", "table3", "table4", "table5", "table6", "table7", "table8", "table9", "figure5", "lambda"]
# Official training split sizes (images); the framework holds dataset.val_fraction of it out for
# validation, except where the dataset has an official val split (Flowers-102: trnid, 10 per class).
TRAIN_IMAGES = {
    "cifar100": 50_000,
    "tinyimagenet": 100_000,
    "imagenet": 1_281_167,
    "cub": 5_994,
    "aircraft": 6_667,  # trainval
    "cars": 8_144,
    "flowers102": 1_020,
}
OFFICIAL_VAL = {"flowers102"}
# Methods whose apply() runs an extra model pass or a solver per batch.
EXTRA_COST = {"puzzlemix", "comixup", "guided_ap", "guided_sr", "saliencymix", "snapmix"}


def load(name: str) -> dict:
    path = RESULTS / f"{name}.json"
    if not path.exists():
        raise SystemExit(f"{path} is missing: run `make bench-gpu` on a GPU first")
    return json.loads(path.read_text())


def throughputs() -> dict[tuple[str, int, int], float]:
    """Images per second of the framework by shape: as train.py runs it where the file measured
    that (callbacks, logger, progress bar), else the module alone."""
    rows = load("train_step_overhead_gpu_bf16")["rows"]
    found: dict[tuple[str, int, int], float] = {}
    for r in rows:
        key = (r["model"], int(r["size"]), int(r["batch"]))
        if r["loop"].startswith("ClassifierModule as train.py"):
            found[key] = float(r["images_per_s"])
        elif r["loop"].startswith("diffusemix_bench"):
            found.setdefault(key, float(r["images_per_s"]))
    return found


def mixing_seconds() -> dict[tuple[str, int, int], dict[str, float]]:
    """Extra seconds per batch of each optimisation mix over plain mixup, by measured shape."""
    out = {}
    for path in RESULTS.glob("optmix_overhead_*_cuda.json"):
        data = json.loads(path.read_text())
        s = data["settings"]
        times = {k: sorted(v)[len(v) // 2] for k, v in data["times_s"].items() if " " not in k}
        base = times.get("mixup", 0.0)
        out[(s["model"], int(s["image_size"]), int(s["batch"]))] = {k: v - base for k, v in times.items()}
    return out


def seconds_per_edit() -> dict[int, float]:
    rows = load("generation_vs_official_sd15_cuda")["rows"]
    return {int(r["resolution"]): float(r["s_per_edit"]) for r in rows if "the default" in r["arm"]}


def compose_run(experiment: str, job: list[str]):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("config", overrides=[f"experiment={experiment}", *job])


def train_images(cfg) -> int:
    d = cfg.dataset
    n = TRAIN_IMAGES[d.name]
    if d.get("samples_per_class"):
        return min(n, int(d.samples_per_class) * int(d.num_classes))
    if d.name in OFFICIAL_VAL or not d.get("val_fraction"):
        return n
    return round(n * (1 - float(d.val_fraction)))


def run_cost(cfg, ips, mixing) -> tuple[float, bool, str]:
    """(GPU hours, lower bound?, shape) of one run."""
    shape = (str(cfg.model.name), int(cfg.dataset.image_size), int(cfg.dataset.batch_size))
    if shape not in ips:
        raise SystemExit(f"no GPU throughput measured for {shape}: add it to the GPU suite's shapes")
    aug = str(cfg.aug.name)
    n = train_images(cfg)
    views = 3 if aug in ("diffusemix", "augmix") and str(cfg.loss.name) in ("auto", "jsd") else 1
    if aug == "diffusemix" and str(cfg.aug.get("mode")) == "static_append":
        views = 1
    per_epoch = n * views * (1 + float(cfg.adv.p or 0.0))
    if aug == "diffusemix" and str(cfg.aug.get("mode")) == "static_append" and cfg.budget == "epochs":
        per_epoch *= 1 + int(cfg.generator.num_prompts or len(cfg.generator.prompts))
    epochs = int(cfg.trainer.max_epochs)
    seconds = epochs * per_epoch / ips[shape]
    lower_bound = False
    if aug in EXTRA_COST:
        extra = mixing.get(shape, {}).get(aug)
        if extra is None:
            lower_bound = True
        else:
            seconds += epochs * (n / shape[2]) * extra
    return seconds / 3600, lower_bound, f"{shape[0]} {shape[1]}px b{shape[2]}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tables", default=",".join(TABLES))
    a = p.parse_args()
    register_configs()
    ips, mixing, per_edit = throughputs(), mixing_seconds(), seconds_per_edit()
    gpu = load("train_step_overhead_gpu_bf16")["machine"].get("gpu", "GPU")
    rows = []
    for table in a.tables.split(","):
        jobs = sweep_jobs([f"experiment={table}"], str(CONF))
        hours, bound, shapes = 0.0, False, set()
        edits: dict[tuple, int] = {}
        for job in jobs:
            cfg = compose_run(table, job)
            h, lb, shape = run_cost(cfg, ips, mixing)
            hours += h
            bound |= lb
            shapes.add(shape)
            if str(cfg.aug.name) == "diffusemix" and not str(cfg.aug.components).startswith("originals"):
                g = cfg.generator
                prompts = int(g.num_prompts) if g.get("num_prompts") else len(g.prompts)
                key = (str(cfg.dataset.name), int(g.resolution), str(g.scheduler), int(g.steps))
                edits[key] = max(edits.get(key, 0), TRAIN_IMAGES[cfg.dataset.name] * prompts)
        gen_hours = 0.0
        gen_notes = []
        for (dataset, resolution, scheduler, steps), count in sorted(edits.items()):
            if resolution not in per_edit or (scheduler, steps) != ("euler_ancestral", 100):
                gen_notes.append(f"{dataset}: {count} edits at {resolution} px (not measured)")
                continue
            gen_hours += count * per_edit[resolution] / 3600
            gen_notes.append(f"{dataset}: {count:,} edits at {resolution} px")
        rows.append(
            {
                "table": table,
                "runs": len(jobs),
                "shapes": "; ".join(sorted(shapes)),
                "training_gpu_hours": (">= " if bound else "")
                + (f"{hours:,.1f}" if hours < 10 else f"{hours:,.0f}"),
                "generation_gpu_hours": f"{gen_hours:,.1f}",
                "edits": "; ".join(gen_notes) or "none",
            }
        )
        print(rows[-1], flush=True)
    by_shape = defaultdict(float, {f"{m} {s}px b{b}": v for (m, s, b), v in ips.items()})
    settings = {
        "gpu": gpu,
        "throughput_source": "train_step_overhead_gpu_bf16 (framework, bf16, aug=none)",
        "mixing_source": "optmix_overhead_*_cuda (apply() time over plain mixup)",
        "generation_source": "generation_vs_official_sd15_cuda (batched default, 100 Euler-ancestral steps)",
        "images_per_s": dict(by_shape),
        "s_per_edit": per_edit,
        "train_images": TRAIN_IMAGES,
    }
    write_results(
        "table_costs_" + gpu.replace("NVIDIA ", "").replace(" ", "_").lower(),
        {"settings": settings, "rows": rows},
        rows,
        notes=(
            "Estimates, not measurements of whole runs: each run's images through the model at the "
            "framework's measured training throughput on one GPU (bf16), plus measured mixing time "
            "where measured at that shape ('>=': a method's extra per-batch cost was not measured at "
            "some shape, so that table's hours are a lower bound). Evaluation, loading stalls and "
            "start-up are not counted. Generation: each dataset's training images x prompts once, at "
            "the measured seconds per edit of the batched default (the real InstructPix2Pix "
            "architecture with random weights)."
        ),
        derived=True,  # computed from the GPU result files: rewritten only when a number changes
    )


if __name__ == "__main__":
    main()
