"""Instruction grammar, the train/test paraphrase split, and the closed-vocabulary tokenizer.

Each task has six paraphrases: four for training and two held out for testing. Test phrasings
recombine words seen in training (the words that name the task are shared), so a policy can
in principle understand them; they measure generalisation to unseen *phrasings*, not to
unseen words.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from gymnasium import spaces

from penguin_env.core import CORNER_NAMES, Task

#: ``PHRASES[task]`` lists ``(template, split)``; corner templates contain ``{corner}``.
PHRASES: dict[Task, tuple[tuple[str, str], ...]] = {
    Task.COLLECT: (
        ("collect all the gold", "train"),
        ("pick up all the gold", "train"),
        ("gather every piece of gold", "train"),
        ("grab each gold piece", "train"),
        ("collect every piece of gold", "test"),
        ("pick up each gold piece", "test"),
    ),
    Task.FACE: (
        ("turn toward the gold", "train"),
        ("face the gold", "train"),
        ("look at the gold", "train"),
        ("turn to face the gold", "train"),
        ("face toward the gold", "test"),
        ("turn to look at the gold", "test"),
    ),
    Task.FACE_AWAY: (
        ("turn away from the gold", "train"),
        ("face away from the gold", "train"),
        ("look away from the gold", "train"),
        ("turn your back to the gold", "train"),
        ("turn to look away from the gold", "test"),
        ("face your back to the gold", "test"),
    ),
    Task.CORNER: (
        ("go to the {corner} corner", "train"),
        ("walk to the {corner} corner", "train"),
        ("move to the {corner} corner", "train"),
        ("stand in the {corner} corner", "train"),
        ("go stand in the {corner} corner", "test"),
        ("move to stand in the {corner} corner", "test"),
    ),
}

PARAPHRASE_SPLITS: tuple[str, ...] = ("train", "test", "all")
#: Characters an instruction may contain (the ``Text`` space's charset).
CHARSET = " abcdefghijklmnopqrstuvwxyz"
MAX_CHARS = 64
MAX_TOKENS = 12
PAD, UNK = "<pad>", "<unk>"


def phrase_indices(task: Task, split: str) -> tuple[int, ...]:
    """Indices into ``PHRASES[task]`` that belong to ``split`` (``"train"``, ``"test"`` or ``"all"``)."""
    if split not in PARAPHRASE_SPLITS:
        raise ValueError(f"paraphrases must be one of {PARAPHRASE_SPLITS}, got {split!r}")
    return tuple(i for i, (_, s) in enumerate(PHRASES[Task(task)]) if split == "all" or s == split)


def instruction(task: int, phrase: int, corner: int = 0) -> str:
    """The instruction string for a task, paraphrase index and (for corner tasks) corner."""
    template = PHRASES[Task(task)][phrase][0]
    return template.format(corner=CORNER_NAMES[corner])


def all_instructions(split: str = "all") -> list[str]:
    """Every distinct instruction string of a split, in a fixed order."""
    out: list[str] = []
    for task in Task:
        for i in phrase_indices(task, split):
            corners = range(len(CORNER_NAMES)) if task == Task.CORNER else (0,)
            out.extend(instruction(task, i, c) for c in corners)
    return out


def text_space() -> spaces.Text:
    """The ``Text`` space of the ``text`` observation (lower-case letters and spaces)."""
    return spaces.Text(min_length=1, max_length=MAX_CHARS, charset=CHARSET)


class Tokenizer:
    """Word-level tokenizer over the closed vocabulary of the instruction grammar.

    Id 0 is ``<pad>``, id 1 is ``<unk>``, then every word of every paraphrase in sorted order,
    so ids are stable across runs and machines. Sequences are padded or cut to ``max_length``.
    """

    def __init__(self, max_length: int = MAX_TOKENS) -> None:
        if max_length < 1:
            raise ValueError(f"max_length must be >= 1, got {max_length}")
        words = sorted({w for text in all_instructions("all") for w in text.split()})
        self.vocab: tuple[str, ...] = (PAD, UNK, *words)
        self.max_length = max_length
        self._ids = {w: i for i, w in enumerate(self.vocab)}
        self._cache: dict[str, np.ndarray] = {}

    @property
    def vocab_size(self) -> int:
        """Number of ids, including ``<pad>`` and ``<unk>``."""
        return len(self.vocab)

    @property
    def pad_id(self) -> int:
        return 0

    @property
    def unk_id(self) -> int:
        return 1

    def encode(self, text: str) -> np.ndarray:
        """Token ids of ``text`` as an int64 array of length ``max_length`` (unknown words -> ``<unk>``)."""
        cached = self._cache.get(text)
        if cached is None:
            ids = [self._ids.get(w, self.unk_id) for w in text.lower().split()][: self.max_length]
            cached = np.zeros(self.max_length, dtype=np.int64)
            cached[: len(ids)] = ids
            self._cache[text] = cached
        return cached.copy()

    def encode_batch(self, texts: Iterable[str]) -> np.ndarray:
        """``(len(texts), max_length)`` token ids."""
        rows = [self.encode(t) for t in texts]
        return np.stack(rows) if rows else np.zeros((0, self.max_length), np.int64)

    def decode(self, ids: Sequence[int] | np.ndarray) -> str:
        """The words of ``ids`` joined by spaces, padding dropped."""
        words = []
        for i in np.asarray(ids).tolist():
            if not 0 <= i < self.vocab_size:
                raise ValueError(
                    f"token id {i} is outside the vocabulary (0..{self.vocab_size - 1})"
                )
            if i != self.pad_id:
                words.append(self.vocab[i])
        return " ".join(words)

    def space(self) -> spaces.Box:
        """The ``Box`` space of encoded instructions."""
        return spaces.Box(0, self.vocab_size - 1, shape=(self.max_length,), dtype=np.int64)


def _check_grammar() -> None:
    for text in all_instructions("all"):
        assert len(text) <= MAX_CHARS and set(text) <= set(CHARSET), text
        assert len(text.split()) <= MAX_TOKENS, text
    # A test-only word would reach the policy as an embedding that training never updated.
    train_words = {w for text in all_instructions("train") for w in text.split()}
    unseen = {w for text in all_instructions("test") for w in text.split()} - train_words
    assert not unseen, f"test paraphrases use words never seen in training: {sorted(unseen)}"


_check_grammar()
