"""Solver-trace datasets: generation, the file format and its errors, replay checks, overlay."""

from __future__ import annotations

import json
import pathlib
import shutil

import gymnasium as gym
import h5py
import numpy as np
import pytest

import fake_traces as ft
import penguin_env  # noqa: F401  (registers the envs)
from fake_traces import solver
from fake_traces.overlay import SolverPathOverlay, path_cells
from penguin_env.render import COLORS

KW = {"size": 5}


@pytest.fixture(scope="module")
def gold_traces(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    path = tmp_path_factory.mktemp("traces") / "gold.h5"
    return ft.generate(
        "Penguin-Gold-v0", 24, seed=3, path=path, epsilon=0.25, env_kwargs=KW, progress=False
    )


def test_round_trip(gold_traces: pathlib.Path) -> None:
    ds = ft.load(gold_traces, env_id="Penguin-Gold-v0")
    assert ds.num_episodes == 24 and ds.manifest["env_kwargs"] == KW
    assert ds.manifest["generator"]["epsilon"] == 0.25 and ds.manifest["generator"]["seed"] == 3
    t = ds.num_steps
    assert ds.images.shape == (t, 64, 64, 3) and ds.images.dtype == np.uint8
    assert ds.tokens.shape[0] == t and ds.tokens.dtype == np.int64
    for arr in (ds.labels, ds.actions, ds.episode_index, ds.step_index):
        assert arr.shape == (t,) and arr.dtype == np.int64
    assert ds.episode_lengths.sum() == t
    np.testing.assert_array_equal(
        ds.episode_starts, np.concatenate([[0], np.cumsum(ds.episode_lengths)[:-1]])
    )
    # epsilon took some non-solver actions, and labels stay optimal for the state seen
    assert (ds.actions != ds.labels).any()
    for row in range(0, t, 7):
        assert int(ds.labels[row]) in solver.best_actions(ds.state(row))
    assert (ds.episode_lengths >= ds.optimal_lengths).all()
    ft.verify(ds)


def test_epsilon_traces_still_succeed(gold_traces: pathlib.Path) -> None:
    ds = ft.load(gold_traces)
    assert ds.successes.all() and not ds.truncated.any()
    assert (ds.episode_lengths > ds.optimal_lengths).any()  # detours happened and were recovered
    last = ds.episode_starts + ds.episode_lengths - 1
    assert ds.terminated[last].all() and ds.terminated.sum() == ds.num_episodes


def test_stored_images_equal_rerendered(gold_traces: pathlib.Path) -> None:
    """Independent of verify(): replay with a fresh env and compare every frame."""
    ds = ft.load(gold_traces)
    env = gym.make("Penguin-Gold-v0", **KW)
    images = ds.images[()]
    for e in range(4):
        start, length = int(ds.episode_starts[e]), int(ds.episode_lengths[e])
        obs, _ = env.reset(seed=int(ds.seeds[e]))
        for i in range(length):
            np.testing.assert_array_equal(images[start + i], obs["image"])
            obs, *_ = env.step(int(ds.actions[start + i]))
        # successive frames differ where the penguin moved or turned: not one buffer stored repeatedly
        assert not all(np.array_equal(images[start], images[start + i]) for i in range(1, length))


def test_same_dataset_for_any_worker_count(
    gold_traces: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    other = ft.generate(
        "Penguin-Gold-v0",
        24,
        seed=3,
        path=tmp_path / "w2.h5",
        epsilon=0.25,
        env_kwargs=KW,
        workers=2,
        progress=False,
    )
    assert ft.load(other).manifest["checksums"] == ft.load(gold_traces).manifest["checksums"]
    changed = ft.generate(
        "Penguin-Gold-v0",
        24,
        seed=4,
        path=tmp_path / "s4.h5",
        epsilon=0.25,
        env_kwargs=KW,
        progress=False,
    )
    assert ft.load(changed).manifest["checksums"] != ft.load(gold_traces).manifest["checksums"]


@pytest.mark.parametrize("env_id", penguin_env.ENV_IDS)
def test_every_variant_generates_and_verifies(env_id: str, tmp_path: pathlib.Path) -> None:
    path = ft.generate(
        env_id, 6, seed=0, path=tmp_path / "t.h5", env_kwargs={"size": 4}, progress=False
    )
    ds = ft.load(path)
    assert ds.successes.all()
    np.testing.assert_array_equal(ds.episode_lengths, ds.optimal_lengths)  # epsilon=0: optimal
    np.testing.assert_array_equal(ds.labels, ds.actions)
    ft.verify(path)


def test_batches_cover_every_step_once(gold_traces: pathlib.Path) -> None:
    ds = ft.load(gold_traces)
    rng = np.random.default_rng(0)
    batches = list(ds.batches(16, rng))
    assert all(
        b["image"].shape[1:] == (64, 64, 3) and b["image"].dtype == np.uint8 for b in batches
    )
    assert all(b["text"].dtype == np.int64 and b["label"].dtype == np.int64 for b in batches)
    assert sum(len(b["label"]) for b in batches) == ds.num_steps
    assert all(len(b["label"]) == 16 for b in batches[:-1])
    # each (image, label) pair stays together: count pairs as multisets
    flat = np.concatenate([b["image"].reshape(len(b["image"]), -1) for b in batches])
    images = ds.images[()].reshape(ds.num_steps, -1)
    key = lambda imgs, labels: sorted(zip(map(bytes, imgs), labels.tolist(), strict=True))  # noqa: E731
    assert key(flat, np.concatenate([b["label"] for b in batches])) == key(images, ds.labels)
    ordered = list(ds.batches(16, rng, shuffle=False))
    np.testing.assert_array_equal(np.concatenate([b["label"] for b in ordered]), ds.labels)


def _copy(src: pathlib.Path, dst: pathlib.Path) -> pathlib.Path:
    shutil.copyfile(src, dst)
    return dst


def test_truncated_file(gold_traces: pathlib.Path, tmp_path: pathlib.Path) -> None:
    data = gold_traces.read_bytes()
    bad = tmp_path / "cut.h5"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(ft.TruncatedTraceError, match=r"cut\.h5.*truncated"):
        ft.load(bad)


def test_corrupt_file(gold_traces: pathlib.Path, tmp_path: pathlib.Path) -> None:
    data = bytearray(gold_traces.read_bytes())
    data[:8] = b"garbage!"  # the HDF5 signature
    bad = tmp_path / "corrupt.h5"
    bad.write_bytes(bytes(data))
    with pytest.raises(ft.CorruptTraceError, match=r"corrupt\.h5.*not a readable HDF5"):
        ft.load(bad)


def _edit_manifest(path: pathlib.Path, **changes: object) -> None:
    with h5py.File(path, "r+") as f:
        manifest = json.loads(f.attrs["manifest"])
        manifest.update(changes)
        f.attrs["manifest"] = json.dumps(manifest)


def test_wrong_version(gold_traces: pathlib.Path, tmp_path: pathlib.Path) -> None:
    bad = _copy(gold_traces, tmp_path / "v99.h5")
    _edit_manifest(bad, format_version=99)
    with pytest.raises(ft.TraceVersionError, match=r"v99\.h5.*format version 99"):
        ft.load(bad)


def test_wrong_env(gold_traces: pathlib.Path) -> None:
    with pytest.raises(ft.TraceEnvError, match="Penguin-Gold-v0.*Penguin-Walls-v0"):
        ft.load(gold_traces, env_id="Penguin-Walls-v0")


def test_tampered_data(gold_traces: pathlib.Path, tmp_path: pathlib.Path) -> None:
    bad = _copy(gold_traces, tmp_path / "tampered.h5")
    with h5py.File(bad, "r+") as f:
        f["steps"]["label"][3] = (f["steps"]["label"][3] + 1) % 5
    with pytest.raises(ft.TraceChecksumError, match=r"tampered\.h5.*steps/label"):
        ft.load(bad)
    # Without the checksum, the replay check still catches it.
    with pytest.raises(ft.TraceMismatchError, match="episode 0, step 3: label"):
        ft.verify(ft.load(bad, checksums=False))


def test_tampered_image_caught_by_verify(gold_traces: pathlib.Path, tmp_path: pathlib.Path) -> None:
    bad = _copy(gold_traces, tmp_path / "img.h5")
    with h5py.File(bad, "r+") as f:
        f["steps"]["image"][5, 10, 10] = 0
    with pytest.raises(ft.TraceChecksumError, match="steps/image"):
        ft.load(bad)
    with pytest.raises(ft.TraceMismatchError, match="step 5: image"):
        ft.verify(ft.load(bad, checksums=False))


def test_missing_and_misshapen_arrays(gold_traces: pathlib.Path, tmp_path: pathlib.Path) -> None:
    missing = _copy(gold_traces, tmp_path / "missing.h5")
    with h5py.File(missing, "r+") as f:
        del f["steps"]["reward"]
    with pytest.raises(ft.TraceSchemaError, match="'steps/reward' is missing"):
        ft.load(missing)
    dtype = _copy(gold_traces, tmp_path / "dtype.h5")
    with h5py.File(dtype, "r+") as f:
        labels = f["steps"]["label"][()]
        del f["steps"]["label"]
        f["steps"].create_dataset("label", data=labels.astype(np.int8))
    with pytest.raises(ft.TraceSchemaError, match="'steps/label' has dtype int8"):
        ft.load(dtype)
    no_manifest = _copy(gold_traces, tmp_path / "nomanifest.h5")
    with h5py.File(no_manifest, "r+") as f:
        del f.attrs["manifest"]
    with pytest.raises(ft.TraceSchemaError, match="no 'manifest'"):
        ft.load(no_manifest)


def test_failed_write_leaves_no_file(tmp_path: pathlib.Path) -> None:
    target = tmp_path / "never.h5"
    with pytest.raises(TypeError):
        ft.generate(
            "Penguin-Gold-v0",
            3,
            seed=0,
            path=target,
            env_kwargs={"no_such_kwarg": 1},
            progress=False,
        )
    with pytest.raises(RuntimeError), ft.dataset.TraceWriter(target, 64, 12, 3, 5) as writer:
        writer.append(
            "episodes",
            {
                k: np.zeros((1, *s))
                for k, s in [
                    ("seed", ()),
                    ("level", ()),
                    ("start", ()),
                    ("length", ()),
                    ("optimal_length", ()),
                    ("return", ()),
                    ("success", ()),
                    ("walls", (7, 7)),
                    ("gold", (3, 2)),
                    ("task", ()),
                    ("corner", ()),
                    ("phrase", ()),
                ]
            },
        )
        raise RuntimeError("crash mid-write")
    assert list(tmp_path.iterdir()) == []


def test_bad_generate_arguments(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ValueError, match="epsilon"):
        ft.generate("Penguin-Gold-v0", 2, 0, tmp_path / "x.h5", epsilon=1.5, progress=False)
    with pytest.raises(ValueError, match="env_id"):
        ft.generate("CartPole-v1", 2, 0, tmp_path / "x.h5", progress=False)


def test_overlay_draws_blue_path() -> None:
    env = SolverPathOverlay(gym.make("Penguin-Gold-v0", size=6, render_mode="rgb_array"))
    env.reset(seed=5)
    plain = env.unwrapped.render()
    frame = env.render()
    assert frame.shape == plain.shape
    blue = np.all(frame == COLORS["hint"], axis=2)
    assert blue.any() and not np.all(plain == COLORS["hint"], axis=2).any()
    cells = path_cells(env.unwrapped.game.state)
    cell = frame.shape[1] // 8
    for x, y in cells:  # the line passes through every visited cell's centre
        cy, cx = int((y + 1.5) * cell), int((x + 1.5) * cell)
        assert blue[cy - 2 : cy + 3, cx - 2 : cx + 3].any(), (x, y)
    assert blue[: 8 * cell].sum() == blue.sum()  # nothing drawn on the text band
    # the path shrinks as the solver's plan is followed, and vanishes at the end
    for a in solver.plan(env.unwrapped.get_state())[:-1]:
        env.step(a)
    env.step(solver.plan(env.unwrapped.get_state())[0])
    assert not np.all(env.render() == COLORS["hint"], axis=2).any()
