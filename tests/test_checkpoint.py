"""The checkpoint format: round trip, mismatch messages, atomic writes, resume payload."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from gymnasium import spaces
from small_policy import small_policy

import agents
from agents import CheckpointMismatchError, MultimodalPolicy, PolicyConfig

SMALL = small_policy()


def obs_space(size: int = 64, vocab: int = 36) -> spaces.Dict:
    return spaces.Dict(
        {
            "image": spaces.Box(0, 255, (size, size, 3), dtype=np.uint8),
            "text": spaces.Box(0, vocab - 1, (12,), dtype=np.int64),
        }
    )


def batch(size: int = 64) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    return {
        "image": rng.integers(0, 256, (3, size, size, 3), dtype=np.uint8),
        "text": np.array([[3, 4, 5] + [0] * 9, [7, 8, 9, 10] + [0] * 8, [2] * 12], dtype=np.int64),
    }


@pytest.mark.parametrize(
    "config",
    [
        SMALL,
        small_policy(image_encoder="vit", text_encoder="transformer"),
    ],
)
def test_round_trip_gives_identical_outputs(tmp_path, config: PolicyConfig) -> None:
    torch.manual_seed(0)
    policy = MultimodalPolicy(obs_space(), spaces.Discrete(5), config)
    path = agents.save(
        policy, tmp_path / "sub" / "policy.pt", trainer="bc", extra={"env_id": "Penguin-Bare-v0"}
    )
    loaded = agents.load(path)
    assert loaded.config == config
    obs = batch()
    a = policy(obs, heads=("logits", "value", "q"))
    b = loaded(obs, heads=("logits", "value", "q"))
    for key in a:
        assert torch.equal(a[key], b[key]), key
    data = agents.read(path)
    assert data["trainer"] == "bc" and data["extra"] == {"env_id": "Penguin-Bare-v0"}
    assert data["versions"]["torch"].split("+")[0] == torch.__version__.split("+")[0]
    assert {"penguin-rl", "gymnasium", "numpy", "python"} <= set(data["versions"])
    assert data["observation_space"]["spaces"]["text"]["high"] == 35


def test_load_into_another_trainers_policy(tmp_path) -> None:
    torch.manual_seed(0)
    bc = MultimodalPolicy(obs_space(), spaces.Discrete(5), SMALL)
    path = agents.save(bc, tmp_path / "bc.pt", trainer="bc")
    torch.manual_seed(1)
    ppo = MultimodalPolicy(obs_space(), spaces.Discrete(5), SMALL)
    data = agents.load_into(ppo, path)
    assert data["trainer"] == "bc"
    for (name, p), q in zip(bc.state_dict().items(), ppo.state_dict().values(), strict=True):
        assert torch.equal(p, q), name


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (dict(config=small_policy(fusion="concat")), "config.fusion"),
        (dict(config=small_policy(hidden=32)), "config.hidden"),
        (dict(obs=obs_space(size=96)), "observation_space.spaces.image.shape"),
        (dict(obs=obs_space(vocab=40)), "observation_space.spaces.text.high"),
        (dict(actions=spaces.Discrete(4)), "action_space.n"),
    ],
)
def test_mismatch_names_the_field(tmp_path, change: dict, field: str) -> None:
    path = agents.save(MultimodalPolicy(obs_space(), spaces.Discrete(5), SMALL), tmp_path / "p.pt")
    other = MultimodalPolicy(
        change.get("obs", obs_space()),
        change.get("actions", spaces.Discrete(5)),
        change.get("config", SMALL),
    )
    with pytest.raises(CheckpointMismatchError, match=field.replace(".", r"\.")) as err:
        agents.load_into(other, path)
    assert "checkpoint has" in str(err.value)
    assert str(err.value).count(": checkpoint has") == 1, str(err.value)


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path, monkeypatch) -> None:
    policy = MultimodalPolicy(obs_space(), spaces.Discrete(5), SMALL)
    path = agents.save(policy, tmp_path / "p.pt", trainer="first")

    def broken_save(obj, f, *args, **kwargs):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        agents.save(policy, path, trainer="second")
    monkeypatch.undo()
    assert agents.read(path)["trainer"] == "first"
    assert os.listdir(tmp_path) == ["p.pt"], "the temporary file was left behind"


def test_resume_payload_round_trips(tmp_path) -> None:
    policy = MultimodalPolicy(obs_space(), spaces.Discrete(5), SMALL)
    opt = torch.optim.Adam(policy.parameters(), lr=1e-3)
    policy(batch(), heads=("logits",))["logits"].sum().backward()
    opt.step()
    resume = {"optimizer": opt.state_dict(), "step": 7, "torch_rng": torch.get_rng_state()}
    path = agents.save(policy, tmp_path / "p.pt", trainer="bc", resume=resume)
    data = agents.read(path)
    assert data["resume"]["step"] == 7
    opt2 = torch.optim.Adam(policy.parameters(), lr=1e-3)
    opt2.load_state_dict(data["resume"]["optimizer"])
    assert torch.equal(data["resume"]["torch_rng"], resume["torch_rng"])
    # The loaded optimizer holds the saved moments and step counts, parameter by parameter.
    saved, restored = opt.state_dict()["state"], opt2.state_dict()["state"]
    assert saved.keys() == restored.keys() and saved
    for index, values in saved.items():
        for name in ("step", "exp_avg", "exp_avg_sq"):
            assert torch.equal(values[name], restored[index][name]), (index, name)
    assert opt2.state_dict()["param_groups"] == opt.state_dict()["param_groups"]


def test_foreign_files_are_rejected_clearly(tmp_path) -> None:
    torch.save({"weights": 1}, tmp_path / "x.pt")
    with pytest.raises(ValueError, match="not a Penguin policy checkpoint"):
        agents.load(tmp_path / "x.pt")
    (tmp_path / "y.pt").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        agents.load(tmp_path / "y.pt")
    with pytest.raises(FileNotFoundError):
        agents.load(tmp_path / "missing.pt")
