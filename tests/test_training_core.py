"""The shared training core: seeding, logging names, run directory, evaluation, Ctrl-C."""

from __future__ import annotations

import dataclasses
import json
import os
import signal

import gymnasium as gym
import numpy as np
import pytest
import torch

from algorithms.envs import HeldOut, check_disjoint
from algorithms.evaluation import evaluate, solver_policy
from algorithms.interrupt import GracefulInterrupt
from algorithms.logger import EpisodeStats, Logger
from algorithms.run_dir import RunDir
from algorithms.seeding import rng_state, seed_everything, set_rng_state
from fake_traces import solver as exact_solver
from penguin_env.core import TASK_NAMES

HELD_OUT = HeldOut(start_level=1_000_000, num_levels=40).env_kwargs({})


@pytest.mark.parametrize("env_id", ["Penguin-Bare-v0", "Penguin-Gold-v0", "Penguin-Lang-v0"])
def test_spl_is_one_for_the_solver(env_id: str) -> None:
    result = evaluate(solver_policy, env_id, HELD_OUT, num_episodes=40, num_envs=8)
    assert result.success_rate == 1.0
    assert result.spl == pytest.approx(1.0)
    assert (result.lengths == result.optimal_lengths).all()
    assert result.num_episodes == 40


def test_evaluation_penalises_detours_and_covers_each_level_once() -> None:
    calls = {"n": 0}

    def dawdler(obs, state):
        # A wasted turn-and-back before every second solver move: success, but SPL < 1.
        calls["n"] += 1
        if calls["n"] % 4 == 1:
            return np.zeros(len(obs["text"]), dtype=np.int64)
        if calls["n"] % 4 == 2:
            return np.ones(len(obs["text"]), dtype=np.int64)
        return solver_policy(obs, state)

    result = evaluate(dawdler, "Penguin-Bare-v0", HELD_OUT, num_episodes=30, num_envs=30)
    assert result.success_rate == 1.0
    assert 0.2 < result.spl < 1.0
    random = evaluate(
        lambda o, s: np.full(len(o["text"]), 4), "Penguin-Bare-v0", HELD_OUT, num_episodes=30
    )
    assert random.success_rate < 0.2 and random.mean_length == 1.0
    # Same levels whatever the batch size.
    a = evaluate(solver_policy, "Penguin-Gold-v0", HELD_OUT, num_episodes=12, num_envs=5)
    b = evaluate(solver_policy, "Penguin-Gold-v0", HELD_OUT, num_episodes=12, num_envs=12)
    assert (a.optimal_lengths == b.optimal_lengths).all()


def test_per_task_breakdown_matches_the_single_env_and_splits_failures() -> None:
    # Each episode's task is the one the single env gives for that level (batch size 7 so the
    # bookkeeping of restarted games is exercised).
    solver = evaluate(solver_policy, "Penguin-Lang-v0", HELD_OUT, num_episodes=40, num_envs=7)
    env = gym.make("Penguin-Lang-v0", **HELD_OUT)
    expected = [env.reset(options={"level": 1_000_000 + k})[1]["task"] for k in range(40)]
    env.close()
    assert [TASK_NAMES[t] for t in solver.tasks] == expected
    table = solver.by_task()
    assert set(table) == set(expected) and len(table) > 1
    assert sum(row["episodes"] for row in table.values()) == 40
    assert all(row["success_rate"] == 1.0 and row["spl"] == pytest.approx(1.0) for row in table.values())
    assert not solver.timed_out.any()

    # Turning on the spot never collects or reaches a corner: every failure runs to the time limit.
    spinner = evaluate(lambda o, s: np.zeros(len(o["text"]), dtype=np.int64), "Penguin-Lang-v0", HELD_OUT, 40)
    for task in ("collect", "corner"):
        row = spinner.by_task()[task]
        assert row["success_rate"] == 0.0 and row["failures_at_time_limit"] == row["episodes"]
    assert (spinner.timed_out == (spinner.lengths == spinner.lengths.max())).all()
    assert (spinner.final_stall == 0).all()  # a turn always changes the heading
    assert all(r["failures_pressing_into_a_wall"] == 0 for r in spinner.by_task().values())
    # Walking forward only: the penguin reaches a wall within a room's width and presses into it
    # for the rest of the episode, unless it collected the gold on its way.
    walker = evaluate(lambda o, s: np.full(len(o["text"]), 2), "Penguin-Bare-v0", HELD_OUT, 40)
    failed = ~walker.successes
    assert failed.any() and walker.timed_out[failed].all()
    assert (walker.final_stall[failed] >= walker.lengths[failed] - 8).all()
    assert walker.by_task()["collect"]["failures_pressing_into_a_wall"] == int(failed.sum())
    # STOP at once: every failure ends early, none at the time limit.
    stopper = evaluate(lambda o, s: np.full(len(o["text"]), 4), "Penguin-Lang-v0", HELD_OUT, 40)
    rows = stopper.by_task().values()
    assert all(r["failures_at_time_limit"] == 0 for r in rows)
    assert sum(r["failures_ended_early"] for r in rows) == int((~stopper.successes).sum()) > 0
    assert stopper.by_task()["corner"]["failures_at_another_corner"] <= stopper.by_task()["corner"]["failures_ended_early"]
    assert all(r["failures_at_another_corner"] == 0 for r in table.values())


