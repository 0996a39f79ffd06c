"""The bad-input corpus (tests/bad_input_corpus.py) through the real entry points, in one process
of its own: every case must end as it expects (a clear error, a counted skip, or accepted), with
no traceback and nothing written outside its folder, and no hostile file may run code."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.bad_input_corpus import _EXPLOITED as EXPLOITED
from tests.bad_input_corpus import CASES
from tests.conftest import ROOT


def test_bad_input_corpus_gets_clear_answers(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    env.pop("HYDRA_FULL_ERROR", None)
    EXPLOITED.unlink(missing_ok=True)
    # Two shards side by side (one core each): the cases are independent.
    shards = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.bad_input_corpus", str(tmp_path / f"shard{k}"), f"--shard={k}/2"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for k in range(2)
    ]
    outputs = [proc.communicate(timeout=900) for proc in shards]
    for out, _ in outputs:
        print("\n".join(line for line in out.splitlines() if line[:3] in ("ok ", "BAD") or "corpus:" in line))
    assert all(proc.returncode == 0 for proc in shards), [err[-3000:] for _, err in outputs]
    results = [r for k in range(2) for r in json.loads((tmp_path / f"shard{k}" / "results.json").read_text())]
    assert len(results) == len(CASES) >= 40
    assert not EXPLOITED.exists(), "a hostile pickle ran code"
    wrong = [r for r in results if not r.get("passed")]
    assert not wrong, json.dumps(wrong, indent=1)[:6000]
    counts = {kind: sum(r["expect"] == kind for r in results) for kind in ("error", "skip", "accepted")}
    print(
        f"bad-input corpus: {len(results)} cases: {counts['error']} clear errors, {counts['skip']} counted skips, {counts['accepted']} accepted"
    )
    assert all(counts.values())
