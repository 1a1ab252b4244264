"""Array rendering: a sprite per cell code, written into preallocated frame buffers.

A frame is a grid of square cells of ``cell`` pixels, centred in an ``image_size`` square
(the leftover border is black). Every cell shows exactly one of the :data:`NUM_CODES`
sprites, so a clean frame can be read back cell by cell (see :mod:`penguin_env.perception`).

:class:`BatchRenderer` keeps one frame per game. After a step only the penguin's old and new
cells are rewritten, through a ``(N, rows, cell, cols, cell, 3)`` view of the buffer.
"""

from __future__ import annotations

import functools

import numpy as np

from penguin_env.core import DX, DY, NUM_HEADINGS, GameState, Task

FLOOR, WALL, GOLD, VOID = 0, 1, 2, 3
PENGUIN = 4  #: codes 4..11: penguin on floor, heading 0..7
PENGUIN_ON_GOLD = 12  #: codes 12..19: penguin standing on a gold landmark
NUM_CODES = 20
MIN_CELL = 4  #: smallest cell (pixels) at which all sprites stay distinct

COLORS = {
    "floor": (196, 228, 246),  # ice blue
    "floor_line": (178, 212, 234),
    "wall": (128, 128, 128),  # grey
    "wall_edge": (96, 96, 96),
    "gold": (250, 204, 20),  # yellow
    "gold_edge": (200, 150, 0),
    "void": (0, 0, 0),
    "body": (16, 16, 16),  # black
    "belly": (250, 250, 250),  # white
    "beak": (255, 140, 0),  # orange
    "hint": (30, 80, 230),  # blue
}


def cell_size(image_size: int, cells: int) -> int:
    """Pixels per cell when ``cells`` cells span an ``image_size`` frame."""
    return image_size // cells


def min_image_size(cells: int) -> int:
    """Smallest ``image_size`` that holds ``cells`` cells of :data:`MIN_CELL` pixels."""
    return MIN_CELL * cells


@functools.lru_cache(maxsize=32)
def sprites(cell: int) -> np.ndarray:
    """``(NUM_CODES, cell, cell, 3)`` uint8 sprite table for a cell size (read-only)."""
    if cell < MIN_CELL:
        raise ValueError(f"cell size must be >= {MIN_CELL} pixels, got {cell}")
    table = np.zeros((NUM_CODES, cell, cell, 3), dtype=np.uint8)
    offset = np.arange(cell) - (cell - 1) / 2.0  # pixel centres relative to the cell centre
    oy, ox = np.meshgrid(offset, offset, indexing="ij")
    radius = np.hypot(ox, oy)
    edge = (np.abs(ox) > cell / 2 - 1) | (np.abs(oy) > cell / 2 - 1)  # outermost pixel ring

    floor = np.empty((cell, cell, 3), np.uint8)
    floor[:] = COLORS["floor"]
    if cell >= 12:  # faint tile lines once there is room for them
        floor[edge & ((ox > 0) | (oy > 0))] = COLORS["floor_line"]
    wall = np.empty_like(floor)
    wall[:] = COLORS["wall"]
    if cell >= 8:
        wall[edge & ((ox > 0) | (oy > 0))] = COLORS["wall_edge"]
    gold = floor.copy()
    gold_disc = radius <= 0.38 * cell
    gold[gold_disc] = COLORS["gold"]
    if cell >= 10:
        gold[gold_disc & (radius > 0.38 * cell - 1.2)] = COLORS["gold_edge"]

    table[FLOOR], table[WALL], table[GOLD] = floor, wall, gold
    table[VOID] = COLORS["void"]

    angle = np.degrees(np.arctan2(ox, -oy)) % 360.0  # clockwise from north, y down
    for h in range(NUM_HEADINGS):
        if cell >= 16:
            body, belly, beak = _penguin_masks(ox, oy, h, cell)
        else:  # few pixels: a round body with a centred belly and a wide beak wedge read best
            diff = np.abs((angle - 45.0 * h + 180.0) % 360.0 - 180.0)
            body, belly = radius <= 0.5 * cell, radius <= 0.25 * cell
            beak = (diff < 22.5) & (radius >= 0.3 * cell) & (radius <= 0.75 * cell)
        for base, background in ((PENGUIN, floor), (PENGUIN_ON_GOLD, None)):
            sprite = background.copy() if background is not None else np.empty_like(floor)
            if background is None:
                sprite[:] = COLORS["gold"]  # gold shows around the penguin's body
            sprite[body] = COLORS["body"]
            sprite[belly] = COLORS["belly"]
            sprite[beak] = COLORS["beak"]
            table[base + h] = sprite
    table.setflags(write=False)
    return table


