"""Fixtures of the whole suite, and how pytest-xdist shares its work out.

tests/unit/ runs the library in this process; tests/e2e/ runs the binaries
(bin/*.py) and the worker scripts next to its tests in subprocesses. The
end-to-end tests that read one run directory are the methods of one test
class with a class-scoped fixture that makes the run; with -n, each class is
sent to one worker whole (see `pytest_xdist_make_scheduler`), so every run
is made once.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# One TensorFlow compute thread per process, this one's and every binary's
# the tests start: with -n 2 two TensorFlow processes already run at once on
# the 2 cores of CI, and the suite's tiny networks gain nothing from a
# second thread but contention (two pinned jobs side by side: 32.8 s; one on
# both cores: 31.5 s).
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The package imports without being installed.
sys.path.insert(0, ROOT)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import process_limits  # noqa: E402  (tests/process_limits.py)


@pytest.fixture(scope="session")
def root():
    """The repository directory."""
    return ROOT


@pytest.fixture(scope="session")
def shared_data():
    """The read-only ../shared/data next to the repository; skips the test
    where its PTB text is absent (nothing but tests may read it)."""
    path = os.path.join(os.path.dirname(ROOT), "shared", "data")
    if not os.path.isdir(os.path.join(path, "ptb")):
        pytest.skip("the PTB text is not in ../shared/data/ptb")
    return path


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """pytest-xdist's scheduling by scope, with a test class as one unit and
    every other test a unit of its own: the methods of a class run on one
    worker, in order, and the rest is balanced test by test. (xdist 3.8's
    --dist loadgroup marks groups in item._nodeid, which pytest 9 no longer
    reads.)"""
    from xdist.scheduler import LoadScopeScheduling

    class ClassScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            path, *names = nodeid.split("[", 1)[0].split("::")  # parameters may hold "::"
            return f"{path}::{names[0]}" if len(names) > 1 else nodeid

    # Units in collection order, which `pytest_collection_modifyitems` makes
    # slow tests first (not xdist's default of the largest classes first).
    config.option.loadscopereorder = False
    return ClassScheduling(config, log)


def pytest_collection_modifyitems(config, items):
    """Runs the tests marked `slow` first (a stable sort: a class's tests stay
    together and in order), so that they do not leave one worker finishing a
    long test alone at the end."""
    items.sort(key=lambda item: 0 if item.get_closest_marker("slow") else 1)


# The tiny models and data the unit tests share.


@pytest.fixture
def regression_run():
    """Factory of a `Run` (nasp_tf.pipelines.common) around a one-weight
    regression through the origin (weight 0, plain SGD at `rate`, mean squared
    error): returns (run, model, optimizer, the epoch it resumes at). `config`
    adds to or overrides the run's `TrainConfig`."""

    def make(run_dir, epochs, rate, flags_text, **config):
        import keras

        from nasp_tf import optimizers
        from nasp_tf.config import TrainConfig
        from nasp_tf.pipelines import common

        config = TrainConfig(**{"output_dir": run_dir, "epochs": epochs, "verbose": 0,
                                "checkpoint_every": "0", **config})
        run = common.Run(config, flags_text)
        with run.strategy.scope():
            model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(
                1, use_bias=False, kernel_initializer="zeros", name="w")], name="regression")
            optimizer = optimizers.TorchSGD(rate, momentum=0.0)
            model.compile(optimizer=optimizer, loss="mse")
            optimizer.build(model.trainable_weights)
        return run, model, optimizer, run.resume(model, optimizer=optimizer)

    return make


@pytest.fixture
def tiny_supernet():
    """Factory of the tiny CNN supernet: 5 classes, C=4, 3 cells (normal,
    reduce, reduce), 2 nodes (5 edges: node sizes 2, 3), 8x8x3 images, its
    weights drawn from `seed`. The fixed name is bin/search.py's: checkpoints
    key weights by path."""
    import keras

    from nasp_tf.cnn import search_model

    def make(space="darts7", seed=0):
        keras.utils.set_random_seed(seed)  # the same weights whatever ran before
        return search_model.SearchNetwork(space, 5, 4, 3, 2, (8, 8, 3), name="supernet")

    return make


