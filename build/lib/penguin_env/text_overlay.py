"""Writing lines of text onto RGB arrays (pygame's font module; no window needed)."""

from __future__ import annotations

import functools
import os

import numpy as np

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")


@functools.lru_cache(maxsize=8)
def _cached_font(px: int):
    import pygame.font

    return pygame.font.Font(None, px)


def _font(px: int):
    import pygame.font

    if not pygame.font.get_init():
        # pygame.quit() (e.g. at the end of a play session) invalidates every Font object.
        _cached_font.cache_clear()
        pygame.font.init()
    return _cached_font(px)


def text_band(
    lines: list[str], width: int, line_px: int = 22, color=(20, 20, 20), background=(236, 242, 248)
) -> np.ndarray:
    """A ``(len(lines) * line_px + 8, width, 3)`` uint8 band with ``lines`` written left-aligned."""
    import pygame.surfarray

    height = len(lines) * line_px + 8
    band = np.empty((height, width, 3), dtype=np.uint8)
    band[:] = background
    font = _font(line_px)
    for k, line in enumerate(lines):
        surface = font.render(line, True, color, background)
        pixels = pygame.surfarray.array3d(surface).transpose(1, 0, 2)  # (w, h, 3) -> (h, w, 3)
        h, w = min(pixels.shape[0], line_px), min(pixels.shape[1], width - 8)
        top = 4 + k * line_px
        band[top : top + h, 4 : 4 + w] = pixels[:h, :w]
    return band
