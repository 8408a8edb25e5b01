#!/usr/bin/env python3
"""Run a command as one job or an array of jobs, locally or on Slurm (Kaldi's calling convention).

Usage:
  utils/launch.py [options] [JOB=a:b] LOGFILE COMMAND [ARGS...]

  JOB=a:b   optional job range (any variable name works, e.g. SPLIT=1:4; JOB=3 is one job with index 3).
            Every occurrence of the variable name in LOGFILE and in COMMAND/ARGS is replaced by the index.
            Without a range the command runs once and nothing is substituted.
  LOGFILE   the job's log: a header ("# <command>", "# Started at <date> on <host>"), the command's
            stdout+stderr, and a footer ("# Accounting: time=<s> threads=<n>",
            "# Ended (code <rc>) at <date>, elapsed time <s> seconds"). Its directory is created.
  COMMAND   run with "bash -c". A single argument is used verbatim, so
              utils/launch.py log/x.log "gunzip -c a.gz | wc -l > n.txt"
            works; several arguments are each shell-quoted (spaces and quotes survive), except bare shell
            operators given as their own word (| || && ; > >> < 2> 2>&1 &> |&), which stay operators:
              utils/launch.py log/x.log gunzip -c "my file.gz" '|' wc -l

Options (before LOGFILE, before or after the job range; "--opt value" or "--opt=value"; "-" and "_" alike):
  --backend local|slurm   where to run (default: local)
  --config FILE           slurm backend settings (default: conf/slurm.conf; built-in defaults if that is absent)
  --gpu N                 GPUs per job (local: nothing is set, the job sees the machine's GPUs)
  --mem SIZE              memory per job, e.g. 8G (slurm only)
  --num_threads N         CPUs per job (slurm; local only reports it in the log's accounting line)
  --num_nodes N           nodes for one multi-node job whose command starts its tasks with srun (slurm only;
                          only a single job, no JOB range, is allowed then)
  --max_jobs_run N        at most N jobs at a time (local default: the number of CPUs; slurm: array throttle %N)
  --name NAME             job name (default: LOGFILE's base name without the job variable and ".log")
  --OTHER VALUE           any other option: ignored by the local backend; the slurm backend turns it into sbatch
                          flags with the "OTHER = ..." template of the config (e.g. --time 4:00:00)
  A later occurrence of an option overrides an earlier one, so "$cmd --mem 16G" overrides a --mem in $cmd.

Exit status: 0 when every job succeeded; otherwise 1 and, on stderr,
  "launch.py: N / M failed, log is in <log of the first failed job>".

The slurm backend writes a job script to <dir of LOGFILE>/q/<name>.sh and submits it with
"sbatch --wait [--array=a-b]": the call blocks until all tasks have finished. Slurm's own messages for task i go
to <dir of LOGFILE>/q/<name>.<i>.out. See conf/slurm.conf for the settings.
"""
import datetime
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time

PROG = "launch.py"
SHELL_OPERATORS = {"|", "||", "&&", ";", ">", ">>", "<", "2>", "2>>", "2>&1", "&>", "&>>", "|&", ">&2", "1>&2"}
KNOWN_INT_OPTIONS = {"gpu": 0, "num_threads": 1, "num_nodes": 1, "max_jobs_run": 0}
DEFAULT_CONFIG = "conf/slurm.conf"

# Built-in slurm settings; a config file's keys override them (an empty value switches a template off).
BUILTIN_SLURM = {
    "sbatch": ["--export=ALL"],
    "prologue": [],
    "gpu": "--gres=gpu:{gpu}",
    "no_gpu": "",
    "num_threads": "--cpus-per-task={num_threads}",
    "mem": "--mem={mem}",
    "num_nodes": "--nodes={num_nodes} --ntasks-per-node=1",
}
ACCUMULATING_KEYS = ("sbatch", "prologue")


class LaunchError(Exception):
    pass


