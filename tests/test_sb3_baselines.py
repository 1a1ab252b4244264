"""stable-baselines3 PPO and DQN on the trainer interface: weights map exactly onto our policy,
runs evaluate and save like every trainer, and PPO learns a little."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from stable_baselines3.common.utils import obs_as_tensor

import agents
from algorithms import registry
from algorithms.envs import make_vec_env
from algorithms.evaluation import evaluate
from algorithms.sb3_baselines import (
    SB3DQNConfig,
    SB3PPOConfig,
    _make_model,
    copy_from_sb3,
    copy_to_sb3,
)
from penguin_env.sb3 import PenguinSB3VecEnv
from tests.small_policy import EASY_ENV, tiny_run


def random_success(cfg) -> float:
    rng = np.random.default_rng(0)
    result = evaluate(lambda o, s: rng.integers(0, 5, len(o["text"])), cfg.env_id, cfg.test_levels(100), 100)
    return result.success_rate


class _Session:
    """What ``_make_model`` reads from a TrainingRun."""

    def __init__(self, policy) -> None:
        self.policy, self.device = policy, torch.device("cpu")


@pytest.mark.parametrize("config_class", [SB3PPOConfig, SB3DQNConfig])
def test_sb3_network_computes_exactly_our_heads_after_copying_weights(tmp_path, config_class) -> None:
    cfg = config_class(**tiny_run(tmp_path, "map", num_envs=4))
    venv = PenguinSB3VecEnv(cfg.env_id, 4, **cfg.train_env_kwargs())
    policy = agents.MultimodalPolicy(
        venv.venv.single_observation_space, venv.venv.single_action_space, cfg.policy
    )
    model = _make_model(cfg, _Session(policy), venv)
    copy_to_sb3(policy, model)
    obs = venv.reset()
    ours = policy(obs, heads=("logits", "value", "q"))
    # SB3 transposes to channels-first and scales by 1/255 before the extractor.
    tensors = obs_as_tensor(model.policy.obs_to_tensor(obs)[0], "cpu")
    with torch.no_grad():
        if config_class is SB3PPOConfig:
            dist = model.policy.get_distribution(tensors)
            torch.testing.assert_close(dist.distribution.logits, torch.log_softmax(ours["logits"], -1))
            torch.testing.assert_close(model.policy.predict_values(tensors).squeeze(-1), ours["value"])
        else:
            torch.testing.assert_close(model.q_net(tensors), ours["q"])
            torch.testing.assert_close(model.q_net_target(tensors), ours["q"])
    # And back: perturbed SB3 weights arrive in our policy unchanged.
    with torch.no_grad():
        for p in model.policy.parameters():
            p.add_(0.01)
    fresh = agents.MultimodalPolicy(policy.observation_space, policy.action_space, cfg.policy)
    copy_from_sb3(model, fresh)
    with torch.no_grad():
        if config_class is SB3PPOConfig:
            torch.testing.assert_close(model.policy.predict_values(tensors).squeeze(-1), fresh(obs)["value"])
        else:
            torch.testing.assert_close(model.q_net(tensors), fresh(obs, heads=("q",))["q"])
    venv.close()


def test_sb3_vec_env_reports_is_success_at_episode_end() -> None:
    venv = PenguinSB3VecEnv("Penguin-Bare-v0", 8, **EASY_ENV)
    venv.seed(0)
    venv.reset()
    ends = []
    for _ in range(40):
        _, _, done, infos = venv.step(np.random.default_rng(len(ends)).integers(0, 5, 8))
        ends += [(info["is_success"], info["success"]) for d, info in zip(done, infos, strict=True) if d]
    venv.close()
    assert ends and all(a == b for a, b in ends)


def test_sb3_ppo_run_learns_and_saves_a_penguin_checkpoint(tmp_path) -> None:
    cfg = SB3PPOConfig(**tiny_run(tmp_path, "sb3ppo", total_env_steps=12_288, num_envs=16, n_steps=32,
                                  batch_size=128, eval_every=6_000))
    result = registry.train(cfg)
    assert result.algo == "sb3-ppo" and not result.interrupted
    assert result.env_steps >= 12_288
    assert result.final_eval_sampled.success_rate > random_success(cfg) + 0.3, result.summary()
    # Evaluations every 6,000 env steps, then the final one.
    assert [row["env_steps"] for row in result.curve] == [6_000, 12_000, 12_288]
    assert (result.run_dir / "sb3_model.zip").is_file()
    # The saved checkpoint is the trained network: same evaluation when reloaded.
    loaded = agents.load(result.run_dir / "checkpoints" / "final.pt")
    again = evaluate(loaded, cfg.env_id, cfg.test_levels(100), 100, seed=cfg.seed)
    assert again.success_rate == result.final_eval.success_rate


def test_sb3_dqn_run_evaluates_greedy_on_q_values(tmp_path) -> None:
    cfg = SB3DQNConfig(**tiny_run(tmp_path, "sb3dqn", total_env_steps=3_000, num_envs=8,
                                  buffer_size=2_000, learning_starts=500, batch_size=32))
    result = registry.train(cfg)
    assert result.algo == "sb3-dqn" and result.env_steps >= 3_000
    assert registry.get("sb3-dqn")[0] is SB3DQNConfig
    # The saved network acts through its Q head: greedy actions are argmax Q, and evaluating the
    # reloaded checkpoint gives the run's own final figure.
    loaded = agents.load(result.run_dir / "checkpoints" / "final.pt")
    assert loaded.acting_head == "q" and result.policy.acting_head == "q"
    envs = make_vec_env(cfg.env_id, 16, cfg.test_levels(16))
    obs, _ = envs.reset(seed=0)
    envs.close()
    q = loaded(obs, heads=("q",))["q"]
    np.testing.assert_array_equal(loaded.act(obs), q.argmax(dim=-1).numpy())
    again = evaluate(loaded, cfg.env_id, cfg.test_levels(100), 100, seed=cfg.seed)
    assert again.success_rate == result.final_eval.success_rate


@pytest.mark.parametrize(
    ("config_class", "fields", "message"),
    [
        (SB3PPOConfig, {"resume": True, "run_name": "x"}, "cannot be resumed"),
        (SB3DQNConfig, {"buffer_size": 16, "batch_size": 32}, "at least one batch"),
        (SB3DQNConfig, {"exploration_final_eps": 1.5}, "exploration_final_eps must be in [0, 1]"),
        (SB3PPOConfig, {"ema_decay": 0.9}, "set ema_decay=0"),
    ],
)
def test_bad_sb3_configs_fail_before_any_folder_exists(tmp_path, config_class, fields, message) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        config_class(runs_dir=str(tmp_path / "runs"), **fields)
    assert not (tmp_path / "runs").exists()
