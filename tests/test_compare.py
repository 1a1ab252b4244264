"""``penguin compare`` end to end on a tiny seeded grid: files, reuse, --force, Ctrl-C, errors, Ray."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from algorithms.device import available_cores
from algorithms.envs import make_vec_env
from experiments import cli
from experiments.commands.compare import parse_overrides, resolve_parallelism
from experiments.compare.grid import INTERRUPTED_FILE, RESULT_FILE, Job, prepare
from experiments.presets import Budget
from tests.small_policy import SMALL_SETTINGS

ALGOS = ["bc", "ppo"]
SEEDS = 2
#: A grid that trains in seconds: a small network, 4,096 env steps, 20 evaluation levels.
TINY = [
    "--env", "Penguin-Bare-v0", "--seeds", str(SEEDS), "--env-steps", "4096", "--threads", "1",
    "--eval-episodes", "20", "--final-eval-episodes", "20",
    "--bc.total-steps", "30", "--bc.eval-every", "15", "--bc.num-envs", "16",
    "--ppo.num-envs", "16", "--ppo.num-steps", "32", "--ppo.eval-every", "2048",
    "--ppo.aux-coef", "0",  # the small network's map is not one cell per rendered cell
    *[arg for name, value in SMALL_SETTINGS.items() for arg in (f"--policy.{name.replace('_', '-')}", str(value))],
]


def compare(*args: str) -> int:
    return cli.main(["compare", *args])


def table_rows(markdown: str) -> dict[str, list[str]]:
    """Algorithm -> cells of the compare.md table."""
    rows = [line.strip("|").split("|") for line in markdown.splitlines() if line.startswith("| ")]
    return {cells[0].strip(): [c.strip() for c in cells] for cells in rows[1:]}


@pytest.fixture(scope="module")
def local_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("compare") / "local"
    assert compare("--algos", ",".join(ALGOS), *TINY, "--workers", "2", "--out", str(out)) == 0
    return out


@pytest.fixture(scope="module")
def local_report(local_out: Path) -> dict:
    """The local grid's compare.json, read before any test writes another report there."""
    return json.loads((local_out / "compare.json").read_text())


def test_files_and_table_match_the_json(local_out: Path, local_report: dict) -> None:
    report = local_report
    rows = table_rows((local_out / "compare.md").read_text())
    assert list(rows) == ALGOS == list(report["algorithms"])
    assert report["budget"] == "4,096 env steps" and "4,096 env steps" in (local_out / "compare.md").read_text()
    for algo, cells in rows.items():
        s = report["algorithms"][algo]
        assert len(s["per_seed"]) == SEEDS and [p["seed"] for p in s["per_seed"]] == list(range(SEEDS))
        for column, stat in ((2, s["greedy_success"]), (3, s["sampled_success"])):
            point, low, high = map(float, re.match(r"([\d.]+)% \[([\d.]+), ([\d.]+)\]", cells[column]).groups())
            assert point == pytest.approx(100 * stat["iqm"], abs=0.051)
            assert [low, high] == pytest.approx([100 * c for c in stat["ci95"]], abs=0.051)
            assert 0 <= low <= point <= high <= 100
        # IQM of two seeds is their mean
        greedy = [p["greedy_success"] for p in s["per_seed"]]
        assert s["greedy_success"]["iqm"] == pytest.approx(np.mean(greedy))
        assert float(cells[4]) == pytest.approx(s["spl"], abs=5.1e-4)  # printed to 3 decimals
        assert float(cells[5]) == pytest.approx(s["return"], abs=5.1e-3)  # printed to 2 decimals
        assert int(cells[6].replace(",", "")) == round(s["env_steps"]) >= 4096
        assert all(0 <= p["greedy_success"] <= 1 and p["wall_time_s"] > 0 for p in s["per_seed"])
    import imageio.v3 as iio

    png = report["curves_png"]
    image = iio.imread(local_out / png["file"])
    assert image.shape[:2] == (png["height"], png["width"])
    assert f"({png['width']}×{png['height']} px)" in (local_out / "compare.md").read_text()


