"""Run a command as one job or an array of jobs, locally or on Slurm, with one log file per job.

The launcher behind ``cmd.sh`` (``python -m csst_espnet.bin.launch``, which documents the command
line); see docs/architecture.md (recipe). A Slurm array task runs the entry point again with the
local backend for its index, so logs look the same on both backends.
"""

import os
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import List, Optional, Sequence, Tuple

USAGE = "usage: python -m csst_espnet.bin.launch [options] [JOB=1:N] LOG COMMAND [ARG ...]"
_OPTIONS = {
    "backend": str,
    "max_jobs_run": int,
    "num_threads": int,
    "gpu": int,
    "mem": str,
    "time": str,
    "partition": str,
    "slurm_opts": str,
}
_JOB_RANGE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(\d+)(?::(\d+))?$")


class LaunchError(ValueError):
    """A bad launcher command line, or a submission that failed."""


@dataclass
class Request:
    """A parsed launcher command line: options, the job range and the command."""

    backend: str = "local"
    max_jobs_run: int = 0
    num_threads: int = 0
    gpu: int = 0
    mem: str = ""
    time: str = ""
    partition: str = ""
    slurm_opts: str = ""
    job_var: Optional[str] = None
    first: int = 1
    last: int = 1
    log: str = ""
    command: List[str] = field(default_factory=list)

    @property
    def indices(self) -> List[int]:
        return list(range(self.first, self.last + 1))

    def for_job(self, text: str, index: int) -> str:
        return text.replace(self.job_var, str(index)) if self.job_var else text


def parse_args(argv: Sequence[str]) -> Request:
    """Parse the launcher's command line; errors name the offending argument."""
    req = Request(slurm_opts=os.environ.get("CSST_SLURM_OPTS", ""))
    args = list(argv)
    i = 0
    while i < len(args) and args[i].startswith("--"):
        name = args[i][2:].replace("-", "_")
        if "=" in name:  # --name=value
            name, value = name.split("=", 1)
            i += 1
        else:
            if i + 1 >= len(args):
                raise LaunchError(f"option {args[i]} needs a value")
            value = args[i + 1]
            i += 2
        if name not in _OPTIONS:
            raise LaunchError(f"unknown option --{name} (known: {', '.join('--' + o for o in _OPTIONS)})")
        try:
            setattr(req, name, _OPTIONS[name](value))
        except ValueError:
            raise LaunchError(f"option --{name}: expected {_OPTIONS[name].__name__}, got {value!r}") from None
    if req.backend not in ("local", "slurm"):
        raise LaunchError(f"--backend must be local or slurm, got {req.backend!r}")
    if i < len(args):
        m = _JOB_RANGE.match(args[i])
        if m:
            req.job_var = m.group(1)
            req.first = int(m.group(2))
            req.last = int(m.group(3) or m.group(2))
            if req.first < 1 or req.last < req.first:
                raise LaunchError(f"bad job range {args[i]!r}: need 1 <= first <= last")
            i += 1
    if len(args) - i < 2:
        raise LaunchError(f"need a log file and a command\n{USAGE}")
    req.log = args[i]
    req.command = args[i + 1 :]
    if req.job_var and req.last > req.first and req.job_var not in req.log:
        raise LaunchError(f"the log file {req.log!r} must contain {req.job_var} for a job array")
    return req


def command_line(req: Request, index: int) -> str:
    """The bash command line of job ``index``."""
    parts = [req.for_job(x, index) for x in req.command]
    return parts[0] if len(parts) == 1 else shlex.join(parts)


# ---------------------------------------------------------------------------------------- local
def _start(req: Request, index: int) -> Tuple[subprocess.Popen, str, float]:
    log = req.for_job(req.log, index)
    os.makedirs(os.path.dirname(os.path.abspath(log)), exist_ok=True)
    cmd = command_line(req, index)
    env = dict(os.environ)
    if req.num_threads > 0:
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[var] = str(req.num_threads)
    f = open(log, "w", encoding="utf-8")
    f.write(f"# {cmd}\n# Started at {datetime.now():%a %b %d %H:%M:%S %Z %Y}\n#\n")
    f.flush()
    proc = subprocess.Popen(["bash", "-c", cmd], stdout=f, stderr=subprocess.STDOUT, env=env)
    proc._log_file = f  # closed when the job ends
    return proc, log, time.time()


def _finish(proc: subprocess.Popen, log: str, started: float) -> int:
    f = proc._log_file
    elapsed = int(round(time.time() - started))
    f.write(f"# Accounting: time={elapsed} threads=1\n")
    f.write(f"# Ended (code {proc.returncode}) at {datetime.now():%a %b %d %H:%M:%S %Z %Y}, elapsed time {elapsed} seconds\n")
    f.close()
    return proc.returncode


