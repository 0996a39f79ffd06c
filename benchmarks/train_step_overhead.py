"""Training-step throughput of the framework's LightningModule against a bare PyTorch loop.

Both run the same model, batch, optimiser and precision on synthetic uint8 images; the difference is
the framework's overhead (uint8 scaling, augmentation hook, soft-target loss, metrics, Lightning).

    .venv/bin/python -m benchmarks.train_step_overhead --model resnet18 --size 64 --batch 32 --steps 20
    .venv/bin/python -m benchmarks.train_step_overhead --model linear --size 8 --batch 16 --steps 300
        # host time per step: a one-layer model, so the step is almost all Python and Lightning
    .venv/bin/python -m benchmarks.train_step_overhead --precision bf16-mixed \
        --shapes preactresnet18:32:100,resnet50:224:16:30    # GPU: the paper protocols' shapes
        (model:size:batch[:timed steps], the steps of --steps where a shape names none)

The framework's images per second also give the compute part of a table's GPU hours
(benchmarks/table_costs.py).
"""

from __future__ import annotations

import argparse
import statistics
import time

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from benchmarks.common import write_results
from diffusemix_bench.augment import create_aug
from diffusemix_bench.config import LossConfig, OptimConfig, SchedConfig
from diffusemix_bench.models import create_model
from diffusemix_bench.training.module import ClassifierModule


def synthetic(n: int, size: int, classes: int) -> TensorDataset:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, classes, (n,), generator=g)
    return TensorDataset(images, labels, torch.arange(n))


def bare_loop(model, loader, device, steps: int, precision: str = "32") -> float:
    # The framework's settings for the same work: SGD with its default momentum and weight decay
    # (OptimConfig), cuDNN's autotuner on a GPU (the Trainer's benchmark=True below).
    torch.backends.cudnn.benchmark = device.type == "cuda"
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    model.train()
    done, start = 0, None
    autocast = precision == "bf16-mixed"
    while done < steps + 2:
        for images, labels, _ in loader:
            if done == 2:  # two warm-up steps
                if device.type == "cuda":
                    torch.cuda.synchronize()
                start = time.perf_counter()
            # Pinned batches copied without waiting, as Lightning moves them (and train.py pins them).
            x = images.to(device, non_blocking=True).float().div_(255)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
                loss = F.cross_entropy(model(x), labels.to(device, non_blocking=True))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            done += 1
            if done == steps + 2:
                break
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


class _Timer(pl.Callback):
    """From the start of step 2 to the end of the last step, as the bare loop is timed."""

    def __init__(self, last: int) -> None:
        self.start = None
        self.last = last

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        if batch_idx == 2:
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if batch_idx == self.last:
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            self.elapsed = time.perf_counter() - self.start


class LightningFloor(pl.LightningModule):
    """The least a LightningModule does for the same step (uint8 scaling, cross-entropy, the same
    SGD): Lightning's own cost per step, apart from the framework's module."""

    def __init__(self, model) -> None:
        super().__init__()
        self.model = model

    def training_step(self, batch, batch_idx):
        images, labels, _ = batch
        return F.cross_entropy(self.model(images.float().div_(255)), labels)

    def configure_optimizers(self):
        return torch.optim.SGD(self.model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)


def plain_module(model, classes: int) -> ClassifierModule:
    """The framework's module with aug=none, cross-entropy and SGD at a fixed learning rate."""
    return ClassifierModule(
        model,
        classes,
        create_aug({"name": "none"}, classes),
        "ce",
        LossConfig(name="ce"),
        OptimConfig(lr=0.01),
        SchedConfig(name="none"),
    )


def framework_loop(
    model, loader, classes: int, steps: int, accelerator: str, precision: str = "32", floor: bool = False
) -> float:
    """The framework's module (or, with ``floor``, :class:`LightningFloor`) under a plain Trainer."""
    module = LightningFloor(model) if floor else plain_module(model, classes)
    timer = _Timer(last=steps + 1)
    trainer = pl.Trainer(
        max_steps=steps + 2,
        accelerator=accelerator,
        devices=1,
        precision=precision,
        benchmark=accelerator == "gpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[timer],
        num_sanity_val_steps=0,
        limit_val_batches=0,
    )
    trainer.fit(module, train_dataloaders=loader)
    return timer.elapsed


