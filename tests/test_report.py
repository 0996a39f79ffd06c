"""Reports: run folders made here (two methods x two seeds, one failed and one diverged run, the
rest missing) printed beside the paper's numbers, with mean and std checked against the runs."""

from __future__ import annotations

import csv
import json
import re
import shlex
import shutil
import statistics
from pathlib import Path

import PIL.Image
import pytest
import yaml
from omegaconf import OmegaConf

from diffusemix_bench.commands import script_command
from diffusemix_bench.config import register_configs
from diffusemix_bench.errors import ConfigError
from diffusemix_bench.report_cli import build_report
from diffusemix_bench.reporting.runs import ReportError, read_run
from tests.conftest import FAST, ROOT, compose_config, finalize, point_at_fixture, run_entry

CONF = str(ROOT / "conf")
EXPERIMENTS = sorted(p.stem for p in (ROOT / "experiments").glob("*.yaml") if "paper:" in p.read_text())
# Short runs of Table 6's protocol on fixture data: 3 classes, a few images, 32 px, two epochs.
SHORT = FAST + ["trainer.max_epochs=2", "experiment=table6", "dataset=flowers102"]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    """A sweep folder: none and snapmix x seeds 0, 1 finished; snapmix seed 2 stopped before its
    metrics (failed); none seed 2 diverged (its failure.json says so)."""
    from diffusemix_bench.training.run import train
    from tests.fixtures.datasets import write_fixture_dataset

    register_configs()
    tmp = tmp_path_factory.mktemp("report")
    root = tmp / "multirun"
    job = 0
    for aug in ("none", "snapmix"):
        for seed in (0, 1):
            cfg = compose_config(SHORT + [f"aug={aug}", f"seed={seed}"])
            fixture = write_fixture_dataset("flowers102", tmp / "data")
            point_at_fixture(cfg, fixture)
            train(finalize(cfg, root / f"{job}_aug={aug},seed={seed}"))
            job += 1
    # A failed run (killed before it wrote metrics) and a diverged one, with the settings of their cells.
    for aug, seed, failure in (("snapmix", 2, None), ("none", 2, "diverged")):
        folder = root / f"{job}_aug={aug},seed={seed}"
        folder.mkdir()
        source = yaml.safe_load(
            (root / "0_aug=none,seed=0" if aug == "none" else root / "2_aug=snapmix,seed=0")
            .joinpath("config_resolved.yaml")
            .read_text()
        )
        source["seed"] = seed
        (folder / "config_resolved.yaml").write_text(yaml.safe_dump(source))
        if failure:
            (folder / "failure.json").write_text(
                json.dumps({"status": failure, "error": "FloatingPointError: loss nan"})
            )
        job += 1
    return root


def _metric(root: Path, aug: str, key: str) -> list[float]:
    return [
        json.loads((root / f / "metrics.json").read_text())[key]
        for f in sorted(p.name for p in root.iterdir())
        if f"aug={aug}," in f and (root / f / "metrics.json").is_file()
    ]


def test_report_matches_means_and_counts_every_run(sweep, tmp_path):
    result = build_report(["experiment=table6", f"runs={sweep}", f"out={tmp_path}"], CONF)
    filled = result["filled"]
    assert filled.counts() == {
        "expected": 18,
        "finished": 4,
        "failed": 1,
        "diverged": 1,
        "missing": 12,
        "unexpected": 0,
        "outside": 0,
    }
    for aug, label in (("none", "Vanilla (CVPR'16) [14]"), ("snapmix", "SnapMix (AAAI'21) [19]")):
        cell = filled.cells[(label, "flowers102")]
        for key in ("val_top1", "test_top1"):
            values = _metric(sweep, aug, key)
            assert len(values) == 2
            mean, std, n = cell.stats(key)
            assert n == 2 and mean == pytest.approx(statistics.fmean(values))
            assert std == pytest.approx(statistics.stdev(values))
    # CSV: one line per row, column and metric; the paper's value beside ours.
    rows = list(csv.DictReader((tmp_path / "report.csv").open()))
    assert len(rows) == 6 * 2
    vanilla = next(r for r in rows if r["row"].startswith("Vanilla") and r["metric"] == "test_top1")
    assert float(vanilla["paper"]) == 59.14
    assert float(vanilla["mean"]) == pytest.approx(statistics.fmean(_metric(sweep, "none", "test_top1")))
    assert float(vanilla["diff"]) == pytest.approx(float(vanilla["mean"]) - 59.14)
    assert (vanilla["n"], vanilla["missing"], vanilla["diverged"], vanilla["failed"]) == ("2", "0", "1", "0")
    # Numbers as metrics.json holds them (4 decimals at most), without float noise (-50.667100000000005).
    numbers = [v for r in rows for k, v in r.items() if k in ("mean", "std", "diff", "fit_seconds") and v]
    assert numbers and all(len(v.partition(".")[2]) <= 4 for v in numbers), numbers
    # Markdown: missing cells say so, never a number; the settings line names what was shortened.
    text = (tmp_path / "report.md").read_text()
    puzzle = next(line for line in text.splitlines() if line.startswith("| PuzzleMix"))
    assert "3 missing" in puzzle and "±" not in puzzle
    assert "18 runs expected: 4 finished, 1 failed, 1 diverged, 12 missing" in text
    # The failed and diverged runs are named with their reason.
    assert re.search(r"^- failed: \S+: .+$", text, re.M) and re.search(
        r"^- diverged: \S+: .+$", text, re.M
    ), text
    assert "trainer.max_epochs: 2 in the runs (experiment file: 300)" in text
    assert "dataset.image_size: 32 in the runs (experiment file: 224)" in text
    # Every setting is compared, not a chosen few: the resize and the fixture's small fractal bank too.
    assert "dataset.resize: 36 in the runs (experiment file: 256)" in text
    assert "fractals.count: 8 in the runs" in text
    # debug=fast's two batches, as the count they are (the float-typed setting holds 2.0).
    assert "trainer.limit_train_batches: 2 in the runs (experiment file: null)" in text
    assert "seed:" not in text and "paths." not in text  # what varies by design or says where things are
    assert "log_every_n_steps" not in text  # how often it logs (debug=fast: every step)
    tex = (tmp_path / "report.tex").read_text()
    assert "\\toprule" in tex and "\\bottomrule" in tex and "59.14" in tex
    # The LaTeX table's caption names what differs from the experiment file; its notes are comments.
    caption = next(line for line in tex.splitlines() if line.startswith("\\caption"))
    assert "Settings that differ from the experiment file: " in caption
    assert "trainer.max\\_epochs: 2 in the runs (experiment file: 300)" in caption
    assert re.search(r"^% failed: ", tex, re.M)
    # Every cell alike (all shortened the same way): nothing marked uneven, the settings line says it.
    assert "‡" not in text and "ddagger" not in tex
    # But a number of runs cut short (debug=fast's batches) is marked in its cell, not only in the
    # notes: its Δ is against the paper's whole protocol. Cells without runs carry no mark.
    vanilla_line = next(line for line in text.splitlines() if line.startswith("| Vanilla"))
    assert "(2); 1 diverged §" in vanilla_line and "§" not in puzzle
    assert "§ marks the cells whose runs were cut short of their epochs or splits" in text
    assert "$^\\S$" in tex and "$^\\S$: runs cut short" in caption
    assert vanilla["shortened_by"] == (
        "trainer.limit_test_batches=2; trainer.limit_train_batches=2; trainer.limit_val_batches=2"
    )
    assert {r["settings_differ"] for r in rows if r["n"] not in ("", "0")} != {""}
    assert (tmp_path / "accuracy_vs_compute.png").stat().st_size > 1000


def test_a_misspelt_experiment_gets_a_did_you_mean(tmp_path):
    from diffusemix_bench.errors import ConfigError

    with pytest.raises(
        ConfigError, match="experiment=table66: no such experiment file .*did you mean table6"
    ):
        build_report(["experiment=table66", f"runs={tmp_path}"], CONF)
    # report.py's own choice, none (the runs' own table), is among those named.
    with pytest.raises(
        ConfigError, match=r"experiment=nnone: .*did you mean none\? .*or experiment=none: the runs"
    ):
        build_report(["experiment=nnone", f"runs={tmp_path}"], CONF)


def test_out_must_be_a_folder(sweep, tmp_path):
    """out= names the report's folder: a file, a file's name or a folder that cannot be made is one
    message naming out=, not a traceback or a folder called report.md."""
    from diffusemix_bench.reporting.runs import ReportError

    (tmp_path / "notes.txt").write_text("mine\n")
    cases = [
        (tmp_path / "notes.txt", r"notes\.txt is a file; out= is the folder"),
        (
            tmp_path / "table.md",
            r"table\.md: out= is the folder .*not a file name; give a folder \(out=.*table\)",
        ),
        (tmp_path / "notes.txt" / "x", r"notes\.txt/x: the folder cannot be made \(Not a directory\)"),
    ]
    for out, message in cases:
        with pytest.raises(ReportError, match=message):
            build_report(["experiment=table6", f"runs={sweep}", f"out={out}"], CONF)
    assert (tmp_path / "notes.txt").read_text() == "mine\n" and not (tmp_path / "table.md").exists()


def test_a_misspelt_report_setting_gets_a_did_you_mean(tmp_path):
    """report.py run=<folder> (runs= meant) or experment=: the refusal names the setting meant."""
    with pytest.raises(
        ConfigError,
        match=r"needs runs=<sweep folder> \(and experiment=<name> for a paper's table\) \(run=: did you mean runs=\?\)",
    ):
        build_report(["experiment=table6", f"run={tmp_path}"], CONF)
    with pytest.raises(ConfigError, match=r"^report\.py experment=: did you mean experiment=\?"):
        build_report(["experment=table6", f"runs={tmp_path}"], CONF)
    # With runs= given too: out= misspelt was taken for a setting that chooses runs ("none of the
    # runs given has the setting output").
    for given, meant in (("output", "out"), ("ot", "out"), ("rnus", "runs")):
        with pytest.raises(ConfigError, match=rf"^report\.py {given}=: did you mean {meant}=\?"):
            build_report(["experiment=table6", f"runs={tmp_path}", f"{given}={tmp_path / 'o'}"], CONF)
    # runs= given a file: said to be a file (it read "no run folders under it").
    (tmp_path / "notes.txt").write_text("x")
    from diffusemix_bench.reporting.runs import ReportError

    with pytest.raises(ReportError, match=r"runs=.*notes\.txt is a file; runs= takes folders"):
        build_report([f"runs={tmp_path / 'notes.txt'}"], CONF)


def test_aug_beside_an_experiments_arms_is_refused(tmp_path):
    """An ablation sweeps arm= (conf/arm/): aug= beside it would replace every arm's method, so the
    report refuses it as train.py does, instead of expecting runs that command cannot make."""
    with pytest.raises(ConfigError, match=r"aug=none,mixup: .*chosen by arm=.*experiment=study_flowers"):
        build_report(["experiment=study_flowers", f"runs={tmp_path}", "aug=none,mixup"], CONF)


def test_a_run_whose_dataset_name_is_damaged_is_not_used(sweep, tmp_path):
    """A config_resolved.yaml whose dataset.name is a list (edited by hand) gave a TypeError: the
    run belongs to no cell, counted with the runs not used."""
    damaged = tmp_path / "damaged"
    shutil.copytree(sweep, damaged)
    config = damaged / "0_aug=none,seed=0" / "config_resolved.yaml"
    data = yaml.safe_load(config.read_text())
    data["dataset"]["name"] = [1, 2]
    config.write_text(yaml.safe_dump(data))
    filled = build_report(["experiment=table6", f"runs={damaged}"], CONF)["filled"]
    reference = build_report(["experiment=table6", f"runs={sweep}"], CONF)["filled"]
    counts = reference.counts()
    assert filled.counts() == {
        **counts,
        "finished": counts["finished"] - 1,
        "missing": counts["missing"] + 1,
        "outside": 1,
    }


def test_the_notes_name_data_unlike_the_release_and_the_code_the_runs_were_made_by(sweep, tmp_path):
    """A run whose official split differs from the published release (metrics.json's data_notes)
    is named as not comparable with the paper's numbers; runs made by more than one state of the
    code (commits, uncommitted changes) are named with their counts."""
    from diffusemix_bench.reporting.formats import notes

    runs = tmp_path / "runs"
    shutil.copytree(sweep, runs)
    path = runs / "0_aug=none,seed=0" / "metrics.json"
    metrics = json.loads(path.read_text())
    metrics["data_notes"] = {"train": {"differs_from_release": "1,020 images here, 1,020 in the release"}}
    metrics["git"] = {"commit": "a" * 40, "dirty": True}
    path.write_text(json.dumps(metrics))
    filled = build_report(["experiment=table6", f"runs={runs}"], CONF)["filled"]
    # (the fixture's splits are 12 images each, against the release's: every run's are named)
    line, fixture = filled.release_differs()
    assert line.startswith(
        "flowers102: 1 run read data unlike the published release (train: 1,020 images here, 1,020 in the "
        "release: "
    ) and line.endswith("not comparable with the paper's numbers, nor is the difference from them")
    assert fixture.startswith(
        "flowers102: 3 runs read data unlike the published release (train: 12 images of the official train "
        "split here, 1,020 in the published release; val: 12 images"
    )
    # A validation holdout of the official train split has that split's note: said once, for both.
    held = {"differs_from_release": "20,000 images of the official train split here, 100,000 in the release"}
    metrics["data_notes"] = {"train": held, "val": held}
    path.write_text(json.dumps(metrics))
    once = build_report(["experiment=table6", f"runs={runs}"], CONF)["filled"].release_differs()[0]
    assert "(train and val: 20,000 images of the official train split here, 100,000 in the release: " in once
    (code,) = filled.code()
    assert "aaaaaaaaaa with uncommitted changes (1 run)" in code and code.startswith(
        "Code: the runs were made by "
    )
    assert line in notes(filled) and code in notes(filled)
    # Runs of one clean commit: nothing to say.
    for p in runs.glob("*/metrics.json"):
        metrics = json.loads(p.read_text())
        metrics["git"] = {"commit": "b" * 40, "dirty": False}
        p.write_text(json.dumps(metrics))
    six = build_report(["experiment=table6", f"runs={runs}"], CONF)["filled"]
    assert six.code() == [] and not any("Lower is better" in line for line in notes(six))
    # One commit with uncommitted changes: said as one.
    for p in runs.glob("*/metrics.json"):
        metrics = json.loads(p.read_text())
        metrics["git"] = {"commit": "c" * 40, "dirty": True}
        p.write_text(json.dumps(metrics))
    (code,) = build_report(["experiment=table6", f"runs={runs}"], CONF)["filled"].code()
    assert code.startswith("Code: every run was made by commit cccccccccc with uncommitted changes ("), code
    # A run trained in two parts by two commits names both (metrics.json's parts), in order.
    for p in runs.glob("*/metrics.json"):
        metrics = json.loads(p.read_text())
        metrics["git"] = {"commit": "b" * 40, "dirty": False}
        if "seed=0" in p.parent.name and "aug=none" in p.parent.name:
            metrics["parts"] = [None, {"git": {"commit": "d" * 40, "dirty": False}}, {"git": metrics["git"]}]
        p.write_text(json.dumps(metrics))
    (code,) = build_report(["experiment=table6", f"runs={runs}"], CONF)["filled"].code()
    assert "no commit recorded then dddddddddd then bbbbbbbbbb (1 run)" in code, code
    assert code.startswith("Code: the runs were made by 2 states of the code: "), code