def test_a_stop_in_a_corner_other_than_the_named_one_is_counted_as_such() -> None:
    # The exact solver sent to the next corner round: each corner instruction ends with STOP in
    # the wrong corner; the other tasks, which do not read the corner, still succeed.
    def wrong_corner(obs, state):
        return exact_solver.expert_actions(dataclasses.replace(state, corner=(state.corner + 1) % 4))

    result = evaluate(wrong_corner, "Penguin-Lang-v0", HELD_OUT, num_episodes=40, num_envs=7)
    table = result.by_task()
    corner = table.pop("corner")
    assert corner["episodes"] > 0 and corner["success_rate"] == 0.0
    assert corner["failures_at_another_corner"] == corner["failures_ended_early"] == corner["episodes"]
    assert table and all(row["success_rate"] == 1.0 and row["failures_at_another_corner"] == 0 for row in table.values())


def test_heldout_levels_must_not_overlap_training() -> None:
    check_disjoint({"num_levels": 1000, "start_level": 0}, HELD_OUT)
    with pytest.raises(ValueError, match="overlap"):
        check_disjoint({"num_levels": 0}, HELD_OUT)
    with pytest.raises(ValueError, match="overlap"):
        check_disjoint({"num_levels": 10, "start_level": 1_000_020}, HELD_OUT)
    assert HELD_OUT["paraphrases"] == "test"


def test_seeding_and_rng_state_round_trip(tmp_path) -> None:
    import random

    rng = seed_everything(3)
    saved = rng_state(rng)
    first = (random.random(), np.random.rand(), torch.rand(2), rng.integers(0, 1000, 4))
    # Through a checkpoint file, read back as a resume does (plain values only).
    torch.save(saved, tmp_path / "rng.pt")
    loaded = torch.load(tmp_path / "rng.pt", weights_only=True)
    seed_everything(99)  # somewhere else entirely
    set_rng_state(loaded, rng)
    second = (random.random(), np.random.rand(), torch.rand(2), rng.integers(0, 1000, 4))
    assert first[0] == second[0] and first[1] == second[1]
    assert torch.equal(first[2], second[2]) and (first[3] == second[3]).all()


def test_logger_writes_sb3_names(tmp_path) -> None:
    log = Logger(tmp_path)
    log.record("train/loss", 1.0)
    log.record("train/loss", 3.0)
    log.record("rollout/success_rate", 0.5)
    out = log.dump(10)
    log.close()
    assert out["train/loss"] == 2.0 and "time/time_elapsed" in out
    assert any(p.name.startswith("events.out.tfevents") for p in tmp_path.iterdir())
    assert log.history["train/loss"] == [(10, 2.0)]


def test_episode_stats_skip_the_next_step_autoreset_step() -> None:
    stats = EpisodeStats(2)
    f, t = np.array([False, False]), np.array([True, False])
    stats.update(np.array([0.0, 0.0]), f, f, f)
    stats.update(np.array([1.0, 0.0]), t, f, t)  # game 0 ends after 2 steps
    stats.update(np.array([0.0, 0.0]), f, f, f)  # game 0: the reset step, not counted
    stats.update(np.array([1.0, 0.0]), t, f, t)  # game 0 ends again after 1 step
    assert list(stats.lengths) == [2, 1]
    assert stats.scalars()["rollout/success_rate"] == 1.0
    assert stats.scalars()["rollout/ep_rew_mean"] == 1.0


def test_run_dir_layout(tmp_path) -> None:
    run = RunDir(tmp_path, "r1")
    run.write_config({"lr": 0.1, "path": tmp_path})
    run.append_eval({"step": 1, "success_rate": 0.5})
    run.append_eval({"step": 2, "success_rate": 0.75})
    assert json.loads((run.path / "config.json").read_text())["config"]["lr"] == 0.1
    assert [r["success_rate"] for r in run.read_eval()] == [0.5, 0.75]
    assert run.checkpoints.is_dir() and run.last_checkpoint.parent == run.checkpoints


