"""PPO and pseudo-GRPO: they learn on an easy setting, resume exactly, warm-start from BC, and
refuse bad configs before training."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest
import torch

from algorithms import registry
from algorithms.envs import make_vec_env
from algorithms.evaluation import evaluate
from algorithms.grpo import GRPOConfig, episode_cut, grpo_loss
from algorithms.onpolicy import k3_kl
from algorithms.ppo import PPOConfig
from penguin_env.vector import PenguinVectorEnv
from tests.small_policy import small_policy
from tests.small_policy import tiny_run as common


def random_success(cfg) -> float:
    rng = np.random.default_rng(0)
    result = evaluate(
        lambda o, s: rng.integers(0, 5, len(o["text"])), cfg.env_id, cfg.test_levels(100), 100
    )
    return result.success_rate


NEAREST_GOLD_AIDS = dict(aux_coef=1.0, aux_nearest=True,
                         policy=small_policy(keypoints=3, aux_heads=True, nearest_keypoint=True))


@pytest.mark.parametrize("options", [{"augment": "off"}, {"augment": "on"}, NEAREST_GOLD_AIDS],
                         ids=["plain", "augment", "aux-nearest"])
def test_ppo_beats_random_on_bare_radius_one(tmp_path, options) -> None:
    cfg = PPOConfig(**{**common(tmp_path, "ppo"), **options}, total_env_steps=12_288, num_envs=16, num_steps=32,
                    learning_rate=1e-3)
    result = registry.train(cfg)
    assert result.env_steps >= 12_288 and not result.interrupted
    # A tiny budget: the sampled policy is clearly better than random (greedy, which loops on
    # any state it gets wrong, needs a longer run).
    assert result.final_eval_sampled.success_rate > random_success(cfg) + 0.3, result.summary()
    kl = [v for _, v in result.history["train/approx_kl"]]
    assert all(np.isfinite(kl)) and max(kl) < 1.0
    assert {"config.json", "eval.csv", "checkpoints"} <= {p.name for p in result.run_dir.iterdir()}


def test_grpo_beats_random_on_bare_radius_one(tmp_path) -> None:
    cfg = GRPOConfig(**common(tmp_path, "grpo"), total_env_steps=8_000, group_size=4, num_groups=8,
                     learning_rate=1e-3)  # episodes run to the env's own limit
    result = registry.train(cfg)
    assert result.final_eval_sampled.success_rate > random_success(cfg) + 0.3, result.summary()
    zero = [v for _, v in result.history["train/zero_std_groups"]]
    assert all(0.0 <= z <= 1.0 for z in zero)


@pytest.mark.parametrize(
    ("env_kwargs", "fields", "cut"),
    [
        ({}, {}, 256),  # the env's own limit, 4 * size**2
        ({}, {"horizon_per_cell": 2}, 16),  # gold anywhere in 8 x 8: up to 7 cells away
        ({"radius": 1}, {"horizon_per_cell": 2}, 4),
        ({"radius": 3, "size": 5}, {"horizon_per_cell": 3}, 12),  # the radius, not the room, bounds it
        ({"radius": 9, "size": 5}, {"horizon_per_cell": 3}, 15),  # the room, not the radius
        ({"radius": 1}, {"horizon_per_cell": 2, "max_episode_steps": 3}, 3),  # the shorter cut
        ({"max_steps": 10}, {"horizon_per_cell": 2}, 10),
    ],
)
def test_episode_cut_follows_how_far_the_gold_can_be(env_kwargs, fields, cut) -> None:
    envs = make_vec_env("Penguin-Bare-v0", 1, env_kwargs)
    assert episode_cut(GRPOConfig(**fields), envs.config) == cut
    envs.close()


class LengthSpyVectorEnv(PenguinVectorEnv):
    """A vector env that records the longest episode any of its games has played since the
    last reset (picklable, as a run's resume state needs)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.played = np.zeros(self.num_envs, dtype=np.int64)
        self.longest = 0

    def reset(self, **kwargs):
        self.played[:] = 0
        return super().reset(**kwargs)

    def step(self, actions):
        self.played += 1
        self.longest = max(self.longest, int(self.played.max()))
        return super().step(actions)


def test_grpo_group_episodes_end_at_the_horizon_as_the_curriculum_widens(tmp_path, monkeypatch) -> None:
    made: list[LengthSpyVectorEnv] = []

    def spying_vec_env(env_id, num_envs, env_kwargs):
        made.append(LengthSpyVectorEnv(env_id, num_envs, **env_kwargs))
        return made[-1]

    monkeypatch.setattr("algorithms.envs.make_vec_env", spying_vec_env)
    # A threshold of 0 widens the radius each time 32 episodes have been played: 1, 2, 3.
    cfg = GRPOConfig(**common(tmp_path, "cut", env_kwargs={"size": 4, "image_size": 24}, final_eval_episodes=4),
                     total_env_steps=600, group_size=4, num_groups=4, horizon_per_cell=2, curriculum=True,
                     curriculum_threshold=0.0, curriculum_window=32)
    registry.train(cfg)
    # The training envs (the evaluation's play the whole room, radius None, uncut).
    longest = {envs.config.radius: envs.longest for envs in made if envs.config.radius is not None}
    assert {1, 2} <= set(longest)
    for radius, length in longest.items():
        assert length <= 2 * (radius + 1), (radius, length)
    assert longest[1] == 4 and longest[2] > 4, longest  # the cut binds, and it grows with the radius


@pytest.mark.parametrize("algo", ["ppo", "grpo"])
def test_resume_after_interrupt_gives_the_same_weights(tmp_path, algo) -> None:
    extra = (
        dict(total_env_steps=2_048, num_envs=8, num_steps=32)
        if algo == "ppo"
        else dict(total_env_steps=1_200, group_size=2, num_groups=4, max_episode_steps=12)
    )
    # With a KL penalty to the starting policy: the resumed run must stay anchored to the run's
    # start, not to the weights it resumes from.
    base = {**common(tmp_path, "whole"), "final_eval_episodes": 4, "kl_coef": 0.5, **extra}
    whole = registry.train(registry.make_config(algo, **base))

    def ctrl_c_at_3(update: int) -> None:
        if update == 3:
            os.kill(os.getpid(), signal.SIGINT)

    split = {**base, "run_name": "split"}
    first = registry.get(algo)[1](registry.make_config(algo, **split), ctrl_c_at_3)
    assert first.interrupted and first.iterations == 3 and first.final_eval is None
    resumed = registry.train(registry.make_config(algo, **split, resume=True))
    assert resumed.iterations == whole.iterations and resumed.env_steps == whole.env_steps
    for (name, a), b in zip(whole.policy.state_dict().items(), resumed.policy.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_reference_kl_is_zero_for_the_starting_policy_and_grows_as_it_moves(tmp_path) -> None:
    from algorithms.driver import TrainingRun
    from algorithms.onpolicy import make_reference, reference_kl

    cfg = registry.make_config("ppo", **common(tmp_path, "kl"), kl_coef=0.1)
    session = TrainingRun(cfg, "ppo")
    policy = session.policy
    reference = make_reference(cfg, policy, session.device)
    assert reference is not None and not any(p.requires_grad for p in reference.parameters())
    assert make_reference(registry.make_config("ppo", **common(tmp_path, "nokl")), policy, session.device) is None
    from algorithms.envs import make_vec_env

    envs = make_vec_env(cfg.env_id, 16, cfg.train_env_kwargs())
    obs = {k: torch.from_numpy(v).to(session.device) for k, v in envs.reset(seed=0)[0].items()}
    envs.close()
    actions = torch.randint(0, 5, (16,), generator=torch.Generator().manual_seed(0))

    def kl() -> float:
        logp = torch.log_softmax(policy(obs, heads=("logits",))["logits"], dim=-1).gather(1, actions[:, None]).squeeze(1)
        return float(reference_kl(reference, obs, actions, logp).detach())

    assert kl() == 0.0
    with torch.no_grad():
        policy.policy_head.weight.add_(0.05 * torch.randn_like(policy.policy_head.weight))
    assert kl() > 0.0
    with torch.no_grad():  # the reference is a copy: moving the policy did not move it
        ref = torch.log_softmax(reference(obs, heads=("logits",))["logits"], dim=-1)
        new = torch.log_softmax(policy(obs, heads=("logits",))["logits"], dim=-1)
    assert not torch.allclose(ref, new)


def test_bc_checkpoint_warm_starts_ppo_and_grpo_with_the_same_first_evaluation(tmp_path) -> None:
    from algorithms.bc import BCConfig

    bc = registry.train(BCConfig(**common(tmp_path, "bc"), data_steps=1_500, total_steps=150, dagger_rounds=0,
                                 batch_size=64, warmup_steps=10, learning_rate=3e-3))
    ckpt = bc.run_dir / "checkpoints" / "final.pt"
    for algo in ("ppo", "grpo"):
        cfg = registry.make_config(algo, **{**common(tmp_path, f"warm-{algo}"), "init_from": str(ckpt),
                                            "total_env_steps": 1})
        from algorithms.driver import TrainingRun

        session = TrainingRun(cfg, algo)
        first = evaluate(session.policy, cfg.env_id, cfg.test_levels(100), 100, seed=0)
        assert first.success_rate == bc.final_eval.success_rate
        for (name, a), b in zip(bc.policy.state_dict().items(), session.policy.state_dict().values(), strict=True):
            assert torch.equal(a.cpu(), b.cpu()), name


def test_identical_group_returns_give_exactly_zero_policy_gradient() -> None:
    from algorithms.advantages import group_advantages

    logits = torch.randn(6, 5, requires_grad=True)
    actions = torch.tensor([0, 1, 2, 3, 4, 0])
    logp = torch.log_softmax(logits, dim=-1).gather(1, actions[:, None]).squeeze(1)
    adv = torch.from_numpy(group_advantages(np.array([1.0, 1.0, 1.0, 0.0, 0.0, 0.0]), 3))
    loss, _ = grpo_loss(logp, logp.detach() + 0.1, adv, 0.2)
    loss.backward()
    assert torch.count_nonzero(logits.grad) == 0


def test_k3_kl_is_zero_against_an_identical_reference_and_positive_otherwise() -> None:
    logp = torch.log(torch.tensor([0.2, 0.5, 0.3]))
    assert torch.equal(k3_kl(logp, logp), torch.zeros(3))
    assert (k3_kl(logp, logp - 0.3) > 0).all()


@pytest.mark.parametrize(
    ("algo", "fields", "message"),
    [
        ("grpo", {"group_size": 1}, "group_size must be >= 2"),
        ("grpo", {"gamma": 0.0}, r"gamma must be in \(0, 1\]"),
        ("grpo", {"weighting": "token"}, "weighting must be"),
        ("grpo", {"horizon_per_cell": -1}, "horizon_per_cell must be >= 0"),
        ("grpo", {"baseline": "median"}, r"baseline must be one of \('mean', 'rloo', 'greedy'\)"),
        ("grpo", {"word_dropout": 1.0}, r"word_dropout must be in \[0, 1\)"),
        ("ppo", {"word_dropout": -0.1}, r"word_dropout must be in \[0, 1\)"),
        ("ppo", {"bc_whole_instruction": True, "bc_coef": 0.3}, "bc_whole_instruction"),
        ("grpo", {"bc_whole_instruction": True, "word_dropout": 0.3}, "bc_whole_instruction"),
        ("ppo", {"num_envs": 10, "num_steps": 3, "num_minibatches": 4}, "divisible"),
        ("ppo", {"total_env_steps": -5}, "total_env_steps must be >= 1"),
        ("ppo", {"env_id": "Penguin-Nope-v0"}, "unknown env id"),
        ("ppo", {"env_kwargs": {"colour": 1}}, "unknown keyword"),
        ("ppo", {"curriculum": True, "env_id": "Penguin-Gold-v0"}, "curriculum"),
        ("ppo", {"init_from": "/nonexistent.pt"}, "no checkpoint"),
        ("ppo", {"aux_nearest": True}, "aux_nearest trains one of the auxiliary losses: set aux_coef > 0"),
        ("grpo", {"aux_nearest": True, "aux_coef": 1.0, "policy": {"aux_heads": True}},
         "set policy.nearest_keypoint=True"),
        ("ppo", {"aux_nearest": True, "aux_coef": 1.0, "augment": "on", "env_id": "Penguin-Gold-v0",
                 "policy": {"aux_heads": True, "nearest_keypoint": True}}, "aux_nearest and augment"),
    ],
)
def test_bad_configs_fail_before_any_folder_exists(tmp_path, algo, fields, message) -> None:
    with pytest.raises((ValueError, TypeError, FileNotFoundError), match=message):
        registry.make_config(algo, runs_dir=str(tmp_path / "runs"), **fields)
    assert not (tmp_path / "runs").exists()


def test_unknown_algorithm_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="choose from"):
        registry.get("a2c")


def test_grpo_loss_with_episode_weights_gives_each_episode_one_vote() -> None:
    # Episode A: one step, advantage +1; episode B: three steps, advantage -1; ratios of 1.
    logp = torch.zeros(4)
    adv = torch.tensor([1.0, -1.0, -1.0, -1.0])
    per_step, _ = grpo_loss(logp, logp, adv, 0.2)
    assert per_step.item() == pytest.approx((-1 + 3) / 4)  # the long episode outvotes the short one
    weights = torch.tensor([1.0, 1 / 3, 1 / 3, 1 / 3])
    per_episode, _ = grpo_loss(logp, logp, adv, 0.2, weights)
    assert per_episode.item() == pytest.approx(0.0, abs=1e-6)  # (-1 + 1) / 2 episodes


def test_value_warmup_trains_the_value_head_and_nothing_else(tmp_path) -> None:
    from algorithms.driver import TrainingRun

    fields = {**common(tmp_path, "warmup"), "total_env_steps": 2 * 8 * 32, "num_envs": 8, "num_steps": 32,
              "final_eval_episodes": 2}
    start = TrainingRun(PPOConfig(**{**fields, "run_name": "start"}), "ppo").policy.state_dict()
    warmed = registry.train(PPOConfig(**fields, value_warmup=2)).policy.state_dict()
    moved = {name for name in start if not torch.equal(start[name].cpu(), warmed[name].cpu())}
    assert moved == {"value_head.weight", "value_head.bias"}
    # After the warm-up the whole network trains.
    later = registry.train(PPOConfig(**{**fields, "run_name": "later"}, value_warmup=1)).policy.state_dict()
    assert not torch.equal(start["policy_head.weight"].cpu(), later["policy_head.weight"].cpu())


def test_greedy_baseline_plays_the_first_game_of_each_group_greedily(tmp_path, monkeypatch) -> None:
    import agents
    from penguin_env.vector import PenguinVectorEnv

    logits_seen: list[torch.Tensor] = []
    actions_seen: list[np.ndarray] = []
    forward, step = agents.MultimodalPolicy.forward, PenguinVectorEnv.step

    def spy_forward(self, obs, heads=("logits", "value")):
        out = forward(self, obs, heads)
        if not torch.is_grad_enabled() and "logits" in out:
            logits_seen.append(out["logits"].clone())
        return out

    def spy_step(self, actions):
        actions_seen.append(np.array(actions))
        return step(self, actions)

    monkeypatch.setattr(agents.MultimodalPolicy, "forward", spy_forward)
    monkeypatch.setattr(PenguinVectorEnv, "step", spy_step)
    G = 4
    cfg = GRPOConfig(**common(tmp_path, "scst", final_eval_episodes=2), total_env_steps=16, group_size=G, num_groups=3,
                     baseline="greedy")
    result = registry.train(cfg)
    # The first rollout step: every game is alive, so the rows are the games.
    first_logits, first_actions = logits_seen[0], actions_seen[0]
    assert len(first_actions) == 3 * G
    greedy_rows = np.arange(0, 3 * G, G)
    np.testing.assert_array_equal(first_actions[greedy_rows], first_logits[greedy_rows].argmax(dim=1).numpy())
    sampled = np.setdiff1d(np.arange(3 * G), greedy_rows)
    assert (first_actions[sampled] != first_logits[sampled].argmax(dim=1).numpy()).any()  # these sample
    greedy_success = [v for _, v in result.history["rollout/greedy_success_rate"]]
    assert greedy_success and all(0.0 <= v <= 1.0 for v in greedy_success)


@pytest.mark.parametrize("algo", ["ppo", "grpo"])
def test_word_dropout_shortens_the_instructions_acted_on_and_trained_on(tmp_path, monkeypatch, algo) -> None:
    import agents

    seen: dict[bool, list[float]] = {True: [], False: []}  # grad enabled (update) -> words per row
    forward = agents.MultimodalPolicy.forward

    def spy(self, obs, heads=("logits", "value")):
        text = torch.as_tensor(np.asarray(obs["text"]))
        seen[torch.is_grad_enabled()].append(float((text != 0).sum(dim=1).float().mean()))
        return forward(self, obs, heads)

    monkeypatch.setattr(agents.MultimodalPolicy, "forward", spy)
    fields = {**common(tmp_path, "lang"), "env_id": "Penguin-Lang-v0", "env_kwargs": {"size": 5},
              "final_eval_episodes": 2}
    if algo == "ppo":
        config, fields = PPOConfig, {**fields, "total_env_steps": 8 * 16, "num_envs": 8, "num_steps": 16}
    else:  # one iteration of 4 groups of 4 episodes, each cut at 8 steps
        config, fields = GRPOConfig, {**fields, "total_env_steps": 16, "group_size": 4, "num_groups": 4,
                                      "max_episode_steps": 8, "bc_coef": 0.5}  # every step trained

    def words(**changes) -> tuple[float, float]:
        seen[True].clear()
        seen[False].clear()
        registry.train(config(**{**fields, **changes}))
        # The rollout's acting passes run without gradients, and so does the final evaluation,
        # which plays whole instructions: the first two passes are the rollout's.
        return float(np.mean(seen[False][:2])), float(np.mean(seen[True]))

    plain_acting, plain_update = words(run_name="plain")
    dropped_acting, dropped_update = words(run_name="dropped", word_dropout=0.5)
    assert plain_acting > 3 and plain_update > 3  # Lang's instructions have several words
    assert dropped_acting < 0.8 * plain_acting
    assert dropped_update < 0.8 * plain_update

    # bc_whole_instruction: one more pass per minibatch, for the BC loss, on the whole instructions
    words(run_name="dropped-bc", word_dropout=0.5, bc_coef=0.5)
    dropped_passes = list(seen[True])
    words(run_name="whole", word_dropout=0.5, bc_coef=0.5, bc_whole_instruction=True)
    passes = sorted(seen[True])
    assert len(passes) == 2 * len(dropped_passes)
    assert max(dropped_passes) < 0.8 * plain_update
    half = len(passes) // 2
    assert np.mean(passes[:half]) < 0.8 * plain_update  # the update's own passes, words left out
    assert np.mean(passes[half:]) > 0.9 * plain_update  # the BC loss's passes, whole instructions
