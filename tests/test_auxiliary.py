"""The auxiliary targets say what the state says (and what the rendered image shows), and the
losses on them train the network's auxiliary heads."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from agents import MultimodalPolicy, PolicyConfig
from algorithms.auxiliary import aux_loss, aux_problem, aux_targets, nearest_gold_cell
from algorithms.envs import make_vec_env
from penguin_env import state as state_io
from penguin_env.perception import decode_cells
from penguin_env.render import GOLD, PENGUIN, PENGUIN_ON_GOLD
from tests.penguin_states import make_state


def cell(x: int, y: int, grid: int = 10) -> int:
    return (y + 1) * grid + x + 1


def test_targets_of_a_hand_made_state() -> None:
    state = state_io.from_dict({
        "version": 1, "size": 8, "walls": ["........"] * 8, "pos": [2, 3], "heading": 5,
        "gold": [[0, 0], [7, 7], [4, 1]], "gold_left": [True, False, True],
        "task": "collect", "corner": 0, "phrase": 0, "steps": 0, "level": 0,
    })
    targets = aux_targets(state, grid=10)
    assert targets["penguin"].tolist() == [4 * 10 + 3]  # row y + 1, column x + 1
    assert targets["heading"].tolist() == [5]
    # The nearest piece left, (4, 1), lies north-east of (2, 3) (sector 1); facing south-west
    # (5), that is 4 sectors clockwise: straight behind.
    assert targets["bearing"].tolist() == [4]
    expected = np.zeros(100, np.float32)
    expected[[1 * 10 + 1, 2 * 10 + 5]] = 0.5  # the two pieces left; the collected one is not
    np.testing.assert_array_equal(targets["gold"][0], expected)


@pytest.mark.parametrize(
    ("heading", "gold", "gold_left", "expected"),
    [
        # From (2, 3): (2, 0) straight ahead of a north-facing penguin and (5, 3) abeam are both
        # 3 moves away; the one needing no turn wins, and facing east the other one does.
        (0, [(5, 3), (2, 0), (6, 6)], None, (2, 0)),
        (2, [(5, 3), (2, 0), (6, 6)], None, (5, 3)),
        # Straight behind is lined up too (BACKWARD walks there); north-east needs a turn.
        (0, [(5, 0), (2, 6)], None, (2, 6)),
        # Nearer beats lined up: (4, 4) is two moves away, (2, 0) three.
        (0, [(2, 0), (4, 4)], None, (4, 4)),
        # Both abeam and 2 away: reading order, in whichever order the state lists them.
        (0, [(4, 3), (0, 3)], None, (0, 3)),
        (0, [(0, 3), (4, 3)], None, (0, 3)),
        (0, [(2, 5), (2, 1)], None, (2, 1)),
        # A collected piece is no target, however near.
        (0, [(2, 2), (7, 7)], [False, True], (7, 7)),
        (0, [(2, 2), (7, 7)], [False, False], None),
    ],
)
def test_nearest_gold_of_hand_made_states(heading, gold, gold_left, expected) -> None:
    state = state_io.from_dict(make_state(size=8, pos=(2, 3), heading=heading, gold=gold, gold_left=gold_left))
    target = nearest_gold_cell(state, grid=10)
    assert target.tolist() == [-1 if expected is None else cell(*expected)]
    assert aux_targets(state, grid=10, nearest=True)["nearest"].tolist() == target.tolist()
    assert "nearest" not in aux_targets(state, grid=10)


@pytest.mark.parametrize("env_id", ["Penguin-Gold-v0", "Penguin-Walls-v0", "Penguin-Lang-v0"])
def test_nearest_gold_is_a_nearest_piece_left_whatever_order_the_state_lists_them(env_id) -> None:
    envs = make_vec_env(env_id, 16, {})
    envs.reset(seed=5)
    rng = np.random.default_rng(1)
    for _ in range(30):
        state = envs.get_state()
        target = nearest_gold_cell(state, grid=10)
        steps = np.abs(state.gold - state.pos[:, None, :]).max(axis=2)
        for i in range(state.num):
            left = np.flatnonzero(state.gold_left[i])
            if left.size == 0:
                assert target[i] == -1
                continue
            cells = [cell(*state.gold[i, k]) for k in left]
            assert target[i] in cells
            assert steps[i, left[cells.index(target[i])]] == steps[i, left].min()
        # The frame does not show the order the pieces are listed in; nor may the target depend on it.
        order = rng.permutation(state.gold.shape[1])
        shuffled = state.take(np.arange(state.num))
        shuffled.gold, shuffled.gold_left = state.gold[:, order].copy(), state.gold_left[:, order].copy()
        np.testing.assert_array_equal(nearest_gold_cell(shuffled, grid=10), target)
        envs.step(rng.integers(0, 4, 16))  # no STOP


def test_the_nearest_gold_loss_leaves_out_games_with_no_gold_left() -> None:
    torch.manual_seed(0)
    out = {"aux_penguin": torch.randn(3, 9), "aux_gold": torch.randn(3, 9), "aux_heading": torch.randn(3, 8),
           "aux_bearing": torch.randn(3, 9), "aux_nearest": torch.randn(3, 9)}
    targets = {"penguin": torch.tensor([0, 1, 2]), "heading": torch.tensor([0, 1, 2]),
               "bearing": torch.tensor([8, 1, 2]), "gold": torch.full((3, 9), 1 / 9)}
    base, _ = aux_loss(out, targets)
    total, terms = aux_loss(out, {**targets, "nearest": torch.tensor([-1, 4, 7])})
    expected = F.cross_entropy(out["aux_nearest"][1:], torch.tensor([4, 7]))
    assert float(terms["train/aux_nearest_loss"]) == pytest.approx(float(expected))
    assert float(total) == pytest.approx(float(base + expected))
    _, none_left = aux_loss(out, {**targets, "nearest": torch.tensor([-1, -1, -1])})
    assert float(none_left["train/aux_nearest_loss"]) == 0.0


@pytest.mark.parametrize("env_id", ["Penguin-Bare-v0", "Penguin-Gold-v0", "Penguin-Walls-v0", "Penguin-Lang-v0"])
def test_targets_are_what_the_rendered_image_shows(env_id) -> None:
    envs = make_vec_env(env_id, 6, {"size": 6, "image_size": 48})
    obs, _ = envs.reset(seed=3)
    rng = np.random.default_rng(0)
    for _ in range(20):
        targets = aux_targets(envs.get_state(), grid=8)
        for i, image in enumerate(obs["image"]):
            codes = decode_cells(image, 8).reshape(-1)
            assert codes[targets["penguin"][i]] >= PENGUIN
            assert (codes[targets["penguin"][i]] - PENGUIN) % 8 == targets["heading"][i]
            shown = np.flatnonzero((codes == GOLD) | (codes >= PENGUIN_ON_GOLD))
            if env_id != "Penguin-Lang-v0":  # Lang's gold stays on the board in every task
                assert set(np.flatnonzero(targets["gold"][i])) == set(shown.tolist())
        obs, *_ = envs.step(rng.integers(0, 4, 6))  # no STOP


def test_the_losses_train_the_auxiliary_heads() -> None:
    torch.manual_seed(0)
    envs = make_vec_env("Penguin-Gold-v0", 64, {})
    obs, _ = envs.reset(seed=0)
    targets = {k: torch.from_numpy(v) for k, v in aux_targets(envs.get_state(), 10, nearest=True).items()}
    policy = MultimodalPolicy(envs.single_observation_space, envs.single_action_space,
                              PolicyConfig(aux_heads=True, nearest_keypoint=True))
    optimizer = torch.optim.Adam(policy.parameters(), lr=3e-3)
    first = None
    for _ in range(60):
        loss, terms = aux_loss(policy(obs, heads=("aux",)), targets)
        first = first if first is not None else {k: float(v) for k, v in terms.items()}
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    out = policy(obs, heads=("aux",))
    assert (out["aux_penguin"].argmax(dim=1) == targets["penguin"]).float().mean() > 0.9
    assert (out["aux_heading"].argmax(dim=1) == targets["heading"]).float().mean() > 0.9
    assert float(terms["train/aux_bearing_loss"]) < 0.7 * first["train/aux_bearing_loss"]
    assert float(terms["train/aux_gold_loss"]) < 0.5 * first["train/aux_gold_loss"]
    assert float(terms["train/aux_nearest_loss"]) < 0.5 * first["train/aux_nearest_loss"]


def test_problems_are_named() -> None:
    net = PolicyConfig(aux_heads=True)
    assert aux_problem("Penguin-Bare-v0", {}, net) is None
    assert "full view" in aux_problem("Penguin-Bare-v0", {"view": "ego"}, net)
    assert "size + 2 = 8" in aux_problem("Penguin-Bare-v0", {"size": 6}, net)
    assert "aux_heads=True" in aux_problem("Penguin-Bare-v0", {}, PolicyConfig())
    with pytest.raises(ValueError, match="aux_heads need keypoints >= 2"):
        PolicyConfig(aux_heads=True, keypoints=1)


def test_the_nearest_keypoint_discounts_each_cell_by_its_moves_from_the_penguin() -> None:
    from agents.fusion import KeyPoints

    keypoints = KeyPoints(channels=4, keypoints=3, grid=10, nearest=True)
    # Keypoint 0 on cell (x=2, y=5); keypoint 2 scores two cells alike: (4, 5), two moves away,
    # and (2, 0), five moves away (Chebyshev: diagonal moves count one).
    scores = torch.full((1, 100, 3), -50.0)
    scores[0, 5 * 10 + 2, 0] = 50.0
    scores[0, 5 * 10 + 4, 2] = scores[0, 0 * 10 + 2, 2] = 10.0
    keypoints.score.forward = lambda tokens: scores  # type: ignore[method-assign]
    _, out, _ = keypoints(torch.zeros(1, 100, 4))
    assert torch.equal(out[..., :2], scores[..., :2])  # the other maps are left alone
    rate = float(F.softplus(keypoints.nearness.detach()))
    assert rate == pytest.approx(1.0)
    assert float(out[0, 5 * 10 + 4, 2]) == pytest.approx(10.0 - 2 * rate, abs=1e-4)
    assert float(out[0, 0 * 10 + 2, 2]) == pytest.approx(10.0 - 5 * rate, abs=1e-4)
    assert float(out[0, 5 * 10 + 2, 2]) == pytest.approx(-50.0, abs=1e-4)  # the penguin's own cell
    with pytest.raises(ValueError, match="nearest_keypoint needs keypoints >= 3"):
        PolicyConfig(nearest_keypoint=True, keypoints=2)


@pytest.mark.parametrize(("heading", "expected"), [(0, (1.1111, 0.0)), (2, (0.0, -1.1111)), (4, (-1.1111, 0.0)),
                                                   (6, (0.0, 1.1111)), (1, (0.7857, -0.7857))])
def test_ego_keypoints_see_a_point_east_of_the_penguin_as_its_heading_turns(heading, expected) -> None:
    from agents.fusion import KeyPoints

    keypoints = KeyPoints(channels=4, keypoints=2, grid=10, ego=True)
    # Keypoint 0 on cell (x=2, y=5), keypoint 1 on (x=7, y=5): five cells east of it.
    scores = torch.full((1, 100, 2), -50.0)
    scores[0, 5 * 10 + 2, 0] = scores[0, 5 * 10 + 7, 1] = 50.0
    keypoints.score.forward = lambda tokens: scores  # type: ignore[method-assign]
    with torch.no_grad():
        keypoints.heading.weight.zero_()
        keypoints.heading.bias.fill_(-50.0)
        keypoints.heading.bias[heading] = 50.0
    out, _, heading_logits = keypoints(torch.zeros(1, 100, 4))
    # (x right, y down), the heading turned to point up: east ahead of an east-facing penguin
    # is (0, -d); facing north it is to the right, (d, 0); facing north-east, ahead-right.
    ego = out[0, -2:].tolist()
    assert ego == pytest.approx(list(expected), abs=1e-3)
    assert int(heading_logits.argmax()) == heading


@pytest.mark.parametrize("heading", range(8))
def test_the_ego_ring_reads_the_cell_the_game_moves_forward_into(heading: int) -> None:
    """With the keypoint on one cell and one heading, ring entry 0 is the cell FORWARD moves
    to, 4 the cell BACKWARD moves to, 2 the one to the right; cells beyond the map are zeros."""
    from agents.fusion import ego_ring
    from penguin_env.core import DX, DY

    g, x, y = 6, 2, 3
    tokens = torch.zeros(1, g, g, 2)
    for cy in range(g):
        for cx in range(g):
            tokens[0, cy, cx] = torch.tensor([cx + 1.0, cy + 1.0])  # a cell's features name it
    attention = torch.zeros(1, g, g)
    attention[0, y, x] = 1.0
    probabilities = F.one_hot(torch.tensor([heading]), 8).float()
    ring = ego_ring(attention, tokens, probabilities)[0]
    for k in range(8):
        d = (heading + k) % 8
        assert ring[k].tolist() == [x + DX[d] + 1.0, y + DY[d] + 1.0]
    corner = torch.zeros(1, g, g)
    corner[0, 0, 0] = 1.0
    north = F.one_hot(torch.tensor([0]), 8).float()
    edge = ego_ring(corner, tokens, north)[0]
    assert edge[0].tolist() == [0.0, 0.0] and edge[4].tolist() == [1.0, 2.0]


def test_the_ego_ring_mixes_headings_by_their_probabilities() -> None:
    from agents.fusion import ego_ring

    tokens = torch.randn(3, 5, 5, 4)
    attention = torch.softmax(torch.randn(3, 25), dim=1).reshape(3, 5, 5)
    probabilities = torch.softmax(torch.randn(3, 8), dim=1)
    mixed = ego_ring(attention, tokens, probabilities)
    each = torch.stack([ego_ring(attention, tokens, F.one_hot(torch.full((3,), h), 8).float()) for h in range(8)], 1)
    assert torch.allclose(mixed, torch.einsum("bh,bhkc->bkc", probabilities, each), atol=1e-6)


def test_a_network_with_the_ego_ring_moves_the_trunk_input_and_checks_its_needs() -> None:
    from agents.fusion import KeyPoints

    with pytest.raises(ValueError, match="ego_ring needs ego_keypoints"):
        PolicyConfig(ego_ring=True)
    plain = KeyPoints(channels=4, keypoints=2, grid=5, ego=True)
    ring = KeyPoints(channels=4, keypoints=2, grid=5, ego=True, ring=True)
    assert ring.output_size(4) == plain.output_size(4) + 8 * 4
    ring.load_state_dict(plain.state_dict())  # no new weights: only the trunk grows
    tokens = torch.randn(2, 25, 4)
    with_ring, _, _ = ring(tokens)
    without, _, _ = plain(tokens)
    assert with_ring.shape == (2, plain.output_size(4) + 32)
    assert torch.equal(with_ring[:, :without.shape[1]], without)