def _penguin_masks(
    ox: np.ndarray, oy: np.ndarray, heading: int, cell: int
) -> tuple[np.ndarray, ...]:
    """Body, belly (with eyes) and beak masks of a penguin seen from above, for cells >= 16 px.

    ``u`` runs along the heading and ``v`` across it. The body is an oval; the white belly is
    shifted backwards, which leaves a black head in front with two white eyes and a pointed
    orange beak, so the heading reads at a glance.
    """
    a = np.radians(45.0 * heading)
    u = (ox * np.sin(a) - oy * np.cos(a)) / cell  # forward, in cells
    v = (ox * np.cos(a) + oy * np.sin(a)) / cell  # to the penguin's right, in cells
    body = (u / 0.41) ** 2 + (v / 0.34) ** 2 <= 1.0
    belly = ((u + 0.14) / 0.23) ** 2 + (v / 0.21) ** 2 <= 1.0
    eye_r = max(0.06, 0.7 / cell)  # at least about one pixel across
    eyes = ((u - 0.2) ** 2 + (np.abs(v) - 0.13) ** 2) <= eye_r**2
    beak = (u >= 0.3) & (u <= 0.5) & (np.abs(v) <= 0.13 * (0.5 - u) / 0.2 + 0.5 / cell)
    return body, belly | eyes, beak


def cell_codes(state: GameState) -> np.ndarray:
    """``(N, size + 2, size + 2)`` sprite code of every cell, outer wall ring included."""
    n = state.num
    codes = np.where(state.walls, WALL, FLOOR).astype(np.int64)
    rows = np.arange(n)[:, None]
    gx, gy = state.gold[..., 0] + 1, state.gold[..., 1] + 1
    codes[rows, gy, gx] = np.where(state.gold_left, GOLD, codes[rows, gy, gx])
    px, py = state.pos[:, 0] + 1, state.pos[:, 1] + 1
    on_gold = codes[np.arange(n), py, px] == GOLD
    codes[np.arange(n), py, px] = np.where(on_gold, PENGUIN_ON_GOLD, PENGUIN) + state.heading
    return codes


def nearest_gold(state: GameState) -> tuple[np.ndarray, np.ndarray]:
    """Index of the nearest remaining gold piece (Euclidean) and whether any remains."""
    d = ((state.gold - state.pos[:, None, :]) ** 2).sum(axis=2).astype(np.float64)
    d = np.where(state.gold_left, d, np.inf)
    return d.argmin(axis=1), np.isfinite(d).any(axis=1)


def ego_window(size: int) -> int:
    """Cells across the egocentric view: ``size + 1`` rounded up to an odd number, so the
    penguin sits in the centre cell and sees about half the room in every direction."""
    return size + 1 if size % 2 == 0 else size + 2