# ----------------------------------------------------------------------------------------------- command line
class Request:
    def __init__(self):
        self.backend = "local"
        self.config = None
        self.gpu = 0
        self.mem = None
        self.num_threads = 1
        self.num_threads_given = False
        self.num_nodes = 1
        self.max_jobs_run = 0
        self.name = None
        self.extra = {}  # other --name value options, in order
        self.var = None  # job variable, e.g. "JOB"
        self.first = self.last = None
        self.logfile = None
        self.command = []

    @property
    def indices(self):
        if self.var is None:
            return [None]
        return list(range(self.first, self.last + 1))


def _set_option(req, name, value):
    name = name.replace("-", "_")
    if name == "backend":
        if value not in ("local", "slurm"):
            raise LaunchError(f"--backend must be local or slurm, not {value!r}")
        req.backend = value
    elif name == "config":
        req.config = value
    elif name == "mem":
        req.mem = value
    elif name == "name":
        req.name = value
    elif name in KNOWN_INT_OPTIONS:
        try:
            number = int(value)
        except ValueError:
            raise LaunchError(f"--{name} needs an integer, not {value!r}") from None
        if name == "gpu" and number < 0 or name in ("num_threads", "num_nodes") and number < 1:
            raise LaunchError(f"--{name} {number}: out of range")
        setattr(req, name, number)
        if name == "num_threads":
            req.num_threads_given = True
    else:
        if not re.fullmatch(r"[A-Za-z]\w*", name):
            raise LaunchError(f"bad option name --{name}")
        req.extra.pop(name, None)
        req.extra[name] = value


def _parse_options(req, args):
    while args and args[0].startswith("-") and args[0] != "-":
        arg = args.pop(0)
        if arg == "--":
            break
        if arg in ("-h", "--help"):
            print(__doc__)
            sys.exit(0)
        if arg == "-V":  # Kaldi's "export the environment" switch: the environment is always passed on
            continue
        if not arg.startswith("--"):
            raise LaunchError(f"unknown switch {arg!r}")
        if "=" in arg:
            name, value = arg[2:].split("=", 1)
        else:
            if not args:
                raise LaunchError(f"option {arg} needs a value")
            name, value = arg[2:], args.pop(0)
        _set_option(req, name, value)


def parse_args(argv):
    req = Request()
    args = list(argv)
    _parse_options(req, args)
    if args:
        match = re.fullmatch(r"([A-Za-z_]\w*)=(\d+)(?::(\d+))?", args[0])
        if match:
            args.pop(0)
            req.var = match.group(1)
            req.first = int(match.group(2))
            req.last = int(match.group(3)) if match.group(3) is not None else req.first
            if req.last < req.first:
                raise LaunchError(f"empty job range {req.var}={req.first}:{req.last}")
            _parse_options(req, args)
        elif re.fullmatch(r"[A-Z_][A-Z0-9_]*=\S*", args[0]) and len(args) > 2:
            raise LaunchError(f"bad job range {args[0]!r} (expected e.g. JOB=1:4)")
    if len(args) < 2:
        raise LaunchError("usage: utils/launch.py [options] [JOB=a:b] LOGFILE COMMAND [ARGS...] (see --help)")
    req.logfile = args[0]
    req.command = args[1:]
    if req.max_jobs_run <= 0:
        req.max_jobs_run = 0
    return req


# ------------------------------------------------------------------------------------------------ job helpers
def substitute(text, var, index):
    return text if var is None else text.replace(var, str(index))


def command_string(words):
    """The bash command line for the job's words (see the module docstring)."""
    if len(words) == 1:
        return words[0]
    return " ".join(w if w in SHELL_OPERATORS else shlex.quote(w) for w in words)


def job_command(req, index):
    return command_string([substitute(w, req.var, index) for w in req.command])


def job_log(req, index):
    return substitute(req.logfile, req.var, index)


def header_text(command):
    return "# " + command.replace("\n", "\n# ")


