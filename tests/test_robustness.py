"""FGSM/PGD robustness (Table 4): after training with eval.fgsm=true, and on a finished run with
evaluate.py, checked against an FGSM written out here."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml
from omegaconf import OmegaConf

from diffusemix_bench.data.datamodule import ImageDataModule
from diffusemix_bench.robustness import AttackSpec, robust_errors
from diffusemix_bench.training.classifier import build_model
from diffusemix_bench.training.evaluate import load_model_weights
from diffusemix_bench.training.run import train
from tests.conftest import ROOT, run_entry


def independent_fgsm_error(model: torch.nn.Module, loader, eps: float) -> float:
    """FGSM as Table 4 defines it: one signed gradient step of the cross-entropy in [0, 1] pixel
    space, clamped to [0, 1]; error = 100 - accuracy (%)."""
    model.eval()
    correct = total = 0
    for images, labels, _ in loader:
        x = (images.float() / 255.0).requires_grad_(True)
        loss = F.cross_entropy(model(x), labels)
        (grad,) = torch.autograd.grad(loss, x)
        adversarial = (x + eps * grad.sign()).clamp(0.0, 1.0).detach()
        with torch.no_grad():
            correct += int((model(adversarial).argmax(1) == labels).sum())
        total += len(labels)
    return 100.0 - 100.0 * correct / total


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A small model trained for a few epochs with FGSM and PGD evaluation on (module-scoped: built once)."""
    from tests.conftest import FAST, compose_config, finalize, point_at_fixture
    from tests.fixtures.datasets import write_fixture_dataset

    tmp = tmp_path_factory.mktemp("robust")
    cfg = compose_config(
        FAST
        + [
            "dataset=cifar100",
            "model=resnet18",
            "protocol=custom",
            "optim=adamw",
            "sched=none",
            "trainer.max_epochs=3",
            "trainer.limit_train_batches=null",
            "trainer.limit_val_batches=null",
            "trainer.limit_test_batches=null",
            "dataset.batch_size=9",
            "eval.fgsm=true",
            "eval.pgd=true",
            "eval.pgd_steps=5",
            "seed=5",  # not evaluate.py's default: PGD's random start is seeded with the run's seed
        ]
    )
    fixture = write_fixture_dataset("cifar100", tmp / "data", per_class=10)
    point_at_fixture(cfg, fixture)
    cfg = finalize(cfg, tmp / "run")
    metrics = train(cfg)
    return cfg, metrics, tmp / "run"


def _model_and_test_loader(cfg, ckpt: Path):
    dm = ImageDataModule(cfg.dataset, cfg.paths.data_dir, seed=cfg.seed)
    dm.build()
    model = build_model(cfg, dm.num_classes, load_weights=False)
    load_model_weights(model, ckpt)
    return model, dm.test_dataloader()


def test_fgsm_error_equals_an_independent_fgsm(trained_run):
    cfg, metrics, _ = trained_run
    model, loader = _model_and_test_loader(cfg, Path(metrics["best_checkpoint"]))
    expected = independent_fgsm_error(model, loader, 8 / 255)
    assert metrics["fgsm_error"] == pytest.approx(expected, abs=1e-3)
    assert metrics["fgsm_settings"] == {"eps_255": 8.0}
    assert metrics["robust_images"] == metrics["test_images"] and metrics["robust_split"] == "test"
    # What measured it: the code, the attack library, the device, the processes.
    by = metrics["fgsm_measured_by"]
    assert by["git"] == metrics["git"] and by["device"] == "cpu" and by["processes"] == 1
    assert by["torchattacks"] == "3.5.1" and by["torch"] == metrics["versions"]["torch"]
    # The clean pass of the attack loop is the run's own test number.
    assert metrics["robust_clean_error"] == pytest.approx(100.0 - metrics["test_top1"], abs=1e-3)
    # A trained model that is not chance: the attack has something to break.
    assert metrics["test_top1"] > 50.0


def test_pgd_error_is_at_least_fgsm_error(trained_run):
    _, metrics, _ = trained_run
    assert metrics["pgd_error"] >= metrics["fgsm_error"]
    assert metrics["pgd_settings"] == {"eps_255": 8.0, "step_size_255": 2.0, "steps": 5, "random_start": True}


def test_a_limited_attack_measures_the_first_batches_and_reports_set_it_apart(trained_run, caplog):
    """eval.limit_batches=N attacks the split's first N batches: the same error as an attack of
    those batches alone; recorded (robust_limit_batches) and, in a report, a measurement unlike the
    experiment file's (every batch), named in its lines and in the command that measures it again."""
    from itertools import islice

    from diffusemix_bench.reporting.table import (
        _measurement_differs,
        evaluate_command,
        measured,
        measurement_text,
    )
    from diffusemix_bench.training.evaluate import attack_checkpoint, eval_split

    cfg, metrics, _ = trained_run
    model, in_order = _model_and_test_loader(cfg, Path(metrics["best_checkpoint"]))
    dm = ImageDataModule(cfg.dataset, cfg.paths.data_dir, seed=cfg.seed)
    dm.build()
    # train.py's and evaluate.py's loader: limited, it takes the classes in turn.
    loader = eval_split(OmegaConf.create({"split": "test", "limit_batches": 2}), dm)
    assert sorted(i for _, _, idx in islice(loader, 2) for i in idx.tolist()) != list(
        range(2 * loader.batch_size)
    )
    spec = [AttackSpec("fgsm", eps=8.0)]
    with caplog.at_level("INFO", logger="diffusemix_bench.robustness.attacks"):
        limited = attack_checkpoint(model, None, loader, spec, seed=0, accelerator="cpu", limit_batches=2)
    assert "robustness: batch 1 of 2 attacked" in caplog.text
    first_two = robust_errors(model, list(islice(loader, 2)), spec)
    assert limited["robust_images"] == first_two["images"] == 2 * loader.batch_size < len(loader.dataset)
    assert limited["fgsm_error"] == first_two["fgsm_error"] and limited["robust_limit_batches"] == 2
    whole = {"fgsm_settings": limited["fgsm_settings"], "robust_split": "test"}
    assert _measurement_differs(measured(limited, "fgsm_error"), measured(whole, "fgsm_error")) == [
        "limit_batches",
        "limit_order",
    ]
    assert (
        measurement_text(measured(limited, "fgsm_error")) == "eps_255=8.0 limit_batches=2 on the test split"
    )
    assert measurement_text(measured(whole, "fgsm_error")) == "eps_255=8.0 on the test split"
    # A finished run resumed with the whole split asked for: measured again (not "nothing to do").
    from diffusemix_bench.robustness import attack_specs
    from diffusemix_bench.training.resume import asks_more
    from tests.conftest import compose_config

    for limit, again in (("null", True), ("2", False)):
        asked = compose_config(["eval.fgsm=true", f"eval.limit_batches={limit}"])
        assert asks_more(asked, limited, attack_specs(asked.eval)) is again
    # A short check recorded before its first batches took the classes in turn: another measurement
    # (other images), measured again, and not one a report takes for today's.
    assert limited["robust_limit_order"] == "classes interleaved"
    # (a loader of the caller's own, in the split's order, is recorded as such)
    own = attack_checkpoint(model, None, in_order, spec, seed=0, accelerator="cpu", limit_batches=2)
    assert own["robust_limit_order"] == "the split's own order"
    older = {k: v for k, v in limited.items() if k != "robust_limit_order"}
    assert asks_more(asked, older, attack_specs(asked.eval)) is True
    assert _measurement_differs(measured(older, "fgsm_error"), measured(limited, "fgsm_error")) == [
        "limit_order"
    ]
    assert measurement_text(measured(older, "fgsm_error")).startswith(
        "eps_255=8.0 limit_batches=2 limit_order=the split's own order"
    )
    assert evaluate_command("fgsm_error", measured(whole, "fgsm_error"), "run").endswith(
        "evaluate.py ckpt=run eval.fgsm=true eval.eps=8.0 eval.split=test"
    )


