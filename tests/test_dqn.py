"""Double DQN: its target, the Q acting head in checkpoints, learning on an easy setting,
exact resume with the buffer saved, and bad configs refused before training."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest
import torch

import agents
from agents.network import Q_SAMPLING_EPSILON, epsilon_greedy
from algorithms import dqn as dqn_module
from algorithms import registry
from algorithms.augment import corner_word_ids
from algorithms.dqn import (
    DQNConfig,
    advantage_learning_targets,
    double_dqn_targets,
    drop_replayed_words,
    margin_loss,
    td_targets,
    train,
)
from algorithms.driver import TrainingRun
from algorithms.envs import make_vec_env
from algorithms.evaluation import evaluate
from penguin_env.instructions import Tokenizer, all_instructions
from tests.small_policy import EASY_ENV, small_policy, tiny_run


def common(tmp_path, name: str, **changes) -> dict:
    """A small DQN run (the shared tiny run plus a small buffer and early learning)."""
    return tiny_run(tmp_path, name, **{
        "num_envs": 8,
        "buffer_size": 10_000,
        "learning_starts": 500,
        "batch_size": 64,
        "log_every": 1_000,
        **changes,
    })


def test_double_dqn_target_is_the_target_networks_value_of_the_online_argmax() -> None:
    online = torch.tensor([[1.0, 5.0, 2.0], [3.0, 0.0, 1.0]])
    target = torch.tensor([[10.0, 20.0, 30.0], [7.0, 8.0, 9.0]])
    returns, discounts = torch.tensor([1.0, 0.5]), torch.tensor([0.9, 0.0])
    y = double_dqn_targets(online, target, returns, discounts)
    # Online argmax: actions 1 and 0; their target values 20 and 7; the second is terminal.
    assert torch.allclose(y, torch.tensor([1.0 + 0.9 * 20.0, 0.5]))
    # Vanilla DQN (the target network's own max) would give 1 + 0.9 * 30.
    assert not torch.isclose(y[0], torch.tensor(1.0 + 0.9 * 30.0))


def test_advantage_learning_lowers_each_target_by_alpha_times_its_actions_gap() -> None:
    y = torch.tensor([0.8, 0.8, 0.3])
    q_now = torch.tensor([[1.0, 0.5, 0.2], [1.0, 0.5, 0.2], [-1.0, 2.0, 0.0]])
    actions = torch.tensor([1, 0, 2])
    out = advantage_learning_targets(y, q_now, actions, 0.5)
    # Gaps to the greedy action: 0.5, 0 (the greedy action itself) and 2.
    assert torch.allclose(out, torch.tensor([0.8 - 0.25, 0.8, 0.3 - 1.0]))
    assert torch.equal(advantage_learning_targets(y, q_now, actions, 0.0), y)


@pytest.mark.parametrize("alpha", [0.5, 0.9])
def test_advantage_learning_keeps_greedy_actions_and_widens_gaps_by_one_over_one_minus_alpha(alpha) -> None:
    # A corridor of 6 cells, gold at the right end (reward 1, terminal); actions LEFT, RIGHT and
    # STOP (terminal, no reward). Iterate both operators to their fixed points, with the same
    # table as online and target network, and compare with the optimal Q values.
    n, gamma = 6, 0.9
    nxt = {0: lambda s: max(s - 1, 0), 1: lambda s: s + 1}

    def backup(q: torch.Tensor, al: float) -> torch.Tensor:
        returns, discounts, next_q = [], [], []
        for s in range(n):
            for a in range(3):
                ends = a == 2 or (a == 1 and s == n - 1)
                returns.append(1.0 if a == 1 and s == n - 1 else 0.0)
                discounts.append(0.0 if ends else gamma)
                next_q.append(q[0] if ends else q[nxt[a](s)])
        next_q = torch.stack(next_q)
        y = double_dqn_targets(next_q, next_q, torch.tensor(returns), torch.tensor(discounts))
        y = advantage_learning_targets(y, q.repeat_interleave(3, 0), torch.arange(3).repeat(n), al)
        return y.view(n, 3)

    plain = torch.zeros(n, 3, dtype=torch.float64)
    wide = torch.zeros(n, 3, dtype=torch.float64)
    for _ in range(2_000):
        plain, wide = backup(plain.float(), 0.0).double(), backup(wide.float(), alpha).double()
    # Optimal values: RIGHT reaches the gold in n - s steps, LEFT costs one step (or a bump at
    # the wall) before the best path from its cell, STOP is worth 0.
    v = [gamma ** (n - 1 - s) for s in range(n)]
    optimal = torch.tensor([[gamma * v[max(s - 1, 0)], v[s], 0.0] for s in range(n)], dtype=torch.float64)
    assert torch.allclose(plain, optimal, atol=1e-5)
    assert torch.equal(wide.argmax(1), plain.argmax(1))
    assert torch.allclose(wide.max(1).values, plain.max(1).values, atol=1e-5)
    gaps_plain = plain.max(1, keepdim=True).values - plain
    gaps_wide = wide.max(1, keepdim=True).values - wide
    assert torch.allclose(gaps_wide, gaps_plain / (1 - alpha), atol=1e-4)


def test_td_targets_batched_target_pass_matches_separate_passes() -> None:
    torch.manual_seed(0)
    envs = make_vec_env("Penguin-Bare-v0", 6, EASY_ENV)
    obs, _ = envs.reset(seed=3)
    next_obs, *_ = envs.step(np.full(6, 1))
    online = agents.MultimodalPolicy(envs.single_observation_space, envs.single_action_space, small_policy())
    target = agents.MultimodalPolicy(envs.single_observation_space, envs.single_action_space, small_policy())
    envs.close()
    tensors = lambda o: {k: torch.as_tensor(np.array(v)) for k, v in o.items()}  # noqa: E731
    batch = {"obs": tensors(obs), "next_obs": tensors(next_obs), "actions": torch.tensor([0, 1, 2, 3, 0, 1]),
             "returns": torch.linspace(0, 1, 6), "discounts": torch.tensor([0.9, 0.0, 0.9, 0.9, 0.0, 0.9])}
    with torch.no_grad():
        q_next_online = online(batch["next_obs"], heads=("q",))["q"]
        q_next_target = target(batch["next_obs"], heads=("q",))["q"]
        q_now_target = target(batch["obs"], heads=("q",))["q"]
    plain = double_dqn_targets(q_next_online, q_next_target, batch["returns"], batch["discounts"])
    assert torch.allclose(td_targets(online, target, batch, 0.0), plain, atol=1e-6)
    wide = advantage_learning_targets(plain, q_now_target, batch["actions"], 0.7)
    assert torch.allclose(td_targets(online, target, batch, 0.7), wide, atol=1e-5)
    assert not torch.allclose(wide, plain)


def test_margin_loss_is_zero_once_optimal_actions_lead_by_the_margin() -> None:
    optimal = torch.tensor([[True, False, True], [False, False, False]])
    assert margin_loss(torch.tensor([[1.0, 0.1, 0.5], [0.0, 0.0, 0.0]]), optimal, 0.8).item() == pytest.approx(0.0)
    # Non-optimal action 1 is 0.2 below the best optimal one: 0.8 - 0.2 = 0.6 short.
    assert margin_loss(torch.tensor([[1.0, 0.8, 0.5], [9.0, 0.0, 0.0]]), optimal, 0.8).item() == pytest.approx(0.6)
    assert margin_loss(torch.zeros(1, 3), torch.zeros(1, 3, dtype=torch.bool), 0.8) is None


def make_policy() -> agents.MultimodalPolicy:
    # Seeded, so a test's starting weights do not depend on which tests ran before it.
    torch.manual_seed(0)
    envs = make_vec_env("Penguin-Bare-v0", 1, EASY_ENV)
    policy = agents.MultimodalPolicy(envs.single_observation_space, envs.single_action_space, small_policy())
    envs.close()
    return policy


def test_q_acting_head_acts_with_argmax_q_and_epsilon_greedy_sampling(tmp_path) -> None:
    torch.manual_seed(0)
    policy = make_policy()
    envs = make_vec_env("Penguin-Bare-v0", 64, EASY_ENV)
    obs, _ = envs.reset(seed=0)
    with torch.no_grad():
        out = policy(obs, heads=("q", "logits"))
    assert np.array_equal(policy.act(obs), out["logits"].argmax(1).numpy())
    policy.acting_head = "q"
    greedy = out["q"].argmax(1).numpy()
    assert np.array_equal(policy.act(obs), greedy)
    # Sampled: epsilon-greedy, about Q_SAMPLING_EPSILON * 4/5 of actions differ from the argmax.
    batch = {k: np.repeat(v, 50, axis=0) for k, v in obs.items()}
    sampled = policy.act(batch, deterministic=False, generator=torch.Generator().manual_seed(0))
    differ = float(np.mean(sampled != np.repeat(greedy, 50)))
    assert 0.5 * Q_SAMPLING_EPSILON * 0.8 < differ < 1.5 * Q_SAMPLING_EPSILON * 0.8
    with pytest.raises(ValueError, match="acting_head must be one of"):
        policy.acting_head = "value"

    agents.save(policy, tmp_path / "q.pt", trainer="dqn")
    loaded = agents.load(tmp_path / "q.pt")
    assert loaded.acting_head == "q" and np.array_equal(loaded.act(obs), greedy)
    other = make_policy()
    agents.load_into(other, tmp_path / "q.pt")
    assert other.acting_head == "q"
    # A checkpoint written before the field existed acts through the logits head.
    data = torch.load(tmp_path / "q.pt", weights_only=True)
    del data["acting_head"]
    torch.save(data, tmp_path / "old.pt")
    assert agents.load(tmp_path / "old.pt").acting_head == "logits"


def test_epsilon_greedy_draws_random_actions_from_the_given_subset_only() -> None:
    q = torch.zeros(4_000, 5)
    q[:, 4] = 1.0  # greedy: STOP everywhere
    moves = [0, 1, 2, 3]
    gen = torch.Generator().manual_seed(0)
    explored = epsilon_greedy(q, 1.0, gen, random_actions=moves)
    counts = torch.bincount(explored, minlength=5)
    assert counts[4] == 0 and all(700 < int(c) < 1_300 for c in counts[:4]), counts
    assert 4 in epsilon_greedy(q, 1.0, gen).tolist()  # the full set still draws STOP
    # The greedy choice is untouched: STOP when it has the highest value.
    assert torch.equal(epsilon_greedy(q, 0.0, gen, random_actions=moves), torch.full((4_000,), 4))
    with pytest.raises(ValueError, match="non-empty subset of 0..4"):
        epsilon_greedy(q, 0.5, gen, random_actions=[5])


@pytest.mark.parametrize("explore_stop", [True, False])
def test_explore_stop_decides_whether_exploration_can_stop(tmp_path, monkeypatch, explore_stop) -> None:
    taken: list[np.ndarray] = []

    def recording(*args, **kwargs):
        actions = epsilon_greedy(*args, **kwargs)
        taken.append(actions.numpy().copy())
        return actions

    monkeypatch.setattr(dqn_module, "epsilon_greedy", recording)
    # epsilon = 1 throughout, so every action is a random one.
    cfg = DQNConfig(**common(tmp_path, "eps", total_env_steps=800, final_eval_episodes=4,
                             exploration_initial_eps=1.0, exploration_final_eps=1.0,
                             explore_stop=explore_stop))
    train(cfg)
    counts = np.bincount(np.concatenate(taken), minlength=5)
    assert counts.sum() >= 800 and all(counts[:4] > 0)
    assert (counts[4] > 0) == explore_stop, counts


def test_runs_warm_started_from_another_trainers_checkpoint_act_through_their_own_head(tmp_path) -> None:
    policy = make_policy()
    policy.acting_head = "q"
    agents.save(policy, tmp_path / "dqn.pt", trainer="dqn")
    ppo = registry.make_config("ppo", **{k: v for k, v in common(tmp_path, "ppo").items()
                                         if k not in ("num_envs", "buffer_size", "learning_starts",
                                                      "batch_size", "log_every")},
                               init_from=str(tmp_path / "dqn.pt"))
    assert TrainingRun(ppo, "ppo").policy.acting_head == "logits"
    policy.acting_head = "logits"
    agents.save(policy, tmp_path / "bc.pt", trainer="bc")
    dqn = DQNConfig(**common(tmp_path, "dqn"), init_from=str(tmp_path / "bc.pt"))
    assert TrainingRun(dqn, "dqn", acting_head="q").policy.acting_head == "q"


def random_success(cfg) -> float:
    rng = np.random.default_rng(0)
    result = evaluate(lambda o, s: rng.integers(0, 5, len(o["text"])), cfg.env_id, cfg.test_levels(100), 100)
    return result.success_rate


def test_dqn_beats_random_on_bare_radius_one_and_trains_only_encoder_and_q_head(tmp_path) -> None:
    start = make_policy()
    agents.save(start, tmp_path / "start.pt", trainer="bc")
    cfg = DQNConfig(**common(tmp_path, "dqn"), init_from=str(tmp_path / "start.pt"), total_env_steps=20_000,
                    target_update_interval=250, exploration_fraction=0.3, learning_rate=1e-3, warmup_steps=100,
                    gamma=0.9, prioritized=False)
    result = registry.train(cfg)
    assert not result.interrupted and result.env_steps >= 20_000
    # Greedy (the strict measure: one wrong action repeats until the time limit) beats random
    # play clearly; a Q function that learned nothing loops and does worse than random.
    assert result.final_eval.success_rate > random_success(cfg) + 0.1, result.summary()
    # The greedy policy acts through the Q head, and the final checkpoint says so.
    final = agents.load(result.run_dir / "checkpoints" / "final.pt")
    assert final.acting_head == "q"
    assert evaluate(final, cfg.env_id, cfg.test_levels(100), 100, seed=0).success_rate == result.final_eval.success_rate
    before, after = start.state_dict(), result.policy.state_dict()
    for name in before:
        same = torch.equal(before[name], after[name].cpu())
        assert same == (name.startswith(("policy_head", "value_head"))), name
    for key in ("rollout/exploration_rate", "train/loss", "train/learning_rate", "train/n_updates",
                "rollout/ep_rew_mean", "rollout/success_rate", "time/fps", "train/q_mean"):
        assert key in result.history, key
    eps = [v for _, v in result.history["rollout/exploration_rate"]]
    assert eps[0] > eps[-1] == pytest.approx(cfg.exploration_final_eps)


def test_resume_with_the_buffer_saved_gives_the_same_weights(tmp_path) -> None:
    base = common(tmp_path, "whole", total_env_steps=1_600, learning_starts=200, final_eval_episodes=4,
                  save_buffer=True, target_update_interval=20, n_step=3, bc_coef=0.5, prioritized=True,
                  advantage_learning=0.5)
    whole = train(DQNConfig(**base))

    def ctrl_c_at_90(iteration: int) -> None:
        if iteration == 90:
            os.kill(os.getpid(), signal.SIGINT)

    split = {**base, "run_name": "split"}
    first = train(DQNConfig(**split), ctrl_c_at_90)
    assert first.interrupted and first.final_eval is None and 0 < first.gradient_steps < whole.gradient_steps
    resumed = train(DQNConfig(**split, resume=True))
    assert resumed.gradient_steps == whole.gradient_steps and resumed.env_steps == whole.env_steps
    for (name, a), b in zip(whole.policy.state_dict().items(), resumed.policy.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"buffer_size": 64, "batch_size": 128}, "buffer_size .* must be >= batch_size"),
        ({"n_step": 0}, "n_step must be >= 1"),
        ({"exploration_final_eps": 1.5}, r"exploration_final_eps must be in \[0, 1\]"),
        ({"exploration_initial_eps": -0.1}, r"exploration_initial_eps must be in \[0, 1\]"),
        ({"tau": 0.0}, r"tau must be in \(0, 1\]"),
        ({"advantage_learning": 1.0}, r"advantage_learning must be in \[0, 1\)"),
        ({"word_dropout": 1.0}, r"word_dropout must be in \[0, 1\)"),
        ({"learning_starts": 10**9}, "learning_starts .* must be <= buffer_size"),
        ({"total_env_steps": 0}, "total_env_steps must be >= 1"),
        ({"augment": "maybe"}, "augment must be 'auto', 'on' or 'off'"),
        ({"augment": "on", "env_kwargs": {"view": "ego"}}, "augment='on' needs symmetric frames"),
        ({"aux_nearest": True}, "aux_nearest trains one of the auxiliary losses: set aux_coef > 0"),
    ],
)
def test_bad_configs_fail_before_any_folder_exists(tmp_path, fields, message) -> None:
    with pytest.raises(ValueError, match=message):
        registry.make_config("dqn", runs_dir=str(tmp_path / "runs"), **fields)
    assert not (tmp_path / "runs").exists()


def test_a_checkpoint_for_other_spaces_is_refused_before_any_folder_exists(tmp_path) -> None:
    agents.save(make_policy(), tmp_path / "small.pt", trainer="bc")  # 24x24 images
    with pytest.raises(ValueError, match="(?s)other spaces.*image.shape: checkpoint has"):
        DQNConfig(init_from=str(tmp_path / "small.pt"), runs_dir=str(tmp_path / "runs"))
    assert not (tmp_path / "runs").exists()


def test_replay_ratio_and_epsilon_schedule() -> None:
    cfg = DQNConfig(num_envs=16, batch_size=128, train_freq=2, gradient_steps=1, exploration_fraction=0.5,
                    exploration_initial_eps=1.0, exploration_final_eps=0.1)
    assert cfg.replay_ratio == 4.0
    assert cfg.epsilon(0.0) == 1.0 and cfg.epsilon(0.25) == pytest.approx(0.55) and cfg.epsilon(0.9) == pytest.approx(0.1)


def test_learning_rate_warms_up_then_stays_or_anneals_to_zero() -> None:
    constant = DQNConfig(learning_rate=1e-3, warmup_steps=10)
    assert constant.lr_at(4) == pytest.approx(5e-4) and constant.lr_at(50, 0.9) == 1e-3
    annealed = DQNConfig(learning_rate=1e-3, warmup_steps=10, anneal_lr=True)
    assert annealed.lr_at(4, 0.5) == pytest.approx(2.5e-4)  # half warmed up, half annealed
    assert annealed.lr_at(50, 0.25) == pytest.approx(7.5e-4) and annealed.lr_at(50, 1.0) == 0.0
    assert annealed.lr_at(50, 1.2) == 0.0  # a run past its plan does not go negative


def words(row: torch.Tensor) -> list[int]:
    return [int(t) for t in row if t != 0]


def is_subsequence(part: list[int], whole: list[int]) -> bool:
    remaining = iter(whole)
    return all(token in remaining for token in part)


def test_replayed_word_dropout_drops_the_same_words_from_observation_and_next_observation() -> None:
    tokenizer = Tokenizer()
    texts = torch.from_numpy(tokenizer.encode_batch(all_instructions("train") * 8)).long()
    n = len(texts)
    # The last 8 transitions' next observations hold another instruction (only possible for a
    # ring that read across an episode's end; the function must not copy the words then).
    next_texts = texts.clone()
    next_texts[-8:] = texts[:8]
    batch = {"obs": {"text": texts.clone()}, "next_obs": {"text": next_texts.clone()}}
    drop_replayed_words(batch, 0.5, np.random.default_rng(0), corner_word_ids())
    out, next_out = batch["obs"]["text"], batch["next_obs"]["text"]
    corners = set(corner_word_ids().tolist())
    assert torch.equal(out[: n - 8], next_out[: n - 8])  # same instruction: the same words dropped
    for before, after in [(texts, out), (next_texts, next_out)]:
        for original, kept in zip(before, after, strict=True):
            # Kept words stay in order, at the front; corner words and at least one word survive.
            assert is_subsequence(words(kept), words(original)) and words(kept)
            assert corners & set(words(original)) <= set(words(kept))
            assert (kept[len(words(kept)):] == 0).all()
    lost = [len(words(o)) - len(words(k)) for o, k in zip(texts, out, strict=True)]
    assert sum(x > 0 for x in lost) > n // 2  # at rate 0.5 most instructions lose a word
    # The next observations with their own instruction are dropped from their own words.
    assert all(is_subsequence(words(k), words(o)) for o, k in zip(texts[:8], next_out[-8:], strict=True))


@pytest.mark.parametrize("rate", [0.0, 0.5])
def test_word_dropout_reaches_the_updates_only_when_set(tmp_path, monkeypatch, rate) -> None:
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []

    def recording(batch, *args, **kwargs) -> None:
        before = batch["obs"]["text"].clone()
        drop_replayed_words(batch, *args, **kwargs)
        seen.append((before, batch["obs"]["text"].clone()))

    monkeypatch.setattr(dqn_module, "drop_replayed_words", recording)
    cfg = DQNConfig(**common(tmp_path, f"wd{rate}", total_env_steps=800, learning_starts=200,
                             final_eval_episodes=4, word_dropout=rate))
    result = train(cfg)
    assert result.gradient_steps > 0
    if rate == 0:
        assert not seen
        return
    assert len(seen) == result.gradient_steps  # every gradient step's batch
    assert any(not torch.equal(before, after) for before, after in seen)
