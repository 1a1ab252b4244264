"""Auxiliary targets the game state gives exactly: where the penguin is, which way it faces, where
the gold is.

Learning from reward alone, the image encoder has to discover the penguin and the gold before
any action can be credited. These targets teach it directly, from the states the trainer plays:
keypoint 0's score map is trained to pick the penguin's cell and keypoint 1's the cells of the
gold still to collect (their soft-argmax coordinates then feed the trunk), and the heading head
reads the penguin's heading from the features (:attr:`agents.PolicyConfig.aux_heads`). With
``aux_nearest`` keypoint 2's map, discounted by distance from keypoint 0
(:attr:`agents.PolicyConfig.nearest_keypoint`), is trained to pick the nearest gold's cell: with
several pieces left, keypoint 1's coordinates are their mean, a point between them that no path
should go to. The targets describe the state, not what to do: no solver is asked.

The feature map's cells must be the rendered cells: a full view (``view="full"``), the patch stem
and ``grid`` = room size + 2 (the outer wall ring), as the default network has for any room.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

import agents
from agents import PolicyConfig
from algorithms.config import TrainerConfig, need
from penguin_env.config import make_config
from penguin_env.core import NUM_HEADINGS, GameState, bearing_sector


def aux_problem(env_id: str, env_kwargs: dict[str, Any], policy: PolicyConfig) -> str | None:
    """Why the auxiliary targets cannot be used with this env and network (None if they can)."""
    config = make_config(env_id, dict(env_kwargs))
    if config.view != "full":
        return f"they need the full view (view='full'), not view={config.view!r}"
    if not policy.aux_heads:
        return "the network has no auxiliary heads (policy.aux_heads=True)"
    if policy.image_encoder != "cnn" or policy.cnn_stem != "patch":
        return "they need the patch stem's cell-aligned map (image_encoder='cnn', cnn_stem='patch')"
    if policy.grid != config.size + 2:
        return (f"they need one map cell per rendered cell: policy.grid={policy.grid} should be "
                f"size + 2 = {config.size + 2}")
    return None


def check_aux(cfg: TrainerConfig) -> None:
    """Raise ``ValueError`` if the auxiliary losses cannot run with ``cfg``'s env and network
    (the checkpoint's network with ``init_from``), or ``aux_nearest`` is set without them, without
    the network's nearest keypoint, or with symmetry augmentation."""
    aux_coef, nearest = getattr(cfg, "aux_coef", 0.0), getattr(cfg, "aux_nearest", False)
    need(not nearest or aux_coef > 0, "aux_nearest trains one of the auxiliary losses: set aux_coef > 0, "
         "or aux_nearest=False")
    if aux_coef <= 0:
        return
    policy = cfg.policy
    if cfg.init_from is not None:
        policy = PolicyConfig.from_dict(agents.read(cfg.init_from)["config"])
    problem = aux_problem(cfg.env_id, cfg.env_kwargs, policy)
    need(problem is None, f"aux_coef > 0 needs the auxiliary targets, but {problem}; set aux_coef=0")
    if nearest:
        need(policy.nearest_keypoint, "aux_nearest trains keypoint 2 on the nearest gold, which a score of "
             "one cell cannot tell apart from the others: set policy.nearest_keypoint=True")
        # Ties between mirror images are broken one way, so the target does not mirror with the frame.
        need(getattr(cfg, "augment", "off") == "off", "aux_nearest and augment: the nearest gold's "
             "tie-break is not mirror-symmetric; set augment='off' or aux_nearest=False")


def aux_targets(state: GameState, grid: int, nearest: bool = False) -> dict[str, np.ndarray]:
    """Targets for ``state``'s games on a ``grid`` x ``grid`` map of the rendered cells (the
    interior cell ``(x, y)`` is map cell ``(y + 1) * grid + x + 1``).

    Returns ``penguin`` ``(N,)`` int64 cell, ``heading`` ``(N,)`` int64 in 0..7, ``gold``
    ``(N, grid * grid)`` float32: the uniform distribution over the cells of the gold still on
    the board (all zeros where none is left), and ``bearing`` ``(N,)`` int64: the 45-degree
    sector, counted clockwise from the penguin's heading (0: straight ahead), of the nearest gold
    still on the board, or 8 where none is left or the penguin stands on it. With ``nearest``
    also ``nearest`` ``(N,)`` int64: :func:`nearest_gold_cell`.
    """
    n = state.num
    penguin = (state.pos[:, 1] + 1) * grid + state.pos[:, 0] + 1
    gold = np.zeros((n, grid * grid), dtype=np.float32)
    cells = (state.gold[:, :, 1] + 1) * grid + state.gold[:, :, 0] + 1  # (N, K)
    rows = np.repeat(np.arange(n), state.gold.shape[1])
    np.add.at(gold, (rows, cells.reshape(-1)), state.gold_left.reshape(-1).astype(np.float32))
    total = gold.sum(axis=1, keepdims=True)
    np.divide(gold, total, out=gold, where=total > 0)
    targets = {"penguin": penguin.astype(np.int64), "heading": state.heading.astype(np.int64), "gold": gold,
               "bearing": nearest_gold_bearing(state)}
    if nearest:
        targets["nearest"] = nearest_gold_cell(state, grid)
    return targets


def nearest_gold_cell(state: GameState, grid: int) -> np.ndarray:
    """``(N,)`` map cell of the nearest gold still on the board, -1 where none is left.

    Nearest by Chebyshev distance (the moves it takes); a tie goes to the piece that needs fewer
    45-degree turns to line the heading up with it (walking forwards or backwards), then to the
    first in reading order (top row first). Every rule reads what the frame shows, so the target
    is a function of the observation, and a penguin walking to the piece keeps it as the target.
    """
    d = state.gold - state.pos[:, None, :]  # (N, K, 2)
    steps = np.abs(d).max(axis=2)
    sector = (bearing_sector(d[..., 0], d[..., 1]) - state.heading[:, None]) % NUM_HEADINGS
    half = NUM_HEADINGS // 2
    turns = np.minimum(sector % half, half - sector % half)  # 0 ahead or behind, 2 abeam
    reading = state.gold[..., 1] * grid + state.gold[..., 0]
    key = (steps * 4 + turns) * grid * grid + reading  # lexicographic (steps, turns, reading order)
    key = np.where(state.gold_left, key, np.iinfo(np.int64).max)
    nearest = key.argmin(axis=1)
    rows = np.arange(state.num)
    cells = (state.gold[rows, nearest, 1] + 1) * grid + state.gold[rows, nearest, 0] + 1
    return np.where(state.gold_left.any(axis=1), cells, -1).astype(np.int64)


def nearest_gold_bearing(state: GameState) -> np.ndarray:
    """``(N,)`` sector of the nearest remaining gold relative to the heading (0..7; 8: none, or
    the penguin is on it). Nearest by Chebyshev distance (the steps a move takes), ties to the
    first piece."""
    d = state.gold - state.pos[:, None, :]  # (N, K, 2)
    steps = np.abs(d).max(axis=2).astype(np.float64)
    steps[~state.gold_left] = np.inf
    nearest = steps.argmin(axis=1)
    rows = np.arange(state.num)
    dx, dy = d[rows, nearest, 0], d[rows, nearest, 1]
    relative = (bearing_sector(dx, dy) - state.heading) % NUM_HEADINGS
    none = ~np.isfinite(steps[rows, nearest]) | ((dx == 0) & (dy == 0))
    return np.where(none, NUM_HEADINGS, relative).astype(np.int64)


def aux_loss(out: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Cross-entropy of the network's ``aux`` predictions (``policy(obs, heads=("aux", ...))``)
    with :func:`aux_targets`; returns the summed loss and its terms (detached)."""
    penguin = F.cross_entropy(out["aux_penguin"], targets["penguin"])
    heading = F.cross_entropy(out["aux_heading"], targets["heading"])
    bearing = F.cross_entropy(out["aux_bearing"], targets["bearing"])
    has_gold = targets["gold"].sum(dim=1) > 0
    gold_logp = torch.log_softmax(out["aux_gold"], dim=1)
    gold = -(targets["gold"] * gold_logp).sum(dim=1)
    gold = (gold * has_gold).sum() / has_gold.sum().clamp(min=1)
    terms = {"train/aux_penguin_loss": penguin.detach(), "train/aux_heading_loss": heading.detach(),
             "train/aux_gold_loss": gold.detach(), "train/aux_bearing_loss": bearing.detach()}
    total = penguin + heading + gold + bearing
    if "nearest" in targets:
        has = targets["nearest"] >= 0
        nearest = F.cross_entropy(out["aux_nearest"], targets["nearest"].clamp(min=0), reduction="none")
        nearest = (nearest * has).sum() / has.sum().clamp(min=1)
        terms["train/aux_nearest_loss"] = nearest.detach()
        total = total + nearest
    return total, terms
