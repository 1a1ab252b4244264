"""N games stepped together: the one engine behind the single env and the vector env.

:class:`BatchGame` owns the batched :class:`~penguin_env.core.GameState`, which level each
episode plays, and the frame buffers. :class:`~penguin_env.env.PenguinEnv` is its N=1 case and
:class:`~penguin_env.vector.PenguinVectorEnv` its N>=1 case, so the two cannot drift apart.
"""

from __future__ import annotations

from dataclasses import fields

import numpy as np

from penguin_env import levels
from penguin_env.config import VARIANTS, EnvConfig
from penguin_env.core import CORNER_NAMES, TASK_NAMES, GameState, StepOutcome, Task, step
from penguin_env.instructions import PHRASES, Tokenizer, instruction
from penguin_env.render import BatchRenderer

_NUM_PHRASES = max(len(p) for p in PHRASES.values())
_NUM_CORNERS = len(CORNER_NAMES)
#: ``TASK_NAME_ARRAY[task]`` is the task's name (an object array, so it indexes in bulk).
TASK_NAME_ARRAY = np.array(TASK_NAMES, dtype=object)


def instruction_codes(state: GameState) -> np.ndarray:
    """``(N,)`` index of each game's instruction in :func:`instruction_tables`.

    The instruction is a function of (task, paraphrase, corner); the corner only matters for
    corner tasks, so other tasks use corner 0 and share one row.
    """
    corner = np.where(state.task == Task.CORNER, state.corner, 0)
    return (state.task * _NUM_PHRASES + state.phrase) * _NUM_CORNERS + corner


def instruction_tables(tokenizer: Tokenizer) -> tuple[np.ndarray, np.ndarray]:
    """Every instruction string (object array) and its token ids, indexed by :func:`instruction_codes`.

    Resets look instructions up in these tables instead of formatting and tokenizing a string
    per game, which keeps autoresets free of per-game Python work.
    """
    rows = len(Task) * _NUM_PHRASES * _NUM_CORNERS
    texts = np.full(rows, "", dtype=object)
    tokens = np.zeros((rows, tokenizer.max_length), dtype=np.int64)
    for task, phrases in PHRASES.items():
        for phrase in range(len(phrases)):
            for corner in range(_NUM_CORNERS):
                code = (int(task) * _NUM_PHRASES + phrase) * _NUM_CORNERS + corner
                texts[code] = instruction(int(task), phrase, corner)
                tokens[code] = tokenizer.encode(texts[code])
    return texts, tokens


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
        self._text_table, self._token_table = instruction_tables(self.tokenizer)
        #: ``(N, max_length)`` int64 token ids of each game's instruction.
        self.tokens = np.zeros((num, self.tokenizer.max_length), dtype=np.int64)
        #: ``(N,)`` object array of instruction strings (kept in step with :attr:`tokens`).
        self.instruction_array = np.full(num, "", dtype=object)
        self.load(np.arange(num), self.state.take(slice(None)))
        # Prefetched levels: game i's pool row j holds episode ``pool_start[i] + j`` of seed
        # ``pool_seed[i]``. A level is a pure function of (seed, episode), so a pool can never go
        # stale; it only saves calls: one generate() call has a fixed cost of a few hundred
        # microseconds, far more than the per-level cost, so levels are made many at a time.
        self._depth = int(np.clip(4096 // num, 4, 32))
        self._pool = GameState(
            **{
                f.name: np.zeros(
                    (num * self._depth, *getattr(self.state, f.name).shape[1:]),
                    getattr(self.state, f.name).dtype,
                )
                for f in fields(GameState)
            }
        )
        self._pool_seed = np.zeros(num, dtype=np.uint64)
        self._pool_start = np.full(num, -(2**62), dtype=np.int64)  # no game has a pool yet

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
        if level is not None:
            fresh = levels.generate(np.asarray(level, dtype=np.int64), self.spec)
        elif seed_base is not None:
            # A fresh seed often starts a single episode (evaluation, GRPO groups): no prefetch.
            fresh = levels.generate(
                self._levels(self.seed_base[index], self.episode[index]), self.spec
            )
        else:
            fresh = self._from_pool(index)
        self.load(index, fresh)

    def _levels(self, seed_base: np.ndarray, episode: np.ndarray) -> np.ndarray:
        cfg = self.config
        return levels.episode_levels(seed_base, episode, cfg.num_levels, cfg.start_level)

    def _from_pool(self, index: np.ndarray) -> GameState:
        """The current episodes of games ``index`` from the prefetch pool, refilling it if needed."""
        offset = self.episode[index] - self._pool_start[index]
        hit = (
            (self._pool_seed[index] == self.seed_base[index])
            & (offset >= 0)
            & (offset < self._depth)
        )
        if not hit.all():
            # Refill the games that missed, and every other game whose pool is half used, so
            # refills come in few, large batches.
            need = self.episode + 1
            need[index] -= 1  # the games in ``index`` already moved on to their new episode
            left = self._pool_start + self._depth - need
            low = (
                (self._pool_seed != self.seed_base)
                | (left < self._depth // 2)
                | (left > self._depth)
            )
            low[index[~hit]] = True
            games = np.flatnonzero(low)
            episodes = need[games, None] + np.arange(self._depth)
            seeds = np.repeat(self.seed_base[games], self._depth)
            batch = levels.generate(self._levels(seeds, episodes.reshape(-1)), self.spec)
            rows = (games[:, None] * self._depth + np.arange(self._depth)).reshape(-1)
            self._pool.put(rows, batch)
            self._pool_seed[games] = self.seed_base[games]
            self._pool_start[games] = need[games]
            offset = self.episode[index] - self._pool_start[index]
        return self._pool.take(index * self._depth + offset)

    def load(self, index: np.ndarray, fresh: GameState) -> None:
        """Put the games of ``fresh`` into slots ``index`` and redraw them."""
        index = np.asarray(index, dtype=np.int64).reshape(-1)
        self.state.put(index, fresh)
        self.renderer.render_full(fresh, index)
        code = instruction_codes(fresh)
        self.tokens[index] = self._token_table[code]
        self.instruction_array[index] = self._text_table[code]

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
        """The instruction string of game ``i``."""
        return self.instruction_array[i]

    @property
    def instructions(self) -> list[str]:
        """Every game's instruction string."""
        return self.instruction_array.tolist()

    def task_name(self, i: int) -> str:
        """The task name of game ``i`` (``"collect"``, ``"face"``, ...)."""
        return TASK_NAMES[int(self.state.task[i])]

    def task_names(self) -> np.ndarray:
        """``(N,)`` object array of task names."""
        return TASK_NAME_ARRAY[self.state.task]

    def gold_left(self) -> np.ndarray:
        """``(N,)`` gold pieces still to collect (always the full count in non-collect tasks)."""
        return self.state.gold_left.sum(axis=1)