def now():
    return datetime.datetime.now().astimezone().strftime("%a %b %d %H:%M:%S %Z %Y")


def default_name(req):
    base = os.path.basename(req.logfile)
    if req.var is not None:
        base = base.replace(req.var, "")
    if base.endswith(".log"):
        base = base[: -len(".log")]
    base = re.sub(r"\.{2,}", ".", base).strip(".")
    return base or "job"


def safe_name(name):
    return re.sub(r"[^\w.+-]", "_", name) or "job"


def ended_code(logfile):
    """The exit code in the log's '# Ended (code N)' footer, or None when there is none."""
    try:
        with open(logfile, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 4096))
            tail = f.read().decode("utf-8", "replace")
    except OSError:
        return None
    codes = re.findall(r"^# Ended \(code (-?\d+)\)", tail, flags=re.M)
    return int(codes[-1]) if codes else None


def make_parent(path):
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)


def report(failed, total, first_log):
    if failed:
        print(f"{PROG}: {failed} / {total} failed, log is in {first_log}", file=sys.stderr)
        return 1
    return 0


# ------------------------------------------------------------------------------------------------ local backend
def run_local(req):
    if req.num_nodes > 1:
        raise LaunchError("--num_nodes > 1 needs the slurm backend (e.g. cmd_backend=slurm)")
    indices = req.indices
    if req.max_jobs_run:
        max_jobs = req.max_jobs_run
    elif hasattr(os, "sched_getaffinity"):
        max_jobs = len(os.sched_getaffinity(0)) or 1
    else:
        max_jobs = os.cpu_count() or 1
    results = {}
    running = {}
    lock = threading.Lock()
    slots = threading.Semaphore(max_jobs)
    stop = threading.Event()

    def one_job(index):
        rc = 1
        try:
            log, command = job_log(req, index), job_command(req, index)
            make_parent(log)
            start = time.time()
            with open(log, "w") as f:
                f.write(f"{header_text(command)}\n# Started at {now()} on {socket.gethostname()}\n")
                f.flush()
                with lock:
                    if stop.is_set():
                        rc = 130
                        proc = None
                    else:
                        proc = subprocess.Popen(["bash", "-c", command], stdout=f, stderr=subprocess.STDOUT,
                                                stdin=subprocess.DEVNULL, start_new_session=True)
                        running[index] = proc
                if proc is not None:
                    rc = proc.wait()
                    with lock:
                        running.pop(index, None)
                    if rc < 0:  # killed by a signal: report it like bash does
                        rc = 128 - rc
                elapsed = int(round(time.time() - start))
                f.write(f"# Accounting: time={elapsed} threads={req.num_threads}\n"
                        f"# Ended (code {rc}) at {now()}, elapsed time {elapsed} seconds\n")
        except Exception as e:  # e.g. the log cannot be written: the job counts as failed
            print(f"{PROG}: job {index}: {e}", file=sys.stderr)
            rc = 1
        finally:
            results[index] = rc
            slots.release()

    def terminate(signum, frame):
        raise KeyboardInterrupt

    old_term = signal.signal(signal.SIGTERM, terminate)
    threads = []
    try:
        for index in indices:
            while not slots.acquire(timeout=0.5):
                pass
            thread = threading.Thread(target=one_job, args=(index,), daemon=True)
            thread.start()
            threads.append(thread)
        for thread in threads:
            while thread.is_alive():
                thread.join(0.5)
    except KeyboardInterrupt:
        with lock:
            stop.set()
            for proc in running.values():
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except OSError:
                    pass
        for thread in threads:
            thread.join(5)
        print(f"{PROG}: interrupted; stopped the running jobs", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, old_term)
    failed = [i for i in indices if results.get(i, 1) != 0]
    return report(len(failed), len(indices), job_log(req, failed[0]) if failed else None)


