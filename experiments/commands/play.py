"""``penguin play``: play in a pygame window, or watch a trained policy play.

Usage::

    penguin play --env Penguin-Lang-v0 --seed 3 --hint
    penguin play --agent runs/Penguin-Bare-v0/ppo/seed0-.../checkpoints/final.pt
    penguin play --agent ppo --env Penguin-Gold-v0       # a shipped agent

By hand: LEFT/RIGHT turn 45 degrees, UP moves forward, DOWN backward, SPACE is STOP, ``r``
restarts the level, ``n`` goes to the next one, Esc quits. Watching an agent: SPACE pauses and
resumes, ``s`` takes one step (and pauses), ``r``/``n``/Esc as above. Without a display the
command says so and exits with status 1; ``SDL_VIDEODRIVER=dummy`` runs it without a window.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import tyro

from experiments.commands.flags import parse
from experiments.errors import UsageError

PROG = "penguin play"


@dataclass
class PlayFlags:
    """The env and window, and optionally an agent to watch."""

    env: Annotated[str | None, tyro.conf.arg(help_behavior_hint="(default: the agent's env, else Penguin-Lang-v0)")] = None
    """The env id (Penguin-Bare-v0, Penguin-Gold-v0, Penguin-Walls-v0, Penguin-Lang-v0)."""
    agent: Annotated[str | None, tyro.conf.arg(metavar="CHECKPOINT")] = None
    """A policy checkpoint to watch play instead of playing by hand, or a shipped agent by its algorithm's name (bc, ppo, grpo, dqn; on --env, Penguin-Gold-v0 by default)."""
    sample: bool = False
    """The agent samples its actions instead of taking the most likely one."""
    speed: float = 4.0
    """Agent steps per second (0: one per frame)."""
    seed: Annotated[int | None, tyro.conf.arg(help_behavior_hint="(default: random)")] = None
    """Seed of the first level."""
    size: int | None = None
    """Interior cells per side (3..32)."""
    max_steps: int | None = None
    """Truncate episodes after this many steps."""
    step_penalty: float | None = None
    """Subtracted from the reward at every step."""
    paraphrases: Literal["train", "test", "all"] | None = None
    """Instruction phrasings."""
    num_levels: int | None = None
    """Play only this many levels (0: unlimited)."""
    start_level: int | None = None
    """First level id."""
    radius: int | None = None
    """Penguin-Bare-v0 only: the gold lies within this many cells."""
    hint: bool = False
    """Draw a blue line from the penguin to the nearest gold."""
    fps: int = 30
    """Frame rate cap."""
    max_frames: int | None = None
    """Quit after this many frames (for scripted runs)."""

    def env_kwargs(self) -> dict[str, Any]:
        """The ``gym.make`` keyword arguments given (unset ones left out)."""
        names = ("size", "max_steps", "step_penalty", "paraphrases", "num_levels", "start_level", "radius")
        kwargs = {n: getattr(self, n) for n in names if getattr(self, n) is not None}
        if self.hint:
            kwargs["hint"] = True
        return kwargs


def _env_ids() -> list[str]:
    import penguin_env

    return list(penguin_env.ENV_IDS)


def _agent(policy: Any, sample: bool, seed: int | None) -> Any:
    """The network as a :data:`penguin_env.play.Agent` (string instructions tokenized)."""
    import torch

    from penguin_env.instructions import Tokenizer

    tokenizer = Tokenizer()
    generator = torch.Generator().manual_seed(seed or 0)

    def act(obs: dict[str, Any]) -> int:
        tokens = {"image": obs["image"], "text": tokenizer.encode(obs["text"])}
        return int(policy.act(tokens, deterministic=not sample, generator=generator))

    return act


def main(argv: list[str]) -> int:
    """``penguin play [flags]``."""
    description = ("Play a Penguin env in a pygame window (LEFT/RIGHT turn, UP forward, DOWN backward, SPACE "
                   "stop, r restart, n next level, Esc quit), or with --agent watch a trained policy play "
                   "(SPACE pause/resume, s one step).")
    try:
        args, _ = parse(PlayFlags, argv, PROG, description)
    except SystemExit as exit_:
        if exit_.code in (0, None):
            return 0
        raise
    from penguin_env.play import PlaySession, play

    if args.speed < 0:
        raise UsageError(f"--speed must be >= 0, got {args.speed}")
    if args.env is not None and args.env not in _env_ids():
        raise UsageError(f"unknown env id {args.env!r}; choose from {_env_ids()}")
    kwargs = args.env_kwargs()
    agent, name, env_id = None, "agent", args.env or "Penguin-Lang-v0"
    if args.agent is not None:
        from experiments.checkpoints import load_for_env

        loaded = load_for_env(args.agent, args.env, env_kwargs=kwargs)
        agent, name, env_id = _agent(loaded.policy, args.sample, args.seed), loaded.trainer, loaded.env_id
        kwargs = loaded.env_kwargs
    elif args.sample:
        raise UsageError("--sample needs --agent CKPT")
    def open_session() -> PlaySession:
        try:
            return PlaySession(
                env_id, seed=args.seed, env_kwargs=kwargs, fps=args.fps, agent=agent,
                agent_name=f"{name} ({'sampled' if args.sample else 'greedy'})", agent_speed=args.speed,
            )  # fmt: skip
        except (ValueError, TypeError) as err:
            raise UsageError(str(err)) from None

    return play(open_session, PROG, args.max_frames)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
