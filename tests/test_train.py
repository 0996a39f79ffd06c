"""The training job end to end on fixture data: every config option, metrics, resume, errors."""

from __future__ import annotations

import csv
import functools
import importlib.util
import json
import math
import os
import re
import shlex
import shutil
import subprocess
import warnings
from pathlib import Path

import pytest
import torch
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf, open_dict
from PIL import Image

from diffusemix_bench.data.base import CorruptImageError, DatasetNotFoundError
from diffusemix_bench.errors import ConfigError
from diffusemix_bench.training.run import train
from tests.conftest import CONF_DIR, FAST, ROOT, compose_config, finalize, point_at_fixture, run_entry
from tests.fixtures.datasets import write_fixture_dataset

GPU_ONLY = {("trainer", "gpu"), ("trainer", "ddp")}
GROUPS = [
    "dataset",
    "model",
    "aug",
    "loss",
    "optim",
    "sched",
    "trainer",
    "logger",
    "callbacks",
    "paths",
    "protocol",
    "debug",
    "generator",
    "fractals",
]


def group_options() -> list[tuple[str, str]]:
    return [(g, p.stem) for g in GROUPS for p in sorted((CONF_DIR / g).glob("*.yaml"))]


def option_overrides(group: str, option: str) -> list[str]:
    overrides = [f"{group}={option}"]
    if (group, option) == ("model", "timm"):
        overrides.append("model.name=resnet10t")
    if (group, option) == ("loss", "jsd"):
        pytest.skip("loss=jsd needs a three-view method; trained with those in their own tests")
    if group == "debug" and option != "fast":
        pytest.skip("the debug presets other than fast train in test_debug_presets_train, on enough data")
    if group == "optim" and option != "sgd":
        overrides.append("protocol=custom")  # the default dataset's paper protocol is SGD's
    if (group, option) == ("protocol", "finetune_resnet50"):
        # Hub weights cannot be downloaded here; the offline error is tested in test_models.
        overrides.append("model.pretrained=false")
    return overrides


@pytest.mark.parametrize(("group", "option"), group_options())
def test_every_option_composes(group, option):
    cfg = compose_config([f"{group}={option}"] + (["model.name=x"] if option == "timm" else []))
    if group == "protocol":
        assert cfg.protocol == option
    elif group == "debug":
        expected = {"fast": ("limit_train_batches", 2), "limit": ("limit_train_batches", 0.1),
                    "overfit": ("overfit_batches", 2), "profiler": ("profiler", "simple")}[option]  # fmt: skip
        assert cfg.trainer[expected[0]] == expected[1]
    else:
        assert OmegaConf.select(cfg, group) is not None


@pytest.mark.parametrize(
    ("dataset", "protocol", "model", "lr", "epochs"),
    [
        ("cifar100", "scratch_preact", "preactresnet18", 0.2, 300),
        ("tinyimagenet", "scratch_preact", "preactresnet18", 0.2, 300),
        ("imagenet", "imagenet_resnet50", "resnet50", 0.1, 100),
        ("cub", "fgvc_scratch", "resnet50", 0.01, 300),
        ("cars", "fgvc_scratch", "resnet50", 0.01, 300),
        ("aircraft", "fgvc_scratch", "resnet50", 0.01, 300),
        ("flowers102", "scarcity_resnet18", "resnet18", 0.01, 300),
        ("imagefolder", "custom", "preactresnet18", 0.1, 100),
    ],
)
def test_each_dataset_defaults_to_its_paper_protocol(dataset, protocol, model, lr, epochs):
    cfg = compose_config([f"dataset={dataset}"], return_hydra_config=True)
    assert cfg.protocol == protocol and cfg.hydra.runtime.choices.protocol == protocol
    assert (cfg.model.name, cfg.optim.lr, cfg.trainer.max_epochs) == (model, lr, epochs)
    # The dataset's batch size is its protocol's (the dataset merges after the protocol).
    paper_batch = {"scratch_preact": 100, "imagenet_resnet50": 256}.get(protocol, 16)
    assert cfg.dataset.batch_size == (32 if protocol == "custom" else paper_batch)
    # Nesterov where the recipe's code asks for it: torch.optim.SGD(..., nesterov=True) in
    # snu-mllab/PuzzleMix main.py (and its Co-Mixup, GuidedMixup copies) and in the GuidedMixup
    # FGVC scripts; not in the single-resolution ImageNet schedule (PuzzleMix imagenet_fast's SGD
    # has none) or the custom recipe.
    assert cfg.optim.nesterov == (protocol not in ("imagenet_resnet50", "custom"))


def test_command_line_wins_over_the_dataset_protocol():
    cfg = compose_config(["dataset=cub", "model=resnet18", "optim.lr=0.05"])
    assert (cfg.protocol, cfg.model.name, cfg.optim.lr, cfg.sched.name) == (
        "fgvc_scratch",
        "resnet18",
        0.05,
        "multistep",
    )
    cfg = compose_config(["dataset=cub", "protocol=finetune_resnet50"])
    assert (cfg.protocol, cfg.model.pretrained, cfg.optim.head_lr) == ("finetune_resnet50", True, 0.01)
    # SnapMix's SGD (Shaoli-Huang/SnapMix utils/trainutil.py get_sgd) is Nesterov's.
    assert (cfg.optim.momentum, cfg.optim.nesterov, cfg.optim.weight_decay) == (0.9, True, 1e-4)
    cfg = compose_config(["dataset=cub", "protocol=custom"])
    assert (cfg.protocol, cfg.model.name, cfg.optim.lr, cfg.sched.name) == (
        "custom",
        "preactresnet18",
        0.1,
        "cosine",
    )
    assert cfg.dataset.name == "cub"


def test_an_experiment_file_picks_the_protocol_over_the_dataset(tmp_path):
    """Experiment files (Table 8 fine-tunes on datasets whose default is another recipe) can name
    their protocol; the command line still wins over both."""
    (tmp_path / "experiment").mkdir()
    (tmp_path / "experiment" / "probe.yaml").write_text(
        "# @package _global_\ndefaults:\n  - override /protocol: finetune_resnet50\n"
    )
    search = f"hydra.searchpath=[file://{tmp_path}]"
    cfg = compose_config(["dataset=cub", "experiment=probe", search])
    assert (cfg.protocol, cfg.model.pretrained, cfg.optim.lr) == ("finetune_resnet50", True, 0.001)
    cfg = compose_config(["dataset=cub", "experiment=probe", "protocol=custom", search])
    assert cfg.protocol == "custom" and not cfg.model.pretrained


def test_another_optimiser_under_a_paper_protocol_is_refused(make_cfg):
    cfg = make_cfg(["dataset=cub", "optim=adamw"])
    with pytest.raises(
        ConfigError, match=r"protocol=fgvc_scratch .* SGD recipe: its optim.lr=0.01.*protocol=custom"
    ):
        train(cfg)
    cfg = make_cfg(["dataset=cub", "optim=adamw", "protocol=custom"])
    assert (cfg.optim.lr, cfg.optim.weight_decay) == (1.0e-3, 0.05)  # AdamW's own defaults


def test_slurm_where_there_is_none_is_one_message(tmp_path, monkeypatch, capsys):
    """hydra/launcher=slurm on a machine without sbatch (or without the launcher) is refused before
    the sweep, saying where to run it; listing the jobs (--cfg job) still works."""
    from diffusemix_bench.slurm import check_slurm

    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch
    with pytest.raises(
        ConfigError, match=r"hydra/launcher=slurm (submits the jobs with SLURM's sbatch|needs the submitit)"
    ):
        check_slurm(["--multirun", "experiment=table5", "hydra/launcher=slurm"])
    check_slurm(["--multirun", "hydra/launcher=slurm", "--cfg", "job"])
    check_slurm(["experiment=table5"])
    # Without --multirun Hydra ignores the launcher and trains here, on the login node.
    with pytest.raises(ConfigError, match=r"applies only with --multirun .*add --multirun"):
        check_slurm(["dataset=cub", "hydra/launcher=slurm"])
    check_slurm(["hydra/launcher=slurm", "--cfg", "hydra"])  # printing its settings runs nothing
    (tmp_path / "sbatch").write_text("#!/bin/sh\n")
    (tmp_path / "sbatch").chmod(0o755)
    if importlib.util.find_spec("hydra_plugins.hydra_submitit_launcher") is None:
        return
    # submitit runs each job with srun: without it, its own error came from deep in the sweep.
    with pytest.raises(ConfigError, match=r"and this machine does not have srun: run the command on"):
        check_slurm(["--multirun", "hydra/launcher=slurm"])
    (tmp_path / "srun").write_text("#!/bin/sh\n")
    (tmp_path / "srun").chmod(0o755)
    check_slurm(["--multirun", "hydra/launcher=slurm", "ckpt_path=auto"])  # both there: submitted
    assert "note:" not in capsys.readouterr().out
    check_slurm(["--multirun", "hydra/launcher=slurm"])
    assert (
        "note: without ckpt_path=auto a job SLURM requeues (preemption, time limit) after its first checkpoint is refused"
        in capsys.readouterr().out
    )


def test_slurm_launcher_composes():
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    cfg = compose_config(["hydra/launcher=slurm", "hydra.launcher.gpus_per_node=4"], return_hydra_config=True)
    # One task per GPU: Lightning on SLURM starts no processes itself (trainer=ddp uses every GPU).
    assert cfg.hydra.launcher.gpus_per_node == cfg.hydra.launcher.tasks_per_node == 4
    assert "SlurmLauncher" in cfg.hydra.launcher._target_


def test_slurm_tasks_against_devices_refused_before_submitting(tmp_path, monkeypatch):
    """On SLURM, Lightning runs one process per task: a job whose devices differ from its tasks per
    node (trainer=gpu's one device with gpus_per_node=2: two tasks, each training the whole run into
    the same folder; DDP with tasks_per_node=1 on 2 GPUs: refused by Lightning on the node) or whose
    num_nodes differs from its nodes goes wrong after waiting in the queue. Refused before submitting."""
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    from diffusemix_bench.slurm import check_slurm_tasks

    for name in ("sbatch", "srun"):  # a login node: the commands are there (and do nothing here)
        (tmp_path / name).write_text("#!/bin/sh\nexit 3\n")
        (tmp_path / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    out = run_entry(
        "train.py",
        ["--multirun", "hydra/launcher=slurm", "trainer=gpu", "hydra.launcher.gpus_per_node=2", "seed=0,1"],
        tmp_path,
    )
    assert out.returncode == 1 and "Traceback" not in out.stderr + out.stdout
    assert (
        "hydra.launcher.tasks_per_node=2 (hydra.launcher.gpus_per_node=2) and trainer.devices=1 (1 device): on "
        "SLURM, Lightning runs one process per task, so every job would go wrong on its node: a trainer of one "
        "device in each task trains the whole run, the tasks at once into the same run folder; give trainer=ddp"
    ) in out.stderr
    assert not (tmp_path / "outputs").exists()  # nothing submitted, no sweep folder (paths.log_dir)
    # The sweep's listing (--cfg job) checks it as submitting does.
    listed = run_entry(
        "train.py",
        ["--multirun", "hydra/launcher=slurm", "trainer=gpu", "hydra.launcher.gpus_per_node=2", "seed=0,1",
         "--cfg", "job"],
        tmp_path,
    )  # fmt: skip
    assert listed.returncode == 1 and "and trainer.devices=1 (1 device): on SLURM" in listed.stderr
    conf = str(CONF_DIR)
    # tasks_per_node given apart from the GPUs: the advice names it.
    with pytest.raises(ConfigError) as refused:
        check_slurm_tasks(
            ["--multirun", "hydra/launcher=slurm", "trainer=ddp", "hydra.launcher.gpus_per_node=2",
             "hydra.launcher.tasks_per_node=1"],
            conf,
        )  # fmt: skip
    assert (
        "(2 devices): on SLURM, Lightning runs one process per task, so every job would fail on its node: "
        in str(refused.value)
    )
    assert str(refused.value).endswith(
        "give hydra.launcher.tasks_per_node=2 (one task per device), or leave it out (one task per GPU of "
        "hydra.launcher.gpus_per_node)"
    )
    with pytest.raises(ConfigError, match=r"hydra.launcher.nodes=2 and trainer.num_nodes=1: on SLURM"):
        check_slurm_tasks(
            ["--multirun", "hydra/launcher=slurm", "trainer=ddp", "hydra.launcher.nodes=2"], conf
        )
    # trainer=ddp given with fewer devices than the node's GPUs: the advice is to leave the devices out.
    with pytest.raises(ConfigError, match=r"leave trainer\.devices out \(trainer=ddp: every GPU of the node"):
        check_slurm_tasks(
            ["--multirun", "hydra/launcher=slurm", "trainer=ddp", "hydra.launcher.gpus_per_node=4",
             "trainer.devices=2"],
            conf,
        )  # fmt: skip
    # trainer=gpu's own value is one device: leaving trainer.devices out of it is no fix.
    with pytest.raises(ConfigError) as refused:
        check_slurm_tasks(
            ["--multirun", "hydra/launcher=slurm", "trainer=gpu", "hydra.launcher.gpus_per_node=4",
             "trainer.devices=2"],
            conf,
        )  # fmt: skip
    assert "give trainer=ddp and leave trainer.devices out (every GPU of the node, one task each)" in str(
        refused.value
    )
    # A sweep's value other than its first is checked too where it names the trainer.
    with pytest.raises(ConfigError, match=r"trainer.devices=1 \(1 device\)"):
        check_slurm_tasks(["hydra/launcher=slurm", "trainer=ddp,gpu", "hydra.launcher.gpus_per_node=2"], conf)
    # The counts themselves: GPUs a count, a task at least (tasks follow the GPUs), GPUs for a GPU trainer.
    for given, said in (
        (["hydra.launcher.gpus_per_node=-1"], "hydra.launcher.gpus_per_node=-1: give the number of GPUs"),
        (
            ["hydra.launcher.gpus_per_node=0"],
            "hydra.launcher.tasks_per_node=0 (it follows hydra.launcher."
            "gpus_per_node unless given): SLURM runs at least one task per node",
        ),
        (
            ["trainer=ddp", "hydra.launcher.gpus_per_node=0", "hydra.launcher.tasks_per_node=1"],
            "trainer.accelerator=gpu trains on GPUs and hydra.launcher.gpus_per_node=0 asks SLURM for none",
        ),
    ):
        with pytest.raises(ConfigError, match=re.escape(said)):
            check_slurm_tasks(["--multirun", "hydra/launcher=slurm", *given], conf)
    for fine in (
        ["hydra.launcher.gpus_per_node=0", "hydra.launcher.tasks_per_node=1"],  # a CPU job
        ["trainer=gpu"],  # one GPU, one task
        ["trainer=ddp", "hydra.launcher.gpus_per_node=4"],  # every GPU of the node, a task each
        ["hydra.launcher.gpus_per_node=2"],  # trainer=default: Lightning's devices=auto, both GPUs
        ["trainer=ddp", "hydra.launcher.nodes=2", "trainer.num_nodes=2"],
        ["trainer.devices=[0,1]", "hydra.launcher.gpus_per_node=2"],
    ):
        check_slurm_tasks(["--multirun", "hydra/launcher=slurm", *fine], conf)
    for name in ("generate.py", "figure4.py"):  # the same trainer settings run generation
        out = run_entry(
            name,
            ["--multirun", "hydra/launcher=slurm", "trainer=gpu", "hydra.launcher.gpus_per_node=2"],
            tmp_path,
        )
        assert out.returncode == 1 and "and trainer.devices=1 (1 device)" in out.stderr, out.stderr[-2000:]


@functools.cache
def _base_run() -> str:
    """The tests' shrunk default config (FAST alone), as YAML: a group's default option gives it."""
    return OmegaConf.to_yaml(compose_config(FAST))


@pytest.mark.parametrize(
    ("group", "option"),
    [pytest.param(g, o, marks=pytest.mark.gpu) if (g, o) in GPU_ONLY else (g, o) for g, o in group_options()],
)
def test_every_option_trains_one_step(group, option, make_cfg, tmp_path, monkeypatch):
    if (group, option) in GPU_ONLY and not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    if group in ("generator", "fractals"):
        pytest.skip(
            "read only by the methods that use them (DiffuseMix, PixMix, IPMix), which train with them in "
            "their own tests; with aug=none it would be the base run again"
        )
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    overrides = option_overrides(group, option)
    composed = compose_config(FAST + overrides)
    if group != "dataset" and OmegaConf.to_yaml(composed) == _base_run():
        pytest.skip(f"{group}={option} is the default: the same run as the default dataset's option")
    cfg = make_cfg(overrides, composed=composed)
    if cfg.aug.name == "diffusemix":
        from tests.test_diffusemix import fill_store

        fill_store(cfg)  # synthetic edits: generation itself is tested in test_generation.py
    if group != "trainer":
        with open_dict(cfg):
            cfg.trainer.accelerator = "cpu"
    metrics = train(cfg)
    assert metrics["optimizer_steps"] >= 1
    # What the method ran with: every per-dataset null and auto choice resolved.
    assert metrics["aug_settings"].keys() >= set(cfg.aug) - {"name", "dataset_defaults"}
    unresolved = {k: v for k, v in metrics["aug_settings"].items() if v is None or v == "auto"}
    assert not unresolved, f"aug={cfg.aug.name} reports unresolved settings {unresolved}"
    assert 0.0 <= metrics["val_top1"] <= 100.0
    assert 0.0 <= metrics["test_top1"] <= 100.0
    assert json.loads((tmp_path / "run" / "metrics.json").read_text()) == metrics


def test_metrics_file_and_learning(make_cfg, tmp_path):
    """A few epochs on separable fixture data: the model learns, metrics.json says what ran."""
    cfg = make_cfg(
        [
            "dataset=cifar100",
            "model=resnet18",
            "trainer.max_epochs=6",
            "trainer.limit_train_batches=null",
            "trainer.limit_val_batches=null",
            "trainer.limit_test_batches=null",
            "dataset.batch_size=9",
            "protocol=custom",
            "optim=adamw",
            "sched=none",
            "seed=3",
            "tags=[smoke,v1]",
        ],
        per_class=10,
    )
    metrics = train(cfg)
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved == metrics
    assert metrics["seed"] == 3 and metrics["epochs"] == 6
    assert metrics["tags"] == ["smoke", "v1"]  # the run's labels
    assert metrics["train_images"] == 27  # 3 classes x 10 images, one of each held out for val
    assert metrics["optimizer_steps"] == 6 * 3
    # Images exist for 3 of CIFAR's 100 classes: chance is 33%.
    assert metrics["test_top1"] > 60.0, metrics
    # summary.csv: one row per epoch (timm's form), the learning rate and validation numbers in each.
    rows = list(csv.DictReader((tmp_path / "run" / "summary.csv").open()))
    assert [int(r["epoch"]) for r in rows] == list(range(6))
    assert all(float(r["lr"]) > 0 and r["val_top1"] and float(r["images_per_s"]) > 0 for r in rows)
    assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])
    assert metrics["val_rule"]
    assert Path(metrics["best_checkpoint"]).exists()
    assert (tmp_path / "run" / "config_resolved.yaml").exists()
    # The logger's file: one val/ row per epoch; the selected checkpoint's validation after
    # training apart, as val_selected/ (it read like a seventh epoch), the value metrics.json holds.
    logged = list(csv.DictReader((tmp_path / "run" / "logs" / "metrics.csv").open()))
    assert [int(r["epoch"]) for r in logged if r.get("val/top1")] == list(range(6))
    (selected,) = [r for r in logged if r.get("val_selected/top1")]
    assert round(100 * float(selected["val_selected/top1"]), 4) == metrics["val_top1"]


def test_the_run_tags_go_to_wandb_with_the_loggers_own_and_its_name_is_its_folders(tmp_path):
    """``tags=[...]`` labels the run: wandb gets them after ``logger.tags``, each once."""
    pytest.importorskip("wandb")
    from diffusemix_bench.training.run import build_logger
    from tests.conftest import compose_config, finalize

    cfg = compose_config(["logger=wandb", "logger.mode=offline", "logger.tags=[a,b]", "tags=[b,c]"])
    cfg = finalize(cfg, tmp_path)
    assert build_logger(cfg, tmp_path)._wandb_init["tags"] == ["a", "b", "c"]
    # Named by its folder unless logger.run_name names it (a sweep job's folder names its settings).
    job = tmp_path / "sweep" / "3_aug=mixup,seed=0"
    job.mkdir(parents=True)
    assert build_logger(cfg, job)._wandb_init["name"] == "sweep/3_aug=mixup,seed=0"
    cfg.logger.run_name = "mine"
    assert build_logger(cfg, job)._wandb_init["name"] == "mine"
    # A setting wandb refuses, offline too, is that setting's message (not advice to log in).
    cfg.logger.project = "a/b"
    with pytest.raises(ConfigError) as refused:
        _ = build_logger(cfg, job).experiment
    assert str(refused.value).startswith(
        "logger=wandb: wandb refused to start this run: Invalid project name 'a/b'"
    )
    assert "logger.project" in str(refused.value) and "wandb login" not in str(refused.value)


def test_epochs_without_a_validation_leave_its_columns_empty(make_cfg, tmp_path):
    """trainer.check_val_every_n_epoch=2: summary.csv's epochs without a validation repeated the
    last one's numbers; their cells are empty now."""
    train(make_cfg(["trainer.max_epochs=3", "trainer.check_val_every_n_epoch=2"]))
    rows = list(csv.DictReader((tmp_path / "run" / "summary.csv").open()))
    assert [bool(r["val_top1"]) for r in rows] == [False, True, False], rows
    assert all(float(r["images_per_s"]) > 0 and float(r["epoch_s"]) > 0 for r in rows)


def test_resume_from_last_checkpoint(make_cfg, tmp_path):
    first = train(make_cfg(["trainer.max_epochs=1"]))
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    saved = torch.load(last, map_location="cpu", weights_only=True)
    saved_fit, saved_wall = saved["fit_seconds"], saved["wall_seconds"]
    cfg = make_cfg(["trainer.max_epochs=2", "ckpt_path=last"])
    # What evaluate.py wrote of the run stopped there (its robustness.json) is set aside when the
    # resumed run finishes: it measured weights the run has gone on from.
    (tmp_path / "run" / "robustness.json").write_text('{"fgsm_error": 50.0}')
    second = train(cfg)
    assert second["epochs"] == 2
    assert not (tmp_path / "run" / "robustness.json").exists()
    assert (tmp_path / "run" / "robustness_before_resume.json").read_text() == '{"fgsm_error": 50.0}'
    assert second["optimizer_steps"] == 2 * first["optimizer_steps"]
    # The wall time counts both parts: the first part's fit up to its last checkpoint travels in
    # the checkpoint (what the first part did after it, e.g. tearing down, is not counted again).
    assert second["resumed"] and not first["resumed"]
    assert 0 < saved_fit <= first["fit_seconds"]
    assert second["fit_seconds"] > round(saved_fit, 2)
    assert second["wall_time_s"] > second["wall_time_this_part_s"]
    # The first part's wall time up to its last checkpoint (start-up included, not only its fit).
    assert saved_fit < saved_wall <= first["wall_time_s"]
    assert second["wall_time_s"] == pytest.approx(saved_wall + second["wall_time_this_part_s"], abs=0.05)
    # Going on for fewer epochs than the checkpoint has trained is refused, the folder untouched.
    before = {p: p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file()}
    with pytest.raises(ConfigError, match=r"has trained 2 epochs, more than trainer\.max_epochs=1"):
        train(make_cfg(["trainer.max_epochs=1", "ckpt_path=last"]))
    assert {p: p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file()} == before


def test_training_further_follows_the_longer_schedule_from_its_first_step(make_cfg, tmp_path, monkeypatch):
    """Resumed with a larger trainer.max_epochs, a cosine run's first step already uses the longer
    schedule's rate (it used to train one step at the old schedule's last rate, 0). Until the longer
    part finishes, the folder does not read as a finished run."""
    from diffusemix_bench.reporting.runs import read_run
    from diffusemix_bench.training import run as run_module
    from diffusemix_bench.training.optim import lr_factor_fn

    base = ["protocol=custom", "sched=cosine", "optim.lr=0.1", "sched.warmup_epochs=0"]
    train(make_cfg([*base, "trainer.max_epochs=2"]))
    cfg = make_cfg([*base, "trainer.max_epochs=4", "ckpt_path=last"])
    # While the longer part trains (or after a kill that leaves no word), the folder is no finished
    # run: its metrics.json is the shorter part's, its settings the longer run's.
    real, seen = run_module._train, []
    monkeypatch.setattr(
        run_module, "_train", lambda *a, **k: (seen.append(read_run(tmp_path / "run")), real(*a, **k))[1]
    )
    train(cfg)
    assert seen[0].status == "failed" and "trained further than its metrics.json" in seen[0].reason
    assert read_run(tmp_path / "run").status == "finished"
    with open(tmp_path / "run" / "logs" / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r.get("lr-SGD/all")]
    lrs = {int(r["step"]): float(r["lr-SGD/all"]) for r in rows}
    assert sorted(lrs) == list(range(8))  # debug=fast: two steps an epoch
    # summary.csv's lr: the rate each epoch's last step trained with (not the next one's: the last
    # epoch's would be 0, the end of the cosine).
    summary = list(csv.DictReader((tmp_path / "run" / "summary.csv").open()))
    assert [float(r["lr"]) for r in summary] == pytest.approx([lrs[1], lrs[3], lrs[5], lrs[7]])
    assert float(summary[-1]["lr"]) > 0
    longer = lr_factor_fn(cfg.sched, 2, 8)
    for step in range(4, 8):
        assert lrs[step] == pytest.approx(0.1 * longer(step)), step
    assert lrs[4] > 0.01


