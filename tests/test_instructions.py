"""Instructions: paraphrase split, the env's choice of phrasings, and the tokenizer."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from penguin_env import Tokenizer
from penguin_env.core import Task
from penguin_env.instructions import (
    CHARSET,
    PHRASES,
    all_instructions,
    phrase_indices,
    text_space,
)
from penguin_env.wrappers import TokenizeInstruction


def test_each_task_has_enough_paraphrases_and_a_disjoint_split() -> None:
    for task in Task:
        train, test = phrase_indices(task, "train"), phrase_indices(task, "test")
        assert len(PHRASES[task]) >= 4 and train and test
        assert set(train).isdisjoint(test) and set(train) | set(test) == set(
            phrase_indices(task, "all")
        )
    train, test = set(all_instructions("train")), set(all_instructions("test"))
    assert train and test and train.isdisjoint(test)
    assert train | test == set(all_instructions("all"))
    with pytest.raises(ValueError, match="paraphrases"):
        phrase_indices(Task.FACE, "dev")


def test_test_phrasings_use_only_training_words() -> None:
    train_words = {w for t in all_instructions("train") for w in t.split()}
    test_words = {w for t in all_instructions("test") for w in t.split()}
    assert test_words <= train_words


@pytest.mark.parametrize("split", ["train", "test", "all"])
def test_env_draws_from_its_split(split: str) -> None:
    allowed = set(all_instructions(split))
    env = gym.make("Penguin-Lang-v0", paraphrases=split)
    seen = set()
    for seed in range(300):
        obs, info = env.reset(seed=seed)
        assert obs["text"] == info["instruction"] and obs["text"] in allowed
        assert env.observation_space["text"].contains(obs["text"])
        seen.add(obs["text"])
    assert len(seen) > len(allowed) // 2


def test_instructions_fit_the_text_space() -> None:
    space = text_space()
    for text in all_instructions("all"):
        assert space.contains(text) and set(text) <= set(CHARSET)


def test_tokenizer_round_trip() -> None:
    tok = Tokenizer()
    assert tok.vocab[:2] == ("<pad>", "<unk>") and tok.pad_id == 0 and tok.unk_id == 1
    assert list(tok.vocab[2:]) == sorted(tok.vocab[2:]) and len(set(tok.vocab)) == tok.vocab_size
    for text in all_instructions("all"):
        ids = tok.encode(text)
        assert ids.shape == (tok.max_length,) and ids.dtype == np.int64
        assert tok.unk_id not in ids.tolist()
        assert tok.decode(ids) == text
        assert tok.space().contains(ids)
    batch = tok.encode_batch(all_instructions("train"))
    assert batch.shape == (len(all_instructions("train")), tok.max_length)


def test_tokenizer_unknown_words_and_lengths() -> None:
    tok = Tokenizer()
    ids = tok.encode("collect the shiny gold")
    assert tok.decode(ids) == "collect the <unk> gold"
    assert ids[4:].tolist() == [0] * (tok.max_length - 4)
    short = Tokenizer(max_length=3)
    assert short.decode(short.encode("go to the top left corner")) == "go to the"
    assert Tokenizer().vocab == tok.vocab  # ids are stable
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tok.decode([tok.vocab_size])
    with pytest.raises(ValueError, match="max_length"):
        Tokenizer(max_length=0)


def test_tokenize_wrapper() -> None:
    env = TokenizeInstruction(gym.make("Penguin-Lang-v0"))
    obs, info = env.reset(seed=0)
    assert isinstance(env.observation_space["text"], gym.spaces.Box)
    assert env.observation_space.contains(obs)
    assert env.tokenizer.decode(obs["text"]) == info["instruction"]
    obs, *_ = env.step(2)
    assert env.observation_space.contains(obs)
    with pytest.raises(TypeError, match="Dict observation"):
        TokenizeInstruction(gym.make("CartPole-v1"))