def test_an_attempt_names_every_setting_it_tried_and_is_kept_once(tmp_path):
    """An attempt's record names the settings a resume may change too (its epochs, its evaluation:
    they are part of what it tried); TensorBoard's files move with it; a start stopped between its
    moves is completed by the next start, not recorded twice."""
    from omegaconf import OmegaConf

    from diffusemix_bench.training.resume import keep_earlier_attempt

    run = tmp_path / "run"
    run.mkdir()

    def settings(*overrides):
        return finalize(compose_config(list(overrides)), run)

    OmegaConf.save(
        settings("trainer.max_epochs=100", "eval.fgsm=true"), run / "config_resolved.yaml", resolve=True
    )
    (run / "failure.json").write_text('{"status": "diverged", "error": "loss nan"}')
    (run / "events.out.tfevents.1.host").write_bytes(b"tb")
    now = settings("trainer.max_epochs=50")
    # A start stopped after recording the attempt, before moving its files:
    (run / "attempts" / "1").mkdir(parents=True)
    (run / "attempts" / "1" / "attempt.json").write_text(
        '{"status": "diverged", "settings_differ": ["x: 1 -> 2"]}'
    )
    kept = keep_earlier_attempt(now, run)
    assert kept["folder"] == "attempts/1" and kept["settings_differ"] == ["x: 1 -> 2"]
    assert sorted(p.name for p in (run / "attempts").iterdir()) == ["1"]
    assert (run / "attempts" / "1" / "events.out.tfevents.1.host").is_file() and not (
        run / "failure.json"
    ).exists()
    # A second attempt in the folder: its own number, every setting it tried.
    OmegaConf.save(
        settings("trainer.max_epochs=100", "eval.fgsm=true"), run / "config_resolved.yaml", resolve=True
    )
    (run / "failure.json").write_text('{"status": "failed", "error": "boom"}')
    second = keep_earlier_attempt(now, run)
    assert second["folder"] == "attempts/2"
    assert "trainer.max_epochs: 100 -> 50" in second["settings_differ"]
    assert "eval.fgsm: True -> False" in second["settings_differ"]


def test_runs_with_different_settings_in_one_cell_are_refused(sweep, tmp_path):
    mixed = tmp_path / "mixed"
    shutil.copytree(sweep, mixed)
    config = mixed / "1_aug=none,seed=1" / "config_resolved.yaml"
    data = yaml.safe_load(config.read_text())
    data["trainer"]["max_epochs"] = 5
    config.write_text(yaml.safe_dump(data))
    with pytest.raises(ReportError, match="trainer.max_epochs=2 vs 5"):
        build_report(["experiment=table6", f"runs={mixed}"], CONF)
    # Early stopping and the metric that selects the tested checkpoint change the number; how often
    # checkpoints are written and what is shown do not.
    data["trainer"]["max_epochs"] = 2
    data["callbacks"].update(early_stopping_patience=3, lr_monitor=False, checkpoint_every_n_steps=5)
    config.write_text(yaml.safe_dump(data))
    with pytest.raises(ReportError, match=r"settings \(callbacks\.early_stopping_patience=null vs 3\)"):
        build_report(["experiment=table6", f"runs={mixed}"], CONF)
    # Two runs of one seed in a cell: refused, naming both.
    twice = tmp_path / "twice"
    shutil.copytree(sweep, twice)
    shutil.copytree(twice / "0_aug=none,seed=0", twice / "9_aug=none,seed=0")
    with pytest.raises(
        ReportError, match=r"2 runs of seed 0 \(.*\), trained alike \(the same run twice\); give"
    ):
        build_report(["experiment=table6", f"runs={twice}"], CONF)
    # ... unless they read two image folders: said, with the setting that reports each on its own,
    # and another data where their sizes differ.
    copy = twice / "9_aug=none,seed=0" / "config_resolved.yaml"
    kept = copy.read_text()
    data = yaml.safe_load(kept)
    data["dataset"]["root"] = str(tmp_path / "other_flowers")
    copy.write_text(yaml.safe_dump(data))
    with pytest.raises(ReportError) as refused:
        build_report(["experiment=table6", f"runs={twice}"], CONF)
    first = yaml.safe_load((twice / "0_aug=none,seed=0" / "config_resolved.yaml").read_text())["paths"]
    assert (
        ", trained on the same settings from two data folders (their data folder (dataset.root, else "
        f"paths.data_dir)={first['data_dir']} vs {tmp_path / 'other_flowers'}): report each folder's runs on "
        "their own; give the report only one of them (runs=...)"
    ) in str(refused.value)
    # Both named by dataset.root: the setting that chooses each.
    other = twice / "0_aug=none,seed=0" / "config_resolved.yaml"
    other_kept = other.read_text()
    other_data = yaml.safe_load(other_kept)
    other_data["dataset"]["root"] = str(tmp_path / "flowers")
    other.write_text(yaml.safe_dump(other_data))
    with pytest.raises(ReportError) as refused:
        build_report(["experiment=table6", f"runs={twice}"], CONF)
    assert (
        f"(dataset.root={tmp_path / 'flowers'} vs {tmp_path / 'other_flowers'}): report each folder's runs on "
        f"their own (add dataset.root={tmp_path / 'flowers'} to report.py's command, then "
        f"dataset.root={tmp_path / 'other_flowers'}); give"
    ) in str(refused.value)
    other.write_text(other_kept)
    measured = twice / "9_aug=none,seed=0" / "metrics.json"
    before = measured.read_text()
    metrics = json.loads(before)
    metrics["train_images"] += 1
    measured.write_text(json.dumps(metrics))
    with pytest.raises(
        ReportError, match=r", trained on different data \(their data folder .*, train_images=\d+ vs \d+\)"
    ):
        build_report(["experiment=table6", f"runs={twice}"], CONF)
    measured.write_text(before)
    copy.write_text(kept)
    # Runs a setting tells apart that the table's rows do not (aug.lam in Table 6): said so.
    lam = twice / "9_aug=none,seed=0" / "config_resolved.yaml"
    original = lam.read_text()
    data = yaml.safe_load(original)
    data["aug"]["fancy"] = 0.3
    lam.write_text(yaml.safe_dump(data))
    with pytest.raises(
        ReportError,
        match=r"2 runs of seed 0 \(.*\), which differ in aug\.fancy=null vs 0\.3: the rows of table6 do not tell",
    ):
        build_report(["experiment=table6", f"runs={twice}"], CONF)
    lam.write_text(original)
    # ... unless one of them failed (a seed run again after a failure): the finished run is the
    # cell's, and the notes say which run it replaces.
    (twice / "9_aug=none,seed=0" / "metrics.json").unlink()
    (twice / "9_aug=none,seed=0" / "failure.json").write_text('{"status": "failed", "error": "boom"}')
    filled = build_report(["experiment=table6", f"runs={twice}"], CONF)["filled"]
    reference = build_report(["experiment=table6", f"runs={sweep}"], CONF)["filled"]
    assert filled.counts() == reference.counts()
    assert filled.replaced() == [
        f"Vanilla (CVPR'16) [14] (flowers102): the failed run in {(twice / '9_aug=none,seed=0').resolve()} is left out for "
        f"the finished run of the same seed in {(twice / '0_aug=none,seed=0').resolve()} (9_aug=none,seed=0 "
        "failed: boom)"
    ]
    from diffusemix_bench.reporting.formats import notes

    assert filled.replaced()[0] in notes(filled)
    # A copy of the finished run whose metrics.json was damaged: left out, and the note says why.
    (twice / "9_aug=none,seed=0" / "failure.json").unlink()
    (twice / "9_aug=none,seed=0" / "metrics.json").write_text('{"val_top1": ')
    filled = build_report(["experiment=table6", f"runs={twice}"], CONF)["filled"]
    assert filled.replaced()[0].endswith(
        "(9_aug=none,seed=0 failed: metrics.json is damaged (Expecting value: line 1 column 14 (char 13)))"
    )
    (twice / "9_aug=none,seed=0" / "metrics.json").unlink()
    (twice / "9_aug=none,seed=0" / "failure.json").write_text('{"status": "failed", "error": "boom"}')
    # A seed that failed twice, trained alike: one failed run in its cell (the later), not a refusal.
    (twice / "0_aug=none,seed=0" / "metrics.json").unlink()
    (twice / "0_aug=none,seed=0" / "failure.json").write_text('{"status": "failed", "error": "again"}')
    filled = build_report(["experiment=table6", f"runs={twice}"], CONF)["filled"]
    counts = reference.counts()
    assert filled.counts() == {**counts, "finished": counts["finished"] - 1, "failed": counts["failed"] + 1}
    assert filled.replaced() == [
        f"Vanilla (CVPR'16) [14] (flowers102): the failed run in {(twice / '9_aug=none,seed=0').resolve()} is left out for "
        f"the failed run of the same seed in {(twice / '0_aug=none,seed=0').resolve()} (9_aug=none,seed=0 "
        "failed: boom)"
    ]


def test_settings_the_sweep_does_not_vary_choose_the_runs_reported(sweep, tmp_path):
    """A sweep of a setting the table's rows do not tell apart (aug.lam over demo's rows, optim.lr
    here) was refused whatever the report was given: the refusal says to add each value to
    report.py's command, and a setting given that the experiment does not sweep chooses the runs
    reported; the others are not used, and counted."""
    from diffusemix_bench.reporting.formats import notes

    runs = tmp_path / "runs"
    shutil.copytree(sweep, runs)
    shutil.copytree(runs / "0_aug=none,seed=0", runs / "9_aug=none,optim.lr=0.05,seed=0")
    config = runs / "9_aug=none,optim.lr=0.05,seed=0" / "config_resolved.yaml"
    data = yaml.safe_load(config.read_text())
    lr = data["optim"]["lr"]
    data["optim"]["lr"] = 0.05
    config.write_text(yaml.safe_dump(data))
    with pytest.raises(ReportError) as refused:
        build_report(["experiment=table6", f"runs={runs}"], CONF)
    assert (
        f"which differ in optim.lr={lr} vs 0.05: the rows of table6 do not tell them apart (report each value's "
        f"runs on their own: add optim.lr={lr} to report.py's command, then optim.lr=0.05;"
    ) in str(refused.value)
    reference = build_report(["experiment=table6", f"runs={sweep}"], CONF)["filled"]
    filled = build_report(["experiment=table6", f"runs={runs}", f"optim.lr={lr}"], CONF)["filled"]
    assert filled.counts() == reference.counts()
    assert [r.folder.name for r in filled.not_chosen] == ["9_aug=none,optim.lr=0.05,seed=0"]
    said = filled.summary()
    assert (
        f"1 run folder given has other settings than optim.lr={lr} (given to report.py) and is not used"
        in said
    )
    assert said in notes(filled)
    other = build_report(["experiment=table6", f"runs={runs}", "optim.lr=0.05"], CONF)["filled"]
    chosen = [r.folder.name for cell in other.cells.values() for r in cell.runs]
    assert chosen == ["9_aug=none,optim.lr=0.05,seed=0"] and len(other.not_chosen) == 6
    # Settings that tell no runs apart (where the data is, a resume), pasted from the sweep's
    # command: no run is left out for them.
    pasted = ["paths.data_dir=/elsewhere", "ckpt_path=auto", "eval.fgsm=true", f"optim.lr={lr}"]
    again = build_report(["experiment=table6", f"runs={runs}", *pasted], CONF)["filled"]
    assert [r.folder.name for r in again.not_chosen] == ["9_aug=none,optim.lr=0.05,seed=0"]
    # Both values: the two runs of seed 0 again.
    with pytest.raises(ReportError, match="which differ in optim.lr"):
        build_report(["experiment=table6", f"runs={runs}", f"optim.lr={lr},0.05"], CONF)
    # A setting a run has not (aug.lam of aug=none, snapmix's runs here) does not tell it apart.
    shutil.rmtree(runs / "9_aug=none,optim.lr=0.05,seed=0")
    assert (
        build_report(["experiment=table6", f"runs={runs}", "++aug.lam=0.3"], CONF)["filled"].not_chosen == []
    )
    # A config group's option is read from the run's record of its choices (trainer has no name
    # field: every run was left out); a run without that record is not told apart.
    hydra = runs / "0_aug=none,seed=0" / ".hydra"
    hydra.mkdir(exist_ok=True)
    (hydra / "hydra.yaml").write_text("hydra:\n  runtime:\n    choices:\n      trainer: default\n")
    gpu = build_report(["experiment=table6", f"runs={runs}", "trainer=gpu"], CONF)["filled"]
    assert [r.folder.name for r in gpu.not_chosen] == ["0_aug=none,seed=0"]
    assert (
        build_report(["experiment=table6", f"runs={runs}", "trainer=default"], CONF)["filled"].not_chosen
        == []
    )
    # None chosen: said, with the values the runs ran with, not an empty table.
    with pytest.raises(
        ReportError,
        match=rf"report.py optim.lr=0.07: none of the 6 runs with the setting optim.lr ran with that value \(they ran "
        rf"with optim.lr={lr}: ",
    ):
        build_report(["experiment=table6", f"runs={runs}", "optim.lr=0.07"], CONF)