def test_second_compare_reuses_and_force_retrains(local_out: Path, local_report: dict, capsys: pytest.CaptureFixture[str]) -> None:
    results = sorted(local_out.glob(f"runs/*/*/{RESULT_FILE}"))
    assert len(results) == len(ALGOS) * SEEDS
    before = {p: p.stat().st_mtime_ns for p in results}
    capsys.readouterr()
    assert compare("--algos", ",".join(ALGOS), *TINY, "--workers", "2", "--out", str(local_out)) == 0
    assert "4 finished and reused, 0 to train" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in results} == before
    # --force on a sub-grid (bc, seed 0) trains that run again and leaves the others alone
    forced = next(p for p in results if "/bc/s0-" in str(p))
    assert compare("--algos", "bc", *TINY, "--seeds", "1", "--force", "--out", str(local_out)) == 0
    assert "0 finished and reused, 1 to train" in capsys.readouterr().out
    after = {p: p.stat().st_mtime_ns for p in results}
    assert after[forced] != before[forced]
    assert {p: t for p, t in after.items() if p != forced} == {p: t for p, t in before.items() if p != forced}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--algos", "bc,nope", "--env", "Penguin-Bare-v0", "--budget", "1m"], "unknown algorithm(s) ['nope']; choose from ["),
        (["--algos", "bc", "--env", "Penguin-Bare-v0", "--budget", "ten minutes"], "malformed budget 'ten minutes'"),
        (["--algos", "bc", "--env", "Penguin-Bare-v0"], "give a budget"),
        (["--algos", "bc", "--budget", "1m"], "name an env with --env"),
        (["--algos", "bc", "--env", "Penguin-Bare-v0", "--budget", "1m", "--workers", str(available_cores() + 1),
          "--threads", "1"], f"exceeds the {available_cores()} cores available"),
        (["--algos", "bc", "--env", "Penguin-Bare-v0", "--budget", "1m", "--no-such-field", "1"],
         "unknown flag(s) ['--no-such-field']"),
        (["--algos", "ppo", "--env", "Penguin-Bare-v0", "--budget", "1m", "--ppo.num-env", "1"], "--ppo.num-envs"),
        (["--algos", "bc", "--env", "Penguin-Nope-v0", "--budget", "1m"], "unknown env id 'Penguin-Nope-v0'"),
        (["--algos", "ppo", "--env", "Penguin-Bare-v0", "--budget", "1m", "--ppo.gamma", "3"], "gamma must be in [0, 1]"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert compare(*args, "--out", str(tmp_path)) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "runs").exists()


def test_oversubscription_is_refused_and_defaults_fit() -> None:
    with pytest.raises(cli.UsageError, match="workers x threads <= 2"):
        resolve_parallelism("local", 2, 2, jobs=8, cores=2)
    assert resolve_parallelism("local", None, None, jobs=8, cores=2) == (2, 1)
    assert resolve_parallelism("local", None, None, jobs=1, cores=2) == (1, 2)
    assert resolve_parallelism("local", 1, None, jobs=8, cores=2) == (1, 2)
    assert resolve_parallelism("local", None, 2, jobs=8, cores=4) == (2, 2)


def test_train_flags_apply_to_every_algorithm_that_has_them_or_to_one() -> None:
    args = ["--eval-episodes", "20", "--ppo.num-envs", "16", "--dqn.batch-size", "8", "--policy.hidden", "64",
            "--device", "cpu", "--curriculum"]
    out = parse_overrides(args, ["bc", "ppo"], "Penguin-Bare-v0")
    assert {k: v for k, v in out["bc"].items() if k != "policy"} == {"eval_episodes": 20, "device": "cpu"}
    assert {k: v for k, v in out["ppo"].items() if k != "policy"} == {
        "eval_episodes": 20, "num_envs": 16, "device": "cpu", "curriculum": True}  # bc has no curriculum
    assert out["bc"]["policy"].hidden == out["ppo"]["policy"].hidden == 64  # dqn is not compared: ignored
    with pytest.raises(cli.UsageError, match="did you mean --ppo.num-envs"):
        parse_overrides(["--ppo.num-env", "1"], ["bc", "ppo"], "Penguin-Bare-v0")
    with pytest.raises(cli.UsageError, match=r"unknown flag\(s\) \['--gama'\]"):
        parse_overrides(["--gama", "0.9"], ["bc", "ppo"], "Penguin-Bare-v0")


def _job(tmp_path: Path, budget: Budget) -> Job:
    from algorithms.bc import BCConfig

    return Job("bc", 0, "Penguin-Bare-v0", budget, {}, "k", tmp_path / "run", BCConfig())


def test_partial_runs_are_resumed_or_trained_again(tmp_path: Path) -> None:
    steps, minutes = _job(tmp_path, Budget(env_steps=100)), _job(tmp_path, Budget(minutes=1.0))
    (steps.run_dir / "checkpoints").mkdir(parents=True)
    (steps.run_dir / "checkpoints" / "last.pt").write_bytes(b"x")
    (steps.run_dir / "eval.csv").write_text("step\n1\n")
    assert prepare(steps, force=False) == ("train", None) and not steps.run_dir.exists()  # crashed: again
    # A stopped run whose last.pt is no checkpoint: reported, and trained from scratch.
    (steps.run_dir / "checkpoints").mkdir(parents=True)
    (steps.run_dir / "checkpoints" / "last.pt").write_bytes(b"x")
    (steps.run_dir / INTERRUPTED_FILE).write_text(json.dumps({"key": "k"}))
    action, note = prepare(steps, force=False)
    assert action == "train" and "is not a readable checkpoint" in note and not steps.run_dir.exists()
    # ... or one of another trainer (a policy checkpoint with no resume entry, from bc's)
    (steps.run_dir / "checkpoints").mkdir(parents=True)
    import agents
    from tests.small_policy import small_policy

    env = make_vec_env("Penguin-Bare-v0", 1, {})
    policy = agents.MultimodalPolicy(env.single_observation_space, env.single_action_space, small_policy())
    agents.save(policy, steps.run_dir / "checkpoints" / "last.pt", trainer="ppo")
    (steps.run_dir / INTERRUPTED_FILE).write_text(json.dumps({"key": "k"}))
    action, note = prepare(steps, force=False)
    assert action == "train" and "not a resume checkpoint of this version's bc trainer" in note
    (steps.run_dir / INTERRUPTED_FILE).parent.mkdir(parents=True)
    (steps.run_dir / INTERRUPTED_FILE).write_text(json.dumps({"key": "other"}))
    assert "belongs to another config" in prepare(steps, force=False)[1]
    assert prepare(minutes, force=False) == ("train", None)  # a time limit would restart: no resume
    (steps.run_dir / "checkpoints").mkdir(parents=True)
    (steps.run_dir / RESULT_FILE).write_text(json.dumps({"status": "finished", "key": "k"}))
    assert prepare(steps, force=False) == ("reuse", None)
    (steps.run_dir / RESULT_FILE).write_text(json.dumps({"status": "finished", "key": "other"}))
    assert prepare(steps, force=False) == ("train", None)


def wait_for_files(out: Path, pattern: str, count: int, proc: subprocess.Popen, timeout: float = 120.0) -> list[Path]:
    """The files matching ``pattern`` under ``out`` once there are ``count`` (the test fails if
    the command ends or the time runs out first)."""
    deadline = time.monotonic() + timeout
    while len(found := sorted(out.glob(pattern))) < count:
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        assert time.monotonic() < deadline, f"no {pattern} under {out} after {timeout:.0f} s"
        time.sleep(0.1)
    return found


def test_ctrl_c_keeps_finished_runs_and_the_same_command_continues(tmp_path: Path) -> None:
    """SIGINT while a run trains: exit 130 with how to continue; the run resumes next time."""
    out = tmp_path / "c"
    args = [sys.executable, "-m", "experiments.cli", "compare", "--algos", "ppo", *TINY, "--seeds", "1",
            "--env-steps", "200000", "--out", str(out)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    wait_for_files(out, "runs/ppo/*/eval.csv", 1, proc)  # training has started
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "to continue, run the same command again" in stderr and "Traceback" not in stderr
    run = next(out.glob("runs/ppo/*"))
    assert (run / INTERRUPTED_FILE).exists() and not (run / RESULT_FILE).exists()
    # the same command resumes the stopped run (a smaller budget would make a new run)
    job = Job("ppo", 0, "Penguin-Bare-v0", Budget(env_steps=200000), {}, run.name.rsplit("-", 1)[1], run, None)
    assert prepare(job, force=False) == ("resume", None)


def test_ray_backend_gives_the_local_numbers(local_report: dict, tmp_path: Path) -> None:
    pytest.importorskip("ray")
    out = tmp_path / "ray"
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    proc = subprocess.run(
        [sys.executable, "-m", "experiments.cli", "compare", "--algos", ",".join(ALGOS), *TINY,
         "--backend", "ray", "--out", str(out)],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    local = local_report["algorithms"]
    remote = json.loads((out / "compare.json").read_text())["algorithms"]
    assert list(table_rows((out / "compare.md").read_text())) == ALGOS
    for algo in ALGOS:
        keys = ("seed", "greedy_success", "sampled_success", "spl", "return", "env_steps", "threads")
        assert [{k: p[k] for k in keys} for p in remote[algo]["per_seed"]] == [
            {k: p[k] for k in keys} for p in local[algo]["per_seed"]
        ]


def test_a_second_comparison_on_the_same_out_is_refused_or_waits(
    local_out: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; "
         "from experiments.compare.lock import OutputLock; "
         "lock = OutputLock(Path(sys.argv[1]), command='penguin compare --the-first-one').__enter__(); "
         "print('locked', flush=True); time.sleep(4)", str(local_out)],
        stdout=subprocess.PIPE, text=True,
    )
    assert holder.stdout.readline().strip() == "locked"
    capsys.readouterr()
    assert compare("--algos", ",".join(ALGOS), *TINY, "--out", str(local_out)) == 2
    err = capsys.readouterr().err
    assert f"is in use by another penguin compare (pid {holder.pid} on" in err and "--the-first-one" in err
    assert "--wait" in err and err.count("\n") == 1
    # --wait starts once the first one is done (here: every run is reused)
    assert compare("--algos", ",".join(ALGOS), *TINY, "--out", str(local_out), "--wait") == 0
    captured = capsys.readouterr()
    assert f"waiting for pid {holder.pid}" in captured.err and "4 finished and reused" in captured.out
    assert holder.wait(timeout=30) == 0


def test_a_stopped_run_with_a_corrupt_checkpoint_is_retrained_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "c"
    grid = ["--algos", "ppo", *TINY, "--seeds", "1", "--out", str(out)]
    assert compare(*grid) == 0
    run = next(out.glob("runs/ppo/*"))
    (run / RESULT_FILE).unlink()  # as if it had stopped: interrupted.json, and a damaged last.pt
    (run / INTERRUPTED_FILE).write_text(json.dumps({"key": run.name.rsplit("-", 1)[1]}))
    (run / "checkpoints" / "last.pt").write_bytes(b"truncated")
    capsys.readouterr()
    assert compare(*grid) == 0
    printed = capsys.readouterr().out
    assert "ppo seed 0: cannot resume (" in printed and "training it from scratch" in printed
    assert "0 finished and reused, 1 to train (0 resumed)" in printed
    assert json.loads((run / RESULT_FILE).read_text())["status"] == "finished"


def test_a_failing_worker_is_reported_and_a_rerun_trains_only_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corrupt = tmp_path / "traces.h5"
    corrupt.write_bytes(b"not an hdf5 file")  # passes the config's check (it exists), fails in the worker
    grid = ["--algos", "bc,ppo", *TINY, "--seeds", "1", "--bc.dataset", str(corrupt), "--out", str(tmp_path / "c")]
    assert compare(*grid) == 1
    printed = capsys.readouterr()
    assert "bc seed 0: FAILED (exit status 1:" in printed.out and "ppo seed 0: greedy" in printed.out
    assert "1 run(s) failed" in printed.err
    assert compare(*grid) == 1
    assert "1 finished and reused, 1 to train" in capsys.readouterr().out


def test_a_killed_worker_is_reported_and_its_run_starts_again(tmp_path: Path) -> None:
    out = tmp_path / "c"
    args = [sys.executable, "-m", "experiments.cli", "compare", "--algos", "ppo", *TINY, "--seeds", "2",
            "--workers", "2", "--env-steps", "2000000", "--out", str(out)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    wait_for_files(out, "runs/ppo/*/eval.csv", 2, proc)  # both runs train
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    workers = [int(pid) for pid in children if "spawn_main" in Path(f"/proc/{pid}/cmdline").read_text()]
    assert len(workers) == 2, children
    os.kill(workers[0], signal.SIGKILL)
    time.sleep(2)
    proc.send_signal(signal.SIGINT)  # stop the other one (it saves)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode != 0 and "FAILED (exit status -9" in stdout, stdout + stderr
    stopped = [run for run in out.glob("runs/ppo/*") if (run / INTERRUPTED_FILE).exists()]
    killed = [run for run in out.glob("runs/ppo/*") if not (run / INTERRUPTED_FILE).exists()]
    assert len(stopped) == len(killed) == 1
    for run, expected in ((stopped[0], "resume"), (killed[0], "train")):
        seed = int(run.name[1:].split("-")[0])
        job = Job("ppo", seed, "Penguin-Bare-v0", Budget(env_steps=2000000), {}, run.name.rsplit("-", 1)[1], run, None)
        assert prepare(job, force=False)[0] == expected


def test_ray_tasks_that_raise_or_are_cancelled_are_reported(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    from experiments.commands.compare import parse_overrides
    from experiments.compare.backends import RayBackend
    from experiments.compare.grid import make_jobs

    corrupt = tmp_path / "traces.h5"
    corrupt.write_bytes(b"not an hdf5 file")
    sets = parse_overrides([*TINY[8:], "--bc.dataset", str(corrupt)], ["bc", "ppo"], "Penguin-Bare-v0")
    bad, slow = make_jobs(["bc", "ppo"], "Penguin-Bare-v0", [0], Budget(env_steps=2_000_000), sets, 1, tmp_path / "out")
    backend = RayBackend(threads=1, workers=None, local_cores=2)
    backend.connect()
    ended: dict[str, str] = {}

    def stop_when_the_slow_one_trains(job: Job, status: str, detail: object) -> None:
        ended[job.algo] = status
        if job.algo == "bc":  # the failing task is back: interrupt the driver, as Ctrl-C would
            deadline = time.monotonic() + 120
            while not (slow.run_dir / "eval.csv").exists() and time.monotonic() < deadline:
                time.sleep(0.2)
            os.kill(os.getpid(), signal.SIGINT)

    # A SIGINT handler left by other code must not swallow the Ctrl-C that stops the comparison.
    previous = signal.signal(signal.SIGINT, lambda signum, frame: None)
    try:
        outcome = backend.run([(bad, False), (slow, False)], stop_when_the_slow_one_trains)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert list(outcome.failed) == [bad] and outcome.failed[bad]
    assert outcome.stopped and outcome.interrupted == [slow] and ended == {"bc": "failed", "ppo": "interrupted"}


def test_a_full_disk_while_writing_the_report_keeps_the_previous_one(
    local_out: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import errno

    from agents.files import FileWriter

    before = (local_out / "compare.json").read_bytes()
    write = FileWriter.write

    def full(self: FileWriter, data) -> int:
        if self.path.name == "compare.json":
            raise OSError(errno.ENOSPC, "No space left on device")
        return write(self, data)

    monkeypatch.setattr(FileWriter, "write", full)
    capsys.readouterr()
    assert compare("--algos", ",".join(ALGOS), *TINY, "--out", str(local_out)) == cli.EXIT_DISK_FULL
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "while writing compare.json" in err and "Traceback" not in err
    assert (local_out / "compare.json").read_bytes() == before
    assert not list(local_out.glob(".compare.json*"))