def test_eval_csv_reader_skips_a_torn_last_line_and_rows_with_missing_fields(tmp_path) -> None:
    run = RunDir(tmp_path, "torn")
    run.write_eval([{"step": 1, "success_rate": 0.5}, {"step": 2, "success_rate": 0.75}])
    with run.eval_csv.open("a") as f:
        f.write("3,0.")  # a crash in the middle of a row: no newline
    assert [r["step"] for r in run.read_eval()] == [1.0, 2.0]
    run.eval_csv.write_text("step,success_rate\n1,0.5\n2\n3,0.9\n")  # row 2 lost a field
    assert [r["step"] for r in run.read_eval()] == [1.0, 3.0]


def test_ctrl_c_only_sets_a_flag_inside_the_block() -> None:
    # The handler before the block is Python's default, or SIG_IGN when the shell started the
    # tests in the background; either way the block must put it back.
    before = signal.getsignal(signal.SIGINT)
    with GracefulInterrupt() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.requested
    assert signal.getsignal(signal.SIGINT) is before


def test_trainers_use_every_available_core_never_more_and_flush_denormals() -> None:
    import pytest
    import torch

    from algorithms.device import available_cores, configure_torch

    before = torch.get_num_threads()
    try:
        assert configure_torch(0) == available_cores() == torch.get_num_threads()
        assert configure_torch(available_cores() + 5) == available_cores()
        assert configure_torch(1) == 1 == torch.get_num_threads()
        with pytest.raises(ValueError, match="threads must be >= 0"):
            configure_torch(-1)
        if torch.set_flush_denormal(False):  # the CPU supports flushing
            tiny = torch.tensor([1e-40], dtype=torch.float32)  # a denormal float32
            assert (tiny * 1.0).item() != 0.0
            configure_torch(0)
            assert (tiny * 1.0).item() == 0.0
    finally:
        torch.set_num_threads(before)
        torch.set_flush_denormal(False)


def test_make_adam_takes_the_same_steps_as_plain_adam() -> None:
    """The fused kernel (where torch has one) is an implementation detail: after a few steps on
    the same gradients the parameters match plain Adam's, weight decay included."""
    import torch

    from algorithms.optim import make_adam

    torch.manual_seed(0)
    start = [torch.randn(7, 5), torch.randn(5)]
    grads = [[torch.randn_like(p) for p in start] for _ in range(5)]
    results = []
    for build in (
        lambda ps: make_adam(ps, 1e-2, eps=1e-5, weight_decay=0.01),
        lambda ps: torch.optim.Adam(ps, lr=1e-2, eps=1e-5, weight_decay=0.01),
    ):
        params = [p.clone().requires_grad_(True) for p in start]
        optimizer = build(params)
        major, minor = (int(x) for x in torch.__version__.split(".")[:2])
        if not results and (major, minor) >= (2, 4):  # torch 2.4 added the CPU kernel
            assert optimizer.defaults["fused"]
        for step_grads in grads:
            for p, g in zip(params, step_grads, strict=True):
                p.grad = g.clone()
            optimizer.step()
        results.append([p.detach() for p in params])
    for fused, plain, before in zip(*results, start, strict=True):
        assert not torch.allclose(fused, before)  # it did step
        torch.testing.assert_close(fused, plain, rtol=1e-5, atol=1e-6)


def test_evaluations_during_training_play_validation_levels_and_the_final_one_test_levels(
    tmp_path, monkeypatch
) -> None:
    from algorithms import driver
    from algorithms.bc import BCConfig, train
    from tests.small_policy import tiny_run

    played: list[tuple[int, int]] = []
    real = driver.evaluate

    def spy(policy, env_id, kwargs, num_episodes, **more):
        played.append((int(kwargs["start_level"]), num_episodes))
        return real(policy, env_id, kwargs, num_episodes, **more)

    monkeypatch.setattr(driver, "evaluate", spy)
    cfg = BCConfig(**tiny_run(tmp_path, "split", eval_every=10, eval_episodes=20, final_eval_episodes=30),
                   total_steps=20, data_steps=300, dagger_rounds=0, batch_size=16)
    result = train(cfg)
    # greedy and sampled: at step 10 on validation levels, at the end on test levels
    assert played == [(1_000_000, 20)] * 2 + [(2_000_000, 30)] * 2
    assert [row["test_levels"] for row in result.curve] == [0.0, 1.0]
    assert result.final_eval.num_episodes == 30 and result.curve[-1]["success_rate"] == result.final_eval.success_rate
    with pytest.raises(ValueError, match="overlap the test levels"):
        BCConfig(validation_start_level=1_000_000, test_start_level=1_000_100, eval_episodes=200)


