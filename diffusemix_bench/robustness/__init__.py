"""Adversarial robustness of trained classifiers (Table 4): FGSM and PGD through torchattacks."""

from .attacks import ATTACKS, AttackSpec, attack_specs, robust_errors

__all__ = ["ATTACKS", "AttackSpec", "attack_specs", "robust_errors"]