@pytest.fixture
def tiny_searcher(tiny_supernet):
    """Factory of a compiled CNN searcher over the tiny supernet (of `space`,
    weights from `seed`): `cls(supernet, **kwargs)` with PyTorch's SGD (lr,
    momentum, weight decay) on the weights and Adam (arch_lr, beta_1 0.5,
    L2 1e-3) on A."""
    from nasp_tf import optimizers

    def make(cls, space="darts7", lr=0.05, momentum=0.9, weight_decay=3e-4, arch_lr=3e-4,
             seed=0, **kwargs):
        searcher = cls(tiny_supernet(space, seed), name="searcher", **kwargs)
        searcher.compile(optimizers.TorchSGD(lr, momentum, weight_decay),
                         optimizers.TorchAdam(arch_lr))
        return searcher

    return make


@pytest.fixture(scope="session")
def image_batch():
    """Factory of a reproducible (images [size, 8, 8, 3], labels in 0..4) batch."""
    import tensorflow as tf

    def make(seed, size=4):
        rng = np.random.default_rng(seed)
        return (tf.constant(rng.normal(size=(size, 8, 8, 3)).astype(np.float32)),
                tf.constant(rng.integers(0, 5, size)))

    return make


@pytest.fixture(scope="session")
def direct_second_order():
    """DARTS's second-order architecture gradient (docs/reference.md §4.3) written
    out eagerly, step by step, as the reference to compare a searcher's compiled
    unrolled step with.

    The returned function takes (searcher, train, val, loss_at, arch), where
    `loss_at(searcher, batch, arch)` is the mean training-mode loss under the
    architecture tensors `arch` ({cell kind: tensor}). It returns ({kind:
    the second-order gradient}, {kind: the first-order gradient at w'}) as numpy
    arrays, and puts the weights back.
    """
    import tensorflow as tf

    def gradient_at(searcher, loss_at, data, arch):
        kinds = list(arch)
        with tf.GradientTape() as tape:
            tape.watch([arch[k] for k in kinds])
            loss = loss_at(searcher, data, arch)
        return {k: g.numpy() for k, g in zip(kinds, tape.gradient(loss, [arch[k]
                                                                         for k in kinds]))}

    def compute(searcher, train, val, loss_at, arch):
        weights = searcher.supernet.trainable_weights
        opt = searcher.weight_optimizer
        xi = float(opt.learning_rate)
        w0 = [w.numpy() for w in weights]
        with tf.GradientTape() as tape:
            loss = loss_at(searcher, train, arch)
        for w, value, g in zip(weights, w0, tape.gradient(loss, weights)):
            m = opt.momentums[opt._get_variable_index(w)].numpy()
            w.assign(value - xi * (0.9 * m + g.numpy() + 3e-4 * value))
        first = gradient_at(searcher, loss_at, val, arch)
        with tf.GradientTape() as tape:
            loss = loss_at(searcher, val, arch)
        vector = [v.numpy() for v in tape.gradient(loss, weights)]
        radius = 0.01 / np.sqrt(sum(float(np.sum(v.astype(np.float64) ** 2)) for v in vector))
        sided = []
        for sign in (1, -1):
            for w, value, v in zip(weights, w0, vector):
                w.assign(value + sign * radius * v)
            sided.append(gradient_at(searcher, loss_at, train, arch))
        for w, value in zip(weights, w0):
            w.assign(value)
        second = {k: first[k] - xi * (sided[0][k] - sided[1][k]) / (2 * radius) for k in arch}
        return second, first

    return compute


VOCAB, UNITS, BATCH, BPTT = 30, 8, 4, 5


@pytest.fixture
def tiny_rnn_searcher():
    """Factory of a compiled recurrent searcher: vocabulary 30, 8 units, batch 4,
    BPTT 5, 8 nodes, weights from `seed`; SGD without momentum on the weights,
    Adam (lr 3e-3, beta_1 0.9, L2 1e-3) on A. `kind` is "nasp" or "darts"
    (`none` added)."""
    import keras

    from nasp_tf import optimizers, spaces
    from nasp_tf.rnn import search_model
    from nasp_tf.search import darts_rnn, nasp_rnn

    def make(kind="nasp", lr=20.0, dropouts=0.0, seed=0, **kwargs):
        keras.utils.set_random_seed(seed)  # the same weights whatever ran before
        op_names = (spaces.RECURRENT_ACTIVATIONS_WITH_NONE if kind == "darts"
                    else spaces.RECURRENT_ACTIVATIONS)
        lm = search_model.search_language_model(VOCAB, UNITS, op_names, dropout=dropouts,
                                                dropouth=dropouts, dropoutx=dropouts, seed=1)
        cls = darts_rnn.DARTSRNNSearcher if kind == "darts" else nasp_rnn.NASPRNNSearcher
        searcher = cls(lm, batch_size=BATCH, search_batch_size=BATCH, eval_batch_size=BATCH,
                       bptt=BPTT, **kwargs)
        searcher.compile(optimizers.TorchSGD(lr, 0.0, 0.0),
                         optimizers.TorchAdam(3e-3, beta_1=0.9, l2=1e-3))
        return searcher

    return make


