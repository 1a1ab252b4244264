"""The ``penguin`` command line end to end on tiny budgets: train, eval, and one-line user errors."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import imageio.v3 as iio
import pytest

import agents
import penguin_env  # noqa: F401  (registers the ids)
from algorithms import registry
from experiments import video
from experiments.cli import main
from experiments.commands import train
from experiments.commands.evaluate import wilson_interval
from penguin_env.wrappers import TokenizeInstruction

#: Flags that make a PPO run take a second or two.
TINY_PPO = [
    "--num-envs", "8", "--num-steps", "32", "--num-minibatches", "2", "--num-epochs", "1",
    "--eval-episodes", "4", "--final-eval-episodes", "4", "--policy.hidden", "32",
    "--no-progress", "--threads", "1",
]  # fmt: skip


@pytest.fixture(scope="module")
def ppo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One tiny PPO run through ``penguin train``: ``(run directory, stdout)``."""
    root = tmp_path_factory.mktemp("runs")
    capture = tmp_path_factory.mktemp("out") / "stdout.txt"
    argv = ["train", "--algo", "ppo", "--env", "Penguin-Bare-v0", "--env-steps", "256",
            "--out", str(root), "--seed", "3", *TINY_PPO]  # fmt: skip
    import contextlib

    with capture.open("w") as f, contextlib.redirect_stdout(f):
        assert main(argv) == 0
    runs = list((root / "Penguin-Bare-v0" / "ppo").iterdir())
    assert len(runs) == 1
    return runs[0], capture.read_text()


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