class BatchRenderer:
    """Frames of N games in one preallocated ``(N, S, S, 3)`` uint8 buffer.

    Args:
        num: number of games.
        size: interior side length of the room.
        image_size: side of the square frame in pixels.
        view: ``"full"`` (whole room, north up) or ``"ego"`` (window centred on the penguin,
            rotated so its heading points up; diagonal headings point up-right, because a grid
            cannot be turned by 45 degrees).
        hint: draw a blue line from the penguin to the nearest remaining gold piece.
    """

    def __init__(
        self, num: int, size: int, image_size: int, view: str = "full", hint: bool = False
    ) -> None:
        self.num, self.size, self.image_size, self.view, self.hint = (
            num,
            size,
            image_size,
            view,
            hint,
        )
        self.cells = size + 2 if view == "full" else ego_window(size)
        self.cell = cell_size(image_size, self.cells)
        if self.cell < MIN_CELL:
            raise ValueError(
                f"image_size={image_size} cannot hold {self.cells} cells of at least {MIN_CELL} pixels; "
                f"use image_size >= {min_image_size(self.cells)} or a smaller room"
            )
        self.pad = (image_size - self.cell * self.cells) // 2
        self.sprites = sprites(self.cell)
        self.frames = np.zeros((num, image_size, image_size, 3), dtype=np.uint8)
        self.grid = self._grid_view()
        # The sprite code each cell currently shows. A zeroed frame is all VOID (black), so redraws
        # can skip the cells whose code did not change: a new level of an empty-room variant
        # differs from the last one in a handful of cells, which keeps autoresets cheap.
        self.codes = np.full((num, self.cells, self.cells), VOID, dtype=np.int8)
        self._all = np.arange(num)

    def _grid_view(self) -> np.ndarray:
        """``(N, rows, cell, cols, cell, 3)`` view of the frames' room area."""
        span = self.cell * self.cells
        inner = self.frames[:, self.pad : self.pad + span, self.pad : self.pad + span]
        # A view, not a copy: splitting an axis never needs a copy.
        grid = inner.reshape(self.num, self.cells, self.cell, self.cells, self.cell, 3)
        assert np.shares_memory(grid, self.frames)
        return grid

    # Pickle and deepcopy would store ``grid`` as an independent array, so later draws would no
    # longer reach ``frames``; store the frames only and rebuild the view.
    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        del state["grid"], state["sprites"]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.sprites = sprites(self.cell)
        self.grid = self._grid_view()

    # -- drawing ---------------------------------------------------------------------------
    def render_full(self, state: GameState, index: np.ndarray | None = None) -> None:
        """Redraw every cell of the games ``index`` (all games if None) from ``state``.

        ``state`` holds exactly the games to draw, in the order of ``index``.
        """
        index = np.arange(self.num) if index is None else np.asarray(index)
        if index.size == 0:
            return
        codes = cell_codes(state) if self.view == "full" else self._ego_codes(state)
        b, y, x = np.nonzero(self.codes[index] != codes)
        if b.size:
            changed = codes[b, y, x]
            self.grid[index[b], y, :, x] = self.sprites[changed]
            self.codes[index[b], y, x] = changed

    def render_step(self, state: GameState, prev_pos: np.ndarray) -> None:
        """Update all N frames after :func:`penguin_env.core.step` moved or turned penguins."""
        if self.view != "full":
            self.render_full(state)
            return
        n = self._all
        ox, oy = prev_pos[:, 0], prev_pos[:, 1]
        # Old cell: floor, or a gold landmark the penguin was standing on.
        landmark = ((state.gold == prev_pos[:, None, :]).all(axis=2) & state.gold_left).any(axis=1)
        old_code = np.where(landmark, GOLD, FLOOR)
        self.grid[n, oy + 1, :, ox + 1] = self.sprites[old_code]
        self.codes[n, oy + 1, ox + 1] = old_code
        px, py = state.pos[:, 0], state.pos[:, 1]
        here = ((state.gold == state.pos[:, None, :]).all(axis=2) & state.gold_left).any(axis=1)
        new_code = np.where(here, PENGUIN_ON_GOLD, PENGUIN) + state.heading
        self.grid[n, py + 1, :, px + 1] = self.sprites[new_code]
        self.codes[n, py + 1, px + 1] = new_code

    def observe(self, state: GameState, copy: bool = True) -> np.ndarray:
        """The current frames; with the hint overlay they are always a fresh copy."""
        if self.hint:
            frames = self.frames.copy()
            self._draw_hint(frames, state)
            return frames
        return self.frames.copy() if copy else self.frames

    # -- helpers ---------------------------------------------------------------------------
    def _ego_codes(self, state: GameState) -> np.ndarray:
        """Window of cell codes centred on each penguin, rotated so its heading points up."""
        w, half = self.cells, self.cells // 2
        codes = cell_codes(state)
        # Paint the penguin with its heading relative to the rotated view (0 = up, 1 = up-right).
        turns = state.heading // 2
        n = np.arange(state.num)
        px, py = state.pos[:, 0] + 1, state.pos[:, 1] + 1
        on_gold = codes[n, py, px] >= PENGUIN_ON_GOLD
        codes[n, py, px] = np.where(on_gold, PENGUIN_ON_GOLD, PENGUIN) + state.heading % 2
        padded = np.pad(codes, ((0, 0), (half, half), (half, half)), constant_values=VOID)
        r = np.arange(w)
        rows0, cols0 = np.meshgrid(r, r, indexing="ij")
        # Index maps of np.rot90(window, k) (counter-clockwise), so each game can use its own k.
        maps_r = np.stack([np.rot90(rows0, k) for k in range(4)])
        maps_c = np.stack([np.rot90(cols0, k) for k in range(4)])
        src_r = (
            py[:, None, None] + maps_r[turns]
        )  # window top-left is (py - half) + half in padded coords
        src_c = px[:, None, None] + maps_c[turns]
        return padded[n[:, None, None], src_r, src_c]

    def _cell_centre(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.pad + (x + 0.5) * self.cell, self.pad + (y + 0.5) * self.cell

    def _draw_hint(self, frames: np.ndarray, state: GameState) -> None:
        which, any_left = nearest_gold(state)
        n = np.arange(state.num)
        g = state.gold[n, which]
        if self.view == "full":
            x0, y0 = state.pos[:, 0] + 1.0, state.pos[:, 1] + 1.0
            x1, y1 = g[:, 0] + 1.0, g[:, 1] + 1.0
        else:
            dx, dy = (
                (g[:, 0] - state.pos[:, 0]).astype(float),
                (g[:, 1] - state.pos[:, 1]).astype(float),
            )
            for _ in range(
                3
            ):  # rotate offsets with the view: one counter-clockwise turn maps (dx, dy) -> (dy, -dx)
                turn = state.heading // 2 > _
                dx, dy = np.where(turn, dy, dx), np.where(turn, -dx, dy)
            x0 = y0 = np.full(state.num, float(self.cells // 2))
            x1, y1 = x0 + dx, y0 + dy
        sx, sy = self._cell_centre(x0, y0)
        ex, ey = self._cell_centre(x1, y1)
        samples = 4 * self.cell * self.cells
        t = np.linspace(0.0, 1.0, samples)[None, :]
        xs = np.clip(
            (sx[:, None] + (ex - sx)[:, None] * t).astype(np.int64), 0, self.image_size - 1
        )
        ys = np.clip(
            (sy[:, None] + (ey - sy)[:, None] * t).astype(np.int64), 0, self.image_size - 1
        )
        rows = np.broadcast_to(n[:, None], xs.shape)
        keep = np.broadcast_to(any_left[:, None], xs.shape)
        frames[rows[keep], ys[keep], xs[keep]] = COLORS["hint"]


def direction_glyph(heading: int) -> str:
    """Arrow for the ansi map."""
    return "↑↗→↘↓↙←↖"[heading]


def ansi_map(state: GameState, i: int = 0) -> str:
    """Text map of game ``i``: ``#`` wall, ``.`` floor, ``$`` gold, an arrow for the penguin."""
    codes = cell_codes(state.take(slice(i, i + 1)))[0]
    chars = {FLOOR: ".", WALL: "#", GOLD: "$"}
    lines = []
    for row in codes:
        line = ""
        for code in row:
            code = int(code)
            line += (
                chars[code] if code < PENGUIN else direction_glyph((code - PENGUIN) % NUM_HEADINGS)
            )
        lines.append(line)
    return "\n".join(lines)


__all__ = [
    "BatchRenderer",
    "COLORS",
    "DX",
    "DY",
    "NUM_CODES",
    "Task",
    "ansi_map",
    "cell_codes",
    "sprites",
]
