"""Behaviour cloning: it learns, and a resumed run ends where an uninterrupted one does."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest
import torch

import agents
from agents import PolicyConfig
from algorithms.bc import BCConfig, LabelledSteps, bc_loss, collect, train
from algorithms.driver import EVAL_GAMES
from algorithms.evaluation import evaluate
from algorithms.logger import EpisodeStats
from tests.small_policy import tiny_run

TINY_ENV = {"size": 4, "image_size": 24, "radius": 2}


def tiny(tmp_path, name: str, **overrides) -> BCConfig:
    """A seeded BC run that takes seconds: the shared tiny-run fields plus BC's own."""
    bc_fields = dict(
        env_kwargs=TINY_ENV,
        num_levels=500,
        data_steps=2_000,
        num_envs=16,
        total_steps=250,
        dagger_rounds=1,
        dagger_steps=500,
        batch_size=64,
        warmup_steps=20,
        learning_rate=3e-3,
    )
    return BCConfig(**tiny_run(tmp_path, name, **{**bc_fields, **overrides}))


def test_bc_loss_targets_every_optimal_action() -> None:
    logits = torch.tensor([[5.0, 5.0, -5.0, -5.0, -5.0], [5.0, -5.0, -5.0, -5.0, -5.0]])
    mask = torch.tensor([[True, True, False, False, False], [False, True, False, False, False]])
    loss, diag = bc_loss(logits, mask)
    assert diag["train/accuracy"] == 0.5
    both_ok, _ = bc_loss(logits[:1], mask[:1])
    assert both_ok < 0.7 < loss
    smoothed, _ = bc_loss(logits[:1], mask[:1], label_smoothing=0.1)
    assert smoothed > both_ok
    weighted, _ = bc_loss(logits, mask, class_weight=torch.tensor([1.0, 10.0, 1.0, 1.0, 1.0]))
    assert weighted > loss  # the mistaken row has the up-weighted action


def test_labelled_steps_drop_states_without_an_optimal_action() -> None:
    mask = np.array([[1, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0, 1, 1, 0, 0]], dtype=bool)
    data = LabelledSteps.from_arrays(np.zeros((3, 2, 2, 3), np.uint8), np.zeros((3, 4), np.int64), mask)
    assert len(data) == 2 and data.mask[:2].tolist() == mask[[0, 2]].tolist()


def test_labelled_steps_ring_keeps_the_newest_rows_in_place(tmp_path) -> None:
    store = LabelledSteps(5, (2, 2, 3), 4)
    buffers = (store.image, store.text, store.mask)
    # Row i carries the value i everywhere, so where each row went can be read back.
    for start, n in ((0, 3), (3, 4), (7, 2)):
        ids = np.arange(start, start + n)
        image = np.broadcast_to(ids[:, None, None, None], (n, 2, 2, 3)).astype(np.uint8)
        mask = np.zeros((n, 5), bool)
        mask[:, 0] = True
        store.add(image, np.repeat(ids[:, None], 4, axis=1), mask)
    assert len(store) == 5
    assert sorted(store.text[:, 0].tolist()) == [4, 5, 6, 7, 8]  # the 5 newest of 0..8
    assert all(a is b for a, b in zip(buffers, (store.image, store.text, store.mask), strict=True))
    assert (store.image[:, 0, 0, 0] == store.text[:, 0]).all()  # rows stay whole
    store.save(tmp_path / "ring.npz")
    again = LabelledSteps.load(tmp_path / "ring.npz")
    assert again.text[:, 0].tolist() == [4, 5, 6, 7, 8]  # saved oldest first


