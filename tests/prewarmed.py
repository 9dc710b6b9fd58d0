"""A server of prewarmed interpreters for the end-to-end tests: it imports
TensorFlow, Keras and nasp_tf once, then forks one child per request, and
the child runs bin/search.py or bin/train.py as `python bin/X.py ARGS` would
(`runpy`, `sys.argv`, the working directory and the environment asked for,
stdout and stderr to files, the exit code of SystemExit), in a fresh process.

What the child skips is only the import of TensorFlow, about 4-5 s of a
tiny run's 10-20 s: the suite starts about a hundred such runs. TensorFlow's
runtime is not started before the fork (no op has run, no device is made),
so each child initialises it itself, with its own environment.

Protocol: one JSON request per line on stdin, one JSON line back on stdout.
{"op": "run", "argv", "cwd", "env", "stdout", "stderr", "timeout"} runs a
program to its end: {"code"} (None when it was killed at its timeout);
"spawn" with the same fields starts it: {"pid"}, then {"op": "poll", "pid"}
gives {"done", "code"} and {"op": "wait", "pid", "timeout"} {"code"}. Used by
tests/conftest.py's `run_script` and `start_bin`.
"""

import json
import os
import signal
import sys
import time

# As the programs set it when they load (nasp_tf.cli.main), before TensorFlow.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import process_limits  # noqa: E402  (tests/, the script's directory)

import keras  # noqa: E402,F401  (imported once, for every child)
import tensorflow  # noqa: E402,F401

from nasp_tf.cli import main  # noqa: E402,F401
from nasp_tf.pipelines import (image_search, image_train, seed_selection,  # noqa: E402,F401
                               text_search, text_train)


def child(request):
    """Runs in the forked child; never returns."""
    import atexit
    import runpy
    import traceback

    atexit._clear()  # the server's exit handlers are not the program's
    code = 1
    try:
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
            target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(target, fd)
            os.close(target)
        sys.stdin = open(os.devnull)
        process_limits.apply(**{k: request[k] for k in process_limits.NAMES if k in request})
        sys.argv = list(request["argv"])
        try:
            runpy.run_path(sys.argv[0], run_name="__main__")
            code = 0
        except SystemExit as e:
            if e.code is None or isinstance(e.code, int):
                code = e.code or 0
            else:
                print(e.code, file=sys.stderr)
                code = 1
        except BaseException:  # what the interpreter would print
            traceback.print_exc()
            code = 1
        atexit._run_exitfuncs()  # the program's: temporary directories, log files
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def wait(pid, timeout):
    """The exit code of child `pid` (killed after `timeout` s: None)."""
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return None
        time.sleep(0.01)


def serve():
    for line in sys.stdin:
        request = json.loads(line)
        op = request.get("op", "run")
        if op in ("run", "spawn"):
            pid = os.fork()
            if pid == 0:
                child(request)
            reply = {"code": wait(pid, request["timeout"])} if op == "run" else {"pid": pid}
        elif op == "poll":
            done, status = os.waitpid(request["pid"], os.WNOHANG)
            reply = {"code": os.waitstatus_to_exitcode(status) if done else None,
                     "done": bool(done)}
        else:  # "wait"
            reply = {"code": wait(request["pid"], request["timeout"])}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    serve()