# ------------------------------------------------------------------------------------------------ slurm backend
def read_slurm_config(path, explicit):
    config = {key: (list(value) if isinstance(value, list) else value) for key, value in BUILTIN_SLURM.items()}
    if not os.path.exists(path):
        if explicit:
            raise LaunchError(f"slurm config {path} not found")
        return config
    seen = set()
    with open(path, encoding="utf-8") as f:
        for number, raw in enumerate(f, 1):
            line = re.sub(r"(^|\s)#.*$", "", raw).strip()
            if not line:
                continue
            match = re.fullmatch(r"([A-Za-z]\w*)\s*=\s*(.*)", line)
            if not match:
                raise LaunchError(f"{path}:{number}: expected 'key = value', got {raw.strip()!r}")
            key, value = match.group(1), match.group(2).strip()
            if key in ACCUMULATING_KEYS:
                if key not in seen:
                    config[key] = []
                if value:
                    config[key].append(value)
            else:
                config[key] = value
            seen.add(key)
    return config


def expand(template, key, value, path):
    text = template.replace("{" + key + "}", str(value))
    try:
        return shlex.split(text)
    except ValueError as e:
        raise LaunchError(f"{path}: bad value for {key!r}: {e}") from None


def sbatch_options(req, config, path):
    """The sbatch flags from the config for this request (without --wait/--array/--output/--job-name)."""
    options = []
    for line in config["sbatch"]:
        try:
            options += shlex.split(line)
        except ValueError as e:
            raise LaunchError(f"{path}: bad 'sbatch' line {line!r}: {e}") from None
    if req.gpu > 0:
        options += expand(config.get("gpu", ""), "gpu", req.gpu, path)
    else:
        options += expand(config.get("no_gpu", ""), "gpu", req.gpu, path)
    if req.num_threads_given:
        options += expand(config.get("num_threads", ""), "num_threads", req.num_threads, path)
    if req.mem is not None:
        options += expand(config.get("mem", ""), "mem", req.mem, path)
    if req.num_nodes > 1:
        options += expand(config.get("num_nodes", ""), "num_nodes", req.num_nodes, path)
    for key, value in req.extra.items():
        if key not in config or key in ACCUMULATING_KEYS:
            raise LaunchError(f"--{key} is not known to the slurm backend: add a line '{key} = --some-flag={{{key}}}' "
                              f"to {path}")
        options += expand(config[key], key, value, path)
    return options


def queue_dir(req):
    logdir = os.path.dirname(req.logfile) or "."
    if req.var is not None:
        while req.var in logdir and logdir not in ("", ".", os.sep):
            logdir = os.path.dirname(logdir) or "."
    return os.path.join(os.path.abspath(logdir), "q")


def job_script(req, config, submit_line):
    q = shlex.quote
    lines = [
        "#!/usr/bin/env bash",
        f"# Written by utils/launch.py at {now()}; submitted with:",
        f"#   {submit_line}",
        f"cd {q(os.getcwd())} || exit 1",
    ]
    lines += config["prologue"]
    branches = []
    for index in req.indices:
        command = job_command(req, index)
        branches.append((index, job_log(req, index), command, header_text(command)))
    if req.var is None:
        _, log, command, header = branches[0]
        lines += [f"log={q(log)}", f"cmd={q(command)}", f"header={q(header)}"]
    else:
        lines.append('case "${SLURM_ARRAY_TASK_ID:-}" in')
        for index, log, command, header in branches:
            lines.append(f"  {index}) log={q(log)}\n     cmd={q(command)}\n     header={q(header)} ;;")
        lines += [
            '  *) echo "job script $0: unexpected SLURM_ARRAY_TASK_ID=\'${SLURM_ARRAY_TASK_ID:-}\'" >&2; exit 1 ;;',
            "esac",
        ]
    lines += [
        'mkdir -p "$(dirname "$log")" || exit 1',
        'printf \'%s\\n# Started at %s on %s\\n\' "$header" "$(date)" "$(hostname)" > "$log" || exit 1',
        "start=$(date +%s)",
        'bash -c "$cmd" < /dev/null >> "$log" 2>&1',
        "rc=$?",
        "elapsed=$(( $(date +%s) - start ))",
        f'echo "# Accounting: time=$elapsed threads={req.num_threads}" >> "$log"',
        'echo "# Ended (code $rc) at $(date), elapsed time $elapsed seconds" >> "$log"',
        "exit $rc",
        "",
    ]
    return "\n".join(lines)


