"""Messages of the libraries underneath that tell a user of this framework nothing they can act
on, left out of train.py's and generate.py's output (imported by both; warnings a setting can
fix are kept)."""

from __future__ import annotations

import logging
import warnings


def _no_tips(record: logging.LogRecord) -> bool:
    """Lightning's advertising tips ("💡 Tip: ...") are left out of run logs, and its line on Ctrl-C
    ("Detected KeyboardInterrupt, attempting graceful shutdown"): the entry point's own line says
    what was kept and how to go on."""
    message = record.getMessage()
    return "Tip:" not in message and "Detected KeyboardInterrupt" not in message


logging.getLogger("pytorch_lightning.utilities.rank_zero").addFilter(_no_tips)

# The module scales uint8 batches in on_after_batch_transfer on purpose; the data module keeps
# Lightning's default hook, which is all this warning is about.
warnings.filterwarnings("ignore", message=r".*overridden `on_after_batch_transfer`.*")
# Lightning 2.6 inspecting batches with an API newer PyTorch deprecates: about Lightning's code.
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)` is deprecated.*")
# A resume goes on in its own checkpoints folder; a new run into one holding checkpoints is
# refused before Lightning would warn (training.resume.check_no_earlier_run).
warnings.filterwarnings("ignore", message=r".*Checkpoint directory .* exists and is not empty.*")
# generate.py's predict loop hands one group per step (batch_size=None) and keeps no predictions'
# indices: Lightning says it cannot infer them, which nothing here needs.
warnings.filterwarnings(
    "ignore", message=r".*Couldn't infer the batch indices fetched from your dataloader.*"
)


def _no_fp16_cpu_notice(record: logging.LogRecord) -> bool:
    """diffusers' notice that fp16 "cannot run" on a CPU (it runs, slowly): generate.py says what
    to set instead, once (generation/edit_model.py)."""
    return "cannot run with `cpu` device" not in record.getMessage()


logging.getLogger("diffusers.pipelines.pipeline_utils").addFilter(_no_fp16_cpu_notice)
