"""bin/launch.py with stand-in workers (plain Python, no TensorFlow): every
worker gets its TF_CONFIG on a loopback port, the output is prefixed, a
failing worker stops the others and sets the exit code, bad inputs are one
line."""

import json
import os
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LAUNCH = os.path.join(ROOT, "bin", "launch.py")

REPORT = """
import json, os, sys
config = json.loads(os.environ["TF_CONFIG"])
print(json.dumps(config))
print("second line", file=sys.stderr)
"""

# Worker 1 fails at once; worker 0 would sleep for a minute and records its pid.
FAIL_ONE = """
import json, os, sys, time
index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
if index == 1:
    time.sleep(0.5)
    sys.exit(3)
with open(sys.argv[1], "w") as f:
    f.write(str(os.getpid()))
time.sleep(60)
"""


def _launch(*args, timeout=60):
    return subprocess.run([sys.executable, LAUNCH, *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def test_every_worker_gets_its_tf_config_and_a_prefix(tmp_path):
    script = tmp_path / "report.py"
    script.write_text(REPORT)
    result = _launch("--workers=3", "--", str(script))
    assert result.returncode == 0, result.stderr
    configs = {}
    for line in result.stdout.splitlines():
        prefix, _, rest = line.partition("] ")
        assert prefix.startswith("[worker ")
        if rest.startswith("{"):
            configs[int(prefix[len("[worker "):])] = json.loads(rest)
        else:
            assert rest == "second line"  # stderr is forwarded too
    assert sorted(configs) == [0, 1, 2]
    cluster = configs[0]["cluster"]["worker"]
    assert len(set(cluster)) == 3 and all(a.startswith("127.0.0.1:") for a in cluster)
    for index, config in configs.items():
        assert config["cluster"]["worker"] == cluster
        assert config["task"] == {"type": "worker", "index": index}


def test_a_failing_worker_stops_the_others_and_sets_the_exit_code(tmp_path):
    script, pid_file = tmp_path / "fail.py", tmp_path / "pid"
    script.write_text(FAIL_ONE)
    start = time.monotonic()
    result = _launch("--workers=2", "--", str(script), str(pid_file))
    assert result.returncode == 3
    assert time.monotonic() - start < 30  # not the sleeper's minute
    assert "worker 1 exited with code 3" in result.stderr
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):  # no orphan left behind
        os.kill(pid, 0)


@pytest.mark.parametrize("args,message", [
    (["--workers=0", "--", "x.py"], "--workers takes a whole number"),
    (["--workers=two", "--", "x.py"], "--workers takes a whole number"),
    (["--workers=2"], "give the command after --"),
    (["--", "no/such/script.py"], "does not exist"),
    (["--nodes=2", "--", "x.py"], "unknown flag"),
    (["--", "bin/search.py", "--strategy=mirrored"], "drop --strategy=mirrored"),
])
def test_bad_inputs_are_one_line(args, message):
    result = _launch(*args)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert lines[0].startswith("launch.py: error: ") and message in lines[0]
    assert "Traceback" not in result.stderr


def test_nasp_binaries_run_multi_worker_and_other_commands_as_given():
    from nasp_tf.tools import launcher

    search = os.path.join(ROOT, "bin", "search.py")
    assert launcher.command_for([search, "--flagfile=f"]) == [
        sys.executable, search, "--flagfile=f", "--strategy=multi_worker"]
    assert launcher.command_for(["nasp-train", "--strategy=multi_worker"]) == [
        "nasp-train", "--strategy=multi_worker"]
    worker = os.path.join(ROOT, "tests", "e2e", "multi_worker_worker.py")
    assert launcher.command_for([worker, "out.npz"]) == [sys.executable, worker, "out.npz"]


SLEEP = """
import os, sys, time, json
index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
with open(sys.argv[1] + str(index), "w") as f:
    f.write(str(os.getpid()))
time.sleep(60)
"""


def test_killing_the_launcher_kills_its_workers(tmp_path):
    script = tmp_path / "sleep.py"
    script.write_text(SLEEP)
    prefix = str(tmp_path / "pid")
    launcher = subprocess.Popen([sys.executable, LAUNCH, "--workers=2", "--", str(script),
                                 prefix], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not all(os.path.exists(prefix + str(i)) for i in range(2)):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.2)  # the pid is written before the sleep
    pids = [int(open(prefix + str(i)).read()) for i in range(2)]
    launcher.kill()
    launcher.wait()
    deadline = time.monotonic() + 10
    for pid in pids:
        while True:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            # A killed worker may linger as a zombie until reaped: check its state.
            try:
                with open(f"/proc/{pid}/stat") as f:
                    if f.read().split()[2] == "Z":
                        break
            except FileNotFoundError:
                break
            assert time.monotonic() < deadline, f"worker {pid} outlived the launcher"
            time.sleep(0.05)
