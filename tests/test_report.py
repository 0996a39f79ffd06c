"""Reports: run folders made here (two methods x two seeds, one failed and one diverged run, the
rest missing) printed beside the paper's numbers, with mean and std checked against the runs."""

from __future__ import annotations

import csv
import json
import shutil
import statistics
from pathlib import Path

import pytest
import yaml

from diffusemix_bench.cli import build_report
from diffusemix_bench.config import register_configs
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
    # Markdown: missing cells say so, never a number; the settings line names what was shortened.
    text = (tmp_path / "report.md").read_text()
    puzzle = next(line for line in text.splitlines() if line.startswith("| PuzzleMix"))
    assert "3 missing" in puzzle and "±" not in puzzle
    assert "18 runs expected: 4 finished, 1 failed, 1 diverged, 12 missing" in text
    assert "trainer.max_epochs: 2 in the runs (experiment file: 300)" in text
    assert "dataset.image_size: 32 in the runs (experiment file: 224)" in text
    # Every setting is compared, not a chosen few: the resize and the fixture's small fractal bank too.
    assert "dataset.resize: 36 in the runs (experiment file: 256)" in text
    assert "fractals.count: 8 in the runs" in text
    # debug=fast's two batches, as the count they are (the float-typed setting holds 2.0).
    assert "trainer.limit_train_batches: 2 in the runs (experiment file: None)" in text
    assert "seed:" not in text and "paths." not in text  # what varies by design or says where things are
    assert "log_every_n_steps" not in text  # how often it logs (debug=fast: every step)
    tex = (tmp_path / "report.tex").read_text()
    assert "\\toprule" in tex and "\\bottomrule" in tex and "59.14" in tex
    assert (tmp_path / "accuracy_vs_compute.png").stat().st_size > 1000


def test_a_misspelt_experiment_gets_a_did_you_mean(tmp_path):
    from diffusemix_bench.errors import ConfigError

    with pytest.raises(ConfigError, match="experiment=table66: no such option .*did you mean table6"):
        build_report(["experiment=table66", f"runs={tmp_path}"], CONF)


def test_runs_with_different_settings_in_one_cell_are_refused(sweep, tmp_path):
    mixed = tmp_path / "mixed"
    shutil.copytree(sweep, mixed)
    config = mixed / "1_aug=none,seed=1" / "config_resolved.yaml"
    data = yaml.safe_load(config.read_text())
    data["trainer"]["max_epochs"] = 5
    config.write_text(yaml.safe_dump(data))
    with pytest.raises(ReportError, match="trainer.max_epochs=2 vs 5"):
        build_report(["experiment=table6", f"runs={mixed}"], CONF)
    # Two runs of one seed in a cell: refused, naming both.
    twice = tmp_path / "twice"
    shutil.copytree(sweep, twice)
    shutil.copytree(twice / "0_aug=none,seed=0", twice / "9_aug=none,seed=0")
    with pytest.raises(ReportError, match="2 runs of seed 0"):
        build_report(["experiment=table6", f"runs={twice}"], CONF)


def test_a_sweep_restricted_on_the_command_line_expects_only_its_runs(sweep, tmp_path):
    filled = build_report(["experiment=table6", f"runs={sweep}", "aug=none,snapmix", "seed=0,1"], CONF)[
        "filled"
    ]
    assert filled.counts() == {
        "expected": 4,
        "finished": 4,
        "failed": 1,
        "diverged": 1,
        "missing": 0,
        "outside": 0,
    }


CHEAP = {"table6", "table9", "lambda", "table3"}


@pytest.mark.parametrize(
    "name", [n if n in CHEAP else pytest.param(n, marks=pytest.mark.slow) for n in EXPERIMENTS]
)
def test_every_paper_table_is_produced_from_the_runs(sweep, tmp_path, name):
    """Each experiment's table in the paper's layout: every row, missing cells shown as missing."""
    result = build_report([f"experiment={name}", f"runs={sweep}", f"out={tmp_path}"], CONF)
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
        assert counts["finished"] == 0 and counts["outside"] == 6
        assert "missing" in text
        # The folders left out are named (the first three).
        assert "6 run folders given belong to no cell of this table and are not used (" in text
        assert "and 3 more)" in text
        # No run of this table: the report does not claim the runs used the experiment's settings.
        assert "No finished run of this table was found" in text and "Every run used" not in text
    if cfg.paper.get("x"):
        assert (tmp_path / f"{name}.png").is_file()


@pytest.mark.slow  # report.py's entry runs in the default suite through test_demo
def test_report_command_prints_the_table(sweep, tmp_path):
    result = run_entry("report.py", ["experiment=table6", f"runs={sweep}", f"out={tmp_path / 'r'}"], tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "| Vanilla (CVPR'16) [14] | 64.48 | " in result.stdout
    assert f"csv: {tmp_path / 'r' / 'report.csv'}" in result.stdout
    bad = run_entry("report.py", ["experiment=table6", f"runs={tmp_path / 'nowhere'}"], tmp_path)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert "runs=" in bad.stderr + bad.stdout and "no such folder" in bad.stderr + bad.stdout


def test_a_diverged_training_run_leaves_failure_json(make_cfg):
    from diffusemix_bench.training.run import train

    cfg = make_cfg(["protocol=custom", "optim=sgd", "optim.lr=1e30"])
    with pytest.raises(FloatingPointError):
        train(cfg)
    run = read_run(Path(cfg.paths.output_dir))
    assert run.status == "diverged" and "NonFiniteLossError" in run.reason
