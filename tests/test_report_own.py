"""report.py without experiment=: the table of one's own runs (one's own image folder, one's own
sweep), made by train.py --multirun and reported through the command a user runs."""

from __future__ import annotations

import csv
import json
import os
import shutil
import statistics
from pathlib import Path

import pytest

from tests.conftest import FAST, run_entry
from tests.fixtures.datasets import write_fixture_dataset

#: One epoch of two batches on the fixture image folder: a sweep of 4 jobs in under half a minute.
COMMON = ["dataset=imagefolder", *FAST, "trainer.max_epochs=1"]


@pytest.fixture(scope="module")
def own_sweep(tmp_path_factory) -> Path:
    """train.py --multirun aug=none,mixup seed=0,1 on an image folder, then a second launch in the
    same folder with a setting the first did not give (aug=mixup aug.alpha=0.4 seed=0,1)."""
    tmp = tmp_path_factory.mktemp("own")
    root = write_fixture_dataset("imagefolder", tmp / "data")["data_dir"]
    sweep = tmp / "sweep"
    common = [*COMMON, f"dataset.root={root}", f"hydra.sweep.dir={sweep}"]
    for launch in (["aug=none,mixup", "seed=0,1"], ["aug=mixup", "aug.alpha=0.4", "seed=0,1"]):
        done = run_entry("train.py", ["--multirun", *common, *launch], tmp, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
    return sweep


def _numbers(sweep: Path, wanted: dict[str, str], key: str) -> list[float]:
    """metrics.json's ``key`` of the runs whose overrides give exactly ``wanted`` of aug and aug.alpha."""
    import yaml

    out = []
    for folder in sorted(p for p in sweep.iterdir() if (p / "metrics.json").is_file()):
        given = dict(
            line.split("=", 1) for line in yaml.safe_load((folder / ".hydra" / "overrides.yaml").read_text())
        )
        if {k: given.get(k) for k in ("aug", "aug.alpha")} == wanted:
            out.append(json.loads((folder / "metrics.json").read_text())[key])
    return out


def _rows(text: str) -> dict[str, str]:
    """The main table's lines by their row's label (the compute table below it left out)."""
    table = text.split("Compute per run")[0]
    return {line.split(" | ")[0][2:]: line for line in table.splitlines() if line.startswith("| aug=")}


def test_report_of_own_runs_has_a_row_per_setting_given(own_sweep, tmp_path):
    out = tmp_path / "report"
    result = run_entry("report.py", [f"runs={own_sweep}", f"out={out}"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    text = (out / "report.md").read_text()
    assert result.stdout.startswith(text)
    # A row per combination of the settings that differ between the jobs of both launches (the
    # first launch's mixup gave no aug.alpha, trained with another: a row of its own); no paper columns.
    header = next(line for line in text.splitlines() if line.startswith("| Settings |"))
    assert header == "| Settings | imagefolder test_top1 | imagefolder val_top1 | imagefolder test_top5 |"
    rows = _rows(text)
    # (mixup's alpha is null unless given: shown as the dataset's default resolved it, as trained)
    assert list(rows) == ["aug=none", "aug=mixup aug.alpha=1.0", "aug=mixup aug.alpha=0.4"]
    for label, wanted in (
        ("aug=none", {"aug": "none", "aug.alpha": None}),
        ("aug=mixup aug.alpha=1.0", {"aug": "mixup", "aug.alpha": None}),
        ("aug=mixup aug.alpha=0.4", {"aug": "mixup", "aug.alpha": "0.4"}),
    ):
        values = _numbers(own_sweep, wanted, "test_top1")
        assert len(values) == 2
        shown = f"{statistics.fmean(values):.2f} ± {statistics.stdev(values):.2f} (2)"
        assert rows[label].split(" | ")[1].startswith(shown), rows[label]
    # Both launches' jobs are expected (multirun.yaml and the record kept of the first launch).
    assert "6 runs expected: 6 finished, 0 failed, 0 diverged, 0 missing" in text
    given = next(line for line in text.splitlines() if line.startswith("- Given to every run: "))
    assert "debug=fast" in given and "trainer.max_epochs=1" in given and "dataset.root=" in given
    assert "aug=" not in given and "seed=" not in given
    assert (
        "Recipe of the finished runs: model preactresnet18; epochs 1; image size 32; batch 4; optimiser sgd"
        in text
    )
    assert "; loss ce; criterion ce" in text  # (metrics.json's: the setting is "auto")
    assert "generator" not in text.split("Recipe of the finished runs: ")[1].split("\n")[0]  # (no edits read)
    # The fixture's 3 classes: its "top-5" is top-3, said.
    assert (
        "test_top5 is top-k with k the number of classes where there are fewer than 5 (imagefolder: top-3)"
        in text
    )
    assert "paper" not in text.split("- ")[0].lower().replace("no paper numbers", "")
    latex = (out / "report.tex").read_text()
    assert "Paper" not in latex and "aug=mixup aug.alpha=0.4 &" in latex
    lines = list(csv.DictReader((out / "report.csv").open()))
    assert len(lines) == 3 * 3 and {r["paper"] for r in lines} == {""}
    first = next(r for r in lines if r["row"] == "aug=none" and r["metric"] == "test_top1")
    assert float(first["mean"]) == pytest.approx(
        statistics.fmean(_numbers(own_sweep, {"aug": "none", "aug.alpha": None}, "test_top1"))
    )


def test_report_of_own_runs_counts_missing_and_failed_jobs_and_chooses_by_setting(own_sweep, tmp_path):
    """A job of a launch that left no folder is missing, a run that stopped is failed; a setting
    given to report.py chooses the runs reported (the others counted), a seed the seeds; a setting no
    run has is refused (it would choose every run)."""
    copy = tmp_path / "sweep"
    shutil.copytree(own_sweep, copy, ignore=shutil.ignore_patterns("report"))
    gone = next(p for p in copy.iterdir() if p.name.endswith("aug=mixup,seed=1"))
    shutil.rmtree(gone)
    stopped = next(p for p in copy.iterdir() if p.name.endswith("aug=none,seed=1"))
    (stopped / "metrics.json").unlink()
    (stopped / "failure.json").write_text(json.dumps({"status": "failed", "error": "KeyboardInterrupt"}))
    result = run_entry("report.py", [f"runs={copy}", f"out={tmp_path / 'r'}"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "6 runs expected: 4 finished, 1 failed, 0 diverged, 1 missing" in result.stdout
    rows = _rows(result.stdout)
    assert "(1); 1 failed" in rows["aug=none"] and "(1); 1 missing" in rows["aug=mixup aug.alpha=1.0"]
    # runs= a folder above the sweep: its launches' jobs are expected all the same.
    above = run_entry("report.py", [f"runs={tmp_path}", f"out={tmp_path / 'a'}"], tmp_path)
    assert "6 runs expected: 4 finished, 1 failed, 0 diverged, 1 missing" in above.stdout, above.stderr[
        -2000:
    ]

    chosen = run_entry(
        "report.py", [f"runs={copy}", "aug.alpha=0.4", "seed=0", f"out={tmp_path / 'c'}"], tmp_path
    )
    assert chosen.returncode == 0, chosen.stderr[-3000:]
    rows = _rows(chosen.stdout)
    # aug=none has no aug.alpha: not told apart by it, chosen; the first launch's mixup ran with
    # aug.alpha=1.0 (null: the dataset's default), its missing job too: neither is chosen, nor seed 1.
    # (aug.alpha=0.4 alone among the runs that have it: not a row's, the choice is said)
    assert list(rows) == ["aug=none", "aug=mixup"]
    assert all(" (1) " in r and "missing" not in r and "failed" not in r for r in rows.values()), rows
    assert "2 runs expected: 2 finished, 0 failed, 0 diverged, 0 missing" in chosen.stdout
    assert "3 run folders given have other settings than aug.alpha=0.4 seed=0" in chosen.stdout

    # A value no run with the setting took would report the runs without it alone: refused.
    taken = run_entry("report.py", [f"runs={copy}", "aug.alpha=0.3"], tmp_path)
    assert taken.returncode == 1 and "Traceback" not in taken.stderr
    assert (
        "report.py aug.alpha=0.3: none of the 3 runs with the setting aug.alpha ran with that value (they ran "
        in taken.stderr
    )
    assert "(they ran with aug.alpha=0.4, 1.0: " in taken.stderr
    # The value a null resolved to chooses the runs given nothing, and their missing job.
    default = run_entry("report.py", [f"runs={copy}", "aug.alpha=1.0", f"out={tmp_path / 'd'}"], tmp_path)
    assert default.returncode == 0, default.stderr[-3000:]
    assert list(_rows(default.stdout)) == ["aug=none", "aug=mixup"]
    assert "(1); 1 missing" in _rows(default.stdout)["aug=mixup"]
    for bad, said in (
        ("seed=0,,1", "report.py seed=0,,1: not a setting Hydra's override grammar reads"),
        ("seed=[0,1]", "seeds are whole numbers, given as seed=0 or seed=0,1,2"),
        (
            "aug.alpha=interval(0,1)",
            "report.py aug.alpha=interval(0,1): give the values that choose the runs",
        ),
    ):
        refused = run_entry("report.py", [f"runs={copy}", bad], tmp_path)
        assert refused.returncode == 1 and "Traceback" not in refused.stderr and said in refused.stderr, (
            refused.stderr
        )

    # Each setting's value is looked for alone: aug.alpha=0.4 is some runs' though aug=none is chosen too.
    from diffusemix_bench.config import register_configs
    from diffusemix_bench.report_cli import build_report

    from .test_report import CONF

    register_configs()
    both = build_report([f"runs={copy}", "aug.alpha=0.4", "aug=none", f"out={tmp_path / 'b'}"], CONF)[
        "filled"
    ]
    assert [row.label for row in both.table.rows] == ["all runs"]
    assert (both.counts()["finished"], both.counts()["failed"]) == (1, 1)

    misspelt = run_entry("report.py", [f"runs={copy}", "aug.alfa=0.4"], tmp_path)
    assert misspelt.returncode == 1 and "Traceback" not in misspelt.stderr
    assert (
        "report.py aug.alfa=0.4: none of the 5 runs given has the setting aug.alfa; did you mean aug.alpha"
        in misspelt.stderr
    )


def test_runs_of_one_experiment_file_are_reported_with_its_table(tmp_path):
    """runs= alone, every run made by one experiment file: that experiment's paper table, said."""
    from diffusemix_bench.config import register_configs
    from diffusemix_bench.report_cli import build_report

    from .test_report import CONF

    register_configs()
    run = tmp_path / "sweep" / "0_aug=none,seed=0"
    run.mkdir(parents=True)
    config = {
        "experiment_name": "demo",
        "seed": 0,
        "dataset": {"name": "imagefolder"},
        "aug": {"name": "none"},
    }
    import yaml

    (run / "config_resolved.yaml").write_text(yaml.safe_dump(config))
    result = build_report([f"runs={tmp_path / 'sweep'}"], CONF)
    assert result["found_by"].startswith("experiment=demo: every run under runs= was made by it")
    assert result["filled"].table.name == "demo" and not result["filled"].table.own
    config["experiment_name"] = "an_experiment_file_since_removed"
    (run / "config_resolved.yaml").write_text(yaml.safe_dump(config))
    result = build_report([f"runs={tmp_path / 'sweep'}"], CONF)
    assert result["filled"].table.own and result["found_by"] is None


def _run(
    folder: Path, given: list[str], config: dict, choices: dict, top1: float, cwd: str | None = None
) -> None:
    """A finished run folder as train.py leaves it, for the parts a report reads (``cwd``: the
    folder it was launched from)."""
    import yaml

    (folder / ".hydra").mkdir(parents=True)
    (folder / "config_resolved.yaml").write_text(yaml.safe_dump(config))
    (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(given))
    runtime = {"choices": choices, **({"cwd": cwd} if cwd else {})}
    (folder / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump({"hydra": {"runtime": runtime}}))
    (folder / "metrics.json").write_text(json.dumps({"test_top1": top1, "epochs": 1, "optimizer_steps": 2}))


def test_own_rows_follow_the_values_the_runs_used_and_datasets_share_them(tmp_path):
    """Rows are told apart by the values the runs trained with, between runs of one dataset: a
    setting that differs only between datasets (where each one's data is) is a column's, so aug=none
    on two datasets is one row; a default given explicitly (optim=sgd) or written another way
    (optim.lr=0.10) is the same value, not a row of its own."""
    from diffusemix_bench.config import register_configs
    from diffusemix_bench.report_cli import build_report

    from .test_report import CONF

    register_configs()

    def config(dataset: str, root: str, aug: dict, seed: int) -> dict:
        return {"seed": seed, "dataset": {"name": dataset, "root": root, "image_size": 32}, "aug": aug,
                "optim": {"name": "sgd", "lr": 0.1}}  # fmt: skip

    none, mixup = {"name": "none"}, {"name": "mixup", "alpha": None}
    sweep = tmp_path / "runs"
    _run(sweep / "0_a", ["dataset=imagefolder", "dataset.root=/x", "aug=none", "seed=0"],
         config("imagefolder", "/x", none, 0), {"aug": "none", "optim": "sgd"}, 50.0)  # fmt: skip
    _run(sweep / "1_b", ["dataset=imagefolder", "dataset.root=/x", "aug=mixup", "seed=0"],
         config("imagefolder", "/x", mixup, 0), {"aug": "mixup", "optim": "sgd"}, 60.0)  # fmt: skip
    _run(sweep / "2_c", ["dataset=imagefolder", "dataset.root=/x", "aug=none", "optim=sgd", "seed=1"],
         config("imagefolder", "/x", none, 1), {"aug": "none", "optim": "sgd"}, 70.0)  # fmt: skip
    _run(sweep / "3_d", ["dataset=cifar100", "aug=none", "seed=0"],
         config("cifar100", "/data/cifar100", none, 0), {"aug": "none", "optim": "sgd"}, 30.0)  # fmt: skip
    _run(sweep / "4_e", ["dataset=cifar100", "aug=mixup", "optim.lr=0.10", "seed=0"],
         config("cifar100", "/data/cifar100", mixup, 0), {"aug": "mixup", "optim": "sgd"}, 40.0)  # fmt: skip
    filled = build_report([f"runs={sweep}", f"out={tmp_path / 'r'}"], CONF)["filled"]
    assert [row.label for row in filled.table.rows] == ["aug=none", "aug=mixup"]
    assert filled.table.columns == ["imagefolder", "cifar100"]
    assert filled.cells[("aug=none", "imagefolder")].stats("test_top1") == (
        60.0,
        pytest.approx(14.1421, abs=1e-3),
        2,
    )
    assert filled.cells[("aug=mixup", "cifar100")].stats("test_top1") == (40.0, None, 1)
    assert filled.counts()["finished"] == 5 and filled.counts()["missing"] == 0
    text = (tmp_path / "r" / "report.md").read_text()
    assert "model" not in text.split("Recipe of the finished runs: ")[1]  # (none recorded: not said)
    # Data unlike the published release: said without a paper to compare with.
    metrics = json.loads((sweep / "3_d" / "metrics.json").read_text())
    metrics["data_notes"] = {"train": {"differs_from_release": "49,000 images, not 50,000"}}
    (sweep / "3_d" / "metrics.json").write_text(json.dumps(metrics))
    text = "".join(
        build_report([f"runs={sweep}", f"out={tmp_path / 'r'}"], CONF)["files"]["markdown"].read_text()
    )
    assert "cifar100: 1 run read data unlike the published release (train: 49,000 images, not 50,000" in text
    assert "not comparable with numbers measured on that release" in text and "paper's numbers" not in text
    assert "image size 32" in text and "learning rate 0.1" in text
    # Two image folders under one dataset name: the folder tells rows apart.
    _run(sweep / "5_f", ["dataset=imagefolder", "dataset.root=/y", "aug=none", "seed=0"],
         config("imagefolder", "/y", none, 0), {"aug": "none", "optim": "sgd"}, 90.0)  # fmt: skip
    filled = build_report([f"runs={sweep}", f"out={tmp_path / 'r'}"], CONF)["filled"]
    labels = [row.label for row in filled.table.rows]
    assert labels[:2] == ["dataset.root=/x aug=none", "dataset.root=/x aug=mixup"], labels
    assert "dataset.root=/y aug=none" in labels


def test_runs_of_one_experiment_file_get_their_own_table_on_data_its_table_lacks(tmp_path):
    """Every run made by one experiment file: experiment=none asks for the runs' own table; runs of
    that experiment on data its table has no column for (experiment=table6 dataset=imagefolder)
    get their own table, said, not a refusal whose advice leads back to it."""
    from diffusemix_bench.config import register_configs
    from diffusemix_bench.report_cli import build_report

    from .test_report import CONF

    register_configs()
    sweep = tmp_path / "sweep"
    for i, (aug, top1) in enumerate((("none", 40.0), ("mixup", 55.0))):
        config = {"experiment_name": "table6", "seed": 0, "dataset": {"name": "imagefolder", "root": "/x"},
                  "aug": {"name": aug}}  # fmt: skip
        _run(sweep / f"{i}_aug={aug}", ["experiment=table6", "dataset=imagefolder", f"aug={aug}"], config,
             {"aug": aug, "experiment": "table6"}, top1)  # fmt: skip
    printed = run_entry("report.py", [f"runs={sweep}", f"out={tmp_path / 'r'}"], tmp_path)
    assert printed.returncode == 0, printed.stderr[-3000:]
    assert printed.stdout.startswith(
        "The runs' own table: every run under runs= was made by experiment=table6"
    )
    result = build_report([f"runs={sweep}", f"out={tmp_path / 'r'}"], CONF)
    assert result["filled"].table.own
    assert result["found_by"] == (
        "The runs' own table: every run under runs= was made by experiment=table6, but on imagefolder, "
        "which its table has no column for (its columns: flowers102)"
    )
    assert [row.label for row in result["filled"].table.rows] == ["aug=none", "aug=mixup"]
    assert result["filled"].cells[("aug=mixup", "imagefolder")].stats("test_top1") == (55.0, None, 1)
    # Given experiment=table6 itself: refused with the command for their own table (an all-missing
    # table and an empty plot, exit 0, hid it), no report folder.
    refused = run_entry(
        "report.py", ["experiment=table6", f"runs={sweep}", f"out={tmp_path / 'x'}"], tmp_path
    )
    assert refused.returncode == 1 and "Traceback" not in refused.stderr and not (tmp_path / "x").exists()
    assert (
        f"report.py experiment=table6: the 2 runs under runs={sweep} trained on imagefolder, which table6 has no "
        "column for (its columns: flowers102), so no run would be reported." in refused.stderr
    )
    assert f"report.py experiment=none runs={sweep} out={tmp_path / 'x'}" in refused.stderr
    # Beside runs on a column of its table, those chosen by a setting given to report.py are what
    # counts: the imagefolder runs chosen by their folder get their own table.
    flowers = {"experiment_name": "table6", "seed": 0, "dataset": {"name": "flowers102", "root": "/f"},
               "aug": {"name": "none"}}  # fmt: skip
    _run(tmp_path / "both" / "flowers", ["experiment=table6"], flowers, {"aug": "none"}, 20.0)
    shutil.copytree(sweep, tmp_path / "both" / "sweep")
    chosen = build_report([f"runs={tmp_path / 'both'}", "dataset.root=/x", f"out={tmp_path / 'r'}"], CONF)
    assert chosen["filled"].table.own and chosen["found_by"].startswith("The runs' own table")
    assert [r.folder.name for r in chosen["filled"].not_chosen] == ["flowers"]
    # On a column of the experiment's table: its paper table, unless experiment=none is given.
    for folder in sweep.iterdir():
        text = (folder / "config_resolved.yaml").read_text()
        (folder / "config_resolved.yaml").write_text(text.replace("imagefolder", "flowers102"))
    assert not build_report([f"runs={sweep}", f"out={tmp_path / 'r'}"], CONF)["filled"].table.own
    own = build_report([f"runs={sweep}", "experiment=none", f"out={tmp_path / 'r'}"], CONF)
    assert own["filled"].table.own and own["found_by"] is None
    assert own["filled"].table.columns == ["flowers102"]
    # experiment_name, a setting runs have, chooses runs (not "did you mean experiment=?").
    named = build_report(
        [f"runs={sweep}", "experiment=none", "experiment_name=table6", f"out={tmp_path / 'r'}"], CONF
    )
    assert named["filled"].chosen_by == ["experiment_name=table6"] and not named["filled"].not_chosen


def test_where_runs_trained_from_tells_rows_apart_and_chooses_runs(tmp_path, monkeypatch):
    """A sweep of the weights a run starts from (model.weights=a,b) is two rows; given to
    report.py, such a setting chooses the runs (a relative path names the file as the runs' absolute
    one does). Settings that change nothing trained, pasted from the sweep's command, choose no
    runs, and the summary says so."""
    from diffusemix_bench.config import register_configs
    from diffusemix_bench.report_cli import build_report

    from .test_report import CONF

    register_configs()
    monkeypatch.chdir(tmp_path)
    sweep = tmp_path / "sweep"
    for i, (weights, seed, top1) in enumerate((("a.pt", 0, 40.0), ("b.pt", 0, 60.0), ("a.pt", 1, 50.0))):
        path = str(tmp_path / weights)
        config = {
            "seed": seed,
            "dataset": {"name": "imagefolder"},
            "model": {"name": "resnet18", "weights": path},
        }
        _run(sweep / f"{i}_run", ["dataset=imagefolder", f"model.weights={path}", f"seed={seed}"], config,
             {"model": "resnet18"}, top1)  # fmt: skip
    filled = build_report([f"runs={sweep}", "out=r"], CONF)["filled"]
    labels = [row.label for row in filled.table.rows]
    assert labels == [f"model.weights={tmp_path / 'a.pt'}", f"model.weights={tmp_path / 'b.pt'}"]
    assert filled.cells[(labels[0], "imagefolder")].stats("test_top1")[::2] == (45.0, 2)
    chosen = build_report([f"runs={sweep}", "model.weights=./b.pt", "trainer.devices=2", "out=r"], CONF)[
        "filled"
    ]
    assert [r.folder.name for cell in chosen.cells.values() for r in cell.runs] == ["1_run"]
    assert sorted(r.folder.name for r in chosen.not_chosen) == ["0_run", "2_run"]
    assert chosen.chosen_by == ["model.weights=./b.pt"] and chosen.choosing_none == ["trainer.devices=2"]
    assert "; trainer.devices=2 (given to report.py) chooses no runs" in chosen.summary()


def test_runs_made_without_train_py_get_rows_from_their_settings(tmp_path):
    """Run folders with no record of the settings given (made through the API): the settings their
    configurations differ in tell rows apart (a field of aug only between runs of one method), not
    one row of every run."""
    import yaml

    from diffusemix_bench.config import register_configs
    from diffusemix_bench.report_cli import build_report

    from .test_report import CONF

    register_configs()
    sweep = tmp_path / "api"
    arms = [
        ({"name": "none"}, 40.0),
        ({"name": "mixup", "alpha": 0.2}, 50.0),
        ({"name": "mixup", "alpha": 0.4}, 60.0),
    ]
    for i, (aug, top1) in enumerate(arms):
        for seed in (0, 1):
            folder = sweep / f"run{i}_{seed}"
            folder.mkdir(parents=True)
            config = {"seed": seed, "dataset": {"name": "imagefolder", "image_size": 32}, "aug": aug,
                      "optim": {"name": "sgd", "lr": 0.1}}  # fmt: skip
            (folder / "config_resolved.yaml").write_text(yaml.safe_dump(config))
            (folder / "metrics.json").write_text(json.dumps({"test_top1": top1 + seed, "epochs": 1}))
    filled = build_report([f"runs={sweep}", f"out={tmp_path / 'r'}"], CONF)["filled"]
    labels = [row.label for row in filled.table.rows]
    assert labels == ["aug=none", "aug=mixup aug.alpha=0.2", "aug=mixup aug.alpha=0.4"]
    assert filled.cells[("aug=mixup aug.alpha=0.4", "imagefolder")].stats("test_top1")[::2] == (60.5, 2)


def test_a_relative_folder_is_the_one_under_the_folder_each_run_was_launched_from(tmp_path, monkeypatch):
    """dataset.root=data given to two launches from two folders names two image folders: two rows;
    given to report.py (absolute, or relative to where report.py runs), it chooses its own runs."""
    from diffusemix_bench.config import register_configs
    from diffusemix_bench.report_cli import build_report

    from .test_report import CONF

    register_configs()
    sweep = tmp_path / "sweep"
    for i, (home, top1) in enumerate(((tmp_path / "a", 30.0), (tmp_path / "b", 70.0))):
        config = {"seed": 0, "dataset": {"name": "imagefolder", "root": "data"}, "aug": {"name": "none"}}
        _run(sweep / f"{i}_run", ["dataset=imagefolder", "dataset.root=data"], config, {"aug": "none"}, top1,
             cwd=str(home))  # fmt: skip
    filled = build_report([f"runs={sweep}", f"out={tmp_path / 'r'}"], CONF)["filled"]
    labels = [row.label for row in filled.table.rows]
    assert labels == [f"dataset.root={tmp_path / 'a' / 'data'}", f"dataset.root={tmp_path / 'b' / 'data'}"]
    assert filled.cells[(labels[1], "imagefolder")].stats("test_top1") == (70.0, None, 1)
    chosen = build_report(
        [f"runs={sweep}", f"dataset.root={tmp_path / 'b' / 'data'}", f"out={tmp_path / 'r'}"], CONF
    )
    assert [r.folder.name for r in chosen["filled"].not_chosen] == ["0_run"]
    (tmp_path / "a").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    chosen = build_report([f"runs={sweep}", "dataset.root=data", f"out={tmp_path / 'r'}"], CONF)
    assert [r.folder.name for r in chosen["filled"].not_chosen] == ["1_run"]


def test_runs_made_without_train_py_beside_train_pys_are_told_apart_and_chosen(tmp_path):
    """A run folder made through the API (no record of its choices) is chosen by a method's name
    (aug=mixup) as train.py's runs are, and a setting in which it differs from train.py's runs
    alone (optim.lr) is a row. experiment=None and experiment=null are experiment=none; a misspelt
    setting that would choose no runs is named."""
    import yaml

    from diffusemix_bench.config import register_configs
    from diffusemix_bench.errors import ConfigError
    from diffusemix_bench.report_cli import build_report

    from .test_report import CONF

    register_configs()
    sweep = tmp_path / "mixed"
    for seed in (0, 1):
        config = {
            "seed": seed,
            "dataset": {"name": "imagefolder"},
            "aug": {"name": "none"},
            "optim": {"lr": 0.1},
        }
        _run(sweep / f"{seed}_seed={seed}", [f"seed={seed}"], config, {"aug": "none"}, 50.0 + seed)
        api = sweep / f"api_{seed}"
        api.mkdir()
        config = {**config, "aug": {"name": "mixup", "alpha": 1.0}, "optim": {"lr": 0.5}}
        (api / "config_resolved.yaml").write_text(yaml.safe_dump(config))
        (api / "metrics.json").write_text(json.dumps({"test_top1": 10.0 + seed}))
    filled = build_report([f"runs={sweep}", f"out={tmp_path / 'r'}"], CONF)["filled"]
    assert [row.label for row in filled.table.rows] == ["aug=none optim.lr=0.1", "aug=mixup optim.lr=0.5"]
    mixup = build_report([f"runs={sweep}", "aug=mixup", "experiment=None", f"out={tmp_path / 'r'}"], CONF)
    assert sorted(r.folder.name for r in mixup["filled"].not_chosen) == ["0_seed=0", "1_seed=1"]
    assert mixup["filled"].table.own
    assert build_report([f"runs={sweep}", "experiment=null", f"out={tmp_path / 'r'}"], CONF)[
        "filled"
    ].table.own
    from diffusemix_bench.reporting.runs import ReportError

    with pytest.raises(
        ReportError,
        match=r"report.py aug=cutmix: none of the 4 run folders .*; they ran with aug=mixup,none\)",
    ):
        build_report([f"runs={sweep}", "aug=cutmix", f"out={tmp_path / 'r'}"], CONF)
    with pytest.raises(ConfigError, match="eval.epss: 'eval' has no setting 'epss'; did you mean eps?"):
        build_report([f"runs={sweep}", "experiment=none", "eval.epss=8", f"out={tmp_path / 'r'}"], CONF)


def test_a_job_trained_again_alone_with_other_settings_is_not_counted_missing(tmp_path):
    """A sweep job resumed alone to train further (its folder, trainer.max_epochs=2): the launch's
    job of one epoch is not expected (it was counted missing beside the run that replaced it), and
    a note names the folder and the settings it was trained again with."""
    import yaml

    from diffusemix_bench.config import register_configs
    from diffusemix_bench.report_cli import build_report

    from .test_report import CONF

    register_configs()
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    task = ["dataset=imagefolder", "aug=none,mixup", "seed=0", "trainer.max_epochs=1"]
    record = {"hydra": {"overrides": {"task": task}, "sweeper": {"params": None}}, "seed": 0,
              "dataset": {"name": "imagefolder"}}  # fmt: skip
    (sweep / "multirun.yaml").write_text(yaml.safe_dump(record))
    for i, (aug, epochs) in enumerate((("none", 2), ("mixup", 1))):
        config = {"seed": 0, "dataset": {"name": "imagefolder"}, "aug": {"name": aug},
                  "trainer": {"max_epochs": epochs}}  # fmt: skip
        given = ["dataset=imagefolder", f"aug={aug}", "seed=0", f"trainer.max_epochs={epochs}"]
        _run(sweep / f"{i}_aug={aug}", given, config, {"aug": aug}, 50.0 + i)
    filled = build_report([f"runs={sweep}", f"out={tmp_path / 'r'}"], CONF)["filled"]
    assert filled.counts()["missing"] == 0 and filled.counts()["expected"] == 2
    assert [row.label for row in filled.table.rows] == [
        "aug=mixup trainer.max_epochs=1",
        "aug=none trainer.max_epochs=2",
    ]
    note = next(n for n in filled.table.notes if "was trained again there" in n)
    assert (
        note.startswith(f"{sweep / '0_aug=none'} was a job of its sweep's launch (")
        and "(trainer.max_epochs=2)" in note
    )
    # The sweep launched twice (an earlier launch's record kept beside multirun.yaml): said once.
    (sweep / "multirun.2026-12-01_10-00-00.yaml").write_text((sweep / "multirun.yaml").read_text())
    filled = build_report([f"runs={sweep}", f"out={tmp_path / 'r2'}"], CONF)["filled"]
    assert sum("was trained again there" in n for n in filled.table.notes) == 1
    assert filled.counts()["missing"] == 0 and filled.counts()["expected"] == 2


def test_a_refused_seed_names_the_runs_seeds_in_number_order(tmp_path):
    """seed=3 that no run took: the refusal names the seeds the runs took, 2 before 10."""
    import yaml

    from diffusemix_bench.config import register_configs
    from diffusemix_bench.report_cli import build_report
    from diffusemix_bench.reporting.runs import ReportError

    from .test_report import CONF

    register_configs()
    for seed in (10, 2):
        folder = tmp_path / "runs" / f"s{seed}"
        folder.mkdir(parents=True)
        config = {"seed": seed, "dataset": {"name": "imagefolder"}, "aug": {"name": "none"}}
        (folder / "config_resolved.yaml").write_text(yaml.safe_dump(config))
        (folder / "metrics.json").write_text(json.dumps({"test_top1": 50.0}))
    with pytest.raises(ReportError, match=r"; they ran with seed=2,10\)"):
        build_report([f"runs={tmp_path / 'runs'}", "seed=3", f"out={tmp_path / 'r'}"], CONF)


def test_own_rows_leave_out_what_a_run_does_not_use_and_show_nulls_as_trained(tmp_path):
    """The generator's settings do not tell apart runs that read no edits (aug=none beside
    DiffuseMix with generator=ip2p_fast is one row aug=none), unless they are all that keeps two
    runs of one seed apart (a sweep of aug x generator ran aug=none twice); a method's setting left
    null is the value its dataset's defaults gave it, so runs given that value are the same row."""
    from diffusemix_bench.config import register_configs
    from diffusemix_bench.report_cli import build_report

    from .test_report import CONF

    register_configs()
    defaults = {"cub": {"alpha": 0.2, "prob": 1.0}, "default": {"alpha": 1.0, "prob": 1.0}}

    def config(aug: str, generator: str, seed: int, alpha=None) -> dict:
        method = {"name": aug, **({"components": "hybrid_fractal"} if aug == "diffusemix" else {})}
        if aug == "mixup":
            method.update(alpha=alpha, prob=None, dataset_defaults=defaults)
        return {"seed": seed, "protocol": "custom", "dataset": {"name": "imagefolder", "root": "/x"},
                "aug": method, "generator": {"name": generator}}  # fmt: skip

    def launch(sweep: Path, jobs: list[tuple[str, str, int, float | None]]) -> None:
        for i, (aug, generator, seed, alpha) in enumerate(jobs):
            given = [
                "dataset=imagefolder",
                "dataset.root=/x",
                f"aug={aug}",
                f"generator={generator}",
                f"seed={seed}",
            ]
            given += [f"aug.alpha={alpha}"] if alpha is not None else []
            _run(sweep / f"{i}_{aug}", given, config(aug, generator, seed, alpha),
                 {"aug": aug, "generator": generator}, 40.0 + i)  # fmt: skip

    def rows(sweep: Path) -> dict[str, tuple]:
        filled = build_report([f"runs={sweep}", f"out={tmp_path / 'r'}"], CONF)["filled"]
        return {
            row.label: filled.cells[(row.label, "imagefolder")].stats("test_top1")
            for row in filled.table.rows
        }

    apart = tmp_path / "apart"
    launch(apart, [("none", "ip2p", 0, None), ("none", "ip2p", 1, None), ("mixup", "ip2p", 0, None),
                   ("mixup", "ip2p", 1, 1.0), ("diffusemix", "ip2p", 0, None),
                   ("diffusemix", "ip2p_fast", 0, None)])  # fmt: skip
    assert rows(apart) == {
        "aug=none": (40.5, pytest.approx(0.7071, abs=1e-4), 2),
        # (seed 0 given no alpha, seed 1 given the value imagefolder's default gives it: one row)
        "aug=mixup": (42.5, pytest.approx(0.7071, abs=1e-4), 2),
        "aug=diffusemix generator=ip2p": (44.0, None, 1),
        "aug=diffusemix generator=ip2p_fast": (45.0, None, 1),
    }
    # A setting some runs of one option lack (a model.kwargs entry one launch added): a row's.
    kwargs = tmp_path / "kwargs"
    for i, (seed, extra) in enumerate(((0, {}), (1, {}), (0, {"stem_stride": 2}), (1, {"stem_stride": 2}))):
        given = ["dataset=imagefolder", "dataset.root=/x", f"seed={seed}"]
        given += ["+model.kwargs.stem_stride=2"] if extra else []
        settings = {"seed": seed, "dataset": {"name": "imagefolder", "root": "/x"}, "aug": {"name": "none"},
                    "model": {"name": "preactresnet18", "kwargs": extra}}  # fmt: skip
        _run(kwargs / f"{i}_run", given, settings, {"aug": "none"}, 40.0 + i)
    assert rows(kwargs) == {
        "without model.kwargs.stem_stride": (40.5, pytest.approx(0.7071, abs=1e-4), 2),
        "model.kwargs.stem_stride=2": (42.5, pytest.approx(0.7071, abs=1e-4), 2),
    }
    crossed = tmp_path / "crossed"
    launch(
        crossed,
        [(aug, generator, 0, None) for aug in ("none", "diffusemix") for generator in ("ip2p", "ip2p_fast")],
    )
    assert rows(crossed) == {
        "aug=none generator=ip2p": (40.0, None, 1),
        "aug=none generator=ip2p_fast": (41.0, None, 1),
        "aug=diffusemix generator=ip2p": (42.0, None, 1),
        "aug=diffusemix generator=ip2p_fast": (43.0, None, 1),
    }


def test_runs_with_no_test_split_are_said_to_report_the_split_that_chose_their_checkpoint(tmp_path):
    """An image folder without test/: the only accuracy is val_top1, measured on the split that
    selected the checkpoint (its best epoch there): the notes say it reads high."""
    from diffusemix_bench.config import register_configs
    from diffusemix_bench.report_cli import build_report

    from .test_report import CONF

    register_configs()
    for i, aug in enumerate(("none", "mixup")):
        folder = tmp_path / "runs" / f"{i}_aug={aug}"
        config = {"seed": 0, "dataset": {"name": "imagefolder", "root": "/x"}, "aug": {"name": aug}}
        _run(folder, ["dataset=imagefolder", f"aug={aug}"], config, {"aug": aug}, 50.0)
        metrics = {"val_top1": 60.0 + i, "val_rule": "val/ folder", "epochs": 1, "optimizer_steps": 2}
        (folder / "metrics.json").write_text(json.dumps(metrics))
    filled = build_report([f"runs={tmp_path / 'runs'}", f"out={tmp_path / 'r'}"], CONF)["filled"]
    assert filled.validation()[1].startswith(
        "imagefolder: no test split, so val_top1 is measured on the split each run selected its checkpoint on"
    )
    # With a test split's number: nothing more said.
    metrics["test_top1"] = 55.0
    for folder in (tmp_path / "runs").iterdir():
        (folder / "metrics.json").write_text(json.dumps(metrics))
    filled = build_report([f"runs={tmp_path / 'runs'}", f"out={tmp_path / 'r'}"], CONF)["filled"]
    assert filled.validation() == ["Checkpoints selected on imagefolder: val/ folder"]


def test_a_job_that_cannot_be_composed_takes_no_generator_setting_it_does_not_read(tmp_path):
    """Jobs without a run folder whose settings cannot be composed here (a model option this version
    lacks): as given, aug=none reads no edits, so the generator it was launched with does not tell
    its row apart; DiffuseMix's does (two launches: generator=ip2p_fast, then generator=ip2p)."""
    import yaml

    from diffusemix_bench.config import register_configs
    from diffusemix_bench.report_cli import build_report

    from .test_report import CONF

    register_configs()
    for name, augs, generator in (("a", "none,diffusemix", "ip2p_fast"), ("b", "diffusemix", "ip2p")):
        sweep = tmp_path / "runs" / name
        sweep.mkdir(parents=True)
        task = ["dataset=imagefolder", "model=gone", f"aug={augs}", f"generator={generator}", "seed=0"]
        record = {"hydra": {"overrides": {"task": task}, "sweeper": {"params": None}}, "seed": 0,
                  "dataset": {"name": "imagefolder"}}  # fmt: skip
        (sweep / "multirun.yaml").write_text(yaml.safe_dump(record))
    config = {"seed": 0, "dataset": {"name": "imagefolder"}, "model": {"name": "gone"},
              "aug": {"name": "diffusemix"}, "generator": {"name": "ip2p"}}  # fmt: skip
    given = ["dataset=imagefolder", "model=gone", "aug=diffusemix", "generator=ip2p", "seed=0"]
    _run(
        tmp_path / "runs" / "b" / "0_aug=diffusemix",
        given,
        config,
        {"aug": "diffusemix", "generator": "ip2p"},
        50.0,
    )
    filled = build_report([f"runs={tmp_path / 'runs'}", f"out={tmp_path / 'r'}"], CONF)["filled"]
    assert sorted(row.label for row in filled.table.rows) == [
        "aug=diffusemix generator=ip2p",
        "aug=diffusemix generator=ip2p_fast",
        "aug=none",
    ]
    assert filled.counts()["missing"] == 2 and filled.counts()["expected"] == 3


def test_a_number_set_aside_by_a_later_measurement_is_said_with_the_command_that_measures_it_again(tmp_path):
    """A run whose FGSM error a short check set aside (robustness_earlier.jsonl keeps it): its cell
    counts it as finished without a value, and the notes say where the number went and how to
    measure it again."""
    from diffusemix_bench.commands import quoted_arg, script_command
    from diffusemix_bench.config import register_configs
    from diffusemix_bench.files import EARLIER_ROBUSTNESS
    from diffusemix_bench.report_cli import build_report

    from .test_report import CONF

    register_configs()
    for i, aug in enumerate(("none", "mixup")):
        folder = tmp_path / "runs" / f"{i}_aug={aug}"
        config = {"seed": 0, "dataset": {"name": "imagefolder", "root": "/x"}, "aug": {"name": aug}}
        _run(folder, ["dataset=imagefolder", f"aug={aug}"], config, {"aug": aug}, 50.0)
        metrics = json.loads((folder / "metrics.json").read_text())
        if aug == "none":
            metrics.update(fgsm_error=60.0, robust_split="test")
        else:
            (folder / EARLIER_ROBUSTNESS).write_text(
                json.dumps(
                    {
                        "set_aside": "2026-12-04T10:00:00",
                        "fgsm_error": 38.75,
                        "fgsm_settings": {"eps_255": 4.0},
                        "robust_split": "val",
                        "robust_checkpoint": str(folder / "checkpoints" / "last.ckpt"),
                        "best_checkpoint": str(folder / "checkpoints" / "epoch=3.ckpt"),
                    }
                )
                + "\n"
            )
        (folder / "metrics.json").write_text(json.dumps(metrics))
    markdown = build_report([f"runs={tmp_path / 'runs'}", f"out={tmp_path / 'r'}"], CONF)["files"]["markdown"]
    text = " ".join(markdown.read_text().split())
    assert "1 finished run has no fgsm_error" in text
    # The command measures it as it was then: its budget and split, on the checkpoint it attacked.
    run = tmp_path / "runs" / "1_aug=mixup"
    assert (
        f"1 of them had its fgsm_error (eps_255=4.0 on the val split of last.ckpt) set aside by a later "
        f"measurement on other images or another checkpoint ({EARLIER_ROBUSTNESS} beside its metrics.json keeps "
        f"it): {script_command('evaluate.py')} {quoted_arg('ckpt', str(run / 'checkpoints' / 'last.ckpt'))} "
        f"eval.fgsm=true eval.eps=4.0 eval.split=val measures it again ({run})"
    ) in text
    # evaluate.py's record of a number set aside names the checkpoint attacked, not the one selected:
    # that one is the run's (metrics.json's best_checkpoint). Attacked on it, no checkpoint is named
    # and the command attacks the run (it named the selected one as another, and the other way round).
    metrics = json.loads((run / "metrics.json").read_text())
    metrics["best_checkpoint"] = str(run / "checkpoints" / "epoch=3.ckpt")
    (run / "metrics.json").write_text(json.dumps(metrics))
    for attacked, said, ckpt in (
        ("epoch=3.ckpt", "on the val split) set aside", run),
        ("last.ckpt", "on the val split of last.ckpt) set aside", run / "checkpoints" / "last.ckpt"),
    ):
        (run / EARLIER_ROBUSTNESS).write_text(
            json.dumps(
                {
                    "fgsm_error": 38.75,
                    "fgsm_settings": {"eps_255": 4.0},
                    "robust_split": "val",
                    "robust_checkpoint": str(run / "checkpoints" / attacked),
                }
            )
            + "\n"
        )
        markdown = build_report([f"runs={tmp_path / 'runs'}", f"out={tmp_path / 'r'}"], CONF)["files"][
            "markdown"
        ]
        text = " ".join(markdown.read_text().split())
        assert f"had its fgsm_error (eps_255=4.0 {said}" in text, text
        assert f"{script_command('evaluate.py')} {quoted_arg('ckpt', str(ckpt))} eval.fgsm=true" in text
    # PGD's set aside, measured on another copy of the data with random starts: the command gives
    # the data folder, the seed and the batch size its starts were drawn with; processes are said.
    (run / EARLIER_ROBUSTNESS).write_text(
        json.dumps(
            {
                "pgd_error": 70.0,
                "pgd_settings": {"eps_255": 8.0, "step_size_255": 2.0, "steps": 10, "random_start": True},
                "robust_split": "test",
                "robust_data_dir": "/elsewhere/data",
                "robust_seed": 5,
                "robust_batch_size": {"pgd": 64, "fgsm": 128},
                "robust_processes": 2,
            }
        )
        + "\n"
    )
    (tmp_path / "runs" / "0_aug=none" / "metrics.json").write_text(
        json.dumps({**metrics, "pgd_error": 80.0, "robust_split": "test"})
    )
    markdown = build_report([f"runs={tmp_path / 'runs'}", f"out={tmp_path / 'r2'}"], CONF)["files"][
        "markdown"
    ]
    text = " ".join(markdown.read_text().split())
    assert (
        "1 of them had its pgd_error (eps_255=8.0 step_size_255=2.0 steps=10 random_start=True on the test split, "
        "data /elsewhere/data, random starts drawn from seed 5 on 2 processes (evaluate.py attacks on one: its "
        "starts are drawn otherwise)) set aside by a later measurement"
    ) in text, text
    assert (
        "eval.pgd=true eval.eps=8.0 eval.pgd_step_size=2.0 eval.pgd_steps=10 eval.pgd_random_start=True "
        f"eval.split=test {quoted_arg('data_dir', '/elsewhere/data')} seed=5 eval.batch_size=64 measures it again"
    ) in text


def test_numbers_set_aside_in_runs_of_several_seeds_give_a_command_without_another_runs_seed(tmp_path):
    """Runs of two seeds whose PGD numbers were set aside, each drawn from its run's own seed: one
    line for both, whose command leaves seed= out (evaluate.py draws from each run's own seed); a
    run whose starts came from another seed is a line of its own that names it."""
    from diffusemix_bench.config import register_configs
    from diffusemix_bench.files import EARLIER_ROBUSTNESS
    from diffusemix_bench.report_cli import build_report

    from .test_report import CONF

    register_configs()
    pgd = {"eps_255": 8.0, "step_size_255": 2.0, "steps": 10, "random_start": True}
    for i, (aug, seed, drawn_from) in enumerate(
        (("none", 0, None), ("mixup", 0, 0), ("mixup", 1, 1), ("mixup", 2, 7))
    ):
        folder = tmp_path / "runs" / f"{i}_aug={aug},seed={seed}"
        config = {"seed": seed, "dataset": {"name": "imagefolder", "root": "/x"}, "aug": {"name": aug}}
        _run(folder, ["dataset=imagefolder", f"aug={aug}", f"seed={seed}"], config, {"aug": aug}, 50.0)
        metrics = json.loads((folder / "metrics.json").read_text())
        if drawn_from is None:
            metrics.update(pgd_error=60.0, pgd_settings=pgd, robust_split="test", robust_seed=seed)
        else:
            record = {
                "pgd_error": 70.0,
                "pgd_settings": pgd,
                "robust_split": "test",
                "robust_seed": drawn_from,
            }
            (folder / EARLIER_ROBUSTNESS).write_text(json.dumps({**record, "robust_batch_size": 64}) + "\n")
        (folder / "metrics.json").write_text(json.dumps(metrics))
    markdown = build_report([f"runs={tmp_path / 'runs'}", f"out={tmp_path / 'r'}"], CONF)["files"]["markdown"]
    text = " ".join(markdown.read_text().split())
    assert "3 finished runs have no pgd_error" in text, text
    own = text.split("2 of them had their pgd_error (")[1]
    assert own.startswith(
        "eps_255=8.0 step_size_255=2.0 steps=10 random_start=True on the test split) set aside"
    )
    command = own.split("the first's: ")[1].split(") (")[0]
    assert command.endswith("eval.split=test eval.batch_size=64") and " seed=" not in command, command
    other = text.split("1 of them had its pgd_error (")[1].split(" measures it again")[0]
    assert "on the test split, random starts drawn from seed 7) set aside" in other, other
    assert "seed=7 eval.batch_size=64" in other and "2_aug=mixup,seed=2" not in other, other


def test_the_recipe_line_says_the_loss_criterion_and_the_pipeline_that_made_the_edits(tmp_path):
    """The recipe of own runs names the loss criterion metrics.json records (the PreActResNet
    recipe's bce_softmax is not cross-entropy), and the generator of the runs that read edits alone:
    the tiny pipeline said to be random, so noise edits are never taken for InstructPix2Pix's."""
    from diffusemix_bench.config import register_configs
    from diffusemix_bench.report_cli import build_report

    from .test_report import CONF

    register_configs()
    for i, aug in enumerate(("none", "diffusemix")):
        folder = tmp_path / "runs" / f"{i}_aug={aug}"
        config = {
            "seed": 0,
            "dataset": {"name": "imagefolder", "root": "/x"},
            "aug": {"name": aug},
            "generator": {
                "name": "ip2p" if aug == "none" else "tiny",
                "scheduler": "euler_ancestral",
                "steps": 2,
            },
        }
        _run(folder, ["dataset=imagefolder", f"aug={aug}"], config, {"aug": aug}, 50.0)
        metrics = json.loads((folder / "metrics.json").read_text())
        metrics.update(loss="ce" if aug == "none" else "jsd", loss_criterion="bce_softmax")
        (folder / "metrics.json").write_text(json.dumps(metrics))
    markdown = build_report([f"runs={tmp_path / 'runs'}", f"out={tmp_path / 'r'}"], CONF)["files"]["markdown"]
    text = " ".join(markdown.read_text().split())
    recipe = text.split("Recipe of the finished runs: ")[1].split(" - ")[0]
    assert "criterion bce_softmax" in recipe, recipe
    # (the aug=none run's generator settings are not its own: it reads no edits)
    assert "edits made by generator tiny (a small random pipeline: no real InstructPix2Pix edits)" in recipe
    assert "ip2p" not in recipe


def test_runs_with_no_run_folder_say_what_they_are(tmp_path):
    """runs= a folder without run folders: said, with what a run folder is; a sweep's folder whose
    jobs made none yet (multirun.yaml alone) is said to be that, not taken for a wrong folder."""
    from diffusemix_bench.report_cli import build_report
    from diffusemix_bench.reporting.runs import ReportError

    from .test_report import CONF

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ReportError, match=r"no run folders under it \(a run folder holds config_resolved"):
        build_report([f"runs={empty}", f"out={tmp_path / 'r'}"], CONF)
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    (sweep / "multirun.yaml").write_text("hydra: {}\n")
    with pytest.raises(
        ReportError, match=r"a sweep's folder \(its multirun.yaml\) with no job's run folder yet"
    ):
        build_report([f"runs={sweep}", f"out={tmp_path / 'r'}"], CONF)


def test_an_attack_whose_every_number_was_set_aside_is_said_in_an_own_table(tmp_path):
    """An own table has a column for each attack some run holds: where a later short check set aside
    the only FGSM number, no column shows it, and the notes say where it went and how to measure it
    again (it vanished without a word)."""
    from diffusemix_bench.commands import quoted_arg, script_command
    from diffusemix_bench.config import register_configs
    from diffusemix_bench.files import EARLIER_ROBUSTNESS
    from diffusemix_bench.report_cli import build_report

    from .test_report import CONF

    register_configs()
    run = tmp_path / "runs" / "run"
    config = {"seed": 0, "dataset": {"name": "imagefolder", "root": "/x"}, "aug": {"name": "none"}}
    _run(run, ["dataset=imagefolder"], config, {"aug": "none"}, 50.0)
    metrics = json.loads((run / "metrics.json").read_text())
    metrics.update(pgd_error=50.0, robust_split="test", robust_limit_batches=1)
    (run / "metrics.json").write_text(json.dumps(metrics))
    (run / EARLIER_ROBUSTNESS).write_text(
        json.dumps({"fgsm_error": 33.33, "fgsm_settings": {"eps_255": 8.0}, "robust_split": "test"}) + "\n"
    )
    markdown = build_report([f"runs={tmp_path / 'runs'}", f"out={tmp_path / 'r'}"], CONF)["files"]["markdown"]
    text = " ".join(markdown.read_text().split())
    assert "fgsm_error |" not in text  # (no run holds it: no column)
    assert (
        f"1 finished run had its fgsm_error (eps_255=8.0 on the test split) set aside by a later measurement "
        f"on other images or another checkpoint ({EARLIER_ROBUSTNESS} beside its metrics.json keeps it): "
        f"{script_command('evaluate.py')} {quoted_arg('ckpt', str(run))} eval.fgsm=true eval.eps=8.0 "
        f"eval.split=test measures it again ({run})"
    ) in text, text


def test_make_report_reaches_the_runs_own_table_and_the_runs_experiment():
    """``make report N=none`` runs report.py experiment=none (it gave experiment=tablenone, refused),
    and without N the experiment that made the runs is found (experiment=table, refused)."""
    import shlex
    import subprocess

    from .test_report import ROOT

    def line(*args: str) -> list[str]:
        # (under `make test` the parent's MAKEFLAGS would have this make name its directory)
        env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
        done = subprocess.run(
            ["make", "--no-print-directory", "-n", "report", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
        assert done.returncode == 0, done.stderr
        (command,) = [x for x in done.stdout.splitlines() if "report.py" in x]
        return shlex.split(command)[1:]

    assert line("N=none", "RUNS=x") == ["report.py", "experiment=none", "runs=x"]
    assert line("RUNS=x") == ["report.py", "runs=x"]
    assert line("N=5", "RUNS=x") == ["report.py", "experiment=table5", "runs=x"]
    assert line("N=demo", "RUNS=x") == ["report.py", "experiment=demo", "runs=x"]
