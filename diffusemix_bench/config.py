"""Typed configuration schemas, registered in Hydra's ConfigStore.

Every YAML file under ``conf/`` merges into one of these dataclasses, so an unknown key or a value
of the wrong type stops the run at start-up with a message naming the key.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf

from .generation.prompts import PAPER_PROMPTS

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# Settings added after runs may have started: each with the value that gives what the code did
# before it existed, and the choice of its group it belongs to (None: every choice has it). A
# run's saved settings that lack one are read with that value (``with_added_settings``): a resume
# compares them with the command's, evaluate.py rebuilds the run's data from them, and a report
# averages such a run with later runs of the same settings.
ADDED_SETTINGS: dict[str, tuple[Any, str | None]] = {
    "aug.arithmetic": ("exact", "diffusemix"),  # composition arithmetic of aug.compose=before_crop
    "aug.same_class_weights": ("paper", "snapmix"),  # label weights of a pair of one class
    "dataset.warp": (False, None),  # the shorter side resized (the only geometry before the setting)
    "fractals.fit": ("crop", None),  # folder pictures: the shorter side resized, centre-cropped
    "dataset.options.crop_banner": (False, "aircraft"),  # FGVC-Aircraft's images read whole
}


def with_added_settings(saved):
    """``saved`` (a run's saved settings, a DictConfig changed in place) with each setting of
    ``ADDED_SETTINGS`` it lacks, where its group holds the choice the setting belongs to."""
    for key, (before, choice) in ADDED_SETTINGS.items():
        section, name = key.split(".", 1)
        node = saved.get(section)
        if not OmegaConf.is_dict(node) or (choice is not None and node.get("name") != choice):
            continue
        inner, _, leaf = name.rpartition(".")  # dataset.options.crop_banner: in dataset.options
        parent = node.get(inner) if inner else node
        if OmegaConf.is_dict(parent) and leaf not in parent:
            parent[leaf] = before
    return saved


_FIRST = object()


def one_of(*choices: str, default: str | None | object = _FIRST):
    """A setting with a fixed set of values, by default the first (``default=None``: null, resolved
    later from the dataset's recipe). check_values refuses any other value at start-up, naming the
    setting and its choices; the implementation accepts the same set (tested)."""
    return field(default=choices[0] if default is _FIRST else default, metadata={"choices": choices})


def bounded(
    default: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    above: float | None = None,
    null: str | None = None,
):
    """A number with a usable range (``low <= value <= high``, ``value > above``; null passes, and
    ``null`` says what it means). check_values refuses a value outside it at start-up, naming the
    setting and the range; the implementation refuses the same values (tested)."""
    return field(default=default, metadata={"bounds": (low, high, above), "null": null})


def in_bounds(value: float, low: float | None, high: float | None, above: float | None) -> bool:
    return (
        (low is None or value >= low) and (high is None or value <= high) and (above is None or value > above)
    )


def bounds_text(low: float | None, high: float | None, above: float | None) -> str:
    if above is not None:
        return f"> {above}"
    if low is not None and high is not None:
        return f"in [{low}, {high}]"
    return f">= {low}" if low is not None else f"<= {high}"


@dataclass
class PathsConfig:
    # Folder holding every dataset's own top folder (cifar-100-python/, flowers-102/, ...).
    data_dir: str = "data"
    # Edit stores, fractal banks and image-check caches (weights go to the torch hub and Hugging
    # Face caches).
    cache_dir: str = "${oc.env:DIFFUSEMIX_CACHE,'~/.cache/diffusemix_bench'}"
    log_dir: str = "outputs"
    # The run folder: Hydra's output directory when launched through train.py.
    output_dir: str = "${hydra:runtime.output_dir}"


@dataclass
class DatasetConfig:
    name: str = MISSING
    # Folder that holds the dataset's top folder; defaults to paths.data_dir. For
    # dataset=imagefolder it is the image folder itself (with train/ and val/).
    root: str | None = None
    download: bool = False
    # Share of each class held out of train as the validation split, for datasets that ship none.
    val_fraction: float = 0.1
    # Seed of that holdout and of few-shot subsets; separate from the training seed so that
    # changing the training seed never changes the splits.
    split_seed: int = 0
    # Keep only this many training images per class (data-scarcity protocols); null keeps all.
    samples_per_class: int | None = bounded(None, low=1, null="every image")
    # Reader-specific options (for example aircraft: annotation_level, train_split).
    options: dict[str, Any] = field(default_factory=dict)
    # Train-time geometry: pad_crop (CIFAR style), resize_crop (fine-grained style),
    # random_resized_crop (ImageNet style) or resize (no randomness).
    train_transform: str = one_of("resize_crop", "pad_crop", "random_resized_crop", "resize")
    image_size: int = bounded(224, low=1)
    # Shorter side before the centre crop at evaluation (and before the random crop for resize_crop).
    resize: int = bounded(256, low=1)
    # true: both sides to dataset.resize (resize x resize, the aspect ratio not kept), as SnapMix's
    # code does with its default warp: True; false: the shorter side, the aspect ratio kept.
    warp: bool = False
    padding: int = bounded(0, low=0)
    hflip: bool = True
    mean: list[float] = field(default_factory=lambda: list(IMAGENET_MEAN))
    std: list[float] = field(default_factory=lambda: list(IMAGENET_STD))
    batch_size: int = bounded(64, low=1)
    eval_batch_size: int | None = bounded(None, low=1, null="dataset.batch_size")
    # Data loader processes: 4, or fewer on a machine with fewer cores (cpu_cap).
    num_workers: int = bounded("${cpu_cap:4}", low=0)  # type: ignore[assignment]
    drop_last: bool = False
    # Decode every image file of every split once before training (cached per file by size and
    # modification time under paths.cache_dir/verified), so a corrupt file stops the run at
    # start-up instead of mid-epoch.
    verify: bool = False
    # error: a corrupt image stops the run, naming it; skip: verified corrupt files are left out of
    # their split, counted in metrics.json (bad_images) and listed in the run folder (implies verify).
    on_bad_image: str = one_of("error", "skip")


@dataclass
class ModelConfig:
    # Registry name (preactresnet18, resnet18, resnet50) or, with source=timm, any timm model name.
    name: str = MISSING
    source: str = "builtin"
    pretrained: bool = False
    # Local weights: a .safetensors file or a state-dict/checkpoint loaded with weights_only=True.
    weights: str | None = None
    # Normalisation inside the model; null uses the dataset's mean/std (or the pretrained weights').
    mean: list[float] | None = None
    std: list[float] | None = None
    # Extra keyword arguments for the architecture (for example stem_stride, drop_rate).
    kwargs: dict[str, Any] = field(default_factory=dict)
    channels_last: bool = False
    compile: bool = False


@dataclass
class AugConfig:
    name: str = MISSING


@dataclass
class LossConfig:
    # auto: the augmentation method's own loss; ce: soft-target cross-entropy on every view;
    # jsd: CE on the clean view plus the AugMix Jensen-Shannon term over [clean, view1, view2].
    name: str = "auto"
    # The classification term: ce (soft-target cross-entropy), or bce_softmax (binary cross-entropy
    # on softmax outputs, mean over N x K: the loss of PuzzleMix's main.py, which Co-Mixup and
    # GuidedMixup copy, and so of Table 2's baseline numbers; protocol=scratch_preact's default).
    criterion: str = "ce"
    label_smoothing: float = bounded(0.0, low=0, high=1)
    jsd_weight: float = bounded(12.0, low=0)


@dataclass
class OptimConfig:
    name: str = one_of("sgd", "adam", "adamw")
    lr: float = bounded(0.1, above=0)
    # Learning rate of the classifier head; null uses lr. Fine-tuning protocols train a new head
    # faster than the pretrained backbone.
    head_lr: float | None = bounded(None, above=0, null="optim.lr")
    momentum: float = bounded(0.9, low=0, high=1)
    nesterov: bool = False
    weight_decay: float = bounded(1e-4, low=0)
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])


@dataclass
class SchedConfig:
    # none, step, multistep or cosine; epochs are converted to optimiser steps so that the
    # schedule is exact whatever the epoch length.
    name: str = one_of("cosine", "none", "step", "multistep")
    step_size: int = bounded(30, low=1)
    milestones: list[int] = field(default_factory=list)
    # The factor the learning rate is multiplied by at each step or milestone.
    gamma: float = bounded(0.1, above=0)
    # cosine: the last step's learning rate as a fraction of optim.lr.
    min_lr_factor: float = bounded(0.0, low=0, high=1)
    warmup_epochs: float = bounded(0.0, low=0)
    warmup_start_factor: float = bounded(0.01, above=0, high=1)


@dataclass
class TrainerConfig:
    max_epochs: int = 100
    max_steps: int = -1
    accelerator: str = "auto"
    devices: Any = "auto"
    num_nodes: int = 1
    strategy: str = "auto"
    precision: str = "32-true"
    gradient_clip_val: float | None = bounded(None, low=0, null="no clipping")
    accumulate_grad_batches: int = bounded(1, low=1)
    check_val_every_n_epoch: int = 1
    val_check_interval: Any = None  # see BATCH_COUNT_SETTINGS
    log_every_n_steps: int = 50
    limit_train_batches: Any = None  # see BATCH_COUNT_SETTINGS
    limit_val_batches: Any = None  # see BATCH_COUNT_SETTINGS
    limit_test_batches: Any = None  # see BATCH_COUNT_SETTINGS
    fast_dev_run: bool = False
    deterministic: bool = False
    benchmark: bool = False
    num_sanity_val_steps: int = 2
    enable_progress_bar: bool = True
    # Every other pl.Trainer argument, passed through when set (null: Lightning's default). The
    # framework sets callbacks, logger, plugins, default_root_dir and checkpointing itself.
    min_epochs: int | None = None
    min_steps: int | None = None
    max_time: Any = None  # "DD:HH:MM:SS" or a dict of days/hours/minutes/seconds
    limit_predict_batches: Any = None  # see BATCH_COUNT_SETTINGS
    overfit_batches: Any = None  # see BATCH_COUNT_SETTINGS
    enable_model_summary: bool | None = None
    gradient_clip_algorithm: str | None = None
    inference_mode: bool | None = None
    use_distributed_sampler: bool | None = None
    profiler: str | None = None  # simple, advanced, pytorch
    detect_anomaly: bool | None = None
    barebones: bool | None = None
    sync_batchnorm: bool | None = None
    reload_dataloaders_every_n_epochs: int | None = None
    enable_autolog_hparams: bool | None = None
    model_registry: str | None = None


@dataclass
class LoggerConfig:
    # csv (default), wandb (offline when no API key is configured), tensorboard, or none.
    name: str = "csv"
    project: str = "diffusemix-bench"
    run_name: str | None = None
    # wandb only: online, offline, or null to choose offline when no API key is configured.
    mode: str | None = None
    tags: list[str] = field(default_factory=list)


@dataclass
class CallbacksConfig:
    # Checkpoint selection uses the validation split only; the test split is evaluated once.
    monitor: str = "val/top1"
    mode: str = "max"
    save_top_k: int = 1
    # last.ckpt holds the state at the end of every epoch (what ckpt_path=last resumes from), and,
    # with checkpoint_every_n_steps=N, every N optimiser steps too (long epochs on preemptible nodes).
    save_last: bool = True
    checkpoint_every_n_steps: int | None = None
    early_stopping_patience: int | None = None
    lr_monitor: bool = True
    # auto: rich bar in a terminal, plain TQDM when stdout is not one; or tqdm, rich, none.
    progress_bar: str = "auto"


@dataclass
class GeneratorConfig:
    """InstructPix2Pix edit generation (DiffuseMix step 1). Every field that changes pixels is
    part of the edit store's folder hash. Prompts are keys in the store; the prompt list enters the
    hash through its blocks (one pipeline call each), unless ``batch_invariant``."""

    # ip2p: diffusers StableDiffusionInstructPix2PixPipeline; tiny: random tiny pipeline for tests.
    name: str = one_of("ip2p", "tiny")
    model_id: str = "timbrooks/instruct-pix2pix"
    # The hub revision of model_id to load (a commit sha, branch or tag); null: its main branch.
    # Not part of the store's name: the commit loaded is recorded in the store's runtime.json
    # (weights_commit), and a store is never filled from two commits.
    revision: str | None = None
    # A local folder with the pipeline (model_index.json, unet/, vae/, ...); wins over model_id.
    local_dir: str | None = None
    # Edit prompts, raw (default: the paper's nine). Each is stored under an id derived from its text.
    prompts: list[str] = field(default_factory=lambda: list(PAPER_PROMPTS))
    # paper: "A transformed version of image into <prompt>" (Sec. 4); raw: the prompt alone, as
    # the official code passes it.
    prompt_template: str = one_of("paper", "raw")
    # Use the first k prompts (Fig. 5 ablation); null uses all.
    num_prompts: int | None = bounded(None, low=1, null="all")
    scheduler: str = one_of("euler_ancestral", "euler", "ddim", "dpmpp_2m")
    # At most the scheduler's training timesteps (1000 for InstructPix2Pix's schedulers).
    steps: int = bounded(100, low=1, high=1000)
    guidance_scale: float = 4.0
    image_guidance_scale: float = 1.5
    # Images are resized to resolution x resolution for the pipeline (official code: 256, 512 in its
    # first release); the
    # edit is resized back to the original image's size so it aligns with it pixel for pixel.
    resolution: int = bounded(512, low=8)
    # auto: bf16 on GPU, fp32 on CPU; or fp32, fp16, bf16.
    dtype: str = one_of("auto", "fp32", "fp16", "bf16")
    # Edits per pipeline call: one image with up to batch_size of its prompts (the prompts are cut
    # into near-equal blocks: the paper's 9 prompts at 9 make one call per image, at 8 calls of 4
    # and 5). Each edit keeps its own noise; its bytes are fixed by the settings and the blocks
    # (part of the store's hash), whatever the number of GPUs, the order of work or a resume: a
    # block is always generated whole. A GPU that runs out of memory needs a smaller batch_size.
    batch_size: int = bounded(9, low=1)
    # true: one edit per pipeline call (the official code's way, slower on a GPU); bytes then do
    # not depend on the batch size at all.
    batch_invariant: bool = False
    seed: int = 0
    # The stored edit's size. auto: the size training reads it at (the shorter side of
    # dataset.resize for datasets whose training transform resizes first; else the original's);
    # a number: a largest shorter side (edits are only ever shrunk); null: the original's size.
    store_size: str | None = "auto"
    # npy: raw uint8 arrays (no decoding when training reads them; about twice PNG's disk); png.
    store_format: str = one_of("npy", "png")
    # Also keep the full-resolution (resolution x resolution) edit under full/.
    keep_full_size: bool = False
    # Try it on a few images: edit only the first N images of each split (limit), or the first N
    # of each class (limit_per_class); null edits every image. Edits made stay in the full store.
    limit: int | None = bounded(None, low=1, null="every image")
    limit_per_class: int | None = bounded(None, low=1, null="every image")
    # Decode every stored edit before counting it as done (finds damage that keeps a file's size;
    # the size is always checked against the manifest). Broken edits are made again.
    verify: bool = False
    # Regenerations with a new derived seed when an edit is non-finite or blank.
    max_retries: int = bounded(3, low=0)
    # An edit whose pixel standard deviation (in [0, 1]) is below this is blank (black NaN images).
    blank_std: float = 0.01
    splits: list[str] = field(default_factory=lambda: ["train"])
    edits_dir: str = "${paths.cache_dir}/edits"
    # Speed levers: torch.compile of the UNet (every call padded to the largest prompt block) and channels_last.
    compile: bool = False
    channels_last: bool = False
    # DeepCache step caching (changes pixels, its own store; generator=ip2p_deepcache): every
    # cache_interval-th denoising step runs the whole UNet, the steps between reuse its deep
    # features and recompute only the shallow branch cache_branch_id (0: the shallowest). null: off.
    cache_interval: int | None = None
    cache_branch_id: int = 0


@dataclass
class FractalsConfig:
    """The fractal bank blended into DiffuseMix images (and PixMix/IPMix mixing pictures)."""

    # procedural: IFS fractals (FractalDB-style chaos game) generated once and cached under
    # cache_dir/<hash of the settings>/; folder: every image in fractals.dir.
    source: str = "procedural"
    # source=folder: a folder of pictures (searched recursively; any mode, converted to RGB).
    dir: str | None = None
    # source=procedural: how many fractals to keep.
    count: int = 1000
    # Side of the square pictures.
    size: int = 256
    # source=folder: how a picture becomes a size x size square. crop: shorter side resized, then
    # centre-cropped (PixMix's reference: Resize, then a crop); squash: both sides resized, the
    # aspect ratio lost (DiffuseMix's official code: Image.resize((256, 256)) of each picture).
    fit: str = one_of("crop", "squash")
    seed: int = 0
    # Chaos-game points per fractal and the least share of the canvas they must cover (FractalDB:
    # 100k points, filling rate 0.2); systems below it are discarded.
    points: int = 100_000
    min_fill: float = 0.2
    cache_dir: str = "${paths.cache_dir}/fractals"


def check_budget(setting: str, value: float, usual: str) -> None:
    """A budget in 1/255 units written as a fraction of the range (torchattacks' eps=8/255: less
    than one grey level) or past the whole range, refused with the value to give. ``usual``: what
    8 is for this setting (Table 4's budget)."""
    from .errors import ConfigError

    if 0 < value < 1:
        # (a fraction that is itself under a grey level: no value of it to suggest)
        fix = (
            f"give {setting}={budget_255(value)} for {value:g} of the range (0: none)"
            if value * 255 >= 1
            else f"give {setting} of at least 1, one grey level (0: none)"
        )
        raise ConfigError(
            f"{setting}={value:g}: {setting} is in 1/255 units of the [0, 1] pixel range (8 is 8/255, {usual}), "
            f"so {value:g} is {value:g}/255, less than one grey level; {fix}"
        )
    if value > 255:
        raise ConfigError(
            f"{setting}={value:g}: {setting} is in 1/255 units of the [0, 1] pixel range (8 is 8/255), and 255 "
            "already spans the whole range; give at most 255"
        )


def check_budgets(cfg) -> None:
    """The budgets and steps in 1/255 units that the run uses, each written as a fraction of the
    range refused at start-up (a sweep's listing and its checks before any job, too), as the
    attacks and adversarial training refuse them when built."""
    e = cfg.get("eval") or {}
    if (e.get("fgsm") or e.get("pgd")) and float(e.get("eps", 0)) > 0:
        check_budget("eval.eps", float(e.eps), "Table 4's budget")
    if e.get("pgd"):
        check_pgd_step(float(e.pgd_step_size))
    adv = cfg.get("adv") or {}
    if float(adv.get("p") or 0) > 0:
        check_budget("adv.eps", float(adv.eps), "near PuzzleMix's 10")
        if adv.get("step") is not None:
            check_budget("adv.step", float(adv.step), "near PuzzleMix's eps + 2")
    aug = cfg.get("aug") or {}
    if aug.get("name") == "puzzlemix" and float(aug.get("adv_p") or 0) > 0:
        check_budget("aug.adv_eps", float(aug.get("adv_eps", 10.0)), "near its reference's 10")


def check_pgd_step(value: float) -> None:
    """PGD's step (``eval.pgd_step_size``, 1/255 units) written as a fraction of the range (2/255 =
    0.0078), refused with the value to give, as is one past the whole range; half a grey level (0.5)
    is a step some recipes take."""
    from .errors import ConfigError

    if 0 < value < 0.1:
        # (a fraction that is itself under a tenth of a grey level: no value of it to suggest)
        fix = (
            f"give eval.pgd_step_size={budget_255(value)} for {value:g} of the range"
            if value * 255 >= 0.1
            else "give a step of at least 0.1 (the default is 2)"
        )
        raise ConfigError(
            f"eval.pgd_step_size={value:g}: the step is in 1/255 units of the [0, 1] pixel range, as eval.eps "
            f"is (2 is 2/255), so {value:g} is {value:g}/255, a tenth of a grey level or less; {fix}"
        )
    if value > 255:
        raise ConfigError(
            f"eval.pgd_step_size={value:g}: the step is in 1/255 units of the [0, 1] pixel range (2 is 2/255), "
            "and 255 already spans the whole range; give at most 255 (the default is 2)"
        )


def budget_255(fraction: float) -> str:
    """``fraction`` of the pixel range in 1/255 units, as eval.eps takes it (0.0314 -> 8)."""
    units = fraction * 255
    return str(round(units)) if abs(units - round(units)) < 0.05 else f"{units:.3g}"


@dataclass
class EvalConfig:
    """Adversarial evaluation of the selected checkpoint after training (Table 4), or of a finished
    run with ``python evaluate.py ckpt=<run folder>``: FGSM and PGD in [0, 1] pixel space."""

    fgsm: bool = False
    pgd: bool = False
    # Budget in 1/255 units of [0, 1] pixels (Table 4: FGSM at 8/255).
    eps: float = bounded(8.0, low=0)
    pgd_step_size: float = bounded(2.0, above=0)
    pgd_steps: int = bounded(10, low=1)
    pgd_random_start: bool = True
    # The split attacked: test (the paper's FGSM error), or val.
    split: str = one_of("test", "val")
    # Images per attacked batch; null: the run's evaluation batch (dataset.eval_batch_size, else
    # dataset.batch_size). Each image is attacked on its own; lower it when the GPU runs out of memory.
    batch_size: int | None = bounded(None, low=1, null="the run's evaluation batch")
    # Attack only the split's first N batches (a short check of a long measurement: Table 4 attacks
    # all 10,000 test images); null: every batch. Recorded as robust_limit_batches; reports set
    # such a measurement apart from the paper's. Under trainer=ddp, the attack after training
    # gives each process its own part of the split and N counts each process's batches.
    limit_batches: int | None = bounded(None, low=1, null="every batch of the split")


@dataclass
class AdvConfig:
    """Fast adversarial training (PuzzleMix's adversarial variant, after Wong et al. 2020), off by
    default: with probability ``p`` per batch the training views get one signed gradient step of
    ``step`` (null: eps + 2) from a random start in +-``eps``, in 1/255 units of [0, 1] pixels,
    scaled by u ~ U(0, 1) (``scale=uniform``, as PuzzleMix) or not (``none``). PuzzleMix: p 0.1 on
    CIFAR-100, 0.15 on Tiny-ImageNet, eps 10. ``aug=puzzlemix`` runs it in its reference's own form
    (two coins per batch, noise added to the sources before mixing; the same as ``aug.adv_p``)."""

    p: float = bounded(0.0, low=0, high=1)
    eps: float = bounded(10.0, low=0)
    step: float | None = bounded(None, low=0, null="eps + 2")
    scale: str = one_of("uniform", "none")


@dataclass
class Config:
    dataset: DatasetConfig = MISSING
    model: ModelConfig = MISSING
    aug: Any = MISSING
    loss: LossConfig = MISSING
    optim: OptimConfig = MISSING
    sched: SchedConfig = MISSING
    trainer: TrainerConfig = MISSING
    logger: LoggerConfig = MISSING
    callbacks: CallbacksConfig = MISSING
    paths: PathsConfig = MISSING
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    fractals: FractalsConfig = field(default_factory=FractalsConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    adv: AdvConfig = field(default_factory=AdvConfig)
    # Name of the paper protocol that set model/optimiser/schedule defaults (reported in metrics).
    protocol: str = "custom"
    # epochs: every run trains trainer.max_epochs epochs of its own training set (DiffuseMix's
    # static_append set makes an epoch 1 + P times longer); vanilla_steps: optimiser steps held equal
    # to a vanilla run of the same protocol (max_epochs epochs of the original images), epoch-based
    # schedules placed at the steps where they fall for that run (fair ablation arms).
    budget: str = "epochs"
    # Set by an experiment file (experiments/<name>.yaml): its name, recorded in metrics.json, and the
    # paper's numbers for its table (rows, columns, metrics), which reports read.
    experiment_name: str | None = None
    paper: Any = None
    task_name: str = "train"
    # The training seed (in NumPy's range, 0 to 2**32 - 1: it seeds every generator of the run).
    seed: int = 0
    # null: start fresh; "last": resume from the run folder's last.ckpt; "auto": resume from it
    # when it exists, else start fresh (a job a scheduler runs again after a time limit or a
    # preemption goes on where it stopped); or a checkpoint path.
    ckpt_path: str | None = None
    run_test: bool = True
    # Print the resolved settings as a tree when a run starts (rich when installed, else YAML).
    print_config: bool = True
    # torch.set_float32_matmul_precision: "high" lets fp32 matrix products use TF32 on GPUs that
    # have it (the baselines' reference code keeps PyTorch's "highest"); null: left as it is.
    float32_matmul_precision: str | None = "high"
    # Labels of the run (no setting): recorded in metrics.json and given to wandb with logger.tags.
    tags: list[str] = field(default_factory=list)


@dataclass
class EvaluateConfig:
    """``python evaluate.py ckpt=<run folder or .ckpt> eval.fgsm=true``: attack a finished run."""

    # A run folder written by train.py (its selected checkpoint), or a .ckpt file inside one.
    ckpt: str = MISSING
    # The run's own paths.data_dir unless set (data moved since the run).
    data_dir: str | None = None
    # auto (a GPU when there is one), cpu, or gpu (refused where there is none).
    accelerator: str = one_of("auto", "cpu", "gpu")
    # Seeds PGD's random start; null: the run's own seed, as the attack after training (so both
    # give the same PGD numbers). metrics.json records it as robust_seed.
    seed: int | None = None
    eval: EvalConfig = field(default_factory=EvalConfig)
    task_name: str = "evaluate"


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the system has one)."""
    import os

    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows
        return os.cpu_count() or 1


# ---------------------------------------------------------------- augmentation schemas
# One per conf/aug/<name>.yaml, here rather than beside each implementation so that composing a
# config imports no torch (help, config printing and config errors answer in seconds).


@dataclass
class NoneAugConfig:
    name: str = "none"


@dataclass
class MixingConfig:
    """Settings every batch-mixing method shares (the method's schema adds ``name`` and its own)."""

    # Strength: the mixing ratio is drawn from Beta(alpha, alpha). null: from dataset_defaults.
    alpha: float | None = bounded(None, above=0)
    # Probability that a batch is mixed (the others train on clean images). null: from dataset_defaults.
    prob: float | None = bounded(None, low=0, high=1)
    # {dataset name or "default": {setting: value}}: the references' values per dataset, written in
    # conf/aug/<name>.yaml; a setting given explicitly wins.
    dataset_defaults: dict[str, dict[str, float]] = field(default_factory=dict)


@dataclass
class DiffuseMixConfig:
    name: str = "diffusemix"
    # Fractal blend factor λ of Eq. 2-3 (paper: 0.2 in all experiments).
    lam: float = bounded(0.2, low=0, high=1)
    # Half masks: paper4 (horizontal and vertical, each flipped; paper), official2 (original always
    # left or top; official code), hv (Table 9 row 2, same pair as official2), vertical (Table 9 row 1:
    # split by a vertical line, original left), official_vertical (the official code's "vertical":
    # halves stacked, original on top; the row's other reading).
    masks: str = one_of("paper4", "official2", "hv", "vertical", "official_vertical")
    # Width of a linear seam between the halves in pixels (official code: 20); 0 = hard edge (paper).
    seam_px: int = bounded(0, low=0)
    # How composed pixels are computed with aug.compose=before_crop. exact: Eq. 3 in floating point,
    #   the seam a ramp centred on the midline, rounded to uint8 once. official: the official code's
    #   steps (its seam ramp, the hybrid truncated to uint8, then the fractal blend truncated again),
    #   byte for byte; about 0.4 levels darker on average, and up to a few levels along the seam.
    arithmetic: str = one_of("exact", "official")
    # online: every draw of an image takes a fresh random edit, mask and fractal (this framework's
    #   default: Algorithm 1 composes a fixed set of m images per original once, with random draws).
    # static_append (official recipe): a fixed composed image per (original, prompt), with a fixed
    #   mask and fractal, appended to the originals: the epoch grows by the number of prompts.
    # replace_p (DA-Fusion style): each view is the composed image with probability replace_prob,
    #   else the original.
    mode: str = one_of("online", "static_append", "replace_p")
    replace_prob: float = bounded(0.5, low=0, high=1)
    # Table 7 arms: originals (I), originals_fractal (I+F), edits (Î), edits_fractal (Î+F),
    # hybrid (H), hybrid_fractal (H+F, the full method).
    components: str = one_of(
        "hybrid_fractal",
        "originals",
        "originals_fractal",
        "edits",
        "edits_fractal",
        "hybrid",
    )
    # loss=ce, online and replace_p: also train on the clean original beside the composed view
    # (two views, CE averaged). The paper trains with JSD, whose CE term is on the clean image.
    ce_include_original: bool = False
    # with_original (paper, AugMix's JSD): the clean original is a training view beside the composed
    #   ones (JSD: its CE term is on the original; loss=ce: only with ce_include_original).
    # arm_only: every view is a draw of aug.components, so an arm trains on what its Table 7 column
    #   names and nothing else (JSD: three draws, the CE term on the first).
    views: str = one_of("with_original", "arm_only")
    # static_append: seed of the fixed masks and fractals; independent of the training seed, as the
    # official augmented set is generated once and reused by every run.
    static_seed: int = 0
    # after_crop: the original and its edits are cropped and flipped together, then composed in
    #   batches on the device, so the mask alone decides where the original sits in the training crop.
    # before_crop (Algorithm 1 and the official code): each whole image is composed in the data
    #   workers at its own size, and the training crop and flip then apply to the composed image, so
    #   a crop can miss one of the halves. The seam width is then in pixels of the whole image.
    compose: str = one_of("after_crop", "before_crop")
    # before_crop only: 0 composes at the original's own size; N resizes the original and its
    #   edit to N x N squares first (official code: 256, 512 in its first release; the aspect ratio
    #   is not kept), so the composed images are N x N. Originals trained as they are
    #   (static_append) keep their size.
    compose_size: int = 0
    # compose_size only: the size each composed image is brought to before the training transform.
    #   compose: stays compose_size x compose_size (as the official code writes its augmented set);
    #   original: resized back to its original's size; auto: original where the dataset's training
    #   transform crops at native resolution without resizing (pad_crop: CIFAR-100, Tiny-ImageNet,
    #   where a 32-64 px crop of a 256 px square would show under 2% of it), else compose.
    composed_size: str = one_of("auto", "original", "compose")
    # stored: the edit as stored (the original's size, or shrunk to generator.store_size);
    # full: the model's full-size output (resolution x resolution; the store keeps it with
    #   generator.keep_full_size=true), so a composition at compose_size does not enlarge an edit
    #   that was shrunk to a 32-64 px original.
    edit_source: str = one_of("stored", "full")
    # Rows of the Figure 4 grid logged at the start of training (0: none; at most 256: a taller
    # grid is too large to hold in memory at fine-grained sizes, or to look at).
    figure_images: int = bounded(8, low=0, high=256)
    # figure4.py: make the edits of the images it draws when the store lacks them (only those).
    figure_generate: bool = False


@dataclass
class CoMixupConfig:
    name: str = "comixup"
    # Dirichlet concentration of the per-input prior (mixup_alpha); null: the dataset's value.
    alpha: float | None = bounded(None, above=0)
    # Side of the labelling grid; -1 draws 2, 4, 8 or 16 per batch; null: the dataset's value.
    block_num: int | None = None
    # Inputs per partition; each partition of the batch is mixed on its own (m_part).
    part: int = bounded(20, low=2)
    # Label smoothness (m_beta), supermodular diversity (m_gamma), its threshold tau (m_thres,
    # hard or soft), prior (m_eta) and input compatibility (m_omega).
    beta: float = 0.32
    gamma: float = 1.0
    thres: float = 0.83
    thres_type: str = one_of("hard", "soft")
    eta: float = 0.05
    omega: float = 0.001
    # Post-processing that separates outputs built from the same inputs (set_resolve).
    set_resolve: bool = True
    # Outer iterations over all outputs (m_niter).
    niter: int = bounded(4, low=1)
    # Weight of the clean-input loss trained beside the mixed one; 0 computes saliency in eval mode.
    clean_lam: float = 1.0
    # Graph-cut solver: gco (gco-v3's C++ alpha-beta swap, which the reference calls) or python
    # (this framework's NumPy/SciPy one, the same moves).
    solver: str = one_of("gco", "python")
    # {dataset or "default": {setting: value}}: the references' values of the null settings above.
    dataset_defaults: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class CutMixConfig(MixingConfig):
    name: str = "cutmix"
    # How the box is drawn: puzzlemix, clovaai or timm (see batch_mix.sample_box); null: the
    # rule of the code the dataset's recipe comes from (dataset_defaults).
    box_rule: str | None = one_of("puzzlemix", "clovaai", "timm", default=None)
    dataset_defaults: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class GuidedAPConfig:
    name: str = "guided_ap"
    # Share of batches that are mixed (mix_prob; the README commands use 0.8 for Guided-AP).
    prob: float = bounded(0.8, low=0, high=1)
    blur_kernel: int = 7
    blur_sigma: float = 3.0
    pairing: str = one_of("greedy", "random")
    distance: str = one_of("l2", "l1", "cosine")
    # Weight of the clean-input loss trained beside the mixed one; null: the dataset's value.
    clean_lam: float | None = None
    # {dataset or "default": {setting: value}}: the references' values of the null settings above.
    dataset_defaults: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class GuidedSRConfig:
    name: str = "guided_sr"
    # Share of batches that are mixed (mix_prob; the README commands use 0.5 for Guided-SR).
    prob: float = bounded(0.5, low=0, high=1)
    # Gaussian blur of the saliency map before pairing and mixing (blur, blur_sigma).
    blur_kernel: int = 7
    blur_sigma: float = 3.0
    # Gaussian blur inside the spectral-residual computation (saliency_blur, saliency_blur_sigma).
    sr_blur_kernel: int = 7
    sr_blur_sigma: float = 3.0
    # greedy: GuidedMixup's one-cycle greedy pairing (the paper, the FGVC code); random: a random
    # permutation (its ablation, and what the published CIFAR/Tiny code runs under --condition greedy).
    pairing: str = one_of("greedy", "random")
    # Distance between saliency maps that the pairing maximises: l2, l1 or cosine.
    distance: str = one_of("l2", "l1", "cosine")


@dataclass
class ManifoldMixupConfig(MixingConfig):
    name: str = "manifold_mixup"
    # Where the hidden state may be mixed, one chosen uniformly per batch: 0 = the input image,
    # k = the output of residual layer k. The PuzzleMix/Manifold Mixup PreActResNet code draws
    # randint(0, 2), i.e. [0, 1, 2]; add 3 to also mix after layer3.
    layers: list[int] = field(default_factory=lambda: [0, 1, 2])


@dataclass
class MixupConfig(MixingConfig):
    name: str = "mixup"


@dataclass
class PuzzleMixConfig:
    name: str = "puzzlemix"
    # lambda ~ Beta(alpha, alpha), one per batch (mixup_alpha); 0: lam = 1, as the reference.
    alpha: float = bounded(1.0, low=0)
    # Mask values per block: 2 -> {0, 1}; 3 -> {0, 0.5, 1} (paper default); 4 -> quarters.
    n_labels: int = 3
    # Label smoothness (beta), data local smoothness (gamma), prior (eta) of the graph-cut energy.
    beta: float = 1.2
    gamma: float = 0.5
    eta: float = 0.2
    # Pooling size of the data-smoothness term; null: the dataset's reference value.
    neigh_size: int | None = None
    # Image the smoothness term is measured on: pixels ([0, 1], PuzzleMix) or normalized (GuidedMixup
    # FGVC copy); null: the dataset's reference value.
    smoothness_input: str | None = one_of("pixels", "normalized", default=None)
    transport: bool = True
    t_eps: float = 0.8
    # Transport resolution in pixels; -1 uses the graph-cut blocks; null: the dataset's value.
    t_size: int | None = None
    # Weight of the clean-input loss trained beside the mixed one; 0 computes saliency in eval mode.
    clean_lam: float | None = None
    # Adversarial Puzzle Mix: probability of adding FGSM-style noise to each side (0.1 CIFAR-100,
    # 0.15 Tiny-ImageNet in the README's adversarial commands), ball radius in /255 units.
    adv_p: float = 0.0
    adv_eps: float = 10.0
    # Share of batches that are mixed (GuidedMixup's FGVC copy exposes it; PuzzleMix always mixes).
    prob: float = 1.0
    # Graph-cut solver: gco (gco-v3's C++ alpha-beta swap, which the reference calls) or python
    # (this framework's NumPy/SciPy one: the same moves, in int64, so no int32 wrap).
    solver: str = one_of("gco", "python")
    # {dataset or "default": {setting: value}}: the references' values of the null settings above.
    dataset_defaults: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class SaliencyMixConfig(MixingConfig):
    name: str = "saliencymix"
    # Static saliency detector: fine_grained (Montabone & Soto 2010, OpenCV
    # StaticSaliencyFineGrained: the paper's and the reference code's choice) or spectral_residual
    # (Hou & Zhang 2007, OpenCV StaticSaliencySpectralResidual, one of the paper's ablations).
    saliency: str = one_of("fine_grained", "spectral_residual")


@dataclass
class SnapMixConfig(MixingConfig):
    name: str = "snapmix"
    # Label weights of a pair of one class. paper: rho_a + rho_b on that class (the paper's target);
    # reference: twice that (Shaoli-Huang/SnapMix utils/mixmethod.py adds each weight to the other
    # for such pairs, and its loss then counts the class in both terms).
    same_class_weights: str = one_of("paper", "reference")


@dataclass
class YOCOConfig:
    name: str = "yoco"
    # Augmentations run inside YOCO, in order, each with its own cut. hflip: flip each half with
    # probability 1/2 (the YOCO code's classification default; labels unchanged). mixup: Mixup of
    # each half with its own ratio ~ Beta(alpha, alpha) and one partner per image, labels mixed by
    # the mean ratio (the code's --mixup). The code's -y -m runs both: [hflip, mixup].
    ops: list[str] = field(default_factory=lambda: ["hflip"])
    # Beta(alpha, alpha) of the mixup op (the code draws np.random.beta(1, 1)).
    alpha: float = 1.0
    # true: cut direction and random choices drawn per image (the paper: "YOCO cuts one image");
    # false: one cut direction and one draw per half for the whole batch (the code's batch-level YOCO).
    per_image: bool = True


@dataclass
class AugMixConfig:
    name: str = "augmix"
    # Strength of each operation, 1..10; null: from dataset_defaults (3 on CIFAR, 1 elsewhere).
    severity: int | None = bounded(None, low=1, high=10)
    # Number of chains mixed per image.
    width: int = bounded(3, low=1)
    # Operations per chain; -1 draws 1 to 3 per chain.
    depth: int = -1
    # Dirichlet (chain weights) and Beta (mix with the original) parameter.
    alpha: float = bounded(1.0, above=0)
    # Add color, contrast, brightness and sharpness (off in the paper: they overlap ImageNet-C).
    all_ops: bool = False
    # {dataset name or "default": {setting: value}}: the reference's CIFAR and ImageNet recipes,
    # written in conf/aug/augmix.yaml; a setting given explicitly wins.
    dataset_defaults: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class IPMixConfig:
    name: str = "ipmix"
    # Chains mixed per image (each image-level or patch-level with probability 1/2).
    k: int = bounded(3, low=1)
    # Steps per chain: a number drawn uniformly from 0..t.
    t: int = bounded(3, low=0)
    # Mixing severity (Beta parameter of add/multiply); null: from dataset_defaults.
    beta: float | None = bounded(None, above=0)
    # Strength of the image-level operations, 1..10; null: from dataset_defaults.
    severity: int | None = bounded(None, low=1, high=10)
    # Dirichlet/Beta parameter of the chain mix (fixed at 1 in the reference).
    alpha: float = bounded(1.0, above=0)
    # Patch sides; null: from dataset_defaults.
    patch_sizes: list[int] | None = None
    # Probability that a patch is mixed with an augmented copy of the image instead of the mixing
    # picture; null: from dataset_defaults.
    augmented_partner_prob: float | None = bounded(None, low=0, high=1)
    # Mixing pictures are resized to the crop side times this, then random-cropped;
    # null: from dataset_defaults.
    pic_resize_ratio: float | None = None
    # {dataset name or "default": {setting: value}}: the reference's CIFAR and ImageNet recipes,
    # written in conf/aug/ipmix.yaml; a setting given explicitly wins.
    dataset_defaults: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class PixMixConfig:
    name: str = "pixmix"
    # Mixing rounds: a number drawn uniformly from 0..k per image.
    k: int = bounded(4, low=0)
    # Mixing severity (Beta parameter); null: from dataset_defaults.
    beta: float | None = bounded(None, above=0)
    # Strength of the augmentation operations, 1..10; null: from dataset_defaults.
    severity: int | None = bounded(None, low=1, high=10)
    # Add color, contrast, brightness and sharpness to the operations (off in the reference).
    all_ops: bool = False
    # Mixing pictures are resized to the crop side times this, then random-cropped;
    # null: from dataset_defaults.
    pic_resize_ratio: float | None = None
    # {dataset name or "default": {setting: value}}: the reference's CIFAR and ImageNet recipes,
    # written in conf/aug/pixmix.yaml; a setting given explicitly wins.
    dataset_defaults: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class TrivialAugmentConfig:
    name: str = "trivialaugment"
    num_magnitude_bins: int = bounded(31, low=2)
    interpolation: str = one_of("nearest", "bilinear")


@dataclass
class RandAugmentConfig:
    name: str = "randaugment"
    # Operations per image and their shared magnitude (index into num_magnitude_bins levels).
    num_ops: int = bounded(2, low=0)
    magnitude: int = 9
    num_magnitude_bins: int = bounded(31, low=2)
    interpolation: str = one_of("nearest", "bilinear")


@dataclass
class AutoAugmentConfig:
    name: str = "autoaugment"
    # auto: the CIFAR-10 policy on CIFAR datasets, the ImageNet policy elsewhere; or cifar10,
    # imagenet, svhn (the policies learned in the AutoAugment paper).
    policy: str = one_of("auto", "imagenet", "cifar10", "svhn")
    # torchvision's default.
    interpolation: str = one_of("nearest", "bilinear")


#: aug=<name> -> its schema (the registry checks each implementation registers under it).
AUG_SCHEMAS: dict[str, type] = {
    "augmix": AugMixConfig,
    "autoaugment": AutoAugmentConfig,
    "comixup": CoMixupConfig,
    "cutmix": CutMixConfig,
    "diffusemix": DiffuseMixConfig,
    "guided_ap": GuidedAPConfig,
    "guided_sr": GuidedSRConfig,
    "ipmix": IPMixConfig,
    "manifold_mixup": ManifoldMixupConfig,
    "mixup": MixupConfig,
    "none": NoneAugConfig,
    "pixmix": PixMixConfig,
    "puzzlemix": PuzzleMixConfig,
    "randaugment": RandAugmentConfig,
    "saliencymix": SaliencyMixConfig,
    "snapmix": SnapMixConfig,
    "trivialaugment": TrivialAugmentConfig,
    "yoco": YOCOConfig,
}


def register_configs() -> None:
    """Store the top-level schema (named first in conf/config.yaml) and each augmentation's
    schema (``/schema/aug@_here_: <name>`` first in its conf/aug/<name>.yaml), so every group merges into a typed node."""
    if not OmegaConf.has_resolver("preact_stem_stride"):
        # PreActResNet18's stem: stride 1 for 32 px inputs (CIFAR), 2 for larger (Tiny-ImageNet).
        OmegaConf.register_new_resolver("preact_stem_stride", lambda size: 1 if int(size) <= 32 else 2)
    if not OmegaConf.has_resolver("per_dataset"):
        # ${per_dataset:${dataset.name},{cifar100:0.1,tinyimagenet:0.15}}: a value per dataset, for
        # experiment files whose sweep crosses datasets with a per-dataset setting.
        OmegaConf.register_new_resolver("per_dataset", per_dataset)
    if not OmegaConf.has_resolver("swept_dirname"):
        # ${swept_dirname:}: a sweep job's folder name from the settings the sweep varies.
        OmegaConf.register_new_resolver("swept_dirname", swept_dirname)
    if not OmegaConf.has_resolver("sweep_job_dirname"):
        # ${sweep_job_dirname:}: the job number and the above, or the folder of an earlier job of
        # the sweep folder with the same settings.
        OmegaConf.register_new_resolver("sweep_job_dirname", sweep_job_dirname)
    if not OmegaConf.has_resolver("cpu_cap"):
        # ${cpu_cap:N}: N, or the number of cores this process may use when that is smaller.
        OmegaConf.register_new_resolver("cpu_cap", lambda n: min(int(n), usable_cores()))
    cs = ConfigStore.instance()
    cs.store(name="config_schema", node=Config)
    cs.store(name="evaluate_schema", node=EvaluateConfig)
    for name, schema in AUG_SCHEMAS.items():
        cs.store(group="schema/aug", name=name, node=schema)


#: Set by the entry points for a --multirun: the keys the command line sweeps (comma-separated),
#: read where each job's folder is named (in-process, or on a SLURM node, which inherits it).
SWEPT_KEYS_ENV = "DIFFUSEMIX_SWEPT_KEYS"


def swept_dirname() -> str:
    """A sweep job's folder name (after its number): ``key=value`` of each setting the sweep varies
    (the experiment's ``hydra.sweeper.params`` and the command line's own sweeps), sorted and
    joined by commas, leaving out the keys ``hydra.job.config.override_dirname.exclude_keys``
    names (folders, worker and device counts) unless the sweep varies nothing else: then those,
    each folder by its last part (``dataset.root=/data/b`` -> ``dataset.root=b``); Hydra's
    ``override_dirname`` (every override) when the sweep varies nothing."""
    import os

    from hydra.core.hydra_config import HydraConfig
    from hydra.core.override_parser.overrides_parser import OverridesParser

    hc = HydraConfig.get()
    swept = _swept_keys(hc)
    excluded = set(hc.job.config.override_dirname.exclude_keys)
    overrides = OverridesParser.create().parse_overrides(list(hc.overrides.task))
    parts = []
    for override in overrides:
        key = override.get_key_element()
        if key in swept and key not in excluded:
            # (a / in a value, logger.run_name=a/b, would nest the job's folder in another)
            parts.append(f"{key}={override.get_value_element_as_str().replace(os.sep, '_')}")
    if not parts:  # a sweep of folders alone (dataset.root=a,b): each named by its last part
        for override in overrides:
            key = override.get_key_element()
            if key in swept and key in excluded:
                value = str(override.value())
                last = os.path.basename(os.path.normpath(value)) or value  # (a path would nest folders)
                parts.append(f"{key}={last.replace(os.sep, '_')}")
    return ",".join(sorted(parts)) if parts else str(hc.job.override_dirname)


def _swept_keys(hc) -> set[str]:
    """The settings the running sweep varies: its sweeper's params and the command line's sweeps."""
    import os

    swept = set((hc.sweeper.get("params") or {}).keys())
    return swept | {k for k in os.environ.get(SWEPT_KEYS_ENV, "").split(",") if k}


def sweep_job_dirname() -> str:
    """A sweep job's folder: ``<job number>_<swept_dirname>``; but when the sweep folder already
    holds a job folder with the same settings under another number (made by an earlier launch
    with other values or another order of them, e.g. ``seed=0,1,2`` then ``seed=1,2``), that
    folder, so that a sweep run again goes on in its jobs' own folders (``ckpt_path=auto``
    resumes or skips them) instead of training them again in new ones. A key swept now that the
    earlier launch left at one value (``aug=none,diffusemix``, then ``seed=0,1`` added) finds the
    earlier job that ran with that value (``0_aug=none`` for ``aug=none,seed=0``). A swept setting
    left out of names (a folder: ``dataset.root=a,b``) is matched by the folders' records of it
    (``.hydra/overrides.yaml``); a new value whose number's folder is another value's job gets the
    number after the folder's highest. A data folder the launch gives all its jobs finds the job an
    earlier launch that swept it gave the same (``dataset.root=a,b``, then ``dataset.root=b``);
    where none did, the job's own folder (a resume there checks that it reads its run's images)."""
    from hydra.core.hydra_config import HydraConfig

    hc = HydraConfig.get()
    name = swept_dirname()
    own = f"{hc.job.num}_{name}"
    sweep = Path(str(hc.sweep.dir))
    task = list(hc.overrides.task)
    excluded = set(hc.job.config.override_dirname.exclude_keys)
    # A swept setting left out of names (a folder: dataset.root=a,b): the names cannot tell its
    # jobs apart, the folders' records of it can.
    unnamed = _swept_keys(hc) & excluded
    if not sweep.is_dir():
        return own
    # A data folder given to the whole launch (not swept): where an earlier launch swept it
    # (dataset.root=a,b, then dataset.root=b alone), the job given this one's is found by it.
    data_keys = _given_keys(task) & DATA_FOLDER_KEYS - unnamed
    if data_keys:
        for folder in [sweep / own, *sorted(sweep.iterdir())]:
            number, sep, rest = folder.name.partition("_")
            if (
                sep
                and number.isdigit()
                and rest == name
                and folder.is_dir()
                and _same_given(folder, task, unnamed | data_keys)
            ):
                return folder.name
    if (sweep / own).exists() and _same_given(sweep / own, task, unnamed):
        return own
    jobs = []
    # (a sweep of folders alone named its jobs by Hydra's override_dirname before they were
    # named by the folders: an earlier launch's folders are found by either name)
    names = {name, str(hc.job.override_dirname)} if unnamed else {name}
    for folder in sorted(sweep.iterdir()):
        number, sep, rest = folder.name.partition("_")
        if sep and number.isdigit() and folder.is_dir():
            if rest in names and _same_given(folder, task, unnamed):
                return folder.name
            jobs.append((folder, rest))
    if (sweep / own).exists():  # another job's (of another unnamed value): a number of its own
        numbers = [int(f.name.partition("_")[0]) for f, _ in jobs]
        return f"{max(numbers) + 1}_{name}"
    # A key swept now that the earlier launch left at one value (aug=none,diffusemix, then with
    # seed=0,1 added): the earlier job whose settings are this one's, that value included.
    parts = set(name.split(","))
    found = [
        folder
        for folder, rest in jobs
        if set(rest.split(",")) < parts
        and _same_fixed_settings(folder, task, parts - set(rest.split(",")), excluded)
        and _same_given(folder, task, unnamed)
        and _ran_with(folder, sorted(parts - set(rest.split(","))))
    ]
    if len(found) == 1:
        return found[0].name
    return own


#: The settings that choose the data a run reads.
DATA_FOLDER_KEYS = frozenset(("dataset.root", "paths.data_dir"))


def _given_keys(task: list[str]) -> set[str]:
    """The keys of a job's overrides (``+``/``~`` left off)."""
    return {o.partition("=")[0].lstrip("+~") for o in task if "=" in o}


def _same_given(folder: Path, task: list[str], keys: set[str]) -> bool:
    """Whether the sweep job in ``folder`` was given this job's values of ``keys`` (its
    ``.hydra/overrides.yaml``); True when there are none to compare."""
    if not keys:
        return True
    import yaml
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        theirs = yaml.safe_load((folder / ".hydra" / "overrides.yaml").read_text())
        parser = OverridesParser.create()

        def given(overrides: list[str]) -> dict[str, str]:
            return {
                o.get_key_element().lstrip("+~"): o.get_value_element_as_str()
                for o in parser.parse_overrides(overrides)
                if o.get_key_element().lstrip("+~") in keys
            }

        return isinstance(theirs, list) and given([str(o) for o in theirs]) == given(task)
    except Exception:  # no record, or a damaged one: not this job's folder
        return False


def _same_fixed_settings(folder: Path, task: list[str], new: set[str], excluded: set[str]) -> bool:
    """Whether the sweep job in ``folder`` was given this job's settings (its
    ``.hydra/overrides.yaml``: experiment, fixed settings and its swept values), but for the
    ``key=value`` ``new`` that this launch sweeps anew and for the ``excluded`` keys (folders,
    ``ckpt_path``: they change nothing trained)."""
    import yaml
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        theirs = yaml.safe_load((folder / ".hydra" / "overrides.yaml").read_text())
        if not isinstance(theirs, list) or not all(isinstance(o, str) for o in theirs):
            return False
        parser = OverridesParser.create()

        def given(overrides: list[str]) -> dict[str, str]:
            out = {}
            for o in parser.parse_overrides(overrides):
                key = o.get_key_element().lstrip("+~")
                if key not in excluded:
                    out[key] = o.get_value_element_as_str()
            return out

        mine, was = given(task), given(theirs)
    except Exception:  # no record, or one that does not parse: not a folder to go on in
        return False
    added = {part.partition("=")[0].lstrip("+~") for part in new}
    return {k: v for k, v in mine.items() if k not in added} == was


def _ran_with(folder: Path, parts: list[str]) -> bool:
    """Whether the sweep job in ``folder`` ran with each ``key=value`` of ``parts``: its group
    choices (``.hydra/hydra.yaml``) and its settings (``config_resolved.yaml``, else
    ``.hydra/config.yaml``) as those values parse."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    def load(path: Path):
        try:
            return OmegaConf.load(path) if path.is_file() else None
        except Exception:  # a damaged file: not this job's folder to reuse
            return None

    hydra = load(folder / ".hydra" / "hydra.yaml")
    choices = OmegaConf.select(hydra, "hydra.runtime.choices", default=None) if hydra is not None else None
    config = load(folder / "config_resolved.yaml") or load(folder / ".hydra" / "config.yaml")
    parser = OverridesParser.create()
    for part in parts:
        key, _, text = part.partition("=")
        if choices is not None and key in choices:
            if ("null" if choices[key] is None else str(choices[key])) != text:
                return False
            continue
        if config is None:
            return False
        try:
            was = OmegaConf.select(config, key, default=None, throw_on_resolution_failure=False)
            now = parser.parse_override(part).value()
        except Exception:
            return False
        both_numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (was, now))
        if not (math.isclose(float(was), float(now)) if both_numbers else was == now):
            return False
    return True


def per_dataset(name: str, table) -> Any:
    """The value ``table`` gives dataset ``name`` (its ``default`` entry when it has none)."""
    from .errors import ConfigError

    if name in table:
        return table[name]
    if "default" in table:
        return table["default"]
    raise ConfigError(
        f"a ${{per_dataset:...}} setting has values for {sorted(table)} but not for dataset '{name}': "
        "add an entry for it (or a 'default' entry) in the experiment file, or give the setting's value "
        "on the command line"
    )


def dataset_default(dataset_defaults, key: str, dataset: str | None, protocol: str | None = None) -> Any:
    """The value a method's setting ``key`` left null takes from its ``aug.dataset_defaults``: the
    protocol's row (a paper recipe whose reference code sets its own values), else the dataset's,
    else the ``default`` row; None where none has it."""
    rows = [(dataset_defaults or {}).get(name) or {} for name in (protocol, dataset, "default") if name]
    return next((row[key] for row in rows if key in row), None)


BUDGETS = ("epochs", "vanilla_steps")

SECTION_SCHEMAS = {
    "dataset": DatasetConfig,
    "model": ModelConfig,
    "loss": LossConfig,
    "optim": OptimConfig,
    "sched": SchedConfig,
    "trainer": TrainerConfig,
    "logger": LoggerConfig,
    "callbacks": CallbacksConfig,
    "paths": PathsConfig,
    "generator": GeneratorConfig,
    "fractals": FractalsConfig,
    "eval": EvalConfig,
}


@functools.cache
def _structured(schema: type):
    """A schema as an OmegaConf config, made once (making one evaluates every field's annotation;
    a merge copies it and leaves it as it is)."""
    return OmegaConf.structured(schema)


def choices_of(schema: type, name: str) -> tuple[str, ...]:
    """The values a method's setting takes (declared with :func:`one_of`)."""
    return next(f.metadata["choices"] for f in fields(schema) if f.name == name)


#: Trainer settings Lightning reads as a number of batches when given an int and as a fraction when
#: given a float (``2`` in a config typed float arrives as ``2.0``: two hundred percent).
# Lightning reads these as a count of batches when given an int and as a fraction when given a float:
# ``trainer.limit_val_batches=1`` is one batch, ``=1.0`` all of them. Typed Any in TrainerConfig so
# that the number keeps the type it was written with (a float type made ``1`` mean every batch);
# check_values refuses anything but null or a number >= 0.
BATCH_COUNT_SETTINGS = (
    "limit_train_batches",
    "limit_val_batches",
    "limit_test_batches",
    "limit_predict_batches",
    "overfit_batches",
    "val_check_interval",
)


def as_lightning_count(value):
    """A whole number above 1 given as a float (``2.0``) as the int Lightning reads as a count."""
    if isinstance(value, float) and value > 1 and value.is_integer():
        return int(value)
    return value


def no_such_setting(key: str, where: str, names) -> str:
    """The message for a setting ``key`` that ``where`` (a section, or a group's choice such as
    aug=mixup) does not have: the close names when there are some, else all of them."""
    from .errors import did_you_mean

    leaf = key.rsplit(".", 1)[-1]
    names = sorted(set(names))
    hint = did_you_mean(leaf, names)
    if not hint and names and len(names) <= 40:
        hint = f" (its settings: {', '.join(names)})"
    return f"{key}: {where} has no setting '{leaf}'{hint}"


def _check_resolvable(cfg) -> None:
    """A value computed by one of the project's resolvers (``${per_dataset:...}``) that cannot be
    is a ConfigError naming the setting (OmegaConf would wrap it in its own error, a traceback)."""
    from omegaconf.errors import InterpolationResolutionError

    from .errors import ConfigError, UserError

    for key in cfg:
        if key == "hydra":
            continue
        try:
            value = cfg[key]  # a scalar resolves when read
            if OmegaConf.is_config(value):
                OmegaConf.to_container(value, resolve=True)
        except InterpolationResolutionError as exc:
            cause = exc.__cause__ or exc.__context__  # OmegaConf wraps the resolver's error
            while cause is not None and not isinstance(cause, UserError):
                cause = cause.__cause__ or cause.__context__
            if cause is None:
                continue  # not the user's (a ${hydra:...} outside a run): left to where it is read
            where = getattr(exc, "full_key", None) or key
            outside = outside_the_table(cfg)
            raise ConfigError(
                f"{where}: {cause}"
                + (f" ({where}=<value>)" if where != key else "")
                + (f". {outside}" if outside else "")
            ) from None


def outside_the_table(cfg) -> str | None:
    """When the run's experiment is a paper table (``paper.columns``) without a column for the
    run's dataset: a sentence saying so (its table has no cell for them; their own table does);
    else None."""
    columns = OmegaConf.select(cfg, "paper.columns", default=None)
    dataset = OmegaConf.select(cfg, "dataset.name", default=None)
    if not columns or dataset is None or dataset in columns:
        return None
    return (
        f"experiment={cfg.get('experiment_name')} reports {', '.join(map(str, columns))}, not dataset={dataset}: "
        "its table has no cell for these runs (report.py runs=<their sweep folder> reports them in their own "
        "table, a row per setting they differ in)"
    )


def _missing_values(cfg) -> list[str]:
    """The settings a config leaves to the command line (``???``) that were not given; nothing is
    resolved (``${hydra:...}`` has no value outside a run)."""
    found: list[str] = []

    def walk(node, prefix: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if prefix or key != "hydra":
                    walk(value, f"{prefix}{key}.")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{prefix}{i}.")
        elif node == "???":
            found.append(prefix[:-1])

    walk(OmegaConf.to_container(cfg, resolve=False), "")
    return sorted(found)


def validate_config(cfg, here: bool = True) -> None:
    """Check every section against its schema, including keys added with ``+key=value``, which
    Hydra lets through typed nodes. Raises ConfigError naming the offending key."""
    from omegaconf.errors import OmegaConfBaseException

    from .errors import ConfigError

    _check_resolvable(cfg)
    missing = _missing_values(cfg)
    if missing:  # a config's ??? that the command line did not fill (model=timm's model.name)
        raise ConfigError(
            f"{missing[0]} needs a value (the config leaves it to the command line): give "
            f"{missing[0]}=<value>"
            + (", a timm model name such as resnet50 or convnext_tiny" if missing[0] == "model.name" else "")
        )
    sections = dict(SECTION_SCHEMAS)
    aug_schemas = AUG_SCHEMAS
    if cfg.aug.name not in aug_schemas:
        raise ConfigError(
            f"aug.name='{cfg.aug.name}' is not a registered augmentation: {sorted(aug_schemas)}"
        )
    sections["aug"] = aug_schemas[cfg.aug.name]
    for key, schema in sections.items():
        try:
            OmegaConf.merge(_structured(schema), OmegaConf.to_container(cfg[key], resolve=False))
        except OmegaConfBaseException as exc:
            first = str(exc).splitlines()[0]
            unknown = re.match(r"Key '([^']+)' not in '", first)
            if unknown:  # a key added with +key=value that the section does not have
                where = f"aug={cfg.aug.name}" if key == "aug" else f"'{key}'"
                # Its settings, not the group's own fields (the method's name, its per-dataset table).
                names = [
                    f.name
                    for f in fields(schema)
                    if key != "aug" or f.name not in ("name", "dataset_defaults")
                ]
                raise ConfigError(no_such_setting(f"{key}.{unknown.group(1)}", where, names)) from None
            raise ConfigError(f"invalid setting in '{key}': {first}") from None
    known = {f.name for f in fields(Config)}
    extra = sorted(set(cfg.keys()) - known - {"hydra"})
    if extra:
        raise ConfigError(f"unknown top-level key(s) {extra}; valid keys: {sorted(known)}")
    check_values(cfg, here)
    if cfg.budget not in BUDGETS:
        raise ConfigError(f"budget must be one of {BUDGETS}, got '{cfg.budget}'")
    if cfg.budget == "vanilla_steps" and not (cfg.trainer.max_epochs or 0) >= 1:
        raise ConfigError(
            f"budget=vanilla_steps counts trainer.max_epochs epochs of the original images; "
            f"got trainer.max_epochs={cfg.trainer.max_epochs}, set it to 1 or more"
        )


#: Lightning's precision settings (lightning_fabric's _PRECISION_INPUT; a test keeps them equal).
PRECISIONS = (
    "32-true", "32", "16-mixed", "16", "bf16-mixed", "bf16", "16-true", "bf16-true", "64-true", "64",
    "transformer-engine", "transformer-engine-float16",
)  # fmt: skip


def check_weights_there(cfg) -> None:
    """``model.weights`` names a file that is there (for a run that starts from it: a resume reads
    the checkpoint's weights, and the file may be gone since)."""
    from .errors import ConfigError

    weights = cfg.model.get("weights") if "model" in cfg else None
    if weights and Path(str(weights)).expanduser().is_dir():
        raise ConfigError(
            f"model.weights={weights} is a folder; set model.weights=<the weight file in it> (.safetensors, .pt, "
            ".pth or a checkpoint's .ckpt)"
        )
    if weights and not Path(str(weights)).expanduser().is_file():
        raise ConfigError(
            f"model.weights={weights}: no such file here; set model.weights=<an existing weight file> "
            "(.safetensors, or a state dict read with weights_only=True), or leave it unset"
        )


def _devices_ok(devices) -> bool:
    """A value Lightning takes as trainer.devices: a count (-1: all), a list of device ids, the same
    as text ("2", "0,1"), or auto."""
    if OmegaConf.is_list(devices) or isinstance(devices, list | tuple):
        return len(devices) > 0 and all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in devices
        )
    if devices is None:  # Lightning's default (auto)
        return True
    if isinstance(devices, bool):
        return False
    if isinstance(devices, int):
        return devices >= 1 or devices == -1
    text = str(devices).strip()
    if text == "auto" or text == "-1":
        return True
    if re.fullmatch(r"\d+", text):
        return int(text) >= 1
    return re.fullmatch(r"\d+(\s*,\s*\d+)*\s*,?", text) is not None


def check_values(cfg, here: bool = True) -> None:
    """Values the schemas' types let through but no run can use: each refused at start-up, before
    data or model are built, with the setting named. ``here``: the run is to run on this machine
    (not a sweep's job that a launcher sends to another), so a GPU it asks for must be here."""
    from .errors import ConfigError

    def need(ok: bool, message: str) -> None:
        if not ok:
            raise ConfigError(message)

    d, t = cfg.dataset, cfg.trainer
    if here and cfg.get("ckpt_path") is None:  # (a resume reads the checkpoint's weights)
        check_weights_there(cfg)
    for key in (
        "paths.data_dir",
        "paths.cache_dir",
        "paths.log_dir",
        "generator.edits_dir",
        "fractals.cache_dir",
    ):
        value = OmegaConf.select(cfg, key, default="unset")
        # An empty folder (paths.cache_dir= on the command line, or an empty environment variable)
        # would put the edit stores at /edits, or read and write the working folder unnamed.
        need(
            value is None or str(value).strip() != "",
            f"{key} is empty: give a folder ({key}=<folder>), or leave it out for its default"
            + (
                f" (an empty {variable} environment variable, which sets its default, empties it too)"
                if (
                    variable := {
                        "paths.data_dir": "DIFFUSEMIX_DATA",
                        "paths.cache_dir": "DIFFUSEMIX_CACHE",
                    }.get(key)
                )
                else ""
            ),
        )
    seed = cfg.get("seed", 0)
    need(
        isinstance(seed, int) and 0 <= seed <= 2**32 - 1,
        f"seed must be in [0, 4294967295] (it seeds NumPy, which takes no other), got {seed}",
    )
    need(
        d.val_fraction is None or 0.0 <= d.val_fraction < 1.0,
        f"dataset.val_fraction must be in [0, 1) (the share of train held out for validation; 0: none, the whole "
        f"training split trained on and the last epoch reported), got {d.val_fraction}",
    )
    need(
        t.max_epochs is None or t.max_epochs >= 1 or (t.max_epochs == -1 and (t.max_steps or -1) > 0),
        f"trainer.max_epochs must be at least 1 (or -1 with trainer.max_steps > 0), got {t.max_epochs}",
    )
    for name in BATCH_COUNT_SETTINGS:
        value = t.get(name)
        need(
            value is None
            or (isinstance(value, int | float) and not isinstance(value, bool) and value >= 0)
            and (isinstance(value, int) or value <= 1 or float(value).is_integer()),
            f"trainer.{name} must be a count of batches (a whole number: 1 is one batch) or a fraction "
            f"of them (0.0 to 1.0: 1.0 is all), or null for Lightning's default; got {value!r}",
        )
    check_fields(cfg.aug, AUG_SCHEMAS[cfg.aug.name], "aug", f" of aug={cfg.aug.name}", "the recipe's value")
    check_fields(cfg.generator, GeneratorConfig, "generator")
    check_fields(cfg.dataset, DatasetConfig, "dataset")
    check_fields(cfg.eval, EvalConfig, "eval")
    if cfg.get("adv") is not None:
        check_fields(cfg.adv, AdvConfig, "adv")
    check_fields(cfg.optim, OptimConfig, "optim")
    check_fields(cfg.sched, SchedConfig, "sched")
    check_fields(cfg.loss, LossConfig, "loss")
    check_fields(cfg.trainer, TrainerConfig, "trainer")
    t = cfg.trainer
    if t.get("min_epochs") is not None and t.max_epochs >= 0 and t.min_epochs > t.max_epochs:
        raise ConfigError(
            f"trainer.min_epochs={t.min_epochs} is more than trainer.max_epochs={t.max_epochs}: the run would stop at "
            "trainer.max_epochs; give trainer.min_epochs <= trainer.max_epochs (or leave it out)"
        )
    betas = list(cfg.optim.betas)
    if len(betas) != 2 or not all(isinstance(b, int | float) and 0 <= b < 1 for b in betas):
        raise ConfigError(
            f"optim.betas={betas}: give two numbers from 0 up to (not including) 1, the decay rates of Adam's two "
            "running averages (optim.betas=[0.9,0.999])"
        )
    warmup = cfg.sched.warmup_epochs
    if warmup > 0 and t.max_epochs > 0 and warmup >= t.max_epochs:
        raise ConfigError(
            f"sched.warmup_epochs={warmup} is as long as the run or longer (trainer.max_epochs={t.max_epochs}): the "
            f"learning rate would only rise, never reaching optim.lr nor following sched={cfg.sched.name}; give "
            "sched.warmup_epochs below trainer.max_epochs"
        )
    early = [m for m in cfg.sched.milestones if not isinstance(m, int) or m < 1]
    if early:
        raise ConfigError(
            f"sched.milestones={list(cfg.sched.milestones)}: each is an epoch after which the learning rate is "
            f"multiplied by sched.gamma, a whole number of 1 or more ({early[0]} is not)"
        )
    if cfg.get("protocol") is not None:  # (a paper protocol's SGD settings: its message says why)
        check_protocol_optimiser(cfg)
    o, defaults = cfg.optim, OptimConfig()
    if o.name != "sgd" and (o.nesterov or o.momentum != defaults.momentum):
        given = "optim.nesterov=true" if o.nesterov else f"optim.momentum={o.momentum}"
        raise ConfigError(
            f"{given} is SGD's, and optim={o.name} does not read it (its momentum is optim.betas); drop it, or "
            "use optim=sgd"
        )
    if o.name == "sgd" and list(o.betas) != defaults.betas:
        raise ConfigError(
            f"optim.betas={list(o.betas)} are Adam's, and optim=sgd does not read them (its momentum is "
            "optim.momentum); drop them, or use optim=adamw"
        )
    if cfg.optim.name == "sgd" and cfg.optim.nesterov and not (cfg.optim.momentum or 0) > 0:
        raise ConfigError(
            f"optim.nesterov=true needs momentum, and optim.momentum={cfg.optim.momentum}: give optim.momentum > 0 "
            "(0.9), or optim.nesterov=false"
        )
    check_normalisation(cfg.model)
    if cfg.aug.name in BATCH_MIXES and cfg.dataset.batch_size < 2:
        raise ConfigError(
            f"aug={cfg.aug.name} mixes the images of a batch with each other, and dataset.batch_size="
            f"{cfg.dataset.batch_size} holds one image, mixed with itself alone: the run would train as aug=none; "
            "give dataset.batch_size=2 or more"
        )
    check_budgets(cfg)
    need(
        d.resize >= d.image_size,
        f"dataset.resize={d.resize} is smaller than dataset.image_size={d.image_size}: evaluation resizes the "
        "shorter side to dataset.resize and centre-crops dataset.image_size, which would pad the pictures with "
        f"black borders; set dataset.resize={d.image_size} or more (the fine-grained recipes: 256 for 224)"
        + (
            ". With dataset.train_transform=pad_crop training crops the pictures at their own size and never "
            "resizes them: crops larger than the pictures also need dataset.train_transform=resize_crop"
            if d.train_transform == "pad_crop"
            else ""
        ),
    )
    prompts = cfg.generator.prompts
    need(
        prompts is None or len(prompts) > 0,
        "generator.prompts is empty; list at least one prompt (default: the paper's nine)",
    )
    if cfg.generator.num_prompts is not None and prompts is not None:
        need(
            cfg.generator.num_prompts <= len(prompts),
            f"generator.num_prompts={cfg.generator.num_prompts} but generator.prompts has {len(prompts)} prompts; "
            f"use 1..{len(prompts)} or null for all",
        )
    need(
        _devices_ok(t.get("devices", "auto")),
        f"trainer.devices={t.get('devices')!r}: give a number of devices (1, 2, ...; -1 for all), a list of "
        "GPU ids ([0,1]) or auto",
    )
    need(
        str(t.precision) in PRECISIONS,
        f"trainer.precision must be one of {', '.join(PRECISIONS)} (Lightning's); got {t.precision!r}",
    )
    matmul = cfg.get("float32_matmul_precision")
    need(
        matmul in (None, "highest", "high", "medium"),
        f"float32_matmul_precision={matmul}: one of highest, high, medium (torch.set_float32_matmul_precision) "
        "or null to leave PyTorch's as it is",
    )
    splits = list(cfg.generator.splits)
    need(
        bool(splits)
        and all(split in ("train", "val", "test") for split in splits)
        and len(set(splits)) == len(splits),
        "generator.splits names the splits whose images get edits: one or more of train, val, test, each once "
        f"(the default [train] is what DiffuseMix trains on); got {splits}",
    )
    store_size = cfg.generator.store_size
    need(
        store_size in (None, "auto") or (str(store_size).isdigit() and int(store_size) >= 1),
        "generator.store_size must be auto (the size training reads the edits at), a shorter side >= 1, "
        f"or null (the original's size); got {store_size}",
    )
    if cfg.aug.name == "manifold_mixup":
        need(
            cfg.model.source == "builtin" and cfg.model.name == "preactresnet18",
            "aug=manifold_mixup mixes hidden states between backbone stages, and only model=preactresnet18 "
            f"is split into stages here; got model.name={cfg.model.name}",
        )
    if here and str(t.accelerator) in ("gpu", "cuda"):
        import torch

        need(
            torch.cuda.is_available(),
            f"trainer.accelerator={t.accelerator} (trainer=gpu or trainer=ddp) but this machine has no CUDA GPU; "
            "use trainer=default (CPU) or run on a GPU machine",
        )


#: The methods that mix the images of a batch with each other (a test keeps this list equal to
#: the registry's batch-mixing classes).
BATCH_MIXES = frozenset(
    (
        "mixup",
        "cutmix",
        "saliencymix",
        "snapmix",
        "manifold_mixup",
        "puzzlemix",
        "comixup",
        "guided_sr",
        "guided_ap",
    )
)


def check_normalisation(model) -> None:
    """``model.mean`` and ``model.std``: three values each (RGB), a std above 0, and in the units of
    the images the model reads (0 to 1; 0-255 values normalise every image to nonsense)."""
    from .errors import ConfigError

    for key in ("mean", "std"):
        values = model.get(key)
        if values is None:
            continue
        values = list(values)
        if len(values) != 3 or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in values
        ):
            raise ConfigError(f"model.{key}={values}: give three numbers, one per channel (R, G, B)")
        if key == "std" and min(values) <= 0:
            raise ConfigError(f"model.std={values}: each channel's std must be above 0")
        if max(abs(v) for v in values) > 1:
            raise ConfigError(
                f"model.{key}={values}: the images reach the model as values from 0 to 1, and these are in 0-255 "
                f"units; give them divided by 255 ({[round(v / 255, 4) for v in values]})"
            )


def check_fields(node, schema: type, section: str, of: str = "", null_means: str = "") -> None:
    """Each setting of ``node`` declared with a fixed set of values (one_of) or a range (bounded)
    in ``schema`` holds one of them; else ConfigError naming it, what it may be and what it is."""
    from .errors import ConfigError

    for f in fields(schema):
        value = node.get(f.name)
        if value is None:
            continue
        null_means = f.metadata.get("null") or null_means
        null = f" (or null: {null_means})" if f.default is None and null_means else ""
        choices, bounds = f.metadata.get("choices"), f.metadata.get("bounds")
        if choices and str(value) not in choices:
            raise ConfigError(
                f"{section}.{f.name}{of} must be one of {', '.join(choices)}{null}; got '{value}'"
            )
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{section}.{f.name}{of} must be a finite number{null}; got {value}")
        if bounds and not in_bounds(value, *bounds):
            raise ConfigError(f"{section}.{f.name}{of} must be {bounds_text(*bounds)}{null}; got {value}")


def check_protocol_optimiser(cfg) -> None:
    """A paper protocol (every one but ``custom``) sets SGD's learning rate and weight decay: with
    another optimiser chosen on the command line those values would silently apply to it."""
    from .errors import ConfigError

    if cfg.protocol != "custom" and cfg.optim.name != "sgd":
        raise ConfigError(
            f"protocol={cfg.protocol} (dataset={cfg.dataset.name}'s paper recipe unless chosen) is an SGD "
            f"recipe: its optim.lr={cfg.optim.lr} and optim.weight_decay={cfg.optim.weight_decay} were set "
            f"for SGD, not optim={cfg.optim.name}. Add protocol=custom to train with optim={cfg.optim.name} "
            "and its own defaults (set optim.lr / optim.weight_decay as needed), or keep optim=sgd."
        )
