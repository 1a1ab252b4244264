"""The policy network's configuration."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

IMAGE_ENCODERS = ("cnn", "vit")
TEXT_ENCODERS = ("gru", "transformer")
FUSIONS = ("film", "concat")


@dataclass(frozen=True)
class PolicyConfig:
    """Architecture of :class:`agents.MultimodalPolicy` (everything a checkpoint must rebuild it).

    The defaults suit 64x64 full-view images of an 8x8 room on a CPU; every option also works
    for 224x224 images because both image encoders end in a fixed ``grid`` x ``grid`` map.
    """

    image_encoder: str = "cnn"
    """``"cnn"`` (strided convolutions, then adaptive pooling to ``grid``) or ``"vit"`` (patch
    embedding and a small transformer over ``grid`` x ``grid`` patch tokens)."""
    text_encoder: str = "gru"
    """``"gru"`` (token embeddings and a GRU, last real token's state) or ``"transformer"``
    (token embeddings, a small transformer, mean over real tokens)."""
    fusion: str = "film"
    """``"film"``: the instruction scales and shifts every image channel in residual blocks
    (BabyAI); ``"concat"``: image and text features are concatenated."""
    channels: int = 32
    """Channels of the image feature map (the ViT's token width)."""
    grid: int = 8
    """Side of the image feature map after the encoder (adaptive pooling makes it size-free)."""
    cnn_stem_layers: int = 2
    """Stride-2 3x3 convolutions before pooling to ``grid`` (CNN encoder)."""
    vit_layers: int = 2
    """Transformer layers of the ViT encoder."""
    vit_heads: int = 4
    """Attention heads of the ViT encoder (must divide ``channels``)."""
    word_dim: int = 32
    """Token embedding width."""
    text_dim: int = 128
    """Width of the instruction vector (GRU hidden size, transformer width)."""
    text_layers: int = 1
    """Layers of the text GRU or transformer."""
    text_heads: int = 4
    """Attention heads of the text transformer (must divide ``text_dim``)."""
    film_blocks: int = 2
    """Residual FiLM blocks (FiLM fusion) or plain residual conv blocks (concat fusion)."""
    out_channels: int = 32
    """Channels of the map that is flattened into the trunk (keeps the flatten small)."""
    hidden: int = 256
    """Width of the shared trunk that feeds the heads (the features dimension)."""

    def __post_init__(self) -> None:
        def need(cond: bool, message: str) -> None:
            if not cond:
                raise ValueError(f"PolicyConfig: {message}")

        need(
            self.image_encoder in IMAGE_ENCODERS,
            f"image_encoder must be one of {IMAGE_ENCODERS}, got {self.image_encoder!r}",
        )
        need(
            self.text_encoder in TEXT_ENCODERS,
            f"text_encoder must be one of {TEXT_ENCODERS}, got {self.text_encoder!r}",
        )
        need(self.fusion in FUSIONS, f"fusion must be one of {FUSIONS}, got {self.fusion!r}")
        for name in (
            "channels",
            "grid",
            "vit_layers",
            "vit_heads",
            "word_dim",
            "text_dim",
            "text_layers",
            "text_heads",
            "out_channels",
            "hidden",
        ):
            need(int(getattr(self, name)) >= 1, f"{name} must be >= 1, got {getattr(self, name)!r}")
        need(
            self.cnn_stem_layers >= 0 and self.film_blocks >= 0,
            "cnn_stem_layers and film_blocks must be >= 0",
        )
        need(
            self.fusion != "film" or self.film_blocks >= 1,
            "FiLM fusion needs film_blocks >= 1 (the text enters through them)",
        )
        need(
            self.channels % self.vit_heads == 0,
            f"vit_heads ({self.vit_heads}) must divide channels ({self.channels})",
        )
        need(
            self.text_dim % self.text_heads == 0,
            f"text_heads ({self.text_heads}) must divide text_dim ({self.text_dim})",
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of every field (what checkpoints store)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PolicyConfig:
        """Rebuild from :meth:`to_dict`; unknown keys are an error that names them."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(
                f"unknown PolicyConfig field(s) {unknown}; this version knows {sorted(known)}"
            )
        return cls(**data)
