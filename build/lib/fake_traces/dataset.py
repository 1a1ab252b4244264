"""The on-disk trace format (one HDF5 file per dataset) and its validating loader.

Format ``penguin-traces`` version 1. One ``.h5`` file holds:

* attribute ``manifest`` on the root: a JSON object with ``format``, ``format_version``,
  ``env_id``, ``env_kwargs``, ``generator`` (seed, epsilon, num_episodes), ``counts``
  (``num_steps``, ``num_episodes``), ``shapes``, ``versions`` (packages that wrote it) and
  ``checksums`` (sha256 of every array's C-order bytes, keyed by ``group/name``).
* group ``steps``, one row per step ``t`` (the observation *before* the action):
  ``image`` (T, S, S, 3) uint8 (lzf-compressed, lossless, chunked by steps), ``tokens`` (T, L)
  int64 instruction token ids, ``label`` (T,) int64 the solver's optimal action (lowest id)
  for the state seen, ``action`` (T,) int64 the action taken, ``reward`` (T,) float64,
  ``terminated``/``truncated`` (T,) bool, ``episode`` (T,) and ``step`` (T,) int64, and the
  changing part of the game state: ``pos`` (T, 2), ``heading`` (T,), ``gold_left`` (T, K).
* group ``episodes``, one row per episode: ``seed`` (the ``reset`` seed), ``level``,
  ``start`` (first step row), ``length``, ``optimal_length`` (solver distance at reset),
  ``return``, ``success``, and the fixed part of the game state: ``walls``, ``gold``, ``task``,
  ``corner``, ``phrase``.

Files are written to a temporary name in the target directory and renamed into place, and
the manifest (with the checksums) is written last, so an interrupted write never leaves a
file that loads.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import platform
from collections.abc import Iterator
from typing import Any

import h5py
import numpy as np

from penguin_env.core import TASK_NAMES, GameState
from penguin_env.state import to_dict

FORMAT = "penguin-traces"
FORMAT_VERSION = 1
STEP_KEYS = (
    "image",
    "tokens",
    "label",
    "action",
    "reward",
    "terminated",
    "truncated",
    "episode",
    "step",
    "pos",
    "heading",
    "gold_left",
)
EPISODE_KEYS = (
    "seed",
    "level",
    "start",
    "length",
    "optimal_length",
    "return",
    "success",
    "walls",
    "gold",
    "task",
    "corner",
    "phrase",
)
_DTYPES = {
    "image": np.uint8, "tokens": np.int64, "label": np.int64, "action": np.int64,
    "reward": np.float64, "terminated": np.bool_, "truncated": np.bool_, "episode": np.int64,
    "step": np.int64, "pos": np.int64, "heading": np.int64, "gold_left": np.bool_,
    "seed": np.int64, "level": np.int64, "start": np.int64, "length": np.int64,
    "optimal_length": np.int64, "return": np.float64, "success": np.bool_, "walls": np.bool_,
    "gold": np.int64, "task": np.int64, "corner": np.int64, "phrase": np.int64,
}  # fmt: skip
IMAGE_CHUNK = 256  #: steps per HDF5 chunk of images (the unit of lazy reading)


class TraceFormatError(ValueError):
    """A trace file cannot be used; the message names the file and what is wrong."""


class CorruptTraceError(TraceFormatError):
    """The file is not a readable HDF5 trace file (overwritten header, wrong file type)."""


class TruncatedTraceError(TraceFormatError):
    """The file is shorter than what its header says was written (an interrupted copy)."""


class TraceVersionError(TraceFormatError):
    """The file is a trace file of another format version."""


class TraceEnvError(TraceFormatError):
    """The file was generated on a different env than the one asked for."""


class TraceSchemaError(TraceFormatError):
    """A manifest key or array is missing, or an array has the wrong shape or dtype."""


class TraceChecksumError(TraceFormatError):
    """An array's sha256 differs from the manifest: the file was modified after writing."""