def test_training_further_stopped_before_its_first_checkpoint_trains_on_when_resumed(
    make_cfg, tmp_path, monkeypatch
):
    """A finished run trained further and stopped before the longer part's first checkpoint: its
    settings are the longer run's and last.ckpt is the finished part's, which read as a finished run
    ("Nothing to do") to the resume, and to a DDP run's other ranks, started after the settings are
    rewritten. failure.json says a part training further has begun: the resume trains on."""
    from diffusemix_bench.training import run as run_module
    from diffusemix_bench.training.resume import trained_further

    first = train(make_cfg(["trainer.max_epochs=1"]))
    assert first["device"] == "cpu" and first["precision"] == "32-true" and "parts" not in first
    real = run_module.build_model

    def stopped(*args, **kwargs):
        raise RuntimeError("stopped before the first checkpoint")

    monkeypatch.setattr(run_module, "build_model", stopped)
    with pytest.raises(RuntimeError, match="stopped before"):
        train(make_cfg(["trainer.max_epochs=2", "ckpt_path=last"]))
    assert trained_further(tmp_path / "run")
    monkeypatch.setattr(run_module, "build_model", real)
    longer = train(make_cfg(["trainer.max_epochs=2", "ckpt_path=last"]))
    assert longer["epochs"] == 2 and not (tmp_path / "run" / "failure.json").exists()
    # Each part's steps and what it trained with (here both on this machine, by this code).
    steps = first["optimizer_steps"]
    assert [(p["from_step"], p["to_step"]) for p in longer["parts"]] == [(0, steps), (steps, 2 * steps)]
    assert all(
        p["device"] == "cpu" and p["world_size"] == 1 and p["git"] == first["git"] for p in longer["parts"]
    )
    assert longer["parts"][0]["versions"] == first["versions"]


def test_a_finished_run_without_a_test_split_is_offered_an_attack_on_its_validation_split(tmp_path):
    """evaluate.py attacks the test split: a finished run whose data had none (an image folder
    without test/) is offered the command that attacks what it has."""
    from diffusemix_bench.training.resume import nothing_to_do

    said = nothing_to_do(tmp_path, {"epochs": 2, "optimizer_steps": 6, "test_images": 0, "val_images": 3})
    assert said.endswith(f"evaluate.py ckpt={tmp_path} eval.fgsm=true eval.split=val")
    said = nothing_to_do(tmp_path, {"epochs": 2, "optimizer_steps": 6, "test_images": 9, "val_images": 3})
    assert said.endswith(f"evaluate.py ckpt={tmp_path} eval.fgsm=true")


def test_resuming_a_finished_run_keeps_its_metrics(make_cfg, tmp_path, caplog):
    """A resume of a finished run (a sweep run again with ckpt_path=auto) has nothing to do and
    leaves the folder as it was; asked for a number it lacks, it adds it beside what evaluate.py
    added on the same weights; trained further, it leaves out the robustness of the earlier weights."""
    train(make_cfg(["trainer.max_epochs=1"]))
    path = tmp_path / "run" / "metrics.json"
    first = json.loads(path.read_text())
    # What evaluate.py ckpt=<run> eval.pgd=true writes on the selected checkpoint (values of a
    # measurement: only how they are kept is tested here).
    pgd = {
        "pgd_error": 61.5,
        "pgd_settings": {"eps": 8.0, "step_size": 2.0, "steps": 10, "random_start": True},
    }
    robust = {
        "robust_split": "test",
        "robust_checkpoint": first["best_checkpoint"],
        "robust_images": first["test_images"],  # the whole split, as an attack without eval.limit_batches
        **pgd,
    }
    assert first["world_size"] == 1 and first["model_weights"] is None  # one process, from scratch
    # As a run written before world_size and model_weights were recorded.
    first = {k: v for k, v in first.items() if k not in ("world_size", "model_weights")}
    path.write_text(json.dumps({**first, **robust}, indent=2) + "\n")
    before = {p: p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file()}
    caplog.set_level("INFO", logger="diffusemix_bench")
    for ckpt_path in ("last", "auto"):
        again = train(make_cfg(["trainer.max_epochs=1", f"ckpt_path={ckpt_path}"]))
        assert again == {**first, **robust}
        assert {p: p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file()} == before
    assert (
        "has finished: its metrics.json holds its 1 epoch (" in caplog.text and "Nothing to do" in caplog.text
    )
    # The attack it has not had is the one offered (it has PGD's error: FGSM).
    assert "evaluate.py" in caplog.text and caplog.text.count("eval.fgsm=true") >= 1
    assert "eval.pgd=true" not in caplog.text

    # FGSM asked on the finished run: measured on the same checkpoint and split, kept beside PGD.
    fgsm = train(make_cfg(["trainer.max_epochs=1", "ckpt_path=last", "eval.fgsm=true"]))
    assert fgsm["optimizer_steps"] == first["optimizer_steps"] and fgsm["test_top1"] == first["test_top1"]
    assert fgsm["pgd_error"] == 61.5 and fgsm["pgd_settings"] == pgd["pgd_settings"]
    assert 0 <= fgsm["fgsm_error"] <= 100 and fgsm["robust_checkpoint"] == first["best_checkpoint"]
    assert fgsm["wall_time_s"] == round(first["wall_time_s"] + fgsm["wall_time_this_part_s"], 2)
    assert fgsm["fit_seconds"] == first["fit_seconds"]  # nothing was trained in this part
    assert fgsm["resumed"] is first["resumed"] is False  # (the training was not resumed: it was evaluated)
    caplog.clear()
    train(make_cfg(["trainer.max_epochs=1", "ckpt_path=last"]))  # both attacks measured: another budget
    assert (
        "it has FGSM and PGD errors; to attack it otherwise" in caplog.text
        and "eval.eps=<budget" in caplog.text
    )
    assert "world_size" not in fgsm and "model_weights" not in fgsm  # still unknown: this part only evaluated
    assert json.loads(path.read_text()) == fgsm

    # Trained further: other weights, so the robustness of the first ones is left out.
    caplog.clear()
    # Its checkpoint too predates the records: the first part's size is unknown, the second's is 1.
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    state = torch.load(last, weights_only=True)
    del state["world_sizes"], state["started_from"], state["parts"]
    torch.save(state, last)
    longer = train(make_cfg(["trainer.max_epochs=2", "ckpt_path=last"]))
    assert longer["world_size"] == [None, 1] and "model_weights" not in longer
    assert longer["parts"][0] is None and longer["parts"][1]["from_step"] == first["optimizer_steps"]
    assert longer["epochs"] == 2 and not any(k.startswith(("pgd", "fgsm", "robust")) for k in longer)
    text = caplog.text
    assert f"FGSM error {fgsm['fgsm_error']:.2f}% ({{'eps_255': 8.0}}, 12 images of test) left out" in text
    assert text.count("PGD error 61.50%") == 1 and text.count("left out") == 2  # each named once


def test_a_resume_that_only_evaluates_names_what_trained_and_what_evaluated(make_cfg, tmp_path):
    """Training finished but metrics.json was never written (stopped during the final evaluation):
    the resume only evaluates. The device, precision, processes, commit and versions it records are
    the training's (its checkpoint's record), and the evaluating process is named apart."""
    first = train(make_cfg(["trainer.max_epochs=1"]))
    (tmp_path / "run" / "metrics.json").unlink()
    # As if the training had run on two GPUs in bf16 by another commit.
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    state = torch.load(last, weights_only=True)
    elsewhere = {"device": "NVIDIA H200", "precision": "bf16-mixed", "world_size": 2}
    elsewhere["git"] = {"commit": "d" * 40, "dirty": False}
    state["parts"][-1].update(elsewhere)
    state["world_sizes"] = [2]
    torch.save(state, last)
    again = train(make_cfg(["trainer.max_epochs=1", "ckpt_path=last"]))
    assert again["optimizer_steps"] == first["optimizer_steps"] and "parts" not in again
    assert (again["device"], again["precision"], again["world_size"]) == ("NVIDIA H200", "bf16-mixed", 2)
    assert again["git"] == elsewhere["git"] and again["versions"] == first["versions"]
    assert again["evaluated_by"] == {
        "device": "cpu",
        "precision": "32-true",
        "git": first["git"],
        "versions": first["versions"],
    }
    assert "evaluated_by" not in first

    # Evaluated again on the finished run (a new attack): what trained is still the training's.
    fgsm = train(make_cfg(["trainer.max_epochs=1", "ckpt_path=last", "eval.fgsm=true"]))
    assert fgsm["git"] == elsewhere["git"] and fgsm["device"] == "NVIDIA H200"
    assert fgsm["evaluated_by"]["git"] == first["git"] and "fgsm_error" in fgsm


def test_a_relative_data_folder_is_compared_where_each_command_was_launched(make_cfg, tmp_path, monkeypatch):
    """A finished run trained on ``paths.data_dir=data`` and attacked again from another folder whose
    ./data is another copy: the copy is not the run's data (its settings' ``data`` is read where the
    run was launched, .hydra/run/hydra.yaml), so the new number names it and the earlier is set aside."""
    import shutil

    import yaml

    monkeypatch.chdir(tmp_path)
    cfg = make_cfg(["trainer.max_epochs=1", "eval.fgsm=true"])
    cfg.paths.data_dir = "data"
    first = train(cfg)
    record = tmp_path / "run" / ".hydra" / "run"
    record.mkdir(parents=True)
    (record / "hydra.yaml").write_text(yaml.safe_dump({"hydra": {"runtime": {"cwd": str(tmp_path)}}}))
    other = tmp_path / "elsewhere"
    shutil.copytree(tmp_path / "data", other / "data")
    monkeypatch.chdir(other)
    cfg = make_cfg(["trainer.max_epochs=1", "ckpt_path=last", "eval.fgsm=true", "eval.eps=2.0"])
    cfg.paths.data_dir = "data"
    moved = train(cfg)
    assert moved["robust_data_dir"] == str((other / "data").resolve()), moved
    assert moved["optimizer_steps"] == first["optimizer_steps"] and moved["fgsm_settings"]["eps_255"] == 2.0
    kept = [
        json.loads(line) for line in (tmp_path / "run" / "robustness_earlier.jsonl").read_text().splitlines()
    ]
    assert [r["fgsm_error"] for r in kept] == [first["fgsm_error"]]


def test_a_finished_run_attacked_again_from_another_copy_of_its_data_keeps_the_numbers_apart(
    make_cfg, tmp_path
):
    """A finished run resumed to add an attack: on the folder its settings name, the new number is
    kept beside the earlier one; read from another copy (paths.data_dir changed), the new number
    names that copy (robust_data_dir) and the earlier one, measured on the first copy, is left out."""
    import shutil

    first = train(make_cfg(["trainer.max_epochs=1", "eval.fgsm=true"]))
    pgd = ["eval.pgd=true", "eval.pgd_steps=1"]
    both = train(make_cfg(["trainer.max_epochs=1", "ckpt_path=last", "eval.fgsm=true", *pgd]))
    assert both["fgsm_error"] == first["fgsm_error"] and "pgd_error" in both and "robust_data_dir" not in both
    copy = tmp_path / "copy"
    shutil.copytree(tmp_path / "data", copy)
    cfg = make_cfg(["trainer.max_epochs=1", "ckpt_path=last", "eval.pgd=true", "eval.pgd_steps=2"])
    cfg.paths.data_dir = str(copy)
    moved = train(cfg)
    assert moved["robust_data_dir"] == str(copy.resolve()) and moved["pgd_settings"]["steps"] == 2
    assert "fgsm_error" not in moved and moved["optimizer_steps"] == first["optimizer_steps"]
    assert moved["evaluated_by"]["data_dir"] == str(copy.resolve())  # (its val and test numbers too)
    # The left-out numbers are kept beside metrics.json, not lost.
    kept = tmp_path / "run" / "robustness_earlier.jsonl"
    (record,) = [json.loads(line) for line in kept.read_text().splitlines()]
    assert record["fgsm_error"] == first["fgsm_error"] and record["pgd_error"] == both["pgd_error"]
    # The run's settings still name the data it trained on: attacked from there again, the number
    # is the run's own (no robust_data_dir), and the copy's is left out.
    saved = OmegaConf.load(tmp_path / "run" / "config_resolved.yaml")
    assert saved.paths.data_dir == str(tmp_path / "data")
    home = train(make_cfg(["trainer.max_epochs=1", "ckpt_path=last", "eval.fgsm=true"]))
    assert (
        "robust_data_dir" not in home and "pgd_error" not in home and "data_dir" not in home["evaluated_by"]
    )
    records = [json.loads(line) for line in kept.read_text().splitlines()]
    assert len(records) == 2 and records[1]["robust_data_dir"] == str(copy.resolve())


def test_val_fraction_0_trains_on_the_whole_training_split_and_reports_the_last_epoch(make_cfg, tmp_path):
    """dataset.val_fraction=0 (the baselines' own protocol: no holdout): every training image is
    trained on, no validation runs, the selected checkpoint is the last epoch's, and metrics.json
    says so (val_rule, no val numbers). What needs a validation split is refused at start."""
    import csv

    from diffusemix_bench.data.base import stratified_holdout
    from diffusemix_bench.data.splits import build_splits

    assert stratified_holdout([0, 0, 1, 1, 1], 0.0, seed=3) == ([0, 1, 2, 3, 4], [])
    cfg = make_cfg(["dataset.val_fraction=0", "trainer.max_epochs=2", "eval.fgsm=true"])
    held = build_splits(make_cfg(["dataset.val_fraction=0.1"]).dataset, cfg.paths.data_dir)
    metrics = train(cfg)
    assert metrics["train_images"] == len(held.train) + len(held.val) and metrics["val_images"] == 0
    assert metrics["val_top1"] is None and metrics["val_images_evaluated"] == 0
    assert metrics["val_rule"].startswith(
        "none: the whole train split is trained on (dataset.val_fraction=0)"
    )
    # The selected checkpoint is last.ckpt (the last of two epochs), not a copy of it beside it.
    assert Path(metrics["best_checkpoint"]).name == "last.ckpt" and metrics["epochs"] == 2
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir()) == ["last.ckpt"]
    assert "val" not in metrics["data_notes"]
    # Without last.ckpt (callbacks.save_last=false) the last epoch's is written as best-epoch*.ckpt.
    kept = train(
        make_cfg(
            ["dataset.val_fraction=0", "trainer.max_epochs=2", "callbacks.save_last=false"], run_name="kept"
        )
    )
    assert Path(kept["best_checkpoint"]).name == "best-epoch001.ckpt"
    # callbacks.save_top_k=-1 keeps every epoch's beside last.ckpt; the selected one is the last epoch's.
    every = train(
        make_cfg(
            ["dataset.val_fraction=0", "trainer.max_epochs=2", "callbacks.save_top_k=-1"], run_name="every"
        )
    )
    assert Path(every["best_checkpoint"]).name == "best-epoch001.ckpt"
    assert sorted(p.name for p in (tmp_path / "every" / "checkpoints").iterdir()) == [
        "best-epoch000.ckpt",
        "best-epoch001.ckpt",
        "last.ckpt",
    ]
    assert metrics["test_top1"] is not None and metrics["fgsm_error"] is not None
    rows = list(csv.DictReader((tmp_path / "run" / "summary.csv").open()))
    assert len(rows) == 2 and all(row["val_top1"] == "" for row in rows)
    for asked, said in (
        (
            ["callbacks.early_stopping_patience=3"],
            "callbacks.early_stopping_patience=3 stops on the validation",
        ),
        (["eval.split=val"], "eval.split=val, but dataset 'cifar100' has no validation split here"),
        (["callbacks.save_top_k=3"], "callbacks.save_top_k=3 keeps the best checkpoints on the validation"),
    ):
        with pytest.raises(ConfigError, match=re.escape(said)):
            train(make_cfg(["dataset.val_fraction=0", "eval.fgsm=true", *asked], run_name="refused"))


def test_a_run_with_no_split_to_measure_or_attack_is_refused_before_its_folder(tmp_path):
    """An image folder without test/: with dataset.val_fraction=0 the run would measure nothing, and
    an attack of the test split has none to attack. Each is one message through train.py, exit code
    1, and no run folder (the attack's refusal came after the folder held its settings)."""
    from tests.fixtures.datasets import write_fixture_dataset

    root = Path(write_fixture_dataset("imagefolder", tmp_path / "data", per_class=2)["data_dir"])
    shutil.rmtree(root / "test")
    base = ["dataset=imagefolder", f"dataset.root={root}", *FAST, f"hydra.run.dir={tmp_path / 'run'}"]
    nothing = (
        "error: dataset.val_fraction=0 leaves no validation split and dataset 'imagefolder' has no test split "
        "here, so the run would measure nothing (its metrics.json without a top-1): hold out a validation split "
        "(dataset.val_fraction=0.1), or give the data a test split"
    )
    shutil.rmtree(root / "val")
    for asked, said in (
        (["dataset.val_fraction=0"], nothing),
        (["dataset.val_fraction=0", "eval.fgsm=true", "eval.split=val"], nothing),  # (not: attack the test)
        (
            ["eval.fgsm=true"],
            "error: eval.split=test, but dataset 'imagefolder' has no test split here; attack "
            "the validation split with eval.split=val",
        ),
    ):
        refused = run_entry("train.py", [*base, *asked], tmp_path)
        assert refused.returncode == 1 and said in refused.stderr, refused.stderr[-2000:]
        assert "Traceback" not in refused.stderr and not (tmp_path / "run").exists()


def test_debug_limit_on_a_small_folder_is_refused_before_its_folder_naming_debug_limit(tmp_path):
    """debug=limit's tenth of a split of one batch keeps none: refused before the run folder is
    made, the message saying the value is debug=limit's (the command did not name the setting), and
    the setting it names, given on the command line, runs."""
    from tests.fixtures.datasets import write_fixture_dataset

    root = write_fixture_dataset("imagefolder", tmp_path / "data", per_class=2)["data_dir"]
    args = [
        "dataset=imagefolder",
        f"dataset.root={root}",
        "model=resnet18",
        "dataset.image_size=32",
        "dataset.resize=36",
        "dataset.batch_size=8",
        "debug=limit",
        "callbacks.progress_bar=none",
        f"hydra.run.dir={tmp_path / 'run'}",
    ]
    refused = run_entry("train.py", args, tmp_path)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr, refused.stderr[-2000:]
    assert (
        "error: trainer.limit_val_batches=0.1 (debug=limit's): 0.1 of the 1 batch of 6 images (batch 8) is none; "
        "give a number of batches instead, trainer.limit_val_batches=1" in refused.stderr
    ), refused.stderr[-2000:]
    assert not (tmp_path / "run").exists()
    given = ["trainer.limit_val_batches=1", "trainer.limit_test_batches=1", "trainer.limit_train_batches=1"]
    ran = run_entry("train.py", [*args, *given, "trainer.max_epochs=1"], tmp_path)
    assert ran.returncode == 0, ran.stderr[-2000:]


def test_only_the_first_process_writes_the_numbers_and_clears_the_failure_record(
    make_cfg, tmp_path, monkeypatch
):
    """Of a multi-process run, the first process writes metrics.json and then removes
    failure.json: another process (here: this one, told it is the second) touches neither, so a
    kill of the first before its write never leaves the folder looking finished."""
    from pytorch_lightning.utilities.rank_zero import rank_zero_only

    run = tmp_path / "run"
    run.mkdir()
    (run / "failure.json").write_text('{"status": "failed", "error": "stopped by SIGTERM"}')
    monkeypatch.setattr(rank_zero_only, "rank", 1)
    metrics = train(make_cfg(["trainer.max_epochs=1"]))
    assert metrics["optimizer_steps"] >= 1
    assert not (run / "metrics.json").exists() and (run / "failure.json").is_file()


def test_a_part_resumed_from_an_older_checkpoint_takes_what_the_earlier_metrics_say():
    """Trained further from a checkpoint that predates the records: the earlier part's metrics.json
    still says its world size and the weights it started from."""
    from diffusemix_bench.training.run import _known_from

    weights = {"file": "/w.safetensors", "sha256": "a" * 64}
    metrics = {"world_size": [None, 2]}
    _known_from({"world_size": 2, "model_weights": weights}, metrics)
    assert metrics == {"world_size": 2, "model_weights": weights}
    metrics = {"world_size": [None, 1]}
    _known_from({"world_size": [2, 4]}, metrics)
    assert metrics == {"world_size": [2, 4, 1]}
    metrics = {"world_size": [None, 1]}
    _known_from({}, metrics)  # a metrics.json that predates them too: still unknown
    assert metrics == {"world_size": [None, 1]}


def test_robustness_entries_of_two_measurements_are_never_mixed():
    from diffusemix_bench.training.evaluate import with_robustness

    run = {"test_top1": 50.0, "best_checkpoint": "/r/checkpoints/best-epoch001.ckpt"}
    fgsm_test = {
        "robust_split": "test",
        "robust_images": 10,
        "fgsm_error": 70.0,
        "fgsm_settings": {"eps": 8.0},
    }
    after_training = {**run, **fgsm_test}  # measured on the selected checkpoint
    pgd_test = {
        "robust_split": "test",
        "robust_images": 10,
        "pgd_error": 80.0,
        "robust_checkpoint": "best-epoch001.ckpt",
    }
    merged, dropped = with_robustness(after_training, pgd_test)
    assert merged == {**after_training, **pgd_test} and dropped == []
    pgd_val = {**pgd_test, "robust_split": "val", "robust_images": 4}
    merged, dropped = with_robustness(after_training, pgd_val)
    assert merged == {**run, **pgd_val} and dropped == ["fgsm_error", "fgsm_settings"]
    # Each attack's record of what measured it goes with its number.
    measured = {**after_training, "fgsm_measured_by": {"device": "cpu"}}
    merged, dropped = with_robustness(measured, pgd_val)
    assert "fgsm_measured_by" not in merged and "fgsm_measured_by" in dropped
    # The same split and count read from another copy of the data (evaluate.py data_dir=).
    pgd_moved = {**pgd_test, "robust_data_dir": "/elsewhere"}
    assert with_robustness(after_training, pgd_moved) == (
        {**run, **pgd_moved},
        ["fgsm_error", "fgsm_settings"],
    )
    # The log says the folder given and the run's own (recorded as no folder), not "none".
    from diffusemix_bench.training.evaluate import _another_measurement

    said = _another_measurement(after_training, pgd_moved, "pgd")
    assert "data folder the run's own -> /elsewhere" in said and "none" not in said
    pgd_last = {**pgd_test, "robust_checkpoint": "/r/checkpoints/last.ckpt"}
    assert with_robustness(after_training, pgd_last) == ({**run, **pgd_last}, ["fgsm_error", "fgsm_settings"])
    # A short check (eval.limit_batches) beside the whole split's attack, in either order: the
    # whole split's FGSM error was kept beside the short check's count and clean error, and the
    # short check's robust_limit_batches beside the whole split's PGD error.
    pgd_short = {**pgd_test, "robust_images": 5, "robust_limit_batches": 1, "robust_clean_error": 40.0}
    merged, dropped = with_robustness(after_training, pgd_short)
    assert merged == {**run, **pgd_short} and dropped == ["fgsm_error", "fgsm_settings"]
    merged, dropped = with_robustness(
        {**run, **pgd_short, "fgsm_error": 60.0}, {**fgsm_test, "robust_clean_error": 41.0}
    )
    assert merged == {**run, **fgsm_test, "robust_clean_error": 41.0}
    assert sorted(dropped) == ["pgd_error", "robust_checkpoint", "robust_limit_batches"]
    # Nothing measured (a resume asked for the test numbers alone): the entries stay.
    assert with_robustness({**run, **pgd_test}, {}) == ({**run, **pgd_test}, [])
    # No checkpoint selected on validation: last.ckpt's numbers are the run's, attacked after
    # training (robust_checkpoint None) or by evaluate.py (last.ckpt): one measurement.
    unselected = {"test_top1": 50.0, "best_checkpoint": None, **fgsm_test, "robust_checkpoint": None}
    pgd_on_last = {**pgd_test, "robust_checkpoint": "/r/checkpoints/last.ckpt"}
    merged, dropped = with_robustness(unselected, pgd_on_last)
    assert merged["fgsm_error"] == 70.0 and merged["pgd_error"] == 80.0 and dropped == []
    # A limit that covers the whole split (the same images) still names a short check.
    pgd_limited = {**pgd_test, "robust_limit_batches": 100}
    merged, dropped = with_robustness({**run, **pgd_limited}, fgsm_test)
    assert "robust_limit_batches" not in merged and "pgd_error" in dropped
    # Attacks kept side by side, measured in other batches (evaluate.py eval.batch_size=): each
    # attack's batch size; one number again once they agree.
    pgd_at_8 = {**after_training, **pgd_test, "robust_batch_size": 8}
    merged, _ = with_robustness(pgd_at_8, {**fgsm_test, "robust_batch_size": 5})
    assert merged["robust_batch_size"] == {"pgd": 8, "fgsm": 5}
    merged, _ = with_robustness(merged, {**pgd_test, "pgd_settings": {}, "robust_batch_size": 5})
    assert merged["robust_batch_size"] == 5
    merged, _ = with_robustness(pgd_at_8, {**fgsm_test, "robust_batch_size": 8})
    assert merged["robust_batch_size"] == 8


