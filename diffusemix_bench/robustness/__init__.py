"""Adversarial robustness (Table 4): FGSM and PGD of trained classifiers through torchattacks, and
fast adversarial training (``adv.p``)."""

from .attacks import ATTACKS, AttackSpec, attack_specs, robust_errors

__all__ = ["ATTACKS", "AttackSpec", "attack_specs", "robust_errors"]
