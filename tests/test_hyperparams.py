"""The per-(algorithm, env) settings files: every pair loads into a valid config, recipes apply,
and unknown keys are refused with the allowed names."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import penguin_env
from agents import PolicyConfig
from algorithms import registry
from experiments import presets
from experiments.errors import UsageError

ALGORITHMS = Path(__file__).resolve().parent.parent / "algorithms"


@pytest.mark.parametrize("algo", registry.ALGORITHMS)
@pytest.mark.parametrize("env_id", penguin_env.ENV_IDS)
def test_every_algorithm_and_env_builds_a_valid_config(algo, env_id) -> None:
    assert presets.hyperparams_path(algo).is_file()
    config = presets.build_config(algo, env_id)
    assert config.env_id == env_id
    for name, value in presets.preset_fields(algo, env_id).items():
        assert getattr(config, name) == value, name


def test_the_settings_files_hold_what_the_benchmarks_run() -> None:
    # A few values the benchmark reports were measured with, checked where they matter.
    bare = presets.build_config("ppo", "Penguin-Bare-v0")
    assert bare.curriculum is False and bare.aux_coef > 0 and bare.policy.ego_keypoints and bare.time_limit == 2
    assert presets.build_config("bc", "Penguin-Walls-v0").policy == PolicyConfig.preset("walls")
    dqn = presets.build_config("dqn", "Penguin-Bare-v0")
    assert dqn.gamma == 0.9 and dqn.final_weights == "best" and dqn.time_limit == 3 and dqn.eval_every > 0
    assert presets.build_config("grpo", "Penguin-Bare-v0").horizon_per_cell == 2
    assert presets.build_config("grpo", "Penguin-Gold-v0").horizon_per_cell == 4


def test_recipes_apply_their_default_then_their_env_entry() -> None:
    gold = presets.build_config("ppo", "Penguin-Gold-v0", recipe="finetune")
    lang = presets.build_config("ppo", "Penguin-Lang-v0", recipe="finetune")
    assert gold.value_warmup == lang.value_warmup == 20 and gold.time_limit == 10
    assert gold.word_dropout == 0.0 and lang.word_dropout == 0.35
    assert gold.aux_coef == 0.0  # a behaviour-cloned network has no auxiliary heads
    assert "finetune" in presets.recipes("grpo")
    with pytest.raises(UsageError, match=r"unknown recipe 'fast' for ppo; ppo's recipes: \['finetune'\]"):
        presets.build_config("ppo", "Penguin-Gold-v0", recipe="fast")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Penguin-Bare-v0:\n  learning_rat: 0.1\n", r"unknown config field 'learning_rat' for PPOConfig; allowed: \[.*'learning_rate'"),
        ("Penguin-Bear-v0:\n  curriculum: true\n", r"unknown env id 'Penguin-Bear-v0'"),
        ("Penguin-Bare-v0:\n  policy: {chanels: 8}\n", r"unknown network field 'policy.chanels'"),
        ("Penguin-Bare-v0:\n  policy: huge\n", r"unknown policy preset 'huge'"),
        ("recipes:\n  finetune:\n    Penguin-Gold-v0:\n      bc_coeff: 1\n", r"unknown config field 'bc_coeff'"),
    ],
)
def test_unknown_keys_are_refused_with_the_allowed_names(tmp_path, monkeypatch, text, message) -> None:
    (tmp_path / "ppo.yml").write_text(text)
    monkeypatch.setattr(presets, "HYPERPARAMS_DIR", tmp_path)
    presets._hyperparams.cache_clear()
    try:
        with pytest.raises(UsageError, match=message):
            presets.build_config("ppo", "Penguin-Bare-v0")
    finally:
        presets._hyperparams.cache_clear()


def test_trainer_modules_hold_defaults_only() -> None:
    # No per-env tables in the trainers: an env id in a trainer module is a default or a check.
    for path in sorted(ALGORITHMS.glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Dict):
                keys = [k.value for k in node.keys if isinstance(k, ast.Constant)]
                assert not any(isinstance(k, str) and k.startswith("Penguin-") for k in keys), path.name
