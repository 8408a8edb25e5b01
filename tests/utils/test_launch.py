"""utils/launch.py (local and slurm backends, the latter with a fake sbatch) and cmd.sh."""
import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LAUNCH = REPO / "utils" / "launch.py"

FAKE_SBATCH = """#!{python}
# Fake sbatch: records its arguments, runs the job script once per array index with SLURM_ARRAY_TASK_ID
# set (or once without it), writes the --output files, exits non-zero if any task failed.
import json, os, re, subprocess, sys
args = sys.argv[1:]
with open(os.environ["FAKE_SBATCH_RECORD"], "a") as f:
    f.write(json.dumps(args) + "\\n")
options = {{}}
for a in args[:-1]:
    if a.startswith("--") and "=" in a:
        k, v = a[2:].split("=", 1)
        options[k] = v
assert "--wait" in args
script = args[-1]
if "array" in options:
    m = re.fullmatch(r"(\\d+)-(\\d+)(%\\d+)?", options["array"])
    indices = [str(i) for i in range(int(m.group(1)), int(m.group(2)) + 1)]
else:
    indices = [None]
print("Submitted batch job 4242", flush=True)
worst = 0
for i in indices:
    env = dict(os.environ)
    env.pop("SLURM_ARRAY_TASK_ID", None)
    if i is not None:
        env["SLURM_ARRAY_TASK_ID"] = i
    out = options["output"].replace("%a", i or "4294967294")
    with open(out, "w") as o:
        rc = subprocess.call(["bash", script], env=env, stdout=o, stderr=subprocess.STDOUT, cwd="/")
    worst = max(worst, rc)
sys.exit(worst)
"""