@pytest.mark.parametrize("final_weights", ["last", "best"])
def test_final_weights_are_the_last_updates_or_the_best_validation_evaluations(
    tmp_path, monkeypatch, final_weights: str
) -> None:
    import dataclasses

    import agents
    from algorithms import driver
    from algorithms.bc import BCConfig, train
    from tests.small_policy import tiny_run

    real = driver.evaluate
    validation_scores = iter([0.9, 0.1, 0.2])  # greedy, at steps 10, 20, 30: the first is best

    def scripted(policy, env_id, kwargs, num_episodes, **more):
        result = real(policy, env_id, kwargs, num_episodes, **more)
        if kwargs["start_level"] != 1_000_000 or not more.get("deterministic", True):
            return result
        return dataclasses.replace(result, success_rate=next(validation_scores))

    monkeypatch.setattr(driver, "evaluate", scripted)
    cfg = BCConfig(**tiny_run(tmp_path, final_weights, eval_every=10, eval_episodes=10, final_eval_episodes=20),
                   total_steps=30, data_steps=300, dagger_rounds=0, batch_size=16, final_weights=final_weights)
    result = train(cfg)
    checkpoints = result.run_dir / "checkpoints"

    def weights(name: str) -> list[torch.Tensor]:
        return list(agents.load(checkpoints / name).state_dict().values())

    chosen = weights("best.pt" if final_weights == "best" else "last.pt")
    other = weights("last.pt" if final_weights == "best" else "best.pt")
    assert all(torch.equal(a, b) for a, b in zip(weights("final.pt"), chosen, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(weights("final.pt"), other, strict=True))
    # The final evaluation played the weights it saved.
    again = evaluate(agents.load(checkpoints / "final.pt"), "Penguin-Bare-v0", cfg.test_levels(20), 20,
                     seed=0, num_envs=min(20, driver.EVAL_GAMES))
    assert again.success_rate == result.final_eval.success_rate
    with pytest.raises(ValueError, match="final_weights must be one of"):
        BCConfig(final_weights="first")


def test_the_weight_average_follows_its_recurrence_and_is_what_evaluations_and_final_pt_hold(
    tmp_path, monkeypatch
) -> None:
    import agents
    from algorithms import driver
    from algorithms.driver import TrainingRun
    from algorithms.ppo import PPOConfig
    from algorithms.trainer_state import TrainerState
    from tests.small_policy import tiny_run

    played: list[list[torch.Tensor]] = []

    def spy(policy, *args, **kwargs):
        played.append([p.detach().clone() for p in policy.parameters()])
        return real(policy, *args, **kwargs)

    real = driver.evaluate
    monkeypatch.setattr(driver, "evaluate", spy)
    cfg = PPOConfig(**tiny_run(tmp_path, "ema", final_eval_episodes=8), total_env_steps=3, ema_decay=0.75)
    run = TrainingRun(cfg, "ppo")
    start = [p.detach().clone() for p in run.policy.parameters()]
    for iteration in run.iterations(TrainerState()):
        with torch.no_grad():  # the "update" of iteration k sets every weight to k + 1
            for p in run.policy.parameters():
                p.fill_(iteration + 1.0)
        run.count(env_steps=1)
    result = run.finish()
    # a_k = 0.75 a_(k-1) + 0.25 k from a_0 = the starting weights, three times:
    # a_3 = 0.75^3 a_0 + 0.25 (0.75^2 * 1 + 0.75 * 2 + 3)
    expected = [0.75**3 * a0 + 0.25 * (0.5625 + 1.5 + 3.0) for a0 in start]
    checkpoints = result.run_dir / "checkpoints"
    for network in (list(agents.load(checkpoints / "final.pt").parameters()), *played, list(result.policy.parameters())):
        for want, got in zip(expected, network, strict=True):
            torch.testing.assert_close(got, want)
    assert len(played) == 2  # greedy and sampled, on the test levels
    assert all(torch.equal(p, torch.full_like(p, 3.0)) for p in agents.load(checkpoints / "last.pt").parameters())
    with pytest.raises(ValueError, match=r"ema_decay must be in \[0, 1\)"):
        PPOConfig(ema_decay=1.0)