# -- train ------------------------------------------------------------------------------------
def test_train_writes_the_run(ppo_run: tuple[Path, str]) -> None:
    run, stdout = ppo_run
    assert run.name.startswith("seed3-")
    lines = stdout.strip().splitlines()
    assert lines[0].startswith("TensorBoard logs:") and str(run) in lines[0]
    assert "test-level success" in stdout and "256 env steps" in stdout
    config = json.loads((run / "config.json").read_text())["config"]
    assert config["seed"] == 3 and config["total_env_steps"] == 256
    assert config["policy"]["hidden"] == 32 and config["num_envs"] == 8
    assert config["curriculum"] is False and config["aux_coef"] == 1.0  # the (ppo, Bare) preset
    assert config["runs_dir"] == str(run.parent)
    with (run / "eval.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert rows and 0.0 <= float(rows[-1]["success_rate"]) <= 1.0
    assert {"last.pt", "final.pt"} <= {p.name for p in (run / "checkpoints").iterdir()}  # no validation: no best.pt
    assert list(run.glob("events.out.tfevents.*"))
    assert agents.read(run / "checkpoints" / "final.pt")["extra"]["env_id"] == "Penguin-Bare-v0"


def test_config_file_then_budget_then_flags(tmp_path: Path) -> None:
    yaml_file = tmp_path / "ppo.yaml"
    yaml_file.write_text(
        "learning_rate: 3e-4\n"  # YAML reads this as a string; the loader makes it a float
        "num-envs: 8\n"
        "curriculum: false\n"
        "total_env_steps: 1000\n"
        "env_kwargs: {size: 6}\n"
        "aux_coef: 0\n"  # the auxiliary targets need policy.grid = size + 2
        "policy:\n  hidden: 48\n  fusion: concat\n"
    )
    argv = ["--algo", "ppo", "--env", "Penguin-Bare-v0", "--config", str(yaml_file),
            "--out", str(tmp_path / "runs")]  # fmt: skip
    from_file = train.resolve(argv)
    assert from_file.learning_rate == 3e-4 and from_file.num_envs == 8
    assert from_file.curriculum is False  # the file beats the preset
    assert from_file.total_env_steps == 1000 and from_file.env_kwargs == {"size": 6}
    assert from_file.policy.hidden == 48 and from_file.policy.fusion == "concat"
    assert Path(from_file.runs_dir) == tmp_path / "runs" / "Penguin-Bare-v0" / "ppo"

    flags = train.resolve(
        [*argv, "--env-steps", "512", "--learning-rate", "5e-4", "--policy.hidden", "24",
         "--env-kwargs", "size=5", "image_size=40"]
    )  # fmt: skip
    assert flags.env_kwargs == {"size": 5, "image_size": 40}
    assert flags.learning_rate == 5e-4 and flags.policy.hidden == 24  # flags beat the file
    assert flags.total_env_steps == 512  # the budget beats the file
    assert flags.num_envs == 8 and flags.policy.fusion == "concat"  # the rest stays

    toml_file = tmp_path / "ppo.toml"
    toml_file.write_text("learning_rate = 2e-4\nseed = 7\n[policy]\nhidden = 40\n")
    toml = train.resolve(["--algo", "ppo", "--env", "Penguin-Gold-v0", "--config", str(toml_file), "--seed", "9"])
    assert toml.learning_rate == 2e-4 and toml.policy.hidden == 40 and toml.seed == 9
    assert toml.env_id == "Penguin-Gold-v0"


def test_presets_and_budgets() -> None:
    bc = train.resolve(["--algo", "bc", "--env", "Penguin-Bare-v0"])
    assert bc.data_steps == 30_000 and bc.total_steps == 3_000  # hyperparams/bc.yml's Bare entry
    timed = train.resolve(["--algo", "bc", "--env", "Penguin-Gold-v0", "--budget", "90s"])
    assert timed.time_limit == pytest.approx(1.5)
    assert train.resolve(["--algo", "ppo", "--env", "Penguin-Gold-v0"]).curriculum is False


def test_train_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["train", "--help"], capsys)
    assert code == 0 and "--algo" in out
    assert all(name in out for name in registry.ALGORITHMS)
    code, out, _ = run_cli(["train", "--algo", "ppo", "--env", "Penguin-Bare-v0", "--help"], capsys)
    assert code == 0
    for flag in ("--env-steps", "--policy.hidden", "--init-from", "--seed", "--budget", "--out"):
        assert flag in out
    # grouped: the command's own flags, the run's, the algorithm's, the network's
    positions = [out.index(title) for title in ("command options", "run options", "algorithm options", "policy options")]
    assert positions == sorted(positions)
    assert "Importance-ratio clipping range." in out  # the field's docstring is its help
    assert "``" not in out and ":class:" not in out  # plain text, no reST
    for old in ("--total-env-steps", "--time-limit", "--runs-dir", "--env-id"):  # no second name for a flag
        assert old not in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--algo", "ppo"], "name an env with --env, one of ['Penguin-Bare-v0'"),
        (["train", "--algo", "nope", "--env", "Penguin-Bare-v0"], "unknown algorithm 'nope'; choose from"),
        (["train", "--algo", "ppo", "--env", "Penguin-Bare-v0", "--learning-rat", "1"], "did you mean --learning-rate?"),
        (["train", "--algo", "ppo", "--env", "Penguin-Bare-v0", "--gamma", "2"], "gamma must be in [0, 1], got 2.0"),
        (["train", "--algo", "ppo", "--env", "Penguin-Bare-v0", "--budget", "soon"], "malformed budget 'soon'"),
        (["eval", "missing.pt"], "no checkpoint at missing.pt"),
        (["eval", "missing.pt", "--levels", "train"], "--levels"),
        (["play", "--env", "Penguin-Nope-v0"], "unknown env id 'Penguin-Nope-v0'"),
        (["traces", "info"], "traces"),
        (["bench", "--env", "Penguin-Nope-v0"], "unknown env id 'Penguin-Nope-v0'"),
        (["compare", "--algos", "ppo", "--budget", "1m"], "name an env with --env"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv, message, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(argv, capsys)
    assert code == 2 and message in err and err.count("\n") == 1 and "Traceback" not in err, err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["--version"], capsys)
    assert code == 0 and out.startswith("penguin ")


def test_no_flag_has_two_names() -> None:
    """Every command's flags, read from its parser: one name per flag (no alias pairs)."""
    from experiments.commands import bench, compare, evaluate, play, traces
    from experiments.commands.flags import known_flags

    parsers = [compare.CompareFlags, evaluate.EvalFlags, play.PlayFlags, bench.BenchFlags, traces.Generate,
               traces.Info, *(train.cli_class(registry.get(a)[0]) for a in registry.ALGORITHMS)]
    for cls in parsers:
        flags = [f for f in known_flags(cls) if not f.startswith("--no-")]
        assert len(flags) == len(set(flags)), cls
        aliases = {("--env", "--env-id"), ("--budget", "--time-limit"), ("--env-steps", "--total-env-steps"),
                   ("--out", "--runs-dir")}
        for a, b in aliases:
            assert not (a in flags and b in flags), (cls, a, b)


#: Per-trainer flags that keep a smoke run to seconds (trainers not listed need none).
SMOKE_FLAGS: dict[str, list[str]] = {
    "bc": ["--total-steps", "3", "--batch-size", "16", "--dagger-rounds", "0", "--num-envs", "4"],
    "ppo": ["--num-envs", "8", "--num-steps", "8", "--num-minibatches", "2"],
    "sb3-ppo": ["--num-envs", "8", "--n-steps", "8", "--batch-size", "32"],
}


@pytest.mark.parametrize("algo", registry.ALGORITHMS)
def test_every_registered_trainer_runs(
    algo: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["train", "--algo", algo, "--env", "Penguin-Bare-v0", "--env-steps", "64",
            "--out", str(tmp_path), "--run-name", "smoke", "--eval-episodes", "2",
            "--final-eval-episodes", "2", "--policy.hidden", "32", "--threads", "1",
            "--no-progress", "--no-tensorboard", *SMOKE_FLAGS.get(algo, [])]  # fmt: skip
    code, out, err = run_cli(argv, capsys)
    assert code == 0, err
    run = tmp_path / "Penguin-Bare-v0" / algo / "smoke"
    assert out.splitlines()[0].startswith(f"TensorBoard logs: {run}")
    assert f"{algo}: test-level success" in out
    assert (run / "checkpoints" / "final.pt").is_file()
    assert json.loads((run / "config.json").read_text())["config"]["policy"]["hidden"] == 32
    # The same run name again is refused (not overwritten) unless resuming.
    code, _, err = run_cli(argv, capsys)
    assert code == 2 and "already holds a run; add --resume" in err


# -- eval -------------------------------------------------------------------------------------
def test_wilson_interval() -> None:
    low, high = wilson_interval(0, 20)
    assert low == 0.0 and 0.1 < high < 0.2
    low, high = wilson_interval(50, 100)
    assert low == pytest.approx(1 - high) and 0.40 < low < 0.41
    assert wilson_interval(10, 10)[1] == 1.0


@pytest.mark.parametrize("sample", [False, True])
def test_eval_json(ppo_run: tuple[Path, str], capsys: pytest.CaptureFixture[str], sample: bool) -> None:
    ckpt = ppo_run[0] / "checkpoints" / "final.pt"
    argv = ["eval", str(ckpt), "--episodes", "12", "--json"] + (["--sample"] if sample else [])
    code, out, _ = run_cli(argv, capsys)
    assert code == 0
    result = json.loads(out.strip().splitlines()[-1])
    assert result["env_id"] == "Penguin-Bare-v0" and result["episodes"] == 12
    assert result["start_level"] == 2_000_000  # the test levels, nothing tuned on them
    assert result["mode"] == ("sampled" if sample else "greedy")
    for key in ("success", "spl"):
        assert 0.0 <= result[key] <= 1.0
    low, high = result["success_ci95"]
    assert 0.0 <= low <= result["success"] <= high <= 1.0 and high > low
    assert 0.0 <= result["mean_return"] <= 1.0 and result["mean_length"] >= 1
    assert "95% CI" in out and "Wilson" in out
    (row,) = result["by_task"].values()  # Bare has one task, collect
    assert row["episodes"] == 12 and row["success_rate"] == pytest.approx(result["success"])
    failures = round((1 - result["success"]) * 12)
    assert row["failures_at_time_limit"] + row["failures_ended_early"] == failures
    assert 0 <= row["failures_pressing_into_a_wall"] <= row["failures_at_time_limit"]
    assert "by task" in out and "collect" in out


def test_eval_validation_levels(ppo_run: tuple[Path, str], capsys: pytest.CaptureFixture[str]) -> None:
    ckpt = ppo_run[0] / "checkpoints" / "final.pt"
    code, out, _ = run_cli(["eval", str(ckpt), "--episodes", "5", "--levels", "validation", "--json"], capsys)
    assert code == 0 and json.loads(out.strip().splitlines()[-1])["start_level"] == 1_000_000


def test_eval_video(ppo_run: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ckpt = ppo_run[0] / "checkpoints" / "final.pt"
    gif = tmp_path / "play.gif"
    code, out, _ = run_cli(
        ["eval", str(ckpt), "--episodes", "4", "--video", str(gif), "--video-episodes", "2"], capsys
    )
    assert code == 0
    frames = iio.imread(gif, index=None)
    line = next(x for x in out.splitlines() if "video" in x)
    width, height = (int(v) for v in line.rsplit(" ", 1)[1].rstrip(")").split("x"))
    assert frames.shape[1:] == (height, width, 3) and len(frames) >= 4
    # The first frame is the env's render of the first held-out level under a title band, with
    # the solver's path drawn in the hint colour.
    env = TokenizeInstruction(
        gym.make("Penguin-Bare-v0", render_mode="rgb_array", paraphrases="test")
    )
    env.reset(options={"level": 1_000_000})
    room = env.render()
    assert frames.shape[2] == room.shape[1] and frames.shape[1] > room.shape[0]
    blue = (frames[0, :, :, 2].astype(int) - frames[0, :, :, 0]) > 120
    assert blue.any()


# -- errors -----------------------------------------------------------------------------------
@pytest.fixture
def foreign_checkpoint(tmp_path: Path) -> Path:
    """A valid checkpoint for 48x48 images that does not say which env it came from."""
    env = TokenizeInstruction(gym.make("Penguin-Bare-v0", image_size=48))
    policy = agents.MultimodalPolicy(
        env.observation_space, env.action_space, agents.PolicyConfig(hidden=16)
    )
    return agents.save(policy, tmp_path / "foreign.pt", trainer="test")


def bad_checkpoint(tmp_path: Path) -> Path:
    path = tmp_path / "corrupt.pt"
    path.write_bytes(b"not a checkpoint")
    return path


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--algo", "nope"], "unknown algorithm 'nope'; choose from ['bc', 'ppo'"),
        (["train"], "name an algorithm with --algo, one of ['bc', 'ppo'"),
        (["train", "--algo", "ppo", "--env", "Penguin-Nope-v0"], "unknown env id 'Penguin-Nope-v0'; choose from ['Penguin-Bare-v0'"),
        (["train", "--algo", "ppo", "--env", "Penguin-Bare-v0", "--learning-rat", "3"], "unknown flag(s) ['--learning-rat']; did you mean --learning-rate"),
        (["train", "--algo", "ppo", "--env", "Penguin-Bare-v0", "--seed", "abc"], "--seed"),
        (["train", "--algo", "ppo", "--env", "Penguin-Bare-v0", "--num-envs", "0"], "num_envs must be >= 1"),
        (["train", "--algo", "ppo", "--env", "Penguin-Bare-v0", "--budget", "10x"], "malformed budget '10x'; write a number and a unit: 90s, 10m or 1.5h"),
        (["train", "--algo", "ppo", "--env", "Penguin-Bare-v0", "--init-from", "missing.pt"], "init_from: no checkpoint at missing.pt"),
        (["train", "--algo", "ppo", "--env", "Penguin-Bare-v0", "--config", "BADFIELD"], "unknown config field 'learning_rat' for PPOConfig; allowed: ["),
        (["train", "--algo", "ppo", "--env", "Penguin-Bare-v0", "--config", "BADVALUE"], "num_envs: expected an integer, got 'many'"),
        (["train", "--algo", "ppo", "--env", "Penguin-Bare-v0", "--config", "missing.yaml"], "--config: no file at missing.yaml"),
        (["eval", "missing.pt"], "no checkpoint at missing.pt"),
        (["eval", "CORRUPT"], "is not a readable Penguin policy checkpoint"),
        (["eval", "FOREIGN"], "does not say which env it was trained on; pass --env, one of"),
        (["eval", "FOREIGN", "--env", "Penguin-Gold-v0"], "does not fit the spaces of Penguin-Gold-v0: observation_space.image.shape: checkpoint has [48, 48, 3], Penguin-Gold-v0 gives [64, 64, 3]"),
        (["eval", "FOREIGN", "--env", "Penguin-Nope-v0"], "unknown env id 'Penguin-Nope-v0'"),
        (["eval", "FOREIGN", "--episodes", "0"], "--episodes must be >= 1"),
        (["eval", "FOREIGN", "--video", "out.avi"], "--video must end in one of ['.gif', '.mp4']"),
    ],
)  # fmt: skip
def test_user_errors_exit_2_with_one_line(
    argv: list[str],
    message: str,
    tmp_path: Path,
    foreign_checkpoint: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad_field.toml").write_text("learning_rat = 0.1\n")
    (tmp_path / "bad_value.yaml").write_text("num_envs: many\n")
    subst = {
        "CORRUPT": str(bad_checkpoint(tmp_path)),
        "FOREIGN": str(foreign_checkpoint),
        "BADFIELD": "bad_field.toml",
        "BADVALUE": "bad_value.yaml",
    }
    code, out, err = run_cli([subst.get(a, a) for a in argv], capsys)
    assert code == 2, out
    assert err.count("\n") == 1 and err.startswith(f"penguin {argv[0]}: error: "), err
    assert message in err
    assert "Traceback" not in err and not list(tmp_path.glob("runs"))


@pytest.mark.skipif(video.ffmpeg_plugin() is None, reason="no ffmpeg plugin for imageio")
def test_eval_mp4(ppo_run: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ckpt = ppo_run[0] / "checkpoints" / "final.pt"
    mp4 = tmp_path / "play.mp4"
    code, _, err = run_cli(["eval", str(ckpt), "--episodes", "2", "--video", str(mp4)], capsys)
    assert code == 0, err
    frames = iio.imread(mp4, index=None)
    assert frames.ndim == 4 and frames.shape[-1] == 3 and len(frames) >= 2


def test_mp4_without_ffmpeg_is_a_clear_error(
    ppo_run: tuple[Path, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(video, "ffmpeg_plugin", lambda: None)
    ckpt = ppo_run[0] / "checkpoints" / "final.pt"
    code, _, err = run_cli(["eval", str(ckpt), "--video", "out.mp4"], capsys)
    assert code == 2 and "needs an ffmpeg plugin" in err and "pip install imageio-ffmpeg" in err


def test_console_script(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "penguin"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "experiments.cli"]
    ok = subprocess.run([*command, "--help"], capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0 and "train" in ok.stdout and "eval" in ok.stdout
    bad = subprocess.run(
        [*command, "eval", str(tmp_path / "none.pt")], capture_output=True, text=True, timeout=120
    )
    assert bad.returncode == 2
    assert bad.stderr.strip() == f"penguin eval: error: no checkpoint at {tmp_path / 'none.pt'}"