def test_zero_budget_changes_nothing(trained_run, caplog, monkeypatch):
    from diffusemix_bench.robustness import attacks

    cfg, metrics, _ = trained_run
    model, loader = _model_and_test_loader(cfg, Path(metrics["best_checkpoint"]))
    with caplog.at_level("INFO", logger="diffusemix_bench.robustness.attacks"):
        result = robust_errors(model, loader, [AttackSpec("fgsm", eps=0.0)])
    assert result["fgsm_error"] == result["clean_error"]
    # Progress names the batch among all of them, the images so far (not a total), the seconds
    # spent and those left; then every PROGRESS_EVERY_S seconds, and a last line when done.
    assert len(loader) > 1
    first = f"robustness: batch 1 of {len(loader)} attacked ({loader.batch_size} images so far, "
    line = next(r.getMessage() for r in caplog.records if r.getMessage().startswith(first))
    assert line.endswith(" s left)")
    assert f"robustness: {result['images']} images attacked in " in caplog.text
    caplog.clear()
    monkeypatch.setattr(attacks, "PROGRESS_EVERY_S", 0.0)
    with caplog.at_level("INFO", logger="diffusemix_bench.robustness.attacks"):
        robust_errors(model, loader, [AttackSpec("fgsm", eps=0.0)])
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("robustness: batch ")]
    assert len(said) == len(loader) and said[-1].startswith(
        f"robustness: batch {len(loader)} of {len(loader)}"
    )