@pytest.fixture(scope="session")
def token_batch():
    """Factory of a reproducible (inputs, targets) chunk of [4, length] token ids
    below 30, targets the inputs shifted by one."""
    import tensorflow as tf

    def make(seed, length=BPTT):
        tokens = np.random.default_rng(seed).integers(0, VOCAB, (BATCH, length + 1))
        return (tf.constant(tokens[:, :-1], tf.int32), tf.constant(tokens[:, 1:], tf.int32))

    return make


@pytest.fixture(scope="session")
def tiny_corpus():
    """A synthetic Markov-chain corpus over 30 words (6000, 1200, 1200 tokens)."""
    from nasp_tf.data import text

    return text.synthetic_corpus(VOCAB, (6000, 1200, 1200), seed=0)


@pytest.fixture
def corpus_dir(tmp_path):
    """Factory of a tiny corpus directory of train/valid/test files (`None`
    leaves a split's file out)."""

    def make(train="a b\nc a\n", valid="b d\n", test="e\n", prefix="", name="corpus"):
        directory = tmp_path / name
        directory.mkdir(exist_ok=True)
        for split, body in (("train", train), ("valid", valid), ("test", test)):
            if body is not None:
                (directory / f"{prefix}{split}.txt").write_text(body)
        return str(directory)

    return make


# Subprocesses of the end-to-end tests.


class Prewarmed:
    """The client of tests/prewarmed.py: runs bin/search.py, bin/train.py and
    two test workers in children forked from an interpreter that has
    imported TensorFlow once (one server per test process, started on first
    use)."""

    # The programs, the test workers that run them on swapped data or on
    # ram://, and those that split the CPU into logical devices (the server
    # has imported TensorFlow but not started its runtime, so a child still
    # can). The workers that check what a fresh `import` loads run as new
    # interpreters.
    SCRIPTS = {"bin": ("search.py", "train.py"),
               os.path.join("tests", "e2e"): ("swapped_data_worker.py", "remote_dir_worker.py",
                                              "mirrored_worker.py", "space_mirrored_worker.py",
                                              "on_read_checkpoint_worker.py")}

    def __init__(self, root, env):
        self.root, self.env, self.server = root, env, None

    def takes(self, script):
        folder = os.path.relpath(os.path.dirname(os.path.abspath(script)), self.root)
        return (os.path.basename(script) in self.SCRIPTS.get(folder, ())
                and not os.environ.get("NASP_TF_TESTS_NO_PREWARM"))

    def ask(self, **request):
        import json

        if self.server is None or self.server.poll() is not None:
            self.server = subprocess.Popen(
                [sys.executable, os.path.join(self.root, "tests", "prewarmed.py")],
                cwd=self.root, env=self.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                text=True)
            assert self.server.stdout.readline().strip() == "ready"
        self.server.stdin.write(json.dumps(request) + "\n")
        self.server.stdin.flush()
        return json.loads(self.server.stdout.readline())

    def run(self, argv, cwd, timeout, scratch, **limits):
        import tempfile

        with tempfile.TemporaryDirectory(dir=scratch) as tmp:
            paths = {name: os.path.join(tmp, name) for name in ("stdout", "stderr")}
            code = self.ask(op="run", argv=argv, cwd=str(cwd), env=self.env, timeout=timeout,
                            **paths, **limits)["code"]
            out, err = (open(paths[name], encoding="utf-8", errors="replace").read()
                        for name in ("stdout", "stderr"))
        if code is None:
            raise subprocess.TimeoutExpired(argv, timeout, out, err)
        return subprocess.CompletedProcess(argv, code, out, err)

    def spawn(self, argv, cwd, scratch, **limits):
        import tempfile

        tmp = tempfile.mkdtemp(dir=scratch)
        paths = {name: os.path.join(tmp, name) for name in ("stdout", "stderr")}
        pid = self.ask(op="spawn", argv=argv, cwd=str(cwd), env=self.env, timeout=0,
                       **paths, **limits)["pid"]
        return SpawnedProgram(self, pid, paths["stderr"])

    def close(self):
        if self.server is not None and self.server.poll() is None:
            self.server.stdin.close()
            self.server.wait(timeout=60)


