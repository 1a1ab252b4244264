"""Reading a game state back from a clean full-view image.

Every cell of a frame drawn by :class:`penguin_env.render.BatchRenderer` is exactly one sprite
of :func:`penguin_env.render.sprites`, so a clean image can be decoded cell by cell by exact
matching. :func:`perceive` does this with whole-array operations; it doubles as a check that the
renderer draws what the state says.

Only clean ``view="full"`` frames without the hint overlay can be read: anything else (noise,
scaling, the blue hint line, an ego view) is reported as the first cell that matches no sprite.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from penguin_env.core import HEADING_NAMES
from penguin_env.render import (
    FLOOR,
    GOLD,
    MIN_CELL,
    NUM_CODES,
    PENGUIN,
    PENGUIN_ON_GOLD,
    VOID,
    WALL,
    cell_size,
    sprites,
)

_CODE_NAMES = {FLOOR: "floor", WALL: "wall", GOLD: "gold", VOID: "void"}


def _code_name(code: int) -> str:
    if code in _CODE_NAMES:
        return _CODE_NAMES[code]
    where = "penguin on gold" if code >= PENGUIN_ON_GOLD else "penguin"
    return f"{where} facing {HEADING_NAMES[(code - PENGUIN) % len(HEADING_NAMES)]}"


@functools.lru_cache(maxsize=32)
def _fingerprints(cell: int) -> tuple[np.ndarray, np.ndarray]:
    """Random pixel weights for a cell size and the fingerprint of every sprite under them.

    A fingerprint is a wrapping uint64 weighted sum of a tile's bytes; equal tiles have equal
    fingerprints, and a match is confirmed by an exact comparison afterwards, so a collision
    between an unknown tile and a sprite can never produce a wrong answer.
    """
    table = sprites(cell).reshape(NUM_CODES, -1).astype(np.uint64)
    rng = np.random.default_rng(cell)  # fixed per cell size: results never depend on call order
    weights = rng.integers(1, 2**63, size=table.shape[1], dtype=np.uint64) | np.uint64(1)
    with np.errstate(over="ignore"):
        prints = (table * weights).sum(axis=1, dtype=np.uint64)
    if len(np.unique(prints)) != NUM_CODES:  # pragma: no cover - sprites are pairwise distinct
        raise RuntimeError(f"sprite fingerprints collide at cell size {cell}")
    return weights, prints


def decode_cells(image: np.ndarray, cells: int) -> np.ndarray:
    """``(cells, cells)`` sprite codes of a clean frame that shows ``cells`` x ``cells`` cells.

    Raises:
        ValueError: if the image has the wrong shape or dtype, its border is not black, or a
            cell matches no sprite (the message names the first such cell, row by row).
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] != image.shape[1]:
        raise ValueError(f"image must have shape (S, S, 3) (a square RGB frame), got {image.shape}")
    if image.dtype != np.uint8:
        raise ValueError(f"image must be uint8 (a rendered frame), got dtype {image.dtype}")
    s = image.shape[0]
    cell = cell_size(s, cells)
    if cell < MIN_CELL:
        raise ValueError(
            f"an image of {s}x{s} pixels cannot hold {cells} cells of at least {MIN_CELL} pixels; "
            f"pass the room size the image was rendered with (image_size >= {MIN_CELL * cells})"
        )
    pad, span = (s - cell * cells) // 2, cell * cells
    border = np.ones((s, s), dtype=bool)
    border[pad : pad + span, pad : pad + span] = False
    if image[border].any():
        raise ValueError(
            f"image is not a clean render of a room with {cells - 2}x{cells - 2} interior cells: "
            f"the {pad}-pixel border around the room must be black (wrong size, or not a Penguin frame?)"
        )
    tiles = image[pad : pad + span, pad : pad + span].reshape(cells, cell, cells, cell, 3)
    tiles = tiles.transpose(0, 2, 1, 3, 4).reshape(cells * cells, -1)
    weights, prints = _fingerprints(cell)
    with np.errstate(over="ignore"):
        tile_prints = (tiles.astype(np.uint64) * weights).sum(axis=1, dtype=np.uint64)
    hits = tile_prints[:, None] == prints[None, :]
    codes = hits.argmax(axis=1)
    exact = hits.any(axis=1) & (tiles == sprites(cell).reshape(NUM_CODES, -1)[codes]).all(axis=1)
    if not exact.all():
        bad = int(np.flatnonzero(~exact)[0])
        row, col = divmod(bad, cells)
        raise ValueError(
            f"image is not a clean render: cell (row {row}, column {col}) of the {cells}x{cells} grid "
            f"({cell}-pixel cells, outer wall ring included) matches no sprite. Only full-view frames "
            f"without the hint overlay can be read, with the room size they were rendered with."
        )
    return codes.reshape(cells, cells)


def perceive(image: np.ndarray, size: int) -> dict[str, Any]:
    """Read walls, the penguin and the remaining gold from a clean full-view image.

    Args:
        image: ``(S, S, 3)`` uint8 observation of a ``view="full"`` env without ``hint``, for any
            supported ``image_size`` S.
        size: the room's interior side length (the env's ``size``).

    Returns:
        A dict with the field names of :mod:`penguin_env.state`: ``size``, ``walls`` (interior rows
        of ``'#'``/``'.'``), ``pos`` ``[x, y]``, ``heading`` (0..7, clockwise from north),
        ``gold`` (cells of the gold still on the board, row by row; collected gold is invisible,
        so the order and count of the state's ``gold`` list cannot be recovered), and
        ``on_gold``: whether the penguin stands on a gold landmark (non-collect tasks).

    Raises:
        ValueError: on a wrong shape or dtype, or an image that is not a clean render of a
            ``size`` room (the message names the first bad cell).
    """
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"size must be a positive int (the env's room size), got {size!r}")
    size = int(size)
    codes = decode_cells(image, size + 2)
    ring = np.ones_like(codes, dtype=bool)
    ring[1:-1, 1:-1] = False
    if (codes[ring] != WALL).any():
        raise ValueError(
            f"image is not a clean render of a size={size} room: the outer cells are not all wall"
        )
    interior = codes[1:-1, 1:-1]
    if (interior == VOID).any():
        raise ValueError(
            "image is not a clean full-view render: it has black (void) cells inside the room (an ego view?)"
        )
    penguin = interior >= PENGUIN
    if penguin.sum() != 1:
        raise ValueError(
            f"image shows {int(penguin.sum())} penguins; a clean render shows exactly one"
        )
    py, px = (int(v[0]) for v in np.nonzero(penguin))
    code = int(interior[py, px])
    gold = (interior == GOLD) | (interior >= PENGUIN_ON_GOLD)
    gy, gx = np.nonzero(gold)  # row-major order
    return {
        "size": size,
        "walls": ["".join("#" if c == WALL else "." for c in row) for row in interior.tolist()],
        "pos": [px, py],
        "heading": (code - PENGUIN) % len(HEADING_NAMES),
        "gold": [[int(x), int(y)] for x, y in zip(gx, gy, strict=True)],
        "on_gold": code >= PENGUIN_ON_GOLD,
    }


__all__ = ["decode_cells", "perceive"]
