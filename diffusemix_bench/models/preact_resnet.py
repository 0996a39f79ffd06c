"""PreActResNet-18 of the PuzzleMix / Co-Mixup / GuidedMixup benchmarks, split into stages for Manifold Mixup."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PreActBlock(nn.Module):
    """Pre-activation basic block: BN-ReLU-conv3x3, BN-ReLU-conv3x3, plus a shortcut."""

    def __init__(self, in_channels: int, channels: int, stride: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, stride=1, padding=1, bias=False)
        # A Sequential keeps the state-dict key `shortcut.0.weight` that the benchmark repositories'
        # checkpoints use, so their released weights load without renaming.
        self.shortcut: nn.Module | None = None
        if stride != 1 or in_channels != channels:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, channels, 1, stride=stride, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = F.relu(self.bn1(x))
        # The projection reads the pre-activated input while the identity path carries the raw one
        # (He et al. 2016, "Identity Mappings in Deep Residual Networks").
        shortcut = x if self.shortcut is None else self.shortcut(pre)
        out = self.conv1(pre)
        out = self.conv2(F.relu(self.bn2(out)))
        return out + shortcut


class PreActResNet(nn.Module):
    """Pre-activation ResNet with a 3x3 stem and no max-pool, run as a list of stages.

    ``stages`` are ``conv1`` (the stem), ``layer1`` .. ``layer4``; the head (optional final BN-ReLU,
    global average pool, ``linear``) follows them. Manifold Mixup runs ``forward_stages(x, 0, k)``,
    mixes the hidden state, then ``forward_head(forward_stages(h, k))``. The mixing points of the
    benchmark code map to ``k``: input = 0, after layer1 = 2, after layer2 = 3, after layer3 = 4.
    """

    stage_names: tuple[str, ...] = ("conv1", "layer1", "layer2", "layer3", "layer4")

    def __init__(
        self,
        num_blocks: tuple[int, int, int, int] = (2, 2, 2, 2),
        num_classes: int = 10,
        *,
        width: int = 64,
        stem_stride: int = 1,
        final_bn_relu: bool = False,
    ) -> None:
        super().__init__()
        if stem_stride not in (1, 2):
            raise ValueError(
                f"stem_stride must be 1 (32 px CIFAR) or 2 (64 px Tiny-ImageNet), got {stem_stride}"
            )
        self.conv1 = nn.Conv2d(3, width, 3, stride=stem_stride, padding=1, bias=False)
        channels = width
        layers = []
        for i, blocks in enumerate(num_blocks):
            out_channels = width * 2**i
            strides = [1 if i == 0 else 2] + [1] * (blocks - 1)
            stage = []
            for stride in strides:
                stage.append(PreActBlock(channels, out_channels, stride))
                channels = out_channels
            layers.append(nn.Sequential(*stage))
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        # The benchmark repositories feed layer4's un-normalised sum straight to the pool; He et al.'s
        # pre-activation design adds one more BN-ReLU there. Off by default to match the reported numbers.
        self.bn = nn.BatchNorm2d(channels) if final_bn_relu else None
        self.linear = nn.Linear(channels, num_classes)

    @property
    def stages(self) -> list[nn.Module]:
        return [getattr(self, name) for name in self.stage_names]

    def forward_stages(self, x: torch.Tensor, start: int = 0, stop: int | None = None) -> torch.Tensor:
        """Run ``stages[start:stop]`` on ``x`` (the input image when ``start`` is 0)."""
        for stage in self.stages[start:stop]:
            x = stage(x)
        return x

    def forward_head(self, h: torch.Tensor) -> torch.Tensor:
        """Logits from layer4's output."""
        if self.bn is not None:
            h = F.relu(self.bn(h))
        return self.linear(torch.flatten(F.adaptive_avg_pool2d(h, 1), 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_stages(x))


def preact_resnet18(num_classes: int, *, stem_stride: int = 1, final_bn_relu: bool = False) -> PreActResNet:
    """PreActResNet-18, width 64: ``stem_stride=1`` for 32 px inputs, 2 for 64 px Tiny-ImageNet."""
    return PreActResNet(
        (2, 2, 2, 2), num_classes, width=64, stem_stride=stem_stride, final_bn_relu=final_bn_relu
    )