class TraceMismatchError(TraceFormatError):
    """Replaying an episode did not reproduce the stored data (see :func:`fake_traces.verify`)."""


def package_versions() -> dict[str, str]:
    """Versions of what produced a file (recorded in the manifest, for provenance only)."""
    import gymnasium

    import penguin_env

    return {
        "penguin_env": penguin_env.__version__,
        "numpy": np.__version__,
        "h5py": h5py.__version__,
        "gymnasium": gymnasium.__version__,
        "python": platform.python_version(),
    }


# -- writing -------------------------------------------------------------------------------
class TraceWriter:
    """Appends blocks of steps and episodes to a temporary HDF5 file, then publishes it.

    Use as a context manager; :meth:`finish` writes the manifest and renames the file into
    place. Leaving the block without :meth:`finish` (an exception) deletes the temporary file.
    """

    def __init__(
        self, path: str | os.PathLike, image_size: int, num_tokens: int, num_gold: int, size: int
    ) -> None:
        self.path = pathlib.Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        self.file = h5py.File(self.tmp, "w")
        s, cells = image_size, size + 2
        tail = {
            "image": (s, s, 3), "tokens": (num_tokens,), "pos": (2,), "gold_left": (num_gold,),
            "walls": (cells, cells), "gold": (num_gold, 2),
        }  # fmt: skip
        self.hashes = {}
        for group, keys in (("steps", STEP_KEYS), ("episodes", EPISODE_KEYS)):
            g = self.file.create_group(group)
            for key in keys:
                shape = tail.get(key, ())
                opts: dict[str, Any] = {}
                if key == "image":  # lossless, fast; chunks of whole frames for lazy reading
                    opts = {"chunks": (IMAGE_CHUNK, *shape), "compression": "lzf"}
                g.create_dataset(
                    key, shape=(0, *shape), maxshape=(None, *shape), dtype=_DTYPES[key], **opts
                )
                self.hashes[f"{group}/{key}"] = hashlib.sha256()
        self.counts = {"steps": 0, "episodes": 0}
        self._done = False

    def append(self, group: str, arrays: dict[str, np.ndarray]) -> None:
        """Append rows to every array of ``group`` (``"steps"`` or ``"episodes"``)."""
        keys = STEP_KEYS if group == "steps" else EPISODE_KEYS
        n = len(arrays[keys[0]])
        start = self.counts[group]
        for key in keys:
            data = np.ascontiguousarray(arrays[key], dtype=_DTYPES[key])
            if len(data) != n:
                raise ValueError(f"{group}/{key} has {len(data)} rows, expected {n}")
            ds = self.file[group][key]
            ds.resize(start + n, axis=0)
            ds[start : start + n] = data
            self.hashes[f"{group}/{key}"].update(data.tobytes())
        self.counts[group] = start + n

    def finish(self, manifest: dict[str, Any]) -> pathlib.Path:
        """Write the manifest (counts, shapes and checksums added) and rename into place."""
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            **manifest,
            "counts": {"num_steps": self.counts["steps"], "num_episodes": self.counts["episodes"]},
            "shapes": {
                f"{g}/{k}": list(self.file[g][k].shape)
                for g in ("steps", "episodes")
                for k in self.file[g]
            },
            "versions": package_versions(),
            "checksums": {name: h.hexdigest() for name, h in self.hashes.items()},
        }
        self.file.attrs["manifest"] = json.dumps(manifest, sort_keys=True)
        self.file.close()
        os.replace(self.tmp, self.path)
        self._done = True
        return self.path

    def __enter__(self) -> TraceWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._done:
            if self.file.id.valid:
                self.file.close()
            self.tmp.unlink(missing_ok=True)


