"""Fusion of the image feature map and the instruction vector into one feature vector."""

from __future__ import annotations

import torch
from torch import nn

from agents.config import PolicyConfig


class FiLMBlock(nn.Module):
    """``x + relu(FiLM(conv(x)))`` with FiLM = ``gamma(text) * h + beta(text)`` per channel.

    The residual path is what BabyAI 1.1 found to make FiLM train well; ``gamma`` starts at 1
    (the text predicts ``gamma - 1``) so a fresh block is a plain residual conv.
    """

    def __init__(self, channels: int, text_dim: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.film = nn.Linear(text_dim, 2 * channels)

    def forward(self, x: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.film(text).unsqueeze(-1).unsqueeze(-1).chunk(2, dim=1)
        return x + torch.relu((1 + gamma) * self.conv(x) + beta)


class ResBlock(nn.Module):
    """``x + relu(conv(x))``: the concat fusion's counterpart of :class:`FiLMBlock`."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        return x + torch.relu(self.conv(x))


class Fusion(nn.Module):
    """Image map + instruction vector -> ``(B, hidden)`` features.

    ``film``: residual FiLM blocks condition the map on the text, then the map is flattened
    (keeping where things are, which a global pool would lose) into the trunk.
    ``concat``: residual conv blocks, flatten, concatenate the text vector, then the trunk.
    """

    def __init__(self, config: PolicyConfig) -> None:
        super().__init__()
        self.mode = config.fusion
        c = config.channels
        if self.mode == "film":
            self.blocks = nn.ModuleList(
                FiLMBlock(c, config.text_dim) for _ in range(config.film_blocks)
            )
        else:
            self.blocks = nn.ModuleList(ResBlock(c) for _ in range(config.film_blocks))
        self.squeeze = nn.Sequential(nn.Conv2d(c, config.out_channels, 1), nn.ReLU())
        flat = config.out_channels * config.grid * config.grid
        extra = config.text_dim if self.mode == "concat" else 0
        self.trunk = nn.Sequential(nn.Linear(flat + extra, config.hidden), nn.ReLU())

    def forward(self, image_map: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        x = image_map
        for block in self.blocks:
            x = block(x, text)
        x = self.squeeze(x).flatten(1)
        if self.mode == "concat":
            x = torch.cat([x, text], dim=1)
        return self.trunk(x)