def run_slurm(req):
    explicit = req.config is not None
    path = req.config or DEFAULT_CONFIG
    config = read_slurm_config(path, explicit)
    indices = req.indices
    if req.num_nodes > 1 and len(indices) > 1:
        raise LaunchError(f"--num_nodes {req.num_nodes}: a multi-node job must be a single job (no JOB range)")
    name = safe_name(req.name or default_name(req))
    qdir = queue_dir(req)
    os.makedirs(qdir, exist_ok=True)
    script = os.path.join(qdir, f"{name}.sh")

    command = ["sbatch"] + sbatch_options(req, config, path) + ["--wait", f"--job-name={name}"]
    if req.var is None:
        command.append(f"--output={os.path.join(qdir, name + '.out')}")
    else:
        array = f"--array={req.first}-{req.last}"
        if req.max_jobs_run:
            array += f"%{req.max_jobs_run}"
        command += [f"--output={os.path.join(qdir, name + '.%a.out')}", array]
    command.append(script)
    submit_line = " ".join(shlex.quote(word) for word in command)

    with open(script, "w") as f:
        f.write(job_script(req, config, submit_line))
    os.chmod(script, 0o755)
    for index in indices:  # stale logs would hide tasks that never ran
        try:
            os.remove(job_log(req, index))
        except FileNotFoundError:
            pass
        except OSError as e:
            raise LaunchError(f"cannot remove old log: {e}") from None

    job_id = []

    def forward(stream):
        for line in stream:
            match = re.search(r"Submitted batch job (\d+)", line) or re.fullmatch(r"(\d+)(;\S*)?\s*", line)
            if match and not job_id:
                job_id.append(match.group(1))
            sys.stderr.write(line)
            sys.stderr.flush()

    def terminate(signum, frame):
        raise KeyboardInterrupt

    old_term = signal.signal(signal.SIGTERM, terminate)
    try:
        try:
            proc = subprocess.Popen(command, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        except FileNotFoundError:
            raise LaunchError("sbatch not found: is this a Slurm submission host? (or use cmd_backend=local)") from None
        reader = threading.Thread(target=forward, args=(proc.stdout,), daemon=True)
        reader.start()
        try:
            sbatch_rc = proc.wait()
        except KeyboardInterrupt:
            if job_id:
                subprocess.call(["scancel", job_id[0]])
                print(f"{PROG}: interrupted; cancelled slurm job {job_id[0]}", file=sys.stderr)
            proc.terminate()
            return 130
        reader.join(5)
    finally:
        signal.signal(signal.SIGTERM, old_term)

    failed = []
    for index in indices:
        if ended_code(job_log(req, index)) != 0:
            failed.append(index)
    if failed:
        index = failed[0]
        log = job_log(req, index)
        if ended_code(log) is None:
            out = os.path.join(qdir, f"{name}.out" if index is None else f"{name}.{index}.out")
            print(f"{PROG}: job {'' if index is None else index} did not finish (no footer in {log}); slurm's "
                  f"messages are in {out}", file=sys.stderr)
        return report(len(failed), len(indices), log)
    if sbatch_rc != 0:
        print(f"{PROG}: sbatch exited with code {sbatch_rc} (all job logs report success); submitted with: "
              f"{submit_line}", file=sys.stderr)
        return 1
    return 0


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    try:
        req = parse_args(argv)
        if req.backend == "slurm":
            return run_slurm(req)
        return run_local(req)
    except LaunchError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