class SpawnedProgram:
    """What the kill tests use of a `subprocess.Popen`, for a program started
    by `Prewarmed.spawn`: pid, poll, send_signal, wait, returncode and stderr
    (binary)."""

    def __init__(self, prewarmed, pid, stderr_path):
        self.prewarmed, self.pid, self.returncode = prewarmed, pid, None
        self.stderr = open(stderr_path, "a+b")

    def poll(self):
        if self.returncode is None:
            reply = self.prewarmed.ask(op="poll", pid=self.pid)
            if reply["done"]:
                self.returncode = reply["code"]
                self.stderr.seek(0)
        return self.returncode

    def send_signal(self, sig):
        if self.returncode is None:
            os.kill(self.pid, sig)

    def wait(self, timeout=600):
        if self.returncode is None:
            self.returncode = self.prewarmed.ask(op="wait", pid=self.pid,
                                                 timeout=timeout)["code"]
            self.stderr.seek(0)
        return self.returncode


@pytest.fixture(scope="session")
def prewarmed(root):
    """The `Prewarmed` server of this test process (see `run_script`)."""
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "TF_CONFIG")}
    server = Prewarmed(root, env)
    yield server
    server.close()


@pytest.fixture(scope="session")
def start_bin(root, prewarmed, run_script, tmp_path_factory):
    """Starts bin/<program> with `args` and returns at once a `Popen`-like
    handle (pid, poll, send_signal, wait, returncode, stderr): for the tests
    that kill a run. Prewarmed like `run_script`."""
    scratch = tmp_path_factory.mktemp("spawned")

    def start(program, *args, **limits):
        script = os.path.join(root, "bin", program)
        argv = [script, *map(str, args)]
        if prewarmed.takes(script):
            return prewarmed.spawn(argv, root, scratch, **limits)
        return subprocess.Popen([sys.executable, *argv], cwd=root, env=prewarmed.env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                preexec_fn=lambda: process_limits.apply(**limits))

    return start


@pytest.fixture(scope="session")
def run_script(root, prewarmed, tmp_path_factory):
    """Runs a Python script in a fresh process from the repository directory, in
    the environment a new user has (TensorFlow's C++ log level left to the
    script), from `cwd` (default the repository). With `check` (the default)
    the run must exit 0. `limits` (`fsize=N`, `drop_dac_override=True`) are
    applied to the program's process (tests/prewarmed.py `limits`).

    bin/search.py and bin/train.py run in a fresh process forked from one that
    has imported TensorFlow already (tests/prewarmed.py): the program's code,
    arguments, directory and environment are the same, the import is not
    repeated a hundred times. NASP_TF_TESTS_NO_PREWARM=1 starts every program
    as a new interpreter instead."""
    env = prewarmed.env
    scratch = tmp_path_factory.mktemp("prewarmed")

    def run(script, *args, check=True, timeout=600, cwd=None, **limits):
        argv = [str(script), *map(str, args)]
        cwd = cwd or root
        if prewarmed.takes(script):
            result = prewarmed.run(argv, cwd, timeout, scratch, **limits)
        else:
            result = subprocess.run([sys.executable, *argv], cwd=cwd, env=env,
                                    capture_output=True, text=True, timeout=timeout,
                                    check=False, preexec_fn=lambda: process_limits.apply(**limits))
        if check:
            assert result.returncode == 0, result.stderr[-3000:]
        return result

    return run


@pytest.fixture(scope="session")
def run_bin(root, run_script):
    """Runs bin/<program> (e.g. "search.py") with `run_script`."""

    def run(program, *args, check=True, timeout=600):
        return run_script(os.path.join(root, "bin", program), *args, check=check,
                          timeout=timeout)

    return run


@pytest.fixture(scope="session")
def one_line_error():
    """Checks a binary's user error: exit `code`, exactly one non-empty stderr
    line, starting with "<prefix>: error: ", and no traceback; returns the line."""

    def check(result, code=2, prefix="search.py"):
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.returncode == code, result.stderr[-2000:]
        assert len(lines) == 1, result.stderr[-2000:]
        assert lines[0].startswith(f"{prefix}: error: "), lines[0]
        assert "Traceback" not in result.stderr
        return lines[0]

    return check
