"""One directory per run: ``runs/<name>/`` with config.json, TensorBoard events, checkpoints, eval.csv."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import time
from pathlib import Path
from typing import Any


def to_jsonable(value: Any) -> Any:
    """Dataclasses, paths, tuples and numpy scalars as plain JSON values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: to_jsonable(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    return value


class RunDir:
    """The files of one run.

    Layout::

        <root>/<name>/
            config.json          the trainer's config (and the policy's)
            events.out.tfevents.*   TensorBoard scalars (see algorithms.logger)
            checkpoints/last.pt  latest checkpoint (resume point), best.pt, final.pt
            eval.csv             one row per held-out evaluation

    Args:
        root: parent directory (default ``runs``).
        name: run name; None makes ``<prefix>-<YYYYmmdd-HHMMSS>``.
        prefix: used for generated names (e.g. ``"bc-Penguin-Gold-v0"``).
    """

    def __init__(
        self, root: str | os.PathLike = "runs", name: str | None = None, prefix: str = "run"
    ) -> None:
        self.name = name or f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}"
        self.path = Path(root) / self.name
        self.checkpoints = self.path / "checkpoints"
        self.checkpoints.mkdir(parents=True, exist_ok=True)

    @property
    def last_checkpoint(self) -> Path:
        """Where the resume checkpoint is written."""
        return self.checkpoints / "last.pt"

    @property
    def eval_csv(self) -> Path:
        return self.path / "eval.csv"

    def write_config(self, config: Any, **more: Any) -> Path:
        """Write ``config.json`` (the config dataclass plus any extra sections)."""
        data = {"config": to_jsonable(config), **{k: to_jsonable(v) for k, v in more.items()}}
        out = self.path / "config.json"
        tmp = out.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, out)
        return out

    def append_eval(self, row: dict[str, Any]) -> None:
        """Append one row to ``eval.csv`` (header written on first use)."""
        new = not self.eval_csv.exists()
        with self.eval_csv.open("a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow({k: to_jsonable(v) for k, v in row.items()})

    def read_eval(self) -> list[dict[str, str]]:
        """Rows of ``eval.csv`` (empty if none yet)."""
        if not self.eval_csv.exists():
            return []
        with self.eval_csv.open() as f:
            return list(csv.DictReader(f))
