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
from agents.config import PRESETS
from agents.fusion import KeyPoints
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
    dict(image_encoder="cnn", text_encoder="bow", fusion="film", glimpses=True),
]


@pytest.mark.parametrize("size", [64, 224])
@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "-".join(map(str, o.values())))
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


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "-".join(map(str, o.values())))
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
    for text_encoder in ("bow", "gru", "transformer"):
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


@pytest.mark.parametrize("preset", sorted(PRESETS))
@pytest.mark.parametrize(("size", "image_size"), [(3, 64), (3, 224), (8, 64), (8, 224), (16, 224)])
def test_every_preset_runs_on_real_observations(preset: str, size: int, image_size: int) -> None:
    env = TokenizeInstruction(gym.make("Penguin-Gold-v0", size=size, image_size=image_size))
    policy = MultimodalPolicy(env.observation_space, env.action_space, PolicyConfig.preset(preset))
    obs, _ = env.reset(seed=0)
    batch = {k: np.stack([v, v]) for k, v in obs.items()}
    out = policy(batch, heads=("logits", "value", "q"))
    assert out["logits"].shape == (2, 5) and torch.isfinite(out["logits"]).all()
    out["logits"].sum().backward()
    assert all(p.grad is not None for n, p in policy.named_parameters() if "policy_head" in n)


@pytest.mark.parametrize("glimpses", [False, True])
def test_a_keypoint_locked_on_one_cell_returns_its_coordinates_and_features(glimpses: bool) -> None:
    grid, channels = 3, 4
    keypoints = KeyPoints(channels, 1, grid, glimpses)
    with torch.no_grad():  # score = channel 0, which marks one cell per sample
        keypoints.score.weight.copy_(torch.tensor([[1.0, 0.0, 0.0, 0.0]]))
        keypoints.score.bias.zero_()
    tokens = torch.randn(2, grid * grid, channels)
    tokens[:, :, 0] = 0.0
    cells = [5, 1]  # (x=2, y=1) and (x=1, y=0)
    for b, cell in enumerate(cells):
        tokens[b, cell, 0] = 60.0
    out, scores, heading = keypoints(tokens)
    assert out.shape == (2, keypoints.output_size(channels))
    assert scores.shape == (2, grid * grid, 1) and heading is None
    expected_xy = torch.tensor([[1.0, 0.0], [0.0, -1.0]])
    assert torch.allclose(out[:, :2], expected_xy, atol=1e-4)
    if glimpses:
        assert torch.allclose(out[:, 2:], tokens[torch.arange(2), cells], atol=1e-3)
    else:
        assert out.shape[1] == 2


def test_glimpses_need_keypoints() -> None:
    with pytest.raises(ValueError, match="glimpses need keypoints"):
        PolicyConfig(keypoints=0, glimpses=True)


def test_unknown_preset_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="fast"):
        PolicyConfig.preset("huge")


@pytest.mark.parametrize("image_size", [64, 70, 224])
def test_patch_stem_is_a_strided_convolution_over_the_centred_cells(image_size: int) -> None:
    from agents.encoders import PatchStem, patch_geometry

    torch.manual_seed(0)
    stem = PatchStem(image_size, 10, 8)
    image = torch.randint(0, 256, (2, image_size, image_size, 3), dtype=torch.uint8)
    patch, low, high = patch_geometry(image_size, 10)
    assert patch * 10 + low + high == image_size and abs(low - high) <= 1
    centred = (image.permute(0, 3, 1, 2).float() / 255 - 0.5) * 4
    crop = centred[:, :, low : image_size - high, low : image_size - high]
    weight = stem.proj.weight.view(8, patch, patch, 3).permute(0, 3, 1, 2)
    expected = torch.relu(torch.nn.functional.conv2d(crop, weight, stem.proj.bias, stride=patch))
    torch.testing.assert_close(stem(image, True, 1 / 255), expected, rtol=1e-4, atol=1e-4)
    # channels-first [0, 1] floats (stable-baselines3's form) give the same map
    as_float = image.permute(0, 3, 1, 2).float() / 255
    torch.testing.assert_close(stem(as_float, False, 1.0), expected, rtol=1e-4, atol=1e-4)


