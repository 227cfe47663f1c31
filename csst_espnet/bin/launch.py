#!/usr/bin/env python3
"""Run a command as one job or an array of jobs, locally or on Slurm, with one log file per job.

    python -m csst_espnet.bin.launch [options] [JOB=1:N] LOG COMMAND [ARG ...]

As Kaldi's ``run.pl`` / ``slurm.pl`` are used in ESPnet recipes (through ``cmd.sh``):
``JOB=1:N`` runs N jobs, replacing the variable name (``JOB``, or any other name given before
``=``) in ``LOG`` and in every argument by the job index. Each log gets the command in a header,
the job's stdout and stderr, and a footer with its run time and exit status. The launcher exits 0
when every job succeeded, otherwise 1, naming the log of the first failed job. A single
``COMMAND`` argument is run as a bash command line (pipes, redirections); several arguments are
run as that exact argument list.

Options (``--name value``; dashes and underscores alike):
    --backend local|slurm   where jobs run (default local)
    --max_jobs_run N        at most N jobs at once (local: default all; slurm: array throttle)
    --num_threads N         threads per job: sets OMP_NUM_THREADS / MKL_NUM_THREADS (slurm: --cpus-per-task)
    --gpu N                 GPUs per job (slurm: --gres=gpu:N; local: recorded only)
    --mem SIZE              memory per job (slurm: --mem)
    --time LIMIT            wall-clock limit per job (slurm: --time)
    --partition NAME        slurm partition
    --slurm_opts "..."      more sbatch options, as one string (default: $CSST_SLURM_OPTS)

The Slurm backend submits one array job with ``sbatch --wait``; each array task runs this module
again with the local backend for its index, so logs look the same on both backends. Job scripts
and Slurm's own output go to ``<log dir>/q/``.
"""

import sys
from typing import Optional, Sequence

from csst_espnet.recipe.launch import LaunchError, failure, parse_args, run


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        results = run(parse_args(argv))
    except LaunchError as e:
        print(f"launch: {e}", file=sys.stderr)
        return 2
    message = failure(results)
    if message:
        print(f"launch: {message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
