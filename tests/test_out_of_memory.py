"""A GPU that runs out of memory ends train.py, evaluate.py and generate.py with one message that
says what ran out and which setting needs less memory, and exit code 1: no traceback. The
allocation failure is PyTorch's own error type (torch.cuda.OutOfMemoryError, as a CUDA allocator
raises it), made to happen at one point of each entry point: the test step (after training, so
the run has a checkpoint to resume), the FGSM attack, and the edit pipeline's call.

The three entry points run as ``__main__`` (the bad-input corpus's runner) in one process of their
own: ``python -m tests.test_out_of_memory <folder>``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from unittest import mock

from tests.conftest import ROOT

MESSAGE = (
    "CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 79.19 GiB of which "
    "1.06 GiB is free. Including non-PyTorch memory, this process has 78.10 GiB memory in use. If "
    "reserved but unallocated memory is large try setting PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True "
    "to avoid fragmentation."
)


def _out_of_memory(*args, **kwargs):
    import torch

    raise torch.cuda.OutOfMemoryError(MESSAGE)


def main(folder: Path) -> list[dict]:
    import torchattacks

    from diffusemix_bench.generation.edit_model import EditModel
    from diffusemix_bench.training.module import ClassifierModule
    from tests.bad_input_corpus import Case, _generate, _train, run_case

    # The message starts a line of its own: the progress bar (on here) ends its line first.
    said = r"(?m)^error: the GPU ran out of memory \(CUDA out of memory\. Tried to allocate 2\.00 GiB\. GPU 0 has a total capacity of 79\.19 GiB of which 1\.06 GiB is free\)\. "
    results = []
    train = Case(
        "train.py out of GPU memory (in the test step)",
        "error",
        _train("cifar100", "dataset.batch_size=4", "callbacks.progress_bar=tqdm"),
        said + r"If it ran out while training, lower dataset\.batch_size \(now 4\).*"
        r"lower dataset\.eval_batch_size \(now the training batch\), and resume the run: the same "
        r"command with ckpt_path=last and hydra\.run\.dir=.*/train/run\.",
    )
    with mock.patch.object(ClassifierModule, "test_step", _out_of_memory):
        results.append(run_case(train, folder / "train"))

    def evaluate(case_folder: Path) -> tuple[str, list[str]]:
        return "evaluate.py", [f"ckpt={folder / 'train' / 'run'}", "eval.fgsm=true", "eval.batch_size=3"]

    attack = Case(
        "evaluate.py out of GPU memory (in the attack)",
        "error",
        evaluate,
        said
        + r"Lower eval\.batch_size \(the images attacked at once; now 3\) and run the same command again\.",
    )
    with mock.patch.object(torchattacks.FGSM, "forward", _out_of_memory):
        results.append(run_case(attack, folder / "evaluate"))

    edits = Case(
        "generate.py out of GPU memory (in a pipeline call)",
        "error",
        _generate("generator.batch_size=4", "trainer.enable_progress_bar=true"),
        said + r"Lower generator\.batch_size \(now 4: calls of up to 3 edits, three UNet rows each; "
        r"generator\.batch_invariant=true makes one edit per call\)\. The prompt blocks are part of the "
        r"store's settings, so a smaller batch size fills a new store",
    )
    with mock.patch.object(EditModel, "_run", _out_of_memory):
        results.append(run_case(edits, folder / "generate"))
    return results


def test_out_of_gpu_memory_is_one_message_naming_the_settings(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    env.pop("HYDRA_FULL_ERROR", None)
    done = subprocess.run(
        [sys.executable, "-m", "tests.test_out_of_memory", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert len(results) == 3
    wrong = [r for r in results if not r["passed"]]
    assert not wrong, json.dumps(wrong, indent=1)
    # The run that ran out after training kept its checkpoint, and says it failed.
    assert (tmp_path / "train" / "run" / "checkpoints" / "last.ckpt").is_file()
    assert "OutOfMemoryError" in (tmp_path / "train" / "run" / "failure.json").read_text()


if __name__ == "__main__":
    out = Path(sys.argv[1])
    found = main(out)
    (out / "results.json").write_text(json.dumps(found, indent=1))
