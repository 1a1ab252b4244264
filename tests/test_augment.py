"""Symmetry augmentation against re-rendered transformed games.

The reference transforms the *game state* (wall grid, positions, heading, corner) and lets the
renderer, the tokenizer and the solver produce the observation and optimal actions afresh;
the augmentation only moves pixels, token ids and mask columns. They must agree exactly.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from algorithms.augment import NUM_TRANSFORMS, SymmetryAugment, drop_words, symmetry_problem
from algorithms.auxiliary import aux_targets
from algorithms.bc import BCConfig
from algorithms.dqn import augment_transitions
from algorithms.ppo import PPOConfig, augment_rollout
from fake_traces import solver
from penguin_env.config import make_config
from penguin_env.core import Action, GameState, corner_cells
from penguin_env.core import step as play_step
from penguin_env.engine import BatchGame
from penguin_env.instructions import Tokenizer, instruction
from penguin_env.render import BatchRenderer

TOKENIZER = Tokenizer()
#: Frame sizes with an even border: 7 cells of 6 pixels in 44, 10 cells of 6 pixels in 64.
SYMMETRIC_IMAGE_SIZE = {5: 44, 8: 64}


def transform_state(state: GameState, mirror: bool, quarter_turns: int) -> GameState:
    """The same games mirrored left-right, then turned counter-clockwise ``quarter_turns`` times."""
    s = state.copy()
    last = s.size - 1
    if mirror:
        s.walls = s.walls[:, :, ::-1].copy()
        s.pos[:, 0] = last - s.pos[:, 0]
        s.gold[..., 0] = last - s.gold[..., 0]
        s.heading = (8 - s.heading) % 8
        s.corner = (1 - s.corner % 2) + 2 * (s.corner // 2)
    for _ in range(quarter_turns):
        s.walls = np.rot90(s.walls, 1, axes=(1, 2)).copy()
        x, y = s.pos[:, 0].copy(), s.pos[:, 1].copy()
        s.pos[:, 0], s.pos[:, 1] = y, last - x
        gx, gy = s.gold[..., 0].copy(), s.gold[..., 1].copy()
        s.gold[..., 0], s.gold[..., 1] = gy, last - gx
        s.heading = (s.heading - 2) % 8
        right, bottom = s.corner % 2, s.corner // 2
        s.corner = bottom + 2 * (1 - right)
    return s


def observe(state: GameState, image_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Frames and token ids of ``state`` drawn from scratch."""
    renderer = BatchRenderer(state.num, state.size, image_size)
    renderer.render_full(state)
    texts = [
        instruction(int(t), int(p), int(c))
        for t, p, c in zip(state.task, state.phrase, state.corner, strict=True)
    ]
    return renderer.observe(state), TOKENIZER.encode_batch(texts)


def played_states(env_id: str, seed: int, num: int = 24, **kwargs) -> GameState:
    """Games of ``env_id`` a few random moves into their episodes (none of them finished)."""
    config = make_config(env_id, {"paraphrases": "all", **kwargs})
    game = BatchGame(env_id, config, num=num)
    rng = np.random.default_rng(seed)
    game.reset(np.arange(num), seed, np.arange(num) + seed * num)
    for _ in range(int(rng.integers(0, 6))):
        game.step(rng.integers(0, 4, num))
    state = game.state.take(np.arange(num))
    return state.take(np.flatnonzero(solver.optimal_action_mask(state).any(axis=1)))


