"""The study's DCGAN (Table 1): a 64x64 generator and discriminator, optionally level-conditional.

G: z (nz x 1 x 1) -> ConvT 512, 256, 128, 64, 3 (kernel 4; strides 1, 2, 2, 2, 2; paddings
0, 1, 1, 1, 1), BatchNorm + ReLU between, Tanh on the output: 1 -> 4 -> 8 -> 16 -> 32 -> 64 px.
D: 3 x 64 x 64 -> Conv 64, 128, 256, 512, 1 (kernel 4; strides 2, 2, 2, 2, 1; paddings 1, 1, 1,
1, 0), LeakyReLU 0.2, BatchNorm on every layer except the first. The study ends D in a Sigmoid;
here D returns the logit and the sigmoid lives in BCEWithLogits, which is numerically safe under
AMP (the probability is sigmoid(logit), identical in exact arithmetic).

Conditional variant (beyond the study): G concatenates a learned level embedding to z; D gets
the level as a learned 64x64 map stacked onto the image as a fourth channel.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

NZ = 100
IMAGE_SIZE = 64
G_STRIDES, G_PADDINGS = (1, 2, 2, 2, 2), (0, 1, 1, 1, 1)
D_STRIDES, D_PADDINGS = (2, 2, 2, 2, 1), (1, 1, 1, 1, 0)
KERNEL = 4


def _widths(base: int, factors: tuple[int, ...]) -> list[int]:
    return [base * f for f in factors]


def project_noise(first: nn.ConvTranspose2d, z: torch.Tensor) -> torch.Tensor:
    """G's first layer (ConvT, kernel 4, stride 1, no padding, on a 1 x 1 input) as the matrix
    product it is, returned channels_last.

    On a 1 x 1 input a convolution's memory format is ambiguous (both layouts have the same
    strides' meaning), and on CUDA torch.compile's stride prediction for that convolution's
    backward disagreed with cuDNN's (an assert_size_stride failure, so every compiled GAN step
    fell back to eager). Same weight, same result, no ambiguous convolution.
    """
    out = z.flatten(1) @ first.weight.flatten(1)
    return out.view(z.shape[0], first.out_channels, *first.kernel_size).contiguous(memory_format=torch.channels_last)


def score_features(last: nn.Conv2d, h: torch.Tensor) -> torch.Tensor:
    """D's last layer (Conv, kernel 4, stride 1, no padding, on a 4 x 4 input; one output
    channel) as the dot product it is: one logit per image. See project_noise for why."""
    return F.linear(h.flatten(1), last.weight.flatten(1)).view(-1)


class Generator(nn.Module):
    """z -> 3 x 64 x 64 image in [-1, 1]. ngf=64 gives Table 1's 512-256-128-64-3."""

    def __init__(self, nz: int = NZ, ngf: int = 64, num_classes: int = 0, embed_dim: int = 50):
        super().__init__()
        self.nz, self.num_classes = nz, num_classes
        self.embed = nn.Embedding(num_classes, embed_dim) if num_classes else None
        widths = _widths(ngf, (8, 4, 2, 1)) + [3]
        layers: list[nn.Module] = []
        cin = nz + (embed_dim if num_classes else 0)
        for i, cout in enumerate(widths):
            layers.append(nn.ConvTranspose2d(cin, cout, KERNEL, G_STRIDES[i], G_PADDINGS[i], bias=False))
            if i < len(widths) - 1:
                layers += [nn.BatchNorm2d(cout), nn.ReLU(True)]
            cin = cout
        layers.append(nn.Tanh())
        self.main = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if z.dim() == 2:
            z = z[:, :, None, None]
        if self.embed is not None:
            if labels is None:
                raise ValueError("a conditional generator needs labels")
            z = torch.cat([z, self.embed(labels)[:, :, None, None].to(z.dtype)], 1)
        return self.main[1:](project_noise(self.main[0], z))


class Discriminator(nn.Module):
    """3 x 64 x 64 image -> one logit per image. ndf=64 gives Table 1's 64-128-256-512-1."""

    def __init__(self, ndf: int = 64, num_classes: int = 0):
        super().__init__()
        self.num_classes = num_classes
        self.embed = nn.Embedding(num_classes, IMAGE_SIZE * IMAGE_SIZE) if num_classes else None
        widths = _widths(ndf, (1, 2, 4, 8)) + [1]
        layers: list[nn.Module] = []
        cin = 3 + (1 if num_classes else 0)
        for i, cout in enumerate(widths):
            layers.append(nn.Conv2d(cin, cout, KERNEL, D_STRIDES[i], D_PADDINGS[i], bias=False))
            if i < len(widths) - 1:
                if i > 0:
                    layers.append(nn.BatchNorm2d(cout))
                layers.append(nn.LeakyReLU(0.2, True))
            cin = cout
        self.main = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None:
            if labels is None:
                raise ValueError("a conditional discriminator needs labels")
            plane = self.embed(labels).view(-1, 1, IMAGE_SIZE, IMAGE_SIZE).to(x.dtype)
            x = torch.cat([x, plane], 1)
        return score_features(self.main[-1], self.main[:-1](x))


def init_weights(module: nn.Module) -> None:
    """DCGAN's initialisation: conv weights N(0, 0.02); BatchNorm weights N(1, 0.02), bias 0."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight, 0.0, 1.0)


def build_gan(nz: int = NZ, ngf: int = 64, ndf: int = 64, num_classes: int = 0) -> tuple[Generator, Discriminator]:
    """A freshly initialised (G, D) pair; seed torch's RNG first for a reproducible start."""
    g, d = Generator(nz, ngf, num_classes), Discriminator(ndf, num_classes)
    g.apply(init_weights)
    d.apply(init_weights)
    return g, d


def layer_table(model: nn.Module) -> list[tuple[str, int, int, int, int]]:
    """(kind, out_channels, kernel, stride, padding) of each conv layer: Table 1, row by row."""
    rows = []
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            kind = "ConvT" if isinstance(m, nn.ConvTranspose2d) else "Conv"
            rows.append((kind, m.out_channels, m.kernel_size[0], m.stride[0], m.padding[0]))
    return rows
