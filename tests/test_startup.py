"""Help, config printing, config errors and a missing dataset answer without importing torch (the
training and generation stacks load after these checks); benchmarks/startup.py times them."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT


def imports_of(script: str, args: list[str], cwd) -> tuple[subprocess.CompletedProcess, set[str]]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run(
        [sys.executable, "-X", "importtime", str(ROOT / script), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    modules = {
        line.rsplit("|", 1)[1].strip()
        for line in result.stderr.splitlines()
        if line.startswith("import time:")
    }
    return result, modules


@pytest.mark.parametrize(
    ("script", "args", "code", "expected"),
    [
        ("train.py", ["--help"], 0, "== Configuration groups =="),
        ("train.py", ["--cfg", "job", "aug=diffusemix"], 0, "lam: 0.2"),
        ("train.py", ["aug=diffuesmix"], 1, "did you mean diffusemix?"),
        ("train.py", ["dataset=cub", "paths.data_dir={tmp}/none"], 1, "Dataset 'cub' not found"),
        ("generate.py", ["--help"], 0, "generator: ip2p, ip2p_deepcache, ip2p_fast, tiny"),
        (
            "generate.py",
            ["dataset=flowers102", "paths.data_dir={tmp}/none"],
            1,
            "Dataset 'flowers102' not found",
        ),
    ],
)
def test_early_answers_import_no_torch(tmp_path, script, args, code, expected):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args + [f"hydra.run.dir={tmp_path}/run"]]
    if "--help" in args or "--cfg" in args:
        args = args[:-1]  # no run folder is made for these
    result, modules = imports_of(script, args, tmp_path)
    assert result.returncode == code, result.stderr[-2000:]
    assert expected in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert "torch" not in modules and "diffusemix_bench.cli" in modules
