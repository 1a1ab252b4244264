"""One directory per run: ``runs_dir/run_name/`` with config.json, TensorBoard events, checkpoints, eval.csv."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import time
from pathlib import Path
from typing import Any

from agents.files import write_text_atomic


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
        """Write ``config.json`` (the config dataclass plus any extra sections), atomically."""
        data = {"config": to_jsonable(config), **{k: to_jsonable(v) for k, v in more.items()}}
        out = self.path / "config.json"
        write_text_atomic(out, json.dumps(data, indent=2, sort_keys=True) + "\n")
        return out

    def write_eval(self, rows: list[dict[str, Any]]) -> None:
        """Write ``eval.csv`` with ``rows`` (one per held-out evaluation), atomically: a reader
        sees the old file or the new one, never a torn row."""
        if not rows:
            self.eval_csv.unlink(missing_ok=True)
            return
        names = list(dict.fromkeys(k for row in rows for k in row))
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=names)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: to_jsonable(v) for k, v in row.items()})
        write_text_atomic(self.eval_csv, buffer.getvalue())

    def append_eval(self, row: dict[str, Any]) -> None:
        """Add one row to ``eval.csv`` (the file is rewritten atomically)."""
        self.write_eval([*self.read_eval(), row])

    def read_eval(self) -> list[dict[str, float]]:
        """Rows of ``eval.csv`` as numbers (empty if none yet). A last line without its newline
        (a write cut short by a crash) and rows with missing or unreadable fields are left out."""
        if not self.eval_csv.exists():
            return []
        text = self.eval_csv.read_text()
        if not text.endswith("\n"):
            text = text[: text.rfind("\n") + 1]
        rows = []
        for raw in csv.DictReader(io.StringIO(text)):
            try:
                rows.append({k: float(v) for k, v in raw.items() if k is not None})
            except (TypeError, ValueError):
                continue
        return rows