def train_py_loop(model, loader, classes: int, steps: int, accelerator: str, precision: str = "32") -> float:
    """The module under the Trainer, callbacks and logger train.py builds from the default config
    (checkpointing, learning-rate monitor, CSV logger, the rich progress bar a terminal gets, which
    refreshes every step, the per-epoch summary), in a temporary run folder."""
    import tempfile
    from pathlib import Path

    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from diffusemix_bench.config import register_configs
    from diffusemix_bench.training.run import build_callbacks, build_logger, build_trainer
    from diffusemix_bench.training.summary import EpochSummary

    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(
        config_dir=str(Path(__file__).resolve().parents[1] / "conf"), version_base="1.3"
    ):
        cfg = compose(
            "config",
            overrides=[
                f"trainer.max_steps={steps + 2}",
                f"trainer.accelerator={accelerator}",
                "trainer.devices=1",
                f"trainer.precision={precision}",
                # The bar a terminal gets (callbacks.progress_bar=auto): it refreshes every step.
                "callbacks.progress_bar=rich",
                "trainer.limit_val_batches=0",
                "trainer.num_sanity_val_steps=0",
            ],
        )
    # The same module, loss and optimiser as the other framework arm: only the run's machinery differs.
    module = plain_module(model, classes)
    timer = _Timer(last=steps + 1)
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp)
        callbacks = build_callbacks(cfg, run_dir / "checkpoints") + [
            EpochSummary(run_dir / "summary.csv"),
            timer,
        ]
        trainer = build_trainer(cfg, run_dir, callbacks, build_logger(cfg, run_dir))
        trainer.fit(module, train_dataloaders=loader)
    return timer.elapsed


def build(model_name: str, size: int, classes: int) -> torch.nn.Module:
    """A built-in model, or ``linear``: one linear layer, so the step is almost all host time
    (the framework's own overhead per step, on any device)."""
    if model_name == "linear":
        return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * size * size, classes))
    return create_model(model_name, classes)


