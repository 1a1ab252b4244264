"""Fusion of the image feature map and the instruction vector into one feature vector."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from agents.config import PolicyConfig

#: Directions the ego keypoints' heading tells apart (the penguin's 8 headings).
EGO_HEADINGS = 8
#: Unit steps ``(dx, dy)`` to the neighbour in each heading, clockwise from up (y grows downward),
#: as the game moves.
EGO_RING_STEPS = ((0, -1), (1, -1), (1, 0), (1, 1), (0, 1), (-1, 1), (-1, 0), (-1, -1))


class FiLMBlock(nn.Module):
    """``x + relu(FiLM(conv(x)))`` with FiLM = ``gamma(text) * h + beta(text)`` per channel.

    The residual path is what BabyAI 1.1 found to make FiLM train well; ``gamma`` starts at 1
    (the text predicts ``gamma - 1``) so a fresh block is a plain residual conv.
    """

    def __init__(self, channels: int, text_dim: int, kernel: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel, padding=kernel // 2)
        self.film = nn.Linear(text_dim, 2 * channels)

    def forward(self, x: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.film(text).unsqueeze(-1).unsqueeze(-1).chunk(2, dim=1)
        return x + torch.relu((1 + gamma) * self.conv(x) + beta)

    def forward_tokens(self, x: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """The same block for a 1x1 kernel on ``(B, cells, C)`` tokens (a linear layer)."""
        gamma, beta = self.film(text).unsqueeze(1).chunk(2, dim=2)
        h = F.linear(x, self.conv.weight.flatten(1), self.conv.bias)
        return x + torch.relu(torch.addcmul(beta, 1 + gamma, h))


class ResBlock(nn.Module):
    """``x + relu(conv(x))``: the concat fusion's counterpart of :class:`FiLMBlock`."""

    def __init__(self, channels: int, kernel: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel, padding=kernel // 2)

    def forward(self, x: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        return x + torch.relu(self.conv(x))

    def forward_tokens(self, x: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """The same block for a 1x1 kernel on ``(B, cells, C)`` tokens (a linear layer)."""
        return x + torch.relu(F.linear(x, self.conv.weight.flatten(1), self.conv.bias))


def ego_ring(attention: torch.Tensor, tokens: torch.Tensor, heading: torch.Tensor) -> torch.Tensor:
    """The features of the eight cells around a keypoint, in the order of its heading.

    Args:
        attention: ``(B, G, G)`` the keypoint's distribution over the cells (rows are y).
        tokens: ``(B, G, G, C)`` the cells' features; cells beyond the map read as zeros.
        heading: ``(B, 8)`` probabilities of the 8 headings (clockwise from up).

    Returns:
        ``(B, 8, C)``: entry ``k`` is the expected features of the neighbour ``k`` eighths of a
        turn clockwise from the heading (0: ahead, 2: right, 4: behind, 6: left), the expectation
        over both the keypoint's cell and the heading.
    """
    b, g = attention.shape[:2]
    # Neighbour d of the keypoint's cell is read through its distribution moved one cell along d:
    # one matrix product over the cells for all eight, as the glimpses are read.
    padded = F.pad(attention, (1, 1, 1, 1))
    shifted = torch.stack([padded[:, 1 - dy:1 - dy + g, 1 - dx:1 - dx + g] for dx, dy in EGO_RING_STEPS], dim=1)
    world = torch.bmm(shifted.reshape(b, EGO_HEADINGS, g * g), tokens.reshape(b, g * g, -1))  # (B, 8, C)
    # Seen with heading h, neighbour k (clockwise from the heading) lies in world direction h + k.
    index = (torch.arange(EGO_HEADINGS)[:, None] + torch.arange(EGO_HEADINGS)[None, :]) % EGO_HEADINGS
    turned = world[:, index.to(world.device)]  # (B, h, k, C)
    return torch.einsum("bh,bhkc->bkc", heading, turned)


class KeyPoints(nn.Module):
    """Spatial soft-argmax: ``(B, cells, C)`` tokens -> ``(B, 2K)`` expected cell coordinates.

    A 1x1 layer scores every cell for each of ``K`` keypoints; a softmax over the cells turns
    each score map into a distribution whose mean (x, y), in [-1, 1], is the keypoint. The
    coordinates are linear in where things are, so the trunk can compare positions. With
    ``glimpses`` each keypoint also returns the mean of the cells' ``C`` features under its
    distribution (``(B, 2K + K*C)`` in all): a keypoint that finds the penguin hands the trunk
    what the penguin's cell sees of its neighbours, wherever the penguin stands.
    """

    def __init__(
        self, channels: int, keypoints: int, grid: int, glimpses: bool = False, ego: bool = False, ring: bool = False,
        nearest: bool = False,
    ) -> None:
        super().__init__()
        self.score = nn.Linear(channels, keypoints)
        if nearest and keypoints < 3:
            raise ValueError("the nearest keypoint is keypoint 2: it needs keypoints >= 3")
        # Score lost per cell of distance from keypoint 0 (softplus keeps it positive); starts at 1.
        self.nearness = nn.Parameter(torch.tensor(math.log(math.e - 1.0))) if nearest else None
        self.glimpses, self.grid = glimpses, grid
        if ring and not ego:
            raise ValueError("the ego ring needs ego keypoints (it is turned by their heading)")
        self.ring = ring
        axis = torch.linspace(-1.0, 1.0, grid)
        ys, xs = torch.meshgrid(axis, axis, indexing="ij")
        self.register_buffer("coords", torch.stack([xs.flatten(), ys.flatten()], dim=1), persistent=False)
        # Ego keypoints: a heading (8 directions, clockwise from up) read from keypoint 0's cell,
        # and the rotation of each heading that turns it to point up.
        self.heading = nn.Linear(channels, EGO_HEADINGS) if ego else None
        if ego:
            angle = torch.arange(EGO_HEADINGS) * (2 * math.pi / EGO_HEADINGS)
            cos, sin = torch.cos(angle), torch.sin(angle)
            # Image coordinates (x right, y down): turning by -angle brings heading `angle` to up.
            rotations = torch.stack([torch.stack([cos, sin], -1), torch.stack([-sin, cos], -1)], -2)
            self.register_buffer("rotations", rotations, persistent=False)  # (8, 2, 2)

    def output_size(self, channels: int) -> int:
        """Width of :meth:`forward`'s output for ``channels``-wide tokens."""
        k = self.score.out_features
        return (2 * k + (k * channels if self.glimpses else 0) + (2 * k if self.heading is not None else 0)
                + (EGO_HEADINGS * channels if self.ring else 0))

    def nearest_scores(self, scores: torch.Tensor) -> torch.Tensor:
        """``scores`` with keypoint 2's lowered by ``nearness`` per cell of Chebyshev distance
        from keypoint 0's position (held fixed here: this map does not move the penguin's)."""
        with torch.no_grad():
            origin = torch.softmax(scores[:, :, 0], dim=1) @ self.coords  # (B, 2) in [-1, 1]
        cells = (self.coords[None] - origin[:, None]).abs().amax(dim=2) * ((self.grid - 1) / 2)  # (B, cells)
        nearest = scores[:, :, 2] - F.softplus(self.nearness) * cells
        return torch.cat([scores[:, :, :2], nearest[:, :, None], scores[:, :, 3:]], dim=2)

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """``(keypoint features, scores, heading logits)``: the coordinates (with the glimpses and
        the ego positions when configured), the ``(B, cells, K)`` score maps before the softmax,
        and the ``(B, 8)`` heading read from keypoint 0 (None without ego positions); the last two
        are what an auxiliary loss can supervise."""
        scores = self.score(tokens)
        if self.nearness is not None:
            scores = self.nearest_scores(scores)
        attention = torch.softmax(scores, dim=1)  # (B, cells, K), sums to 1 over cells
        points = torch.einsum("bnk,nd->bkd", attention, self.coords)  # (B, K, 2)
        parts = [points.flatten(1)]
        if self.glimpses or self.heading is not None:
            seen = torch.bmm(attention.transpose(1, 2), tokens)  # (B, K, C)
            if self.glimpses:
                parts.append(seen.flatten(1))
        heading = None
        if self.heading is not None:
            heading = self.heading(seen[:, 0])  # what keypoint 0's cell shows
            probabilities = torch.softmax(heading, dim=1)
            turn = torch.einsum("bh,hij->bij", probabilities, self.rotations)
            offsets = points - points[:, :1]  # (B, K, 2) from keypoint 0
            parts.append(torch.einsum("bij,bkj->bki", turn, offsets).flatten(1))
            if self.ring:
                b, g = tokens.shape[0], self.grid
                cells = tokens.reshape(b, g, g, -1)
                parts.append(ego_ring(attention[:, :, 0].reshape(b, g, g), cells, probabilities).flatten(1))
        return torch.cat(parts, dim=1), scores, heading


class Fusion(nn.Module):
    """Image map + instruction vector -> ``(B, hidden)`` features.

    ``film``: residual FiLM blocks condition the map on the text, then the map is flattened
    (keeping where things are, which a global pool would lose) into the trunk.
    ``concat``: residual conv blocks, flatten, concatenate the text vector, then the trunk.

    With 1x1 kernels (``film_kernel=1``) the blocks run as linear layers on ``(B, cells, C)``
    tokens, which is the image map's own channels-last memory layout after the patch stem: no
    copies, and the flatten into the trunk is cell-major (each cell's channels together).
    """

    def __init__(self, config: PolicyConfig) -> None:
        super().__init__()
        self.mode = config.fusion
        self.pointwise = config.film_kernel == 1
        c = config.channels
        if self.mode == "film":
            self.blocks = nn.ModuleList(
                FiLMBlock(c, config.text_dim, config.film_kernel) for _ in range(config.film_blocks)
            )
        else:
            self.blocks = nn.ModuleList(
                ResBlock(c, config.film_kernel) for _ in range(config.film_blocks)
            )
        self.squeeze = nn.Sequential(nn.Conv2d(c, config.out_channels, 1), nn.ReLU())
        flat = config.out_channels * config.grid * config.grid
        extra = config.text_dim if self.mode == "concat" else 0
        self.keypoints = (
            KeyPoints(c, config.keypoints, config.grid, config.glimpses, config.ego_keypoints, config.ego_ring,
                      config.nearest_keypoint)
            if config.keypoints else None
        )
        if self.keypoints is not None:
            extra += self.keypoints.output_size(c)
        # The residual blocks let the map's scale grow with depth and training; normalising
        # the flattened map keeps the trunk's ReLUs from being pushed off (see PolicyConfig).
        self.trunk_norm = nn.LayerNorm(flat + extra) if config.trunk_norm else nn.Identity()
        self.trunk = nn.Sequential(nn.Linear(flat + extra, config.hidden), nn.ReLU())

    def forward(
        self, image_map: torch.Tensor, text: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """``(features (B, hidden), keypoint scores (B, cells, K) or None, ego heading logits
        (B, 8) or None)``."""
        b, c = image_map.shape[:2]
        if self.pointwise:
            x = image_map.permute(0, 2, 3, 1).reshape(b, -1, c)  # free for a channels-last map
            for block in self.blocks:
                x = block.forward_tokens(x, text)
            tokens = x
            squeeze = self.squeeze[0]
            x = torch.relu(F.linear(x, squeeze.weight.flatten(1), squeeze.bias)).flatten(1)
        else:
            x = image_map
            for block in self.blocks:
                x = block(x, text)
            tokens = x.permute(0, 2, 3, 1).reshape(b, -1, c)
            x = self.squeeze(x).flatten(1)
        scores = heading = None
        if self.keypoints is not None:
            points, scores, heading = self.keypoints(tokens)
            x = torch.cat([x, points], dim=1)
        if self.mode == "concat":
            x = torch.cat([x, text], dim=1)
        return self.trunk(self.trunk_norm(x)), scores, heading
