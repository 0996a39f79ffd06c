"""make demo, in a reduced form: the whole loop offline (shapes dataset made on the spot, tiny edits,
vanilla and DiffuseMix with two seeds, FGSM, the report) through the same command."""

from __future__ import annotations

import csv
import re
import sys

import pytest

from tests.conftest import run_entry


@pytest.mark.slow  # long; the default suite stays under 15 minutes on 2 cores
def test_demo_runs_the_whole_loop_offline(tmp_path):
    result = run_entry("demo.py", [f"out={tmp_path}", "quick=true"], tmp_path, timeout=900)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    out = result.stdout
    for step in (r"generate\.py experiment=demo", r"train\.py --multirun experiment=demo",
                 r"report\.py experiment=demo"):  # fmt: skip
        # The command as the user types it: this interpreter (python where that runs it), the script.
        assert re.search(rf"^\$ (python|{re.escape(sys.executable)}) \S*{step}", out, re.M), out[-3000:]
    assert "4 runs expected: 4 finished, 0 failed, 0 diverged, 0 missing" in out
    rows = list(csv.DictReader((tmp_path / "report_quick" / "report.csv").open()))
    assert {(r["row"], r["metric"]) for r in rows} == {
        (label, metric) for label in ("Vanilla", "DiffuseMix") for metric in ("top1", "fgsm_error")
    }
    assert all(r["n"] == "2" and 0.0 <= float(r["mean"]) <= 100.0 for r in rows)
    # DiffuseMix read the edits generate.py made with the tiny pipeline.
    assert "96 edits planned: 0 already stored, 96 generated" in out
    # Every step writes under out=, generate.py's Hydra folder included (none in the project's outputs/).
    assert (tmp_path / "generate" / ".hydra" / "overrides.yaml").is_file()
    # Run again, it trains nothing: the finished runs are kept as they were.
    metrics = sorted((tmp_path / "sweep_quick").glob("*/metrics.json"))
    before = [m.read_bytes() for m in metrics]
    again = run_entry("demo.py", [f"out={tmp_path}", "quick=true"], tmp_path, timeout=900)
    assert again.returncode == 0, (again.stdout + again.stderr)[-3000:]
    assert len(metrics) == 4 and [m.read_bytes() for m in metrics] == before
    assert "96 edits planned: 96 already stored, 0 generated" in again.stdout


def test_demo_help_prints_its_usage_and_runs_nothing(tmp_path):
    result = run_entry("demo.py", ["--help"], tmp_path, timeout=120)
    assert result.returncode == 0 and result.stdout.startswith("usage: python demo.py")
    bad = run_entry("demo.py", ["quick"], tmp_path, timeout=120)
    assert bad.returncode == 1 and "demo.py takes out=<folder> and quick=true, got 'quick'" in bad.stderr
    # out= naming no folder (it was the current folder) or a file: refused, nothing written.
    empty = run_entry("demo.py", ["out=", "quick=true"], tmp_path, timeout=120)
    assert empty.returncode == 1 and "out= names no folder: give out=<folder>" in empty.stderr
    (tmp_path / "a.png").write_bytes(b"x")
    for given in ("a.png", "a.png/sub"):
        file = run_entry("demo.py", [f"out={tmp_path / given}", "quick=true"], tmp_path, timeout=120)
        assert file.returncode == 1 and f"{tmp_path / 'a.png'} is a file, not a folder" in file.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]
    # A home folder of no such user: one message, no traceback.
    nouser = run_entry("demo.py", ["out=~no_such_user_here/x", "quick=true"], tmp_path, timeout=120)
    assert nouser.returncode == 1 and nouser.stderr.startswith(
        "error: out=~no_such_user_here/x: cannot be used ("
    )
    assert "Traceback" not in nouser.stderr