@settings(max_examples=12, deadline=None)
@given(
    env_id=st.sampled_from(["Penguin-Lang-v0", "Penguin-Walls-v0", "Penguin-Gold-v0"]),
    seed=st.integers(0, 10_000),
    transform=st.integers(0, NUM_TRANSFORMS - 1),
    size=st.sampled_from([5, 8]),
)
def test_augmentation_equals_the_rendered_transformed_game(env_id, seed, transform, size) -> None:
    image_size = SYMMETRIC_IMAGE_SIZE[size]
    assert symmetry_problem(env_id, {"size": size, "image_size": image_size}) is None
    state = played_states(env_id, seed, size=size)
    mirror, turns = bool(transform // 4), transform % 4
    image, text = observe(state, image_size)
    mask = solver.optimal_action_mask(state)

    got_image, got_text, got_mask = SymmetryAugment().apply(
        torch.from_numpy(image), torch.from_numpy(text), torch.from_numpy(mask), mirror, turns
    )
    moved = transform_state(state, mirror, turns)
    want_image, want_text = observe(moved, image_size)
    np.testing.assert_array_equal(got_image.numpy(), want_image)
    np.testing.assert_array_equal(got_text.numpy(), want_text)
    np.testing.assert_array_equal(got_mask.numpy(), solver.optimal_action_mask(moved))


def test_an_off_centre_frame_does_not_turn_into_a_rendered_frame() -> None:
    # Why symmetry_problem refuses odd borders: 7 cells of 9 pixels leave one spare pixel in 64.
    assert "odd border" in symmetry_problem("Penguin-Gold-v0", {"size": 5, "image_size": 64})
    state = played_states("Penguin-Gold-v0", 1, size=5)
    image, text = observe(state, 64)
    mask = solver.optimal_action_mask(state)
    got_image, _, _ = SymmetryAugment().apply(
        torch.from_numpy(image), torch.from_numpy(text), torch.from_numpy(mask), False, 1
    )
    want_image, _ = observe(transform_state(state, False, 1), 64)
    assert not np.array_equal(got_image.numpy(), want_image)


def test_reference_transform_moves_corners_as_pictured() -> None:
    # A quarter turn counter-clockwise takes the top left corner to the bottom left one.
    state = played_states("Penguin-Lang-v0", 0, num=4)
    state.corner[:] = 0
    turned = transform_state(state, mirror=False, quarter_turns=1)
    x, y = corner_cells(turned.corner, turned.size)
    assert (x == 0).all() and (y == turned.size - 1).all()


def test_random_symmetries_are_all_used_and_labels_follow() -> None:
    state = played_states("Penguin-Lang-v0", 3, num=64)
    image, text = observe(state)
    mask = solver.optimal_action_mask(state)
    rng = np.random.default_rng(0)
    augment = SymmetryAugment()
    out_image, _, out_mask = augment(
        torch.from_numpy(image), torch.from_numpy(text), torch.from_numpy(mask), rng
    )
    # Each output row is one of the eight transforms of its input row.
    seen = set()
    for i in range(len(image)):
        matches = [
            g
            for g in range(NUM_TRANSFORMS)
            if torch.equal(
                augment.apply(
                    torch.from_numpy(image[i : i + 1]),
                    torch.from_numpy(text[i : i + 1]),
                    torch.from_numpy(mask[i : i + 1]),
                    bool(g // 4),
                    g % 4,
                )[0],
                out_image[i : i + 1],
            )
        ]
        assert matches, f"row {i} is not a symmetric image of its input"
        seen.update(matches)
        # Mirrors swap LEFT and RIGHT; every transform keeps the number of optimal actions.
        assert out_mask[i].sum() == mask[i].sum()
    assert len(seen) == NUM_TRANSFORMS


@pytest.mark.parametrize(
    "env_id, kwargs, reason",
    [
        ("Penguin-Gold-v0", {"view": "ego"}, "egocentric"),
        ("Penguin-Gold-v0", {"hint": True}, "hint"),
        ("Penguin-Gold-v0", {"size": 8, "image_size": 224}, "sprites"),
        ("Penguin-Gold-v0", {"size": 5, "image_size": 64}, "odd border"),
    ],
)
def test_asymmetric_frames_are_named(env_id, kwargs, reason) -> None:
    problem = symmetry_problem(env_id, kwargs)
    assert problem is not None and reason in problem


def test_default_frames_are_symmetric() -> None:
    for env_id in ("Penguin-Bare-v0", "Penguin-Gold-v0", "Penguin-Walls-v0", "Penguin-Lang-v0"):
        assert symmetry_problem(env_id, {}) is None


def test_bc_refuses_forced_augmentation_of_asymmetric_frames(tmp_path) -> None:
    # Refused when the config is built, before any data is generated or any folder made.
    with pytest.raises(ValueError, match="egocentric"):
        BCConfig(
            env_id="Penguin-Bare-v0",
            env_kwargs={"view": "ego"},
            augment="on",
            runs_dir=str(tmp_path),
            run_name="x",
        )
    with pytest.raises(ValueError, match="augment must be"):
        BCConfig(augment="yes", runs_dir=str(tmp_path), run_name="y")
    assert not any(tmp_path.iterdir())


@settings(max_examples=60, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 8), min_size=1, max_size=12),
    rate=st.floats(0.0, 0.95),
    seed=st.integers(0, 2**16),
)
def test_word_dropout_keeps_an_ordered_part_of_each_instruction(lengths, rate, seed) -> None:
    rng = np.random.default_rng(seed)
    text = torch.zeros((len(lengths), 10), dtype=torch.int64)
    for row, n in enumerate(lengths):
        text[row, :n] = torch.from_numpy(rng.integers(2, 40, n))
    protected = torch.tensor([5, 6])
    out = drop_words(text, rate, np.random.default_rng(seed + 1), protected)
    assert out.shape == text.shape
    for row, n in enumerate(lengths):
        kept = out[row][out[row] != 0].tolist()
        original = text[row, :n].tolist()
        assert kept, "every row keeps at least one word"
        assert (out[row, len(kept):] == 0).all(), "padding only after the kept words"
        it = iter(original)
        assert all(word in it for word in kept), "kept words are a subsequence, in order"
        assert all(word in kept for word in original if word in (5, 6)), "protected words stay"