def _evaluate(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return run_entry("evaluate.py", args, cwd)


def test_evaluate_script_adds_robustness_to_a_finished_run(trained_run, tmp_path):
    cfg, metrics, run_dir = trained_run
    saved = json.loads((run_dir / "metrics.json").read_text())
    # Three images attacked at a time (eval.batch_size): each image is attacked on its own, so
    # the error is the run's, attacked in its evaluation batches.
    # The run folder given relative to the working folder: recorded absolute, as best_checkpoint.
    relative = os.path.relpath(run_dir, tmp_path)
    result = _evaluate(
        [
            f"ckpt={relative}",
            "eval.fgsm=true",
            "eval.pgd=true",
            "eval.pgd_steps=5",
            "accelerator=cpu",
            "eval.batch_size=3",
        ],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    after = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["robust_batch_size"] == (cfg.dataset.eval_batch_size or cfg.dataset.batch_size) != 3
    assert after["robust_batch_size"] == 3
    assert after["fgsm_error"] == metrics["fgsm_error"]
    # PGD's random start seeded with the run's seed, as after training (evaluate.py's seed=null).
    assert metrics["robust_seed"] == after["robust_seed"] == cfg.seed == 5
    assert after["robust_checkpoint"] == str(
        (run_dir / "checkpoints" / Path(metrics["best_checkpoint"]).name).absolute()
    )
    assert Path(after["robust_checkpoint"]).is_absolute()
    # Everything else the run recorded is kept.
    assert {k: v for k, v in after.items() if k in saved and not k.startswith(("fgsm", "robust", "pgd"))} == {
        k: v for k, v in saved.items() if not k.startswith(("fgsm", "robust", "pgd"))
    }
    assert list(tmp_path.iterdir()) == []  # nothing written beside the command


def test_a_smoke_run_attacks_a_few_batches(make_cfg):
    """debug=fast (a smoke run) trained two batches and then attacked every test image: Table 4's
    10,000 for minutes, PGD ten times that. It attacks two batches, recorded as a short check."""
    from tests.conftest import FAST

    smoke = [o for o in FAST if not o.startswith("eval.")]  # (the tests' own runs attack whole splits)
    metrics = train(make_cfg([*smoke, "eval.fgsm=true"], fast=False, per_class=10))
    assert metrics["robust_limit_batches"] == 2
    assert metrics["robust_images"] == 2 * 4 < metrics["test_images"]


def test_a_replaced_robustness_measurement_is_named_and_kept(trained_run, tmp_path, caplog):
    """A short check (eval.limit_batches) or another budget replaced the whole split's FGSM error in
    metrics.json, and left out its PGD error, without a word: each is named in the log with its
    number and what took its place, and the earlier entries are kept in robustness_earlier.jsonl.
    The same measurement made again (other attack batches) is no news."""
    import shutil

    from diffusemix_bench.files import EARLIER_ROBUSTNESS
    from diffusemix_bench.training.evaluate import evaluate_run

    cfg, metrics, run_dir = trained_run
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    best = Path(metrics["best_checkpoint"]).name
    saved = json.loads((run / "metrics.json").read_text())
    saved["best_checkpoint"] = str(run / "checkpoints" / best)  # (this copy's)
    (run / "metrics.json").write_text(json.dumps(saved))
    kept = run / EARLIER_ROBUSTNESS
    with caplog.at_level("WARNING", logger="diffusemix_bench.training.evaluate"):
        evaluate_run(_evaluate_cfg(ckpt=str(run), **{"eval.fgsm": "true", "eval.batch_size": "4"}))
    assert not kept.exists() and "replaced" not in caplog.text
    with caplog.at_level("WARNING", logger="diffusemix_bench.training.evaluate"):
        short = evaluate_run(_evaluate_cfg(ckpt=str(run), **{"eval.fgsm": "true", "eval.limit_batches": "1"}))
    after = json.loads((run / "metrics.json").read_text())
    assert after["fgsm_error"] == short["fgsm_error"] and "pgd_error" not in after
    text = " ".join(caplog.text.split())
    assert (
        f"FGSM error {metrics['fgsm_error']:.2f}% ({{'eps_255': 8.0}}, {metrics['robust_images']} images of test) "
        f"replaced by {short['fgsm_error']:.2f}% ({{'eps_255': 8.0}}, {short['robust_images']} images of test)"
    ) in text
    assert f"PGD error {metrics['pgd_error']:.2f}%" in text and "left out" in text
    # Why: what the new measurement was made on that the earlier one was not.
    assert (
        f": another measurement (images {metrics['robust_images']} -> {short['robust_images']}, "
        "eval.limit_batches none -> 1, limit order none -> classes interleaved)"
    ) in text
    assert text.count("pgd_") == 0 and text.count("left out") == 1  # named once (it was twice)
    assert f"the earlier measurement is kept in {kept}" in text
    (record,) = [json.loads(line) for line in kept.read_text().splitlines()]
    assert record["fgsm_error"] == metrics["fgsm_error"] and record["pgd_error"] == metrics["pgd_error"]
    assert record["robust_images"] == metrics["robust_images"] and "set_aside" in record
    # An attempt that set the measurement aside and then could not write metrics.json (a full disk),
    # run again: the measurement is kept once.
    from diffusemix_bench.training.evaluate import set_aside_replaced

    before = {k: v for k, v in record.items() if k != "set_aside"}  # metrics.json's entries then
    set_aside_replaced(run / "metrics.json", before, after, one_process=True)
    assert len(kept.read_text().splitlines()) == 1
    other = before | {"fgsm_error": before["fgsm_error"] + 1}  # another measurement: kept too
    set_aside_replaced(run / "metrics.json", other, after, one_process=True)
    assert len(kept.read_text().splitlines()) == 2


def test_evaluate_reads_a_relative_data_folder_where_the_run_was_launched(
    trained_run, tmp_path, monkeypatch, caplog
):
    """A run trained with a relative path (dataset.root=data, as typed) and attacked by evaluate.py
    from another folder: the path is read relative to where the run was launched (Hydra's record),
    as the run read it; it named a folder relative to evaluate.py's own, which is not there."""
    import shutil

    import yaml

    from diffusemix_bench.training.evaluate import evaluate_run

    cfg, metrics, run_dir = trained_run
    launched = tmp_path / "project"
    shutil.copytree(Path(OmegaConf.load(run_dir / "config_resolved.yaml").paths.data_dir), launched / "data")
    run = launched / "outputs" / "run"
    (run / "checkpoints").mkdir(parents=True)
    best = Path(metrics["best_checkpoint"]).name
    shutil.copy(run_dir / "checkpoints" / best, run / "checkpoints" / best)
    saved = OmegaConf.load(run_dir / "config_resolved.yaml")
    saved.paths.data_dir = saved.dataset.root = "data"
    saved.paths.cache_dir = "cache"
    OmegaConf.save(saved, run / "config_resolved.yaml")
    kept = {k: v for k, v in metrics.items() if not k.startswith(("fgsm", "pgd", "robust"))}
    (run / "metrics.json").write_text(
        json.dumps({**kept, "best_checkpoint": str(run / "checkpoints" / best)})
    )
    (run / ".hydra").mkdir()
    (run / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump({"hydra": {"runtime": {"cwd": str(launched)}}}))
    monkeypatch.chdir(tmp_path)  # (another folder than the run's: no ./data here)
    with caplog.at_level("INFO", logger="diffusemix_bench.training.evaluate"):
        result = evaluate_run(_evaluate_cfg(ckpt=str(run), **{"eval.fgsm": "true"}))
    assert result["fgsm_error"] == metrics["fgsm_error"] and "robust_data_dir" not in result
    assert (
        f"dataset.root=data read as {launched / 'data'} (relative to {launched}, where the run was launched)"
        in (caplog.text)
    )
    # The project moved since (its launch folder's data gone): read as given, from here.
    shutil.copytree(launched / "data", tmp_path / "data")
    shutil.rmtree(launched / "data")
    (run / "metrics.json").write_text(
        json.dumps({**kept, "best_checkpoint": str(run / "checkpoints" / best)})
    )
    moved = evaluate_run(_evaluate_cfg(ckpt=str(run), **{"eval.fgsm": "true"}))
    assert moved["fgsm_error"] == metrics["fgsm_error"] and "robust_data_dir" not in moved


def test_evaluate_leaves_an_unfinished_runs_metrics_alone(trained_run, tmp_path, caplog):
    """A run that has not finished (stopped with failure.json, or no metrics.json) is attacked, but
    its result goes to robustness.json: a metrics.json would make the run count as finished. A
    damaged metrics.json is refused, saying how to get it back. A run read from dataset.root (an
    image folder) that moved is found again with data_dir=<its new place>. Its saved settings are
    those of a run made before dataset.warp existed (without the key): read as the shorter side."""
    import shutil

    from diffusemix_bench.errors import UserError
    from diffusemix_bench.training.evaluate import evaluate_run

    cfg, metrics, run_dir = trained_run
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    best = Path(metrics["best_checkpoint"]).name
    shutil.copy(run_dir / "checkpoints" / best, run / "checkpoints" / "last.ckpt")
    saved = OmegaConf.load(run_dir / "config_resolved.yaml")
    data = saved.paths.data_dir
    saved.paths.data_dir = str(tmp_path / "gone")  # the data moved since: data_dir= gives its place
    saved.dataset.root = str(tmp_path / "gone")
    del saved.dataset["warp"]
    OmegaConf.save(saved, run / "config_resolved.yaml")
    (run / "failure.json").write_text(json.dumps({"status": "failed", "error": "stopped by SIGTERM"}))
    result = evaluate_run(_evaluate_cfg(ckpt=str(run), **{"eval.fgsm": "true", "data_dir": data}))
    assert not (run / "metrics.json").exists()
    assert json.loads((run / "robustness.json").read_text()) == result
    assert result["fgsm_error"] == metrics["fgsm_error"]  # the same weights, attacked alike
    assert result["robust_data_dir"] == str(Path(data).resolve())  # the copy of the data it read
    # last.ckpt is replaced as the run goes on: the record says where the weights attacked were.
    state = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert state["global_step"] > 0 and (
        result["robust_checkpoint_epoch"],
        result["robust_checkpoint_step"],
    ) == (
        state["epoch"],
        state["global_step"],
    )
    assert (
        f"(it stopped with an error: failure.json), so none is written: the robustness of last.ckpt (epoch "
        f"{state['epoch']}, step {state['global_step']}) is written to {run / 'robustness.json'} alone"
    ) in caplog.text

    (run / "failure.json").unlink()
    (run / "metrics.json").write_text('{"best_checkpoint": "last.ckpt", "test_top1": 5')  # cut short
    with pytest.raises(UserError, match=r"metrics\.json is damaged .*ckpt_path=last"):
        evaluate_run(_evaluate_cfg(ckpt=str(run), **{"eval.fgsm": "true", "data_dir": data}))

    # data_dir= naming the folder the run's settings name: the same data, nothing to record.
    (run / "metrics.json").unlink()
    saved.paths.data_dir = saved.dataset.root = data
    OmegaConf.save(saved, run / "config_resolved.yaml")
    same = evaluate_run(_evaluate_cfg(ckpt=str(run), **{"eval.fgsm": "true", "data_dir": data}))
    assert "robust_data_dir" not in same and same["fgsm_error"] == metrics["fgsm_error"]


def test_evaluate_updates_the_summary_of_the_sweep_its_run_belongs_to(trained_run, tmp_path):
    """A sweep's job attacked later by evaluate.py: the sweep's summary.csv gets its fgsm_error (it
    had none), the other job's row is kept."""
    import csv

    from diffusemix_bench.cli import SweepSummary, run_evaluate

    _, metrics, run_dir = trained_run
    sweep = tmp_path / "sweep"
    job = sweep / "0_seed=0"
    shutil.copytree(run_dir, job)
    best = job / "checkpoints" / Path(metrics["best_checkpoint"]).name
    saved = {k: v for k, v in metrics.items() if not k.startswith(("fgsm", "pgd", "robust", "clean"))}
    saved["best_checkpoint"] = str(best)
    (job / "metrics.json").write_text(json.dumps(saved))
    (sweep / "1_seed=1").mkdir()
    (sweep / "1_seed=1" / "config_resolved.yaml").write_text("seed: 1\n")
    (sweep / "multirun.yaml").write_text("hydra: {}\n")  # what makes a folder a sweep's
    SweepSummary().write(sweep)
    before = list(csv.DictReader((sweep / "summary.csv").open()))
    assert [r["job"] for r in before] == ["0_seed=0", "1_seed=1"]
    assert "fgsm_error" not in before[0]  # (no job attacked: no column to read as unmeasured)

    run_evaluate(_evaluate_cfg(ckpt=f'"{job}"', **{"eval.fgsm": "true", "accelerator": "cpu"}))
    after = list(csv.DictReader((sweep / "summary.csv").open()))
    assert float(after[0]["fgsm_error"]) == metrics["fgsm_error"]
    assert after[1] == {**before[1], "fgsm_error": "", "robustness_on": ""} and "pgd_error" not in after[0]
    header = list(after[0])
    assert header[header.index("test_top5") + 1] == "fgsm_error"
    # What the number was measured on, beside it.
    images = metrics["robust_images"]
    assert after[0]["robustness_on"] == f"test split, {images} images; fgsm eps_255=8.0", after[0]
    # PGD added later: a column of its own after fgsm_error, empty for the job without it.
    run_evaluate(
        _evaluate_cfg(ckpt=f'"{job}"', **{"eval.pgd": "true", "eval.pgd_steps": "5", "accelerator": "cpu"})
    )
    with (sweep / "summary.csv").open() as fh:
        header = next(csv.reader(fh))
    assert header[header.index("fgsm_error") + 1] == "pgd_error"
    rows = list(csv.DictReader((sweep / "summary.csv").open()))
    assert float(rows[0]["pgd_error"]) == metrics["pgd_error"] and rows[1]["pgd_error"] == ""
    assert float(rows[0]["fgsm_error"]) == metrics["fgsm_error"]  # kept beside it: the same measurement
    # A run folder's own summary.csv (its epochs) is never taken for a sweep's, whatever the
    # folder given (ckpt=. in the run folder once rewrote it as one).
    from diffusemix_bench.cli import update_sweep_summary

    epochs = (job / "summary.csv").read_text()
    update_sweep_summary(job)
    assert (job / "summary.csv").read_text() == epochs


@pytest.mark.slow  # the bad-input corpus runs this kind of case in the default suite
def test_evaluate_script_user_error_is_one_message(tmp_path):
    result = _evaluate([f"ckpt={tmp_path / 'nothing'}", "eval.fgsm=true"], tmp_path)
    assert result.returncode == 1
    assert "does not exist" in result.stderr and "Traceback" not in result.stderr


def _evaluate_cfg(**settings):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from tests.conftest import CONF_DIR

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("evaluate", overrides=[f"{k}={v}" for k, v in settings.items()])


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"eval.fgsm": "true"}, "needs ckpt="),
        ({}, "needs ckpt=<run folder written by train.py, or a .ckpt file in one> and an attack"),
        ({"ckpt": "{run}"}, "eval.fgsm=true"),
        ({"ckpt": "{run}", "eval.fgsm": "true", "eval.split": "train"}, "eval.split must be"),
        ({"ckpt": "{loose}", "eval.fgsm": "true"}, "config_resolved.yaml"),
        (
            {"ckpt": "{garbage}", "eval.fgsm": "true"},
            r"\Acannot read the checkpoint \S*bad\.ckpt: [^;\n]*; it may have been cut short while written \(a "
            r"kill, a full disk\): no other checkpoint is in \S*checkpoints: train the run again\Z",
        ),
        # A last.ckpt cut short: torch's first sentence whole, and the run's other checkpoint named.
        (
            {"ckpt": "{cutlast}/checkpoints/last.ckpt", "eval.fgsm": "true"},
            r"\Acannot read the checkpoint \S*cutlast/checkpoints/last\.ckpt: PytorchStreamReader failed reading "
            r"zip archive: failed finding central directory; .*: give another checkpoint of the run "
            r"\(ckpt=\S*cutlast/checkpoints/best-\S+\.ckpt\)\Z",
        ),
        # A sweep's folder: its job folders are the runs; another folder: not a run folder.
        (
            {"ckpt": "{sweep}", "eval.fgsm": "true"},
            r"holds 2 run folder\(s\) \(0_seed=0, 1_seed=1\), a sweep's: .*'ckpt=\"\S*0_seed=0\"' \(",
        ),
        (
            {"ckpt": "{empty}", "eval.fgsm": "true"},
            r"is not a run folder written by train\.py \(it has no config_resolved\.yaml\)",
        ),
        # A damaged config_resolved.yaml: one line naming it (not YAML's multi-line report).
        (
            {"ckpt": "{damaged}", "eval.fgsm": "true"},
            r"\A\S*config_resolved\.yaml is damaged \([^\n]*\): it records the settings[^\n]*\Z",
        ),
        (
            {"ckpt": "{run}", "eval.fgsm": "true", "data_dir": "{tmp}/nothing"},
            # evaluate.py's own setting, and no dataset.download (a setting it does not have).
            r"(?s)\A(?!.*dataset\.download)Dataset 'cifar100' not found at .*nothing.*How to get it: download it from https://www\.cs"
            r".*\nPoint evaluate\.py at the folder that holds it with data_dir=<folder>\.$",
        ),
        # Checkpoints cut short or not the framework's: one line each, never torch's advice.
        (
            {"ckpt": "{zero}", "eval.fgsm": "true"},
            r"\Athe checkpoint \S*zero\.ckpt is empty \(0 bytes\): [^\n]*\Z",
        ),
        (
            {"ckpt": "{hostile}", "eval.fgsm": "true"},
            r"\A\S*hostile\.ckpt holds objects other than tensors [^\n]*never unpickled in full[^\n]*\Z",
        ),
        (
            {"ckpt": "{misfit}", "eval.fgsm": "true"},
            r"do not fit the model built from its run folder's config_resolved\.yaml and the classes of cifar100 read "
            r"from \S+ \(100 classes\): 1 with other shapes \(backbone\.fc\.weight: checkpoint \(5, 512\) vs model \(100, 512\)\)"
            r"\. A different class count means other data",
        ),
        (
            {"ckpt": "{otherrun}", "eval.fgsm": "true"},
            r"\A\S*otherrun/checkpoints/best-\S+\.ckpt was trained with other settings than its run folder's "
            r"config_resolved\.yaml names \(image_size 48 there, 32 here\): a checkpoint of another run\? Attack "
            r"it in the run folder it was trained in",
        ),
        (
            {"ckpt": "{otherarch}", "eval.fgsm": "true"},
            r": 1 unexpected \(backbone\.extra\.weight\)\. They are another model's than the one the run's "
            r"settings name: a checkpoint of another run\?\Z",
        ),
        # The selected checkpoint gone: not silently another one's numbers beside its test numbers.
        (
            {"ckpt": "{nobest}", "eval.fgsm": "true"},
            r"the checkpoint the run selected \(best-\S+\.ckpt, metrics.*put it back, or attack another checkpoint "
            r"by naming it \(ckpt=\S+/checkpoints/last\.ckpt\), whose numbers",
        ),
        # ... and none left at all: no file named that is not there.
        (
            {"ckpt": "{nockpt}", "eval.fgsm": "true"},
            r"put it back, or train the run again: no other checkpoint is left there to attack instead",
        ),
        # Saved settings cut short or edited by hand: named, not met deep in the data code.
        (
            {"ckpt": "{cut}", "eval.fgsm": "true"},
            r"config_resolved\.yaml is incomplete \(no model, paths, seed: ",
        ),
        (
            {"ckpt": "{edited}", "eval.fgsm": "true"},
            r"config_resolved\.yaml holds a setting this run cannot have been trained with \(dataset\.image_size: ",
        ),
        # A line deleted by hand, a seed that is not a number: named, not OmegaConf's error.
        (
            {"ckpt": "{nosize}", "eval.fgsm": "true"},
            r"\A\S*config_resolved\.yaml has no dataset\.image_size, which evaluation reads; restore",
        ),
        (
            {"ckpt": "{badseed}", "eval.fgsm": "true"},
            r"config_resolved\.yaml holds a setting this run cannot have been trained with \(seed is 'abc', not a whole",
        ),
        # A file of the run folder that is not a checkpoint; settings evaluate.py does not have or take.
        (
            {"ckpt": "{run}/config_resolved.yaml", "eval.fgsm": "true"},
            r"config_resolved\.yaml is not a checkpoint \(",
        ),
        (
            {"ckpt": "{run}", "eval.fgsm": "true", "+eval.fgsmm": "true"},
            r"eval\.fgsmm: 'eval' has no setting 'fgsmm'; did you mean fgsm\?",
        ),
        ({"ckpt": "{run}", "eval.fgsm": "true", "+foo": "1"}, r"foo: evaluate\.py has no setting 'foo'"),
        (
            {"ckpt": "{run}", "eval.fgsm": "true", "accelerator": "tpu"},
            r"accelerator must be one of auto, cpu, gpu; got 'tpu'",
        ),
        (
            {"ckpt": "{run}", "eval.fgsm": "true", "eval.eps": "inf"},
            r"eval\.eps must be a finite number; got inf",
        ),
        # Another copy of the data whose classes are not the run's (here: its list relabelled).
        (
            {"ckpt": "{relabelled}", "eval.fgsm": "true"},
            r"does not hold the classes the run was trained on \(label 0 is 'zz' in the run and '\w+' there; "
            r"the run's are listed in \S*classes\.txt\): its labels would not be the model's",
        ),
    ],
)
def test_evaluate_user_errors(trained_run, tmp_path, settings, message):
    from diffusemix_bench.errors import UserError  # ConfigError, or the dataset's not-found error
    from diffusemix_bench.training.evaluate import evaluate_run

    _, _, run_dir = trained_run
    best = Path(json.loads((run_dir / "metrics.json").read_text())["best_checkpoint"]).name

    def copy(name: str) -> Path:  # the run folder, its files hard-linked (no copying of checkpoints)
        shutil.copytree(run_dir, tmp_path / name, copy_function=os.link)
        return tmp_path / name

    def in_run(name: str) -> Path:  # a file in a run folder holding the run's settings alone
        (tmp_path / "run" / "checkpoints").mkdir(parents=True, exist_ok=True)
        (tmp_path / "run" / "config_resolved.yaml").write_text((run_dir / "config_resolved.yaml").read_text())
        return tmp_path / "run" / "checkpoints" / name

    def loose() -> Path:
        torch.save({"state_dict": {}}, tmp_path / "loose.ckpt")
        return tmp_path / "loose.ckpt"

    def garbage() -> Path:
        in_run("bad.ckpt").write_bytes(b"not a checkpoint")
        return in_run("bad.ckpt")

    def damaged() -> Path:
        (copy("damaged") / "config_resolved.yaml").unlink()
        (tmp_path / "damaged" / "config_resolved.yaml").write_text(
            "dataset:\n  name: cifar100\n  batch_size: [64\nseed: 0\n"
        )
        return tmp_path / "damaged"

    def sweep() -> Path:
        for job in ("0_seed=0", "1_seed=1"):
            (tmp_path / "sweep" / job).mkdir(parents=True)
            (tmp_path / "sweep" / job / "config_resolved.yaml").write_text(
                (run_dir / "config_resolved.yaml").read_text()
            )
        return tmp_path / "sweep"

    def empty() -> Path:
        (tmp_path / "empty").mkdir()
        return tmp_path / "empty"

    def zero() -> Path:
        in_run("zero.ckpt").touch()
        return in_run("zero.ckpt")

    def cutlast() -> Path:  # (its files are links to the run's: last.ckpt is written anew)
        last = copy("cutlast") / "checkpoints" / "last.ckpt"
        head = last.read_bytes()[:100]
        last.unlink()
        last.write_bytes(head)
        return tmp_path / "cutlast"

    def hostile() -> Path:
        torch.save({"state_dict": {}, "why": argparse.Namespace(a=1)}, in_run("hostile.ckpt"))
        return in_run("hostile.ckpt")

    def misfit() -> Path:
        path = copy("misfit") / "checkpoints" / best
        state = torch.load(path, weights_only=True)
        state["state_dict"]["model.backbone.fc.weight"] = torch.zeros(5, 512)
        path.unlink()  # a link to the run's own checkpoint: never written through
        torch.save(state, path)
        return path

    def otherarch() -> Path:  # (another run's model: layers the run's lacks)
        path = copy("otherarch") / "checkpoints" / best
        state = torch.load(path, weights_only=True)
        state["state_dict"]["model.backbone.extra.weight"] = torch.zeros(3)
        path.unlink()
        torch.save(state, path)
        return path

    def otherrun() -> Path:  # (a checkpoint of a run at another input size, copied in)
        path = copy("otherrun") / "checkpoints" / best
        state = torch.load(path, weights_only=True)
        assert state["trained_with"]["image_size"] == 32  # (what every checkpoint records)
        state["trained_with"]["image_size"] = 48
        path.unlink()
        torch.save(state, path)
        return path

    def nobest() -> Path:
        (copy("nobest") / "checkpoints" / best).unlink()
        return tmp_path / "nobest"

    def nockpt() -> Path:
        for path in (copy("nockpt") / "checkpoints").glob("*.ckpt"):
            path.unlink()
        return tmp_path / "nockpt"

    def settings_file(name: str, saved: dict) -> Path:
        (copy(name) / "config_resolved.yaml").unlink()
        (tmp_path / name / "config_resolved.yaml").write_text(yaml.safe_dump(saved))
        return tmp_path / name

    def cut() -> Path:
        saved = yaml.safe_load((run_dir / "config_resolved.yaml").read_text())
        return settings_file("cut", {"dataset": saved["dataset"]})

    def edited() -> Path:
        saved = yaml.safe_load((run_dir / "config_resolved.yaml").read_text())
        saved["dataset"]["image_size"] = "big"
        return settings_file("edited", saved)

    def nosize() -> Path:
        saved = yaml.safe_load((run_dir / "config_resolved.yaml").read_text())
        del saved["dataset"]["image_size"]
        return settings_file("nosize", saved)

    def badseed() -> Path:
        saved = yaml.safe_load((run_dir / "config_resolved.yaml").read_text())
        saved["seed"] = "abc"
        return settings_file("badseed", saved)

    def relabelled() -> Path:
        names = (copy("relabelled") / "classes.txt").read_text().splitlines()
        (tmp_path / "relabelled" / "classes.txt").unlink()  # a link to the run's own file
        (tmp_path / "relabelled" / "classes.txt").write_text("".join(f"{n}\n" for n in ["zz", *names[1:]]))
        return tmp_path / "relabelled"

    makers = {"run": lambda: run_dir, "tmp": lambda: tmp_path, "loose": loose, "garbage": garbage}
    makers |= {"damaged": damaged, "sweep": sweep, "empty": empty, "zero": zero, "hostile": hostile}
    makers |= {"cutlast": cutlast}
    makers |= {
        "misfit": misfit,
        "otherarch": otherarch,
        "otherrun": otherrun,
        "nobest": nobest,
        "nockpt": nockpt,
        "cut": cut,
        "edited": edited,
        "relabelled": relabelled,
    }
    makers |= {"nosize": nosize, "badseed": badseed}
    # Only what this case names is made (copies of the run folder for every case were slow).
    wanted = {name for value in settings.values() for name in re.findall(r"\{(\w+)\}", str(value))}
    paths = {name: makers[name]() for name in wanted}
    cfg = _evaluate_cfg(**{k: str(v).format(**paths) for k, v in settings.items()})
    with pytest.raises(UserError, match=message):
        evaluate_run(cfg)