def test_a_run_made_before_a_setting_existed_shares_its_cell(sweep, tmp_path):
    """A run whose saved settings predate dataset.warp (or SnapMix's aug.same_class_weights) was
    trained as the setting's earlier value trains: it is averaged with a later run of that value,
    not refused as trained otherwise (warp=None vs False), and no deviation is named for it."""
    older = tmp_path / "older"
    shutil.copytree(sweep, older)
    for job, section, key in (
        ("1_aug=none,seed=1", "dataset", "warp"),
        ("3_aug=snapmix,seed=1", "aug", "same_class_weights"),
    ):
        config = older / job / "config_resolved.yaml"
        data = yaml.safe_load(config.read_text())
        del data[section][key]
        config.write_text(yaml.safe_dump(data))
    result = build_report(["experiment=table6", f"runs={older}", f"out={tmp_path / 'out'}"], CONF)
    reference = build_report(["experiment=table6", f"runs={sweep}", f"out={tmp_path / 'ref'}"], CONF)
    assert result["filled"].counts() == reference["filled"].counts()
    assert (tmp_path / "out" / "report.md").read_text().replace(str(older), str(sweep)) == (
        tmp_path / "ref" / "report.md"
    ).read_text()


def test_a_sweep_restricted_on_the_command_line_expects_only_its_runs(sweep, tmp_path):
    filled = build_report(["experiment=table6", f"runs={sweep}", "aug=none,snapmix", "seed=0,1"], CONF)[
        "filled"
    ]
    # The failed and diverged runs are of seed 2, which this sweep does not run: counted apart, so
    # the expected runs add up.
    assert filled.counts() == {
        "expected": 4,
        "finished": 4,
        "failed": 0,
        "diverged": 0,
        "missing": 0,
        "unexpected": 2,
        "outside": 0,
    }
    # The narrowing is said: the experiment file's sweep makes 6 rows x 3 seeds in this table.
    assert filled.summary().startswith(
        "4 runs expected: 4 finished, 0 failed, 0 diverged, 0 missing (narrowed by aug=none,snapmix seed=0,1: "
        "the experiment file's sweep makes 18 runs in this table); 2 more runs of the table's cells, "
        "with seeds this sweep does not run there (1 failed, 1 diverged), are used too ("
    )
    # Narrowed to one row: the other row's runs are in cells the narrowed sweep does not run (not of
    # seeds it does not run there), used too.
    filled = build_report(["experiment=table6", f"runs={sweep}", "aug=none", "seed=0,1"], CONF)["filled"]
    summary = filled.summary()
    assert "; 1 more run of the table's cells, with seeds this sweep does not run there (1 " in summary
    assert "; 3 more runs in cells this sweep, as narrowed, does not run (2 finished, 1 " in summary, summary


def test_a_sweep_launched_narrowed_is_named_when_the_report_is_not(sweep, tmp_path):
    """A sweep launched with some of the experiment's swept values (multirun.yaml records
    aug=none,snapmix seed=0,1): a report given none of them expects the whole sweep, and says how to
    expect only what was launched; given them, it says nothing more."""
    copy = tmp_path / "sweep"
    shutil.copytree(sweep, copy)
    task = ["experiment=table6", "aug=none,snapmix", "seed=0,1", "debug=fast"]
    (copy / "multirun.yaml").write_text(
        yaml.safe_dump({"hydra": {"overrides": {"task": task}, "sweeper": {"params": {}}}})
    )
    filled = build_report(["experiment=table6", f"runs={copy}", f"out={tmp_path / 'r'}"], CONF)
    said = (
        "The sweep under runs= was launched with aug=none,snapmix seed=0,1 (its multirun.yaml), and this report "
        "expects the experiment file's whole sweep: give aug=none,snapmix seed=0,1 to report.py too to expect "
        "only the runs launched"
    )
    assert filled["filled"].hints == [said] and said in filled["files"]["markdown"].read_text()
    # A setting that chooses nothing (pasted from the sweep's command) leaves it said.
    assert build_report(["experiment=table6", f"runs={copy}", "trainer.devices=1"], CONF)["filled"].hints == [
        said
    ]
    narrowed = build_report(["experiment=table6", f"runs={copy}", "aug=none,snapmix", "seed=0,1"], CONF)
    assert narrowed["filled"].hints == [] and narrowed["filled"].counts()["missing"] == 0
    # Launched with the experiment file's own values (seed=0,1,2): nothing narrowed, nothing said.
    task = ["experiment=table6", "seed=0,1,2", "dataset=flowers102"]
    (copy / "multirun.yaml").write_text(
        yaml.safe_dump({"hydra": {"overrides": {"task": task}, "sweeper": {"params": {}}}})
    )
    assert build_report(["experiment=table6", f"runs={copy}"], CONF)["filled"].hints == []


def test_a_method_setting_given_the_value_its_null_resolves_to_is_no_deviation(sweep, tmp_path):
    """A SnapMix run given aug.alpha at the value the experiment file's null resolves to for its
    dataset and protocol trained alike: averaged with the run given nothing (not refused as trained
    otherwise), and named in no settings line."""
    from omegaconf import OmegaConf

    from diffusemix_bench.reporting.paper import used_setting

    copy = tmp_path / "sweep"
    shutil.copytree(sweep, copy)
    config = copy / "3_aug=snapmix,seed=1" / "config_resolved.yaml"
    data = yaml.safe_load(config.read_text())
    resolved = used_setting(OmegaConf.create(data), "aug.alpha")
    assert data["aug"]["alpha"] is None and resolved is not None
    data["aug"]["alpha"] = resolved
    config.write_text(yaml.safe_dump(data))
    result = build_report(
        ["experiment=table6", f"runs={copy}", "aug=snapmix", "seed=0,1", f"out={tmp_path / 'r'}"], CONF
    )
    assert result["filled"].cells[("SnapMix (AAAI'21) [19]", "flowers102")].stats("val_top1")[2] == 2
    assert "aug.alpha" not in result["files"]["markdown"].read_text()


def test_the_paper_block_of_an_experiment_file_is_read_whole_or_refused():
    """A misspelt key of the paper's numbers would be read as absent (lower_is_beter: the report
    would call the worse method better): named, with the key meant. values_available: false (the
    paper prints no numbers) says so in the notes, and a number given beside it is refused."""
    from diffusemix_bench.reporting.paper import PaperTable

    cfg = compose_config(["experiment=table4"])
    assert PaperTable.from_config(cfg, "table4").lower_is_better
    OmegaConf.set_struct(cfg, False)
    cfg.paper["lower_is_beter"] = cfg.paper.pop("lower_is_better")
    with pytest.raises(
        ConfigError, match=r"paper has the key 'lower_is_beter', .*did you mean 'lower_is_better'"
    ):
        PaperTable.from_config(cfg, "table4")
    cfg = compose_config(["experiment=lambda"])
    assert "its column is empty" in PaperTable.from_config(cfg, "lambda").notes[-1]
    OmegaConf.set_struct(cfg, False)
    cfg.paper.rows[0]["valuse"] = cfg.paper.rows[0].pop("values")
    with pytest.raises(ConfigError, match=r"paper row 'lambda 0.0' has the key 'valuse'"):
        PaperTable.from_config(cfg, "lambda")
    cfg = compose_config(["experiment=lambda"])
    OmegaConf.set_struct(cfg, False)
    cfg.paper.rows[1]["values"]["flowers102"]["test_top1"] = 61.2
    with pytest.raises(
        ConfigError, match=r"values_available is false .* row 'lambda 0.1' gives flowers102 test_top1"
    ):
        PaperTable.from_config(cfg, "lambda")
    # A row's values: the table's columns and metrics (a misspelt one dropped the paper's number
    # without a word), and numbers (the paper's dash written as "-" failed with a traceback).
    for change, said in (
        (lambda row: row["values"].__setitem__("flowers-102", row["values"].pop("flowers102")),
         r"row \"Vanilla \(CVPR'16\) \[14\]\": values name column 'flowers-102', not one of the table's; did you mean flowers102\?"),
        (lambda row: row["values"]["flowers102"].__setitem__("valid_top", row["values"]["flowers102"].pop("valid_top1")),
         r"values of flowers102 name metric 'valid_top', not one of the table's; did you mean valid_top1\?"),
        (lambda row: row["values"]["flowers102"].__setitem__("valid_top1", "-"),
         r"flowers102 valid_top1 is '-', not a number; write the paper's number, or null where it prints none"),
        (lambda row: row["values"]["flowers102"].__setitem__("valid_top1", float("nan")),
         r"flowers102 valid_top1 is nan, not a number"),
        (lambda row: row["values"].__setitem__("flowers102", 95.0),
         r"values of flowers102 must map each metric to its number \(valid_top1: <number>, test_top1: <number>\), got 95\.0"),
    ):  # fmt: skip
        cfg = compose_config(["experiment=table6"])
        OmegaConf.set_struct(cfg, False)
        change(cfg.paper.rows[0])
        with pytest.raises(ConfigError, match=said):
            PaperTable.from_config(cfg, "table6")
    for name in EXPERIMENTS:  # every experiment file's paper block passes
        PaperTable.from_config(compose_config([f"experiment={name}"]), name)


CHEAP = {"table6", "table9", "lambda", "table3"}


@pytest.mark.parametrize(
    "name", [n if n in CHEAP else pytest.param(n, marks=pytest.mark.slow) for n in EXPERIMENTS]
)
def test_every_paper_table_is_produced_from_the_runs(sweep, tmp_path, name, recwarn):
    """Each experiment's table in the paper's layout: every row, missing cells shown as missing.
    (Beside Table 6's runs, one run the experiment made on data no table has: runs made by other
    experiments alone are refused, test_runs_of_another_experiment_alone_are_refused.)"""
    runs = sweep
    if name != "table6":
        runs = tmp_path / "runs"
        shutil.copytree(sweep, runs)
        own = runs / "own_run"
        shutil.copytree(sweep / "0_aug=none,seed=0", own)
        config = yaml.safe_load((own / "config_resolved.yaml").read_text())
        config["experiment_name"], config["dataset"]["name"] = name, "no_table_has_it"
        (own / "config_resolved.yaml").write_text(yaml.safe_dump(config))
    result = build_report([f"experiment={name}", f"runs={runs}", f"out={tmp_path / 'out'}"], CONF)
    # A plot with nothing to draw (no run of the table, no value in the paper) has no empty legend.
    assert not [w for w in recwarn if "No artists with labels" in str(w.message)]
    filled = result["filled"]
    text = result["files"]["markdown"].read_text()
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    cfg = compose_config([f"experiment={name}"])
    labels = [r.label for r in filled.table.rows]
    assert [line.split(" | ")[0][2:] for line in lines[1 : 1 + len(labels)]] == labels
    counts = filled.counts()
    assert (
        counts["expected"] == counts["finished"] + counts["failed"] + counts["diverged"] + counts["missing"]
    )
    if name != "table6":
        assert counts["finished"] == 0 and counts["outside"] == 7
        assert "missing" in text
        # The folders left out are named (the first three).
        assert (
            "6 run folders given were made by another experiment file (experiment=table6) and are not used ("
            in text
        )
        assert "and 3 more)" in text
        # No run of this table: the report does not claim the runs used the experiment's settings.
        assert "No finished run of this table was found" in text and "Every run used" not in text
    if cfg.paper.get("x"):
        assert (tmp_path / "out" / f"{name}.png").is_file()


def test_runs_of_another_experiment_alone_are_refused(sweep, tmp_path):
    """report.py experiment=table5 given Table 6's sweep: none of its runs is Table 5's, and an empty
    table with exit code 0 hid the mistake; refused with the command that reports them."""
    said = _refused_with_no_report(["experiment=table5", f"runs={sweep}"], tmp_path)
    assert said.startswith(
        f"report.py experiment=table5: none of the 6 run folders under runs={sweep} was made by it: they were "
        "made by experiment=table6. Report them with "
    )
    assert said.endswith(f"report.py experiment=table6 runs={sweep} out={tmp_path / 'out'}")  # (out= kept)


def test_runs_of_other_experiments_and_own_runs_together_are_refused(sweep, tmp_path):
    """report.py experiment=table5 given Table 6's runs and a run of no experiment file: none is
    Table 5's, and an empty table with exit code 0 hid the mistake as each kind alone does not."""
    runs = tmp_path / "runs"
    shutil.copytree(sweep, runs)
    own = runs / "own_run"
    shutil.copytree(sweep / "0_aug=none,seed=0", own)
    config = yaml.safe_load((own / "config_resolved.yaml").read_text())
    config["experiment_name"] = None
    (own / "config_resolved.yaml").write_text(yaml.safe_dump(config))
    said = _refused_with_no_report(["experiment=table5", f"runs={runs}"], tmp_path)
    out = tmp_path / "out"
    assert said == (
        f"report.py experiment=table5: none of the 7 run folders under runs={runs} was made by it, so no number "
        "would be reported: 6 were made by experiment=table6, 1 by no experiment file. Report each experiment's "
        f"with {script_command('report.py')} experiment=table6 runs={runs} out={out} (the others given are "
        f"noted there), or every run in a table of their own with {script_command('report.py')} "
        f"experiment=none runs={runs} out={out}"
    )