def test_word_dropout_drops_at_its_rate_and_is_off_at_zero() -> None:
    text = torch.from_numpy(np.random.default_rng(0).integers(7, 30, (4000, 6)))
    assert torch.equal(drop_words(text, 0.0, np.random.default_rng(1)), text)
    out = drop_words(text, 0.25, np.random.default_rng(1))
    dropped = 1 - (out != 0).sum().item() / text.numel()
    assert abs(dropped - 0.25) < 0.02
    with pytest.raises(ValueError, match="word dropout"):
        drop_words(text, 1.0, np.random.default_rng(1))


def test_bc_word_dropout_is_validated_when_the_config_is_built() -> None:
    with pytest.raises(ValueError, match="word_dropout"):
        BCConfig(word_dropout=1.5)


@settings(max_examples=8, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    env_id=st.sampled_from(["Penguin-Bare-v0", "Penguin-Gold-v0", "Penguin-Lang-v0"]),
)
def test_augmented_replay_transitions_are_transitions_of_the_transformed_game(seed: int, env_id: str) -> None:
    # DQN's augmentation must turn (obs, action, next obs) into a transition the game itself
    # makes: render the transformed state, play the mapped action in it, render again.
    state = played_states(env_id, seed)
    rules = make_config(env_id, {}).rules()
    rng = np.random.default_rng(seed)
    actions = rng.integers(0, len(Action), state.num)
    after = state.copy()
    play_step(after, actions, rules)
    (image, text), (next_image, next_text) = observe(state), observe(after)
    # Token ids as the replay ring stores them (one byte each).
    text, next_text = text.astype(np.uint8), next_text.astype(np.uint8)
    labels = solver.optimal_action_mask(state)
    batch = {
        "obs": {"image": torch.from_numpy(image), "text": torch.from_numpy(text)},
        "next_obs": {"image": torch.from_numpy(next_image), "text": torch.from_numpy(next_text)},
        "actions": torch.from_numpy(actions),
        "labels": torch.from_numpy(labels),
    }
    augment_transitions(SymmetryAugment(), batch, np.random.default_rng(seed + 1))
    which = SymmetryAugment.draw(state.num, np.random.default_rng(seed + 1))
    assert len(set(which.tolist())) > 1  # more than one symmetry is checked
    mirrored = {int(Action.LEFT): int(Action.RIGHT), int(Action.RIGHT): int(Action.LEFT)}
    for i in range(state.num):
        mirror, turns = bool(which[i] // 4), int(which[i] % 4)
        game = transform_state(state.take(np.array([i])), mirror, turns)
        action = mirrored.get(int(actions[i]), int(actions[i])) if mirror else int(actions[i])
        want_image, want_text = observe(game)
        want_labels = solver.optimal_action_mask(game)
        play_step(game, np.array([action]), rules)
        want_next_image, want_next_text = observe(game)
        assert int(batch["actions"][i]) == action
        assert np.array_equal(batch["obs"]["image"][i].numpy(), want_image[0])
        assert batch["obs"]["text"].dtype == batch["next_obs"]["text"].dtype == torch.uint8
        assert np.array_equal(batch["obs"]["text"][i].numpy(), want_text[0])
        assert np.array_equal(batch["next_obs"]["image"][i].numpy(), want_next_image[0])
        assert np.array_equal(batch["next_obs"]["text"][i].numpy(), want_next_text[0])
        assert np.array_equal(batch["labels"][i].numpy(), want_labels[0])


@settings(max_examples=12, deadline=None)
@given(
    env_id=st.sampled_from(["Penguin-Bare-v0", "Penguin-Gold-v0", "Penguin-Walls-v0", "Penguin-Lang-v0"]),
    seed=st.integers(0, 10_000),
    transform=st.integers(0, NUM_TRANSFORMS - 1),
)
def test_turned_auxiliary_targets_are_those_of_the_turned_game(env_id, seed, transform) -> None:
    # What the state says after turning the game equals the turned targets: penguin cell,
    # heading, gold cells and the nearest gold's bearing from the heading.
    state = played_states(env_id, seed)
    grid = state.size + 2
    targets = {k: torch.from_numpy(v) for k, v in aux_targets(state, grid).items()}
    which = torch.full((state.num,), transform)
    got = SymmetryAugment().transform_aux(targets, which, grid)
    want = aux_targets(transform_state(state, bool(transform // 4), transform % 4), grid)
    assert set(got) == set(want)
    for name, value in want.items():
        np.testing.assert_array_equal(got[name].numpy(), value, err_msg=name)


# No shrinking: each example renders every game twice, and a failing one is readable as it is.
@settings(max_examples=6, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(
    seed=st.integers(0, 10_000),
    env_id=st.sampled_from(["Penguin-Gold-v0", "Penguin-Walls-v0", "Penguin-Lang-v0"]),
)
def test_augmented_rollout_samples_replay_in_the_turned_game(seed: int, env_id: str) -> None:
    # PPO's augmented sample i is (turned frame, turned instruction, mapped action, turned
    # targets): rendering the turned game gives its observation, and playing the mapped action
    # there gives the turned game of the original move.
    state = played_states(env_id, seed)
    rules = make_config(env_id, {}).rules()
    rng = np.random.default_rng(seed)
    actions = rng.integers(0, len(Action), state.num)
    image, text = observe(state)
    grid = state.size + 2
    logprobs = rng.normal(size=state.num).astype(np.float32)
    flat = {
        "image": image, "text": text, "whole_text": text.copy(), "actions": actions,
        "logprobs": logprobs.copy(), "labels": solver.optimal_action_mask(state),
        **{f"aux_{k}": v for k, v in aux_targets(state, grid).items()},
    }
    augment_rollout(SymmetryAugment(), flat, grid, np.random.default_rng(seed + 1))
    which = SymmetryAugment.draw(state.num, np.random.default_rng(seed + 1))
    assert len(set(which.tolist())) > 1  # more than one symmetry is checked
    np.testing.assert_array_equal(flat["logprobs"], logprobs)  # as the playing policy logged them
    mirrored = {int(Action.LEFT): int(Action.RIGHT), int(Action.RIGHT): int(Action.LEFT)}
    for i in range(state.num):
        mirror, turns = bool(which[i] // 4), int(which[i] % 4)
        game = transform_state(state.take(np.array([i])), mirror, turns)
        action = mirrored.get(int(actions[i]), int(actions[i])) if mirror else int(actions[i])
        assert int(flat["actions"][i]) == action
        want_image, want_text = observe(game)
        np.testing.assert_array_equal(flat["image"][i], want_image[0])
        np.testing.assert_array_equal(flat["text"][i], want_text[0])
        np.testing.assert_array_equal(flat["whole_text"][i], want_text[0])
        np.testing.assert_array_equal(flat["labels"][i], solver.optimal_action_mask(game)[0])
        for name, value in aux_targets(game, grid).items():
            np.testing.assert_array_equal(flat[f"aux_{name}"][i], value[0], err_msg=name)
        moved = state.take(np.array([i]))
        play_step(moved, actions[i : i + 1], rules)
        play_step(game, np.array([action]), rules)
        want = transform_state(moved, mirror, turns)
        for name in ("pos", "heading", "gold_left", "steps"):
            np.testing.assert_array_equal(getattr(game, name), getattr(want, name), err_msg=name)


def test_ppo_refuses_forced_augmentation_of_asymmetric_frames(tmp_path) -> None:
    with pytest.raises(ValueError, match="egocentric"):
        PPOConfig(env_kwargs={"view": "ego"}, augment="on", runs_dir=str(tmp_path), run_name="x")
    with pytest.raises(ValueError, match="augment must be"):
        PPOConfig(augment="yes", runs_dir=str(tmp_path), run_name="y")
    assert not any(tmp_path.iterdir())
