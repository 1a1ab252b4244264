"""The stable-baselines3 adapter: DummyVecEnv semantics, and SB3's PPO trains on it."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("stable_baselines3")

from stable_baselines3 import PPO  # noqa: E402
from stable_baselines3.common.vec_env import DummyVecEnv, VecMonitor  # noqa: E402

import penguin_env  # noqa: E402, F401
from penguin_env.sb3 import PenguinSB3VecEnv  # noqa: E402
from penguin_env.wrappers import TokenizeInstruction  # noqa: E402


@pytest.mark.parametrize("env_id", ["Penguin-Gold-v0", "Penguin-Lang-v0"])
def test_same_as_dummy_vec_env(env_id: str) -> None:
    kwargs = {"size": 4, "max_steps": 6}
    ours = PenguinSB3VecEnv(env_id, 3, **kwargs)
    ref = DummyVecEnv([lambda: TokenizeInstruction(gym.make(env_id, **kwargs)) for _ in range(3)])
    ours.seed(17)
    ref.seed(17)
    obs, want = ours.reset(), ref.reset()
    for key in ("image", "text"):
        np.testing.assert_array_equal(obs[key], want[key])
    assert ours.reset_infos == [{k: v for k, v in info.items()} for info in ref.reset_infos]
    dones = truncations = 0
    for t, a in enumerate(np.random.default_rng(0).integers(0, 5, size=(80, 3))):
        obs, reward, done, infos = ours.step(a)
        w_obs, w_reward, w_done, w_infos = ref.step(a)
        for key in ("image", "text"):
            np.testing.assert_array_equal(obs[key], w_obs[key], err_msg=f"step {t} {key}")
        np.testing.assert_array_equal(reward, w_reward)
        assert reward.dtype == w_reward.dtype
        np.testing.assert_array_equal(done, w_done)
        for i, (got, exp) in enumerate(zip(infos, w_infos, strict=True)):
            # One key more than DummyVecEnv: SB3's is_success at episode ends (its loggers read it).
            got = dict(got)
            if done[i]:
                assert got.pop("is_success") == got["success"], (t, i)
            assert set(got) == set(exp), (t, i)
            for key in got:
                if key == "terminal_observation":
                    for k in ("image", "text"):
                        np.testing.assert_array_equal(got[key][k], exp[key][k])
                else:
                    assert got[key] == exp[key], (t, i, key)
        assert ours.reset_infos == ref.reset_infos
        dones += int(done.sum())
        truncations += sum(info["TimeLimit.truncated"] for info in infos)
    assert dones > truncations > 0


def test_ppo_trains_a_few_steps(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SB3_LOGDIR", str(tmp_path))  # SB3 would otherwise leave a log dir in /tmp
    venv = VecMonitor(
        PenguinSB3VecEnv("Penguin-Bare-v0", 4, size=4, image_size=36, max_steps=10, radius=1)
    )
    model = PPO(
        "MultiInputPolicy", venv, n_steps=16, batch_size=32, n_epochs=1, seed=0, device="cpu"
    )
    model.learn(total_timesteps=64)
    assert model.num_timesteps >= 64
    assert len(model.ep_info_buffer) > 0
    obs = venv.reset()
    actions, _ = model.predict(obs, deterministic=True)
    assert actions.shape == (4,)


def test_attribute_access_and_options() -> None:
    venv = PenguinSB3VecEnv("Penguin-Gold-v0", 2, size=5)
    assert venv.get_attr("num_envs") == [2, 2]
    assert venv.env_is_wrapped(gym.Wrapper) == [False, False]
    venv.set_options({"level": 9})
    venv.reset()
    assert [info["level"] for info in venv.reset_infos] == [9, 9]
    venv.set_options([{"level": 1}, {}])
    with pytest.raises(ValueError, match="every env"):
        venv.reset()