def test_tiny_bc_run_learns_and_beats_random(tmp_path) -> None:
    result = train(tiny(tmp_path, "learn"))
    losses = [v for _, v in result.history["train/loss"]]
    assert result.gradient_steps == 250 and result.env_steps == 2_500
    assert np.mean(losses[-2:]) < 0.8 * losses[0], losses
    heldout = tiny(tmp_path, "x").test_levels(100)
    rng = np.random.default_rng(0)
    random = evaluate(
        lambda o, s: rng.integers(0, 5, len(o["text"])), "Penguin-Bare-v0", heldout, 100
    )
    # A tiny budget: the sampled policy is clearly better than random; greedy is at least better.
    assert result.final_eval_sampled.success_rate > random.success_rate + 0.3, (result.summary(), random)
    assert result.final_eval.success_rate > random.success_rate, (result.summary(), random)
    files = {p.name for p in result.run_dir.iterdir()}
    assert {"config.json", "eval.csv", "checkpoints", "data"} <= files
    policy = agents.load(result.run_dir / "checkpoints" / "final.pt")
    assert agents.read(result.run_dir / "checkpoints" / "final.pt")["trainer"] == "bc"
    # The run evaluates greedy and sampled actions with its seed and the driver's batch of games;
    # the saved policy reproduces both (sampling draws depend on how many games step together).
    games = min(100, EVAL_GAMES)
    again = evaluate(policy, "Penguin-Bare-v0", heldout, 100, seed=0, num_envs=games)
    assert again.success_rate == result.final_eval.success_rate
    sampled = evaluate(policy, "Penguin-Bare-v0", heldout, 100, seed=0, deterministic=False, num_envs=games)
    assert sampled.success_rate == result.final_eval_sampled.success_rate