def run_local(req: Request) -> List[Tuple[int, str, int]]:
    """Run every job; returns ``(index, log, exit status)`` per job."""
    limit = req.max_jobs_run if req.max_jobs_run > 0 else len(req.indices)
    pending = list(req.indices)
    running: List[Tuple[int, subprocess.Popen, str, float]] = []
    results: List[Tuple[int, str, int]] = []
    try:
        while pending or running:
            while pending and len(running) < limit:
                index = pending.pop(0)
                proc, log, started = _start(req, index)
                running.append((index, proc, log, started))
            still = []
            for index, proc, log, started in running:
                if proc.poll() is None:
                    still.append((index, proc, log, started))
                else:
                    results.append((index, log, _finish(proc, log, started)))
            running = still
            if running:
                time.sleep(0.05)
    except KeyboardInterrupt:
        for _, proc, _, _ in running:
            proc.terminate()
        raise
    return sorted(results)


# ---------------------------------------------------------------------------------------- slurm
def slurm_script(req: Request) -> Tuple[str, List[str], str]:
    """The sbatch script, the sbatch command line (without the script path) and the job name."""
    log_dir = os.path.dirname(os.path.abspath(req.for_job(req.log, req.first)))
    qdir = os.path.join(log_dir, "q")
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", os.path.basename(req.log)).replace(".log", "") or "job"
    var = req.job_var or "JOB"
    inner = [sys.executable, "-m", "csst_espnet.bin.launch", "--backend", "local"]
    if req.num_threads > 0:
        inner += ["--num_threads", str(req.num_threads)]
    # the task's own index replaces the variable; quoting keeps every argument intact
    task_range = f'{var}="$SLURM_ARRAY_TASK_ID":"$SLURM_ARRAY_TASK_ID"'
    body_args = " ".join(shlex.quote(x) for x in [os.path.abspath(req.log)] + req.command)
    lines = [
        "#!/bin/bash",
        f"cd {shlex.quote(os.getcwd())}",
        f"exec {shlex.join(inner)} {task_range} {body_args}",
        "",
    ]
    sbatch = [
        "sbatch", "--wait", "--parsable",
        f"--job-name={name}",
        f"--output={os.path.join(qdir, name)}-%a.out",
        f"--array={req.first}-{req.last}" + (f"%{req.max_jobs_run}" if req.max_jobs_run > 0 else ""),
    ]
    if req.num_threads > 0:
        sbatch.append(f"--cpus-per-task={req.num_threads}")
    if req.gpu > 0:
        sbatch.append(f"--gres=gpu:{req.gpu}")
    if req.mem:
        sbatch.append(f"--mem={req.mem}")
    if req.time:
        sbatch.append(f"--time={req.time}")
    if req.partition:
        sbatch.append(f"--partition={req.partition}")
    if req.slurm_opts:
        sbatch += shlex.split(req.slurm_opts)
    return "\n".join(lines), sbatch, name


def run_slurm(req: Request) -> List[Tuple[int, str, int]]:
    script, sbatch, name = slurm_script(req)
    log_dir = os.path.dirname(os.path.abspath(req.for_job(req.log, req.first)))
    qdir = os.path.join(log_dir, "q")
    os.makedirs(qdir, exist_ok=True)
    path = os.path.join(qdir, f"{name}.sh")
    with open(path, "w", encoding="utf-8") as f:
        f.write(script)
    os.chmod(path, 0o755)
    for index in req.indices:  # a stale log must not pass for a finished job
        log = req.for_job(req.log, index)
        if os.path.exists(log):
            os.remove(log)
    proc = subprocess.run(sbatch + [path], capture_output=True, text=True)
    if proc.returncode != 0 and not any(os.path.exists(req.for_job(req.log, i)) for i in req.indices):
        raise LaunchError(f"sbatch failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")
    return [(i, req.for_job(req.log, i), exit_status(req.for_job(req.log, i))) for i in req.indices]


def exit_status(log: str) -> int:
    """Exit status from a job log's footer (-1 when the job did not finish)."""
    if not os.path.exists(log):
        return -1
    with open(log, encoding="utf-8", errors="replace") as f:
        lines = f.read().splitlines()
    for line in reversed(lines[-5:]):
        m = re.match(r"# Ended \(code (-?\d+)\)", line)
        if m:
            return int(m.group(1))
    return -1


def run(req: Request) -> List[Tuple[int, str, int]]:
    """Run every job of ``req`` on its backend; ``(index, log, exit status)`` per job."""
    return run_slurm(req) if req.backend == "slurm" else run_local(req)


def failure(results: Sequence[Tuple[int, str, int]]) -> Optional[str]:
    """What failed, naming the log of the first failed job; None when every job succeeded."""
    failed = [(i, log, rc) for i, log, rc in results if rc != 0]
    if not failed:
        return None
    _, log, rc = failed[0]
    what = f"{len(failed)} / {len(results)} jobs failed" if len(results) > 1 else f"the job failed (code {rc})"
    return f"{what}; log is in {log}"
