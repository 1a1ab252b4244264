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


def centred_pixels(image: torch.Tensor, channels_last: bool, scale: float) -> torch.Tensor:
    """``(B, 3, S, S)`` float32 pixels ``(value * scale - 0.5) * 4`` from a raw image batch.

    ``scale`` is 1/255 for uint8 images and 1 for images already in [0, 1]. Centred, unit-scale
    inputs: with raw [0, 1] pixels (a bright floor) training stalls longer.
    """
    if channels_last:
        image = image.permute(0, 3, 1, 2)
    return image.float().mul(4.0 * scale).sub_(2.0)


def patch_geometry(image_size: int, grid: int) -> tuple[int, int, int]:
    """``(patch, margin_low, margin_high)`` of a ``grid`` x ``grid`` patch stem on a square image.

    Patches are ``image_size // grid`` pixels; the leftover pixels are split between the two
    sides (more on the high side), as the renderer centres its cells, so when ``grid`` equals
    the rendered cells per side each patch is exactly one cell.
    """
    patch = image_size // grid
    if patch < 1:
        raise ValueError(
            f"a {grid}x{grid} patch stem needs images of at least {grid} pixels, got {image_size}; "
            "use a smaller PolicyConfig.grid or larger images"
        )
    leftover = image_size - patch * grid
    return patch, leftover // 2, leftover - leftover // 2


class PatchStem(nn.Module):
    """Non-overlapping ``patch`` x ``patch`` patches of the centred ``grid`` x ``grid`` area, each
    mapped by one linear layer and a ReLU (a convolution with kernel = stride = patch).

    It reads the raw image (uint8 or [0, 1] floats, channels last or first) and folds the pixel
    normalisation into the layer, so the full-resolution image is never converted to floats:
    only the gathered patches are. On a CPU that, and a matrix product in place of a strided
    convolution, make it several times cheaper than a convolutional stem. The output map is
    channels-last in memory, which the layers after it run faster on.
    """

    def __init__(self, image_size: int, grid: int, channels: int) -> None:
        super().__init__()
        self.grid = grid
        self.patch, self.low, self.high = patch_geometry(image_size, grid)
        self.proj = nn.Linear(3 * self.patch * self.patch, channels)

    def forward(self, image: torch.Tensor, channels_last: bool, scale: float) -> torch.Tensor:
        """Raw ``image`` ``(B, S, S, 3)`` or ``(B, 3, S, S)``; pixels are read as
        ``(value * scale - 0.5) * 4`` (centred, as the other stems see them).
        Returns ``(B, channels, grid, grid)``."""
        g, p, lo = self.grid, self.patch, self.low
        if not channels_last:
            image = image.permute(0, 2, 3, 1)  # a view; the gather below copies once
        b, s = image.shape[0], image.shape[1]
        x = image[:, lo : s - self.high, lo : s - self.high]
        x = x.reshape(b, g, p, g, p, 3).permute(0, 1, 3, 2, 4, 5).reshape(b, g * g, p * p * 3)
        weight = self.proj.weight * (4.0 * scale)
        bias = self.proj.bias - 2.0 * self.proj.weight.sum(dim=1)
        x = torch.relu(nn.functional.linear(x.float(), weight, bias))  # (B, G*G, C)
        return x.view(b, g, g, -1).permute(0, 3, 1, 2)


class CNNEncoder(nn.Module):
    """A stem to a ``grid`` x ``grid`` map, then ``cnn_layers`` 3x3 convolutions on it.

    ``cnn_stem="patch"``: one convolution with kernel = stride = ``image_size // grid`` over the
    centred patches (a patch embedding; with ``grid`` = rendered cells per side it sees each
    cell's sprite once, which is what makes it several times cheaper than convolving at full
    resolution). ``cnn_stem="conv"``: stride-2 3x3 convolutions at full resolution, then
    adaptive average pooling to ``grid``.
    """

    def __init__(self, config: PolicyConfig, image_size: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = 3
        self.stem: PatchStem | None = None
        if config.cnn_stem == "patch":
            self.stem = PatchStem(image_size, config.grid, config.channels)
            width = config.channels
        else:
            for i in range(config.cnn_stem_layers):
                out = (
                    config.channels
                    if i == config.cnn_stem_layers - 1
                    else max(config.channels // 2, 16)
                )
                layers += [nn.Conv2d(width, out, 3, stride=2, padding=1), nn.ReLU()]
                width = out
            layers.append(nn.AdaptiveAvgPool2d(config.grid))
        for _ in range(config.cnn_layers):
            layers += [nn.Conv2d(width, config.channels, 3, padding=1), nn.ReLU()]
            width = config.channels
        if width != config.channels:  # no conv after the stem: project to the map's width
            layers += [nn.Conv2d(width, config.channels, 1), nn.ReLU()]
        self.net = nn.Sequential(*layers)

    def forward(self, image: torch.Tensor, channels_last: bool, scale: float) -> torch.Tensor:
        """Raw image batch -> ``(B, channels, grid, grid)`` (see :func:`centred_pixels`)."""
        if self.stem is not None:
            return self.net(self.stem(image, channels_last, scale))
        return self.net(centred_pixels(image, channels_last, scale))


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

    def forward(self, image: torch.Tensor, channels_last: bool, scale: float) -> torch.Tensor:
        """Raw image batch -> ``(B, channels, grid, grid)`` (see :func:`centred_pixels`)."""
        tokens = self.pool(self.embed(centred_pixels(image, channels_last, scale)))
        b, c, g, _ = tokens.shape
        seq = tokens.flatten(2).transpose(1, 2) + self.position
        seq = self.norm(self.transformer(seq))
        return seq.transpose(1, 2).reshape(b, c, g, g)


class BagOfWordsTextEncoder(nn.Module):
    """Mean of the real tokens' embeddings, then a linear layer and ReLU.

    Word order is ignored: in this closed grammar the words alone name the task, the corner
    and "away", and an order-free encoder carries over to test phrasings that reorder them.
    It costs a fraction of a GRU, whose per-token recurrence dominates a small network on a CPU.
    """

    def __init__(self, config: PolicyConfig, vocab_size: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, config.word_dim, padding_idx=0)
        self.proj = nn.Linear(config.word_dim, config.text_dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """``tokens``: ``(B, L)`` int64 ids, 0 = padding."""
        real = (tokens != 0).unsqueeze(-1).float()
        mean = (self.embed(tokens) * real).sum(dim=1) / real.sum(dim=1).clamp(min=1.0)
        return torch.relu(self.proj(mean))


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
    if config.image_encoder == "cnn":
        return CNNEncoder(config, image_size)
    return PatchEncoder(config, image_size)


def make_text_encoder(config: PolicyConfig, vocab_size: int, max_length: int) -> nn.Module:
    """The text encoder named by ``config.text_encoder``."""
    if config.text_encoder == "bow":
        return BagOfWordsTextEncoder(config, vocab_size)
    if config.text_encoder == "gru":
        return GRUTextEncoder(config, vocab_size)
    return TransformerTextEncoder(config, vocab_size, max_length)