def test_the_pgd_seed_is_recorded_with_pgd_alone():
    """robust_seed is PGD's random start's seed: an FGSM-only attack (which draws nothing) writes
    none, so a PGD number kept beside it keeps the seed it was measured with."""
    from diffusemix_bench.robustness import AttackSpec
    from diffusemix_bench.training.evaluate import attack_checkpoint, with_robustness

    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 2))
    loader = [(torch.rand(2, 3, 4, 4), torch.tensor([0, 1]))]
    pgd = attack_checkpoint(
        model, None, loader, [AttackSpec("pgd", eps=8.0, steps=2)], seed=7, accelerator="cpu"
    )
    fgsm = attack_checkpoint(model, None, loader, [AttackSpec("fgsm", eps=8.0)], seed=3, accelerator="cpu")
    assert pgd["robust_seed"] == 7 and "robust_seed" not in fgsm
    merged, dropped = with_robustness(pgd, fgsm)
    assert merged["robust_seed"] == 7 and merged["pgd_error"] == pgd["pgd_error"] and not dropped


def test_several_processes_attack_their_own_parts_and_sum_the_counts():
    """Under DDP the attack after training sums each process's counts (here two processes that
    attacked the same part, so every count doubles and the errors stay); the number of processes
    is recorded with a PGD random start, whose draws depend on it, and a later PGD of one process
    (evaluate.py) replaces the record, while an FGSM-only result keeps it beside the PGD number."""
    from types import SimpleNamespace

    from diffusemix_bench.robustness import AttackSpec
    from diffusemix_bench.training.evaluate import attack_checkpoint, with_robustness

    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 2))
    loader = [(torch.rand(3, 3, 4, 4), torch.tensor([0, 1, 1]))]
    summed = []

    def reduce(counts, reduce_op):
        assert reduce_op == "sum"
        summed.append(counts.tolist())
        return counts * 2

    two = SimpleNamespace(world_size=2, root_device=torch.device("cpu"), reduce=reduce)
    specs = [AttackSpec("fgsm", eps=8.0), AttackSpec("pgd", eps=8.0, steps=2)]
    alone = attack_checkpoint(model, None, loader, specs, seed=7, accelerator="cpu")
    shared = attack_checkpoint(model, None, loader, specs, seed=7, accelerator="cpu", strategy=two)
    assert len(summed) == 1 and summed[0][0] == 3  # (images, clean, fgsm, pgd correct) of this part
    assert alone["robust_images"] == 3 and shared["robust_images"] == 6
    for key in ("robust_clean_error", "fgsm_error", "pgd_error"):
        assert shared[key] == alone[key]
    assert shared["robust_processes"] == 2 and "robust_processes" not in alone
    fgsm_only = attack_checkpoint(model, None, loader, specs[:1], seed=7, accelerator="cpu", strategy=two)
    assert "robust_processes" not in fgsm_only
    assert with_robustness(shared, fgsm_only)[0]["robust_processes"] == 2
    pgd_alone = {**alone, "robust_images": 6}
    assert "robust_processes" not in with_robustness(shared, pgd_alone)[0]


def test_a_batch_limit_of_1_is_one_batch(make_cfg):
    """Lightning reads an int limit as batches and a float as a fraction: ``=1`` is one batch (a
    float-typed setting once made it every batch), ``=1.0`` the whole split."""
    one = ["dataset.batch_size=4", "dataset.eval_batch_size=4", "trainer.limit_val_batches=1"]
    metrics = train(make_cfg([*one, "trainer.limit_test_batches=1"]))
    assert metrics["test_images"] > 4 and metrics["test_images_evaluated"] == 4
    assert metrics["val_images_evaluated"] == min(4, metrics["val_images"])
    assert metrics["shortened_by"]["limit_test_batches"] == 1
    metrics = train(make_cfg([*one, "trainer.limit_test_batches=1.0"], run_name="all"))
    assert metrics["test_images_evaluated"] == metrics["test_images"]
    assert "limit_test_batches" not in metrics["shortened_by"]


def test_the_commit_recorded_is_that_of_the_code_the_process_runs(tmp_path):
    """A sweep's jobs run in one process, which keeps the modules it imported: a commit made while
    the sweep runs is not the code of its later jobs. The commit is read once, as the first run starts."""
    import subprocess

    from diffusemix_bench.training.provenance import code_state, git_state

    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    git("init", "-q")
    for n in (1, 2):
        (tmp_path / "code.py").write_text(f"version = {n}\n")
        git("add", "code.py")
        git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", f"v{n}")
        if n == 1:
            first = code_state(tmp_path)
    assert code_state(tmp_path) == first != git_state(tmp_path)
    assert len(first["commit"]) == 40 and first["dirty"] is False
    # Scratch files (notes, images) change no number; a module not yet added to git is code the
    # run may import, in a folder of its own too: the tree is dirty.
    (tmp_path / "notes.txt").write_text("scratch\n")
    (tmp_path / "scratch" / "out").mkdir(parents=True)
    (tmp_path / "scratch" / "out" / "plot.png").write_bytes(b"png")
    assert git_state(tmp_path)["dirty"] is False
    (tmp_path / "scratch" / "new_module.py").write_text("x = 1\n")
    assert git_state(tmp_path)["dirty"] is True
    (tmp_path / "scratch" / "new_module.py").unlink()
    (tmp_path / "code.py").write_text("version = 3\n")  # a tracked file changed
    assert git_state(tmp_path)["dirty"] is True


def test_a_time_limit_given_as_a_mapping_is_written_as_json_and_devices_null_passes():
    """trainer.max_time={seconds: 1} (the schema's dict form) went into metrics.json as an OmegaConf
    node (not JSON: the run failed as it wrote its numbers); trainer.devices=null is Lightning's
    default and passes the start-up check."""
    from diffusemix_bench.config import check_values
    from diffusemix_bench.training.provenance import shortened_by
    from tests.conftest import compose_config

    cfg = compose_config(["trainer.max_time={seconds: 1}", "trainer.devices=null"])
    assert json.loads(json.dumps(shortened_by(cfg, {"max_time": True}))) == {"max_time": {"seconds": 1}}
    check_values(cfg)


def test_a_run_a_time_limit_or_early_stopping_ended_says_so(make_cfg):
    """trainer.max_time that ended the training is listed in shortened_by (the run counted as a
    whole one); early stopping's last epoch is recorded (early_stopped_at_epoch)."""
    timed = train(
        make_cfg(["trainer.max_epochs=1000", "trainer.max_time=00:00:00:01", "trainer.limit_val_batches=1"])
    )
    assert timed["epochs"] < 1000 and timed["shortened_by"]["max_time"] == "00:00:00:01", timed[
        "shortened_by"
    ]
    assert "early_stopped_at_epoch" not in timed
    early = train(
        make_cfg(
            [
                "trainer.max_epochs=8",
                "callbacks.early_stopping_patience=1",
                "protocol=custom",
                "optim.lr=1e-12",
            ],
            run_name="early",
        )
    )
    assert early.get("early_stopped_at_epoch") == 1 and early["epochs"] == 2, (
        early["epochs"],
        early["val_top1"],
    )
    assert "max_time" not in early["shortened_by"]


def test_metrics_say_what_the_numbers_were_computed_on(make_cfg):
    """debug=fast cuts each split to two batches: metrics.json says which of them that shortened,
    beside the code's commit and the package versions."""
    metrics = train(make_cfg(["dataset.batch_size=2", "dataset.eval_batch_size=4"]))
    assert metrics["train_images"] > 2 * 2 and metrics["optimizer_steps"] == 2
    assert metrics["test_images"] > 8 and metrics["test_images_evaluated"] == 8
    # (the fixture's val split fits in two batches: its limit cut nothing and is not listed)
    assert metrics["val_images"] <= 8 and metrics["val_images_evaluated"] == metrics["val_images"]
    assert metrics["shortened_by"] == {"limit_train_batches": 2, "limit_test_batches": 2}
    assert len(metrics["git"]["commit"]) == 40 and isinstance(metrics["git"]["dirty"], bool)
    assert metrics["versions"]["torch"] and metrics["versions"]["python"]
    assert metrics["edit_store"] is None
    assert metrics["limited_eval_order"] == "classes interleaved"  # which test images were scored
    full = train(make_cfg(["trainer.limit_test_batches=null"], run_name="full"))
    assert full["test_images_evaluated"] == full["test_images"]
    assert "limit_test_batches" not in full["shortened_by"] and "limited_eval_order" not in full


def test_limits_that_cut_nothing_are_not_listed_as_shortening(make_cfg):
    """A batch limit above its split's batches, or a max_steps reached only at the last epoch's
    end, left nothing out: metrics.json does not list it among what shortened the run."""
    base = ["dataset.batch_size=4", "dataset.eval_batch_size=2", "trainer.max_epochs=2"]
    roomy = [*base, "trainer.limit_train_batches=1000", "trainer.limit_val_batches=1000",
             "trainer.limit_test_batches=1000", "trainer.max_steps=1000"]  # fmt: skip
    metrics = train(make_cfg(roomy))
    assert metrics["epochs"] == 2 and metrics["test_images_evaluated"] == metrics["test_images"]
    assert metrics["shortened_by"] == {}
    per_epoch = metrics["optimizer_steps"] // 2
    cut = [*base, "trainer.limit_train_batches=1", "trainer.limit_val_batches=1",
           "trainer.limit_test_batches=1", f"trainer.max_steps={per_epoch + 1}"]  # fmt: skip
    # limit_train_batches=1 makes an epoch one step: max_steps then stops nothing early...
    metrics = train(make_cfg(cut, run_name="cut"))
    assert metrics["shortened_by"] == {
        "limit_train_batches": 1,
        "limit_val_batches": 1,
        "limit_test_batches": 1,
    }
    # ... while without it max_steps ends the second epoch early and is listed.
    metrics = train(make_cfg([*base, f"trainer.max_steps={per_epoch + 1}"], run_name="steps"))
    assert metrics["optimizer_steps"] == per_epoch + 1
    assert metrics["shortened_by"]["max_steps"] == per_epoch + 1
    # One whole epoch was trained, and one step of the second: epochs counts whole epochs only.
    assert metrics["epochs"] == 1 and metrics["partial_epoch_steps"] == 1


def test_last_checkpoint_is_the_last_epoch_not_the_best(make_cfg, tmp_path):
    """last.ckpt is rewritten at every epoch end whatever validation says, so ckpt_path=last resumes
    where the run stopped."""
    metrics = train(make_cfg(["trainer.max_epochs=3"]))
    last = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert last["global_step"] == metrics["optimizer_steps"] and last["epoch"] == 2


def test_last_checkpoint_every_n_steps_is_a_setting(make_cfg):
    from pytorch_lightning.callbacks import ModelCheckpoint

    from diffusemix_bench.training.run import build_callbacks

    cfg = make_cfg(["callbacks.checkpoint_every_n_steps=50"])
    lasts = [
        c
        for c in build_callbacks(cfg, Path("ckpts"))
        if isinstance(c, ModelCheckpoint) and c.filename == "last"
    ]
    assert sorted(c._every_n_train_steps for c in lasts) == [0, 50]


def test_resume_with_other_settings_is_refused_naming_them(make_cfg, tmp_path):
    train(make_cfg(["trainer.max_epochs=1", "aug=none"]))
    with pytest.raises(ConfigError, match=r"aug\.name: 'none' -> 'mixup'"):
        train(make_cfg(["trainer.max_epochs=2", "ckpt_path=last", "aug=mixup"]))
    # The refusal leaves the run folder as it was: the run is not marked failed.
    assert not (tmp_path / "run" / "failure.json").exists()
    # It names the value given (auto, which found last.ckpt).
    with pytest.raises(ConfigError, match=r"^ckpt_path=auto resumes the run in"):
        train(make_cfg(["trainer.max_epochs=2", "ckpt_path=auto", "aug=mixup"]))
    # Going on for longer, or elsewhere, or showing and logging otherwise, is the same run.
    shown = ["trainer.enable_progress_bar=false", "trainer.log_every_n_steps=1", "print_config=false",
             "callbacks.checkpoint_every_n_steps=1", "trainer.enable_model_summary=false"]  # fmt: skip
    assert train(make_cfg(["trainer.max_epochs=2", "ckpt_path=last", "aug=none", *shown]))["epochs"] == 2
    # That run's checkpoint given to another folder would resume it there, under settings unchecked
    # and with its best checkpoint in the first folder: refused, naming both ways on.
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    with pytest.raises(ConfigError) as refused:
        train(make_cfg(["trainer.max_epochs=3", f"ckpt_path={last}", "optim.lr=0.05"], run_name="elsewhere"))
    said = str(refused.value)
    assert f"is a checkpoint of the run in {tmp_path / 'run'}, not of this run folder" in said, said
    assert f"hydra.run.dir={tmp_path / 'run'} ckpt_path={last}" in said
    assert said.endswith(f"model.weights={last} instead of ckpt_path")
    assert not (tmp_path / "elsewhere" / "checkpoints").exists()
    # The other way the message offers: a new run from its weights alone.
    import hashlib
    import shutil

    start = tmp_path / "start.ckpt"
    shutil.copyfile(last, start)
    from_weights = train(make_cfg(["trainer.max_epochs=1", f"model.weights={start}"], run_name="weights"))
    assert from_weights["epochs"] == 1
    # What was loaded, whatever the file's place (reports compare runs by it).
    record = {"file": str(start.resolve()), "sha256": hashlib.sha256(start.read_bytes()).hexdigest()}
    assert from_weights["model_weights"] == record
    # Resumed, it takes its weights from its checkpoint: the starting file, gone since, is not read.
    start.unlink()
    further = train(
        make_cfg(["trainer.max_epochs=2", f"model.weights={start}", "ckpt_path=last"], run_name="weights")
    )
    assert further["epochs"] == 2 and further["model_weights"] == record
    # In its own folder, the file resumes the run.
    assert train(make_cfg(["trainer.max_epochs=3", f"ckpt_path={last}", "aug=none"]))["epochs"] == 3


def test_a_run_saved_before_a_setting_existed_resumes_at_the_value_it_had(make_cfg, tmp_path):
    """A run folder written before aug.arithmetic existed resumes with the value that reproduces what
    it trained with (exact), and is refused with the other value, naming it."""
    from diffusemix_bench.training.resume import check_resume_matches

    base = ["aug=diffusemix", "aug.compose=before_crop", "ckpt_path=last"]
    saved = OmegaConf.to_container(make_cfg(base), resolve=True)
    del saved["aug"]["arithmetic"]
    path = tmp_path / "saved_config.yaml"
    OmegaConf.save(OmegaConf.create(saved), path)
    check_resume_matches(make_cfg(base), path)
    with pytest.raises(ConfigError, match=r"aug\.arithmetic: 'exact' -> 'official'"):
        check_resume_matches(make_cfg(base + ["aug.arithmetic=official"]), path)


def test_a_resume_may_follow_an_edited_paper_record_and_long_values_are_cut_short(make_cfg, tmp_path):
    """An experiment file's paper: block (caption, the paper's numbers) is not trained on: a run
    resumes after it was corrected. A refusal shows long values (a table) cut short."""
    from diffusemix_bench.training.resume import check_resume_matches

    base = ["experiment=lambda", "dataset=flowers102", "ckpt_path=last"]
    saved = OmegaConf.to_container(make_cfg(base), resolve=True)
    saved["paper"]["caption"] = "an earlier caption with a typo"
    saved["paper"]["rows"] = [{"label": "x" * 500}]
    path = tmp_path / "saved_config.yaml"
    OmegaConf.save(OmegaConf.create(saved), path)
    check_resume_matches(make_cfg(base), path)
    saved["aug"]["prompts"] = ["y" * 500]
    OmegaConf.save(OmegaConf.create(saved), path)
    with pytest.raises(ConfigError) as refused:
        check_resume_matches(make_cfg(base), path)
    assert "aug.prompts: ['yyyy" in str(refused.value) and len(str(refused.value)) < 1000, str(refused.value)


@pytest.mark.parametrize(
    "folder",
    ["/runs/plain_0", "/runs/multirun/1_aug=none,dataset=flowers102,seed=0", "/runs/it's [x] here"],
)
def test_the_printed_run_folder_override_reaches_hydra_whole(folder):
    """The resume advice names the run folder as an override a shell and Hydra take whole, a
    sweep job's folder (with = and ,) included: typed as printed, it sets exactly that folder."""
    import shlex

    from hydra.core.override_parser.overrides_parser import OverridesParser

    from diffusemix_bench.cli import run_dir_override

    (arg,) = shlex.split(run_dir_override(Path(folder)))  # what the shell hands to train.py
    (override,) = OverridesParser.create().parse_overrides([arg])
    assert override.key_or_group == "hydra.run.dir" and override.value() == folder


def test_an_unquoted_sweep_folder_is_answered_with_the_quoted_form():
    """A sweep job's folder typed bare (``hydra.run.dir=/runs/0_aug=none,seed=0``) is refused in
    one line that gives the quoted form; typed as given, it reaches Hydra whole."""
    import shlex

    from hydra.core.override_parser.overrides_parser import OverridesParser

    from diffusemix_bench.preflight import preflight

    folder = "/runs/multirun/0_aug=none,dataset=flowers102,seed=0"
    with pytest.raises(ConfigError, match="hydra.run.dir: its value .* Quote it") as refused:
        preflight([f"hydra.run.dir={folder}", "ckpt_path=last"], str(CONF_DIR))
    (arg,) = shlex.split(str(refused.value).rsplit(": ", 1)[1])
    (override,) = OverridesParser.create().parse_overrides([arg])
    assert override.key_or_group == "hydra.run.dir" and override.value() == folder


def test_every_value_of_a_swept_group_is_checked_before_the_sweep():
    from diffusemix_bench.preflight import preflight

    with pytest.raises(
        ConfigError, match=r"^aug=snapmx: no such option in conf/aug/; did you mean snapmix\?"
    ):
        preflight(["--multirun", "aug=none,snapmx", "seed=0,1"], str(CONF_DIR))
    preflight(["--multirun", "aug=none,snapmix", "seed=0,1"], str(CONF_DIR))


def test_resume_without_checkpoint_says_how(make_cfg, tmp_path):
    with pytest.raises(ConfigError, match="hydra.run.dir"):
        train(make_cfg(["ckpt_path=last"]))
    assert not (tmp_path / "run" / "failure.json").exists()  # nothing ran: no failed run to report


def test_same_seed_same_result(make_cfg):
    a = train(make_cfg(["seed=5"], run_name="a"))
    b = train(make_cfg(["seed=5"], run_name="b"))
    for key in ("val_top1", "test_top1", "optimizer_steps"):
        assert a[key] == b[key]


def test_few_shot_subset(make_cfg):
    metrics = train(make_cfg(["dataset=flowers102", "dataset.samples_per_class=1"]))
    assert metrics["train_images"] == metrics["num_classes"]


def test_appended_unknown_key_is_refused(make_cfg):
    cfg = make_cfg(["+dataset.colour=red"])
    with pytest.raises(ConfigError, match="colour"):
        train(cfg)


def test_unknown_key_and_wrong_type_fail_at_compose():
    with pytest.raises(ConfigCompositionException, match="batchsize"):
        compose_config(["dataset.batchsize=3"])
    with pytest.raises(ConfigCompositionException, match="batch_size"):
        compose_config(["dataset.batch_size=many"])
    with pytest.raises(ConfigCompositionException, match="aug/mixupp"):
        compose_config(["aug=mixupp"])


def test_missing_dataset_raises_before_model_is_built(tmp_path):
    cfg = compose_config(["dataset=cub", "debug=fast", f"paths.data_dir={tmp_path}"])
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path / "run")
    with pytest.raises(DatasetNotFoundError, match="CUB_200_2011"):
        train(cfg)


def test_corrupt_image_names_the_file(make_cfg, tmp_path):
    from tests.fixtures.datasets import corrupt_one_image

    cfg = make_cfg(
        [
            "dataset=cub",
            "trainer.limit_train_batches=null",
            "trainer.limit_val_batches=null",
            "trainer.limit_test_batches=null",
        ]
    )
    bad = corrupt_one_image("cub", Path(cfg.paths.data_dir))
    with pytest.raises(CorruptImageError, match=bad.name):
        train(cfg)