def test_a_glob_chooses_runs_and_an_empty_out_is_refused(sweep, tmp_path):
    """report.py aug=glob(*snap*), as a sweep's command gives it: its options, the runs chosen as
    by aug=snapmix (it stopped with "ConfigLoader is not set", or a traceback); a glob that
    matches no option is one message; out= left empty is refused, not the current folder."""
    chosen = build_report(
        ["experiment=table6", f"runs={sweep}", "aug=glob(*snap*)", f"out={tmp_path / 'a'}"], CONF
    )
    plain = build_report(["experiment=table6", f"runs={sweep}", "aug=snapmix", f"out={tmp_path / 'b'}"], CONF)
    assert chosen["filled"].counts() == plain["filled"].counts()
    assert chosen["filled"].narrowed_by == plain["filled"].narrowed_by == ["aug=snapmix"]
    with pytest.raises(
        ConfigError, match=r"aug=glob\(\*zzz\*\): no option of conf/aug/ matches; its options are "
    ):
        build_report(["experiment=table6", f"runs={sweep}", "aug=glob(*zzz*)"], CONF)
    with pytest.raises(ConfigError, match=r"^out= names no folder: give out=<folder>, or leave it out"):
        build_report(["experiment=table6", f"runs={sweep}", "out="], CONF)


def _refused_with_no_report(args: list[str], tmp_path) -> str:
    """report.py's refusal of ``args`` (its message), no report folder written."""
    with pytest.raises(ReportError) as refused:
        build_report([*args, f"out={tmp_path / 'out'}"], CONF)
    assert not (tmp_path / "out").exists()
    return str(refused.value)


def test_own_runs_alone_given_a_paper_table_are_refused(tmp_path):
    """report.py experiment=table6 given runs of no experiment file: an all-missing table with exit
    code 0 hid the mistake; refused with the command that reports them in their own table."""
    for i, aug in enumerate(["none", "mixup"]):
        run = tmp_path / "sweep" / f"{i}_aug={aug}"
        run.mkdir(parents=True)
        config = {
            "experiment_name": None,
            "seed": 0,
            "dataset": {"name": "imagefolder"},
            "aug": {"name": aug},
        }
        (run / "config_resolved.yaml").write_text(yaml.safe_dump(config))
    sweep = tmp_path / "sweep"
    said = _refused_with_no_report(["experiment=table6", f"runs={sweep}"], tmp_path)
    assert said.startswith(
        f"report.py experiment=table6: none of the 2 run folders under runs={sweep} was made by it, nor by "
        "any experiment file (train.py experiment=<name>): report them in their own table, "
    )
    assert said.endswith(f"report.py experiment=none runs={sweep} out={tmp_path / 'out'}")


