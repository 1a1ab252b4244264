"""Image and instruction encoders.

Both image encoders return a ``(B, channels, grid, grid)`` feature map whatever the image size,
so the fusion and heads after them are the same at 64x64 and 224x224. Both text encoders return
a ``(B, text_dim)`` instruction vector.
"""

from __future__ import annotations

import torch
from torch import nn

from agents.config import PolicyConfig


def _transformer(dim: int, heads: int, layers: int) -> nn.TransformerEncoder:
    """A pre-norm transformer encoder without dropout (used by the patch and text encoders)."""
    layer = nn.TransformerEncoderLayer(
        dim, heads, dim_feedforward=2 * dim, dropout=0.0, batch_first=True, norm_first=True
    )
    return nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)

class CNNEncoder(nn.Module):
    """Strided 3x3 convolutions, then adaptive average pooling to a ``grid`` x ``grid`` map.

    Two stride-2 layers bring a 64x64 image (about 6 pixels per cell) to 16x16 before pooling,
    fine enough to keep every cell apart; a 224x224 image goes through the same layers.
    """

    def __init__(self, config: PolicyConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = 3
        for i in range(config.cnn_stem_layers):
            out = (
                config.channels
                if i == config.cnn_stem_layers - 1
                else max(config.channels // 2, 16)
            )
            layers += [nn.Conv2d(width, out, 3, stride=2, padding=1), nn.ReLU()]
            width = out
        layers += [
            nn.AdaptiveAvgPool2d(config.grid),
            nn.Conv2d(width, config.channels, 3, padding=1),
            nn.ReLU(),
        ]
        self.net = nn.Sequential(*layers)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """``image``: ``(B, 3, S, S)`` floats in [0, 1]."""
        return self.net(image)


class PatchEncoder(nn.Module):
    """ViT-style encoder: ``grid`` x ``grid`` patch tokens, learned positions, pre-norm transformer.

    The patch side is ``image_size // grid``; pixels left over at the border are pooled into
    the last row and column of patches by adaptive pooling.
    """

    def __init__(self, config: PolicyConfig, image_size: int) -> None:
        super().__init__()
        patch = max(1, image_size // config.grid)
        self.grid = config.grid
        self.embed = nn.Conv2d(3, config.channels, patch, stride=patch)
        self.pool = nn.AdaptiveAvgPool2d(config.grid)
        self.position = nn.Parameter(torch.zeros(1, config.grid * config.grid, config.channels))
        nn.init.normal_(self.position, std=0.02)
        self.transformer = _transformer(config.channels, config.vit_heads, config.vit_layers)
        self.norm = nn.LayerNorm(config.channels)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        tokens = self.pool(self.embed(image))  # (B, C, G, G)
        b, c, g, _ = tokens.shape
        seq = tokens.flatten(2).transpose(1, 2) + self.position
        seq = self.norm(self.transformer(seq))
        return seq.transpose(1, 2).reshape(b, c, g, g)


class GRUTextEncoder(nn.Module):
    """Token embeddings and a GRU; the instruction vector is the state after the last real token."""

    def __init__(self, config: PolicyConfig, vocab_size: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, config.word_dim, padding_idx=0)
        self.gru = nn.GRU(
            config.word_dim, config.text_dim, num_layers=config.text_layers, batch_first=True
        )

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """``tokens``: ``(B, L)`` int64 ids, padded with 0 at the end."""
        out, _ = self.gru(self.embed(tokens))
        # Gathering at the last real token (instead of packing) keeps the batch dense and fast.
        last = ((tokens != 0).sum(dim=1) - 1).clamp(min=0)
        return out[torch.arange(tokens.shape[0], device=tokens.device), last]


class TransformerTextEncoder(nn.Module):
    """Token embeddings with learned positions, a small transformer, mean over real tokens."""

    def __init__(self, config: PolicyConfig, vocab_size: int, max_length: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, config.text_dim, padding_idx=0)
        self.position = nn.Parameter(torch.zeros(1, max_length, config.text_dim))
        nn.init.normal_(self.position, std=0.02)
        self.transformer = _transformer(config.text_dim, config.text_heads, config.text_layers)
        self.norm = nn.LayerNorm(config.text_dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        pad = tokens == 0
        # An all-padding row would make attention undefined; let it attend to its first slot.
        pad[:, 0] &= ~pad.all(dim=1)
        x = self.embed(tokens) + self.position[:, : tokens.shape[1]]
        x = self.norm(self.transformer(x, src_key_padding_mask=pad))
        keep = (~pad).unsqueeze(-1).to(x.dtype)
        return (x * keep).sum(dim=1) / keep.sum(dim=1)


def make_image_encoder(config: PolicyConfig, image_size: int) -> nn.Module:
    """The image encoder named by ``config.image_encoder``."""
    return CNNEncoder(config) if config.image_encoder == "cnn" else PatchEncoder(config, image_size)


def make_text_encoder(config: PolicyConfig, vocab_size: int, max_length: int) -> nn.Module:
    """The text encoder named by ``config.text_encoder``."""
    if config.text_encoder == "gru":
        return GRUTextEncoder(config, vocab_size)
    return TransformerTextEncoder(config, vocab_size, max_length)