def measure(
    model_name: str, size: int, batch: int, classes: int, steps: int, precision: str, device, rounds: int = 3
) -> list[dict]:
    """Bare loop and framework on one shape, each on a fresh model with the same seed, every arm in
    turn for ``rounds`` rounds: the median seconds of each arm, and the median of its per-round
    ratios to the bare loop of the same round (with their range)."""
    accelerator = "gpu" if device.type == "cuda" else "cpu"
    data = synthetic(batch * (steps + 2), size, classes)
    # Pinned on a GPU, as train.py's loaders are (data/datamodule.py), for every arm.
    loader = DataLoader(
        data, batch_size=batch, shuffle=True, drop_last=True, pin_memory=device.type == "cuda"
    )
    arms = {
        "bare PyTorch (baseline)": lambda: bare_loop(
            build(model_name, size, classes).to(device), loader, device, steps, precision
        ),
        "Lightning floor (a minimal LightningModule, plain Trainer)": lambda: framework_loop(
            build(model_name, size, classes), loader, classes, steps, accelerator, precision, floor=True
        ),
        "diffusemix_bench ClassifierModule": lambda: framework_loop(
            build(model_name, size, classes), loader, classes, steps, accelerator, precision
        ),
        "ClassifierModule as train.py runs it (callbacks, logger, rich progress bar)": lambda: train_py_loop(
            build(model_name, size, classes), loader, classes, steps, accelerator, precision
        ),
    }
    seconds: dict[str, list[float]] = {arm: [] for arm in arms}
    for _ in range(rounds):
        for arm, run in arms.items():
            torch.manual_seed(0)
            seconds[arm].append(run())
    bare = seconds["bare PyTorch (baseline)"]
    images = batch * steps
    rows = []
    for arm, times in seconds.items():
        ratios = sorted(b / t for b, t in zip(bare, times))
        rows.append(
            {
                "model": model_name,
                "size": size,
                "batch": batch,
                "timed_steps": steps,
                "loop": arm,
                "images_per_s": round(images / statistics.median(times), 1),
                "relative": round(statistics.median(ratios), 3),
                "relative_range": f"{ratios[0]:.3f}-{ratios[-1]:.3f}",
            }
        )
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="resnet18")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument(
        "--shapes",
        default=None,
        help="model:size:batch[:steps],... (replaces --model/--size/--batch; steps: that shape's timed "
        "steps instead of --steps)",
    )
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--rounds", type=int, default=3, help="rounds, each running every arm in turn")
    p.add_argument("--classes", type=int, default=100)
    p.add_argument("--precision", default="32", choices=("32", "bf16-mixed"))
    p.add_argument("--name", default=None, help="results file name (default: derived from settings)")
    p.add_argument(
        "--profile",
        action="store_true",
        help="also run the framework on the first shape under cProfile and write its host functions "
        "by own time to <name>_profile.md (where the framework's time per step goes)",
    )
    a = p.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    accelerator = "gpu" if device.type == "cuda" else "cpu"
    shapes = (
        [
            (f[0], int(f[1]), int(f[2]), int(f[3]) if len(f) > 3 else a.steps)
            for f in (x.split(":") for x in a.shapes.split(","))
        ]
        if a.shapes
        else [(a.model, a.size, a.batch, a.steps)]
    )
    if a.name:
        name = a.name
    elif len(shapes) == 1:
        suffix = "" if a.precision == "32" else "_bf16"
        name = f"train_step_overhead_{shapes[0][0]}_{shapes[0][1]}px_b{shapes[0][2]}_{accelerator}{suffix}"
    else:
        name = f"train_step_overhead_{accelerator}_{'fp32' if a.precision == '32' else 'bf16'}"
    settings = {
        "shapes": ",".join(f"{m}:{s}px:b{b}" for m, s, b, _ in shapes),
        "classes": a.classes,
        "timed_steps": ",".join(str(n) for *_, n in shapes),
        "rounds": a.rounds,
        "warmup_steps": 2,
        "device": accelerator + (f" ({torch.cuda.get_device_name(0)})" if device.type == "cuda" else ""),
        "aug": "none",
        "precision": "fp32" if a.precision == "32" else "bf16 autocast (Lightning bf16-mixed)",
        "cudnn_benchmark": device.type == "cuda",
    }
    notes = (
        "Baseline: a bare PyTorch SGD loop on the same model, data, batch and precision (momentum 0.9, "
        "weight decay 1e-4, as the framework's defaults), measured in the same run. All arms read the "
        "same in-memory loader (no workers; batches pinned on a GPU, as train.py's are, and copied "
        "without waiting). The Lightning floor is a minimal LightningModule (cross-entropy, the same "
        "SGD) under the same plain Trainer as the framework's module: Lightning's own cost apart from "
        "the framework's. Every loop is timed from the start of step 2 to the end of the last step, "
        "each arm in turn for `rounds` rounds: images_per_s from its median time, relative the median "
        "of its per-round ratios to the bare loop of the same round (relative_range: the lowest and "
        "highest)."
    )
    rows = []
    for model_name, size, batch, steps in shapes:
        shape_rows = measure(model_name, size, batch, a.classes, steps, a.precision, device, a.rounds)
        rows += shape_rows
        for r in shape_rows:
            print(r, flush=True)
        # Written after every shape: a run stopped at its time limit keeps the shapes it finished.
        finished = dict.fromkeys(f"{r['model']}:{r['size']}px:b{r['batch']}" for r in rows)
        done = dict(settings, shapes=",".join(finished))
        write_results(name, {"settings": done, "rows": rows}, rows, notes=notes)
    if a.profile:
        profile(name, shapes[0], a, device, settings)


def profile(name: str, shape: tuple[str, int, int, int], a, device, settings: dict) -> None:
    """The framework loop of one shape under cProfile: its host functions by own time."""
    import cProfile
    import io
    import pstats

    from benchmarks.common import RESULTS

    model_name, size, batch, steps = shape
    accelerator = "gpu" if device.type == "cuda" else "cpu"
    data = synthetic(batch * (steps + 2), size, a.classes)
    loader = DataLoader(
        data, batch_size=batch, shuffle=True, drop_last=True, pin_memory=device.type == "cuda"
    )
    torch.manual_seed(0)
    model = build(model_name, size, a.classes)
    profiler = cProfile.Profile()
    profiler.enable()
    framework_loop(model, loader, a.classes, steps, accelerator, a.precision)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(30)
    text = "\n".join(
        [
            f"# {name}_profile",
            "",
            f"The framework loop ({model_name}, {size} px, batch {batch}, {steps + 2} steps with the "
            "warm-up) under cProfile: host functions by own time. Settings: "
            + ", ".join(f"{k}={v}" for k, v in settings.items()),
            "",
            "```",
            out.getvalue().strip(),
            "```",
            "",
        ]
    )
    path = RESULTS / f"{name}_profile.md"
    path.write_text(text)
    print("wrote", path)


if __name__ == "__main__":
    main()