# -- reading -------------------------------------------------------------------------------
class TraceDataset:
    """A validated trace file, read lazily.

    Small per-step arrays (labels, actions, rewards, flags, state fields) are loaded into
    memory; :attr:`images` and :attr:`tokens` stay on disk as h5py datasets and are read in
    chunks, so a million 64x64 steps never need to fit in memory.

    Attributes:
        path: the file.
        manifest: the parsed JSON manifest.
    """

    def __init__(self, path: pathlib.Path, file: h5py.File, manifest: dict[str, Any]) -> None:
        self.path, self.file, self.manifest = path, file, manifest
        steps, eps = file["steps"], file["episodes"]
        small = [k for k in STEP_KEYS if k not in ("image", "tokens")]
        self._steps = {k: steps[k][()] for k in small}
        self._episodes = {k: eps[k][()] for k in EPISODE_KEYS}

    # -- sizes and arrays ---------------------------------------------------------------
    @property
    def env_id(self) -> str:
        return str(self.manifest["env_id"])

    @property
    def env_kwargs(self) -> dict[str, Any]:
        return dict(self.manifest["env_kwargs"])

    @property
    def num_steps(self) -> int:
        return int(self.manifest["counts"]["num_steps"])

    @property
    def num_episodes(self) -> int:
        return int(self.manifest["counts"]["num_episodes"])

    def __len__(self) -> int:
        return self.num_steps

    @property
    def images(self) -> h5py.Dataset:
        """``(T, S, S, 3)`` uint8 observations, lazily read (slice it: ``ds.images[a:b]``)."""
        return self.file["steps"]["image"]

    @property
    def tokens(self) -> h5py.Dataset:
        """``(T, L)`` int64 instruction token ids, lazily read."""
        return self.file["steps"]["tokens"]

    labels = property(lambda self: self._steps["label"], doc="``(T,)`` solver's optimal action.")
    actions = property(lambda self: self._steps["action"], doc="``(T,)`` action taken.")
    rewards = property(lambda self: self._steps["reward"], doc="``(T,)`` reward of the step.")
    terminated = property(
        lambda self: self._steps["terminated"], doc="``(T,)`` episode terminated."
    )
    truncated = property(lambda self: self._steps["truncated"], doc="``(T,)`` episode truncated.")
    episode_index = property(
        lambda self: self._steps["episode"], doc="``(T,)`` episode of each step."
    )
    step_index = property(lambda self: self._steps["step"], doc="``(T,)`` step within its episode.")
    episode_starts = property(lambda self: self._episodes["start"], doc="``(E,)`` first step row.")
    episode_lengths = property(
        lambda self: self._episodes["length"], doc="``(E,)`` steps per episode."
    )
    seeds = property(
        lambda self: self._episodes["seed"], doc="``(E,)`` reset seed of each episode."
    )
    levels = property(
        lambda self: self._episodes["level"], doc="``(E,)`` level id of each episode."
    )
    optimal_lengths = property(
        lambda self: self._episodes["optimal_length"], doc="``(E,)`` solver distance at reset."
    )
    returns = property(lambda self: self._episodes["return"], doc="``(E,)`` episode returns.")
    successes = property(
        lambda self: self._episodes["success"], doc="``(E,)`` whether the episode succeeded."
    )

    def game_state(self, t: int) -> GameState:
        """The full game state before step row ``t``, as a batch-of-one core state."""
        e = int(self._steps["episode"][t])
        ep, st = self._episodes, self._steps
        one = lambda a: np.asarray(a)[None].copy()  # noqa: E731
        return GameState(
            walls=one(ep["walls"][e]), pos=one(st["pos"][t]), heading=one(st["heading"][t]),
            gold=one(ep["gold"][e]), gold_left=one(st["gold_left"][t]), task=one(ep["task"][e]),
            corner=one(ep["corner"][e]), phrase=one(ep["phrase"][e]), steps=one(st["step"][t]),
            level=one(ep["level"][e]),
        )  # fmt: skip

    def state(self, t: int) -> dict[str, Any]:
        """The state dict (as ``env.unwrapped.get_state()`` without ``episode``) before row ``t``."""
        return to_dict(self.game_state(t))

    def task_names(self) -> list[str]:
        """Task name of each episode."""
        return [TASK_NAMES[int(t)] for t in self._episodes["task"]]

    # -- training -----------------------------------------------------------------------
    def batches(
        self,
        batch_size: int,
        rng: np.random.Generator,
        shuffle: bool = True,
        drop_last: bool = False,
    ) -> Iterator[dict[str, np.ndarray]]:
        """One pass over the steps in batches of ``image`` (B,S,S,3) uint8, ``text`` (B,L) int64
        and ``label`` (B,) int64.

        Shuffling reads whole image chunks in random order and shuffles within a window of
        several chunks, so every image is read from disk once per pass and memory stays bounded.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        n = self.num_steps
        chunk = self.images.chunks[0] if self.images.chunks else IMAGE_CHUNK
        starts = np.arange(0, n, chunk)
        if shuffle:
            starts = rng.permutation(starts)
        window = max(4, -(-4 * batch_size // chunk))  # chunks mixed together per window
        labels = self._steps["label"]
        carry: list[dict[str, np.ndarray]] = []
        carried = 0
        for w in range(0, len(starts), window):
            parts = carry
            for s in sorted(starts[w : w + window].tolist()):
                e = min(s + chunk, n)
                parts.append(
                    {"image": self.images[s:e], "text": self.tokens[s:e], "label": labels[s:e]}
                )
            pool = {k: np.concatenate([p[k] for p in parts]) for k in ("image", "text", "label")}
            size = len(pool["label"])
            order = rng.permutation(size) if shuffle else np.arange(size)
            full = size // batch_size * batch_size
            for b in range(0, full, batch_size):
                idx = order[b : b + batch_size]
                yield {k: v[idx] for k, v in pool.items()}
            rest = order[full:]
            carry = [{k: v[rest] for k, v in pool.items()}] if rest.size else []
            carried = rest.size
        if carried and not drop_last:
            yield carry[0]

    def close(self) -> None:
        """Close the underlying file."""
        self.file.close()

    def __enter__(self) -> TraceDataset:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"TraceDataset({str(self.path)!r}, env_id={self.env_id!r}, episodes={self.num_episodes}, steps={self.num_steps})"


def _open(path: pathlib.Path) -> h5py.File:
    if not path.exists():
        raise FileNotFoundError(
            f"{path}: no such trace file; create one with fake_traces.generate()"
        )
    try:
        return h5py.File(path, "r")
    except OSError as err:
        text = str(err)
        if "truncated" in text:
            raise TruncatedTraceError(
                f"{path}: the file is truncated (shorter than its HDF5 header says: {text}); "
                "it was cut off while copying or writing, regenerate or copy it again"
            ) from None
        raise CorruptTraceError(
            f"{path}: not a readable HDF5 trace file ({text}); the file is corrupt or of another type"
        ) from None


def _manifest(path: pathlib.Path, file: h5py.File) -> dict[str, Any]:
    raw = file.attrs.get("manifest")
    if raw is None:
        raise TraceSchemaError(
            f"{path}: no 'manifest' attribute; this is an HDF5 file but not a {FORMAT} file "
            "(or its write was interrupted)"
        )
    try:
        manifest = json.loads(raw)
    except (TypeError, ValueError) as err:
        raise CorruptTraceError(f"{path}: the manifest is not valid JSON ({err})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise TraceSchemaError(
            f"{path}: manifest 'format' is {manifest.get('format')!r}, expected {FORMAT!r}"
        )
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise TraceVersionError(
            f"{path}: format version {version!r} is not supported by this fake_traces "
            f"(reads version {FORMAT_VERSION}); regenerate the dataset or use a matching release"
        )
    missing = [
        k for k in ("env_id", "env_kwargs", "generator", "counts", "checksums") if k not in manifest
    ]
    if missing:
        raise TraceSchemaError(f"{path}: manifest is missing key(s) {missing}")
    return manifest


def _check_arrays(path: pathlib.Path, file: h5py.File, manifest: dict[str, Any]) -> None:
    counts = manifest["counts"]
    rows = {"steps": counts.get("num_steps"), "episodes": counts.get("num_episodes")}
    for group, keys in (("steps", STEP_KEYS), ("episodes", EPISODE_KEYS)):
        if group not in file:
            raise TraceSchemaError(f"{path}: group '{group}' is missing")
        for key in keys:
            name = f"{group}/{key}"
            if key not in file[group]:
                raise TraceSchemaError(f"{path}: array '{name}' is missing")
            ds = file[group][key]
            if ds.dtype != np.dtype(_DTYPES[key]):
                raise TraceSchemaError(
                    f"{path}: array '{name}' has dtype {ds.dtype}, expected {np.dtype(_DTYPES[key])}"
                )
            if ds.shape[0] != rows[group]:
                raise TraceSchemaError(
                    f"{path}: array '{name}' has {ds.shape[0]} rows, manifest says {rows[group]}"
                )
            expected = manifest.get("shapes", {}).get(name)
            if expected is not None and list(ds.shape) != list(expected):
                raise TraceSchemaError(
                    f"{path}: array '{name}' has shape {ds.shape}, manifest says {tuple(expected)}"
                )
    image = file["steps"]["image"]
    if image.ndim != 4 or image.shape[3] != 3 or image.shape[1] != image.shape[2]:
        raise TraceSchemaError(f"{path}: 'steps/image' must be (T, S, S, 3), got {image.shape}")


def _check_checksums(path: pathlib.Path, file: h5py.File, manifest: dict[str, Any]) -> None:
    sums = manifest["checksums"]
    for group, keys in (("steps", STEP_KEYS), ("episodes", EPISODE_KEYS)):
        for key in keys:
            name = f"{group}/{key}"
            if name not in sums:
                raise TraceSchemaError(f"{path}: manifest has no checksum for '{name}'")
            ds, h = file[group][key], hashlib.sha256()
            step = IMAGE_CHUNK * 16
            try:
                for s in range(0, ds.shape[0], step):
                    h.update(np.ascontiguousarray(ds[s : s + step]).tobytes())
            except OSError as err:  # a damaged compressed chunk
                raise CorruptTraceError(f"{path}: array '{name}' cannot be read ({err})") from None
            if h.hexdigest() != sums[name]:
                raise TraceChecksumError(
                    f"{path}: checksum mismatch in '{name}': the data was modified or damaged after "
                    "it was written; regenerate the dataset"
                )


def load(
    path: str | os.PathLike, env_id: str | None = None, checksums: bool = True
) -> TraceDataset:
    """Open and validate a trace file.

    Args:
        path: the ``.h5`` file written by :func:`fake_traces.generate`.
        env_id: if given, the dataset must have been generated on this env.
        checksums: verify every array's sha256 (reads the whole file once; pass False to skip
            for very large datasets you trust).

    Raises:
        FileNotFoundError: no file at ``path``.
        TraceFormatError: a subclass saying what is wrong (corrupt, truncated, wrong version,
            wrong env, missing keys, bad shapes or dtypes, checksum mismatch).
    """
    path = pathlib.Path(path)
    file = _open(path)
    try:
        manifest = _manifest(path, file)
        if env_id is not None and manifest["env_id"] != env_id:
            raise TraceEnvError(
                f"{path}: generated on {manifest['env_id']!r}, but {env_id!r} was asked for"
            )
        _check_arrays(path, file, manifest)
        if checksums:
            _check_checksums(path, file, manifest)
        return TraceDataset(path, file, manifest)
    except BaseException:
        file.close()
        raise
