"""The policy network's configuration."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

IMAGE_ENCODERS = ("cnn", "vit")
CNN_STEMS = ("patch", "conv")
TEXT_ENCODERS = ("bow", "gru", "transformer")
FUSIONS = ("film", "concat")


@dataclass(frozen=True)
class PolicyConfig:
    """Architecture of :class:`agents.MultimodalPolicy` (everything a checkpoint must rebuild it).

    The defaults (the ``"fast"`` preset) suit full-view images of an 8x8 room on a CPU: the
    stem cuts the image into ``grid`` x ``grid`` non-overlapping patches, which for the default
    ``grid=10`` are exactly the rendered cells (8 interior cells + the outer wall ring) at any
    image size, so each cell's sprite becomes one feature vector. Every option also works for
    other image and room sizes because both image encoders end in a fixed ``grid`` x ``grid``
    map. :meth:`preset` names the tested architectures (``"fast"``, ``"walls"``, ``"wide"``).
    """

    image_encoder: str = "cnn"
    """``"cnn"`` (a stem chosen by ``cnn_stem``, then ``cnn_layers`` 3x3 convolutions on the
    ``grid`` map) or ``"vit"`` (patch embedding and a small transformer over ``grid`` x
    ``grid`` patch tokens)."""
    text_encoder: str = "bow"
    """``"bow"`` (mean of token embeddings, then a linear layer: order-free and cheap),
    ``"gru"`` (token embeddings and a GRU, last real token's state) or ``"transformer"``
    (token embeddings, a small transformer, mean over real tokens)."""
    fusion: str = "film"
    """``"film"``: the instruction scales and shifts every image channel in residual blocks
    (BabyAI); ``"concat"``: image and text features are concatenated."""
    cnn_stem: str = "patch"
    """CNN stem: ``"patch"`` (one convolution whose kernel and stride are ``image_size // grid``,
    over the centred ``grid`` x ``grid`` patches; aligned with the rendered cells when ``grid``
    is the room size + 2) or ``"conv"`` (``cnn_stem_layers`` stride-2 3x3 convolutions at full
    resolution, then adaptive pooling to ``grid``; several times slower)."""
    channels: int = 16
    """Channels of the image feature map (the ViT's token width)."""
    grid: int = 10
    """Side of the image feature map after the encoder (adaptive pooling makes it size-free).
    10 = an 8x8 room and its outer wall, one feature vector per rendered cell."""
    cnn_stem_layers: int = 2
    """Stride-2 3x3 convolutions before pooling to ``grid`` (``cnn_stem="conv"`` only)."""
    cnn_layers: int = 1
    """3x3 convolutions on the ``grid`` map after the stem (they let each cell see its
    neighbours before fusion)."""
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
    film_kernel: int = 1
    """Kernel side of the FiLM blocks' convolutions: 1 (per cell, cheap; the trunk sees every
    cell) or 3 (each cell mixes with its neighbours; BabyAI's choice, ~9x the cost)."""
    out_channels: int = 16
    """Channels of the map that is flattened into the trunk (keeps the flatten small)."""
    hidden: int = 128
    """Width of the shared trunk that feeds the heads (the features dimension)."""
    keypoints: int = 16
    """Spatial soft-argmax keypoints added to the trunk's input (0: none): each of this many
    learned score maps over the cells is turned into the expected (x, y) of its softmax. A
    flattened map makes the trunk learn every position of the penguin and the gold separately;
    keypoint coordinates let it read relative positions off differences, which is what speeds
    up learning from sparse reward (deep spatial autoencoders, Finn et al. 2016)."""
    glimpses: bool = False
    """Each keypoint also reads the mean feature vector of the cells under its softmax (adds
    ``keypoints * channels`` trunk inputs): the trunk gets the features of the cell a keypoint
    locks on to, e.g. the penguin's, in one place instead of spread over the flattened map."""
    ego_keypoints: bool = False
    """Also give the trunk every keypoint's position seen from keypoint 0, turned by a heading
    read from keypoint 0's cell (8 directions, a softmax): where things are relative to the
    penguin and its heading, the way the ego view would show them, computed from the full view.
    With ``aux_heads`` (and a trainer's auxiliary losses) keypoint 0 is the penguin, keypoint 1
    the gold, and the heading is the penguin's. Needs ``keypoints >= 2``."""
    ego_ring: bool = False
    """Also give the trunk the features of the eight cells around keypoint 0, in the order of
    the heading read for the ego keypoints (ahead, ahead-right, right, ..., ahead-left): whether
    the cell ahead is a wall becomes one input instead of a relation between a neighbour and the
    heading that the trunk must learn (adds ``8 * channels`` trunk inputs). Needs
    ``ego_keypoints``."""
    nearest_keypoint: bool = False
    """Keypoint 2 finds the gold nearest the penguin: before its softmax, each cell's score is
    lowered by a learned multiple of the cell's distance in moves (Chebyshev) from keypoint 0.
    A score that reads one cell cannot tell which of several pieces is nearest, and keypoint 1's
    mean over the pieces is a point between them; with ``aux_heads`` and a trainer's
    ``aux_nearest`` keypoint 0 is the penguin and this map is trained on the nearest piece.
    Needs ``keypoints >= 3``."""
    aux_heads: bool = False
    """Heads that predict what the game state says, for trainers' auxiliary losses
    (``algorithms.auxiliary``): keypoint 0's and 1's score maps become the penguin's cell and
    the gold's cells, and a linear head on the features predicts the penguin's heading and which
    way the nearest gold lies from it. Needs ``keypoints >= 2``."""
    trunk_norm: bool = True
    """LayerNorm on the flattened map before the trunk's linear layer: keeps the trunk's
    pre-activations at unit scale, so a large early learning rate does not switch most
    trunk units off (a flat start)."""

    def __post_init__(self) -> None:
        def need(cond: bool, message: str) -> None:
            if not cond:
                raise ValueError(f"PolicyConfig: {message}")

        need(
            self.image_encoder in IMAGE_ENCODERS,
            f"image_encoder must be one of {IMAGE_ENCODERS}, got {self.image_encoder!r}",
        )
        need(
            self.cnn_stem in CNN_STEMS,
            f"cnn_stem must be one of {CNN_STEMS}, got {self.cnn_stem!r}",
        )
        need(self.film_kernel in (1, 3), f"film_kernel must be 1 or 3, got {self.film_kernel!r}")
        need(self.cnn_layers >= 0, f"cnn_layers must be >= 0, got {self.cnn_layers!r}")
        need(self.keypoints >= 0, f"keypoints must be >= 0, got {self.keypoints!r}")
        need(not self.glimpses or self.keypoints >= 1, "glimpses need keypoints >= 1 (each keypoint reads one)")
        need(not self.aux_heads or self.keypoints >= 2, "aux_heads need keypoints >= 2 (the penguin's and the gold's)")
        need(not self.ego_keypoints or self.keypoints >= 2, "ego_keypoints need keypoints >= 2 (one to be seen from)")
        need(not self.ego_ring or self.ego_keypoints, "ego_ring needs ego_keypoints=True (it is turned by their heading)")
        need(not self.nearest_keypoint or self.keypoints >= 3,
             f"nearest_keypoint needs keypoints >= 3 (it is keypoint 2), got {self.keypoints}")
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

    @classmethod
    def preset(cls, name: str, **changes: Any) -> PolicyConfig:
        """A named architecture, optionally with some fields changed.

        - ``"fast"`` (the default): cell-aligned patch stem, one 3x3 conv, per-cell FiLM blocks
          over 16 channels, bag-of-words instruction encoder, a 10x10x16 map flattened into a
          normalised 128-unit trunk. Built for RL on a CPU.
        - ``"walls"``: ``fast`` with 32 channels, two 3x3 convolutions after the stem and
          keypoint glimpses, for rooms with interior walls: whether the cell ahead (or behind)
          is a wall depends on the heading and on a neighbour at once, and ``fast``'s 16
          channels and one convolution get it wrong often enough that a greedy policy walks
          into a wall again and again. About 2x slower than ``fast``.
        - ``"wide"``: the first architecture (two stride-2 3x3 convolutions at full resolution,
          8x8 map, 32 channels, 3x3 FiLM blocks, GRU instruction encoder, 256-unit trunk
          without norm); about 4x slower to train, 3x slower to run.

        Raises:
            ValueError: for an unknown name (the message lists :data:`PRESETS`).
        """
        if name not in PRESETS:
            raise ValueError(f"unknown policy preset {name!r}; choose from {sorted(PRESETS)}")
        return cls(**{**PRESETS[name], **changes})

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


#: Named architectures for :meth:`PolicyConfig.preset` (only the fields that differ from the defaults).
PRESETS: dict[str, dict[str, Any]] = {
    "fast": {},
    "walls": {"channels": 32, "cnn_layers": 2, "glimpses": True},
    "wide": {
        "channels": 32,
        "hidden": 256,
        "cnn_stem": "conv",
        "text_encoder": "gru",
        "grid": 8,
        "cnn_layers": 1,
        "film_kernel": 3,
        "out_channels": 32,
        "keypoints": 0,
        "trunk_norm": False,
    },
}
