"""``penguin play``: play in a pygame window, or watch a trained policy play.

Usage::

    penguin play --env Penguin-Lang-v0 --seed 3 --hint
    penguin play --agent runs/Penguin-Bare-v0/ppo/seed0-.../checkpoints/final.pt

By hand: LEFT/RIGHT turn 45 degrees, UP moves forward, DOWN backward, SPACE is STOP, ``r``
restarts the level, ``n`` goes to the next one, Esc quits. Watching an agent: SPACE pauses and
resumes, ``s`` takes one step (and pauses), ``r``/``n``/Esc as above. Without a display the
command says so and exits with status 1; ``SDL_VIDEODRIVER=dummy`` runs it without a window.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from experiments.commands.flags import ArgumentParser, parse_args
from experiments.errors import UsageError

PROG = "penguin play"


def build_parser() -> argparse.ArgumentParser:
    from penguin_env.play import add_arguments

    p = ArgumentParser(
        prog=PROG,
        description="Play a Penguin env in a pygame window (LEFT/RIGHT turn, UP forward, DOWN "
        "backward, SPACE stop, r restart, n next level, Esc quit), or with --agent watch a "
        "trained policy play (SPACE pause/resume, s one step).",
    )
    # No fixed default env: with --agent the checkpoint's env is the default.
    add_arguments(p, env_default=None)
    p.add_argument("--agent", metavar="CKPT", help="a policy checkpoint to watch play (its env is the default --env)")
    p.add_argument("--sample", action="store_true", help="the agent samples its actions (default: greedy)")
    p.add_argument("--speed", type=float, default=4.0, help="agent steps per second (default: %(default)s; 0: one per frame)")
    return p


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
    args = parse_args(build_parser(), argv)
    if args is None:
        return 0
    from penguin_env.play import PlaySession, env_kwargs_from_args, play

    if args.speed < 0:
        raise UsageError(f"--speed must be >= 0, got {args.speed}")
    kwargs = env_kwargs_from_args(args)
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