@pytest.mark.slow  # report.py's entry runs in the default suite through test_demo
def test_report_command_prints_the_table(sweep, tmp_path):
    result = run_entry("report.py", ["experiment=table6", f"runs={sweep}", f"out={tmp_path / 'r'}"], tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "| Vanilla (CVPR'16) [14] | 64.48 | " in result.stdout
    assert f"csv: {tmp_path / 'r' / 'report.csv'}" in result.stdout
    bad = run_entry("report.py", ["experiment=table6", f"runs={tmp_path / 'nowhere'}"], tmp_path)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert "runs=" in bad.stderr + bad.stdout and "no such folder" in bad.stderr + bad.stdout
    assert bad.stderr.endswith("\n")  # the message ends its line


def test_a_diverged_training_run_leaves_failure_json(make_cfg):
    from diffusemix_bench.training.run import train

    cfg = make_cfg(["protocol=custom", "optim=sgd", "optim.lr=1e30"])
    with pytest.raises(FloatingPointError):
        train(cfg)
    run = read_run(Path(cfg.paths.output_dir))
    assert run.status == "diverged" and "NonFiniteLossError" in run.reason


def test_a_run_started_anew_where_an_attempt_diverged_keeps_that_attempt(make_cfg, sweep, tmp_path):
    """A new run in a folder where a run diverged before its first checkpoint (a sweep launched
    again with a lower learning rate reuses the job's folder) keeps the attempt's record in
    attempts/1/ instead of overwriting it: metrics.json lists it with the settings that differ,
    and a report names it beside the cell's run."""
    from diffusemix_bench.reporting.formats import notes
    from diffusemix_bench.training.resume import check_no_earlier_run
    from diffusemix_bench.training.run import train

    cfg = make_cfg(["protocol=custom", "optim=sgd", "optim.lr=1e30"])
    with pytest.raises(FloatingPointError):
        train(cfg)
    folder = Path(cfg.paths.output_dir)
    assert not list((folder / "checkpoints").glob("*.ckpt"))  # it stopped before its first checkpoint
    metrics = train(make_cfg(["protocol=custom", "optim=sgd", "optim.lr=0.01"]))
    assert not (folder / "failure.json").exists() and read_run(folder).status == "finished"
    (attempt,) = metrics["earlier_attempts"]
    assert attempt["folder"] == "attempts/1" and attempt["status"] == "diverged"
    assert "NonFiniteLossError" in attempt["error"] and attempt["settings_differ"] == [
        "optim.lr: 1e+30 -> 0.01"
    ]
    kept = folder / "attempts" / "1"
    assert json.loads((kept / "failure.json").read_text())["status"] == "diverged"
    assert yaml.safe_load((kept / "settings.yaml").read_text())["optim"]["lr"] == 1e30
    assert (
        kept / "logs" / "metrics.csv"
    ).is_file()  # its logged steps (the new run's logger would delete them)
    assert json.loads((folder / "metrics.json").read_text())["earlier_attempts"] == [attempt]
    # A report over a sweep one of whose runs started anew so: its notes say so.
    again = tmp_path / "again"
    shutil.copytree(sweep, again)
    shutil.copytree(kept, again / "0_aug=none,seed=0" / "attempts" / "1")
    filled = build_report(["experiment=table6", f"runs={again}"], CONF)["filled"]
    (line,) = filled.attempts()
    assert line == (
        f"Vanilla (CVPR'16) [14] (flowers102): the finished run in {(again / '0_aug=none,seed=0').resolve()} started "
        f"anew after an attempt that diverged there ({attempt['error']}; kept in attempts/1; settings, that "
        "attempt's -> this run's: optim.lr: 1e+30 -> 0.01)"
    )
    assert line in notes(filled)
    # A run that diverged after writing checkpoints: a new run there is refused, and the advice
    # says a resume keeps the settings that diverged.
    (folder / "metrics.json").unlink()
    (folder / "failure.json").write_text('{"status": "diverged", "error": "loss nan"}')
    (folder / "checkpoints").mkdir(exist_ok=True)
    (folder / "checkpoints" / "last.ckpt").write_bytes(b"")
    with pytest.raises(
        ConfigError, match="holds a run that diverged .*keeps the settings that diverged; to train"
    ):
        check_no_earlier_run(folder, None)


def test_a_run_whose_last_part_stopped_is_not_finished(tmp_path):
    """A finished run trained further (or evaluated again) that stopped leaves failure.json beside
    its earlier metrics.json: those are not the run's result, and the run counts as failed."""
    (tmp_path / "config_resolved.yaml").write_text("seed: 0\n")
    (tmp_path / "metrics.json").write_text(json.dumps({"val_top1": 50.0, "test_top1": 40.0}))
    assert read_run(tmp_path).status == "finished"
    (tmp_path / "failure.json").write_text(json.dumps({"status": "failed", "error": "stopped by SIGTERM"}))
    run = read_run(tmp_path)
    assert (run.status, run.reason, run.metrics) == ("failed", "stopped by SIGTERM", None)


# Run folders written here (no training): a finished run's config_resolved.yaml taken from the sweep
# and changed where a test says, beside the metrics.json it would have written.
METRICS = {
    "val_top1": 70.0,
    "test_top1": 65.0,
    "optimizer_steps": 10,
    "images_seen": 40,
    "wall_time_s": 600.0,
    "fit_seconds": 60.0,
}
# What train.py (eval.fgsm=true) or evaluate.py writes beside fgsm_error: Table 4's measurement.
FGSM = {
    "fgsm_settings": {"eps_255": 8.0},
    "robust_split": "test",
    "robust_images": 50,
    "robust_clean_error": 30.0,
}


def _write_runs(sweep: Path, root: Path, runs: list[tuple[int, dict, dict]]) -> Path:
    """One run folder under ``root`` per (seed, settings changed (dotted keys), metrics.json)."""
    source = yaml.safe_load((sweep / "0_aug=none,seed=0" / "config_resolved.yaml").read_text())
    for job, (seed, settings, metrics) in enumerate(runs):
        config = json.loads(json.dumps(source))
        for dotted, value in {"seed": seed, **settings}.items():
            *parents, last = dotted.split(".")
            node = config
            for part in parents:
                node = node.setdefault(part, {})
            node[last] = value
        folder = root / f"{job}_seed={seed}"
        folder.mkdir(parents=True)
        (folder / "config_resolved.yaml").write_text(yaml.safe_dump(config))
        (folder / "metrics.json").write_text(json.dumps({**METRICS, **metrics, "seed": seed}))
    return root


# Vanilla's CIFAR-100 cell of Table 4 (FGSM error at eps 8/255 on the test split), seeds 0 and 1.
TABLE4 = {"experiment_name": "table4", "dataset.name": "cifar100"}
TABLE4_CELL = ["experiment=table4", "dataset=cifar100", "aug=none", "seed=0,1"]
VANILLA = "Vanilla (CVPR'16) [14]"


@pytest.mark.parametrize(
    ("other", "shown"),
    [
        ({"fgsm_settings": {"eps_255": 1.0}}, "eps_255=8.0 vs 1.0"),  # eps 1 added later by evaluate.py
        ({"robust_split": "val"}, "split='test' vs 'val'"),
        # evaluate.py ckpt=<run>/checkpoints/last.ckpt: other weights than the selected checkpoint,
        # whose numbers the run's test columns are.
        (
            {
                "best_checkpoint": "/r/checkpoints/best-epoch003.ckpt",
                "robust_checkpoint": "/r/checkpoints/last.ckpt",
            },
            "checkpoint=null vs 'last.ckpt'",
        ),
    ],
)
def test_robustness_measured_differently_in_one_cell_is_refused(sweep, tmp_path, other, shown):
    runs = _write_runs(
        sweep,
        tmp_path / "runs",
        [(0, TABLE4, {"fgsm_error": 40.0, **FGSM}), (1, TABLE4, {"fgsm_error": 90.0, **FGSM, **other})],
    )
    with pytest.raises(ReportError) as raised:
        build_report([*TABLE4_CELL, f"runs={runs}"], CONF)
    message = str(raised.value)
    assert (
        f"fgsm_error of runs {runs / '0_seed=0'} and {runs / '1_seed=1'} was measured with different"
        in message
    )
    assert shown in message
    # The fix: the run measured otherwise, attacked again with the experiment file's settings.
    # A sweep job's folder has = (and , with more settings), which Hydra's grammar would read: it is
    # quoted so that the command runs when pasted.
    command = f"""evaluate.py 'ckpt="{runs / "1_seed=1"}"' eval.fgsm=true eval.eps=8.0 eval.split=test"""
    assert command in message
    from hydra.core.override_parser.overrides_parser import OverridesParser

    (parsed,) = OverridesParser.create().parse_overrides([shlex.split(command)[1]])
    assert parsed.key_or_group == "ckpt" and parsed.value() == str(runs / "1_seed=1")


def test_short_attacks_of_other_images_in_one_cell_are_refused(sweep, tmp_path):
    """Two runs' FGSM of the first 2 batches (eval.limit_batches=2), one recorded before those
    batches took the classes in turn: other images, named by the record that says so; the fix
    measures the experiment file's whole split."""
    short = {"robust_limit_batches": 2, "robust_images": 20}
    runs = _write_runs(
        sweep,
        tmp_path / "runs",
        [
            (0, TABLE4, {"fgsm_error": 40.0, **FGSM, **short, "robust_limit_order": "classes interleaved"}),
            (1, TABLE4, {"fgsm_error": 90.0, **FGSM, **short}),
        ],
    )
    with pytest.raises(ReportError) as raised:
        build_report([*TABLE4_CELL, f"runs={runs}"], CONF)
    message = str(raised.value)
    assert "limit_order='classes interleaved' vs \"the split's own order\"" in message, message
    assert "metrics.json's robust_limit_order)" in message
    assert "eval.fgsm=true eval.eps=8.0 eval.split=test for each of" in message  # (no limit: the whole split)


def test_robustness_measured_on_other_images_in_one_cell_is_refused(sweep, tmp_path):
    """Two runs' FGSM on the same split and settings but on different images (another copy of the
    data, evaluate.py data_dir=): one cell never averages them."""
    moved = {"robust_images": 48, "robust_data_dir": "/elsewhere/cifar"}
    runs = _write_runs(
        sweep,
        tmp_path / "runs",
        [(0, TABLE4, {"fgsm_error": 40.0, **FGSM}), (1, TABLE4, {"fgsm_error": 90.0, **FGSM, **moved})],
    )
    with pytest.raises(ReportError) as raised:
        build_report([*TABLE4_CELL, f"runs={runs}"], CONF)
    message = str(raised.value)
    assert "was measured on different numbers of images (50 vs 48: metrics.json's robust_images" in message
    assert f"read from {runs / '1_seed=1'}: /elsewhere/cifar" in message
    # ... as many images of another copy (noise in place of the test images, say): refused too,
    # with the command that attacks the run's own data (it had averaged the two).
    same_count = {"robust_images": 50, "robust_data_dir": "/elsewhere/cifar"}
    runs = _write_runs(
        sweep,
        tmp_path / "runs2",
        [(0, TABLE4, {"fgsm_error": 40.0, **FGSM}), (1, TABLE4, {"fgsm_error": 90.0, **FGSM, **same_count})],
    )
    with pytest.raises(ReportError) as raised:
        build_report([*TABLE4_CELL, f"runs={runs}"], CONF)
    message = str(raised.value)
    assert "data_dir=null vs '/elsewhere/cifar'; metrics.json's robust_data_dir" in message, message
    assert (
        f"""evaluate.py 'ckpt="{runs / "1_seed=1"}"' eval.fgsm=true eval.eps=8.0 eval.split=test""" in message
    )


def test_robustness_measured_otherwise_than_the_experiment_is_named(sweep, tmp_path):
    measured = {"fgsm_settings": {"eps_255": 1.0}, "robust_split": "val"}
    runs = _write_runs(
        sweep,
        tmp_path / "runs",
        [
            (0, TABLE4, {"fgsm_error": 40.0, **FGSM, **measured}),
            (1, TABLE4, {"fgsm_error": 42.0, **FGSM, **measured}),
        ],
    )
    result = build_report([*TABLE4_CELL, f"runs={runs}", f"out={tmp_path / 'out'}"], CONF)
    text = result["files"]["markdown"].read_text()
    assert (
        f"fgsm_error measured with eps_255=1.0 on the val split in {VANILLA} (cifar100) "
        "(experiment file: eps_255=8.0 on the test split)" in text
    )
    assert "Robustness: fgsm_error: measured with eps_255=1.0 on the val split" in text
    assert "Every run used the experiment file's settings" not in text
    rows = list(csv.DictReader(result["files"]["csv"].open()))
    vanilla = next(r for r in rows if r["row"] == VANILLA and r["column"] == "cifar100")
    assert vanilla["measured_with"] == "eps_255=1.0 on the val split" and vanilla["n"] == "2"


def test_runs_differing_only_in_what_was_measured_after_training_share_a_cell(sweep, tmp_path):
    """eval.* (seed 1 trained without eval.fgsm, attacked later by evaluate.py) and the accelerator
    change nothing trained: the runs share their cell, and no line names them."""
    runs = _write_runs(
        sweep,
        tmp_path / "runs",
        [
            (0, {**TABLE4, "eval.fgsm": True, "trainer.accelerator": "gpu"}, {"fgsm_error": 40.0, **FGSM}),
            # Attacked by evaluate.py on the run's selected checkpoint (recorded by its absolute path).
            (
                1,
                {**TABLE4, "eval.fgsm": False, "trainer.accelerator": "cpu"},
                {
                    "fgsm_error": 42.0,
                    **FGSM,
                    "best_checkpoint": "/r/1/checkpoints/best-epoch003.ckpt",
                    "robust_checkpoint": "/elsewhere/1/checkpoints/best-epoch003.ckpt",
                },
            ),
            # No checkpoint selected on validation: last.ckpt's numbers, and evaluate.py attacks it.
            (
                2,
                {**TABLE4, "eval.fgsm": False, "trainer.accelerator": "cpu"},
                {
                    "fgsm_error": 41.0,
                    **FGSM,
                    "best_checkpoint": None,
                    "robust_checkpoint": "/r/2/checkpoints/last.ckpt",
                },
            ),
        ],
    )
    result = build_report([*TABLE4_CELL[:-1], "seed=0,1,2", f"runs={runs}"], CONF)
    mean, _, n = result["filled"].cells[(VANILLA, "cifar100")].stats("fgsm_error")
    assert n == 3 and mean == pytest.approx(41.0)
    text = result["files"]["markdown"].read_text()
    assert "eval.fgsm" not in text and "trainer.accelerator" not in text
    assert "Robustness: fgsm_error: measured with eps_255=8.0 on the test split" in text


def test_a_finished_run_without_the_metric_is_counted_in_its_cell(sweep, tmp_path):
    runs = _write_runs(sweep, tmp_path / "runs", [(0, TABLE4, {"fgsm_error": 40.0, **FGSM}), (1, TABLE4, {})])
    result = build_report([*TABLE4_CELL, f"runs={runs}", f"out={tmp_path / 'out'}"], CONF)
    text = result["files"]["markdown"].read_text()
    row = next(line for line in text.splitlines() if line.startswith(f"| {VANILLA}"))
    assert "40.00 ± – (1); 1 finished without a value" in row
    cell = result["filled"].cells[(VANILLA, "cifar100")]
    assert [r.folder for r in cell.without("fgsm_error")] == [runs / "1_seed=1"]
    assert "1 finished run has no fgsm_error, counted in its cell as 'finished without a value' (" in text
    rows = list(csv.DictReader(result["files"]["csv"].open()))
    vanilla = next(r for r in rows if r["row"] == VANILLA and r["column"] == "cifar100")
    assert (vanilla["n"], vanilla["no_value"]) == ("1", "1")
    assert "$40.00$ (1; 1 finished without a value)" in result["files"]["latex"].read_text()


def test_latex_cells_are_valid_and_count_what_markdown_counts(sweep, tmp_path):
    runs = _write_runs(sweep, tmp_path / "runs", [(0, TABLE4, {"fgsm_error": 75.0, **FGSM})])
    result = build_report([*TABLE4_CELL, f"runs={runs}", f"out={tmp_path / 'out'}"], CONF)
    tex = result["files"]["latex"].read_text()
    assert "–" not in tex  # no Unicode dash, in math mode or out of it
    # Errors: the notes say which way Δ (ours minus the paper's) is better.
    assert "Lower is better in this table (fgsm_error, clean_error): a positive Δ" in (
        result["files"]["markdown"].read_text()
    )
    vanilla = next(line for line in tex.splitlines() if line.startswith("Vanilla"))
    assert "$75.00$ (1; 1 missing)" in vanilla
    # A cell the sweep expects but no run filled: the count, as markdown gives it.
    mixup = next(line for line in tex.splitlines() if line.startswith("Mixup"))
    assert "-- (not in the sweep)" in mixup
    full = build_report(["experiment=table4", f"runs={runs}", f"out={tmp_path / 'full'}"], CONF)
    tex = full["files"]["latex"].read_text()
    assert "-- (3 missing)" in next(line for line in tex.splitlines() if line.startswith("Mixup"))
    assert "$75.00$ (1; 2 missing)" in next(line for line in tex.splitlines() if line.startswith("Vanilla"))


def test_training_time_is_the_fit_alone(sweep, tmp_path, monkeypatch):
    """fit_seconds (training alone), not wall_time_s (start-up, evaluation, attacks), where the
    report says training; wall time, said so, only for a run that predates fit_seconds."""
    from matplotlib.figure import Figure

    drawn = []
    monkeypatch.setattr(
        Figure,
        "savefig",
        lambda fig, path, **kw: (
            drawn.append((fig.axes[0].get_xlabel(), [c.get_offsets()[0][0] for c in fig.axes[0].collections]))
            or said.append(kw["metadata"]["Description"])
        ),
    )
    said = []
    fit = {"fit_seconds": 3600.0, "wall_time_s": 7200.0}
    runs = _write_runs(sweep, tmp_path / "runs", [(0, {}, fit), (1, {}, fit)])
    result = build_report(["experiment=table6", "aug=none", "seed=0,1", f"runs={runs}"], CONF)
    text = result["files"]["markdown"].read_text()
    assert f"| {VANILLA} | 10 / 40 / 60.0 |" in text and "† wall time" not in text
    assert drawn[-1] == ("hours per run: training", [pytest.approx(1.0)])
    rows = list(csv.DictReader(result["files"]["csv"].open()))
    assert float(rows[0]["fit_seconds"]) == 3600.0 and float(rows[0]["wall_time_s"]) == 7200.0
    # A run written before fit_seconds: its wall time, marked as such.
    older = {k: v for k, v in METRICS.items() if k != "fit_seconds"}
    (runs / "1_seed=1" / "metrics.json").write_text(json.dumps({**older, "wall_time_s": 7200.0, "seed": 1}))
    files = build_report(["experiment=table6", "aug=none", "seed=0,1", f"runs={runs}"], CONF)["files"]
    text = files["markdown"].read_text()
    assert f"| {VANILLA} | 10 / 40 / 90.0† |" in text and "† wall time (start-up" in text
    # report.csv's fit_seconds is no mean of one run's said as the cell's: empty (wall_time_s is whole).
    rows = list(csv.DictReader(files["csv"].open()))
    assert rows[0]["fit_seconds"] == "" and float(rows[0]["wall_time_s"]) == 7200.0
    assert drawn[-1] == (
        "hours per run: training (wall time where a run has no fit_seconds)",
        [pytest.approx(1.5)],
    )
    # A run with no time at all: the cell's time is not the other run's, said as the cell's.
    timeless = {k: v for k, v in older.items() if k != "wall_time_s"}
    (runs / "1_seed=1" / "metrics.json").write_text(json.dumps({**timeless, "seed": 1}))
    files = build_report(["experiment=table6", "aug=none", "seed=0,1", f"runs={runs}"], CONF)["files"]
    assert f"| {VANILLA} | 10 / 40 / – |" in files["markdown"].read_text()
    # Beside a cell with a time, the figure names the cell it leaves out.
    _write_runs(
        sweep,
        tmp_path / "runs" / "snapmix",
        [(0, {"aug.name": "snapmix"}, fit), (1, {"aug.name": "snapmix"}, fit)],
    )
    build_report(["experiment=table6", "aug=none,snapmix", "seed=0,1", f"runs={runs}"], CONF)
    assert drawn[-1] == ("hours per run: training", [pytest.approx(1.0)])
    assert said[-1] == f"Left out, a run without a recorded training time: {VANILLA} (flowers102)"
    # Runs under a minute: two significant digits, not 0.0.
    short = {"fit_seconds": 0.5, "wall_time_s": 3.0}
    runs = _write_runs(sweep, tmp_path / "short", [(0, {}, short), (1, {}, short)])
    files = build_report(["experiment=table6", "aug=none", "seed=0,1", f"runs={runs}"], CONF)["files"]
    assert f"| {VANILLA} | 10 / 40 / 0.0083 |" in files["markdown"].read_text()


def test_every_expected_run_is_counted_once(sweep, tmp_path):
    """report.py experiment=study_flowers arm=none,fractal_only seed=0,1: each cell's seed is expected
    once, and the summary adds up to the runs it expects. (aug= beside the arms is refused: see
    test_aug_beside_an_experiments_arms_is_refused.)"""
    arm = {"experiment_name": "study_flowers"}
    fractal = {**arm, "aug.name": "diffusemix", "aug.components": "originals_fractal"}
    runs = _write_runs(
        sweep, tmp_path / "runs", [(0, arm, {}), (1, arm, {}), (0, fractal, {}), (1, fractal, {})]
    )
    filled = build_report(
        ["experiment=study_flowers", "arm=none,fractal_only", "seed=0,1", f"runs={runs}", f"out={tmp_path}"],
        CONF,
    )["filled"]
    counts = filled.counts()
    assert (
        counts["expected"] == counts["finished"] + counts["failed"] + counts["diverged"] + counts["missing"]
    )
    assert counts["finished"] == 4 and counts["outside"] == 0 and counts.get("unexpected", 0) == 0
    assert all(len(set(c.expected_seeds)) == len(c.expected_seeds) for c in filled.cells.values())
    text = (tmp_path / "report.md").read_text()
    assert (
        f"{counts['expected']} runs expected: 4 finished, 0 failed, 0 diverged, {counts['missing']} missing"
        in text
    )


def test_runs_takes_a_sweep_jobs_folder_whole(tmp_path):
    """A sweep job's folder has commas in its name: runs= keeps it whole (the longest existing name
    wins, or the whole value when quoted), and still splits a list of folders."""
    from diffusemix_bench.report_cli import run_folders

    job = tmp_path / "0_aug=none,dataset=tinyimagenet,seed=0"
    other = tmp_path / "1_aug=mixup,dataset=tinyimagenet,seed=0"
    job.mkdir()
    other.mkdir()
    assert run_folders(str(job)) == [job]
    assert run_folders(f"{job},{other}") == [job, other]
    assert run_folders(f'"{job}"') == [job]
    assert run_folders(f"{tmp_path / 'a'},{tmp_path / 'b'}") == [
        tmp_path / "a",
        tmp_path / "b",
    ]  # not there: as given


def test_rows_trained_differently_are_named_in_the_settings_line(sweep, tmp_path):
    """Rows side by side that were trained with different budgets (Vanilla 2 epochs, SnapMix 1):
    the settings line says which cell had which value, not "1, 2 in the runs"."""
    runs = _write_runs(
        sweep,
        tmp_path / "runs",
        [(0, {}, {}), (0, {"aug.name": "snapmix", "trainer.max_epochs": 1}, {})],
    )
    build_report(["experiment=table6", "aug=none,snapmix", "seed=0", f"runs={runs}", f"out={tmp_path}"], CONF)
    text = (tmp_path / "report.md").read_text()
    assert (
        "trainer.max_epochs: 1 in SnapMix (AAAI'21) [19] (flowers102); 2 in Vanilla (CVPR'16) [14] "
        "(flowers102) (experiment file: 300)"
    ) in text
    # The two cells are marked in every table written, and the CSV says per cell what differs.
    table = text.split("Compute per run")[0]  # the results table (the compute table follows)
    rows = {line.split(" |")[0]: line for line in table.splitlines() if line.startswith("| ")}
    assert "‡" in rows["| SnapMix (AAAI'21) [19]"] and "‡" in rows["| Vanilla (CVPR'16) [14]"]
    assert "‡ marks the cells whose runs differ" in text
    # What both cells share is said once; per cell, what sets it apart.
    note = next(line for line in text.splitlines() if "‡ marks the cells" in line)
    assert note.count("trainer.limit_train_batches=2") == 1, note
    assert note.endswith(
        "Per cell besides: SnapMix (AAAI'21) [19] (flowers102): trainer.max_epochs=1; "
        "Vanilla (CVPR'16) [14] (flowers102): trainer.max_epochs=2"
    ), note
    tex = (tmp_path / "report.tex").read_text()
    snapmix = next(line for line in tex.splitlines() if line.startswith("SnapMix"))
    assert "$^\\ddagger$" in snapmix and "ddagger$: trained or measured unlike" in tex
    by_row = {
        r["row"]: r for r in csv.DictReader((tmp_path / "report.csv").open()) if r["n"] not in ("", "0")
    }
    assert "trainer.max_epochs=1" in by_row["SnapMix (AAAI'21) [19]"]["settings_differ"]
    assert "trainer.max_epochs=2" in by_row["Vanilla (CVPR'16) [14]"]["settings_differ"]


def test_runs_in_cells_a_narrowed_report_leaves_out_are_compared_with_the_experiment_file(sweep, tmp_path):
    """A report narrowed to some of the sweep (aug=none) shows runs of its other cells too: they
    are compared with the experiment file's settings there (they were not, and the notes said
    every run used the experiment file's settings)."""
    runs = _write_runs(
        sweep,
        tmp_path / "runs",
        [(0, {}, {}), (0, {"aug.name": "snapmix", "trainer.max_epochs": 1}, {})],
    )
    build_report(["experiment=table6", "aug=none", "seed=0", f"runs={runs}", f"out={tmp_path}"], CONF)
    text = (tmp_path / "report.md").read_text()
    assert "1 in SnapMix (AAAI'21) [19] (flowers102); 2 in Vanilla (CVPR'16) [14] (flowers102)" in text, text
    rows = {line.split(" |")[0]: line for line in text.split("Compute per run")[0].splitlines()}
    assert "‡" in rows["| SnapMix (AAAI'21) [19]"]
    # A later value of a seed sweep that is no number: one message (a ValueError's traceback before).
    with pytest.raises(ConfigError, match=r"seed=x: a seed is a whole number"):
        build_report(["experiment=table6", "aug=none", "seed=0,x", f"runs={runs}", f"out={tmp_path}"], CONF)


def test_runs_outside_the_table_are_told_why(sweep, tmp_path):
    """Runs of the experiment on a dataset the table has no column for (a sweep train.py ran with
    dataset= overridden) are named with that reason, not only as belonging to no cell."""
    runs = _write_runs(sweep, tmp_path / "runs", [(0, {"dataset.name": "cub"}, {})])
    # Every run given outside the table: refused with the command for their own table.
    said = _refused_with_no_report(["experiment=table6", "aug=none", "seed=0", f"runs={runs}"], tmp_path)
    assert said.startswith(
        f"report.py experiment=table6: the run under runs={runs} trained on cub, which table6 has no column "
        "for (its columns: flowers102), so no run would be reported. Report it in its own table: "
    )
    # Beside a run of the table: reported, the other named with why it is not used.
    runs = _write_runs(sweep, tmp_path / "one", [(0, {"dataset.name": "cub"}, {}), (0, {}, {})])
    build_report(["experiment=table6", "aug=none", "seed=0", f"runs={runs}", f"out={tmp_path / 'out'}"], CONF)
    text = (tmp_path / "out" / "report.md").read_text()
    assert "1 run folder given belongs to no cell of this table and is not used (" in text
    assert "dataset cub is not a column of table6 (its columns: flowers102))" in text, text
    # And beside it one on the table's dataset whose method is no row's: said of that one run.
    runs = _write_runs(
        sweep, tmp_path / "two", [(0, {"dataset.name": "cub"}, {}), (0, {"aug.name": "mixup"}, {})]
    )
    build_report(
        ["experiment=table6", "aug=none", "seed=0", f"runs={runs}", f"out={tmp_path / 'out2'}"], CONF
    )
    text = (tmp_path / "out2" / "report.md").read_text()
    assert "(its columns: flowers102); the other's settings match none of table6's rows)" in text, text


def test_a_curve_leaves_a_gap_where_a_value_has_no_run(tmp_path, monkeypatch):
    """The lambda curve with no finished run at lambda 0.1: the line breaks there (NaN) instead of
    being drawn straight from 0.0 to 0.2 as if 0.1 had been measured; a point of one seed has no
    bar, and the legend says how many seeds its points average."""
    import math
    from types import SimpleNamespace

    from matplotlib.axes import Axes

    from diffusemix_bench.reporting.plots import curve

    rows = [
        SimpleNamespace(label=f"lambda {x}", match={"aug.lam": x}, reported_only=False, values={})
        for x in (0.0, 0.1, 0.2)
    ]
    stats = {"lambda 0.0": (60.0, 1.0, 2), "lambda 0.1": (None, None, 0), "lambda 0.2": (62.0, 0.0, 1)}
    table = SimpleNamespace(
        name="lambda",
        x="aug.lam",
        metrics={"test_top1": "test_top1"},
        columns=["flowers102"],
        rows=rows,
        units="%",
    )
    cut = {"lambda 0.2": ["trainer.max_epochs=1"]}
    cells = {
        (r.label, "flowers102"): SimpleNamespace(
            stats=lambda key, r=r: stats[r.label], shortened_by=lambda r=r: cut.get(r.label, [])
        )
        for r in rows
    }
    filled = SimpleNamespace(table=table, cells=cells, summary=lambda: "4 runs", marked=lambda key: False)
    drawn = []
    real = Axes.errorbar
    monkeypatch.setattr(
        Axes, "errorbar", lambda self, x, y, **kw: drawn.append((x, y, kw)) or real(self, x, y, **kw)
    )
    curve(filled, tmp_path / "lambda.png")
    ((xs, ys, kw),) = drawn
    assert xs == [0.0, 0.1, 0.2] and ys[0] == 60.0 and math.isnan(ys[1]) and ys[2] == 62.0
    # One seed at 0.2: no bar there (its std of 0 is no spread measured), and the legend says so.
    assert kw["yerr"][0] == 1.0 and math.isnan(kw["yerr"][2])
    # A point of shortened runs: the line and the figure say so (§), as the tables do.
    assert kw["label"] == "flowers102 (ours, 1-2 seeds, bars: std (none for one seed)) §"
    assert (tmp_path / "lambda.png").stat().st_size > 1000
    import matplotlib.pyplot as plt

    figures = []
    monkeypatch.setattr(plt, "close", lambda fig: figures.append(fig))
    curve(filled, tmp_path / "again.png")
    assert "§: runs cut short, not the protocol's" in figures[-1]._suptitle.get_text()
    monkeypatch.undo()
    plt.close(figures[-1])


def test_the_notes_name_the_split_checkpoints_were_selected_on(sweep, tmp_path):
    """The notes say what each column's runs selected their checkpoint on (metrics.json's val_rule):
    Flowers-102's official val split, or a holdout of the training split, which the runs then did
    not train on (the paper's baselines trained on the whole split)."""
    from diffusemix_bench.reporting.formats import notes

    filled = build_report(["experiment=table6", f"runs={sweep}"], CONF)["filled"]
    assert filled.validation() == ["Checkpoints selected on flowers102: official val split (setid.mat valid)"]
    held = tmp_path / "held"
    shutil.copytree(sweep, held)
    for path in held.glob("*/metrics.json"):
        metrics = json.loads(path.read_text())
        metrics["val_rule"] = "holdout 10% of train (stratified per class), seed 0"
        path.write_text(json.dumps(metrics))
    filled = build_report(["experiment=table6", f"runs={held}"], CONF)["filled"]
    line = (
        "Checkpoints selected on flowers102: holdout 10% of train (stratified per class), seed 0 (a holdout "
        "is left out of training: the runs trained on the rest of the training split)"
    )
    assert filled.validation() == [line] and line in notes(filled)


def test_the_experiment_files_notes_are_printed_with_the_recipe(sweep, tmp_path):
    """What an experiment file declares of its recipe (``paper.notes``: a choice the paper leaves
    open, a departure from its text or a baseline's reference) is in the report's notes, in every
    format, and the line saying the runs used the file's settings names their protocol."""
    from omegaconf import OmegaConf

    from diffusemix_bench.reporting.formats import _tex

    declared = OmegaConf.load(ROOT / "experiments" / "table6.yaml").paper.notes
    assert any("protocol=scarcity_resnet18" in note for note in declared)
    result = build_report(["experiment=table6", f"runs={sweep}", f"out={tmp_path}"], CONF)
    markdown = result["files"]["markdown"].read_text()
    latex = result["files"]["latex"].read_text().splitlines()
    for note in declared:
        assert f"- Experiment file: {note}" in markdown
        assert f"% Experiment file: {_tex(note)}" in latex
    assert "- Recipe of the finished runs: protocol scarcity_resnet18 (conf/protocol/: model," in markdown


def test_table4_shows_our_clean_error_beside_the_fgsm_error(sweep, tmp_path):
    """Table 4's printed numbers look like clean errors (its notes say why): the report shows our
    error on the attacked split without the attack beside our FGSM error, with no paper value."""
    runs = _write_runs(
        sweep,
        tmp_path / "runs",
        [
            (0, TABLE4, {"fgsm_error": 80.0, **FGSM, "robust_clean_error": 30.0}),
            (1, TABLE4, {"fgsm_error": 82.0, **FGSM, "robust_clean_error": 34.0}),
        ],
    )
    result = build_report([*TABLE4_CELL, f"runs={runs}", f"out={tmp_path / 'out'}"], CONF)
    text = result["files"]["markdown"].read_text()
    assert "cifar100 clean_error: paper | cifar100 clean_error: ours" in text
    row = next(line for line in text.splitlines() if line.startswith(f"| {VANILLA}"))
    assert "| 23.67 | 81.00 ± 1.41 (2) | +57.33 | – | 32.00 ± 2.83 (2) | – |" in row
    assert "probably clean errors" in text
    # The clean error's measurement has no attack to name ("measured with on the test split").
    assert "robust_clean_error: measured with no attack on the test split" in text
    assert (tmp_path / "out" / "accuracy_vs_compute.png").is_file()
    with PIL.Image.open(tmp_path / "out" / "accuracy_vs_compute.png") as png:
        assert png.text["Description"] == "every cell with results is shown"
    rows = list(csv.DictReader(result["files"]["csv"].open()))
    clean = next(
        r for r in rows if r["row"] == VANILLA and r["column"] == "cifar100" and r["metric"] == "clean_error"
    )
    assert (clean["metrics_key"], clean["paper"], clean["mean"], clean["n"]) == (
        "robust_clean_error",
        "",
        "32.0",
        "2",
    )


def test_table4_says_a_pgd_error_its_runs_hold_that_it_has_no_column_for(sweep, tmp_path):
    """Table 4's runs attacked again with PGD (evaluate.py eval.pgd=true): pgd_error is no column
    of the paper's table, so the notes say which runs hold it, measured how, and the command whose
    table shows it (it was left out unsaid)."""
    pgd = {"pgd_error": 90.0, "pgd_settings": {"eps_255": 8.0, "steps": 10}}
    runs = _write_runs(
        sweep,
        tmp_path / "runs",
        [(0, TABLE4, {"fgsm_error": 80.0, **FGSM, **pgd}), (1, TABLE4, {"fgsm_error": 82.0, **FGSM})],
    )
    text = build_report([*TABLE4_CELL, f"runs={runs}", f"out={tmp_path / 'out'}"], CONF)["files"][
        "markdown"
    ].read_text()
    assert (
        "1 finished run of this table also holds pgd_error (eps_255=8.0 steps=10 on the test split), which is "
        "not a column of the paper's table: report.py experiment=none with the same runs= gives it a column "
        f"(its metrics.json holds it; {runs / '0_seed=0'})"
    ) in text, text
    own = build_report(["experiment=none", f"runs={runs}", f"out={tmp_path / 'own'}"], CONF)
    assert "pgd_error" in own["filled"].table.metrics.values()  # (the command said does show it)


def test_runs_that_skipped_corrupt_images_are_said(sweep, tmp_path):
    """A run trained with dataset.on_bad_image=skip (metrics.json's bad_images): the notes name it
    and how many images each split left out; its numbers are over fewer images (it was unsaid)."""
    runs = _write_runs(
        sweep,
        tmp_path / "runs",
        [
            (0, TABLE4, {"fgsm_error": 80.0, **FGSM, "bad_images": {"val": 1, "test": True, "train": "2"}}),
            (1, TABLE4, {"fgsm_error": 82.0, **FGSM, "robust_split": "test", "robust_bad_images_skipped": 2}),
        ],
    )
    text = build_report([*TABLE4_CELL, f"runs={runs}", f"out={tmp_path / 'out'}"], CONF)["files"]["markdown"]
    # (evaluate.py's attacked split counted too; a count that is not a whole number is not one)
    assert (
        "2 finished runs left corrupt images out of their splits (dataset.on_bad_image=skip; the run folder's "
        f"bad_images.txt lists those training left out): their numbers are over the images left ({runs / '0_seed=0'}: val 1; "
        f"{runs / '1_seed=1'}: 2 of the test split its attacks were measured on)"
    ) in " ".join(text.read_text().split())


def test_runs_of_one_cell_on_different_data_are_refused_and_a_column_is_noted(sweep, tmp_path):
    """dataset.root is not compared (the same data may sit anywhere), so two image folders would
    average unnoticed: metrics.json's class count and split sizes are. In one cell that is refused;
    across the rows of a column it is said in the notes."""
    runs = _write_runs(
        sweep,
        tmp_path / "cell",
        [
            (0, TABLE4, {"fgsm_error": 80.0, **FGSM, "num_classes": 4, "train_images": 40}),
            (1, TABLE4, {"fgsm_error": 82.0, **FGSM, "num_classes": 5, "train_images": 55}),
        ],
    )
    with pytest.raises(
        ReportError, match=r"were trained on different data \(num_classes=4 vs 5, train_images=40 vs 55"
    ):
        build_report([*TABLE4_CELL, f"runs={runs}"], CONF)
    mixup = {**TABLE4, "aug.name": "mixup"}
    runs = _write_runs(
        sweep,
        tmp_path / "column",
        [
            (0, TABLE4, {"fgsm_error": 80.0, **FGSM, "num_classes": 4}),
            (0, mixup, {"fgsm_error": 82.0, **FGSM, "num_classes": 5}),
        ],
    )
    filled = build_report(
        ["experiment=table4", "dataset=cifar100", "aug=none,mixup", "seed=0", f"runs={runs}"], CONF
    )["filled"]
    assert filled.cells[(VANILLA, "cifar100")].finished and filled.data_differs() == [
        f"cifar100: runs were trained on different data (num_classes=4 vs 5: {runs / '0_seed=0'} and "
        f"{runs / '1_seed=0'}); its rows are not compared on the same images"
    ]


def test_a_sweep_on_a_dataset_the_table_has_no_column_for_is_refused(sweep, tmp_path):
    """report.py experiment=lambda dataset=imagefolder: no cell could hold the runs; it used to
    write an empty table (0 runs expected) and exit 0."""
    with pytest.raises(
        ReportError,
        match=r"the sweep runs on imagefolder, which lambda has no column for \(its columns: flowers102\)",
    ):
        build_report(["experiment=lambda", "dataset=imagefolder", f"runs={sweep}", f"out={tmp_path}"], CONF)


def _table4_job(
    root: Path, name: str, seed: int, *, started_only: bool = False, script: str = "train"
) -> Path:
    """A Table 4 job folder (Vanilla, CIFAR-100) as train.py leaves it: config_resolved.yaml, or for
    a job refused after Hydra started it (bad data found as it is read) only Hydra's
    .hydra/config.yaml, whose interpolations (adv.p's ${per_dataset:...}) are kept as written."""
    cfg = finalize(
        compose_config(["experiment=table4", "dataset=cifar100", "aug=none", f"seed={seed}"]), root / name
    )
    folder = root / name
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump({"hydra": {"job": {"name": script}}}))
    if started_only:
        (folder / ".hydra" / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=False))
    else:
        (folder / "config_resolved.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
        (folder / "metrics.json").write_text(
            json.dumps({**METRICS, "fgsm_error": 40.0 + seed, **FGSM, "seed": seed})
        )
    return folder


def test_table7s_figure4_is_the_full_methods_and_the_report_says_whose(tmp_path):
    """Table 7's arms each draw Figure 4 for their own components: the report copies the full
    method's grid where a run of it has one (it took the first cell's, the edits-only arm's, whose
    grid has no hybrid) and says which run drew it; with only an ablation arm's grid, it says so."""
    root = tmp_path / "runs"
    for job, arm in enumerate(("edits", "hybrid_fractal")):
        cfg = compose_config(["experiment=table7", "dataset=flowers102", f"aug.components={arm}", "seed=0"])
        folder = root / f"{job}_aug.components={arm},seed=0"
        cfg = finalize(cfg, folder)
        folder.mkdir(parents=True)
        (folder / "config_resolved.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
        (folder / "metrics.json").write_text(json.dumps({**METRICS, "test_top5": 90.0, "seed": 0}))
        (folder / "figure4.png").write_bytes(f"{arm}'s grid".encode())
    chosen = ["experiment=table7", "dataset=flowers102", "seed=0"]
    both = build_report(
        [*chosen, "aug.components=edits,hybrid_fractal", f"runs={root}", f"out={tmp_path / 'a'}"], CONF
    )
    assert (tmp_path / "a" / "figure4_flowers102.png").read_bytes() == b"hybrid_fractal's grid"
    text = both["files"]["markdown"].read_text()
    assert (
        f"figure4_flowers102.png: Figure 4's grid as {root / '1_aug.components=hybrid_fractal,seed=0'} drew it\n"
        in text
    )
    (root / "1_aug.components=hybrid_fractal,seed=0" / "figure4.png").unlink()  # (a run without one)
    alone = build_report([*chosen, f"runs={root}", f"out={tmp_path / 'b'}"], CONF)
    assert (tmp_path / "b" / "figure4_flowers102.png").read_bytes() == b"edits's grid"
    assert (
        f"figure4_flowers102.png: Figure 4's grid as {root / '0_aug.components=edits,seed=0'} drew it "
        "(aug.components=edits; no run of the full method has one)"
    ) in alone["files"]["markdown"].read_text()


def test_jobs_that_failed_early_or_left_damaged_files_are_counted_and_other_scripts_folders_left_out(
    tmp_path,
):
    """In one sweep folder: two finished runs; a job refused after Hydra started it (only
    .hydra/config.yaml, with its interpolations) counts as failed, not as trained with other settings
    (adv.p=0.1 vs '${per_dataset:...}' stopped the report); damaged metrics.json and failure.json
    count as failed, naming the file; generate.py's folder (the training settings in its
    .hydra/config.yaml) is no run. A config without a seed is one message naming the file."""
    root = tmp_path / "runs"
    for seed in (0, 1):
        _table4_job(root, f"{seed}_seed={seed}", seed)
    _table4_job(root, "2_seed=2", 2, started_only=True)
    _table4_job(root, "3_seed=3", 3)
    (root / "3_seed=3" / "metrics.json").write_text("[]")
    _table4_job(root, "4_seed=4", 4)
    (root / "4_seed=4" / "metrics.json").write_bytes(b'{"val_top1": \xff}')
    _table4_job(root, "5_seed=5", 5)
    (root / "5_seed=5" / "failure.json").write_text("[]")
    _table4_job(root, "6_seed=6", 6)
    (root / "6_seed=6" / "metrics.json").write_text("{}")  # (parses, and holds no run's number)
    _table4_job(tmp_path / "generate", "edits", 0, started_only=True, script="generate")
    seeds = "seed=" + ",".join(str(s) for s in range(7))
    result = build_report(
        ["experiment=table4", "dataset=cifar100", "aug=none", seeds, f"runs={root},{tmp_path / 'generate'}"],
        CONF,
    )
    cell = result["filled"].cells[(VANILLA, "cifar100")]
    assert cell.stats("fgsm_error")[2] == 2
    reasons = {run.folder.name: (run.status, run.reason) for run in cell.runs}
    assert reasons["2_seed=2"] == (
        "failed",
        "no metrics.json (the run is still training, or stopped before it finished)",
    )
    assert reasons["3_seed=3"] == ("failed", "metrics.json is damaged (not a mapping of metrics)")
    assert reasons["4_seed=4"][0] == "failed" and reasons["4_seed=4"][1].startswith(
        "metrics.json is damaged ("
    )
    assert reasons["5_seed=5"] == ("failed", "failure.json is damaged")
    assert reasons["6_seed=6"] == ("failed", "metrics.json is damaged (it holds no number)")
    assert "edits" not in reasons and result["filled"].counts()["unexpected"] == 0

    config = root / "0_seed=0" / "config_resolved.yaml"
    data = yaml.safe_load(config.read_text())
    del data["seed"]
    config.write_text(yaml.safe_dump(data))
    with pytest.raises(ReportError, match=r"config_resolved\.yaml has no whole-number seed \(seed: None\)"):
        build_report(["experiment=table4", f"runs={root}"], CONF)


def test_runs_trained_on_several_devices_are_named_and_not_averaged_with_one(sweep, tmp_path):
    """trainer.devices is where a run trains, left out of the comparisons; but dataset.batch_size is
    per device, so the processes that trained together (metrics.json's world_size) change the batch
    of a step: a cell does not average 1 and 2, and 2 against the experiment file's one device is named."""
    runs = _write_runs(
        sweep, tmp_path / "runs", [(0, TABLE4, {"world_size": 1}), (1, TABLE4, {"world_size": 2})]
    )
    with pytest.raises(
        ReportError, match=r"world size \(devices x nodes; dataset\.batch_size is per device\)=1 vs 2"
    ):
        build_report([*TABLE4_CELL, f"runs={runs}"], CONF)
    runs = _write_runs(
        sweep, tmp_path / "two", [(0, TABLE4, {"world_size": 2}), (1, TABLE4, {"world_size": 2})]
    )
    text = build_report([*TABLE4_CELL, f"runs={runs}", f"out={tmp_path / 'out'}"], CONF)["files"][
        "markdown"
    ].read_text()
    assert (
        "world size (devices x nodes; dataset.batch_size is per device): 2 in the runs (experiment file: 1)"
        in text
    )


def test_weights_a_run_started_from_where_the_experiment_file_names_none_are_said(sweep, tmp_path):
    """model.weights is where a file was (left out of the comparisons), but a run that started
    from a file (metrics.json's model_weights) where the experiment file trains from its own start
    is named in the settings line and its cell marked: its number is not the protocol's."""
    weights = {"file": "/w/resnet.pth", "sha256": "2c18f2b76869da13e6afb4f800eb4ad7"}
    runs = _write_runs(
        sweep,
        tmp_path / "runs",
        [(0, TABLE4, {"model_weights": weights}), (1, TABLE4, {"model_weights": weights})],
    )
    filled = build_report([*TABLE4_CELL, f"runs={runs}", f"out={tmp_path / 'out'}"], CONF)
    text = filled["files"]["markdown"].read_text()
    assert (
        "model.weights (the file the model started from): /w/resnet.pth (sha256 2c18f2b76869) in the runs "
        "(experiment file: none; random initial weights)" in text
    )
    assert (
        "model.weights=/w/resnet.pth (sha256 2c18f2b76869)"
        in filled["filled"].cell_deviations[(VANILLA, "cifar100")]
    )
    # Runs that loaded no file, as the experiment file says: nothing to say.
    runs = _write_runs(
        sweep, tmp_path / "none", [(0, TABLE4, {"model_weights": None}), (1, TABLE4, {"model_weights": None})]
    )
    text = build_report([*TABLE4_CELL, f"runs={runs}", f"out={tmp_path / 'o2'}"], CONF)["files"][
        "markdown"
    ].read_text()
    assert "the file the model started from" not in text


def test_generation_hours_are_those_of_the_edits_a_run_reads(sweep, tmp_path):
    """Figure 5's runs read 1 to 10 prompts of one store (num_prompts is no part of its name): each is
    charged the hours of its own edits (its training images x its prompts, at the store's logged
    device-seconds per edit), not the whole store's hours."""
    from types import SimpleNamespace

    from diffusemix_bench.generation.store import EditStore
    from diffusemix_bench.report_cli import _generation_hours
    from diffusemix_bench.reporting.runs import Run

    config = OmegaConf.load(sweep / "0_aug=none,seed=0" / "config_resolved.yaml")
    config.aug = {"name": "diffusemix", "components": "all"}
    config.generator.edits_dir = str(tmp_path / "edits")
    cells = {}
    for k in (2, 4):
        run_config = config.copy()
        run_config.generator.num_prompts = k
        cells[(f"{k} prompts", "flowers102")] = SimpleNamespace(
            finished=[Run(tmp_path, run_config, {"train_images": 5}, "finished")]
        )
    store = EditStore.from_config(config, "flowers102")
    store.folder.mkdir(parents=True)
    log = [
        {"generated": 30, "seconds": 100.0, "devices": 2},
        {"generated": 10, "seconds": 50.0},
        {"broken": 1},
    ]
    (store.folder / "generation_log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in log))
    per_edit = (100.0 * 2 + 50.0) / 40  # device-seconds per edit
    hours = _generation_hours(SimpleNamespace(cells=cells))
    assert hours == {
        ("2 prompts", "flowers102"): pytest.approx(per_edit * 5 * 2 / 3600),
        ("4 prompts", "flowers102"): pytest.approx(per_edit * 5 * 4 / 3600),
    }


def test_runs_that_loaded_other_weight_files_are_not_averaged(sweep, tmp_path):
    """model.weights is where the file was (left out of the comparisons: another machine, another
    path); metrics.json's sha256 of it is what was loaded: runs of one cell that loaded other weights
    are refused, the same weights from two places are averaged."""
    one = {"model_weights": {"file": "/a/resnet50.safetensors", "sha256": "a" * 64}}
    moved = {"model_weights": {"file": "/b/resnet50.safetensors", "sha256": "a" * 64}}
    other = {"model_weights": {"file": "/a/resnet50.safetensors", "sha256": "b" * 64}}
    runs = _write_runs(sweep, tmp_path / "same", [(0, {}, one), (1, {}, moved)])
    assert (
        build_report(["experiment=table6", "aug=none", "seed=0,1", f"runs={runs}"], CONF)["filled"].counts()[
            "finished"
        ]
        == 2
    )
    runs = _write_runs(sweep, tmp_path / "other", [(0, {}, one), (1, {}, other)])
    with pytest.raises(
        ReportError,
        match=r"model\.weights \(the file's contents\)=sha256 aaaaaaaaaaaa vs sha256 bbbbbbbbbbbb",
    ):
        build_report(["experiment=table6", "aug=none", "seed=0,1", f"runs={runs}"], CONF)


def test_a_batch_limit_of_one_batch_and_of_the_whole_split_differ():
    """Lightning reads ``trainer.limit_train_batches=1`` as one batch and ``1.0`` as the whole
    split: two runs of one cell with them were averaged as trained alike (1 == 1.0 by value)."""
    from diffusemix_bench.reporting.runs import Run
    from diffusemix_bench.reporting.table import _settings_differ

    def run(limit):
        cfg = OmegaConf.create({"seed": 0, "trainer": {"limit_train_batches": limit, "max_epochs": 2}})
        return Run(Path("r"), cfg, {}, "finished")

    assert _settings_differ(run(1), run(1.0)) == ["trainer.limit_train_batches=1 vs 1.0"]
    assert _settings_differ(run(2), run(2.0)) == []  # a whole number above 1 is a count either way
    assert _settings_differ(run(0.5), run(0.5)) == []
    # null is Lightning's default, the whole split: 1.0 is the same training, 1 is not.
    assert _settings_differ(run(None), run(1.0)) == []
    assert _settings_differ(run(None), run(1)) == ["trainer.limit_train_batches=null vs 1"]


@pytest.mark.parametrize("status", [None, "running", 3])
def test_a_failure_json_with_a_status_no_run_writes_counts_the_run_failed(tmp_path, status):
    """failure.json of {"status": null} (edited, or damaged) made a run of the status "None",
    which no count knew: the summary's numbers no longer added up."""
    folder = _table4_job(tmp_path, "0_aug=none,seed=0", 0)
    (folder / "failure.json").write_text(json.dumps({"status": status, "error": None}))
    run = read_run(folder)
    assert run.status == "failed" and "failure.json is damaged" in run.reason


def test_runs_of_one_cell_trained_or_scored_unalike_are_refused_and_cut_runs_are_named(sweep, tmp_path):
    """Two seeds of one setting, one stopped early by trainer.max_time (fewer epochs and steps): a
    cell never averages them. Nor runs scored on different numbers of test images (a batch limit
    with another evaluation batch). Runs cut alike are averaged, and the notes name what cut them."""
    whole = {"epochs": 300, "optimizer_steps": 11700, "test_images_evaluated": 50}
    timed_out = {
        "epochs": 61,
        "optimizer_steps": 2379,
        "test_images_evaluated": 50,
        "shortened_by": {"max_time": "00:12:00:00"},
    }
    runs = _write_runs(
        sweep,
        tmp_path / "length",
        [
            (0, TABLE4, {"fgsm_error": 40.0, **FGSM, **whole}),
            (1, TABLE4, {"fgsm_error": 90.0, **FGSM, **timed_out}),
        ],
    )
    with pytest.raises(ReportError) as raised:
        build_report([*TABLE4_CELL, f"runs={runs}"], CONF)
    assert (
        f"runs {runs / '0_seed=0'} and {runs / '1_seed=1'} trained for different lengths (epochs 300 vs 61, "
        f"optimizer_steps 11700 vs 2379; {runs / '1_seed=1'} was cut short by max_time)"
    ) in str(raised.value)
    # A resume keeps the time limit: the advice is a new run, not ckpt_path=last.
    assert (
        "train the cut run again in a new folder without trainer.max_time (a resume keeps trainer.max_time), "
        "or report them separately (runs=...)"
    ) in str(raised.value)
    # Runs of other max_epochs (nothing cut): the shorter one is trained on.
    longer = _write_runs(
        sweep,
        tmp_path / "longer",
        [
            (0, TABLE4, {"fgsm_error": 40.0, **FGSM, **whole}),
            (1, TABLE4, {"fgsm_error": 90.0, **FGSM, **whole, "epochs": 200, "optimizer_steps": 7800}),
        ],
    )
    with pytest.raises(ReportError, match=re.escape("train the shorter one on (train.py hydra.run.dir=")):
        build_report([*TABLE4_CELL, f"runs={longer}"], CONF)
    scored = _write_runs(
        sweep,
        tmp_path / "scored",
        [
            (0, TABLE4, {"fgsm_error": 40.0, **FGSM, **whole}),
            (1, TABLE4, {"fgsm_error": 90.0, **FGSM, **whole, "test_images_evaluated": 512}),
        ],
    )
    with pytest.raises(
        ReportError, match=r"scored on different numbers of images \(test_images_evaluated 50 vs 512"
    ):
        build_report([*TABLE4_CELL, f"runs={scored}"], CONF)
    cut = {**whole, "shortened_by": {"limit_test_batches": 2}, "limited_eval_order": "classes interleaved"}
    # As many images, but a run from before limited evaluations took the classes in turn: its
    # first batches were other images.
    older = {k: v for k, v in cut.items() if k != "limited_eval_order"}
    # (fast_dev_run and overfit_batches limit the evaluation too)
    smoke = {**whole, "shortened_by": {"fast_dev_run": 1}}
    smoked = _write_runs(
        sweep,
        tmp_path / "smoked",
        [
            (0, TABLE4, {"fgsm_error": 40.0, **FGSM, **smoke, "limited_eval_order": "classes interleaved"}),
            (1, TABLE4, {"fgsm_error": 90.0, **FGSM, **smoke}),
        ],
    )
    with pytest.raises(ReportError, match="were scored on other images of their split"):
        build_report([*TABLE4_CELL, f"runs={smoked}"], CONF)
    other_images = _write_runs(
        sweep,
        tmp_path / "other_images",
        [
            (0, TABLE4, {"fgsm_error": 40.0, **FGSM, **cut}),
            (1, TABLE4, {"fgsm_error": 90.0, **FGSM, **older}),
        ],
    )
    with pytest.raises(ReportError) as raised:
        build_report([*TABLE4_CELL, f"runs={other_images}"], CONF)
    assert (
        "were scored on other images of their split (the first batches of a batch limit in classes "
        "interleaved vs the split's own order"
    ) in str(raised.value)
    alike = _write_runs(
        sweep,
        tmp_path / "alike",
        [(0, TABLE4, {"fgsm_error": 40.0, **FGSM, **cut}), (1, TABLE4, {"fgsm_error": 90.0, **FGSM, **cut})],
    )
    # (a time limit given as a mapping: said in Hydra's form, as summary.csv and the command line)
    timed = json.loads((alike / "1_seed=1" / "metrics.json").read_text())
    timed["shortened_by"]["max_time"] = {"hours": 12, "minutes": 30}
    (alike / "1_seed=1" / "metrics.json").write_text(json.dumps(timed))
    # An earlier report's figures in the same folder are not left to pass for this one's; another
    # table's figure (a column this one has not) is left alone.
    (tmp_path / "out").mkdir()
    for stale in ("table4.png", "figure4_cifar100.png", "figure4_cub.png"):
        (tmp_path / "out" / stale).write_bytes(b"an earlier report's figure")
    text = build_report([*TABLE4_CELL, f"runs={alike}", f"out={tmp_path / 'out'}"], CONF)
    assert (
        not (tmp_path / "out" / "table4.png").exists()
        and not (tmp_path / "out" / "figure4_cifar100.png").exists()
    )
    assert (tmp_path / "out" / "figure4_cub.png").is_file()
    report = (tmp_path / "out" / "report.md").read_text()
    assert text["filled"].cells[(VANILLA, "cifar100")].finished
    assert (
        f"2 finished runs were cut short of their epochs or splits by trainer settings (metrics.json's "
        f"shortened_by): {alike / '0_seed=0'}: trainer.limit_test_batches=2; {alike / '1_seed=1'}: "
        "trainer.limit_test_batches=2, trainer.max_time={hours:12,minutes:30}"
    ) in report
    # Early stopping ends each seed where its validation stops improving: lengths differ by design.
    stopped = _write_runs(
        sweep,
        tmp_path / "stopped",
        [
            (0, TABLE4, {"fgsm_error": 40.0, **FGSM, **whole, "early_stopped_at_epoch": 300}),
            (
                1,
                TABLE4,
                {
                    "fgsm_error": 90.0,
                    **FGSM,
                    "epochs": 61,
                    "optimizer_steps": 2379,
                    "early_stopped_at_epoch": 61,
                },
            ),
        ],
    )
    assert (
        build_report([*TABLE4_CELL, f"runs={stopped}"], CONF)["filled"].cells[(VANILLA, "cifar100")].finished
    )


def test_accuracy_vs_compute_keeps_every_label_inside_the_image(tmp_path, monkeypatch):
    """Each point's label reads away from the nearer edge: written to the right of the rightmost
    point, a long one ran past the axes, and the layout squeezed the plot into half the image to
    keep it in (or cut it at the image's edge)."""
    from types import SimpleNamespace

    import matplotlib.pyplot as plt

    from diffusemix_bench.reporting.plots import accuracy_vs_compute

    class FakeCell:
        def __init__(self, hours, top1, shortened=()):
            self.hours, self.top1, self.shortened = hours, top1, list(shortened)

        def stats(self, key):
            return self.top1, None, 1

        def training_seconds(self):
            return self.hours * 3600, True

        def shortened_by(self):
            return self.shortened

    long = "A method with a rather long name (CVPR'24) [99] (stanford_cars)"
    cells = {(long, "cars"): FakeCell(5.0, 90.0), ("Vanilla", "cars"): FakeCell(0.5, 80.0),
             (long + " 2", "cars"): FakeCell(0.05, 70.0)}  # fmt: skip
    # (the Vanilla cell trained or measured unlike the others: marked as the tables mark it)
    filled = SimpleNamespace(
        table=SimpleNamespace(metrics={"top1": "test_top1"}, units="%", name="t", lower_is_better=False),
        cells=cells,
        marked=lambda key: key == ("Vanilla", "cars"),
    )
    figures = []
    monkeypatch.setattr(plt, "close", lambda fig: figures.append(fig))
    accuracy_vs_compute(filled, tmp_path / "plot.png", {})
    (fig,) = figures
    renderer = fig.canvas.get_renderer()
    image = fig.bbox
    labels = [t for t in fig.axes[0].texts]
    assert len(labels) == 3
    for text in labels:
        box = text.get_window_extent(renderer)
        assert image.x0 <= box.x0 and box.x1 <= image.x1 and box.y1 <= image.y1, text.get_text()
    assert fig.axes[0].get_position().width > 0.8  # the plot keeps the image's width
    assert sorted(t.get_text() for t in labels)[-1] == "Vanilla (cars) ‡"
    assert "‡: trained or measured unlike the other cells" in fig.axes[0].get_title()
    plt.close(fig)
    # Runs of like numbers and hours (a shortened sweep near chance): no label covers another, in
    # the upper half of the plot or the lower; shortened runs are marked as in the tables.
    cut = ["trainer.max_epochs=1"]
    filled.cells = {(f"Method {k}", "cars"): FakeCell(0.01 * (1 + k / 100), 1.0 if k < 3 else 0.0, cut)
                    for k in range(5)}  # fmt: skip
    accuracy_vs_compute(filled, tmp_path / "close.png", {})
    fig = figures[-1]
    boxes = [t.get_window_extent(fig.canvas.get_renderer()) for t in fig.axes[0].texts]
    assert len(boxes) == 5 and not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])
    assert all(t.get_text().endswith(" §") for t in fig.axes[0].texts)
    # Each label in its point's colour: set apart from it, it still names it.
    import matplotlib.colors as mcolors

    points = [mcolors.to_hex(c.get_facecolor()[0]) for c in fig.axes[0].collections]
    assert [mcolors.to_hex(t.get_color()) for t in fig.axes[0].texts] == points and len(set(points)) == 5
    assert "§: runs cut short" in fig.axes[0].get_title()
    plt.close(fig)
    # Too many close points for their names to stand by them (27 near chance): numbered, in the
    # image, none covering another, named in a key beneath the plot (and the PNG's Description).
    filled.cells = {(f"aug=method{k} aug.x={k}", "cars"): FakeCell(0.01 * (1 + k / 100), 1.0 + (k % 3) / 20, cut)
                    for k in range(27)}  # fmt: skip
    accuracy_vs_compute(filled, tmp_path / "many.png", {})
    fig = figures[-1]
    renderer = fig.canvas.get_renderer()
    texts = fig.axes[0].texts
    assert [t.get_text() for t in texts] == [str(k) for k in range(1, 28)]
    boxes = [t.get_window_extent(renderer) for t in texts]
    (key,) = fig.texts
    floor = key.get_window_extent(renderer).y1
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])
    assert all(
        fig.bbox.x0 <= b.x0 and b.x1 <= fig.bbox.x1 and floor <= b.y0 and b.y1 <= fig.bbox.y1 for b in boxes
    )
    said = " ".join(key.get_text().split())
    assert said.startswith("Points: 1 aug=method0 aug.x=0 (cars) §; 2 aug=method1 aug.x=1 (cars) §;")
    assert said.endswith("27 aug=method26 aug.x=26 (cars) §")
    plt.close(fig)
    # A table of errors near 100 % (Table 4's FGSM errors): the axis stops at 100 (its margin ran
    # past it) and the title says lower is better (the file's name says accuracy).
    filled.table = SimpleNamespace(metrics={"fgsm_error": "fgsm_error"}, units="error %", name="table4",
                                   lower_is_better=True)  # fmt: skip
    filled.cells = {("Vanilla", "cifar100"): FakeCell(0.5, 99.9), ("Mixup", "cifar100"): FakeCell(1.0, 96.0)}
    accuracy_vs_compute(filled, tmp_path / "errors.png", {})
    ax = figures[-1].axes[0]
    assert ax.get_ylim()[1] == 100.0 and 95.0 < ax.get_ylim()[0] < 96.0
    assert ax.get_title().startswith("table4: fgsm_error against compute, lower is better")
    plt.close(figures[-1])
    with PIL.Image.open(tmp_path / "many.png") as png:
        assert png.info["Description"].startswith("Points: 1 aug=method0")
    plt.close(fig)


