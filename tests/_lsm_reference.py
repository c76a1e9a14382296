"""Test-only torch reference of the Latent Spectral Model (LSM_2D of thuml/Latent-Spectral-Models).

Written from the paper (Wu, Hu, Luo, Wang & Long, "Solving High-Dimensional PDEs with Latent
Spectral Models", ICML 2023) and the authors' ``models/LSM_2D.py``, independently of numlab:
the same modules, the same ``state_dict`` names, the same channel interleaving of the encoder
attention's keys and values. Differences from the authors' file, none of which changes the
function computed:

- no ``.cuda()``; the basis frequencies ``k/K`` are a non-persistent float64 buffer cast to the
  activations' dtype (exact in float64 runs; the authors' are float32);
- the grid follows the input's dtype (the authors' is float32 always);
- ``n_levels`` and ``n_heads`` are arguments (the authors': 5 and 8);
- un-padding slices to the original size, so that a padding of 0 on one axis only works (the
  authors' ``x[..., :-p1, :-p0]`` would empty that axis).

The input is channels-last ``(batch, H, W, C_in)`` as in the authors' code; the output
``(batch, H, W, C_out)``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class DoubleConv(nn.Module):
    def __init__(self, c_in, c_out, c_mid=None):
        super().__init__()
        c_mid = c_mid or c_out
        self.double_conv = nn.Sequential(
            nn.Conv2d(c_in, c_mid, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(c_mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(c_mid, c_out, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
        )

    def forward(self, x):
        return self.double_conv(x)


class Down(nn.Module):
    def __init__(self, c_in, c_out):
        super().__init__()
        self.maxpool_conv = nn.Sequential(nn.MaxPool2d(2), DoubleConv(c_in, c_out))

    def forward(self, x):
        return self.maxpool_conv(x)


class Up(nn.Module):
    def __init__(self, c_in, c_out):
        super().__init__()
        self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
        self.conv = DoubleConv(c_in, c_out, c_in // 2)

    def forward(self, x1, x2):
        x1 = self.up(x1)
        dy = x2.size(2) - x1.size(2)
        dx = x2.size(3) - x1.size(3)
        x1 = F.pad(x1, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])
        return self.conv(torch.cat([x2, x1], dim=1))


class OutConv(nn.Module):
    def __init__(self, c_in, c_out):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel_size=1)

    def forward(self, x):
        return self.conv(x)


class NeuralSpectralBlock2d(nn.Module):
    def __init__(self, width, num_basis, patch_size=(3, 3), num_token=4, n_heads=8):
        super().__init__()
        self.patch_size = tuple(patch_size)
        self.width = width
        self.num_basis = num_basis
        # float64, cast to the activations' dtype when used: exact k/K in float64 runs.
        self.register_buffer(
            "modes_list", torch.arange(num_basis, dtype=torch.float64) / num_basis,
            persistent=False)
        self.weights = nn.Parameter(torch.rand(width, 2 * num_basis) / width)
        self.head = n_heads
        self.num_token = num_token
        self.latent = nn.Parameter(torch.rand(n_heads, num_token, width // n_heads) / width)
        self.encoder_attn = nn.Conv2d(width, 2 * width, kernel_size=1)
        self.decoder_attn = nn.Conv2d(width, width, kernel_size=1)

    @staticmethod
    def self_attn(q, k, v):
        # q: (B, h, L, d), k, v: (B, h, S, d); no 1/sqrt(d) scaling, as the authors.
        attn = torch.softmax(torch.einsum("bhlc,bhsc->bhls", q, k), dim=-1)
        return torch.einsum("bhls,bhsc->bhlc", attn, v)

    def latent_encoder_attn(self, x):
        B, C, H, W = x.shape
        L = H * W
        latent = self.latent[None].repeat(B, 1, 1, 1)
        # Channel 2*c + s of encoder_attn(x) is the key (s = 0) or value (s = 1) of channel c.
        kv = (self.encoder_attn(x).view(B, 2 * C, L).permute(0, 2, 1)
              .reshape(B, L, self.head, C // self.head, 2).permute(4, 0, 2, 1, 3))
        latent = self.self_attn(latent, kv[0], kv[1]) + latent
        return latent.permute(0, 1, 3, 2).reshape(B, C, self.num_token)

    def latent_decoder_attn(self, x, latent):
        B, C, H, W = x.shape
        L = H * W
        latent = latent.view(B, self.head, C // self.head, self.num_token).permute(0, 1, 3, 2)
        q = (self.decoder_attn(x).view(B, C, L).permute(0, 2, 1)
             .reshape(B, L, self.head, C // self.head).permute(0, 2, 1, 3))
        out = self.self_attn(q, latent, latent)
        return out.permute(0, 1, 3, 2).reshape(B, C, H, W) + x

    def get_basis(self, z):
        arg = self.modes_list.to(z.dtype)[None, None, None, :] * z[:, :, :, None] * math.pi
        return torch.cat([torch.sin(arg), torch.cos(arg)], dim=-1)

    def forward(self, x):
        B, C, H, W = x.shape
        p1, p2 = self.patch_size
        x = (x.view(B, C, H // p1, p1, W // p2, p2).permute(0, 2, 4, 1, 3, 5)
             .reshape(B * (H // p1) * (W // p2), C, p1, p2))
        z = self.latent_encoder_attn(x)
        z = torch.einsum("bilm,im->bil", self.get_basis(z), self.weights) + z
        x = self.latent_decoder_attn(x, z)
        return (x.view(B, H // p1, W // p2, C, p1, p2).permute(0, 3, 1, 4, 2, 5)
                .reshape(B, C, H, W))


class LSM2d(nn.Module):
    """LSM_2D ``Model`` (bilinear) with the authors' hyperparameters as arguments.

    ``padding = (pad_W, pad_H)`` in the authors' order (``F.pad``'s: last axis first).
    """

    def __init__(self, in_dim, out_dim, d_model=32, num_basis=12, num_token=4,
                 patch_size=(3, 3), padding=(0, 0), n_heads=8, n_levels=5):
        super().__init__()
        w = d_model
        widths = [w * 2 ** i for i in range(n_levels - 1)] + [w * 2 ** max(n_levels - 2, 0)]
        if n_levels == 1:
            widths = [w]
        self.n_levels = n_levels
        self.inc = DoubleConv(w, w)
        for i in range(1, n_levels):
            setattr(self, f"down{i}", Down(widths[i - 1], widths[i]))
        for j in range(1, n_levels):
            skip = widths[n_levels - 1 - j]
            # The input of up_j is [skip, upsampled current]: 2 * skip channels.
            c_in = 2 * skip
            c_out = w if j == n_levels - 1 else skip // 2
            setattr(self, f"up{j}", Up(c_in, c_out))
        self.outc = OutConv(w, w)
        for i in range(n_levels):
            setattr(self, f"process{i + 1}",
                    NeuralSpectralBlock2d(widths[i], num_basis, patch_size, num_token, n_heads))
        self.padding = tuple(padding)
        self.fc0 = nn.Linear(in_dim + 2, w)
        self.fc1 = nn.Linear(w, 128)
        self.fc2 = nn.Linear(128, out_dim)

    @staticmethod
    def get_grid(x):
        B, sx, sy = x.shape[:3]
        gx = torch.tensor(np.linspace(0, 1, sx), dtype=x.dtype).reshape(1, sx, 1, 1)
        gy = torch.tensor(np.linspace(0, 1, sy), dtype=x.dtype).reshape(1, 1, sy, 1)
        return torch.cat([gx.repeat(B, 1, sy, 1), gy.repeat(B, sx, 1, 1)], dim=-1)

    def forward(self, x):
        H, W = x.shape[1:3]
        x = self.fc0(torch.cat([x, self.get_grid(x)], dim=-1)).permute(0, 3, 1, 2)
        x = F.pad(x, [0, self.padding[0], 0, self.padding[1]])
        feats = [self.inc(x)]
        for i in range(1, self.n_levels):
            feats.append(getattr(self, f"down{i}")(feats[-1]))
        L = self.n_levels
        x = getattr(self, f"process{L}")(feats[L - 1])
        for j in range(1, L):
            skip = getattr(self, f"process{L - j}")(feats[L - 1 - j])
            x = getattr(self, f"up{j}")(x, skip)
        x = self.outc(x)[..., :H, :W].permute(0, 2, 3, 1)
        return self.fc2(F.gelu(self.fc1(x)))


def darcy_config():
    """The authors' Darcy script: d_model 64, 12 basis, 4 tokens, patch 6x6, padding 11."""
    return dict(in_dim=1, out_dim=1, d_model=64, num_basis=12, num_token=4,
                patch_size=(6, 6), padding=(11, 11))


def n_params(module):
    return sum(p.numel() for p in module.parameters())
