"""FGSM and PGD error of a classifier on a split, through torchattacks.

The models of this framework take images in [0, 1] pixel space with their normaliser inside, so an
attack perturbs pixels by at most ``eps`` and clamps to [0, 1], exactly as the FGSM of Table 4
(PuzzleMix's ``main.py``: de-normalise, perturb, clamp, re-normalise) and torchattacks define it.
The error is ``100 - accuracy`` (%) on the attacked images; the model is evaluated in eval mode.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import nn

from ..config import check_budget, check_pgd_step
from ..errors import ConfigError

log = logging.getLogger(__name__)

ATTACKS = ("fgsm", "pgd")


#: Seconds between the attacks' progress lines (after the first batch's).
PROGRESS_EVERY_S = 10.0


@dataclass(frozen=True)
class AttackSpec:
    """One attack with its budget in 1/255 units of [0, 1] pixels (Table 4: FGSM at eps 8)."""

    name: str
    eps: float = 8.0
    step_size: float = 2.0  # PGD only
    steps: int = 10  # PGD only
    random_start: bool = True  # PGD only

    def __post_init__(self) -> None:
        # Checked where the attack is named, so train.py refuses a bad budget before it trains.
        if self.name not in ATTACKS:
            raise ConfigError(f"unknown attack '{self.name}'; choose one of {ATTACKS}")
        if self.eps < 0:
            raise ConfigError(f"eval.eps must be >= 0 (in 1/255 units), got {self.eps}")
        check_budget("eval.eps", self.eps, "Table 4's budget")
        if self.name == "pgd" and (self.steps < 1 or self.step_size <= 0):
            raise ConfigError(
                f"eval.pgd_steps must be >= 1 and eval.pgd_step_size > 0, got {self.steps} and {self.step_size}"
            )
        if self.name == "pgd":
            check_pgd_step(self.step_size)

    def build(self, model: nn.Module):
        import torchattacks

        if self.name == "fgsm":
            return torchattacks.FGSM(model, eps=self.eps / 255.0)
        if self.name == "pgd":
            return torchattacks.PGD(
                model,
                eps=self.eps / 255.0,
                alpha=self.step_size / 255.0,
                steps=self.steps,
                random_start=self.random_start,
            )
        raise AssertionError(self.name)  # __post_init__ allows nothing else

    def settings(self) -> dict:
        """What produced the number (written to ``metrics.json`` beside it)."""
        out = {"eps_255": self.eps}
        if self.name == "pgd":
            out.update(step_size_255=self.step_size, steps=self.steps, random_start=self.random_start)
        return out


def attack_specs(eval_cfg) -> list[AttackSpec]:
    """The attacks ``eval.fgsm`` / ``eval.pgd`` turn on."""
    specs = []
    if eval_cfg.fgsm:
        specs.append(AttackSpec("fgsm", eps=float(eval_cfg.eps)))
    if eval_cfg.pgd:
        specs.append(
            AttackSpec(
                "pgd",
                eps=float(eval_cfg.eps),
                step_size=float(eval_cfg.pgd_step_size),
                steps=int(eval_cfg.pgd_steps),
                random_start=bool(eval_cfg.pgd_random_start),
            )
        )
    return specs


def _pixels(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    images = images.to(device, non_blocking=True)
    return images.float().div_(255.0) if images.dtype == torch.uint8 else images.float()


def robust_errors(
    model: nn.Module,
    batches: Iterable,
    specs: list[AttackSpec],
    device: torch.device | str = "cpu",
    seed: int = 0,
    limit_batches: int | None = None,
    sum_over_processes: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> dict:
    """Clean and attacked error (%) of ``model`` over ``batches`` of ``(images, labels, ...)``
    (uint8, or float in [0, 1]), the first ``limit_batches`` of them when given. Returns
    ``{"images": n, "clean_error": e, "<attack>_error": e, "<attack>_settings": {...}}``. PGD's
    random start is drawn from torch's generator, seeded here. ``sum_over_processes``: several
    processes each attacked their own part of the split; it sums a tensor of counts over them
    (every process gets the whole split's numbers)."""
    device = torch.device(device)
    was_training = model.training
    model.to(device).eval()
    attacks = {spec.name: spec.build(model) for spec in specs}
    correct = {"clean": 0, **{name: 0 for name in attacks}}
    total = 0
    torch.manual_seed(seed)
    try:
        count = len(batches)  # a loader knows its number of batches
        count = min(count, limit_batches) if limit_batches else count
        of = f" of {count}"
    except TypeError:
        count, of = None, ""
    started = said = time.monotonic()
    try:
        for k, batch in enumerate(batches):
            if limit_batches is not None and k >= limit_batches:
                break
            images, labels = _pixels(batch[0], device), batch[1].to(device)
            with torch.no_grad():
                correct["clean"] += int((model(images).argmax(1) == labels).sum())
            for name, attack in attacks.items():
                adversarial = attack(images, labels)
                with torch.no_grad():
                    correct[name] += int((model(adversarial).argmax(1) == labels).sum())
            total += len(labels)
            now = time.monotonic()
            # The first batch, then every PROGRESS_EVERY_S seconds: where it is and what is left.
            if k == 0 or now - said >= PROGRESS_EVERY_S:
                said = now
                left = (
                    f", about {(now - started) / (k + 1) * (count - k - 1):.0f} s left"
                    if count is not None and k + 1 < count
                    else ""
                )
                log.info(
                    "robustness: batch %d%s attacked (%d images so far, %.0f s%s)",
                    k + 1,
                    of,
                    total,
                    now - started,
                    left,
                )
    finally:
        model.train(was_training)
    everyone = ""
    if sum_over_processes is not None:  # (the last line counts every process's images)
        counts = torch.tensor([total, *correct.values()], dtype=torch.int64, device=device)
        total, *summed = (int(n) for n in sum_over_processes(counts))
        correct = dict(zip(correct, summed))
        everyone = " by all processes"
    log.info("robustness: %d images attacked%s in %.0f s", total, everyone, time.monotonic() - started)
    if total == 0:
        raise ConfigError("the robustness evaluation got no images: the evaluated split is empty")
    out = {"images": total}
    for name, n in correct.items():
        out[f"{name}_error"] = round(100.0 - 100.0 * n / total, 4)
    for spec in specs:
        out[f"{spec.name}_settings"] = spec.settings()
    return out
