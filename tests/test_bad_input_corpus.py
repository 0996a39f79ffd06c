"""The bad-input corpus (tests/bad_input_corpus.py) through the real entry points, in one process
of its own: every case must end as it expects (a clear error, a counted skip, or accepted), with
no traceback and nothing written outside its folder, and no hostile file may run code."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.bad_input_corpus import CASES
from tests.conftest import ROOT


def test_bad_input_corpus_gets_clear_answers(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    env.pop("HYDRA_FULL_ERROR", None)
    done = subprocess.run(
        [sys.executable, "-m", "tests.bad_input_corpus", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    summary = [line for line in done.stdout.splitlines() if line.startswith("bad-input corpus:")]
    print("\n".join(line for line in done.stdout.splitlines() if line[:3] in ("ok ", "BAD")))
    print(summary)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert len(results) == len(CASES) >= 40
    wrong = [r for r in results if not r.get("passed")]
    assert not wrong, json.dumps(wrong, indent=1)[:6000]
    kinds = {r["expect"] for r in results}
    assert kinds == {"error", "skip", "accepted"}