def test_a_run_folder_names_its_classes_and_its_checkpoints_folder_stands_for_it(trained_run):
    """classes.txt lists the class names in label order (for whoever loads a checkpoint, and for
    evaluate.py's check of another copy of the data); ckpt=<run>/checkpoints is taken for the
    run folder (it was refused as "not a run folder")."""
    from diffusemix_bench.training.locate import locate_checkpoint, run_folder_of

    _, _, run_dir = trained_run
    names = (run_dir / "classes.txt").read_text().splitlines()
    assert len(names) == json.loads((run_dir / "metrics.json").read_text())["num_classes"] == 100
    assert len(set(names)) == 100 and all(names)
    assert locate_checkpoint(run_dir / "checkpoints") == locate_checkpoint(run_dir)
    assert run_folder_of(run_dir / "checkpoints") == run_dir  # whose sweep's summary.csv evaluate.py updates


def test_eval_split_test_without_a_test_split_is_refused_before_training(make_cfg):
    from diffusemix_bench.errors import ConfigError

    cfg = make_cfg(["dataset=imagefolder", "eval.fgsm=true"])
    shutil.rmtree(Path(cfg.dataset.root) / "test")
    assert OmegaConf.select(cfg, "eval.split") == "test"
    with pytest.raises(ConfigError, match="eval.split=val"):
        train(cfg)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (["eval.fgsm=true", "eval.eps=-3"], "eval.eps must be >= 0"),
        (["eval.pgd=true", "eval.pgd_steps=0"], "eval.pgd_steps must be >= 1"),
        # The budget as a fraction of the range (8/255 written out): it attacked by 0.03 of a grey
        # level, and the "FGSM error" was the clean error.
        (
            ["eval.fgsm=true", "eval.eps=0.0314"],
            r"eval\.eps=0\.0314: eval\.eps is in 1/255 units .* give eval\.eps=8 for 0\.0314 of the range",
        ),
        # PGD's step as a fraction (2/255 written out); half a grey level (0.5) is a step some take.
        (
            ["eval.pgd=true", "eval.pgd_step_size=0.0078"],
            r"eval\.pgd_step_size=0\.0078: the step is in 1/255 units .* give eval\.pgd_step_size=2 for 0\.0078",
        ),
        # A fraction so small that its 1/255 units are still under the mark: no value to suggest.
        (
            ["eval.pgd=true", "eval.pgd_step_size=0.0001"],
            r"eval\.pgd_step_size=0\.0001: .* a tenth of a grey level or less; give a step of at least 0\.1",
        ),
        (
            ["eval.fgsm=true", "eval.eps=0.001"],
            r"eval\.eps=0\.001: .* less than one grey level; give eval\.eps of at least 1, one grey level",
        ),
        (
            ["eval.pgd=true", "eval.pgd_step_size=510"],
            r"eval\.pgd_step_size=510: .*255 already spans the whole range; give at most 255",
        ),
        (
            ["eval.pgd=true", "eval.eps=300"],
            r"eval\.eps=300: .*255 already spans the whole range; give at most 255",
        ),
        # The same slip in adversarial training trained with almost no perturbation.
        (
            ["adv.p=0.1", "adv.eps=0.04"],
            r"adv\.eps=0\.04: adv\.eps is in 1/255 units .* give adv\.eps=10\.2 for",
        ),
        (
            ["aug=puzzlemix", "aug.adv_p=0.1", "aug.adv_eps=0.04"],
            r"aug\.adv_eps=0\.04: aug\.adv_eps is in 1/255 units",
        ),
        (["adv.p=0.1", "adv.step=0.05"], r"adv\.step=0\.05: adv\.step is in 1/255 units"),
        (["adv.p=1.5"], r"adv\.p must be in \[0, 1\]; got 1\.5"),
        (["adv.p=0.1", "adv.scale=flat"], r"adv\.scale"),
    ],
)
def test_a_bad_attack_budget_is_refused_before_training(make_cfg, tmp_path, settings, message):
    """A budget no attack can use stops train.py at the start, not after training and testing: in
    the start-up checks of the settings (a sweep's, before any job), and in train() itself."""
    from diffusemix_bench.config import check_values
    from diffusemix_bench.errors import ConfigError
    from diffusemix_bench.robustness import AttackSpec

    assert AttackSpec("pgd", step_size=0.5).step_size == 0.5

    cfg = make_cfg(settings)
    with pytest.raises(ConfigError, match=message):
        check_values(cfg, here=False)
    with pytest.raises(ConfigError, match=message):
        train(cfg)
    assert not (tmp_path / "run" / "checkpoints").exists()


