"""N games stepped together: the one engine behind the single env and the vector env.

:class:`BatchGame` owns the batched :class:`~penguin_env.core.GameState`, which level each
episode plays, and the frame buffers. :class:`~penguin_env.env.PenguinEnv` is its N=1 case and
:class:`~penguin_env.vector.PenguinVectorEnv` its N>=1 case, so the two cannot drift apart.
"""

from __future__ import annotations

import numpy as np

from penguin_env import levels
from penguin_env.config import VARIANTS, EnvConfig
from penguin_env.core import TASK_NAMES, GameState, StepOutcome, step
from penguin_env.instructions import Tokenizer, instruction
from penguin_env.render import BatchRenderer


class BatchGame:
    """N games of one variant and config.

    Args:
        env_id: a registered id, e.g. ``"Penguin-Gold-v0"``.
        config: validated keyword arguments.
        num: number of games.
    """

    def __init__(self, env_id: str, config: EnvConfig, num: int) -> None:
        self.env_id, self.config, self.num = env_id, config, num
        self.variant = VARIANTS[env_id]
        self.spec = config.level_spec(self.variant)
        self.rules = config.rules()
        self.tokenizer = Tokenizer()
        self.renderer = BatchRenderer(num, config.size, config.image_size, config.view, config.hint)
        # Zero levels until the first reset fills them in.
        self.state = levels.generate(np.zeros(num, dtype=np.int64), self.spec)
        self.seed_base = np.zeros(num, dtype=np.uint64)
        self.episode = np.zeros(num, dtype=np.int64)
        self.tokens = np.zeros((num, self.tokenizer.max_length), dtype=np.int64)
        self._instructions: list[str] = [""] * num

    # -- episodes ---------------------------------------------------------------------------
    def reset(
        self,
        index: np.ndarray,
        seed_base: np.ndarray | None = None,
        level: np.ndarray | None = None,
    ) -> None:
        """Start new episodes in the games ``index``.

        With ``seed_base`` the games restart their level sequence from that seed (episode 0);
        without it they move on to their next episode. ``level`` forces specific level ids.
        """
        index = np.asarray(index, dtype=np.int64).reshape(-1)
        if index.size == 0:
            return
        if seed_base is not None:
            self.seed_base[index] = np.asarray(seed_base, dtype=np.uint64)
            self.episode[index] = 0
        else:
            self.episode[index] += 1
        if level is None:
            cfg = self.config
            level = levels.episode_levels(self.seed_base[index], self.episode[index], cfg.num_levels, cfg.start_level)
        fresh = levels.generate(np.asarray(level, dtype=np.int64), self.spec)
        self.load(index, fresh)

    def load(self, index: np.ndarray, fresh: GameState) -> None:
        """Put the games of ``fresh`` into slots ``index`` and redraw them."""
        index = np.asarray(index, dtype=np.int64).reshape(-1)
        self.state.put(index, fresh)
        self.renderer.render_full(fresh, index)
        for j, i in enumerate(index.tolist()):
            text = instruction(int(fresh.task[j]), int(fresh.phrase[j]), int(fresh.corner[j]))
            self._instructions[i] = text
            self.tokens[i] = self.tokenizer.encode(text)

    def step(self, actions: np.ndarray) -> StepOutcome:
        """Step every game (actions already validated) and update the frames."""
        outcome = step(self.state, actions, self.rules)
        self.renderer.render_step(self.state, outcome.prev_pos)
        return outcome

    # -- views ------------------------------------------------------------------------------
    def images(self, copy: bool = True) -> np.ndarray:
        """``(N, S, S, 3)`` uint8 observations."""
        return self.renderer.observe(self.state, copy=copy)

    def instruction(self, i: int) -> str:
        return self._instructions[i]

    @property
    def instructions(self) -> list[str]:
        return list(self._instructions)

    def task_name(self, i: int) -> str:
        return TASK_NAMES[int(self.state.task[i])]

    def gold_left(self) -> np.ndarray:
        """``(N,)`` gold pieces still to collect (always the full count in non-collect tasks)."""
        return self.state.gold_left.sum(axis=1)