@pytest.mark.parametrize("word_dropout", [0.0, 0.5])
def test_resume_after_interruption_matches_an_uninterrupted_run(tmp_path, word_dropout) -> None:
    budget = dict(
        total_steps=12, data_steps=300, dagger_steps=100, final_eval_episodes=4, batch_size=16,
        word_dropout=word_dropout,
    )
    whole = train(tiny(tmp_path, "whole", **budget))

    def ctrl_c_at_5(step: int) -> None:
        if step == 5:
            os.kill(os.getpid(), signal.SIGINT)

    first = train(tiny(tmp_path, "split", **budget), callback=ctrl_c_at_5)
    assert first.interrupted and first.iterations == 5 and first.final_eval is None
    resumed = train(tiny(tmp_path, "split", resume=True, **budget))
    assert not resumed.interrupted and resumed.iterations == resumed.gradient_steps == 12
    # the DAgger round (after step 6) ran after the resume
    assert resumed.env_steps == whole.env_steps == 400
    for (name, a), b in zip(
        whole.policy.state_dict().items(), resumed.policy.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name


def test_bc_from_a_fixed_trace_file(tmp_path) -> None:
    import fake_traces

    path = fake_traces.generate(
        "Penguin-Bare-v0",
        40,
        seed=0,
        path=tmp_path / "bare.h5",
        env_kwargs=TINY_ENV,
        progress=False,
    )
    ds = fake_traces.load(path)
    data = LabelledSteps.from_trace_file(path)
    assert len(data) == ds.num_steps
    assert data.mask[np.arange(len(data)), ds.labels].all()  # the stored solver action is optimal
    untrained = agreement(train(tiny(tmp_path, "none", dataset=str(path), dagger_rounds=0, total_steps=1,
                                     final_eval_episodes=2)).policy, data)
    result = train(tiny(tmp_path, "file", dataset=str(path), dagger_rounds=0, total_steps=150,
                        final_eval_episodes=10))
    assert result.gradient_steps == 150 and result.env_steps == 0  # no env step played: the file's data
    assert [row["data_steps"] for row in result.curve] == [ds.num_steps]
    # It learnt the file: its greedy actions agree with the solver's labels far more than at the start.
    trained = agreement(result.policy, data)
    assert trained > 0.8 and trained > untrained + 0.3, (untrained, trained)


def agreement(policy, data: LabelledSteps) -> float:
    """Share of the labelled steps where the policy's greedy action is an optimal one."""
    actions = policy.act({"image": data.image[: len(data)], "text": data.text[: len(data)]})
    return float(data.mask[np.arange(len(data)), actions].mean())


def test_random_detours_never_stop() -> None:
    # Lang games end early only through STOP (face and corner tasks) or by collecting the gold.
    # With every action random, an episode that ends before the time limit without success
    # would mean a random STOP.
    env_kwargs = {"size": 4, "image_size": 24, "num_levels": 200}
    stats = EpisodeStats(8, window=10_000, next_step_autoreset=False)
    data = collect("Penguin-Lang-v0", env_kwargs, 8, 2_000, 0, 1.0, None, stats)
    assert len(data) > 0 and stats.episodes > 0
    max_steps = 4 * 4 * 4
    early = [s for s, n in zip(stats.successes, stats.lengths, strict=True) if n < max_steps]
    assert early and all(early), "a random detour ended an episode with STOP"


def test_canonical_targets_pick_the_first_optimal_action_in_priority_order() -> None:
    from algorithms.bc import canonical_targets

    # columns: LEFT, RIGHT, FORWARD, BACKWARD, STOP
    mask = torch.tensor(
        [[1, 1, 1, 0, 0], [1, 1, 0, 0, 0], [0, 1, 0, 1, 0], [0, 0, 0, 1, 1], [0, 0, 0, 0, 1]], dtype=torch.bool
    )
    expected = [2, 0, 1, 3, 4]  # FORWARD first, then LEFT, RIGHT, BACKWARD, STOP
    out = canonical_targets(mask)
    assert out.sum(dim=1).tolist() == [1] * 5
    assert out.float().argmax(dim=1).tolist() == expected
    assert (out <= mask).all()  # always one of the optimal actions


def _dead_fractions(tmp_path, name: str, steps: int = 500, **changes) -> list[float]:
    # The rate is held at its peak after the warm-up (no annealing), as in the first tenth of a
    # real run, where the trunk used to die (steps 250-900 of the Gold benchmark run).
    cfg = BCConfig(
        env_id="Penguin-Gold-v0", data_steps=20_000, total_steps=steps, anneal_lr=False, dagger_rounds=0,
        log_every=25, eval_every=0, final_eval_episodes=1, seed=0, device="cpu", runs_dir=str(tmp_path),
        run_name=name, progress=False, tensorboard=False, **changes,
    )
    if "policy" not in changes:
        cfg.policy = PolicyConfig()
    # Dead: zero for every input of a batch (the complement of the logged active share).
    return [1.0 - v for _, v in train(cfg).history["train/active_units"]]


def test_trunk_units_stay_alive_through_the_first_five_hundred_steps(tmp_path) -> None:

    dead = _dead_fractions(tmp_path, "default")
    assert max(dead) < 0.5, dead
    # The recipes this replaced switched most trunk units off for every input: the wide network
    # at 3e-3 with no warm-up, and the default network with a 200-step warm-up. The check can fail.
    old = _dead_fractions(tmp_path, "old", 150, policy=PolicyConfig.preset("wide"), warmup_steps=0)
    assert max(old) > 0.6, old


@pytest.mark.slow
def test_a_200_step_warm_up_lets_the_default_trunk_die(tmp_path) -> None:
    # Why the warm-up is 1,000 steps: with 200 the default network's trunk switched off.
    short = _dead_fractions(tmp_path, "short", warmup_steps=200)
    assert max(short) > 0.6, short


def test_collect_memory_grows_by_one_row_per_step(tmp_path) -> None:
    # The labelled steps are written into arrays allocated once: traced peak memory grows with
    # the number of steps at the size of one row (image + tokens + mask), with no hidden copies
    # (concatenating per-step lists would at least double it).
    import tracemalloc

    def peak(n: int) -> tuple[int, int]:
        tracemalloc.start()
        store = LabelledSteps(n, (24, 24, 3), 12)
        collect("Penguin-Bare-v0", TINY_ENV, 16, n, 0, 0.1, None, into=store)
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        row = store.image[0].nbytes + store.text[0].nbytes + store.mask[0].nbytes
        return top, row

    peak(500)  # warm-up: one-time allocations (level pools, lookup tables)
    small, row = peak(2_000)
    large, _ = peak(8_000)
    per_step = (large - small) / 6_000
    # The solver's per-level cache also grows a little with the levels played.
    assert 0.9 * row <= per_step < 1.5 * row, (per_step, row)


def test_word_dropout_changes_the_instructions_trained_on(tmp_path) -> None:
    # One gradient step: both runs draw the same minibatch, so only the dropped words differ.
    budget = dict(total_steps=1, data_steps=300, dagger_rounds=0, final_eval_episodes=2, batch_size=16)
    plain = train(tiny(tmp_path, "plain", **budget)).policy.state_dict()
    dropped = train(tiny(tmp_path, "dropped", word_dropout=0.5, **budget)).policy.state_dict()
    text_weights = [name for name in plain if "text_encoder" in name]
    assert text_weights
    assert any(not torch.equal(plain[name], dropped[name]) for name in text_weights)