# -- fast adversarial training (adv.p) ------------------------------------------------------------


def reference_fast_adversarial(model, images, targets, eps_255, seed):
    """PuzzleMix main.py's adversarial step written out (in [0, 1] pixel space): uniform start in
    +-eps kept in [0, 1], one step of (eps + 2)/255 along the sign of the loss gradient, projection
    to +-eps, the whole perturbation scaled by u ~ U(0, 1)."""
    eps = eps_255 / 255.0
    torch.manual_seed(seed)
    noise = torch.zeros_like(images).uniform_(-eps, eps)
    noisy = torch.clamp(images + noise, 0, 1)
    noise = noisy - images
    x = noisy.clone().requires_grad_(True)
    loss = torch.sum(-targets * F.log_softmax(model(x), dim=1), dim=1).mean()
    loss.backward()
    noise = noise + (eps_255 + 2) / 255.0 * x.grad.sign()
    noise = torch.clamp(noise, -eps, eps)
    noise = torch.rand(()).item() * noise
    return torch.clamp(images + noise, 0, 1)


def test_fast_adversarial_step_matches_the_reference_formula():
    from diffusemix_bench.robustness.adversarial_training import FastAdversarial

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 5))
    images = torch.rand(6, 3, 8, 8)
    targets = F.one_hot(torch.randint(5, (6,)), 5).float()
    expected = reference_fast_adversarial(model, images, targets, 10.0, seed=3)

    def soft_ce(logits):
        return torch.sum(-targets * F.log_softmax(logits, dim=1), dim=1).mean()

    torch.manual_seed(3)
    ours = FastAdversarial(p=1.0, eps=10.0).perturb(model, images, soft_ce)
    assert torch.allclose(ours, expected, atol=1e-7)
    delta = ours - images
    assert delta.abs().max() <= 10 / 255 + 1e-6 and delta.abs().max() > 0
    # scale=none keeps the projected step whole: unclamped pixels sit at +-eps or inside by the start.
    torch.manual_seed(3)
    whole = FastAdversarial(p=1.0, eps=10.0, scale="none").perturb(model, images, soft_ce) - images
    inside = (images > 0.1) & (images < 0.9)
    assert torch.isclose(whole[inside].abs(), torch.tensor(10 / 255)).float().mean() > 0.5


