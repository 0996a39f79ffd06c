"""diffusemix-bench: DiffuseMix data augmentation, baselines and paper tables end to end."""

__version__ = "0.1.0"