def _run_script(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return run_entry("train.py", args, cwd)


@pytest.mark.slow  # the bad-input corpus runs this kind of case in the default suite
def test_train_script_missing_data_message(tmp_path):
    """`python train.py dataset=cub aug=none` without data stops at once and says where and how."""
    result = _run_script(["dataset=cub", "aug=none", f"paths.data_dir={tmp_path / 'nothing'}"], tmp_path)
    assert result.returncode != 0
    err = result.stderr
    assert "CUB_200_2011" in err and "How to get it" in err and "images.txt" in err
    assert "Traceback" not in err


def test_trainer_settings_lightning_refuses_are_one_message_before_the_run_folder(tmp_path):
    """A strategy or accelerator Lightning's Trainer refuses (FSDP on the CPU, a name it lacks, no
    node): one message with the settings named as train.py takes them, no traceback, no folder."""
    fixture = write_fixture_dataset("flowers102", tmp_path / "data")
    base = ["dataset=flowers102", f"paths.data_dir={fixture['data_dir']}", "debug=fast", "print_config=false"]
    for given, said in (
        (
            "trainer.strategy=fsdp",
            "The strategy `fsdp` requires a GPU accelerator, but received `trainer.accelerator='cpu'`",
        ),
        (
            "trainer.accelerator=bogus",
            "You selected an invalid accelerator name: `trainer.accelerator='bogus'`",
        ),
        ("trainer.num_nodes=0", "`trainer.num_nodes` must be a positive integer, but got 0"),
    ):
        run = tmp_path / given.replace("=", "_")
        result = _run_script([*base, given, f"hydra.run.dir={run}"], tmp_path)
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
        assert f"error: Lightning's Trainer refuses these settings: {said}" in result.stderr, result.stderr[
            -2000:
        ]
        assert not run.exists()


def test_a_model_its_options_or_the_image_size_cannot_build_or_run_is_refused_before_the_run_folder(tmp_path):
    """model.kwargs its builder refuses, an option set by a setting of its own, and an image size a
    model's layers cannot take: one message naming the settings, no traceback from the library and
    no run folder (the model is built and given one image before the folder fills)."""
    fixture = write_fixture_dataset("flowers102", tmp_path / "data")
    base = ["dataset=flowers102", f"paths.data_dir={fixture['data_dir']}", "debug=fast", "print_config=false"]
    for given, said in (
        (
            ["model=timm", "model.name=resnet10t", "+model.kwargs.drop_path=0.1"],
            "model=timm model.name=resnet10t cannot be built with model.kwargs.drop_path=0.1: ResNet.__init__() got "
            "an unexpected keyword argument 'drop_path'; give the options its builder takes",
        ),
        (
            ["model=timm", "model.name=resnet10t", "+model.kwargs.num_classes=10"],
            "model.kwargs.num_classes: num_classes is set by the dataset's classes, not by model.kwargs",
        ),
        (
            ["model=preactresnet18", "model.kwargs.stem_stride=0"],
            "model=preactresnet18 cannot be built with model.kwargs.stem_stride=0: stem_stride must be 1",
        ),
        (
            ["model=timm", "model.name=convnext_atto", "dataset.image_size=16", "dataset.resize=20"],
            "model=timm model.name=convnext_atto cannot take the run's images, 3 x 16 x 16 (dataset.image_size=16: "
            "Calculated padded input size",
        ),
    ):
        run = tmp_path / "run"
        result = _run_script([*base, *given, f"hydra.run.dir={run}"], tmp_path)
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
        assert f"error: {said}" in result.stderr, result.stderr[-2000:]
        assert not run.exists()


def test_train_script_end_to_end(tmp_path):

    fixture = write_fixture_dataset("flowers102", tmp_path / "data")
    args = [
        "dataset=flowers102",
        "model=resnet18",
        f"paths.data_dir={fixture['data_dir']}",
        "debug=fast",
        "trainer.max_epochs=2",
        "dataset.image_size=32",
        "dataset.resize=36",
        f"hydra.run.dir={tmp_path / 'run'}",
    ]
    result = _run_script(args, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["dataset"] == "flowers102" and metrics["test_top1"] is not None
    assert (tmp_path / "run" / ".hydra" / "config.yaml").exists()
    # The resolved settings are printed as a tree when the run starts.
    assert (
        "config" in result.stdout and "name: flowers102" in result.stdout and "max_epochs: 2" in result.stdout
    )

    # Resuming the finished run with another setting is refused in one message, before anything in
    # its folder changes: no failure.json beside its metrics, Hydra's record of its command kept.
    before = {p: p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file()}
    refused = _run_script([*args, "aug=mixup", "ckpt_path=last"], tmp_path)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert re.search(
        r"error: ckpt_path=last resumes the run in .*aug\.name: 'none' -> 'mixup'", refused.stderr
    )
    assert "max_epochs:" not in refused.stdout  # no config tree before the one-line answer
    assert {p: p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file()} == before
    # So is a resume for fewer epochs than the checkpoint has trained.
    refused = _run_script([*args, "trainer.max_epochs=1", "ckpt_path=last"], tmp_path)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "has trained 2 epochs, more than trainer.max_epochs=1" in refused.stderr, refused.stderr[-2000:]
    assert {p: p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file()} == before
    # A resume from a checkpoint that is not there is refused before any folder is made.
    for given, said in (
        ("last", "ckpt_path=last but .*last.ckpt does not exist"),
        ("lats", r"ckpt_path=lats is not a file; did you mean ckpt_path=last\? ckpt_path takes last "),
        ("/no/such.ckpt", r"ckpt_path=/no/such.ckpt is not a file\. ckpt_path takes last "),
    ):
        args_new = [*args[:-1], f"hydra.run.dir={tmp_path / 'new'}", f"ckpt_path={given}"]
        missing = _run_script(args_new, tmp_path)
        assert missing.returncode == 1 and re.search(f"error: {said}", missing.stderr), missing.stderr[-2000:]
        assert "Traceback" not in missing.stderr and not (tmp_path / "new").exists()
    # So is a refused setting.
    refused = _run_script([*args[:-1], f"hydra.run.dir={tmp_path / 'new'}", "optim.lr=-1"], tmp_path)
    assert refused.returncode == 1 and "error: optim.lr must be > 0" in refused.stderr
    assert not (tmp_path / "new").exists()
    # The same command run again with ckpt_path=auto (a sweep run again): the run has finished,
    # nothing to do, nothing in its folder changes (Hydra's record of its command included).
    again = _run_script([*args, "ckpt_path=auto"], tmp_path)
    assert again.returncode == 0 and "has finished" in again.stdout and "Nothing to do" in again.stdout
    assert (
        f"evaluate.py ckpt={tmp_path / 'run'} eval.fgsm=true" in again.stdout
    )  # (its folder, not a placeholder)
    assert {p: p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file()} == before
    # The README's resume form, the folder alone: the run's own settings are compared first (the
    # default dataset's absence was the answer) and the refusal gives the run's own command.
    bare = _run_script(["ckpt_path=last", f"hydra.run.dir={tmp_path / 'run'}"], tmp_path)
    assert bare.returncode == 1 and "not found" not in bare.stderr, bare.stderr[-2000:]
    assert "dataset.name: 'flowers102' -> 'cifar100'" in bare.stderr
    assert (
        "as its own command did: " in bare.stderr
        and f"train.py dataset=flowers102 model=resnet18 paths.data_dir={fixture['data_dir']} debug=fast"
        in bare.stderr
        and f"ckpt_path=last hydra.run.dir={tmp_path / 'run'}, or start a new run folder" in bare.stderr
    )
    # A misspelt ckpt_path is named before the settings are compared (their refusal's command
    # repeated it), and a new run into the folder is refused before the data is looked for (the
    # default dataset's absence was the answer, not the advice to go on or train elsewhere).
    for given, said in (
        (["ckpt_path=lats"], "error: ckpt_path=lats is not a file; did you mean ckpt_path=last?"),
        ([], f"error: {tmp_path / 'run'} holds a finished run (metrics.json"),
    ):
        refused = _run_script([*given, f"hydra.run.dir={tmp_path / 'run'}"], tmp_path)
        assert refused.returncode == 1 and said in refused.stderr, refused.stderr[-2000:]
        assert "not found" not in refused.stderr and "resumes the run" not in refused.stderr
    # ckpt_path=auto where no last.ckpt is (a new run there): refused alike, before the data.
    nolast = tmp_path / "nolast"
    shutil.copytree(tmp_path / "run", nolast, ignore=shutil.ignore_patterns("last.ckpt"))
    refused = _run_script(["ckpt_path=auto", f"hydra.run.dir={nolast}"], tmp_path)
    assert refused.returncode == 1 and "not found" not in refused.stderr, refused.stderr[-2000:]
    assert f"error: {nolast} holds a finished run (metrics.json" in refused.stderr
    assert "and ckpt_path=auto found no checkpoints/last.ckpt to go on from" in refused.stderr
    assert {p: p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file()} == before
    # Evaluated again (a resume that attacks the finished run): its metrics.json gets the number,
    # and .hydra/ still records the command that made its settings (config_resolved.yaml's), so a
    # sweep's summary.csv reads no evaluation setting as one the run was trained with.
    record = {p: before[p] for p in (tmp_path / "run" / ".hydra").rglob("*.yaml")}
    attacked = _run_script([*args, "ckpt_path=last", "eval.fgsm=true", "eval.split=val"], tmp_path)
    assert attacked.returncode == 0, attacked.stderr[-2000:]
    assert "fgsm_error" in json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert {p: p.read_bytes() for p in record} == record
    assert (tmp_path / "run" / "config_resolved.yaml").read_bytes() == before[
        tmp_path / "run" / "config_resolved.yaml"
    ]


def test_local_config_holds_machine_paths(tmp_path):
    """conf/local/default.yaml (git-ignored) sets this machine's folders for every run; the command
    line still wins."""
    import shutil

    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    conf = tmp_path / "conf"
    shutil.copytree(CONF_DIR, conf)
    shutil.copy(conf / "local" / "example.yaml", conf / "local" / "default.yaml")
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        local = compose("config")
        given = compose("config", overrides=["paths.data_dir=/elsewhere"])
    GlobalHydra.instance().clear()
    assert local.paths.data_dir == "/data/datasets" and given.paths.data_dir == "/elsewhere"
    assert compose_config([]).paths.data_dir != "/data/datasets"  # the project's own conf has none
    assert "/conf/local/default.yaml" in (ROOT / ".gitignore").read_text()


def _small_sweep(fixture: dict, tmp_path: Path, *settings: str) -> list[str]:
    """A ``--multirun`` of ResNet-18 on the Flowers fixture at 32 px for a few steps (debug=fast),
    its folders under ``tmp_path``, with ``settings`` (the sweep's own)."""
    return [
        "--multirun",
        "dataset=flowers102",
        *settings,
        "model=resnet18",
        f"paths.data_dir={fixture['data_dir']}",
        f"paths.cache_dir={tmp_path / 'cache'}",
        f"paths.log_dir={tmp_path / 'logs'}",
        "debug=fast",
        "dataset.image_size=32",
        "dataset.resize=36",
    ]


def test_multirun_sweep_folders_are_flat_and_a_bad_job_does_not_stop_the_sweep(tmp_path):
    """`train.py --multirun`: one folder per job directly under the sweep folder, named by the
    settings the sweep varies (folder-valued settings never nest folders); a job that fails as it
    trains (a batch of one that BatchNorm cannot normalise: no check before the sweep knows it)
    fails with its message in its log, and the next job still runs."""
    fixture = write_fixture_dataset("flowers102", tmp_path / "data")
    result = _run_script(
        _small_sweep(fixture, tmp_path, "aug=randaugment", "dataset.batch_size=1,4"), tmp_path
    )
    assert result.returncode == 1 and "dataset.batch_size=1" in result.stderr
    (sweep,) = (tmp_path / "logs" / "multirun" / "train").iterdir()
    jobs = sorted(p.name for p in sweep.iterdir() if p.is_dir())
    assert jobs == ["0_dataset.batch_size=1", "1_dataset.batch_size=4"]  # named by the swept setting alone
    # The sweep ends with one line on the jobs an error stopped (naming the first's error), not a
    # traceback, Hydra's repeat of the job's overrides or its hint about stack traces.
    assert "Traceback" not in result.stderr and "HYDRA_FULL_ERROR" not in result.stderr
    assert "Error executing job" not in result.stderr
    last = [line for line in result.stderr.splitlines() if line.strip()][-1]
    assert last.startswith(
        f"error: 1 of 2 jobs stopped on an error ({jobs[0]}; each one's error is in its folder's log); "
        f"every job's status: {sweep / 'summary.csv'}. The first's: dataset.batch_size=1: a BatchNorm layer "
        "of model=resnet18"
    ), last
    assert "error: dataset.batch_size=1: a BatchNorm layer" in (sweep / jobs[0] / "train.log").read_text()
    assert not (sweep / jobs[0] / "metrics.json").exists()
    metrics = json.loads((sweep / jobs[1] / "metrics.json").read_text())
    assert metrics["protocol"] == "scarcity_resnet18" and metrics["aug_settings"]["magnitude"] == 9
    # The sweep's summary: a line after each job, and summary.csv with each job's status.
    assert "sweep so far: 1 of 2 jobs: 0 finished, 1 failed, 0 diverged, 1 not run yet" in result.stdout
    assert "sweep so far: 2 of 2 jobs: 1 finished, 1 failed, 0 diverged, 0 not run yet" in result.stdout
    assert f"failed or diverged: {jobs[0]}" in result.stdout
    rows = list(csv.DictReader((sweep / "summary.csv").open()))
    assert [(r["job"], r["status"]) for r in rows] == [(jobs[0], "failed"), (jobs[1], "finished")]
    assert float(rows[1]["test_top1"]) == metrics["test_top1"]


def test_the_model_summary_counts_the_models_flops(tmp_path):
    """Lightning's model summary counts FLOPs only with an example input: one image at the crop
    size (the summary showed "Total FLOPs: 0", which reads like a fault)."""
    fixture = write_fixture_dataset("flowers102", tmp_path / "data")
    args = [a for a in _small_sweep(fixture, tmp_path, "aug=none") if a != "--multirun"]
    result = _run_script([*args, "print_config=false", f"hydra.run.dir={tmp_path / 'run'}"], tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    flops = re.search(r"Total FLOPs: (\S+ ?[KMG]?)", result.stdout)
    assert flops and flops.group(1).strip() not in ("0", ""), result.stdout[-3000:]


def test_a_sweep_job_resumed_alone_refreshes_the_sweeps_summary(tmp_path):
    """A sweep's job trained further on its own (hydra.run.dir=<job> ckpt_path=last, the README's
    form): the sweep's summary.csv gets its new numbers (it kept the first part's)."""
    fixture = write_fixture_dataset("flowers102", tmp_path / "data")
    result = _run_script(_small_sweep(fixture, tmp_path, "aug=none", "seed=0,1"), tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    (sweep,) = (tmp_path / "logs" / "multirun" / "train").iterdir()
    job = sweep / "0_seed=0"
    before = {r["job"]: r for r in csv.DictReader((sweep / "summary.csv").open())}
    assert before["0_seed=0"]["optimizer_steps"] == "1"  # 12 images, one batch an epoch
    args = [a for a in _small_sweep(fixture, tmp_path, "aug=none", "seed=0") if a != "--multirun"]
    resumed = _run_script(
        [*args, "trainer.max_epochs=2", "ckpt_path=last", f'hydra.run.dir="{job}"'], tmp_path
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert json.loads((job / "metrics.json").read_text())["optimizer_steps"] == 2
    after = {r["job"]: r for r in csv.DictReader((sweep / "summary.csv").open())}
    assert after["0_seed=0"]["optimizer_steps"] == "2"
    # The jobs' epochs differ now: a column says so; the other job's row is as it was.
    assert (after["0_seed=0"]["trainer.max_epochs"], after["1_seed=1"].pop("trainer.max_epochs")) == (
        "2",
        "1",
    )
    assert after["1_seed=1"] == before["1_seed=1"]


def test_a_sweep_launched_again_with_other_settings_keeps_the_earlier_record(tmp_path, capsys):
    """Extending a sweep in its folder (seed=3,4 after seed=0,1,2): Hydra overwrites multirun.yaml,
    the record of the launch, so the earlier one is kept beside it; the same command again (a
    resume with ckpt_path=auto) keeps nothing."""
    import yaml

    from diffusemix_bench.cli import keep_earlier_launch

    record = tmp_path / "multirun.yaml"
    record.write_text(yaml.safe_dump({"hydra": {"overrides": {"task": ["seed=0,1,2", "aug=mixup"]}}}))
    assert keep_earlier_launch(tmp_path, ["seed=0,1,2", "aug=mixup"]) is None and record.is_file()
    kept = keep_earlier_launch(tmp_path, ["seed=3,4", "aug=mixup"])
    assert kept is not None and kept.name.startswith("multirun.") and not record.exists()
    assert yaml.safe_load(kept.read_text())["hydra"]["overrides"]["task"] == ["seed=0,1,2", "aug=mixup"]
    assert f"earlier launch (seed=0,1,2 aug=mixup) is kept in {kept.name}" in capsys.readouterr().out
    assert keep_earlier_launch(tmp_path, ["seed=5"]) is None  # nothing to keep: Hydra writes it anew
    # The resume the sweep's advice gives (ckpt_path=auto added, the order changed) is the same launch.
    record.write_text(yaml.safe_dump({"hydra": {"overrides": {"task": ["seed=0,1", "aug=mixup"]}}}))
    assert keep_earlier_launch(tmp_path, ["aug=mixup", "seed=0,1", "ckpt_path=auto"]) is None


def test_a_refused_sweep_job_leaves_the_runs_record_of_its_command(tmp_path, monkeypatch):
    """Hydra rewrites a job folder's .hydra/ before the job starts: a job refused there (other
    settings than the finished run's) left the refused command as the record of the run's numbers.
    The run keeps a copy as it writes its settings, and a job that writes none puts it back."""
    from diffusemix_bench.training import locate

    run_dir = tmp_path / "0_seed=0"
    (run_dir / ".hydra").mkdir(parents=True)
    for name in ("config.yaml", "hydra.yaml", "overrides.yaml"):
        (run_dir / ".hydra" / name).write_text(f"{name} of the run\n")
    monkeypatch.setattr(locate, "_settings_written", set())
    locate.keep_command_record(run_dir)  # the run writes its settings
    monkeypatch.setattr(locate, "_settings_written", set())  # a later job, in another process
    for name in ("config.yaml", "overrides.yaml"):
        (run_dir / ".hydra" / name).write_text(f"{name} of the refused command\n")  # Hydra's rewrite
    assert locate.restore_command_record(run_dir)
    assert [(run_dir / ".hydra" / n).read_text() for n in ("config.yaml", "overrides.yaml")] == [
        "config.yaml of the run\n",
        "overrides.yaml of the run\n",
    ]
    # A job that trained in the folder (a resume): its own command is the record from then on.
    (run_dir / ".hydra" / "overrides.yaml").write_text("the resume's overrides\n")
    locate.keep_command_record(run_dir)
    assert not locate.restore_command_record(run_dir)
    assert (run_dir / ".hydra" / "overrides.yaml").read_text() == "the resume's overrides\n"
    assert (run_dir / ".hydra" / "run" / "overrides.yaml").read_text() == "the resume's overrides\n"
    # Through train.py's entry: a sweep's job refused before it writes settings puts the copy back.
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from diffusemix_bench import cli

    def refused(cfg):
        raise ConfigError("other settings than the run's")

    monkeypatch.setattr(locate, "_settings_written", set())
    monkeypatch.setattr(cli, "_run_train", refused)
    (run_dir / ".hydra" / "overrides.yaml").write_text("a refused command\n")
    cfg = compose_config(["seed=0"], return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.mode = RunMode.MULTIRUN
        cfg.paths.output_dir = str(run_dir)
    HydraConfig.instance().set_config(cfg)
    try:
        with pytest.raises(ConfigError):
            cli.run_train(cfg)
    finally:
        HydraConfig.instance().cfg = None
    assert (run_dir / ".hydra" / "overrides.yaml").read_text() == "the resume's overrides\n"


def test_sweep_job_folders_are_named_by_the_experiments_and_command_lines_sweeps(monkeypatch):
    """An experiment's sweep (hydra.sweeper.params) and the command line's own sweeps name a job's
    folder; fixed settings (the experiment, shortened epochs) and folder-valued ones do not."""
    from hydra.core.hydra_config import HydraConfig

    from diffusemix_bench.config import SWEPT_KEYS_ENV, swept_dirname

    task = ["experiment=table6", "trainer.max_epochs=2", "paths.data_dir=/x", "aug.lam=0.3"]
    task += ["dataset=flowers102", "aug=diffusemix", "seed=1"]
    cfg = compose_config(task, return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.overrides.task = task
    HydraConfig.instance().set_config(cfg)
    try:
        monkeypatch.delenv(SWEPT_KEYS_ENV, raising=False)
        assert swept_dirname() == "aug=diffusemix,dataset=flowers102,seed=1"
        monkeypatch.setenv(SWEPT_KEYS_ENV, "aug.lam,paths.data_dir")
        assert swept_dirname() == "aug.lam=0.3,aug=diffusemix,dataset=flowers102,seed=1"
        # A / in a swept value (logger.run_name=a/b,c/d) would nest the job's folder in another.
        named = compose_config([*task, "logger.run_name=a/b"], return_hydra_config=True)
        with open_dict(named):
            named.hydra.overrides.task = [*task, "logger.run_name=a/b"]
        HydraConfig.instance().set_config(named)
        monkeypatch.setenv(SWEPT_KEYS_ENV, "logger.run_name,seed")
        assert swept_dirname() == "aug=diffusemix,dataset=flowers102,logger.run_name=a_b,seed=1"
    finally:
        HydraConfig.instance().cfg = None


def _as_sweep_job(task: list[str], num: int, sweep: Path, override_dirname: str | None = None):
    """Hydra's running configuration as job ``num`` of a sweep in ``sweep`` given ``task`` sees it
    (set as the current one: clear it with ``HydraConfig.instance().cfg = None``); ``override_dirname``:
    Hydra's name of the job's overrides, where the test needs it."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    cfg = compose_config(task, return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.overrides.task = task
        cfg.hydra.job.num = num
        cfg.hydra.sweep.dir = str(sweep)
        cfg.hydra.mode = RunMode.MULTIRUN
        if override_dirname is not None:
            cfg.hydra.job.override_dirname = override_dirname
    HydraConfig.instance().set_config(cfg)
    return cfg


def _earlier_job(folder: Path, overrides: list[str]) -> Path:
    """A sweep job's folder as an earlier launch left it, for the parts that find it: the
    overrides it was given (``.hydra/overrides.yaml``) and its seed, 0."""
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    (folder / "config_resolved.yaml").write_text("seed: 0\n")
    return folder


def test_a_sweep_of_image_folders_gives_each_its_own_job_folder(tmp_path, monkeypatch):
    """dataset.root=a,b: a folder is left out of job folders' names, so both jobs had one name, and
    the second took the first's folder (Hydra rewrote its overrides.yaml, then the job was refused
    as a finished run). The name cannot tell them apart: the folder's record of the root does."""
    from hydra.core.hydra_config import HydraConfig

    from diffusemix_bench.config import SWEPT_KEYS_ENV, sweep_job_dirname

    sweep = tmp_path / "sweep"
    monkeypatch.setenv(SWEPT_KEYS_ENV, "dataset.root")

    def job(num: int, root: str) -> str:
        task = ["dataset=imagefolder", f"dataset.root={root}", "seed=0"]
        _as_sweep_job(task, num, sweep, override_dirname="dataset=imagefolder,seed=0")  # (the root left out)
        name = sweep_job_dirname()
        (sweep / name / ".hydra").mkdir(parents=True, exist_ok=True)
        (sweep / name / ".hydra" / "overrides.yaml").write_text("\n".join(f"- {o}" for o in task) + "\n")
        return name

    try:
        # Named by the folder's last part, as nothing else is swept (a path would nest folders).
        first, second = job(0, "/data/a"), job(1, "/data/b")
        assert (first, second) == ("0_dataset.root=a", "1_dataset.root=b")
        # Launched again: each job goes on in its own folder, whatever its number now; a new root
        # whose number's folder is another root's gets a number of its own.
        assert job(0, "/data/b") == second and job(1, "/data/a") == first
        assert job(0, "/other/b") == "0_dataset.root=b"  # (a last part two folders share: apart by number)
        # A launch from before these names (Hydra's, the same for each root): found by its record.
        older = tmp_path / "older"
        for num, root in enumerate(("/data/a", "/data/b")):
            _earlier_job(
                older / f"{num}_dataset=imagefolder,seed=0", ["dataset=imagefolder", f"dataset.root={root}"]
            )
        for num, root in enumerate(("/data/b", "/data/a")):
            task = ["dataset=imagefolder", f"dataset.root={root}", "seed=0"]
            _as_sweep_job(task, num, older, override_dirname="dataset=imagefolder,seed=0")
            assert sweep_job_dirname() == f"{1 - num}_dataset=imagefolder,seed=0", root
        # A key swept anew (aug=none dataset.root=a,b, then seed=0,1 added): each root's earlier
        # job is found by its record of the root (both matched by name, and the job trained again).
        again = tmp_path / "again"
        for num, root in enumerate(("/data/a", "/data/b")):
            _earlier_job(
                again / f"{num}_aug=none", ["dataset=imagefolder", "aug=none", f"dataset.root={root}"]
            )
        monkeypatch.setenv(SWEPT_KEYS_ENV, "aug,dataset.root,seed")
        for num, root in enumerate(("/data/b", "/data/a")):
            _as_sweep_job(["dataset=imagefolder", "aug=none", f"dataset.root={root}", "seed=0"], num, again)
            assert sweep_job_dirname() == f"{1 - num}_aug=none", root
    finally:
        HydraConfig.instance().cfg = None


def test_a_sweep_run_again_with_fewer_values_goes_on_in_its_jobs_own_folders(tmp_path, monkeypatch, capsys):
    """A job whose settings an earlier launch of the sweep folder ran under another number (seed=0,1,2,
    then seed=1,2) gets that job's folder, so ckpt_path=auto resumes or skips it instead of training
    it again in a new one; the summary line counts this launch's jobs and names the folder's others."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from diffusemix_bench.cli import SweepSummary
    from diffusemix_bench.config import SWEPT_KEYS_ENV, sweep_job_dirname

    sweep = tmp_path / "sweep"
    for seed in range(3):
        (sweep / f"{seed}_seed={seed}").mkdir(parents=True)
        (sweep / f"{seed}_seed={seed}" / "config_resolved.yaml").write_text(f"seed: {seed}\n")
    (sweep / "1_seed=1" / "metrics.json").write_text('{"val_top1": 50.0, "test_top1": 50.0}')
    monkeypatch.setenv(SWEPT_KEYS_ENV, "seed")

    def job(num: int, seed: int, *more: str):
        return _as_sweep_job(["dataset=flowers102", *more, f"seed={seed}"], num, sweep)

    try:
        job(0, 1)
        assert sweep_job_dirname() == "1_seed=1"  # the earlier launch's folder of seed=1
        job(1, 2)
        assert sweep_job_dirname() == "2_seed=2"
        job(1, 3)
        assert sweep_job_dirname() == "1_seed=3"  # new settings: a new folder
        job(2, 2)
        assert sweep_job_dirname() == "2_seed=2"  # its own number: its own folder
        # A key swept now that the earlier launch left at one value (aug=none,mixup, then seed=0,1
        # added): the earlier job that ran with that value is found (it trained again in a new
        # folder, and the report refused the seed's two runs).
        for k, aug in enumerate(("none", "mixup")):
            # (given alike but for the seed; ckpt_path, as the folders, changes nothing trained)
            folder = _earlier_job(sweep / f"{3 + k}_aug={aug}", ["dataset=flowers102", f"aug={aug}"])
            (folder / ".hydra" / "hydra.yaml").write_text(
                f"hydra:\n  runtime:\n    choices:\n      aug: {aug}\n"
            )
        monkeypatch.setenv(SWEPT_KEYS_ENV, "aug,seed")
        for num, (aug, seed, expected) in enumerate(
            [("none", 0, "3_aug=none"), ("mixup", 0, "4_aug=mixup"), ("none", 1, "2_aug=none,seed=1")]
        ):
            job(num, seed, f"aug={aug}", "ckpt_path=auto")
            assert sweep_job_dirname() == expected, (aug, seed)
        # An earlier launch given other settings (another rate, another experiment): not this job's.
        job(0, 0, "aug=none", "optim.lr=0.05")
        assert sweep_job_dirname() == "0_aug=none,seed=0"
        for k, aug in enumerate(("none", "mixup")):
            shutil.rmtree(sweep / f"{3 + k}_aug={aug}")  # (the summary below counts the seeds' folders)
        monkeypatch.setenv(SWEPT_KEYS_ENV, "seed")
    finally:
        HydraConfig.instance().cfg = None

    summary = SweepSummary()
    summary.planned = 2
    ended = {
        "mode": RunMode.MULTIRUN,
        "sweep": {"dir": str(sweep)},
        "runtime": {"output_dir": str(sweep / "1_seed=1")},
    }
    summary.on_job_end(OmegaConf.create({"hydra": ended}))
    line = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("sweep so far")][-1]
    assert line.startswith("sweep so far: 1 of 2 jobs: 1 finished, 0 failed, 0 diverged, 1 not run yet;")
    assert line.endswith("summary.csv lists 3 runs of the folder, earlier launches' included")
    # The job refused in that folder (its run finished by an earlier launch, this one without
    # ckpt_path=auto): the run is counted as it is, and the line says its job was refused.
    from hydra.core.utils import JobReturn, JobStatus

    refused = SweepSummary()
    refused.planned = 2
    refused.on_job_end(OmegaConf.create({"hydra": ended}), job_return=JobReturn(status=JobStatus.FAILED))
    line = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("sweep so far")][-1]
    assert line.startswith(
        "sweep so far: 1 of 2 jobs: 1 finished (1 of them an earlier run whose job this launch refused: "
        "1_seed=1), 0 failed, 0 diverged, 1 not run yet;"
    )


def test_experiment_group_is_the_experiments_folder():
    assert (CONF_DIR / "experiment").resolve() == (ROOT / "experiments").resolve()


EXPERIMENTS = sorted(p.stem for p in (ROOT / "experiments").glob("*.yaml"))


def _sweep(name: str) -> dict[str, list[str]]:
    """An experiment file's sweep, ``{setting: [values]}`` (empty for a single run)."""
    import yaml

    text = yaml.safe_load((ROOT / "experiments" / f"{name}.yaml").read_text())
    params = ((text.get("hydra") or {}).get("sweeper") or {}).get("params") or {}
    return {k: str(v).split(",") for k, v in params.items()}


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_experiment_runs_one_step(name, make_cfg):
    """Each experiment file trains one step with its sweep's first job (the first value of each
    swept setting) on fixture data."""
    first = [f"{k}={values[0]}" for k, values in _sweep(name).items()]
    cfg = make_cfg([f"experiment={name}", *first, "trainer.fast_dev_run=true"])
    if cfg.model.pretrained:
        # No hub here: the published weights' place is taken by a file of the same architecture.
        import torchvision
        from safetensors.torch import save_file

        weights = Path(cfg.paths.output_dir).parent / "pretrained.safetensors"
        save_file(getattr(torchvision.models, cfg.model.name)().state_dict(), str(weights))
        with open_dict(cfg):
            cfg.model.weights = str(weights)
    if cfg.aug.name == "diffusemix":
        from tests.test_diffusemix import fill_store

        fill_store(cfg)
    metrics = train(cfg)
    assert metrics["optimizer_steps"] >= 1
    assert metrics["experiment"] == cfg.experiment_name


@pytest.mark.parametrize("name", [n for n in EXPERIMENTS if _sweep(n)])
def test_each_table_lists_the_runs_it_needs(name):
    """``train.py --multirun experiment=<table> --cfg job`` lists the sweep: every combination of
    the swept values, each once; each run belongs to exactly one of the paper's rows, and every row
    that is not reported-only gets runs."""
    from diffusemix_bench.preflight import sweep_jobs
    from diffusemix_bench.reporting.paper import PaperTable

    sweep = _sweep(name)
    jobs = sweep_jobs([f"experiment={name}"], str(CONF_DIR))
    assert len(jobs) == math.prod(len(v) for v in sweep.values())
    assert len({tuple(sorted(job)) for job in jobs}) == len(jobs)
    # Three seeds per paper table; the demo's tour runs two.
    assert sorted(sweep["seed"]) == (["0", "1"] if name == "demo" else ["0", "1", "2"])
    cfg = compose_config([f"experiment={name}"])
    table = PaperTable.from_config(cfg, name)
    datasets = sweep.get("dataset", [cfg.dataset.name])
    assert table.columns == [c for c in table.columns if c in datasets]
    assert all(row.values or row.reported_only for row in table.rows)
    # One job per row-defining combination (seed 0, the first dataset): each composed as it runs.
    hit = set()
    for job in jobs:
        if "seed=0" not in job or ("dataset" in sweep and f"dataset={datasets[0]}" not in job):
            continue
        row = table.row_of(compose_config([f"experiment={name}", *job]))
        assert row is not None, f"{job} matches no row of the paper's table"
        assert row.label not in hit, f"{row.label}: two different runs match it"
        hit.add(row.label)
    assert hit == {row.label for row in table.rows if not row.reported_only}


@pytest.mark.slow  # long; the default suite stays under 15 minutes on 2 cores
def test_readme_table_command_lists_the_runs(tmp_path):
    result = run_entry("train.py", ["--multirun", "experiment=table5", "--cfg", "job"], tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert lines[0] == "81 runs:" and "dataset=cub aug=none seed=0 experiment=table5" in lines[1]
    assert list(tmp_path.iterdir()) == []  # nothing was run or written


def test_a_sweep_over_experiments_is_one_command_per_experiment(tmp_path):
    """``experiment=table5,table6``: Hydra reads a sweep's parameters before the jobs, with the
    swept group at its default, so each table ran once with its base settings (2 runs, not Table
    5's 81): refused with the commands that run each table's sweep (arguments quoted for the
    shell). Experiments without a sweep of their own, or a command line that gives every setting
    they sweep, may be swept."""
    for script in ("train.py", "generate.py"):
        result = run_entry(
            script,
            ["--multirun", "experiment=table5,table6", "seed=0", "paths.data_dir=/a b", "--cfg", "job"],
            tmp_path,
        )
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert (
            "experiment=table5,table6: a sweep over experiments runs each experiment once with its base settings, "
            "without its own sweep (table5 sweeps dataset, aug, seed; table6 sweeps dataset, aug, seed, in "
            "hydra.sweeper.params" in result.stderr
        )
        commands = (
            re.search(r"run one command per experiment: (.*)$", result.stderr, re.M).group(1).split("; ")
        )
        for name, command in zip(("table5", "table6"), commands, strict=True):
            words = shlex.split(command)
            assert words[1].endswith(script) and words[2:] == [
                "--multirun", f"experiment={name}", "seed=0", "paths.data_dir=/a b"
            ]  # fmt: skip
    for given in (
        ["experiment=diffusemix_official,diffusemix_official_first_release"],
        ["experiment=table5,table6", "dataset=flowers102", "aug=none", "seed=0"],  # every swept setting given
    ):
        result = run_entry("train.py", ["--multirun", *given, "--cfg", "job"], tmp_path)
        assert result.returncode == 0 and result.stdout.startswith("2 runs:"), result.stderr[-2000:]
    assert list(tmp_path.iterdir()) == []


def test_a_glob_sweep_is_listed_checked_and_run(tmp_path):
    """``aug=glob(*mix)`` (Hydra's sweep over the matching options of a group): the checks stopped
    with a traceback (a glob needs Hydra's config loader to expand); it is written out, so the
    listing, the checks and the sweep see the same options."""
    result = run_entry("train.py", ["--multirun", "aug=glob(*mixup)", "seed=0", "--cfg", "job"], tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.splitlines() == [
        "3 runs:",
        "  0: aug=comixup seed=0",
        "  1: aug=manifold_mixup seed=0",
        "  2: aug=mixup seed=0",
    ]
    result = run_entry("train.py", ["--multirun", "experiment=glob([table5,table6])"], tmp_path)
    assert result.returncode == 1 and "experiment=table5,table6: a sweep over experiments" in result.stderr
    for given, refused in (
        (
            "aug.lam=glob(*)",
            "aug.lam=glob(*): glob() sweeps over the options of a config group (aug=glob(*mix)), "
            "and aug.lam is a setting: give its values as a list, aug.lam=a,b,c",
        ),
        (
            "aug=glob(zz*)",
            "aug=glob(zz*): no option of conf/aug/ matches; its options are augmix, autoaugment",
        ),
    ):
        result = run_entry("train.py", ["--multirun", given], tmp_path)
        assert result.returncode == 1 and refused in result.stderr and "Traceback" not in result.stderr
    # Run: Hydra runs the options the glob matched.
    fixture = write_fixture_dataset("flowers102", tmp_path / "data")
    result = _run_script(_small_sweep(fixture, tmp_path, "aug=glob(mixu*)"), tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    (sweep,) = (tmp_path / "logs" / "multirun" / "train").iterdir()
    (job,) = [p for p in sweep.iterdir() if p.is_dir()]
    assert json.loads((job / "metrics.json").read_text())["aug"] == "mixup"


def test_a_glob_in_an_experiments_sweep_is_listed(tmp_path, capsys):
    """An experiment file whose ``hydra.sweeper.params`` holds a glob (``aug: glob(*mixup)``): the
    listing stopped with Hydra's "ConfigLoader is not set"; the glob is written out there too, in
    the experiment's order of sweeps, and the sweep's count of planned jobs is right."""
    from diffusemix_bench.cli import SweepSummary
    from diffusemix_bench.preflight import list_sweep

    conf = tmp_path / "conf"
    shutil.copytree(CONF_DIR, conf)
    (conf / "experiment" / "globbed.yaml").write_text(
        "# @package _global_\nexperiment_name: globbed\n"
        "hydra:\n  sweeper:\n    params:\n      aug: glob(*mixup)\n      seed: 0,1\n"
    )
    list_sweep(["experiment=globbed", "--cfg", "job"], str(conf))
    lines = capsys.readouterr().out.splitlines()
    assert lines[:3] == [
        "6 runs:",
        "  0: aug=comixup seed=0 experiment=globbed",
        "  1: aug=comixup seed=1 experiment=globbed",
    ]
    progress = SweepSummary()
    config = OmegaConf.create(
        {
            "task_name": "train",
            "hydra": {
                "sweeper": {"params": {"aug": "glob(*mixup)", "seed": "0,1"}},
                "overrides": {"task": ["experiment=globbed"]},
                "runtime": {"config_sources": [{"provider": "main", "path": str(conf), "schema": "file"}]},
                "sweep": {"dir": str(tmp_path / "sweep")},
            },
        }
    )
    progress.on_multirun_start(config)
    assert progress.planned == 6


@pytest.mark.parametrize(
    ("given", "refused"),
    [
        (["experiment=table1"], "experiment=table1: no such option in conf/experiment/; did you mean table9"),
        (["experiment=table6", "dataset.imag_size=40"], "did you mean image_size"),
        # A misspelt value later in a sweep: the listing shows what would run, so it is refused too.
        (["experiment=table6", "aug=none,snapmixx"], "aug=snapmixx: no such option in conf/aug/"),
        # A swept value of the wrong type: said in the settings' words (Hydra's own error, once its
        # job started, and a sweep folder left behind).
        (
            ["experiment=lambda", "aug.lam=0.1,O.3"],
            "aug.lam=O.3: aug.lam takes a number (such as 0.1 or 5e-4), not 'O.3'",
        ),
        # A swept value no run can use, later in the sweep: its range and choices, as its run's.
        (
            ["experiment=lambda", "aug.lam=0.1,1.5"],
            "the sweep's runs with aug.lam=1.5 are refused, so no job was started: aug.lam of aug=diffusemix must be in [0, 1]",
        ),
        (["experiment=lambda", "aug.masks=hv,vertcal"], "aug.masks of aug=diffusemix must be one of paper4"),
        (
            ["experiment=lambda", "generator.num_prompts=5,12"],
            "generator.num_prompts=12 but generator.prompts has 9",
        ),
        # A shared setting refused for one swept value alone: those runs, not "all the sweep's".
        (
            ["dataset=cub,cifar100", "dataset.resize=100"],
            "the sweep's runs with dataset=cub are refused, so no job was started: dataset.resize=100 is smaller",
        ),
        (
            ["dataset=cub,flowers102", "dataset.resize=100"],
            "all the sweep's runs (dataset.resize=100: every run's) are refused, so no job was started",
        ),
        # A setting of the swept arms that the default arm lacks: Hydra's base settings refused it.
        (
            ["experiment=table9", "arm=table9_hv,table9_paper4", "aug.seam_px=20"],
            "aug.seam_px=20 with a sweep over arm: Hydra composes the sweep's base settings before its jobs with "
            "the default option of each swept group, which has no aug.seam_px; give it as ++aug.seam_px=20",
        ),
    ],
)
def test_listing_a_sweep_checks_it_as_running_it_does(given, refused, capsys):
    """``--cfg job`` is how a user checks a sweep before running it: a misspelt name is the same
    one-line refusal (exit code 1) as the sweep gets, not a listing that includes it."""
    from diffusemix_bench.preflight import check_command_line, list_sweep

    with pytest.raises(SystemExit, match=re.escape(refused)):
        list_sweep(["--multirun", *given, "--cfg", "job"], str(CONF_DIR))
    assert "runs:" not in capsys.readouterr().out
    # The sweep itself: refused before any job starts.
    with pytest.raises(SystemExit, match=re.escape(refused)):
        check_command_line(["--multirun", *given, "paths.data_dir=/nowhere"], str(CONF_DIR), "config")


def test_listing_a_sweep_makes_the_methods_checks_of_every_job(capsys):
    """The listing makes the methods' own checks (those that build a method) of every job, the
    first included: a sweep refused at its first job's start was listed as fine."""
    from diffusemix_bench.preflight import list_sweep

    for given, refused in (
        (
            ["aug=none,mixup", "loss=jsd"],
            "the sweep's runs with aug=none are refused, so no job was started: "
            "loss=jsd needs three views per image",
        ),
        (
            ["aug=comixup", "aug.block_num=0", "seed=0,1"],
            "all the sweep's runs (aug.block_num=0: every run's) are refused, so no job was started: "
            "aug.block_num must be -1 (random) or >= 1, got 0",
        ),
        (["aug=augmix,mixup", "loss=jsd"], "the sweep's runs with aug=mixup are refused"),
    ):
        with pytest.raises(SystemExit, match=re.escape(refused)):
            list_sweep(["--multirun", *given, "--cfg", "job"], str(CONF_DIR))
        assert "runs:" not in capsys.readouterr().out
    list_sweep(["--multirun", "aug=augmix,diffusemix", "loss=jsd", "--cfg", "job"], str(CONF_DIR))
    assert capsys.readouterr().out.startswith("2 runs:")


def test_a_sweeps_hydra_settings_are_shown_with_cfg_hydra(capsys):
    """``--multirun ... --cfg hydra`` shows the sweep's Hydra settings (the SLURM launcher's, say),
    ``--cfg all`` the runs and those settings, ``--cfg job`` the runs alone."""
    from diffusemix_bench.preflight import list_sweep

    given = ["--multirun", "experiment=lambda", "hydra/launcher=slurm"]
    list_sweep([*given, "--cfg", "hydra"], str(CONF_DIR))
    out = capsys.readouterr().out
    assert "runs:" not in out and "SlurmLauncher" in out and "max_num_timeout:" in out
    list_sweep([*given, "--cfg=all"], str(CONF_DIR))
    out = capsys.readouterr().out
    assert out.startswith("18 runs:") and "SlurmLauncher" in out
    list_sweep([*given, "-c", "job"], str(CONF_DIR))
    out = capsys.readouterr().out
    assert out.startswith("18 runs:") and "SlurmLauncher" not in out
    with pytest.raises(SystemExit, match=r"--cfg jobs: give --cfg job"):
        list_sweep([*given, "--cfg", "jobs"], str(CONF_DIR))


def test_jsd_with_a_single_view_method_is_refused(make_cfg):
    with pytest.raises(ConfigError, match="three views"):
        train(make_cfg(["loss=jsd", "aug=none"]))


def test_loss_auto_resolves_to_the_method_loss(make_cfg):
    assert train(make_cfg(["aug=none"]))["loss"] == "ce"


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["aug=cutmix", "dataset=cifar100"], {"alpha": 1.0, "prob": 1.0, "box_rule": "puzzlemix"}),
        # Table 5's protocol (cub's default) picks SnapMix's from-scratch strengths.
        (["aug=snapmix", "dataset=cub", "model=resnet18"], {"alpha": 1.0, "prob": 0.5}),
        (["aug=cutmix", "dataset=tinyimagenet", "aug.prob=0.5"], {"alpha": 0.2, "prob": 0.5}),
        (["aug=augmix", "dataset=cifar100"], {"severity": 3, "width": 3}),
        (["aug=augmix", "dataset=flowers102"], {"severity": 1}),
        (["aug=autoaugment", "dataset=flowers102"], {"policy": "imagenet"}),
    ],
)
def test_metrics_name_the_settings_a_method_resolved(make_cfg, overrides, expected):
    settings = train(make_cfg(overrides))["aug_settings"]
    assert {k: settings[k] for k in expected} == expected


def test_fine_tune_from_own_checkpoint(make_cfg, tmp_path):
    """A checkpoint this framework wrote loads as model.weights (weights_only) into a new run."""
    first = train(make_cfg(["model=resnet18"], run_name="first"))
    metrics = train(
        make_cfg(["model=resnet18", f"model.weights={first['best_checkpoint']}"], run_name="second")
    )
    assert metrics["optimizer_steps"] >= 1


def test_module_trains_from_plain_loaders():
    """ClassifierModule also fits with loaders passed straight to Trainer.fit (no data module)."""
    import pytorch_lightning as pl
    from torch.utils.data import DataLoader, TensorDataset

    from diffusemix_bench.augment import create_aug
    from diffusemix_bench.config import LossConfig, OptimConfig, SchedConfig
    from diffusemix_bench.models import create_model
    from diffusemix_bench.training.module import ClassifierModule

    data = TensorDataset(
        torch.randint(0, 256, (8, 3, 16, 16), dtype=torch.uint8), torch.arange(8) % 2, torch.arange(8)
    )
    module = ClassifierModule(
        create_model("resnet18", 2),
        2,
        create_aug({"name": "none"}, 2),
        "ce",
        LossConfig(name="ce"),
        OptimConfig(lr=0.01),
        SchedConfig(name="step", step_size=1),
    )
    trainer = pl.Trainer(
        max_epochs=2,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
    )
    trainer.fit(module, train_dataloaders=DataLoader(data, batch_size=4))
    assert trainer.global_step == 4
    # 2 steps per epoch, decay every epoch: after 4 steps the schedule stands at the start of
    # epoch 2, i.e. lr x gamma^2 (it would be 0.01 x 0.1^4 if epochs were mistaken for steps).
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(1e-4)


def test_several_processes_evaluate_each_image_once(tmp_path):
    """Validation and test on several processes: each reads its own part of the split, unpadded
    (Lightning's DistributedSampler repeated images to even the parts out, counting them twice in
    the accuracy); a split with fewer images than processes is one message."""
    from types import SimpleNamespace

    from diffusemix_bench.data.datamodule import ImageDataModule

    fixture = write_fixture_dataset("flowers102", tmp_path / "data", per_class=5)  # 15 images a split
    cfg = compose_config(["dataset=flowers102"])
    point_at_fixture(cfg, fixture)
    dm = ImageDataModule(cfg.dataset, cfg.paths.data_dir, seed=0)
    dm.build()
    for world in (2, 4):
        parts = []
        for rank in range(world):
            dm.trainer = SimpleNamespace(world_size=world, global_rank=rank)
            for loader in (dm.val_dataloader(), dm.test_dataloader()):
                assert type(loader.sampler).__name__ == "UnrepeatedDistributedSampler"
            parts.append(list(dm.test_dataloader().sampler))
        assert sorted(i for part in parts for i in part) == list(range(15)), parts
    dm.trainer = SimpleNamespace(world_size=16, global_rank=0)
    with pytest.raises(ConfigError, match=r"the test split has 15 images, fewer than the 16 processes"):
        dm.test_dataloader()
    dm.trainer = None  # one process, and the robustness loader: the whole split in order
    assert list(dm.eval_loader(dm.test_set).sampler) == list(range(15))


def test_a_limited_evaluation_reads_the_classes_in_turn(tmp_path):
    """A batch limit reads the first batches of a split: in its own order (Flowers-102's setid.mat
    and every class-folder dataset are sorted by class) a tenth of it held a tenth of the classes,
    and the scores and the checkpoint chosen on them were those classes'. Limited, the split is
    read one class at a time in an order fixed by its labels alone (the same for every seed and
    process count); whole, in its own order."""
    from types import SimpleNamespace

    from diffusemix_bench.data.datamodule import ImageDataModule
    from diffusemix_bench.data.order import class_interleaved

    labels = [c for c in range(7) for _ in range(c + 2)]  # sorted by class, 2 to 8 images each
    order = class_interleaved(labels)
    assert sorted(order) == list(range(len(labels))) and order == class_interleaved(list(labels))
    assert [len({labels[i] for i in order[: 7 * k]}) for k in (1, 2)] == [7, 7]
    assert sorted(labels[i] for i in order[:14]) == sorted(list(range(7)) * 2)  # two of each class
    assert class_interleaved(labels, seed=1) != order

    fixture = write_fixture_dataset("flowers102", tmp_path / "data", per_class=5)  # 15 images a split
    cfg = compose_config(["dataset=flowers102", "dataset.eval_batch_size=3"])
    point_at_fixture(cfg, fixture)
    dm = ImageDataModule(cfg.dataset, cfg.paths.data_dir, seed=0)
    dm.build()
    assert sorted(dm.val_set.targets) == dm.val_set.targets  # the fixture's split is sorted by class
    for limit in (0.2, 1):  # a fraction of the batches, or a number of them
        dm.trainer = SimpleNamespace(
            world_size=1, global_rank=0, limit_val_batches=limit, limit_test_batches=1.0
        )
        first = next(iter(dm.val_dataloader()))
        assert sorted(first[1].tolist()) == [0, 1, 2], first[1]  # one image of each class
        assert list(dm.test_dataloader().sampler) == list(range(15))  # unlimited: the split's order
    parts = []
    for rank in range(2):
        dm.trainer = SimpleNamespace(
            world_size=2, global_rank=rank, limit_val_batches=1, limit_test_batches=1
        )
        loader = dm.val_dataloader()
        assert (
            type(loader.sampler).__name__ == "OrderedDistributedSampler" and len(loader.sampler) == 8 - rank
        )
        parts.append(list(loader.sampler))
    assert sorted(parts[0] + parts[1]) == list(range(15))
    assert [
        i for pair in zip(parts[0], parts[1] + [None]) for i in pair if i is not None
    ] == class_interleaved(dm.val_set.targets)


def test_a_limited_run_scores_the_classes_in_turn_and_overfit_its_first_batches(
    make_cfg, monkeypatch, caplog
):
    """Through a real training run: the batches Lightning's validation and test loops receive
    under a batch limit hold every class (the fixture's splits are sorted by class), and
    metrics.json says so; debug=overfit validates on the split's first batches during fit and
    after it alike (Lightning puts a sequential sampler in place of any other while it fits), and
    records that order."""
    from pytorch_lightning.callbacks import Callback

    from diffusemix_bench.training import run as run_module

    seen: dict[str, list[list[int]]] = {}

    class Record(Callback):
        def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
            if not trainer.sanity_checking:
                seen.setdefault("val", []).append(batch[1].tolist())

        def on_test_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
            seen.setdefault("test", []).append(batch[1].tolist())

    real = run_module.build_callbacks
    monkeypatch.setattr(run_module, "build_callbacks", lambda *a, **k: [*real(*a, **k), Record()])
    sizes = ["dataset=flowers102", "dataset.batch_size=3", "dataset.eval_batch_size=3"]
    limited = [*sizes, "trainer.limit_val_batches=1", "trainer.limit_test_batches=1"]
    metrics = train(make_cfg(limited, per_class=5))  # 15 images a split, 3 classes
    assert metrics["val_images_evaluated"] == metrics["test_images_evaluated"] == 3
    assert {tuple(sorted(b)) for b in seen["val"] + seen["test"]} == {(0, 1, 2)}, seen
    assert metrics["limited_eval_order"] == "classes interleaved"
    seen.clear()
    overfit = [*sizes, "trainer.overfit_batches=1", "trainer.limit_train_batches=null",
               "trainer.limit_val_batches=null", "trainer.max_epochs=2", "run_test=false"]  # fmt: skip
    with caplog.at_level("WARNING"):
        metrics = train(make_cfg(overfit, run_name="overfit", per_class=5))
    assert {tuple(b) for b in seen["val"]} == {(0, 0, 0)}, seen  # the first 3 images, every time
    assert metrics["limited_eval_order"] == "the split's own order"
    assert "enabled val dataloader shuffling" not in caplog.text


def test_a_mid_epoch_resume_on_another_number_of_processes_is_refused(tmp_path):
    """Each process skips the batches its own part of the epoch's order trained: resumed mid-epoch
    on another number of processes, the epoch's rest skipped or repeated images (24 images at
    batch 4, 2 batches on one process, resumed on two: 8 never trained). Refused with the number
    to resume on; an epoch-end checkpoint (0 batches into its epoch) may change it."""
    from types import SimpleNamespace

    from diffusemix_bench.data.datamodule import ImageDataModule

    fixture = write_fixture_dataset("flowers102", tmp_path / "data", per_class=5)
    cfg = compose_config(["dataset=flowers102", "dataset.batch_size=4", "dataset.num_workers=0"])
    point_at_fixture(cfg, fixture)
    dm = ImageDataModule(cfg.dataset, cfg.paths.data_dir, seed=0)
    dm.build()
    dm.trainer = SimpleNamespace(world_size=1, global_rank=0, overfit_batches=0, num_training_batches=4)
    dm.trainer.fit_loop = SimpleNamespace(
        epoch_loop=SimpleNamespace(batch_progress=SimpleNamespace(current=SimpleNamespace(processed=2)))
    )
    dm.trainer.current_epoch = 0
    saved = dm.state_dict()
    assert saved == {"train_epoch": 0, "train_batches": 2, "world_size": 1}
    dm.load_state_dict(saved)
    dm.trainer.world_size = 2
    with pytest.raises(
        ConfigError, match=r"2 batches into an epoch by 1 process, and this run has 2 .*Resume it on 1"
    ):
        dm.train_dataloader()
    dm.load_state_dict({"train_epoch": 1, "train_batches": 0, "world_size": 1})
    dm.train_dataloader()  # an epoch's end: any number of processes
    dm.load_state_dict({"train_epoch": 0, "train_batches": 2})  # a checkpoint that predates the record
    dm.train_dataloader()
    dm.trainer.world_size = 1
    dm.load_state_dict(saved)
    dm.train_dataloader()


def test_an_eval_fraction_that_leaves_a_process_no_batch_is_refused():
    """Several processes evaluate unpadded parts of a split, which may differ by a batch: a
    fraction of the batches that leaves one process none (Lightning stops it alone, the others
    wait) is refused with a number of batches to give instead."""
    from types import SimpleNamespace

    from diffusemix_bench.training.run import _check_eval_fractions

    cfg = OmegaConf.create({"dataset": {"eval_batch_size": None, "batch_size": 4}})
    data = SimpleNamespace(val_set=range(9), test_set=range(16))  # val: 5 and 4 images, 2 and 1 batches
    trainer = SimpleNamespace(world_size=2, limit_val_batches=0.5, limit_test_batches=0.5)
    with pytest.raises(
        ConfigError, match=r"trainer.limit_val_batches=0.5: with 2 processes .*trainer.limit_val_batches=1$"
    ):
        _check_eval_fractions(cfg, trainer, data)
    for fine in (
        SimpleNamespace(world_size=2, limit_val_batches=1.0, limit_test_batches=0.5),  # test: 2 and 2 batches
        SimpleNamespace(world_size=2, limit_val_batches=2, limit_test_batches=0.25),  # a count; 0 for both
        SimpleNamespace(world_size=1, limit_val_batches=0.5, limit_test_batches=0.5),
    ):
        _check_eval_fractions(cfg, fine, data)
    # A split not evaluated (run_test=false) is not refused for its fraction.
    untested = OmegaConf.create({"dataset": {"eval_batch_size": None, "batch_size": 4}, "run_test": False})
    odd = SimpleNamespace(val_set=range(16), test_set=range(9))
    _check_eval_fractions(
        untested, SimpleNamespace(world_size=2, limit_val_batches=1.0, limit_test_batches=0.5), odd
    )
    with pytest.raises(ConfigError, match="trainer.limit_test_batches=0.5"):
        _check_eval_fractions(
            cfg, SimpleNamespace(world_size=2, limit_val_batches=1.0, limit_test_batches=0.5), odd
        )


@pytest.mark.slow
def test_ddp_schedules_count_each_ranks_own_steps(tmp_path):
    """Two CPU ranks: each rank's epoch is its shard of the data, so an epoch-based milestone falls
    after that many steps, not after the length of the whole unsharded loader. Validation and test
    read each image once (15 images: Lightning's DistributedSampler padded them to 16, counting
    one twice in the accuracy): the test accuracy is the single-process clean accuracy of the
    same checkpoint. The attack after training gives each rank its own part of the split too,
    the counts summed: the same FGSM error as evaluate.py's attack of the whole split in one
    process; PGD's random starts, drawn per rank, are recorded as drawn by 2 processes."""
    import csv

    fixture = write_fixture_dataset("flowers102", tmp_path / "data", per_class=5)  # 15 images a split
    run = tmp_path / "run"
    result = _run_script(
        [
            "dataset=flowers102",
            "model=resnet18",
            f"paths.data_dir={fixture['data_dir']}",
            "dataset.image_size=32",
            "dataset.resize=36",
            "dataset.batch_size=4",
            "dataset.num_workers=0",
            "sched=multistep",
            "sched.milestones=[1]",
            "optim.lr=0.1",
            "trainer.accelerator=cpu",
            "trainer.devices=2",
            "trainer.strategy=ddp",
            "trainer.max_epochs=2",
            "trainer.log_every_n_steps=1",
            "callbacks.progress_bar=none",
            "eval.fgsm=true",
            "eval.pgd=true",
            "eval.pgd_steps=2",
            f"hydra.run.dir={run}",
        ],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    with open(run / "logs" / "metrics.csv") as fh:
        rows = [r for r in csv.DictReader(fh) if r.get("lr-SGD/all")]
    lrs = {int(r["step"]): float(r["lr-SGD/all"]) for r in rows}
    # 15 images over 2 ranks at batch 4: 2 steps per rank and epoch (the whole loader has 4).
    assert sorted(lrs) == [0, 1, 2, 3]
    assert [round(lrs[s], 6) for s in range(4)] == [0.1, 0.1, 0.01, 0.01]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["optimizer_steps"] == 4 and metrics["world_size"] == 2
    assert metrics["val_images_evaluated"] == metrics["test_images_evaluated"] == 15
    assert metrics["test_images"] == metrics["robust_images"] == 15 and not metrics["shortened_by"]
    assert metrics["test_top1"] == pytest.approx(100.0 - metrics["robust_clean_error"], abs=1e-3)
    assert metrics["robust_processes"] == 2 and metrics["robust_seed"] == metrics["seed"]
    # One process attacks the whole split: the same clean and FGSM errors. An FGSM-only result
    # keeps the PGD number beside it (its seed and processes too); a PGD of one process replaces them.
    one = run_entry("evaluate.py", [f"ckpt={run}", "eval.fgsm=true", "accelerator=cpu"], tmp_path)
    assert one.returncode == 0, one.stderr[-3000:]
    single = json.loads((run / "metrics.json").read_text())
    assert single["robust_images"] == 15
    for key in ("robust_clean_error", "fgsm_error", "pgd_error", "robust_processes"):
        assert single[key] == metrics[key], key
    one = run_entry(
        "evaluate.py", [f"ckpt={run}", "eval.pgd=true", "eval.pgd_steps=2", "accelerator=cpu"], tmp_path
    )
    assert one.returncode == 0, one.stderr[-3000:]
    single = json.loads((run / "metrics.json").read_text())
    assert "robust_processes" not in single and single["fgsm_error"] == metrics["fgsm_error"]


def test_each_rank_draws_its_own_main_process_randomness(monkeypatch):
    from types import SimpleNamespace

    from diffusemix_bench.augment import AugContext, create_aug
    from diffusemix_bench.training.module import ClassifierModule

    module = ClassifierModule(
        torch.nn.Linear(2, 3),
        3,
        create_aug({"name": "none"}, AugContext(num_classes=3, seed=5)),
        "ce",
        *(compose_config([])[k] for k in ("loss", "optim", "sched")),
    )

    def draws(world_size: int, rank: int) -> torch.Tensor:
        torch.manual_seed(5)  # as seed_everything leaves every rank
        fake = SimpleNamespace(world_size=world_size, global_rank=rank)
        monkeypatch.setattr(ClassifierModule, "trainer", property(lambda self: fake))
        module.on_fit_start()
        return torch.rand(4)

    # One device: the generator stays as seed_everything left it.
    assert torch.equal(draws(1, 0), torch.rand(4, generator=torch.Generator().manual_seed(5)))
    rank0, rank1 = draws(2, 0), draws(2, 1)
    assert not torch.equal(rank0, rank1)
    assert torch.equal(rank0, draws(2, 0)) and torch.equal(rank1, draws(2, 1))


def test_vanilla_steps_budget_gives_static_append_the_vanilla_run_s_optimiser_steps(make_cfg):
    """static_append makes an epoch 1 + P times longer; budget=vanilla_steps holds the steps equal
    to the vanilla run of the same protocol, and metrics.json says how many steps and images."""
    from tests.test_diffusemix import fill_store

    common = [
        "dataset=cifar100",
        "model=resnet18",
        "protocol=custom",
        "sched=multistep",
        "sched.milestones=[1]",
        "trainer.max_epochs=2",
        "trainer.limit_train_batches=null",
        "dataset.batch_size=4",
        "generator=tiny",
        "generator.num_prompts=2",
    ]
    vanilla = train(make_cfg(common + ["aug=none"], run_name="vanilla"))
    static = ["aug=diffusemix", "aug.mode=static_append"]
    longer_cfg = make_cfg(common + static, run_name="longer")
    fill_store(longer_cfg)
    longer = train(longer_cfg)
    equal = train(make_cfg(common + static + ["budget=vanilla_steps"], run_name="equal"))
    # originals + 2 prompts' composed copies, in batches of 4
    assert longer["optimizer_steps"] == 2 * math.ceil(3 * vanilla["train_images"] / 4)
    assert longer["optimizer_steps"] > vanilla["optimizer_steps"]
    assert equal["optimizer_steps"] == vanilla["optimizer_steps"]
    assert equal["budget"] == "vanilla_steps" and vanilla["budget"] == "epochs"
    assert vanilla["images_seen"] == 4 * vanilla["optimizer_steps"]  # full batches of 4
    assert vanilla["world_size"] == 1  # one process: the batch of a step is dataset.batch_size
    assert equal["images_seen"] == vanilla["images_seen"]


def test_vanilla_batches_count_as_the_datamodule_serves():
    from diffusemix_bench.training.module import vanilla_batches_per_epoch

    assert vanilla_batches_per_epoch(10, 4, False) == 3
    assert vanilla_batches_per_epoch(9, 4, False) == 2  # a last batch of one image is dropped
    assert vanilla_batches_per_epoch(10, 4, True) == 2
    # Each rank's last batch of one image is dropped, as the loader drops it (10 images on two
    # ranks: 5 each, one batch of 4; 202 on two: one batch of 100. The whole set's 10 % 4 and
    # 202 % 100 counted two).
    assert vanilla_batches_per_epoch(10, 4, False, world_size=2) == 1
    assert vanilla_batches_per_epoch(202, 100, False, world_size=2) == 1
    assert vanilla_batches_per_epoch(203, 100, False, world_size=2) == 2
    from torch.utils.data import DataLoader

    from diffusemix_bench.data.datamodule import drops_last_batch
    from diffusemix_bench.data.sampling import ResumableSampler

    for items, batch, world in ((10, 4, 2), (202, 100, 2), (203, 100, 2), (9, 4, 1), (13, 4, 3)):
        shard = -(-items // world)
        for rank in range(world):  # the training loader's shard and drop rule, per rank
            sampler = ResumableSampler(range(items), seed=0, batch_size=batch, num_replicas=world, rank=rank)
            loader = DataLoader(
                range(items),
                batch_size=batch,
                sampler=sampler,
                drop_last=drops_last_batch(shard, batch, False),
            )
            assert len(loader) == vanilla_batches_per_epoch(items, batch, False, world_size=world), (
                items,
                world,
            )
    assert vanilla_batches_per_epoch(100, 4, False, limit_train_batches=3) == 3
    assert vanilla_batches_per_epoch(100, 4, False, limit_train_batches=0.5) == 12


def test_unknown_budget_is_refused_at_start(make_cfg):
    with pytest.raises(ConfigError, match="budget must be"):
        train(make_cfg(["budget=same"]))


def test_the_dataset_and_eval_choices_checked_at_start_up_are_the_implementations():
    from diffusemix_bench.config import DatasetConfig, EvalConfig, choices_of
    from diffusemix_bench.data.transforms import TRAIN_TRANSFORMS
    from diffusemix_bench.training.evaluate import eval_split

    assert set(choices_of(DatasetConfig, "train_transform")) == set(TRAIN_TRANSFORMS)

    class Data:  # eval_split's view of a datamodule: the loader of the split it picks
        val_set, test_set = "val images", "test images"

        def eval_loader(self, dataset, batch_size, split=None, limited=False):
            return dataset

    for split in choices_of(EvalConfig, "split"):
        assert eval_split(OmegaConf.create({"split": split}), Data()) == f"{split} images"


@pytest.mark.parametrize(
    ("overrides", "setting"),
    [
        (["dataset.batch_size=0"], "dataset.batch_size"),
        (["trainer.max_epochs=-1"], "trainer.max_epochs"),
        (["optim.lr=0"], "optim.lr"),
        (["dataset.val_fraction=1.5"], "dataset.val_fraction"),
        (["dataset.samples_per_class=0"], "dataset.samples_per_class"),
        (
            ["model=timm"],
            "model.name needs a value (the config leaves it to the command line): give model.name=",
        ),
        (["seed=-1"], "seed must be in [0, 4294967295]"),
        (["aug=manifold_mixup", "model=resnet18"], "model=preactresnet18"),
        (["aug=diffusemix", "aug.lam=2"], "aug.lam of aug=diffusemix must be in [0, 1]"),
        (["aug=mixup", "aug.alpha=0"], "aug.alpha of aug=mixup must be > 0"),
        (["generator.steps=0"], "generator.steps must be in [1, 1000]"),
        (["generator.store_size=-1"], "generator.store_size must be auto"),
        (["dataset.image_size=0"], "dataset.image_size must be >= 1"),
        (["dataset.image_size=64"], "dataset.resize=32 is smaller than dataset.image_size=64: evaluation"),
        (
            ["dataset.image_size=64"],
            "crops larger than the pictures also need dataset.train_transform=resize_crop",
        ),
        (["dataset.num_workers=-1"], "dataset.num_workers must be >= 0"),
        (["eval.fgsm=true", "eval.split=foo"], "eval.split must be one of test, val"),
        (["eval.pgd=true", "eval.pgd_steps=0"], "eval.pgd_steps must be >= 1"),
        (["optim.weight_decay=-1"], "optim.weight_decay must be >= 0"),
        (["optim.momentum=2"], "optim.momentum must be in [0, 1]"),
        (["trainer.precision=bogus"], "trainer.precision must be one of 32-true, 32, 16-mixed"),
        (["float32_matmul_precision=bogus"], "float32_matmul_precision=bogus: one of highest, high, medium"),
        (["generator.num_prompts=12"], "generator.num_prompts=12 but generator.prompts has 9 prompts"),
        pytest.param(
            ["trainer=gpu"],
            "trainer.accelerator",
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU"),
        ),
    ],
)
def test_unusable_values_stop_at_start_naming_the_setting(overrides, setting, tmp_path):
    """Refused by train.py's entry before any data is read (the data folder here does not exist)."""
    from diffusemix_bench.cli import run_train

    cfg = finalize(compose_config([*overrides, f"paths.data_dir={tmp_path / 'none'}"]), tmp_path / "run")
    with pytest.raises(SystemExit, match=re.escape(setting)) as stop:
        run_train(cfg)
    assert "does not exist" not in str(stop.value) and "How to get it" not in str(stop.value)


def test_the_precisions_taken_are_lightnings():
    import typing

    from lightning_fabric.plugins.precision.precision import _PRECISION_INPUT

    from diffusemix_bench.config import PRECISIONS

    lightnings = set()
    for literal in typing.get_args(_PRECISION_INPUT):
        lightnings |= {str(v) for v in typing.get_args(literal)}
    assert set(PRECISIONS) == lightnings


@pytest.mark.slow  # the bad-input corpus runs this kind of case in the default suite
def test_unusable_value_through_train_py_is_one_message(tmp_path):
    result = run_entry("train.py", ["dataset.batch_size=0", f"paths.data_dir={tmp_path}"], tmp_path)
    assert result.returncode == 1
    assert "dataset.batch_size must be >= 1; got 0" in result.stderr and "Traceback" not in result.stderr


def test_progress_bar_off_in_the_trainer_wins_over_the_callback(make_cfg):
    """trainer.enable_progress_bar=false with a progress bar chosen in callbacks trains without one
    (Lightning refuses the pair)."""
    cfg = make_cfg(["trainer.enable_progress_bar=false", "callbacks.progress_bar=tqdm"])
    assert train(cfg)["optimizer_steps"] >= 1


def test_trainer_schema_lists_every_lightning_trainer_argument():
    """Every pl.Trainer argument is a trainer.<key> (those the framework owns excepted), and every
    trainer.<key> is a pl.Trainer argument."""
    import dataclasses
    import inspect

    import pytorch_lightning as pl

    from diffusemix_bench.config import TrainerConfig

    owned = {"self", "logger", "callbacks", "plugins", "default_root_dir", "enable_checkpointing"}
    accepted = set(inspect.signature(pl.Trainer.__init__).parameters) - owned
    assert {f.name for f in dataclasses.fields(TrainerConfig)} == accepted


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["overfit", "profiler", "limit"])
def test_debug_presets_train(make_cfg, preset, tmp_path):
    overrides = [f"debug={preset}", "dataset.batch_size=4", "dataset.eval_batch_size=1", "dataset.num_workers=0",
                 "dataset.image_size=32", "dataset.resize=36", "trainer.accelerator=cpu", "protocol=custom",
                 "optim=adamw", "sched=none"]  # fmt: skip
    if preset == "overfit":
        overrides.append("trainer.max_epochs=3")
    # Enough images that a tenth of an epoch is a whole batch.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        metrics = train(make_cfg(overrides, fast=False, per_class=40))
    assert metrics["optimizer_steps"] >= 1
    # The overfit preset's loader is sequential already: Lightning has nothing to swap or warn about.
    assert not [w for w in caught if "overfit" in str(w.message)]
    if preset == "overfit":
        # Two batches an epoch, validated on two batches: a whole number, not 200% of the split.
        assert metrics["shortened_by"]["overfit_batches"] == 2
        # (validated on two batches of dataset.eval_batch_size=1)
        assert metrics["optimizer_steps"] == 2 * 3 and metrics["val_images_evaluated"] == 2 * 1
    if preset == "profiler":
        assert "FIT Profiler Report" in (tmp_path / "run" / "fit-profiler.txt").read_text()
    if preset == "limit":
        assert metrics["shortened_by"]["limit_train_batches"] == 0.1
    if preset == "overfit":
        assert metrics["test_top1"] is None  # nothing is tested


def test_whole_numbers_of_batches_reach_lightning_as_counts(make_cfg, tmp_path):
    """trainer.overfit_batches=2 (debug=overfit) and limit_*_batches=2 are two batches: the schema
    types them float, and Lightning reads 2.0 as a fraction (it trained the whole split)."""
    from diffusemix_bench.training.run import build_trainer

    cfg = make_cfg(["debug=overfit", "trainer.limit_val_batches=3", "trainer.limit_test_batches=0.5"])
    trainer = build_trainer(cfg, tmp_path, [], False)
    for limit in (trainer.overfit_batches, trainer.limit_train_batches, trainer.limit_val_batches):
        assert limit == 2 and isinstance(limit, int), limit  # 2.0 would be a fraction
    assert trainer.limit_test_batches == 0.5


def test_an_added_setting_the_augmentation_lacks_lists_its_settings():
    from diffusemix_bench.config import validate_config

    with pytest.raises(
        ConfigError, match=r"^aug\.lam: aug=mixup has no setting 'lam' \(its settings: alpha, prob\)$"
    ):
        validate_config(compose_config(["aug=mixup", "+aug.lam=3"]))


def test_unknown_trainer_argument_is_one_message(make_cfg):
    with pytest.raises(
        ConfigError, match=r"^trainer\.profilr: 'trainer' has no setting 'profilr'; did you mean profiler\?$"
    ):
        train(make_cfg(["+trainer.profilr=simple"]))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["aug=diffuesmix"], "aug=diffuesmix: no such option in conf/aug/; did you mean diffusemix?"),
        (
            ["aug=diffusemix", "aug.lamda=0.3"],
            "aug.lamda: aug=diffusemix has no setting 'lamda'; did you mean lam?",
        ),
        (["datset=cub"], "did you mean dataset?"),
        # Nothing close: the choice's own settings are listed.
        (
            ["aug=mixup", "aug.lam=-1"],
            "aug.lam: aug=mixup has no setting 'lam' (its settings: alpha, prob)",
        ),
        # An augmentation not named on the command line: what chose it is said.
        (["aug.lam=0.5"], "aug.lam: aug=none (the default) has no setting 'lam'"),
        (["experiment=table2", "aug.lam=0.5"], "aug.lam: aug=none (the default) has no setting 'lam'"),
        (
            ["experiment=table7", "arm=fractal_only", "aug.bogus=1"],
            "aug.bogus: aug=diffusemix (chosen by experiment=table7 arm=fractal_only) has no setting 'bogus'",
        ),
        (["arm=mixup", "aug.lam=0.5"], "aug.lam: aug=mixup (chosen by arm=mixup) has no setting 'lam'"),
        # An experiment sweeping methods: the setting goes with the methods that have it.
        (
            ["experiment=table5", "aug.lam=0.3"],
            "; the experiment sweeps aug (none,randaugment,mixup,cutmix,snapmix,puzzlemix,comixup,guided_ap,"
            "diffusemix), and a setting of one method goes with that method: limit the sweep to the augs "
            "that have it (aug=<name> aug.lam=..., or for several aug=<name>,<name> ++aug.lam=...)",
        ),
        (
            ["experiment=table9", "aug.seam_px=20"],
            "limit the sweep to the arms that have it (arm=<name> aug.seam_px=..., or for several "
            "arm=<name>,<name> ++aug.seam_px=...)",
        ),
        # Methods swept on the command line (checked with the first): which have it, and how.
        (
            ["--multirun", "aug=none,mixup", "aug.alpha=0.4"],
            "aug.alpha: aug=none has no setting 'alpha'; of the methods swept (aug=none,mixup), aug=mixup "
            "has it: launch that with it (aug=mixup aug.alpha=0.4) and the others without, into the same "
            "hydra.sweep.dir",
        ),
        (
            ["--multirun", "aug=none,mixup", "aug.alpa=0.4"],
            "; no method of the sweep (aug=none,mixup) has it; did you mean aug.alpha?",
        ),
        (
            ["hydra/launcher=slurmm"],
            "hydra/launcher=slurmm: no such option in conf/hydra/launcher/; did you mean slurm?",
        ),
        (["hydra.sweep.dri=/x"], "hydra.sweep.dri: 'hydra.sweep' has no setting 'dri'; did you mean dir?"),
        (
            ["+experiment=table5"],
            "+experiment=table5: experiment is already chosen by the defaults, so '+' (add) does not apply; "
            "give experiment=table5",
        ),
        (
            ["experiment=experiments/table5.yaml"],
            "experiment=experiments/table5.yaml: give the option's name, not a path to its file; did you mean table5",
        ),
    ],
)
def test_misspelt_names_get_a_did_you_mean(args, message):
    from diffusemix_bench.preflight import preflight

    with pytest.raises(ConfigError) as info:
        preflight(args, str(CONF_DIR))
    assert message in str(info.value)
    preflight(["aug=diffusemix", "aug.lam=0.3", "trainer.profiler=simple"], str(CONF_DIR))


def test_data_refused_as_it_is_read_leaves_no_single_run_folder_and_a_failed_sweep_job(tmp_path):
    """An image folder found wrong while it is read (an empty class folder in train/): Hydra has
    made the run folder by then. A single run's folder is removed (a refused command makes none); a
    sweep job's keeps failure.json, so the sweep's summary counts it as failed."""
    from tests.conftest import run_entry

    root = tmp_path / "img"
    for name in ("a", "b"):
        (root / "train" / name).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (12, 12), (60 * i, 90, 200)).save(root / "train" / name / f"{i}.png")
    (root / "train" / "empty").mkdir()
    common = ["dataset=imagefolder", f"dataset.root={root}", "dataset.image_size=8", "dataset.resize=10",
              f"paths.cache_dir={tmp_path / 'cache'}"]  # fmt: skip
    single = run_entry("train.py", [*common, f"hydra.run.dir={tmp_path / 'run'}"], tmp_path)
    assert single.returncode == 1 and "empty" in single.stderr and "Traceback" not in single.stderr
    assert not (tmp_path / "run").exists()

    sweep = run_entry(
        "train.py", ["--multirun", *common, "seed=0", f"hydra.sweep.dir={tmp_path / 'sweep'}"], tmp_path
    )
    assert sweep.returncode == 1 and "Traceback" not in sweep.stderr
    (job,) = [p for p in (tmp_path / "sweep").iterdir() if p.is_dir()]
    failure = json.loads((job / "failure.json").read_text())
    assert failure["status"] == "failed" and "empty" in failure["error"]
    assert "0 finished, 1 failed" in sweep.stdout


@pytest.mark.parametrize(
    ("given", "typed"),
    [
        ("dataset.root=~/images", """'dataset.root="~/images"'"""),
        ("dataset.root=/runs/0_aug=none,seed=0", """'dataset.root="/runs/0_aug=none,seed=0"'"""),
        ("dataset.root=/data/josé", """'dataset.root="/data/josé"'"""),  # (unquoted: ASCII letters only)
    ],
)
def test_a_value_hydras_grammar_cannot_read_gets_the_quoted_form(given, typed):
    """A value with characters of Hydra's override grammar (~, = and , of a sweep job's folder) is
    one message with the quoted form, which Hydra then reads as the value given."""
    import shlex

    from hydra.core.override_parser.overrides_parser import OverridesParser

    from diffusemix_bench.preflight import preflight

    with pytest.raises(
        ConfigError, match=re.escape(f"Quote it for Hydra inside the shell's quotes: {typed}")
    ):
        preflight(["dataset=imagefolder", given], str(CONF_DIR))
    (parsed,) = OverridesParser.create().parse_overrides(shlex.split(typed))
    assert parsed.value() == given.partition("=")[2]


def test_a_list_hydras_grammar_cannot_read_gets_each_item_quoted():
    """A list with an item Hydra cannot read bare (letters outside ASCII): each item is quoted, the
    list left a list (the whole list quoted had been a string of brackets, refused in turn)."""
    import shlex

    from hydra.core.override_parser.overrides_parser import OverridesParser

    from diffusemix_bench.preflight import preflight

    typed = """'generator.prompts=["café au lait", snowy]'"""
    with pytest.raises(
        ConfigError, match=re.escape(f"quote each item for Hydra, inside the shell's quotes: {typed}")
    ):
        preflight(["generator.prompts=[café au lait, snowy]"], str(CONF_DIR), "generate")
    (parsed,) = OverridesParser.create().parse_overrides(shlex.split(typed))
    assert parsed.value() == ["café au lait", "snowy"]


@pytest.mark.parametrize("value", ["/runs/a_b-1.5", "/runs/josé", "/runs/0_aug=none,seed=0", "~/runs"])
def test_a_printed_setting_reads_back_as_its_value(value):
    """The commands messages print (resume, evaluate) give each path in a form Hydra's grammar reads
    back as that path, after the shell: letters outside ASCII quoted as well."""
    import shlex

    from hydra.core.override_parser.overrides_parser import OverridesParser

    from diffusemix_bench.commands import quoted_arg

    (parsed,) = OverridesParser.create().parse_overrides(shlex.split(quoted_arg("hydra.run.dir", value)))
    assert parsed.value() == value


@pytest.mark.parametrize(
    ("given", "swept"),
    [
        (["hydra.sweeper.params.seed=7"], "seed=7"),
        (["--multirun", "hydra.sweeper.params.seed=7,8", "--cfg", "job"], "seed=7,8"),
        (["--multirun", '+hydra.sweeper.params.seed="7,8"'], "seed=7,8"),
        (["hydra.sweeper.params={seed:7}"], "<setting>=<a>,<b>"),
    ],
)
def test_the_sweepers_params_on_the_command_line_get_the_setting_swept_itself(tmp_path, given, swept):
    """hydra.sweeper.params.<key> given on the command line (a traceback from Hydra on one run; a
    listing whose seeds were the experiment's): one message with the sweep of the setting itself."""
    result = run_entry("train.py", ["experiment=demo", f"dataset.root={tmp_path}", *given], tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert (
        "hydra.sweeper.params is where an experiment file lists its sweep; on the command line, sweep the "
        f"setting itself with --multirun ({swept}), which replaces the experiment's values of it"
        in result.stderr
    )
    assert "runs:" not in result.stdout


@pytest.mark.parametrize(
    ("given", "said"),
    [
        (["seed=0,0"], "error: jobs 0 and 1 of the sweep have the same settings ("),
        (["aug=none,mixup,none"], "error: jobs 0 and 2 of the sweep have the same settings ("),
        (
            ["seed=0,1", "hydra.sweep.subdir=x"],
            "error: hydra.sweep.subdir=x names the folder of every one of the "
            "sweep's 2 jobs alike: they would train into one folder",
        ),
    ],
)
def test_a_sweep_whose_jobs_share_a_folder_starts_no_job(tmp_path, given, said):
    """Two jobs of one folder (a value given twice, one subdir for all): the second was refused after
    the first had trained; now the sweep stops before any job, with no sweep folder."""
    from tests.fixtures.datasets import write_fixture_dataset

    data = write_fixture_dataset("cifar100", tmp_path / "data", per_class=2)["data_dir"]
    args = ["--multirun", f"paths.data_dir={data}", *FAST, f"hydra.sweep.dir={tmp_path / 'sweep'}", *given]
    result = run_entry("train.py", args, tmp_path)
    assert result.returncode == 1 and said in result.stderr, result.stderr[-2000:]
    assert "Traceback" not in result.stderr and not (tmp_path / "sweep").exists()
    listed = run_entry("train.py", [*args, "--cfg", "job"], tmp_path)  # (the listing is checked alike)
    assert listed.returncode == 1 and said in listed.stderr and "runs:" not in listed.stdout


@pytest.mark.parametrize(
    ("given", "said"),
    [
        (
            ["sched=step", "sched.gamma=-1"],
            "sched.gamma must be > 0; got -1.0",
        ),  # (a negative rate after a step)
        (["sched.warmup_epochs=-1"], "sched.warmup_epochs must be >= 0"),
        (["sched.min_lr_factor=5"], "sched.min_lr_factor must be in [0, 1]"),
        (["sched=step", "sched.step_size=0"], "sched.step_size must be >= 1"),  # (a division by zero)
        (["sched.name=linear"], "sched.name must be one of cosine, none, step, multistep; got 'linear'"),
        (["optim.name=rmsprop"], "optim.name must be one of sgd, adam, adamw; got 'rmsprop'"),
        # Lightning's trainer settings out of range: a ZeroDivisionError, or accepted and ignored.
        (["trainer.accumulate_grad_batches=0"], "trainer.accumulate_grad_batches must be >= 1; got 0"),
        (["trainer.gradient_clip_val=-1"], "trainer.gradient_clip_val must be >= 0 (or null: no clipping)"),
        (
            ["trainer.min_epochs=3", "trainer.max_epochs=1"],
            "trainer.min_epochs=3 is more than trainer.max_epochs=1",
        ),
        (
            ["optim=adamw", "protocol=custom", "optim.betas=[0.9]"],
            "optim.betas=[0.9]: give two numbers from 0 up to (not including) 1",
        ),
        (
            ["optim=adam", "protocol=custom", "optim.betas=[1.5,0.999]"],
            "optim.betas=[1.5, 0.999]: give two numbers",
        ),
        (
            ["sched.milestones=[0,5]"],
            "sched.milestones=[0, 5]: each is an epoch after which the learning rate",
        ),
        (
            ["sched=cosine", "sched.warmup_epochs=5", "trainer.max_epochs=2"],
            "sched.warmup_epochs=5.0 is as long as the run or longer (trainer.max_epochs=2)",
        ),
        (["loss.label_smoothing=1.5"], "loss.label_smoothing must be in [0, 1]"),
        (["loss.jsd_weight=-3"], "loss.jsd_weight must be >= 0"),
        (
            ["optim.momentum=0", "optim.nesterov=true"],
            "optim.nesterov=true needs momentum, and optim.momentum=0.0",
        ),
        (["aug=comixup", "aug.alpha=0"], "aug.alpha of aug=comixup must be > 0"),
        (["aug=puzzlemix", "aug.alpha=-1"], "aug.alpha of aug=puzzlemix must be >= 0"),
        (["model.mean=[0.5,0.5]"], "model.mean=[0.5, 0.5]: give three numbers, one per channel"),
        (["model.std=[0,1,1]"], "model.std=[0.0, 1.0, 1.0]: each channel's std must be above 0"),
        (
            ["model.mean=[128,128,128]"],
            "these are in 0-255 units; give them divided by 255 ([0.502, 0.502, 0.502])",
        ),
        (
            ["aug=mixup", "dataset.batch_size=1"],
            "aug=mixup mixes the images of a batch with each other, and "
            "dataset.batch_size=1 holds one image, mixed with itself alone: the run would train as aug=none",
        ),
        (["aug=puzzlemix", "dataset.batch_size=1"], "aug=puzzlemix mixes the images of a batch"),
        # Settings the chosen optimiser does not read: recorded, and silently without effect.
        (
            ["optim=adamw", "protocol=custom", "optim.nesterov=true"],
            "optim.nesterov=true is SGD's, and optim=adamw does not read it",
        ),
        (["optim=adamw", "protocol=custom", "optim.momentum=0.5"], "optim.momentum=0.5 is SGD's"),
        (["optim.betas=[0.5,0.9]"], "optim.betas=[0.5, 0.9] are Adam's, and optim=sgd does not read them"),
        # A builder's option misspelt: a TypeError's traceback after the data was read.
        (
            ["model=preactresnet18", "+model.kwargs.stem_strid=1"],
            "model.kwargs.stem_strid: model 'preactresnet18' "
            "has no option 'stem_strid' (its options: stem_stride, final_bn_relu); did you mean model.kwargs.stem_stride?",
        ),
        (
            ["model=resnet18", "+model.kwargs.x=1"],
            "model.kwargs.x: model 'resnet18' has no option 'x' (it takes none)",
        ),
        # A method's setting its chosen form does not read.
        (
            ["aug=yoco", "aug.alpha=0.3"],
            "aug.alpha=0.3 of aug=yoco is the mixing ratio of its mixup op, and aug.ops=['hflip'] runs none",
        ),
        (
            ["aug=puzzlemix", "aug.transport=false", "aug.t_eps=0.3"],
            "aug.t_eps=0.3 of aug=puzzlemix is the transport's, and aug.transport=false runs none",
        ),
        (
            ["aug=puzzlemix", "aug.adv_eps=5"],
            "aug.adv_eps=5.0 of aug=puzzlemix is the budget of its adversarial "
            "sources, and aug.adv_p=0 makes none",
        ),
    ],
)
def test_a_setting_no_run_can_train_with_is_refused_at_start(given, said):
    """Values of the optimiser, schedule, loss, normalisation and mixing settings that trained on
    unsaid (a negative learning rate after a step, inverted label smoothing) or stopped with a
    traceback after the data was read (a zero step size, nesterov without momentum, a Dirichlet
    of alpha 0): refused by the start-up checks, before any data or run folder."""
    from diffusemix_bench.augment.registry import check_aug_settings
    from diffusemix_bench.config import validate_config
    from diffusemix_bench.training.classifier import check_model

    cfg = compose_config(["dataset=cifar100", *given])
    with pytest.raises(ConfigError, match=re.escape(said)):
        validate_config(cfg)  # (train.py's quick_checks: the settings, then the data's folder,
        check_model(cfg)  # then the model and the method, before any data is read)
        check_aug_settings(cfg)


def test_the_batch_mixing_methods_are_those_whose_classes_mix_a_batch():
    """config.BATCH_MIXES (refused with one image per batch, before torch is imported) names the
    registry's methods built on the batch-mixing classes, and no other."""
    from diffusemix_bench.augment.mixing.batch_mix import MixingAugmentation
    from diffusemix_bench.augment.mixing.saliency_guided import CleanLossAugmentation
    from diffusemix_bench.augment.registry import aug_class, list_augs
    from diffusemix_bench.config import BATCH_MIXES

    bases = (MixingAugmentation, CleanLossAugmentation)
    assert {n for n in list_augs() if issubclass(aug_class(n), bases)} == set(BATCH_MIXES)


def test_a_sweep_without_its_data_starts_no_job(tmp_path):
    """``make table N=5`` before the datasets are there: one message naming the first missing
    dataset's folder and the others, exit code 1, no sweep folder (every job used to fail alike)."""
    result = run_entry(
        "train.py",
        [
            "--multirun",
            "experiment=table5",
            f"paths.data_dir={tmp_path / 'none'}",
            f"hydra.sweep.dir={tmp_path / 'sweep'}",
        ],
        tmp_path,
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert (
        "this sweep's data is not all there, so no job was started: Dataset 'cub' not found" in result.stderr
    )
    assert result.stderr.strip().endswith("Also missing for this sweep: aircraft, cars.")
    assert not (tmp_path / "sweep").exists() and "Launching" not in result.stdout + result.stderr


def test_a_sweep_value_the_method_refuses_starts_no_job(tmp_path):
    """A value only the method's own code can refuse (Co-Mixup's block_num=0), later in a sweep: refused before any job starts (it used to be refused
    when its job came up, after the others had trained)."""
    from diffusemix_bench.preflight import check_command_line

    data = write_fixture_dataset("cifar100", tmp_path / "data")["data_dir"]
    base = ["--multirun", "aug=comixup", f"paths.data_dir={data}", "seed=0,1"]
    with pytest.raises(SystemExit, match=re.escape(
        "the sweep's runs with aug.block_num=0 are refused, so no job was started: "
        "aug.block_num must be -1 (random) or >= 1, got 0"
    )):  # fmt: skip
        check_command_line([*base, "aug.block_num=4,0"], str(CONF_DIR), "config")
    check_command_line([*base, "aug.block_num=4,2"], str(CONF_DIR), "config")


def test_a_single_run_of_an_experiment_names_its_sweeps_dataset(capsys):
    """``train.py experiment=table6 aug=none`` (no --multirun) would train the config's default
    dataset, CIFAR-100, under Table 6's protocol: refused, naming the sweep's dataset; with the
    dataset named, the command passes the start-up checks."""
    from diffusemix_bench.preflight import check_command_line

    with pytest.raises(SystemExit, match=re.escape(
        "experiment=table6 runs on flowers102 (its sweep), and this single run would use the default "
        "dataset, cifar100: name one with dataset=flowers102, or run the whole sweep with --multirun"
    )):  # fmt: skip
        check_command_line(["experiment=table6", "aug=none"], str(CONF_DIR), "config")
    check_command_line(["experiment=table6", "aug=none", "dataset=flowers102"], str(CONF_DIR), "config")


def test_a_comma_without_multirun_gets_both_forms():
    """dataset.root=/data/a,b without --multirun: Hydra reads the comma as a sweep and answered
    with its own multi-line text; one line now gives the quoted form and the --multirun one."""
    from diffusemix_bench.preflight import check_command_line

    with pytest.raises(SystemExit, match=re.escape(
        "dataset.root=/data/a,b: Hydra reads a value with a comma as a sweep, and this command has "
        "no --multirun. For one value, quote it for Hydra: 'dataset.root=\"/data/a,b\"'; to run once per value, "
        "add --multirun"
    )):  # fmt: skip
        check_command_line(["dataset=imagefolder", "dataset.root=/data/a,b"], str(CONF_DIR), "config")
    # A list takes brackets; a group takes one option per run, a number no comma, a range is no
    # value: --multirun alone (quoting gave an option that does not exist, or a string seed).
    with pytest.raises(
        SystemExit, match=re.escape("For a list, give it in brackets: tags=[a,b]; to run once")
    ):
        check_command_line(["tags=a,b"], str(CONF_DIR), "config")
    for given in ("aug=none,mixup", "seed=0,1", "seed=range(0,3)"):
        with pytest.raises(
            SystemExit, match=re.escape(f"{given} is a sweep (one run per value), and this command")
        ):
            check_command_line([given], str(CONF_DIR), "config")


def test_the_sweep_line_names_the_first_stopped_jobs_and_counts_the_rest(tmp_path, capsys):
    """Eight failed jobs: the line after each job names five and counts the others (summary.csv
    lists them all), instead of every folder name."""
    import yaml

    from diffusemix_bench.cli import SweepSummary

    for i in range(8):
        job = tmp_path / f"{i}_aug=none,seed={i}"
        job.mkdir()
        (job / "config_resolved.yaml").write_text(yaml.safe_dump({"seed": i, "aug": {"name": "none"}}))
        (job / "failure.json").write_text(json.dumps({"status": "failed", "error": "boom"}))
    SweepSummary().write(tmp_path)
    line = capsys.readouterr().out.strip()
    assert "8 failed" in line
    assert line.endswith(
        "failed or diverged: 0_aug=none,seed=0, 1_aug=none,seed=1, 2_aug=none,seed=2, 3_aug=none,seed=3, "
        "4_aug=none,seed=4 and 3 more (summary.csv's status column)"
    ), line
    assert len(list(csv.DictReader((tmp_path / "summary.csv").open()))) == 8


def test_the_sweep_summary_has_a_column_per_setting_the_sweep_varies(tmp_path):
    """summary.csv names each job's swept settings in columns of their own (the keys whose overrides
    differ between jobs); settings every job shares, a resume's ckpt_path, how a job runs (workers)
    and Hydra's keys get none. A value is the one the job's saved settings hold (a refused resume leaves Hydra's rewritten
    overrides.yaml holding the refused value), a config group's choice the override itself."""
    import yaml

    from diffusemix_bench.reporting.sweeps import write_summary

    shared = ["experiment=table6", "trainer.max_epochs=2", "hydra.job.chdir=false", "+aug.extra=x"]
    jobs = {  # name: (overrides, saved aug.lam)
        "0_aug.lam=0.1,optim=sgd,seed=0": (
            [*shared, "aug.lam=0.1", "optim=sgd", "seed=0", "ckpt_path=auto", "dataset.num_workers=4"],
            0.1,
        ),
        "1_aug.lam=0.2,optim=adamw,seed=0": ([*shared, "aug.lam=0.3", "optim=adamw", "seed=0"], 0.2),
        "2_optim=sgd,seed=1": ([*shared, "optim=sgd", "seed=1"], 0.5),  # aug.lam: its default
    }
    for i, (name, (overrides, lam)) in enumerate(jobs.items()):
        job = tmp_path / name
        (job / ".hydra").mkdir(parents=True)
        (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
        saved = {"seed": i // 2, "aug": {"name": "diffusemix", "lam": lam}, "optim": {"name": "x", "lr": 0.1}}
        (job / "config_resolved.yaml").write_text(yaml.safe_dump(saved))
        (job / "metrics.json").write_text(json.dumps({"val_top1": 10.0 + i, "test_top1": 20.0}))
    rows = write_summary(tmp_path)
    with open(tmp_path / "summary.csv") as f:
        header = next(csv.reader(f))
    assert header[:4] == ["job", "aug.lam", "optim", "status"]  # seed has its own column already
    assert [(r["aug.lam"], r["optim"]) for r in rows] == [(0.1, "sgd"), (0.2, "adamw"), (0.5, "sgd")]
    assert [r["seed"] for r in csv.DictReader((tmp_path / "summary.csv").open())] == ["0", "0", "1"]
    assert [r["val_top1"] for r in rows] == [10.0, 11.0, 12.0]


def test_a_batch_of_one_that_batchnorm_cannot_normalise_is_one_message(make_cfg):
    """dataset.batch_size=1 with ResNet-18 at 32 px (its last feature map 1 x 1): PyTorch's
    BatchNorm error becomes a message naming the setting and the way out."""
    with pytest.raises(
        ConfigError, match=r"dataset\.batch_size=1: a BatchNorm layer of model=resnet18 .* >= 2"
    ):
        train(make_cfg(["model=resnet18", "dataset.batch_size=1"]))


def test_a_setting_refused_at_start_makes_no_run_folder(tmp_path):
    """loss=jsd with a method of one view per image is refused by train.py's start-up checks, with
    the methods that make JSD views, before a run folder is made (it was refused once training
    had begun, leaving a folder with failure.json)."""
    data = write_fixture_dataset("cifar100", tmp_path / "data", per_class=2)["data_dir"]
    result = _run_script(
        ["aug=mixup", "loss=jsd", f"paths.data_dir={data}", f"hydra.run.dir={tmp_path / 'run'}"], tmp_path
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert (
        "aug=mixup does not make them; use loss=ce or loss=auto, or an augmentation with JSD views (augmix, diffusemix, ipmix)"
        in result.stderr
    )
    assert not (tmp_path / "run").exists()


def test_a_methods_own_check_of_its_settings_runs_at_start_up(tmp_path, caplog):
    """A value only the method's implementation refuses (Co-Mixup's block_num=0: no schema check)
    is refused by the start-up checks, before data is read or a run folder made (it was refused
    once training had begun, leaving a folder with failure.json); a value it takes logs nothing
    there (the run's own build logs the resolved settings, once)."""
    from diffusemix_bench.cli import quick_checks

    data = write_fixture_dataset("cifar100", tmp_path / "data", per_class=1)["data_dir"]
    cfg = compose_config(["aug=comixup", "aug.block_num=0", f"paths.data_dir={data}"])
    with pytest.raises(ConfigError, match=r"^aug\.block_num must be -1 \(random\) or >= 1, got 0$"):
        quick_checks(cfg)
    cfg.aug.block_num = 4
    with caplog.at_level("INFO"):
        quick_checks(cfg)
    assert "aug=comixup" not in caplog.text


def test_a_sweep_jobs_stop_advice_is_the_sweeps_own_command_in_its_folder(tmp_path):
    """A job of a sweep that stops is told to go on with the whole sweep: its overrides and Hydra
    overrides from multirun.yaml (not Hydra's own mode), ckpt_path=auto, the sweep's folder; the
    subprocess test that runs the printed command is tests/test_resume.py (slow)."""
    import yaml
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from diffusemix_bench.cli import training_resume_advice

    sweep = tmp_path / "multirun 1"
    (sweep / "1_seed=1" / "checkpoints").mkdir(parents=True)
    (sweep / "1_seed=1" / "checkpoints" / "last.ckpt").write_bytes(b"")
    overrides = {"hydra": ["hydra/launcher=slurm", "hydra.mode=MULTIRUN"], "task": ["seed=0,1", "aug=mixup"]}
    (sweep / "multirun.yaml").write_text(yaml.safe_dump({"hydra": {"overrides": overrides}}))
    cfg = compose_config(["seed=1"], return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.sweep.dir = str(sweep)
        cfg.hydra.mode = RunMode.MULTIRUN
        cfg.paths.output_dir = str(sweep / "1_seed=1")
    HydraConfig.instance().set_config(cfg)
    try:
        advice = training_resume_advice(cfg, by_sigterm=True)
    finally:
        HydraConfig.instance().cfg = None
    assert advice.startswith("go on with the sweep in its folder: ")
    assert (
        f"--multirun hydra/launcher=slurm seed=0,1 aug=mixup ckpt_path=auto 'hydra.sweep.dir=\"{sweep}\"'"
        in advice
    ), advice
    assert "hydra.mode" not in advice
    assert (
        "this job (1_seed=1) goes on from its last checkpoint (written at the step the SIGTERM came in"
        in advice
    )


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_a_sweep_sent_to_other_machines_is_not_refused_for_this_ones_missing_gpu():
    """The sweep's values are checked before any job starts, but a SLURM sweep's jobs run on its
    nodes: trainer=gpu from a login node without a GPU is taken there, refused for a local sweep."""
    from diffusemix_bench.preflight import check_sweep_values

    jobs = [["trainer=gpu", "seed=0"], ["trainer=gpu", "seed=1"]]
    check_sweep_values(jobs, str(CONF_DIR), "config", "slurm")
    with pytest.raises(ConfigError, match=r"trainer\.accelerator=gpu .* but this machine has no CUDA GPU"):
        check_sweep_values(jobs, str(CONF_DIR), "config")


def test_the_sweep_summary_says_null_settings_cut_short_jobs_and_attacks_only_where_measured(tmp_path):
    """summary.csv: a swept setting left at its null default reads ``null`` (it was an empty cell, as
    a value not known is; settings saved without the key give the override as written); a job cut short (debug=fast: metrics.json's
    shortened_by) says what cut it in ``shortened_by``; no job attacked: no fgsm_error column."""
    import yaml

    from diffusemix_bench.reporting.sweeps import write_summary

    jobs = {  # name: (saved samples_per_class, shortened_by)
        # (its default; shortened_by as a run with a batch and a time limit records it)
        "0_seed=0": (None, {"limit_train_batches": 2, "max_time": {"hours": 1}}),
        "1_dataset.samples_per_class=5": (5, None),
        "2_dataset.samples_per_class=7": ("unsaved", None),
    }
    for name, (per_class, shortened) in jobs.items():
        job = tmp_path / name
        (job / ".hydra").mkdir(parents=True)
        (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump([name.partition("_")[2]]))
        saved = {
            "seed": 0,
            "aug": {"name": "none"},
            "dataset": {"name": "cub", "samples_per_class": per_class},
        }
        if per_class == "unsaved":  # (settings saved without the key: the override as given)
            del saved["dataset"]["samples_per_class"]
        (job / "config_resolved.yaml").write_text(yaml.safe_dump(saved))
        metrics = {"val_top1": 1.0, **({"shortened_by": shortened} if shortened else {})}
        (job / "metrics.json").write_text(json.dumps(metrics))
    write_summary(tmp_path)
    rows = list(csv.DictReader((tmp_path / "summary.csv").open()))
    assert [r["dataset.samples_per_class"] for r in rows] == ["null", "5", "7"]
    assert [r["shortened_by"] for r in rows] == [
        "trainer.limit_train_batches=2; trainer.max_time={hours:1}",
        "",
        "",
    ]
    assert list(rows[0])[-2:] == ["shortened_by", "reason"]
    assert not any(k.endswith("_error") for k in rows[0])
    # No job cut short: no such column either.
    (tmp_path / "0_seed=0" / "metrics.json").write_text('{"val_top1": 1.0}')
    write_summary(tmp_path)
    assert "shortened_by" not in (tmp_path / "summary.csv").read_text()


def test_the_sweep_summary_compares_a_folder_as_the_place_it_names(tmp_path):
    """A sweep launched again from another folder with the same image folder written another way
    (``dataset.root=data`` from /x, then ``dataset.root=/x/data``): one folder, so no column says
    the jobs differ in it; a job on another folder does get the column, its value as given."""
    import yaml

    from diffusemix_bench.reporting.sweeps import write_summary

    def jobs(roots: list[str]) -> None:
        for i, root in enumerate(roots):
            job = tmp_path / f"{i}_seed={i}"
            (job / ".hydra").mkdir(parents=True, exist_ok=True)
            (job / ".hydra" / "overrides.yaml").write_text(
                yaml.safe_dump([f"dataset.root={root}", f"seed={i}"])
            )
            runtime = {"hydra": {"runtime": {"cwd": "/x"}}}
            (job / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump(runtime))
            saved = {"seed": i, "aug": {"name": "none"}, "dataset": {"name": "imagefolder", "root": root}}
            (job / "config_resolved.yaml").write_text(yaml.safe_dump(saved))
            (job / "metrics.json").write_text(json.dumps({"val_top1": 1.0}))

    jobs(["data", "data", "/x/data"])
    write_summary(tmp_path)
    assert "dataset.root" not in (tmp_path / "summary.csv").read_text()
    jobs(["data", "data", "/y/data"])
    write_summary(tmp_path)
    rows = list(csv.DictReader((tmp_path / "summary.csv").open()))
    assert [r["dataset.root"] for r in rows] == ["data", "data", "/y/data"]


def test_the_sweep_summary_lists_jobs_in_the_order_of_their_numbers(tmp_path):
    """summary.csv of an eleven-job sweep: job 2 before job 10 (names sorted as text put 10 first)."""
    import yaml

    from diffusemix_bench.reporting.sweeps import write_summary

    for n in (0, 1, 2, 10):
        job = tmp_path / f"{n}_seed={n}"
        (job / ".hydra").mkdir(parents=True)
        (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump([f"seed={n}"]))
        (job / "config_resolved.yaml").write_text(yaml.safe_dump({"seed": n}))
        (job / "metrics.json").write_text(json.dumps({"val_top1": float(n)}))
    assert [r["job"] for r in write_summary(tmp_path)] == ["0_seed=0", "1_seed=1", "2_seed=2", "10_seed=10"]
    assert "top5_k" not in (tmp_path / "summary.csv").read_text()  # no job says its top-5 is another top-k


def test_a_sweep_summary_says_when_top5_is_top_k_of_fewer_classes(tmp_path):
    """A dataset of 3 classes measures top-3 in test_top5 (metrics.json's top5_k): the sweep's
    summary.csv gives top5_k beside it, not a column that reads as top-5."""
    import yaml

    from diffusemix_bench.reporting.sweeps import write_summary

    for n, k in ((0, 3), (1, None)):  # job 1 has not finished: no metrics.json
        job = tmp_path / f"{n}_seed={n}"
        (job / ".hydra").mkdir(parents=True)
        (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump([f"seed={n}"]))
        (job / "config_resolved.yaml").write_text(yaml.safe_dump({"seed": n}))
        if k is not None:
            (job / "metrics.json").write_text(
                json.dumps({"test_top1": 50.0, "test_top5": 100.0, "top5_k": k})
            )
    write_summary(tmp_path)
    rows = list(csv.DictReader((tmp_path / "summary.csv").open()))
    header = list(rows[0])
    assert header[header.index("test_top5") + 1] == "top5_k"
    assert [(r["test_top5"], r["top5_k"]) for r in rows] == [("100.0", "3"), ("", "")]


def test_a_sweep_of_generate_py_gets_no_training_summary(tmp_path, capsys):
    """generate.py's config holds the training's, its sweep-summary callback too: a generation sweep
    printed "sweep so far: 0 of 2 jobs: 0 finished" and wrote a training summary.csv of its jobs."""
    from hydra.types import RunMode

    from diffusemix_bench.cli import SweepSummary

    for task, written in (("generate", False), ("train", True)):
        sweep = tmp_path / task
        (sweep / "0_seed=0").mkdir(parents=True)
        config = OmegaConf.create(
            {
                "task_name": task,
                "hydra": {
                    "mode": RunMode.MULTIRUN,
                    "sweep": {"dir": str(sweep)},
                    "runtime": {"output_dir": str(sweep / "0_seed=0")},
                },
            }
        )
        SweepSummary().on_job_end(config)
        assert (sweep / "summary.csv").is_file() is written
        assert ("sweep so far" in capsys.readouterr().out) is written


def test_a_sweep_whose_job_met_a_corrupt_image_ends_without_a_traceback(tmp_path):
    """Sweep jobs stopped by a corrupt image that loader workers read (the validation holdout's, in
    the sanity check): the sweep ends with exit code 1 and the message. The failed loops' workers are
    killed at exit, which PyTorch's SIGCHLD handler used to report as a traceback after it."""
    import sys

    import numpy as np

    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        (tmp_path / "data" / "train" / name).mkdir(parents=True)
        for i in range(4):
            pixels = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "data" / "train" / name / f"{i}.png")
    bad = tmp_path / "data" / "train" / "a" / "2.png"
    bad.write_bytes(b"this is not an image")
    done = subprocess.run(
        [
            sys.executable,
            "train.py",
            "--multirun",
            "dataset=imagefolder",
            f"dataset.root={tmp_path / 'data'}",
            "model=resnet18",
            "dataset.image_size=16",
            "dataset.num_workers=2",
            "logger=none",
            "trainer.max_epochs=1",
            "callbacks.progress_bar=none",
            "seed=0,1",
            f"paths.cache_dir={tmp_path / 'cache'}",
            f"hydra.sweep.dir={tmp_path / 'sweep'}",
        ],
        cwd=Path(__file__).resolve().parents[1],
        env=dict(os.environ, OMP_NUM_THREADS="1"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1, done.stderr[-3000:]
    assert f"Could not decode image {bad}" in done.stderr and "Traceback" not in done.stderr, done.stderr[
        -3000:
    ]
    assert "0 finished, 2 failed" in done.stdout + done.stderr


def test_wandb_mode_is_the_setting_then_the_key_and_an_unmet_wandb_mode_is_told(
    monkeypatch, tmp_path, caplog
):
    from diffusemix_bench.training import run

    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    with caplog.at_level("WARNING"):
        assert run.wandb_mode(None) == "offline"
    assert "WANDB_MODE=online" not in caplog.text
    monkeypatch.setenv("WANDB_MODE", "online")  # asked for, no key here: said why it is offline
    with caplog.at_level("WARNING"):
        assert run.wandb_mode(None) == "offline"
    assert "no wandb API key was found here" in caplog.text and "logger.mode=online" in caplog.text
    assert run.wandb_mode("online") == "online"  # logger.mode decides
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert run.wandb_mode(None) == "online"


def test_wandb_online_without_a_key_stops_in_one_line(monkeypatch, tmp_path):
    """logger.mode=online where wandb finds no API key: wandb refuses to start its run inside
    training's setup; train.py says so in one line with the ways on (log in, or log offline and
    sync later), exit 1, no traceback."""
    pytest.importorskip("wandb")
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc, no ~/.config/wandb
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    fixture = write_fixture_dataset("flowers102", tmp_path / "data")
    args = [
        "dataset=flowers102",
        f"paths.data_dir={fixture['data_dir']}",
        "debug=fast",
        "logger=wandb",
        "logger.mode=online",
        f"hydra.run.dir={tmp_path / 'run'}",
    ]
    result = _run_script(args, tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert "logger=wandb: wandb could not start this run online (No API key configured." in result.stderr
    assert "logger.mode=offline" in result.stderr and "wandb login" in result.stderr
    # (nor wandb's warning about a setting Lightning hands it unasked, that no setting here changes)
    assert "anonymous setting" not in result.stdout + result.stderr


def test_a_sweep_listing_notes_what_would_stop_the_sweep(tmp_path, capsys):
    """A table's listing before its data is downloaded or its edits generated lists the runs (exit
    0, nothing written) and notes what the sweep itself would stop on, with the command that makes
    the edits: learning it only when the sweep starts is too late."""
    from diffusemix_bench.preflight import list_sweep

    fixture = write_fixture_dataset("flowers102", tmp_path / "data")
    listing = ["--multirun", "experiment=table6", f"paths.cache_dir={tmp_path / 'cache'}", "--cfg", "job"]
    list_sweep([*listing, f"paths.data_dir={tmp_path / 'nothing'}"], str(CONF_DIR))
    shown = capsys.readouterr()
    assert shown.out.startswith("18 runs:")
    assert shown.err.startswith(
        "note: the 18 runs are listed, but running the sweep now would stop before its first job: this "
        "sweep's data is not all there: Dataset 'flowers102' not found"
    )
    assert "no job was started" not in shown.err  # (the listing ran nothing anyway)
    result = run_entry("train.py", [*listing, f"paths.data_dir={fixture['data_dir']}"], tmp_path)
    assert result.returncode == 0 and result.stdout.startswith("18 runs:"), result.stderr[-2000:]
    assert (
        "note: the 18 runs are listed, but running the sweep now would stop before its first job: this sweep's "
        "DiffuseMix edits are not all there." in result.stderr
    )
    assert "generate.py dataset=flowers102" in result.stderr and "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]  # nothing was run or written
    # generate.py's listing notes its data missing too (it noted nothing; its sweep then stopped).
    made = run_entry(
        "generate.py",
        ["--multirun", "dataset=flowers102,cub", "generator=tiny", f"paths.data_dir={tmp_path / 'nothing'}",
         "--cfg", "job"],
        tmp_path,
    )  # fmt: skip
    assert made.returncode == 0 and made.stdout.startswith("2 runs:"), made.stderr[-2000:]
    assert made.stderr.startswith(
        "note: the 2 runs are listed, but running the sweep now would stop before its first job: this "
        "sweep's data is not all there: Dataset 'flowers102' not found"
    )
    assert "Also missing for this sweep: cub." in made.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_summary_csv_gives_the_heads_own_learning_rate(make_cfg, tmp_path, caplog):
    """optim.head_lr gives the classifier head its own rate: summary.csv's lr is the backbone's
    (the first group), head_lr the head's (empty without one). A file from before the column was
    added is written anew with it on the next epoch's row, not appended to under another header.
    After its first epoch a run says how long the rest will take (once)."""
    from diffusemix_bench.training.summary import FIELDS, EpochSummary

    with caplog.at_level("INFO", logger="diffusemix_bench.training.summary"):
        metrics = train(
            make_cfg(["model=resnet18", "optim.lr=0.01", "optim.head_lr=0.1", "trainer.max_epochs=3"])
        )
    told = [r.getMessage() for r in caplog.records if "left will take about" in r.getMessage()]
    assert len(told) == 1, told
    # (a time under 10 s to a tenth: a small run's epoch "took 0 s")
    took = r"(\d\.\d|[1-5]\d) s"
    assert re.match(
        rf"epoch 0 took {took}: the 2 epochs left will take about {took} at this pace", told[0]
    ), told
    rows = list(csv.DictReader((tmp_path / "run" / "summary.csv").open()))
    assert len(rows) == metrics["epochs"] == 3
    for row in rows:  # (one schedule scales both alike)
        assert float(row["head_lr"]) == pytest.approx(10 * float(row["lr"])), row
    plain = train(make_cfg(["model=resnet18", "optim.lr=0.01"], run_name="plain"))
    rows = list(csv.DictReader((tmp_path / "plain" / "summary.csv").open()))
    assert plain["epochs"] == len(rows) and {r["head_lr"] for r in rows} == {""}
    old = tmp_path / "old.csv"
    old.write_text("epoch,step,lr,train_loss\n0,5,0.1,2.3\n")
    kept = EpochSummary(old)._rows_before(1)
    assert kept == [{"epoch": "0", "step": "5", "lr": "0.1", "train_loss": "2.3"}] and "head_lr" in FIELDS


def test_a_resume_of_a_method_without_edits_ignores_the_generator_and_the_cache_folders(tmp_path):
    """The generator's settings play no part in a run of a method that reads no edits: a resume
    of such a run without them (generator=tiny left out) is not refused for them, while a
    DiffuseMix run's resume is. Where paths.cache_dir (or DIFFUSEMIX_CACHE) puts the fractal bank
    and the edit stores is where things are, as paths.* are."""
    from diffusemix_bench.training.resume import settings_differ

    for aug, refused in (("none", False), ("diffusemix", True)):
        saved = finalize(
            compose_config([f"aug={aug}", "generator=tiny", f"paths.cache_dir={tmp_path / 'a'}"]), tmp_path
        )
        path = tmp_path / f"{aug}.yaml"
        path.write_text(OmegaConf.to_yaml(saved, resolve=True))
        now = finalize(compose_config([f"aug={aug}", f"paths.cache_dir={tmp_path / 'b'}"]), tmp_path)
        differ = settings_differ(now, path)
        assert any(d.startswith("generator.name: 'tiny' -> 'ip2p'") for d in differ) is refused, differ
        assert not any(d.startswith(("fractals.cache_dir", "generator.edits_dir")) for d in differ), differ
    # (another method is still another method)
    mixup = finalize(compose_config(["aug=mixup"]), tmp_path)
    assert any(d.startswith("aug.name") for d in settings_differ(mixup, tmp_path / "none.yaml"))


def test_a_fraction_of_batches_that_keeps_none_is_refused_before_the_method_is_built(make_cfg, tmp_path):
    """debug=limit's tenth of a small split is no batch: Lightning refused it when training
    started, after the fractal bank was made (half a minute of a sweep's every job); refused
    before, with a number of batches to give instead."""
    cfg = make_cfg(["aug=pixmix", "dataset.batch_size=4", "trainer.limit_train_batches=0.1"])
    with pytest.raises(ConfigError) as refused:
        train(cfg)
    assert str(refused.value).startswith("trainer.limit_train_batches=0.1: 0.1 of the ")
    assert (
        "give a number of batches instead, trainer.limit_train_batches=1, or a fraction of at least"
        in str(refused.value)
    )
    assert not (tmp_path / "cache" / "fractals").exists()  # nothing built for the method


def test_an_epoch_shorter_than_the_logging_interval_logs_its_step_loss(make_cfg, caplog):
    """Three batches an epoch against log_every_n_steps=50 (a small image folder): no step loss was
    logged in most epochs, and Lightning warned; the interval becomes the epoch's batches, said."""
    import csv
    import warnings

    from diffusemix_bench.training.run import train

    cfg = make_cfg(["dataset=imagefolder", "trainer.max_epochs=2", "trainer.log_every_n_steps=50",
                    "trainer.limit_train_batches=null"])  # fmt: skip
    with warnings.catch_warnings(record=True) as caught, caplog.at_level("INFO"):
        warnings.simplefilter("always")
        metrics = train(cfg)
    steps = metrics["optimizer_steps"] // 2
    assert f"trainer.log_every_n_steps=50 is more than an epoch's {steps} optimiser steps" in caplog.text
    assert not [w for w in caught if "logging interval" in str(w.message)]
    text = (Path(cfg.paths.output_dir) / "logs" / "metrics.csv").read_text()
    rows = list(csv.DictReader(text.splitlines()))
    assert [int(r["step"]) for r in rows if r["train/loss_step"]] == [steps - 1, 2 * steps - 1]


def test_multirun_may_come_after_some_overrides():
    """``train.py dataset=x --multirun aug=a,b``: Hydra's parser refused the overrides split by the
    flag (its usage, exit 2) while ``--cfg job`` listed the sweep; the entry scripts move the flag
    first, which Hydra's parser takes."""
    from hydra._internal.utils import get_args_parser

    from diffusemix_bench.preflight import multirun_flag_first

    given = ["dataset=imagefolder", "--multirun", "aug=none,mixup", "seed=0"]
    with pytest.raises(SystemExit):
        get_args_parser().parse_args(given)
    args = get_args_parser().parse_args(multirun_flag_first(given))
    assert args.multirun and args.overrides == ["dataset=imagefolder", "aug=none,mixup", "seed=0"]
    assert multirun_flag_first(["a=1", "b=2"]) == ["a=1", "b=2"]


def test_published_weights_that_cannot_be_had_are_refused_before_the_run_or_the_sweep(tmp_path):
    """model.pretrained=true with weights that cannot be had (here a model with none published; no
    network in tests): a single run is refused before its folder is made (it was left with
    failure.json), a sweep before any job starts (each job failed in turn)."""
    from diffusemix_bench.preflight import check_command_line

    data = write_fixture_dataset("cifar100", tmp_path / "data")["data_dir"]
    common = ["dataset=cifar100", f"paths.data_dir={data}", *FAST, "model.pretrained=true"]
    result = _run_script([*common, f"hydra.run.dir={tmp_path / 'run'}"], tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert (
        "error: preactresnet18 has no published pretrained weights; set model.pretrained=false"
        in result.stderr
    )
    assert not (tmp_path / "run").exists()
    with pytest.raises(SystemExit) as refused:
        check_command_line(["--multirun", "aug=none,mixup", "seed=0,1", *common], str(CONF_DIR), "config")
    assert str(refused.value).startswith(
        "error: the sweep's runs cannot start, so no job was started: preactresnet18 has no published"
    )


def test_a_sweeps_published_weights_are_checked_for_every_model_it_crosses(tmp_path, monkeypatch):
    """model=a,b crossed with model.pretrained=false,true: each combination's weights are checked
    before any job (one setting changed at a time from the first job missed b with true)."""
    from diffusemix_bench.preflight import check_command_line

    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "torch"))
    (tmp_path / "torch" / "checkpoints").mkdir(parents=True)
    (tmp_path / "torch" / "checkpoints" / "resnet18-f37072fd.pth").write_bytes(b"")  # resnet18's: cached
    data = write_fixture_dataset("cifar100", tmp_path / "data")["data_dir"]
    argv = ["--multirun", "model=resnet18,preactresnet18", "model.pretrained=false,true", "dataset=cifar100"]
    with pytest.raises(SystemExit) as refused:
        check_command_line([*argv, f"paths.data_dir={data}", *FAST], str(CONF_DIR), "config")
    assert str(refused.value).startswith(
        "error: the sweep's runs with model=preactresnet18 model.pretrained=True cannot start, so no job was "
        "started: preactresnet18 has no published pretrained weights"
    )


def test_the_checks_before_a_sweep_say_each_warning_once(tmp_path, caplog):
    """The checks before a sweep read its data more than once (its data, then the edits of each
    prompt count it sweeps): an image folder's "no test split" warning was printed once per read."""
    from diffusemix_bench.preflight import check_command_line

    for c in ("a", "b"):
        (tmp_path / "imgs" / "train" / c).mkdir(parents=True)
        for i in range(4):
            Image.new("RGB", (40, 40), (60 * i, 100, 50 if c == "a" else 200)).save(
                tmp_path / "imgs" / "train" / c / f"{i}.png"
            )
    from diffusemix_bench.generation.generate import generate
    from tests.test_generation import compose_generate

    common = [
        "dataset=imagefolder",
        f"dataset.root={tmp_path / 'imgs'}",
        f"paths.cache_dir={tmp_path / 'cache'}",
    ]
    common += ["generator=tiny", "dataset.image_size=32", "dataset.resize=36"]
    generate(compose_generate([*common, "generator.num_prompts=2"]))  # (the edits the sweep reads)
    caplog.clear()
    with caplog.at_level("WARNING"):
        check_command_line(
            ["--multirun", "aug=diffusemix", "generator.num_prompts=1,2", *common, *FAST],
            str(CONF_DIR),
            "config",
        )
    assert sum(r.getMessage().startswith("No test split: image folder") for r in caplog.records) == 1


def test_a_refusal_inside_train_leaves_no_folder_or_a_sweep_jobs_with_failure_json(
    make_cfg, tmp_path, monkeypatch
):
    """A setting train() itself refuses before it records failures (its checks of the run's
    settings and folder): a single run leaves no folder, as a refusal at start-up does; a sweep's
    job keeps Hydra's folder with failure.json, so the sweep's summary says why it failed."""
    import json

    from diffusemix_bench import errors
    from diffusemix_bench.cli import run_train
    from diffusemix_bench.errors import ConfigError
    from diffusemix_bench.training import run as run_module

    def refuse(*args, **kwargs):
        raise ConfigError("adv.p refused here")

    monkeypatch.setattr(run_module, "check_protocol_optimiser", refuse)
    cfg = make_cfg([])
    run_dir = Path(cfg.paths.output_dir)
    for in_sweep in (False, True):
        shutil.rmtree(run_dir, ignore_errors=True)
        (run_dir / ".hydra").mkdir(parents=True)  # what Hydra writes before the job starts
        (run_dir / "train.log").write_text("")
        monkeypatch.setattr(errors, "in_multirun", lambda in_sweep=in_sweep: in_sweep)
        # (a sweep's job ends with the error Hydra's sweeper names; a single run with exit 1)
        with pytest.raises(errors.SweepJobError if in_sweep else SystemExit, match="adv.p refused here"):
            run_train(cfg)
        if in_sweep:
            failure = json.loads((run_dir / "failure.json").read_text())
            assert failure["status"] == "failed" and "adv.p refused here" in failure["error"]
        else:
            assert not run_dir.exists()


@pytest.mark.parametrize(
    ("given", "said"),
    [
        ("optim.name=adamw", "optim.name=adamw: optim.name changes the name alone and keeps the settings of the optim "
         "option chosen (optim=sgd's learning rate and weight decay, say); choose the option, which sets them too: "
         "optim=adamw"),
        ("sched.name=cosine", "choose the option, which sets them too: sched=cosine"),
    ],
)  # fmt: skip
def test_a_groups_name_given_alone_is_refused_with_the_option(tmp_path, given, said):
    """optim.name=adamw kept SGD's learning rate and weight decay (0.1, 1e-4) for AdamW: refused with
    the group's option, which sets its own; optim=adam is one."""
    result = run_entry("train.py", [given, "protocol=custom", "--cfg", "job"], tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert said in result.stderr, result.stderr[-2000:]
    listed = run_entry("train.py", ["optim=adam", "protocol=custom", "--cfg", "job"], tmp_path)
    assert listed.returncode == 0 and "name: adam\n  lr: 0.001" in listed.stdout, listed.stderr[-2000:]


@pytest.mark.parametrize(
    ("config", "given", "said"),
    [
        (
            "config",
            "aug.masks=[hv]",
            "aug.masks=[hv]: aug.masks takes one value, not a list: give one (aug.masks=<value>), or sweep several "
            "with --multirun (aug.masks=<a>,<b>)",
        ),
        (
            "generate",
            "generator.prompts=[a,null]",
            "generator.prompts=[a,null]: the items of generator.prompts are text, and null is none: leave it out of "
            "the list",
        ),
    ],
)
def test_a_list_for_one_value_or_null_in_a_list_is_said_with_the_fix(config, given, said):
    """Hydra's "Cannot convert 'list' to string" and "NoneType is not a subclass of str" said as
    what was given wrong and how to give it."""
    from diffusemix_bench.preflight import preflight

    with pytest.raises(ConfigError) as refused:
        preflight(["aug=diffusemix", given] if config == "config" else [given], str(CONF_DIR), config)
    assert str(refused.value) == said