@pytest.mark.parametrize(("p", "perturbed"), [(0.0, "none"), (1.0, "all")])
def test_adv_p_perturbs_that_share_of_batches(make_cfg, p, perturbed):
    metrics = train(make_cfg([f"adv.p={p}", "aug=mixup"]))
    steps = metrics["optimizer_steps"]
    assert steps >= 2
    assert metrics["adversarial_batches"] == (steps if perturbed == "all" else 0)
    assert metrics["adv_training"] == (
        None
        if p == 0
        else {"p": 1.0, "eps": 10.0, "step": 12.0, "scale": "uniform"}  # adv.step=null: eps + 2
    )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["adv.p=1.5"], "adv.p"),
        (["adv.p=0.1", "adv.scale=half"], "adv.scale"),
        (["adv.p=0.1", "aug=puzzlemix", "adv.scale=none"], "adv.scale"),
        (["adv.p=0.1", "aug=puzzlemix", "aug.adv_p=0.2"], "aug.adv_p"),
    ],
)
def test_adv_settings_are_checked(make_cfg, overrides, message):
    from diffusemix_bench.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        train(make_cfg(overrides))


def test_puzzlemix_takes_adv_p_in_its_own_form(make_cfg):
    """adv.p with aug=puzzlemix becomes PuzzleMix's aug.adv_p (noise on its sources before mixing),
    and the training loop does not perturb its mixed views a second time."""
    from diffusemix_bench.augment import AugContext, create_aug

    cfg = make_cfg(["aug=puzzlemix", "adv.p=0.15", "adv.eps=8"])
    ctx = AugContext(num_classes=100, dataset_name="cifar100", image_size=32, seed=0, config=cfg)
    aug = create_aug(cfg.aug, ctx)
    assert aug.own_adversarial and aug.adv_p == 0.15 and aug.adv_eps == 8 / 255
    metrics = train(cfg)
    assert metrics["adv_form"] == "method" and metrics["adversarial_batches"] is None
    # Given as the method's own setting (aug.adv_p, not adv.p), it is recorded alike.
    own = train(make_cfg(["aug=puzzlemix", "aug.adv_p=0.5", "aug.adv_eps=8"], run_name="own"))
    assert own["adv_form"] == "method"
    assert own["adv_training"] == {"p": 0.5, "eps": 8.0, "step": 10.0, "scale": "uniform"}


