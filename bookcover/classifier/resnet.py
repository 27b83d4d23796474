"""ResNet-34 (He et al. 2016) as torchvision builds it, without importing torchvision.

Why not ``torchvision.models.resnet34``: ``import torchvision`` loads its detection ops, which
import torch._dynamo: 1.4 s of every cold start of ``explain``, ``predict`` and ``evaluate``
on the development VM, for a network of twenty lines. This module builds the same network:
the same module names (so torchvision state dicts, ``--init``, and every checkpoint load
as they are), the same forward ops, and the same initialisation drawn from the random number
generator in the same order (tests/classifier/test_resnet.py checks weights, buffers and outputs
against torchvision bitwise). The classifier replaces torchvision's ``fc`` by nothing: the
backbone ends at the pooled 512 features.
"""

from __future__ import annotations

import torch
from torch import nn

LAYERS = (3, 4, 6, 3)  # BasicBlocks per stage: ResNet-34
WIDTHS = (64, 128, 256, 512)
FEATURES = 512


def conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and a residual connection (projected when the
    shape changes)."""

    def __init__(self, cin: int, cout: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = conv3x3(cin, cout, stride)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(cout, cout)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = downsample  # created before this block, registered after bn2: torchvision's order

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += x if self.downsample is None else self.downsample(x)
        return self.relu(out)


class ResNet34(nn.Module):
    """The ResNet-34 backbone: stem, four stages, global average pool -> (B, 512)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        cin = 64
        for i, (blocks, width) in enumerate(zip(LAYERS, WIDTHS, strict=True)):
            stride = 1 if i == 0 else 2
            downsample = None
            if stride != 1 or cin != width:
                downsample = nn.Sequential(nn.Conv2d(cin, width, kernel_size=1, stride=stride, bias=False),
                                           nn.BatchNorm2d(width))  # fmt: skip
            stage = [BasicBlock(cin, width, stride, downsample)] + [BasicBlock(width, width) for _ in range(blocks - 1)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*stage))
            cin = width
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        if self.conv1.weight.is_meta:  # built to receive a checkpoint's weights: nothing to draw
            return  # (and meta normal_() would import torch._dynamo, the 1.2 s this file avoids)
        # torchvision creates its 1000-class fc here; drawing its initial weights keeps the random
        # stream, and so every seeded initialisation, identical. The layer itself is not kept.
        nn.Linear(FEATURES, 1000)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)
