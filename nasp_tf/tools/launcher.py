"""A local cluster for `--strategy=multi_worker`: N copies of one command on
this machine, each with its `TF_CONFIG` (TensorFlow's cluster convention:
every worker on a loopback port, its own index), their output forwarded
line by line with a `[worker i]` prefix (`bin/launch.py`).

If a worker fails, the others are stopped and the launcher exits with the
failed worker's code; if the launcher is stopped (Ctrl-C, SIGTERM), it stops
the workers; if it is killed outright, the kernel stops them (Linux's
parent-death signal). No worker outlives the launch. No TensorFlow here.
"""

import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

LOOPBACK = "127.0.0.1"
# Seconds a worker gets to end after SIGTERM before SIGKILL.
GRACE_SECONDS = 10.0


class LaunchError(Exception):
    """A launch that cannot start: one line for the user."""


def free_ports(count):
    """`count` distinct TCP ports free on the loopback interface now."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((LOOPBACK, 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def tf_config(ports, index):
    """The `TF_CONFIG` of worker `index` of a loopback cluster on `ports`."""
    return json.dumps({"cluster": {"worker": [f"{LOOPBACK}:{p}" for p in ports]},
                       "task": {"type": "worker", "index": index}})


def _die_with_parent():
    """In the child, before exec: SIGKILL when the launcher dies (Linux)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:  # not Linux: the launcher's own handlers still stop the workers
        return


# nasp_tf's binaries (scripts and console entry points): a launch runs them
# with --strategy=multi_worker.
BINARIES = ("search.py", "train.py", "nasp-search", "nasp-train")


def command_for(args):
    """The worker command: a Python script (`bin/search.py ...`) runs with this
    interpreter; anything else as it is. nasp_tf's search and train binaries
    get --strategy=multi_worker unless the command already says so (a
    different --strategy is refused: one process per worker is the point)."""
    if not args:
        raise LaunchError("give the command after --, e.g. -- bin/search.py "
                          "--flagfile=configs/quickstart.flags")
    args = list(args)
    if os.path.basename(args[0]) in BINARIES:
        strategies = [a.split("=", 1)[1] for a in args[1:] if a.startswith("--strategy=")]
        others = [s for s in strategies if s != "multi_worker"]
        if others:
            raise LaunchError(f"the workers of a launch run --strategy=multi_worker; drop "
                              f"--strategy={others[0]}")
        if not strategies:
            args.append("--strategy=multi_worker")
    if args[0].endswith(".py"):
        if not os.path.isfile(args[0]):
            raise LaunchError(f"{args[0]} does not exist; give a script path such as "
                              "bin/search.py")
        return [sys.executable, *args]
    return args


class Launch:
    """N workers of one command, their output and their fate.

    Args:
      command: the worker command (argv list).
      workers: how many workers.
      ports: their loopback ports (default: free ones).
      out: where the prefixed lines go (default: stdout).
    """

    def __init__(self, command, workers, ports=None, out=None):
        if workers < 1:
            raise LaunchError(f"--workers must be at least 1. Received: {workers}")
        self.command, self.workers = command, workers
        self.ports = ports or free_ports(workers)
        self.out = out or sys.stdout
        self.processes = []
        self._lock = threading.Lock()

    def _forward(self, index, stream):
        prefix = f"[worker {index}] "
        for line in iter(stream.readline, ""):
            with self._lock:
                self.out.write(prefix + line if line.endswith("\n") else prefix + line + "\n")
                self.out.flush()
        stream.close()

    def start(self):
        threads = []
        for index in range(self.workers):
            env = dict(os.environ, TF_CONFIG=tf_config(self.ports, index),
                       PYTHONUNBUFFERED="1")
            process = subprocess.Popen(self.command, env=env, stdout=subprocess.PIPE,
                                       stderr=subprocess.STDOUT, text=True,
                                       preexec_fn=_die_with_parent)
            self.processes.append(process)
            thread = threading.Thread(target=self._forward, args=(index, process.stdout),
                                      daemon=True)
            thread.start()
            threads.append(thread)
        self._threads = threads

    def stop(self, sig=signal.SIGTERM):
        """Signals every running worker, then SIGKILLs those still running
        after the grace period."""
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(sig)
        deadline = time.monotonic() + GRACE_SECONDS
        for process in self.processes:
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def wait(self):
        """Waits for every worker; on the first failure stops the others.
        Returns the launch's exit code: 0, or the first failed worker's code
        (128 + signal number for a worker killed by a signal)."""
        failed = None
        while failed is None and any(p.poll() is None for p in self.processes):
            for index, process in enumerate(self.processes):
                code = process.poll()
                if code is not None and code != 0:
                    failed = (index, code)
                    break
            time.sleep(0.05)
        if failed is None:
            failed = next(((i, p.returncode) for i, p in enumerate(self.processes)
                           if p.returncode), None)
        if failed is not None:
            self.stop()
        for thread in self._threads:
            thread.join(timeout=5.0)
        if failed is None:
            return 0
        index, code = failed
        code = 128 - code if code < 0 else code
        print(f"launch.py: worker {index} exited with code {code}; stopped the others",
              file=sys.stderr)
        return code


def launch(command, workers, ports=None, out=None):
    """Runs `command` as `workers` workers of a loopback cluster; their exit code."""
    run = Launch(command, workers, ports, out)

    def stop_all(signum, frame):
        run.stop(signal.SIGTERM)
        sys.exit(128 + signum)

    previous = {s: signal.signal(s, stop_all) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        run.start()
        return run.wait()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def main(argv):
    """bin/launch.py [--workers=N] -- COMMAND ...: exit code of the launch."""
    program = "launch.py"
    if "--" in argv:
        split = argv.index("--")
        own, rest = argv[1:split], argv[split + 1:]
    else:
        own, rest = argv[1:], []
    workers = 2
    for arg in own:
        if arg in ("-h", "--help"):
            print("usage: python bin/launch.py [--workers=N] -- bin/search.py "
                  "[flags...]\n\nRuns N workers of the command on this machine, each with "
                  "its TF_CONFIG (loopback ports) and, for bin/search.py and bin/train.py, "
                  "--strategy=multi_worker; prefixes their output with [worker i], and "
                  "stops them all when one fails.")
            return 0
        if arg.startswith("--workers="):
            value = arg.split("=", 1)[1]
            if not value.isdigit() or int(value) < 1:
                print(f"{program}: error: --workers takes a whole number of at least 1. "
                      f"Received: {value!r}", file=sys.stderr)
                return 2
            workers = int(value)
        else:
            print(f"{program}: error: unknown flag {arg!r}; launch.py takes --workers=N, "
                  "then -- and the command", file=sys.stderr)
            return 2
    try:
        return launch(command_for(rest), workers)
    except LaunchError as e:
        print(f"{program}: error: {e}", file=sys.stderr)
        return 2