def test_per_dataset_values_in_experiment_files():
    from tests.conftest import compose_config

    for dataset, p in (("cifar100", 0.1), ("tinyimagenet", 0.15)):
        cfg = compose_config(["experiment=table4", f"dataset={dataset}", "aug=none"])
        assert cfg.adv.p == p


def test_a_dataset_the_experiments_table_has_no_column_for_is_named():
    """experiment=table4 with a dataset it has no per-dataset value for: the refusal adds that the
    table does not report it; table6 with another dataset trains (the experiment's settings as
    they are) with a warning that its runs belong to no cell."""
    from diffusemix_bench.config import outside_the_table, validate_config
    from diffusemix_bench.errors import ConfigError
    from tests.conftest import compose_config

    cfg = compose_config(["experiment=table4", "dataset=flowers102", "aug=none"])
    with pytest.raises(ConfigError) as refused:
        validate_config(cfg)
    assert str(refused.value).endswith(
        "(adv.p=<value>). experiment=table4 reports cifar100, tinyimagenet, not dataset=flowers102: its table "
        "has no cell for these runs (report.py runs=<their sweep folder> reports them in their own table, a row "
        "per setting they differ in)"
    )
    assert outside_the_table(compose_config(["experiment=table6", "dataset=flowers102", "aug=none"])) is None
    assert outside_the_table(compose_config(["experiment=table6", "dataset=tinyimagenet", "aug=none"])) == (
        "experiment=table6 reports flowers102, not dataset=tinyimagenet: its table has no cell for these runs "
        "(report.py runs=<their sweep folder> reports them in their own table, a row per setting they differ in)"
    )
    assert outside_the_table(compose_config(["dataset=tinyimagenet"])) is None  # no experiment


