"""Symmetry augmentation: the eight rotations and mirror images of a full-view observation.

The rules look the same in every orientation of the room (moves, blocked diagonals, bearing
sectors), so turning a whole full-view frame by a multiple of 90 degrees, or mirroring it,
shows another valid game. Its optimal actions are the original ones, with LEFT and RIGHT
swapped under a mirror (turning counter-clockwise becomes turning clockwise); a corner
instruction names the image of its corner ("top left" turned a quarter counter-clockwise is
"bottom left"). The penguin sprites are drawn so that turning a sprite turns its heading, so a
transformed frame is pixel for pixel what the renderer draws for the transformed game; the tests
check this against re-rendered transformed states.

This multiplies the variety of a demonstration dataset by eight at no solver cost, and teaches
the network that the same situation seen in another orientation calls for the same action.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch

from penguin_env.config import make_config
from penguin_env.core import CORNER_NAMES, NUM_HEADINGS, Action
from penguin_env.instructions import Tokenizer
from penguin_env.render import PENGUIN, PENGUIN_ON_GOLD, BatchRenderer

NUM_TRANSFORMS = 8
"""Four quarter turns, each with and without a mirror image."""


def symmetry_problem(env_id: str, env_kwargs: dict[str, Any]) -> str | None:
    """Why frames of this env configuration are *not* symmetric (None when they are).

    Augmentation needs the top-down full view without the hint line, a frame whose black border
    is the same width on every side, and penguin sprites that turn with their heading at this
    cell size (true for the small cells of the default 64x64 frames; the tile lines and shading
    of large cells are not symmetric).
    """
    config = make_config(env_id, dict(env_kwargs))
    if config.view != "full":
        return f"view={config.view!r}: an egocentric frame turned by 90 degrees is not an egocentric frame"
    if config.hint:
        return "hint=True: the hint line is not drawn symmetrically"
    # The renderer's own layout (cells, cell size, border), so the check cannot drift from it.
    layout = BatchRenderer(1, config.size, config.image_size)
    if layout.image_size - 2 * layout.pad != layout.cell * layout.cells:
        return (
            f"image_size={config.image_size} leaves an odd border around {layout.cells} cells of "
            f"{layout.cell} pixels, so the frame is off-centre by a pixel"
        )
    table = layout.sprites
    for code in range(len(table)):
        if code < PENGUIN:
            turned, mirrored = code, code
        else:
            first = PENGUIN if code < PENGUIN_ON_GOLD else PENGUIN_ON_GOLD
            heading = code - first
            turned = first + (heading + 2) % NUM_HEADINGS
            mirrored = first + (NUM_HEADINGS - heading) % NUM_HEADINGS
        if not np.array_equal(np.rot90(table[code], k=-1), table[turned]) or not np.array_equal(
            table[code][:, ::-1], table[mirrored]
        ):
            return (
                f"the sprites of {layout.cell}-pixel cells (image_size={config.image_size}, "
                f"size={config.size}) are not symmetric"
            )
    return None


def transform_image(image: torch.Tensor, mirror: bool, quarter_turns: int) -> torch.Tensor:
    """``(B, S, S, C)`` frames mirrored left-right (if ``mirror``), then turned ``quarter_turns``
    quarter turns counter-clockwise."""
    if mirror:
        image = image.flip(2)
    return torch.rot90(image, quarter_turns % 4, dims=(1, 2))


def transform_actions(actions: torch.Tensor, which: torch.Tensor) -> torch.Tensor:
    """``(B,)`` action ids under symmetry ``which[i]`` (from :meth:`SymmetryAugment.draw`): LEFT
    and RIGHT swap under a mirror, every other action is its own image."""
    mirror = (which.to(actions.device) // 4).bool()
    swapped = torch.where(actions == int(Action.LEFT), int(Action.RIGHT),
                          torch.where(actions == int(Action.RIGHT), int(Action.LEFT), actions))
    return torch.where(mirror, swapped, actions)


def mirror_actions(per_action: torch.Tensor) -> torch.Tensor:
    """A tensor indexed by action on its last dimension, with LEFT and RIGHT swapped (a mirror
    image turns the other way)."""
    order = [int(Action.RIGHT), int(Action.LEFT), *range(2, per_action.shape[-1])]
    return per_action[..., order]


class SymmetryAugment:
    """Applies a random one of the eight symmetries to each sample of a batch.

    Args:
        tokenizer: the tokenizer that produced the ``text`` ids (to rewrite corner words).
    """

    def __init__(self, tokenizer: Tokenizer | None = None) -> None:
        tokenizer = tokenizer or Tokenizer()
        self.top, self.bottom, self.left, self.right = (
            tokenizer.vocab.index(word) for word in ("top", "bottom", "left", "right")
        )
        self._sources: dict[tuple[int, str], torch.Tensor] = {}

    @staticmethod
    def transform_corner(
        right: torch.Tensor, bottom: torch.Tensor, mirror: bool, quarter_turns: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Where corner ``(right, bottom)`` (bool tensors) goes: mirror left-right first, then
        ``quarter_turns`` counter-clockwise quarter turns."""
        if mirror:
            right = ~right
        for _ in range(quarter_turns % 4):
            # A counter-clockwise turn takes (x, y) to (y, n - x): top left -> bottom left.
            right, bottom = bottom, ~right
        return right, bottom

    def apply(
        self,
        image: torch.Tensor,
        text: torch.Tensor,
        mask: torch.Tensor,
        mirror: bool,
        quarter_turns: int,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One symmetry for a whole batch.

        Args:
            image: ``(B, S, S, 3)`` frames (channels last, as the env gives them).
            text: ``(B, L)`` token ids.
            mask: ``(B, ..., A)`` optimal-action mask, or any tensor whose last dimension is
                indexed by action (e.g. one-hot actions).
            mirror: mirror left-right first.
            quarter_turns: then turn this many quarter turns counter-clockwise.
        """
        if mirror:
            mask = mirror_actions(mask)
        right = (text == self.right).any(dim=1, keepdim=True)
        bottom = (text == self.bottom).any(dim=1, keepdim=True)
        right, bottom = self.transform_corner(right, bottom, mirror, quarter_turns)
        return transform_image(image, mirror, quarter_turns), self._name_corner(text, right, bottom), mask

    def _name_corner(self, text: torch.Tensor, right: torch.Tensor, bottom: torch.Tensor) -> torch.Tensor:
        """``text`` with its corner words rewritten to name corner ``(right, bottom)`` (bool
        ``(B, 1)``); token ids keep their storage type (the replay ring's is uint8)."""
        is_vertical = (text == self.top) | (text == self.bottom)
        is_horizontal = (text == self.left) | (text == self.right)
        out = torch.where(is_vertical, torch.where(bottom, self.bottom, self.top), text)
        out = torch.where(is_horizontal, torch.where(right, self.right, self.left), out)
        return out.to(text.dtype)

    @staticmethod
    def draw(batch_size: int, rng: np.random.Generator) -> torch.Tensor:
        """One of the eight symmetries per sample, uniformly from ``rng`` (indices for
        :meth:`apply_each`: ``g // 4`` mirrors, ``g % 4`` quarter turns)."""
        return torch.from_numpy(rng.integers(0, NUM_TRANSFORMS, batch_size))

    def apply_each(
        self,
        image: torch.Tensor,
        text: torch.Tensor,
        mask: torch.Tensor,
        which: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Symmetry ``which[i]`` (from :meth:`draw`) applied to sample ``i``, for the whole batch
        at once (the same result as :meth:`apply` row by row); the inputs are left unchanged.
        Passing the same ``which`` transforms paired observations alike (a transition's first
        and next observations)."""
        n, size = image.shape[0], image.shape[1]
        which = which.to(image.device)
        # Every symmetry only moves pixels: gather each frame through its pixel permutation.
        source = self._pixel_sources(size, image.device)[which]  # (B, S*S)
        flat = image.reshape(n, size * size, -1)
        image = torch.gather(flat, 1, source[..., None].expand(-1, -1, flat.shape[2])).reshape(image.shape)
        mirror = (which // 4).bool()
        mask = torch.where(mirror.view(n, *[1] * (mask.dim() - 1)), mirror_actions(mask), mask)
        return image, self.transform_text(text, which), mask

    def transform_text(self, text: torch.Tensor, which: torch.Tensor) -> torch.Tensor:
        """``(B, L)`` token ids under symmetry ``which[i]``: a corner instruction names the image
        of its corner; every other instruction is unchanged."""
        which = which.to(text.device)
        mirror, turns = (which // 4).bool()[:, None], (which % 4)[:, None]
        right = (text == self.right).any(dim=1, keepdim=True) ^ mirror
        bottom = (text == self.bottom).any(dim=1, keepdim=True)
        for turn in range(3):  # counter-clockwise quarter turns, as in transform_corner
            now = turns > turn
            right, bottom = torch.where(now, bottom, right), torch.where(now, ~right, bottom)
        return self._name_corner(text, right, bottom)

    def transform_aux(self, aux: dict[str, torch.Tensor], which: torch.Tensor, grid: int) -> dict[str, torch.Tensor]:
        """The auxiliary targets (:func:`algorithms.auxiliary.aux_targets`) of the transformed
        games: cells move with the frame's cells, a heading turns (a quarter turn
        counter-clockwise takes it two steps back, a mirror takes ``h`` to ``-h``), and the
        gold's bearing from the heading, which turns with it, changes only under a mirror."""
        which = which.to(aux["penguin"].device)
        sources = self._pixel_sources(grid, which.device)
        mirror, turns = (which // 4).bool(), which % 4
        heading = torch.where(mirror, (NUM_HEADINGS - aux["heading"]) % NUM_HEADINGS, aux["heading"])
        bearing = aux["bearing"]
        mirrored_bearing = torch.where(bearing < NUM_HEADINGS, (NUM_HEADINGS - bearing) % NUM_HEADINGS, bearing)
        return {
            # Output cell c shows input cell sources[c]: the penguin lands where its cell is the source.
            "penguin": torch.argsort(sources, dim=1)[which].gather(1, aux["penguin"][:, None]).squeeze(1),
            "heading": (heading - 2 * turns) % NUM_HEADINGS,
            "bearing": torch.where(mirror, mirrored_bearing, bearing),
            "gold": aux["gold"].gather(1, sources[which]),
        }

    def _pixel_sources(self, size: int, device: torch.device) -> torch.Tensor:
        """``(8, size*size)``: for symmetry ``g``, the source pixel of each pixel of the output
        (cached per frame size and device)."""
        key = (size, str(device))
        if key not in self._sources:
            index = torch.arange(size * size).reshape(1, size, size, 1)
            self._sources[key] = torch.stack(
                [transform_image(index, bool(g // 4), g % 4).reshape(-1) for g in range(NUM_TRANSFORMS)]
            ).to(device)
        return self._sources[key]

    def __call__(
        self,
        image: torch.Tensor,
        text: torch.Tensor,
        mask: torch.Tensor,
        rng: np.random.Generator,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Each sample gets one of the eight symmetries, drawn uniformly from ``rng``."""
        return self.apply_each(image, text, mask, self.draw(image.shape[0], rng))


def check_augment(env_id: str, env_kwargs: dict[str, Any], augment: str) -> None:
    """Raise ``ValueError`` if the ``augment`` setting (``"auto"``, ``"on"`` or ``"off"``) is
    unknown, or is ``"on"`` for frames of this env configuration that are not symmetric."""
    if augment not in ("auto", "on", "off"):
        raise ValueError(f"augment must be 'auto', 'on' or 'off', got {augment!r}")
    if augment == "on":
        problem = symmetry_problem(env_id, env_kwargs)
        if problem is not None:
            raise ValueError(f"augment='on' needs symmetric frames, but {problem}; use augment='off'")


def make_augmenter(env_id: str, env_kwargs: dict[str, Any], augment: str) -> SymmetryAugment | None:
    """The augmenter for a validated ``augment`` setting: None when it is ``"off"``, or
    ``"auto"`` and the frames are not symmetric."""
    if augment == "off" or symmetry_problem(env_id, env_kwargs) is not None:
        return None
    return SymmetryAugment()


@functools.cache
def corner_word_ids() -> torch.Tensor:
    """Token ids of the corner words, which word dropout never drops: no other word of a corner
    instruction names the corner. (Cached: treat the tensor as read-only.)"""
    vocab = Tokenizer().vocab
    return torch.tensor(sorted({vocab.index(word) for name in CORNER_NAMES for word in name.split()}))


def drop_words(
    text: torch.Tensor,
    rate: float,
    rng: np.random.Generator,
    protected: torch.Tensor | None = None,
) -> torch.Tensor:
    """Word dropout: instruction token ids with each word left out with probability ``rate``.

    The kept words move to the front in their order and padding (id 0) fills the rest, so every
    text encoder sees a shorter, well-formed instruction. Ids in ``protected`` (e.g. the corner
    words, which no other word of an instruction repeats) are never dropped, and a row that
    would lose every word is kept whole. Training on parts of the phrasings teaches the policy
    that any part of an instruction carries its meaning, which is what the held-out test
    phrasings (new combinations of training words) ask of it.

    Args:
        text: ``(B, L)`` token ids, padded with 0 at the end.
        rate: probability of leaving out each word, in [0, 1).
        rng: source of the random draws.
        protected: ids that are always kept.
    """
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"word dropout rate must be in [0, 1), got {rate!r}")
    real = text != 0
    drop = torch.from_numpy(rng.random(tuple(text.shape)) < rate).to(text.device) & real
    if protected is not None:
        drop &= ~torch.isin(text, protected.to(text.device))
    drop[(real & ~drop).sum(dim=1) == 0] = False
    keep = real & ~drop
    # A stable sort on "dropped" moves the kept words to the front without reordering them.
    order = torch.sort((~keep).to(torch.int8), dim=1, stable=True).indices
    out = text.gather(1, order)
    out[~keep.gather(1, order)] = 0
    return out