def launch(*args, cwd, env=None, check=None):
    proc = subprocess.run([str(LAUNCH), *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=60)
    if check is not None:
        assert proc.returncode == check, proc.stderr
    return proc


def body(log):
    """The job's output lines, without the header and footer."""
    return [line for line in Path(log).read_text().splitlines() if not line.startswith("# ")]


def assert_header_footer(log, code=0, threads=1):
    lines = Path(log).read_text().splitlines()
    assert lines[0].startswith("# ")
    assert re.fullmatch(r"# Started at .+ on \S+", lines[1])
    assert re.fullmatch(rf"# Accounting: time=\d+ threads={threads}", lines[-2])
    assert re.fullmatch(rf"# Ended \(code {code}\) at .+, elapsed time \d+ seconds", lines[-1])


# ------------------------------------------------------------------------------------------------ local
def test_local_job_range_writes_one_log_per_job(tmp_path):
    launch("JOB=1:3", "exp/log/echo.JOB.log", "echo", "job", "JOB", "of", "out.JOB", cwd=tmp_path, check=0)
    for i in (1, 2, 3):
        log = tmp_path / f"exp/log/echo.{i}.log"
        assert_header_footer(log)
        assert Path(log).read_text().splitlines()[0] == f"# echo job {i} of out.{i}"
        assert body(log) == [f"job {i} of out.{i}"]
    assert not (tmp_path / "exp/log/echo.JOB.log").exists()


def test_local_without_range_runs_once_without_substitution(tmp_path):
    launch("--num_threads", "4", "log/one.log", "echo", "JOB", cwd=tmp_path, check=0)
    assert body(tmp_path / "log/one.log") == ["JOB"]
    assert_header_footer(tmp_path / "log/one.log", threads=4)


def test_local_args_with_spaces_and_quotes_survive(tmp_path):
    args = ["a b", "it's", '"double"', "$HOME", "*", "x;y", ""]
    launch("log/args.log", sys.executable, "-c", "import json, sys; print(json.dumps(sys.argv[1:]))", *args,
           cwd=tmp_path, check=0)
    assert json.loads(body(tmp_path / "log/args.log")[0]) == args


def test_local_single_argument_is_a_shell_command_and_operators_stay_operators(tmp_path):
    launch("JOB=1:2", "log/pipe.JOB.log", "echo JOB-x | tr x y > out.JOB.txt", cwd=tmp_path, check=0)
    assert (tmp_path / "out.2.txt").read_text() == "2-y\n"
    launch("log/op.log", "echo", "a b", "|", "tr", "a", "z", cwd=tmp_path, check=0)
    assert body(tmp_path / "log/op.log") == ["z b"]


def test_local_failure_exits_nonzero_and_names_the_log(tmp_path):
    proc = launch("JOB=1:4", "log/f.JOB.log", "echo JOB; [ JOB -lt 3 ]", cwd=tmp_path)
    assert proc.returncode != 0
    assert "launch.py: 2 / 4 failed, log is in log/f.3.log" in proc.stderr
    assert_header_footer(tmp_path / "log/f.1.log", code=0)
    assert_header_footer(tmp_path / "log/f.3.log", code=1)
    assert_header_footer(tmp_path / "log/f.4.log", code=1)


def test_local_max_jobs_run(tmp_path):
    # A job takes a lock directory for a while; an overlapping job finds it taken and fails.
    job = "if mkdir lock; then sleep 0.4; rmdir lock; else exit 3; fi"
    launch("--max_jobs_run", "1", "JOB=1:3", "log/s.JOB.log", job, cwd=tmp_path, check=0)
    proc = launch("--max-jobs-run", "3", "JOB=1:3", "log/p.JOB.log", job, cwd=tmp_path)
    assert proc.returncode != 0 and "failed" in proc.stderr  # they did run at the same time


def test_kaldi_style_options_before_and_after_the_range(tmp_path):
    launch("--gpu", "1", "log/train.log", "echo", "trained", cwd=tmp_path, check=0)
    assert body(tmp_path / "log/train.log") == ["trained"]
    launch("--mem", "2G", "JOB=2:3", "--gpu=0", "--time", "1:00:00", "log/d.JOB.log", "echo", "JOB",
           cwd=tmp_path, check=0)
    assert body(tmp_path / "log/d.3.log") == ["3"]
    assert not (tmp_path / "log/d.1.log").exists()


def test_usage_errors(tmp_path):
    assert launch("log/x.log", cwd=tmp_path).returncode == 2
    assert launch("--gpu", "x", "log/x.log", "true", cwd=tmp_path).returncode == 2
    assert launch("--backend", "sge", "log/x.log", "true", cwd=tmp_path).returncode == 2
    proc = launch("--num_nodes", "2", "log/x.log", "true", cwd=tmp_path)
    assert proc.returncode == 2 and "slurm" in proc.stderr


# ------------------------------------------------------------------------------------------------ slurm
@pytest.fixture
def fake_slurm(tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    sbatch = bindir / "sbatch"
    sbatch.write_text(FAKE_SBATCH.format(python=sys.executable))
    sbatch.chmod(sbatch.stat().st_mode | stat.S_IXUSR)
    record = tmp_path / "sbatch_calls.jsonl"
    env = dict(os.environ, PATH=f"{bindir}{os.pathsep}{os.environ['PATH']}", FAKE_SBATCH_RECORD=str(record))
    work = tmp_path / "work"
    (work / "conf").mkdir(parents=True)
    (work / "conf/slurm.conf").write_text((REPO / "conf/slurm.conf").read_text()
                                          + "sbatch = --partition=test --account 'my project'\n"
                                          + "time = --time={time}  # extra option\n")

    def calls():
        return [json.loads(line) for line in record.read_text().splitlines()]

    return work, env, calls


def test_slurm_array_job(fake_slurm):
    work, env, calls = fake_slurm
    proc = launch("--backend", "slurm", "--config", "conf/slurm.conf", "--mem", "4G", "--gpu", "2",
                  "--num_threads", "3", "--time", "2:00:00", "JOB=1:3", "exp/log/dec.JOB.log",
                  "echo", "index JOB", "it's", cwd=work, env=env, check=0)
    assert "Submitted batch job 4242" in proc.stderr
    (args,) = calls()
    qdir = work / "exp/log/q"
    assert args[-1] == str(qdir / "dec.sh")
    for flag in ("--wait", "--export=ALL", "--partition=test", "--account", "my project", "--gres=gpu:2",
                 "--mem=4G", "--cpus-per-task=3", "--time=2:00:00", "--array=1-3", "--job-name=dec",
                 f"--output={qdir}/dec.%a.out"):
        assert flag in args
    assert not any(a.startswith("--nodes") for a in args)
    for i in (1, 2, 3):
        log = work / f"exp/log/dec.{i}.log"
        assert body(log) == [f"index {i} it's"]
        assert_header_footer(log, threads=3)
        assert (qdir / f"dec.{i}.out").exists()
    script = (qdir / "dec.sh").read_text()
    assert script.startswith("#!/usr/bin/env bash") and "SLURM_ARRAY_TASK_ID" in script


def test_slurm_defaults_and_throttle(fake_slurm):
    work, env, calls = fake_slurm
    launch("--backend", "slurm", "--max_jobs_run", "2", "JOB=3:4", "log/x.JOB.log", "true", cwd=work, env=env,
           check=0)
    (args,) = calls()
    assert "--array=3-4%2" in args
    assert not any(a.startswith(("--gres", "--mem", "--cpus-per-task")) for a in args)
    assert_header_footer(work / "log/x.4.log")


def test_slurm_failure_propagates(fake_slurm):
    work, env, calls = fake_slurm
    proc = launch("--backend", "slurm", "JOB=1:3", "log/f.JOB.log", "echo JOB; [ JOB != 2 ]", cwd=work,
                  env=env)
    assert proc.returncode != 0
    assert "launch.py: 1 / 3 failed, log is in log/f.2.log" in proc.stderr
    assert_header_footer(work / "log/f.2.log", code=1)
    assert_header_footer(work / "log/f.3.log", code=0)


def test_slurm_single_job_and_multi_node(fake_slurm):
    work, env, calls = fake_slurm
    launch("--backend", "slurm", "--gpu", "1", "--num_nodes", "2", "--name", "train", "exp/train.log",
           "echo", "JOB stays", cwd=work, env=env, check=0)
    (args,) = calls()
    assert "--nodes=2" in args and "--ntasks-per-node=1" in args and "--gres=gpu:1" in args
    assert "--job-name=train" in args and not any(a.startswith("--array") for a in args)
    assert body(work / "exp/train.log") == ["JOB stays"]
    proc = launch("--backend", "slurm", "--num_nodes", "2", "JOB=1:2", "exp/t.JOB.log", "true", cwd=work,
                  env=env)
    assert proc.returncode == 2 and "single job" in proc.stderr


def test_slurm_unknown_option_and_missing_config(fake_slurm):
    work, env, calls = fake_slurm
    proc = launch("--backend", "slurm", "--constraint", "a100", "log/x.log", "true", cwd=work, env=env)
    assert proc.returncode == 2 and "constraint" in proc.stderr
    proc = launch("--backend", "slurm", "--config", "conf/none.conf", "log/x.log", "true", cwd=work, env=env)
    assert proc.returncode == 2 and "not found" in proc.stderr


def test_slurm_task_that_never_ran_is_a_failure(fake_slurm, tmp_path):
    work, env, calls = fake_slurm
    (tmp_path / "bin/sbatch").write_text("#!/bin/sh\necho 'sbatch: error: invalid partition' >&2\nexit 1\n")
    (work / "log").mkdir()
    (work / "log/x.1.log").write_text("# Ended (code 0) at old\n")  # a stale log must not count
    proc = launch("--backend", "slurm", "JOB=1:2", "log/x.JOB.log", "true", cwd=work, env=env)
    assert proc.returncode != 0 and "2 / 2 failed" in proc.stderr and "invalid partition" in proc.stderr


# ------------------------------------------------------------------------------------------------ cmd.sh
@pytest.mark.parametrize("backend", ["", "local", "slurm"])
def test_cmd_sh_backends(backend):
    env = dict(os.environ, cmd_backend=backend) if backend else {k: v for k, v in os.environ.items()
                                                                 if k != "cmd_backend"}
    out = subprocess.run(["bash", "-c", '. ./cmd.sh && echo "$train_cmd|$cuda_cmd|$decode_cmd"'], cwd=REPO,
                         env=env, capture_output=True, text=True, check=True).stdout.strip()
    commands = out.split("|")
    assert len(commands) == 3 and all(c.startswith("utils/launch.py --backend ") for c in commands)
    assert all(f"--backend {backend or 'local'}" in c for c in commands)


def test_cmd_sh_unknown_backend():
    proc = subprocess.run(["bash", "-c", ". ./cmd.sh; echo status=$?"], cwd=REPO, capture_output=True, text=True,
                          env=dict(os.environ, cmd_backend="sge"))
    assert "status=1" in proc.stdout and "unknown cmd_backend" in proc.stderr