def test_patch_stem_sees_each_rendered_cell_once() -> None:
    # With grid = size + 2 each patch is exactly one rendered cell: a one-cell change in the
    # frame changes exactly one position of the stem's map.
    from agents.encoders import PatchStem
    from penguin_env.render import cell_size

    env = gym.make("Penguin-Bare-v0", image_size=64)
    obs, _ = env.reset(seed=0)
    cell = cell_size(64, 10)
    border = (64 - 10 * cell) // 2
    changed = obs["image"].copy()
    r, c = 4, 6  # some cell; paint it
    changed[border + r * cell : border + (r + 1) * cell, border + c * cell : border + (c + 1) * cell] = 0
    stem = PatchStem(64, 10, 8)
    with torch.no_grad():
        a = stem(torch.as_tensor(obs["image"])[None], True, 1 / 255)
        b = stem(torch.as_tensor(changed)[None], True, 1 / 255)
    differs = (a != b).any(dim=1)[0]
    assert differs.sum() == 1 and differs[r, c]


@pytest.mark.parametrize("text_encoder", ["bow", "gru", "transformer"])
def test_deduplicated_text_encoding_equals_encoding_every_row(text_encoder: str) -> None:
    torch.manual_seed(0)
    space = obs_space(64)
    policy = MultimodalPolicy(space, spaces.Discrete(5), small_policy(text_encoder=text_encoder))
    tokens = torch.as_tensor(random_obs(space, 6)["text"])
    tokens = torch.cat([tokens, tokens[:3], tokens[1:2]])  # repeated instructions
    direct = policy.encoder.text_encoder(tokens)
    torch.testing.assert_close(policy.encoder.encode_text(tokens), direct, rtol=1e-5, atol=1e-5)


def test_pointwise_film_block_equals_its_convolution() -> None:
    from agents.fusion import FiLMBlock

    torch.manual_seed(0)
    block = FiLMBlock(8, 16, kernel=1)
    x, text = torch.randn(3, 8, 5, 5), torch.randn(3, 16)
    tokens = x.permute(0, 2, 3, 1).reshape(3, 25, 8)
    out = block.forward_tokens(tokens, text).view(3, 5, 5, 8).permute(0, 3, 1, 2)
    torch.testing.assert_close(out, block(x, text), rtol=1e-5, atol=1e-5)


def test_checkpoints_written_before_glimpses_existed_load_and_warm_start(tmp_path) -> None:
    import agents

    env = TokenizeInstruction(gym.make("Penguin-Gold-v0"))
    torch.manual_seed(0)
    fast = MultimodalPolicy(env.observation_space, env.action_space)
    path = agents.save(fast, tmp_path / "new.pt")
    data = torch.load(path, weights_only=True)
    del data["config"]["glimpses"]  # what a file from before the field holds
    torch.save(data, tmp_path / "old.pt")
    old = agents.load(tmp_path / "old.pt")
    assert old.config == fast.config
    fresh = MultimodalPolicy(env.observation_space, env.action_space)
    agents.load_into(fresh, tmp_path / "old.pt")  # what init_from does; raised before the fix
    obs, _ = env.reset(seed=0)
    batch = {k: v[None] for k, v in obs.items()}
    torch.testing.assert_close(fresh.eval()(batch)["logits"], fast.eval()(batch)["logits"])


def test_version_one_checkpoints_load_as_the_network_they_were(tmp_path) -> None:
    import agents

    env = TokenizeInstruction(gym.make("Penguin-Gold-v0"))
    torch.manual_seed(0)
    wide = MultimodalPolicy(env.observation_space, env.action_space, PolicyConfig.preset("wide"))
    path = agents.save(wide, tmp_path / "v2.pt")
    data = torch.load(path, weights_only=True)
    data["format_version"] = 1
    for key in ("cnn_stem", "cnn_layers", "film_kernel", "trunk_norm"):
        del data["config"][key]  # what a version-1 file holds
    torch.save(data, tmp_path / "v1.pt")
    old = agents.load(tmp_path / "v1.pt")
    assert old.config == wide.config
    obs, _ = env.reset(seed=0)
    batch = {k: v[None] for k, v in obs.items()}
    torch.testing.assert_close(old(batch)["logits"], wide.eval()(batch)["logits"])