def test_evaluate_refuses_a_budget_or_step_written_as_a_fraction_before_loading_the_attacks(tmp_path):
    """evaluate.py answers a budget or PGD step given as a fraction of the range at once (it was
    answered after the attacks' stack had loaded), with the value to give."""
    import os

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    args = ["ckpt=nowhere", "eval.pgd=true", "eval.pgd_step_size=0.0078"]
    done = subprocess.run(
        [sys.executable, "-X", "importtime", str(ROOT / "evaluate.py"), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert "error: eval.pgd_step_size=0.0078: the step is in 1/255 units" in done.stderr
    imported = {
        line.rsplit("|", 1)[-1].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:")
    }
    assert "omegaconf" in imported and "torchattacks" not in imported and "torch" not in imported
    eps = _evaluate(["ckpt=nowhere", "eval.fgsm=true", "eval.eps=0.0314"], tmp_path)
    assert eps.returncode == 1 and "give eval.eps=8 for 0.0314 of the range" in eps.stderr
    # No attack asked for as well: the value is answered first (adding the attack met it next).
    no_attack = _evaluate(["ckpt=nowhere", "eval.eps=0.0314"], tmp_path)
    assert no_attack.returncode == 1 and "give eval.eps=8 for 0.0314 of the range" in no_attack.stderr
    nothing = _evaluate(["ckpt=nowhere"], tmp_path)
    assert (
        nothing.returncode == 1
        and "nothing to evaluate: add eval.fgsm=true and/or eval.pgd=true" in nothing.stderr
    )


def test_set_aside_records_survive_a_damaged_or_cut_file(tmp_path):
    """robustness_earlier.jsonl with bytes that are not text, or a last line cut short: it is read
    without an error (the unreadable lines left out), and a record appended after a cut line starts
    a line of its own (it was glued onto it, then skipped)."""
    from diffusemix_bench.files import EARLIER_ROBUSTNESS, read_set_aside
    from diffusemix_bench.training.evaluate import set_aside_replaced

    kept = tmp_path / EARLIER_ROBUSTNESS
    kept.write_bytes(b'{"fgsm_error": 10.0}\n\xff\xfe not text\n{"fgsm_error": 2')
    assert read_set_aside(tmp_path) == [{"fgsm_error": 10.0}]
    before = {
        "fgsm_error": 30.0,
        "fgsm_settings": {"eps_255": 8.0},
        "robust_split": "test",
        "robust_images": 4,
    }
    after = {**before, "fgsm_error": 40.0, "robust_images": 2, "robust_limit_batches": 1}
    set_aside_replaced(tmp_path / "metrics.json", before, after, one_process=True)
    records = read_set_aside(tmp_path)
    assert [r["fgsm_error"] for r in records] == [10.0, 30.0] and kept.read_bytes().endswith(b"\n")


def test_a_pgd_number_measured_again_in_other_batches_says_what_changed(tmp_path, caplog):
    """A PGD number replaced by one measured on the same images but in other batches, with another
    seed, or on more processes (its random starts drawn otherwise): the log names each of those,
    the attack's own batch size where attacks kept side by side were measured in batches of other
    sizes; an FGSM number left out names none of them, nor does one measured again (it draws
    nothing: its number is the same whatever the batches, seed and processes), nor PGD without
    random starts."""
    from diffusemix_bench.training.evaluate import set_aside_replaced

    before = {
        "fgsm_error": 30.0,
        "fgsm_settings": {"eps_255": 8.0},
        "pgd_error": 50.0,
        "pgd_settings": {"eps_255": 8.0, "steps": 10, "random_start": True},
        "robust_split": "test",
        "robust_images": 4,
        "robust_batch_size": {"fgsm": 2, "pgd": 4},
        "robust_seed": 0,
    }
    after = {
        **{k: v for k, v in before.items() if not k.startswith("fgsm")},
        "pgd_error": 55.0,
        "robust_batch_size": 8,
        "robust_seed": 1,
        "robust_processes": 2,
    }
    with caplog.at_level("WARNING", logger="diffusemix_bench.training.evaluate"):
        set_aside_replaced(tmp_path / "metrics.json", before, after, one_process=True)
    (pgd,) = [r.getMessage() for r in caplog.records if "PGD error" in r.getMessage()]
    assert pgd.endswith(": another measurement (eval.batch_size 4 -> 8, seed 0 -> 1, processes none -> 2)"), (
        pgd
    )
    (fgsm,) = [r.getMessage() for r in caplog.records if "FGSM error" in r.getMessage()]
    assert fgsm.endswith("left out"), fgsm
    # FGSM and PGD without random starts measured again so: nothing they draw is named.
    caplog.clear()
    fixed = {**before, "pgd_settings": {**before["pgd_settings"], "random_start": False}}
    again = {**fixed, "fgsm_error": 31.0, "pgd_error": 52.0, "robust_batch_size": 8, "robust_seed": 1}
    with caplog.at_level("WARNING", logger="diffusemix_bench.training.evaluate"):
        set_aside_replaced(tmp_path / "metrics.json", fixed, again, one_process=True)
    said = [r.getMessage() for r in caplog.records if " error " in r.getMessage()]
    assert len(said) == 2 and not any("another measurement" in line for line in said), said


def test_the_last_progress_line_of_an_attack_shared_by_processes_counts_all_of_them(caplog):
    """Processes attacking their own parts of a split: the last line counts every process's images
    (the whole split's, as its numbers are), not this process's part."""
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 2))
    batches = [(torch.randint(0, 256, (3, 3, 4, 4), dtype=torch.uint8), torch.tensor([0, 1, 0]))] * 2
    with caplog.at_level("INFO", logger="diffusemix_bench.robustness.attacks"):
        # (two processes, each with these six images: the sum is twice this one's counts)
        result = robust_errors(
            model, batches, [AttackSpec("fgsm", eps=8.0)], sum_over_processes=lambda t: 2 * t
        )
    assert result["images"] == 12
    last = [r.getMessage() for r in caplog.records][-1]
    assert last.startswith("robustness: 12 images attacked by all processes in "), last
