"""The multimodal policy network: shapes, options, gradients, acting."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from small_policy import small_policy

import penguin_env  # noqa: F401  (registers the envs)
from agents import MultimodalPolicy, PolicyConfig
from penguin_env.wrappers import TokenizeInstruction

VOCAB = 36


def obs_space(size: int = 64, channels_last: bool = True) -> spaces.Dict:
    shape = (size, size, 3) if channels_last else (3, size, size)
    return spaces.Dict(
        {
            "image": spaces.Box(0, 255, shape, dtype=np.uint8),
            "text": spaces.Box(0, VOCAB - 1, (12,), dtype=np.int64),
        }
    )


def random_obs(space: spaces.Dict, batch: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (batch, *space["image"].shape), dtype=np.uint8)
    text = np.zeros((batch, 12), dtype=np.int64)
    for i in range(batch):
        n = int(rng.integers(1, 12))
        text[i, :n] = rng.integers(2, VOCAB, n)
    return {"image": image, "text": text}


OPTIONS = [
    dict(image_encoder="cnn", text_encoder="gru", fusion="film"),
    dict(image_encoder="vit", text_encoder="gru", fusion="film"),
    dict(image_encoder="cnn", text_encoder="transformer", fusion="concat"),
    dict(image_encoder="vit", text_encoder="transformer", fusion="concat"),
]


@pytest.mark.parametrize("size", [64, 224])
@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "-".join(o.values()))
def test_output_shapes(size: int, options: dict) -> None:
    space = obs_space(size)
    policy = MultimodalPolicy(space, spaces.Discrete(5), small_policy(**options))
    out = policy(random_obs(space, 3), heads=("logits", "value", "q", "features"))
    assert out["logits"].shape == (3, 5)
    assert out["value"].shape == (3,)
    assert out["q"].shape == (3, 5)
    assert out["features"].shape == (3, 64)
    assert all(torch.isfinite(v).all() for v in out.values())


def test_default_network_on_real_env_at_224() -> None:
    env = TokenizeInstruction(gym.make("Penguin-Lang-v0", image_size=224))
    policy = MultimodalPolicy(env.observation_space, env.action_space)
    obs, _ = env.reset(seed=3)
    action = policy.act(obs)
    assert isinstance(action, int) and env.action_space.contains(action)


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "-".join(o.values()))
def test_gradients_reach_every_parameter(options: dict) -> None:
    torch.manual_seed(0)
    space = obs_space(64)
    policy = MultimodalPolicy(space, spaces.Discrete(5), small_policy(**options))
    out = policy(random_obs(space, 4), heads=("logits", "value", "q"))
    (out["logits"].pow(2).sum() + out["value"].pow(2).sum() + out["q"].pow(2).sum()).backward()
    missing = [
        n for n, p in policy.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0
    ]
    assert not missing, f"no gradient reaches {missing}"


def test_text_changes_the_output() -> None:
    """The instruction must matter (FiLM is wired in), not only the image."""
    torch.manual_seed(0)
    space = obs_space(64)
    policy = MultimodalPolicy(space, spaces.Discrete(5), small_policy())
    obs = random_obs(space, 2)
    obs["image"][1] = obs["image"][0]
    out = policy(obs, heads=("features",))["features"]
    assert not torch.allclose(out[0], out[1])


def test_padding_after_the_instruction_is_ignored_by_both_text_encoders() -> None:
    for text_encoder in ("gru", "transformer"):
        torch.manual_seed(0)
        space = obs_space(64)
        policy = MultimodalPolicy(
            space, spaces.Discrete(5), small_policy(text_encoder=text_encoder)
        )
        vec = policy.encoder.text_encoder(torch.tensor([[5, 6, 7, 0, 0, 0], [5, 6, 7, 0, 0, 0]]))
        short = policy.encoder.text_encoder(torch.tensor([[5, 6, 7]]))
        torch.testing.assert_close(vec[0], short[0], rtol=1e-5, atol=1e-5)


def test_images_are_normalised_inside_and_channel_first_spaces_work() -> None:
    torch.manual_seed(0)
    last = MultimodalPolicy(obs_space(64), spaces.Discrete(5), small_policy())
    first = MultimodalPolicy(obs_space(64, channels_last=False), spaces.Discrete(5), small_policy())
    first.load_state_dict(last.state_dict())
    obs = random_obs(obs_space(64), 2)
    a = last(obs, heads=("logits",))["logits"]
    chw = {
        "image": torch.as_tensor(obs["image"]).permute(0, 3, 1, 2).float() / 255,
        "text": torch.as_tensor(obs["text"]).float(),
    }
    b = first(chw, heads=("logits",))["logits"]
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_act_single_and_batched_numpy_and_torch() -> None:
    space = obs_space(64)
    policy = MultimodalPolicy(space, spaces.Discrete(5), small_policy())
    obs = random_obs(space, 4)
    batch = policy.act(obs)
    assert isinstance(batch, np.ndarray) and batch.shape == (4,) and batch.dtype == np.int64
    assert policy.act({k: v[1] for k, v in obs.items()}) == batch[1]
    t = policy.act({k: torch.as_tensor(v) for k, v in obs.items()})
    assert isinstance(t, torch.Tensor) and t.tolist() == batch.tolist()
    gen = torch.Generator().manual_seed(0)
    sampled = policy.act(obs, deterministic=False, generator=gen)
    assert ((0 <= sampled) & (sampled < 5)).all()


def test_initial_policy_is_near_uniform() -> None:
    space = obs_space(64)
    policy = MultimodalPolicy(space, spaces.Discrete(5))
    probs = torch.softmax(policy(random_obs(space, 8), heads=("logits",))["logits"], -1)
    assert (probs - 0.2).abs().max() < 0.05


def test_bad_spaces_and_configs_say_what_to_do() -> None:
    env = gym.make("Penguin-Bare-v0")
    with pytest.raises(TypeError, match="TokenizeInstruction"):
        MultimodalPolicy(env.observation_space, env.action_space)
    with pytest.raises(TypeError, match="Discrete"):
        MultimodalPolicy(obs_space(64), spaces.Box(-1, 1, (2,)))
    with pytest.raises(ValueError, match="fusion must be one of"):
        PolicyConfig(fusion="sum")
    with pytest.raises(ValueError, match="unknown head"):
        MultimodalPolicy(obs_space(64), spaces.Discrete(5))(
            random_obs(obs_space(64), 1), heads=("policy",)
        )