def test_the_generator_of_a_method_that_reads_no_edits_is_no_deviation(sweep, tmp_path):
    """Runs made with generator=tiny: for Vanilla, which reads no edits, the generator is no
    setting of its run (the settings line and report.csv left it in, charged to Vanilla's row);
    for DiffuseMix it is, and is named."""
    runs = _write_runs(
        sweep,
        tmp_path / "runs",
        [
            (0, {"generator.name": "tiny"}, {}),
            (0, {"generator.name": "tiny", "aug.name": "diffusemix"}, {}),
        ],
    )
    result = build_report(["experiment=table6", "seed=0", f"runs={runs}", f"out={tmp_path / 'out'}"], CONF)
    text = result["files"]["markdown"].read_text()
    assert "DIFFUSEMIX (flowers102): generator.name='tiny'; the other cells with runs: nothing more" in text
    # Only the cell that differs unlike the others is marked (not Vanilla, whose runs differ from
    # the experiment file only as every cell's do).
    table = text.split("Compute per run")[0]  # the results table (the compute table follows)
    rows = {line.split(" |")[0]: line for line in table.splitlines() if line.startswith("| ")}
    assert "‡" in rows["| DIFFUSEMIX"] and "‡" not in rows["| Vanilla (CVPR'16) [14]"]
    assert result["filled"].marked(("DIFFUSEMIX", "flowers102"))
    assert not result["filled"].marked(("Vanilla (CVPR'16) [14]", "flowers102"))
    settings = next(line for line in text.splitlines() if line.startswith("- Settings that differ"))
    assert "generator.name: 'tiny' in DIFFUSEMIX (flowers102); as the experiment file in" not in settings
    assert (
        "generator.name: 'tiny' in the runs that read edits" in settings
        or "generator.name: 'tiny' in DIFFUSEMIX" in settings
    )
    rows = list(csv.DictReader((tmp_path / "out" / "report.csv").open()))
    vanilla = next(r for r in rows if r["row"].startswith("Vanilla"))
    assert "generator" not in vanilla["settings_differ"]


def test_training_minutes_are_written_alike_around_one_minute():
    """A run of 0.998 minutes read "1" beside "1.2" and "0.85": one decimal from a minute up, two
    significant digits below (a short run is not 0.0)."""
    from diffusemix_bench.reporting.formats import _minutes_text

    assert [_minutes_text(m) for m in (0.004, 0.85, 0.998, 1.0, 1.24)] == [
        "0.004",
        "0.85",
        "1.0",
        "1.0",
        "1.2",
    ]
