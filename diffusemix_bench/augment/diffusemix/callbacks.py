"""DiffuseMix's training callbacks: the epoch that starts (for seeded device draws) and the Figure 4
grid logged at the start of training."""

from __future__ import annotations

from pathlib import Path

from pytorch_lightning.callbacks import Callback

from .figure4 import figure4_image


class DiffuseMixEpochCallback(Callback):
    """Tells the method which epoch starts, so its device draws are seeded per epoch."""

    def __init__(self, aug) -> None:
        self.aug = aug

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.aug.start_epoch(trainer.current_epoch)


class DiffuseMixFigureCallback(Callback):
    """At the start of training: the Figure 4 grid of this run's settings (PNG in the run folder,
    and an image in wandb or tensorboard) and the number of training items per epoch."""

    def __init__(self, aug) -> None:
        self.aug = aug

    def on_train_start(self, trainer, pl_module) -> None:
        if not trainer.is_global_zero:
            return
        config = self.aug.ctx.config
        run_dir = Path(str(config.paths.output_dir)) if config is not None else Path(trainer.default_root_dir)
        resumed = trainer.global_step > 0  # the interrupted part logged both already
        if resumed and (run_dir / "figure4.png").is_file():
            return
        items = len(self.aug.train_set) if self.aug.train_set is not None else None
        for logger in trainer.loggers:
            if items is not None and not resumed:
                logger.log_metrics({"diffusemix/train_items": items}, step=0)
        base = self.aug.train_set.base if self.aug.train_set is not None else trainer.datamodule.train_set
        image = figure4_image(self.aug, base, self.aug.figure_images, seed=self.aug.ctx.seed)
        run_dir.mkdir(parents=True, exist_ok=True)
        image.save(run_dir / "figure4.png")
        for logger in trainer.loggers:
            if not resumed:
                _log_image(logger, "diffusemix/figure4", image)


def _log_image(logger, key: str, image) -> None:
    """Log a PIL image to wandb or tensorboard (the CSV logger has the PNG in the run folder)."""
    import numpy as np

    name = type(logger).__name__
    if name == "WandbLogger":
        logger.log_image(key=key, images=[image])
    elif name == "TensorBoardLogger":
        logger.experiment.add_image(key, np.asarray(image), 0, dataformats="HWC")
