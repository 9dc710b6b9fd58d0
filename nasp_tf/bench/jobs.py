"""The child processes of a benchmark.

- `run`: nasp_tf's programs started as `python -m nasp_tf.cli PROGRAM` (so a
  benchmark works from an installed package, from any directory), each
  optionally pinned to one CPU core, with the record that says whether a
  finished run may be reused;
- `in_subprocess`: one measurement (`nasp_tf.bench.worker`) in a fresh
  process, so that its peak memory is its own.
"""

import hashlib
import json
import os
import subprocess
import sys

import nasp_tf
from nasp_tf import shipped


def commit():
    """The git commit of the nasp_tf code that runs (`+dirty` with uncommitted
    changes), or "unknown" outside a checkout."""
    root = os.path.dirname(shipped.PACKAGE)
    try:
        head = subprocess.run(["git", "rev-parse", "--short=7", "HEAD"], cwd=root,
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=root, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty.strip() else "")


def config_flag(name):
    """`--flagfile=` the shipped config `name`, by its absolute path."""
    return "--flagfile=" + shipped.config_path(name)


def job_key(program, args):
    """What makes two runs the same run: the program, its flags (a flagfile by
    its name and the hash of its content, --output_dir left out) and the
    nasp_tf version."""
    flags = []
    for arg in args:
        if arg.startswith("--output_dir="):
            continue
        if arg.startswith("--flagfile="):
            path = arg[len("--flagfile="):]
            with open(path, "rb") as f:
                digest = hashlib.sha256(f.read()).hexdigest()[:16]
            arg = f"--flagfile={os.path.basename(path)}#{digest}"
        flags.append(arg)
    return {"program": program, "flags": flags, "version": nasp_tf.__version__}


def record_path(run_dir):
    """Where the job record of `run_dir` is kept: beside it, since the run
    directory itself belongs to the child (`nasp_tf.run_dir`)."""
    return run_dir.rstrip(os.sep) + ".job.json"


def recorded(run_dir):
    """The job record of `run_dir` ({"key", "commit"}), or None."""
    path = record_path(run_dir)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def run(program, args, run_dir, core=None, done=None):
    """Runs nasp_tf's `program` with `args` and `--output_dir=run_dir`, pinned to
    CPU `core` if given, unless `run_dir` already holds a finished run of
    the same key (`done`, a file the finished run has, exists): then it
    returns None. A directory holding a run of other flags or another
    version (or one without a record) is moved aside (--overwrite) and run
    again; an unfinished one of the same key resumes where it stopped.
    Returns the child's stdout; RuntimeError with its last error line if it
    fails."""
    key = job_key(program, args)
    record = recorded(run_dir)
    same = record is not None and record["key"] == key
    if same and done and os.path.exists(os.path.join(run_dir, done)):
        return None
    extra = []
    if os.path.isdir(run_dir) and os.listdir(run_dir) and not same:
        extra = ["--overwrite"]
    os.makedirs(os.path.dirname(run_dir), exist_ok=True)
    with open(record_path(run_dir), "w", encoding="utf-8") as f:
        json.dump({"key": key, "commit": commit()}, f, indent=1)
    return run_program(program, [*args, f"--output_dir={run_dir}", *extra], core,
                       cwd=os.path.dirname(run_dir))


def run_program(program, args, core=None, cwd=None):
    """Runs nasp_tf's `program` with `args` (pinned to CPU `core` if given);
    its stdout, or RuntimeError with its last error line."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    pin = (None if core is None or not hasattr(os, "sched_setaffinity")
           else lambda: os.sched_setaffinity(0, {core}))
    result = subprocess.run([sys.executable, "-m", "nasp_tf.cli", program, *args],
                            capture_output=True, text=True, env=env, check=False,
                            preexec_fn=pin, cwd=cwd)
    if result.returncode != 0:
        tail = [line for line in result.stderr.splitlines() if line.strip()][-1:]
        where = next((a for a in args if a.startswith("--output_dir=")), " ".join(args[-2:]))
        raise RuntimeError(f"{program} {where} failed: {tail[0] if tail else result.returncode}")
    return result.stdout


RESULT = "BENCH-RESULT "


def in_subprocess(spec):
    """Runs one measurement (`nasp_tf.bench.worker`, the JSON `spec`) in a fresh
    Python process; its result, or RuntimeError with its last error line."""
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    result = subprocess.run([sys.executable, "-m", "nasp_tf.bench.worker", json.dumps(spec)],
                            capture_output=True, text=True, env=env, check=False)
    for line in result.stdout.splitlines():
        if line.startswith(RESULT):
            return json.loads(line[len(RESULT):])
    tail = [line for line in result.stderr.splitlines() if line.strip()][-1:]
    raise RuntimeError(f"{spec['task']} worker for {spec.get('searcher', '')} failed "
                       f"(exit {result.returncode}): {tail[0] if tail else 'no output'}")
