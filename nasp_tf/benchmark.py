"""Search benchmarks (docs/benchmarks.md), run by `bin/bench.py`.

Three measurements, each searcher in its own subprocess so that its peak
resident memory is its own:

- the step benchmark (default): synthetic CIFAR-shaped batches, fixed per
  step; time to the first step (tracing and compilation), then the median
  seconds of the architecture update, the weight update and their sum over
  the timed steps; a table shaped like the NASP paper's Table 5;
- `--convergence` (the paper's Fig. 3): NASP, DARTS-1st and DARTS-2nd on
  digits for the same wall-clock budget, the validation accuracy of each
  one's current discrete architecture against seconds (CSV and PNG);
- `--eta_sweep` (the paper's Fig. 2): NASP on digits for several eta, each
  genotype retrained briefly; parameter counts and accuracies (CSV, PNG and
  a table).

This module imports TensorFlow only inside the workers.
"""

import csv
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import types

from absl import flags

from nasp_tf import run_dir
from nasp_tf.cli.flags_common import PRECISIONS
from nasp_tf.search import registry

PRESETS = {
    # pipeline_images: the --pipeline check's training set (CIFAR-10's 50,000).
    "small": {"init_channels": 8, "layers": 5, "batch_size": 16, "nodes": 4,
              "pipeline_images": 50000},
    "paper": {"init_channels": 16, "layers": 8, "batch_size": 64, "nodes": 4,
              "pipeline_images": 50000},
    # For the tests of the benchmark itself.
    "tiny": {"init_channels": 4, "layers": 3, "batch_size": 4, "nodes": 1,
             "pipeline_images": 512},
}
# The recurrent search (--task=text): DARTS's PTB search (configs/ptb.flags) at
# 300 units, batch 256, BPTT 35, PTB's 10,000 words ("paper"), smaller
# versions for a quick look ("small") and for the benchmark's tests ("tiny").
TEXT_PRESETS = {
    "small": {"rnn_units": 100, "batch_size": 64, "bptt": 35, "vocab": 10000},
    "paper": {"rnn_units": 300, "batch_size": 256, "bptt": 35, "vocab": 10000},
    "tiny": {"rnn_units": 8, "batch_size": 4, "bptt": 5, "vocab": 50},
}
TASKS = ("images", "text")
SEARCHERS = tuple(name for name, entry in registry.SEARCHERS.items()
                  if "images" in entry.families())
TEXT_SEARCHERS = tuple(name for name, entry in registry.SEARCHERS.items()
                       if "text" in entry.families())
SPACES = ("darts7", "nasp12")
LABELS = {name: entry.label for name, entry in registry.SEARCHERS.items()}
XLA = "_xla"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _cores():
    """The CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
        os.cpu_count() or 1)


def _known_searcher(name):
    return name.removesuffix(XLA) in SEARCHERS


def define_flags():
    f = flags
    f.DEFINE_enum("preset", "small", list(PRESETS), "Network and batch size "
                  "(docs/benchmarks.md): small C=8, 5 cells, batch 16; paper C=16, 8 cells, "
                  "batch 64; tiny (C=4, 3 cells, 2 nodes, batch 4) checks the benchmark.")
    f.DEFINE_enum("task", "images", TASKS, "The step benchmark's search: images (a CNN "
                  "cell, --space) or text (the recurrent cell; presets: small 100 units, "
                  "batch 64; paper 300 units, batch 256; BPTT 35, 10,000 words).")
    f.DEFINE_list("space", ["darts7"], "Search spaces, comma-separated (darts7, nasp12).")
    f.DEFINE_list("searchers", ["nasp", "darts1", "darts2"], "Searchers, comma-separated: "
                  f"{', '.join(SEARCHERS)}; add `{XLA}` (e.g. nasp{XLA}) to compile with XLA.")
    f.DEFINE_list("mixed_precision", ["float32"], "The step benchmark times every searcher "
                  f"under each of these dtype policies ({', '.join(PRECISIONS)}).")
    f.DEFINE_integer("steps", 10, "Timed steps per searcher.", lower_bound=10)
    f.DEFINE_integer("warmup", 3, "Untimed steps first (the first one compiles).",
                     lower_bound=1)
    f.DEFINE_string("json", None, "Write every number to this JSON file.")
    f.DEFINE_integer("seed", 2, "Seed of the synthetic data and the networks.")
    f.DEFINE_bool("convergence", False, "Run the convergence-in-time comparison (paper "
                  "Fig. 3) on digits instead of the step benchmark.")
    f.DEFINE_float("budget", 240.0, "--convergence: wall-clock seconds per searcher.",
                   lower_bound=10.0)
    f.DEFINE_float("eval_every", 10.0, "--convergence: search seconds between evaluations.",
                   lower_bound=0.1)
    f.DEFINE_list("eta_sweep", [], "Run the size-control sweep (paper Fig. 2) on digits "
                  "for these eta values instead of the step benchmark, e.g. 0,1,4,16.")
    f.DEFINE_integer("sweep_epochs", 10, "--eta_sweep: search epochs per eta.", lower_bound=1)
    f.DEFINE_integer("train_epochs", 10, "--eta_sweep: retraining epochs per genotype.",
                     lower_bound=1)
    f.DEFINE_bool("quality", False, "Run the cell-quality benchmark instead "
                  "(docs/quality.md): every searcher over several search seeds, the "
                  "published cells, random cells and the cells NASP starts from, each "
                  "retrained twice or more and measured on data no search saw; "
                  "quality.csv, quality.md and quality.png in --output_dir. About 2-3 hours "
                  "on 2 CPU cores; run it again with the same --output_dir to go on where "
                  "it stopped.")
    f.DEFINE_bool("quick", False, "--quality: a tiny version of both tasks (minutes).")
    f.DEFINE_list("quality_tasks", ["images", "text"], "--quality: tasks (images: the "
                  "digits protocol; text: the shipped PTB sample).")
    f.DEFINE_list("quality_searchers", [], "--quality: searchers (default: nasp, darts1, "
                  "darts2, pa, pa_lazy on images; nasp, darts1 on text).")
    f.DEFINE_integer("random_cells", 0, "--quality: random cells per task (0: 20 on images, "
                     "10 on text).", lower_bound=0)
    f.DEFINE_integer("quality_jobs", _cores(), "--quality: searches and retrainings run at "
                     "once, each pinned to its own CPU core (default: the cores this process "
                     "may use; 1: one at a time on all cores).", lower_bound=1)
    f.DEFINE_bool("pipeline", False, "Also time the image search input pipeline alone "
                  "(CIFAR-shaped images, augmentation and cutout, the preset's batch).")
    f.DEFINE_string("output_dir", "runs/bench", "Where --convergence and --eta_sweep write "
                    "their CSV, PNG and runs.")
    f.DEFINE_string("worker", None, "Internal: run one measurement (JSON) and print it.")

    flags.register_validator("output_dir", run_dir.usable_path,
                             "--output_dir must be a directory on disk that we can write")
    flags.register_validator("json", lambda v: v is None or run_dir.usable_path(v, "--json"),
                             "--json must be a file path on disk that we can write")
    flags.register_validator("space", lambda v: bool(v) and set(v) <= set(SPACES),
                             f"--space takes a comma-separated subset of {', '.join(SPACES)}")
    flags.register_validator("searchers", lambda v: bool(v) and all(map(_known_searcher, v)),
                             f"--searchers takes a comma-separated subset of "
                             f"{', '.join(SEARCHERS)} (each optionally with {XLA})")
    flags.register_validator("mixed_precision", lambda v: bool(v) and set(v) <= set(PRECISIONS),
                             f"--mixed_precision takes a comma-separated subset of "
                             f"{', '.join(PRECISIONS)}")
    flags.register_multi_flags_validator(
        ["task", "searchers"],
        lambda v: v["task"] == "images" or all(s in TEXT_SEARCHERS for s in v["searchers"]),
        f"--task=text times the recurrent searchers {', '.join(TEXT_SEARCHERS)} (no {XLA})")
    flags.register_multi_flags_validator(
        ["task", "pipeline"], lambda v: not (v["pipeline"] and v["task"] == "text"),
        "--pipeline times the image search pipeline: use it with --task=images")
    flags.register_validator("quality_tasks", lambda v: bool(v) and set(v) <= {"images", "text"},
                             "--quality_tasks takes images, text or both")
    flags.register_validator("quality_searchers",
                             lambda v: all(s in SEARCHERS for s in v),
                             f"--quality_searchers takes names among {', '.join(SEARCHERS)}")
    flags.register_validator("eta_sweep", _floats_at_least_zero,
                             "--eta_sweep takes comma-separated numbers >= 0")


def _floats_at_least_zero(values):
    try:
        return all(float(v) >= 0 for v in values)
    except ValueError:
        return False


# Workers: one measurement per process.


def search_config(**overrides):
    """A search configuration with bin/search.py's defaults, as the workers need it."""
    config = dict(space="darts7", searcher="nasp", init_channels=16, layers=8, nodes=4,
                  eta=0.0, penalize="normal", prox_value="one", grad_clip=5.0,
                  derive="complete", learning_rate=0.025, learning_rate_min=0.001, epochs=50,
                  momentum=0.9, weight_decay=3e-4, arch_learning_rate=3e-4, arch_beta1=0.5,
                  arch_weight_decay=1e-3, pa_learning_rate=None, pa_order="2",
                  arch_lr_schedule="constant",
                  jit_compile=False)
    config.update(overrides)
    return types.SimpleNamespace(**config)


def peak_rss_gb():
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def _step_functions(searcher, jit_compile):
    import tensorflow as tf

    def arch(train, val):
        searcher.update_arch(train, val)
        return searcher.arch_loss.result()

    def weights(images, labels):
        searcher.update_weights(images, labels)
        return searcher.train_loss.result()

    return (tf.function(arch, jit_compile=jit_compile),
            tf.function(weights, jit_compile=jit_compile))


def _time_steps(searcher, jit_compile, train, val, spec):
    """Runs spec's warm-up and timed steps (the architecture step on (train,
    val), then the weight step on train); the medians and every timing."""
    arch_fn, weight_fn = _step_functions(searcher, jit_compile)
    arch_s, weight_s = [], []
    for step in range(spec["warmup"] + spec["steps"]):
        t0 = time.perf_counter()
        arch_loss = float(arch_fn(train, val))
        t1 = time.perf_counter()
        weight_loss = float(weight_fn(*train))
        t2 = time.perf_counter()
        if step == 0:
            first_step_s = t2 - t0
        if step >= spec["warmup"]:
            arch_s.append(t1 - t0)
            weight_s.append(t2 - t1)
    totals = [a + w for a, w in zip(arch_s, weight_s)]
    return {"arch_s": statistics.median(arch_s), "weight_s": statistics.median(weight_s),
            "total_s": statistics.median(totals), "first_step_s": first_step_s,
            "arch_s_all": arch_s, "weight_s_all": weight_s,
            "final_losses": [arch_loss, weight_loss]}


def _set_policy(spec):
    from nasp_tf import precision

    precision.set_policy(spec.get("policy", "float32"))


def step_worker(spec):
    """Times one searcher on fixed synthetic batches (docs/benchmarks.md)."""
    import numpy as np
    import tensorflow as tf

    from nasp_tf.pipelines import common, image_search

    common.seed_everything(spec["seed"], False)
    _set_policy(spec)
    preset = PRESETS[spec["preset"]]
    name = spec["searcher"]
    xla = name.endswith(XLA)
    config = search_config(space=spec["space"], searcher=name.removesuffix(XLA),
                           init_channels=preset["init_channels"], layers=preset["layers"],
                           nodes=preset["nodes"], jit_compile=xla)
    start = time.perf_counter()
    searcher, _ = image_search.build_searcher(config, (32, 32, 3), 10, steps_per_epoch=391)
    build_s = time.perf_counter() - start
    rng = np.random.default_rng(spec["seed"])

    def batch():
        return (tf.constant(rng.normal(size=(preset["batch_size"], 32, 32, 3)), tf.float32),
                tf.constant(rng.integers(0, 10, preset["batch_size"]), tf.int32))

    train, val = batch(), batch()
    timed = _time_steps(searcher, xla, train, val, spec)
    return {
        "searcher": name, "space": spec["space"], "preset": spec["preset"],
        "policy": spec.get("policy", "float32"), **timed,
        "build_s": build_s, "peak_rss_gb": peak_rss_gb(),
        "parameters": int(sum(np.prod(w.shape) for w in searcher.supernet.trainable_weights)),
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
        "tensorflow": tf.__version__, "tf_build": tf_build(),
    }


def text_search_config(**overrides):
    """A recurrent search configuration with configs/ptb.flags' settings."""
    config = dict(searcher="nasp", rnn_units=300, rnn_steps=8, batch_size=256,
                  eval_batch_size=10, bptt=35, learning_rate=20.0, momentum=0.0,
                  weight_decay=5e-7, grad_clip=0.25, arch_learning_rate=3e-3, arch_beta1=0.9,
                  arch_weight_decay=1e-3, arch_lr_schedule="constant", epochs=50,
                  dropout=0.75, dropouth=0.25, dropoutx=0.75, dropouti=0.2, dropoute=0.0,
                  tar_beta=1e-3, ar_alpha=0.0, seed=3, eta=0.0, prox_value="one",
                  derive="complete", penalize="normal")
    config.update(overrides)
    return types.SimpleNamespace(**config)


def text_step_worker(spec):
    """Times one recurrent searcher's architecture step (on a search chunk)
    and weight step (on a training chunk), as `train_step` runs them, on
    fixed synthetic chunks of BPTT tokens."""
    import numpy as np
    import tensorflow as tf

    from nasp_tf.pipelines import common, text_search

    common.seed_everything(spec["seed"], False)
    _set_policy(spec)
    preset = TEXT_PRESETS[spec["preset"]]
    config = text_search_config(searcher=spec["searcher"], rnn_units=preset["rnn_units"],
                                batch_size=preset["batch_size"], bptt=preset["bptt"],
                                seed=spec["seed"])
    start = time.perf_counter()
    searcher = text_search.build_searcher(config, preset["vocab"], steps_per_epoch=100)
    build_s = time.perf_counter() - start
    rng = np.random.default_rng(spec["seed"])

    def chunk():
        tokens = rng.integers(0, preset["vocab"], (preset["batch_size"], preset["bptt"] + 1))
        return (tf.constant(tokens[:, :-1], tf.int32), tf.constant(tokens[:, 1:], tf.int32))

    train, search = chunk(), chunk()
    timed = _time_steps(searcher, False, train, search, spec)
    return {
        "searcher": spec["searcher"], "space": "recurrent", "preset": spec["preset"],
        "policy": spec.get("policy", "float32"), **timed,
        "build_s": build_s, "peak_rss_gb": peak_rss_gb(),
        "parameters": int(sum(np.prod(w.shape) for w in searcher.model.trainable_weights)),
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
        "tensorflow": tf.__version__, "tf_build": tf_build(),
    }


def _digits_searcher(searcher_name, seed, eta=0.0):
    """A searcher with configs/quickstart.flags' settings, and its digits data."""
    from nasp_tf.data import images
    from nasp_tf.pipelines import common, image_search

    common.seed_everything(seed, True)
    source = images.get_source("digits", None, False)
    data = images.search_data(source, 32, seed)
    config = search_config(searcher=searcher_name, init_channels=8, layers=5, epochs=20,
                           learning_rate=0.05, arch_learning_rate=3e-3, eta=eta)
    searcher, _ = image_search.build_searcher(config, source.image_shape, source.num_classes,
                                            data.steps_per_epoch)
    return searcher, data


STATISTICS_BATCHES = 20


def convergence_worker(spec):
    """Searches digits for `budget` seconds, evaluating the discrete architecture
    on the validation half after every `eval_every` seconds of search
    (evaluation time is not counted).

    Before each evaluation the batch-norm statistics of the network evaluated
    are recomputed from `STATISTICS_BATCHES` training batches in training mode
    (from zero mean and unit variance), so that a searcher whose discrete cell
    is not what it trains (DARTS) is not judged with statistics collected
    under another network; the search's own statistics are put back after.
    DARTS's mixture (the supernet it trains) is evaluated the same way.
    """
    import tensorflow as tf

    searcher, data = _digits_searcher(spec["searcher"], spec["seed"])
    train_step = tf.function(searcher.train_step)
    mixture = getattr(searcher, "mixture", None)
    networks = {"discrete": lambda images, training: searcher(images, training=training)}
    if mixture is not None:
        networks["mixture"] = lambda images, training: searcher.supernet(
            images, mixture(), mode="dense", training=training)
    compiled = {name: tf.function(fn, reduce_retracing=True) for name, fn in networks.items()}
    statistics = searcher.supernet.non_trainable_weights

    def accuracy(name):
        saved = [s.numpy() for s in statistics]
        for s in statistics:
            s.assign(tf.ones_like(s) if "variance" in s.path else tf.zeros_like(s))
        train_batches = iter(data.pairs)
        for _ in range(STATISTICS_BATCHES):
            (images, _), _ = next(train_batches)
            compiled[name](images, True)
        correct = total = 0
        for images, labels in data.validation:
            guess = tf.argmax(compiled[name](images, False), axis=-1, output_type=tf.int32)
            correct += int(tf.reduce_sum(tf.cast(guess == tf.cast(labels, tf.int32), tf.int32)))
            total += int(labels.shape[0])
        for s, value in zip(statistics, saved):
            s.assign(value)
        return correct / total

    def evaluate():
        return {f"{name}_accuracy": accuracy(name) for name in networks}

    points = [{"seconds": 0.0, "steps": 0, **evaluate()}]
    elapsed, steps = 0.0, 0
    pairs = iter(data.pairs)
    while elapsed < spec["budget"]:
        start = time.perf_counter()
        while time.perf_counter() - start < spec["eval_every"]:
            float(train_step(next(pairs))["loss"])  # waits for the step to finish
            steps += 1
        elapsed += time.perf_counter() - start
        points.append({"seconds": elapsed, "steps": steps, **evaluate()})
    return {"searcher": spec["searcher"], "points": points,
            "genotype": searcher.genotype().to_json(), "peak_rss_gb": peak_rss_gb()}


# The search pipeline check: CIFAR-10's search split (two halves of the
# training set) with the real augmentation (4-pixel pad and crop, flip) and a
# cutout hole.
PIPELINE_CUTOUT = 16


def pipeline_worker(spec):
    """Seconds per (train, val) batch pair from the image search pipeline
    alone, on random CIFAR-shaped uint8 images (CIFAR-10 itself is not
    needed: the cost depends on the shapes, not on the pixels)."""
    from nasp_tf.data import images

    source = images.synthetic_source(num_train=spec["images"], num_test=64)
    data = images.search_data(source, spec["batch_size"], spec["seed"],
                              cutout=PIPELINE_CUTOUT)
    pairs = iter(data.pairs)
    for _ in range(5):
        next(pairs)
    start = time.perf_counter()
    for _ in range(100):
        next(pairs)
    return {"seconds_per_pair": (time.perf_counter() - start) / 100,
            "batch_size": spec["batch_size"], "images": spec["images"],
            "cutout": PIPELINE_CUTOUT}


WORKERS = {"step": step_worker, "text_step": text_step_worker,
           "convergence": convergence_worker,
           "pipeline": pipeline_worker}
RESULT = "BENCH-RESULT "
WORKER_COMMAND = "from nasp_tf.cli import entry_points; entry_points.bench()"


def run_worker(spec):
    from nasp_tf.cli import main as cli_main

    with cli_main.quiet_native_stderr():
        import tensorflow as tf
    tf.get_logger().setLevel("ERROR")
    print(RESULT + json.dumps(WORKERS[spec["task"]](spec)), flush=True)


def in_subprocess(spec):
    """Runs one worker in a fresh Python process; its result, or a one-line error."""
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # The worker runs the bench entry point, wherever nasp_tf is installed.
    result = subprocess.run([sys.executable, "-c", WORKER_COMMAND,
                             f"--worker={json.dumps(spec)}"],
                            capture_output=True, text=True, env=env, cwd=ROOT, check=False)
    for line in result.stdout.splitlines():
        if line.startswith(RESULT):
            return json.loads(line[len(RESULT):])
    tail = [line for line in result.stderr.splitlines() if line.strip()][-1:]
    raise RuntimeError(f"{spec['task']} worker for {spec.get('searcher', '')} failed "
                       f"(exit {result.returncode}): {tail[0] if tail else 'no output'}")


# The step benchmark.


def step_table(results):
    """Markdown, the shape of the paper's Table 5, with time and memory ratios to NASP."""
    lines = ["| searcher | space | arch update (s) | weight update (s) | total (s/step) | "
             "first step (s) | peak RSS (GB) | time / NASP | memory / NASP |",
             "|---|---|---|---|---|---|---|---|---|"]
    # The ratios are to NASP in float32 on the same space (else its first policy).
    nasp = {}
    for r in results:
        if r["searcher"] == "nasp" and (r["space"] not in nasp
                                        or r.get("policy", "float32") == "float32"):
            nasp[r["space"]] = r
    for r in results:
        base = nasp.get(r["space"])
        ratio = f"{r['total_s'] / base['total_s']:.2f}x" if base else "-"
        memory = f"{r['peak_rss_gb'] / base['peak_rss_gb']:.2f}x" if base else "-"
        name = r["searcher"]
        label = LABELS[name.removesuffix(XLA)] + (" (XLA)" if name.endswith(XLA) else "")
        if r.get("policy", "float32") != "float32":
            label += f" ({r['policy']})"
        lines.append(f"| {label} | {r['space']} | {r['arch_s']:.3f} | {r['weight_s']:.3f} | "
                     f"{r['total_s']:.3f} | {r['first_step_s']:.1f} | "
                     f"{r['peak_rss_gb']:.2f} | {ratio} | {memory} |")
    return "\n".join(lines)


def cpu_info():
    """The CPU model and the vector-extension flags that change timings (avx2,
    avx512*, amx*), from /proc/cpuinfo where there is one."""
    model, extensions = platform.processor() or "unknown", []
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    model = value.strip()
                elif key.strip() == "flags":
                    extensions = sorted(flag for flag in value.split()
                                        if flag == "avx2" or flag.startswith(("avx512", "amx")))
                    break
    except OSError:  # no /proc/cpuinfo (not Linux): the platform's name alone
        return model, extensions
    return model, extensions


def tf_build():
    """What this process's TensorFlow was built with, as far as it says: the
    version, compiler, CUDA build and whether oneDNN kernels are on (they
    change CPU timings; TF_ENABLE_ONEDNN_OPTS=0 turns them off)."""
    import tensorflow as tf

    info = dict(tf.sysconfig.get_build_info())
    build = {"version": tf.__version__, "cpu_compiler": info.get("cpu_compiler"),
             "is_cuda_build": bool(info.get("is_cuda_build")),
             "onednn_env": os.environ.get("TF_ENABLE_ONEDNN_OPTS")}
    try:  # private, but the only switch TF exposes for it
        from tensorflow.python.util import _pywrap_util_port

        build["onednn"] = bool(_pywrap_util_port.IsMklEnabled()) and \
            build["onednn_env"] not in ("0", "false", "False")
    except (ImportError, AttributeError):
        build["onednn"] = None
    return build


def machine():
    model, extensions = cpu_info()
    return {"python": platform.python_version(), "cpus": os.cpu_count(), "cpu_model": model,
            "cpu_flags": extensions, "platform": platform.platform(),
            "command": " ".join(sys.argv)}


def run_steps(config):
    results = []
    text = config.task == "text"
    for space in ["recurrent"] if text else config.space:
        for name in config.searchers:
            for policy in config.mixed_precision:
                spec = {"task": "text_step" if text else "step", "searcher": name,
                        "space": space, "preset": config.preset, "steps": config.steps,
                        "warmup": config.warmup, "seed": config.seed, "policy": policy}
                print(f"{name} on {space} ({config.preset}, {policy}) ...", file=sys.stderr,
                      flush=True)
                results.append(in_subprocess(spec))
    if text:
        sizes = TEXT_PRESETS[config.preset]
        shape = (f"{sizes['rnn_units']} units, batch {sizes['batch_size']}, BPTT "
                 f"{sizes['bptt']}, {sizes['vocab']:,} words; one step = the architecture "
                 "step and the weight step")
    else:
        sizes = PRESETS[config.preset]
        shape = (f"C={sizes['init_channels']}, {sizes['layers']} cells, {sizes['nodes']} "
                 f"nodes, batch {sizes['batch_size']}")
    print(f"preset {config.preset}: {shape}; median of {config.steps} "
          f"steps after {config.warmup} warm-up; TF threads "
          f"intra={results[0]['intra_op_threads']} inter={results[0]['inter_op_threads']} "
          f"(0 = TF's default, all {os.cpu_count()} cores)")
    model, extensions = cpu_info()
    build = results[0]["tf_build"]
    print(f"machine: {model}, {os.cpu_count()} cores, {' '.join(extensions) or 'no avx2'}; "
          f"TensorFlow {build['version']} ({build['cpu_compiler']}, oneDNN "
          f"{'on' if build['onednn'] else 'off' if build['onednn'] is False else 'unknown'})")
    print(step_table(results))
    report = {"kind": "step", "task": config.task, "machine": machine(),
              "preset": config.preset, "preset_sizes": sizes, "results": results}
    if config.pipeline:
        pipe = in_subprocess({"task": "pipeline", "seed": config.seed,
                              "batch_size": sizes["batch_size"],
                              "images": sizes["pipeline_images"]})
        nasp = [r["total_s"] for r in results if r["searcher"] == "nasp"]
        versus = f" (NASP's step: {min(nasp):.3f} s)" if nasp else ""
        print(f"search input pipeline alone (CIFAR-shaped, pad-crop, flip, cutout "
              f"{pipe['cutout']}): {pipe['seconds_per_pair']:.3f} s per (train, val) pair "
              f"of batch {pipe['batch_size']}{versus}")
        report["pipeline"] = pipe
    return report


# Convergence in time.


def plot_lines(path, series, xlabel, ylabel, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for label, (xs, ys) in series.items():
        ax.plot(xs, ys, marker="o", markersize=3, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def run_convergence(config):
    os.makedirs(config.output_dir, exist_ok=True)
    results = []
    for name in config.searchers:
        print(f"{name}: searching digits for {config.budget:.0f} s ...", file=sys.stderr,
              flush=True)
        results.append(in_subprocess({"task": "convergence", "searcher": name,
                                      "budget": config.budget, "eval_every": config.eval_every,
                                      "seed": config.seed}))
    csv_path = os.path.join(config.output_dir, "convergence.csv")
    with open(csv_path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["searcher", "seconds", "steps", "network", "accuracy"])
        for r in results:
            for p in r["points"]:
                for network in ("discrete", "mixture"):
                    if f"{network}_accuracy" in p:
                        writer.writerow([r["searcher"], f"{p['seconds']:.2f}", p["steps"],
                                         network, f"{p[network + '_accuracy']:.4f}"])
    series = {}
    for r in results:
        for network in ("discrete", "mixture"):
            if f"{network}_accuracy" in r["points"][0]:
                label = LABELS[r["searcher"]] + (" (mixture)" if network == "mixture" else "")
                series[label] = ([p["seconds"] for p in r["points"]],
                                 [p[f"{network}_accuracy"] for p in r["points"]])
    png_path = os.path.join(config.output_dir, "convergence.png")
    plot_lines(png_path, series, "search seconds (compilation included, evaluation excluded)",
               "validation accuracy (statistics recomputed)",
               "Convergence in time on digits (cf. NASP Fig. 3)")
    print("| searcher | network | steps in budget | accuracy at end | best accuracy |")
    print("|---|---|---|---|---|")
    for r in results:
        for network in ("discrete", "mixture"):
            if f"{network}_accuracy" not in r["points"][0]:
                continue
            accs = [p[f"{network}_accuracy"] for p in r["points"]]
            print(f"| {LABELS[r['searcher']]} | {network} | {r['points'][-1]['steps']} | "
                  f"{accs[-1]:.4f} | {max(accs):.4f} |")
    print(f"wrote {csv_path} and {png_path}")
    return {"kind": "convergence", "machine": machine(), "budget_s": config.budget,
            "results": results}


# Size control.


def _run_binary(args):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run([sys.executable, *args], capture_output=True, text=True,
                            env=env, cwd=ROOT, check=False)
    if result.returncode != 0:
        tail = [line for line in result.stderr.splitlines() if line.strip()][-1:]
        raise RuntimeError(f"{os.path.basename(args[0])} failed: "
                           f"{tail[0] if tail else result.returncode}")
    return result.stdout


def _parameters(genotype_path, flagfile):
    out = _run_binary([os.path.join(ROOT, "bin", "train.py"), f"--flagfile={flagfile}",
                       f"--genotype={genotype_path}", "--dry_run"])
    return int(out.split("parameters:")[1].split()[0])


def run_eta_sweep(config):
    os.makedirs(config.output_dir, exist_ok=True)
    rows = []
    for eta in (float(v) for v in config.eta_sweep):
        run_dir = os.path.abspath(os.path.join(config.output_dir, f"eta_{eta:g}"))
        print(f"eta={eta:g}: search and retraining in {run_dir} ...", file=sys.stderr,
              flush=True)
        start = time.perf_counter()
        _run_binary([os.path.join(ROOT, "bin", "search.py"),
                     f"--flagfile={os.path.join(ROOT, 'configs', 'quickstart.flags')}",
                     f"--eta={eta}", f"--epochs={config.sweep_epochs}", "--deterministic",
                     f"--seed={config.seed}", "--verbose=0", f"--output_dir={run_dir}/search"])
        genotype = os.path.join(run_dir, "search", "genotype.json")
        out = _run_binary([os.path.join(ROOT, "bin", "train.py"),
                           f"--flagfile={os.path.join(ROOT, 'configs', 'quickstart_train.flags')}",
                           f"--genotype={genotype}", f"--epochs={config.train_epochs}",
                           f"--seed={config.seed}", "--verbose=0",
                           f"--output_dir={run_dir}/train"])
        accuracy = float(out.split("test top-1:")[1].split()[0])
        with open(genotype, encoding="utf-8") as f:
            normal = [op for op, _ in json.load(f)["normal"]]
        rows.append({
            "eta": eta, "test_accuracy": accuracy,
            "digits_parameters": _parameters(
                genotype, os.path.join(ROOT, "configs", "quickstart_train.flags")),
            "cifar10_parameters": _parameters(
                genotype, os.path.join(ROOT, "configs", "cifar10_train.flags")),
            "normal_ops": normal, "seconds": time.perf_counter() - start})
    csv_path = os.path.join(config.output_dir, "eta_sweep.csv")
    with open(csv_path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["eta", "cifar10_parameters", "digits_parameters", "test_accuracy",
                         "normal_ops"])
        for r in rows:
            writer.writerow([r["eta"], r["cifar10_parameters"], r["digits_parameters"],
                             f"{r['test_accuracy']:.4f}", " ".join(r["normal_ops"])])
    png_path = os.path.join(config.output_dir, "eta_sweep.png")
    _plot_sweep(png_path, rows)
    print("| eta | parameters (CIFAR-10 net, C=36, 20 cells) | parameters (digits net) | "
          "digits test accuracy | normal cell ops |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['eta']:g} | {r['cifar10_parameters'] / 1e6:.2f} M | "
              f"{r['digits_parameters'] / 1e3:.1f} k | {r['test_accuracy']:.4f} | "
              f"{', '.join(r['normal_ops'])} |")
    print(f"wrote {csv_path} and {png_path}")
    return {"kind": "eta_sweep", "machine": machine(), "rows": rows}


def _plot_sweep(path, rows):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    etas = [r["eta"] for r in rows]
    fig, left = plt.subplots(figsize=(6, 4), dpi=120)
    left.plot(etas, [r["cifar10_parameters"] / 1e6 for r in rows], "o-", color="tab:blue")
    left.set_xlabel("eta (weight of the complexity penalty R)")
    left.set_ylabel("parameters of the CIFAR-10 network (M)", color="tab:blue")
    right = left.twinx()
    right.plot(etas, [100 * r["test_accuracy"] for r in rows], "s--", color="tab:red")
    right.set_ylabel("digits test accuracy (%)", color="tab:red")
    left.set_title("Size control by eta (cf. NASP Fig. 2)")
    if len(etas) > 1 and min(etas) > 0:
        left.set_xscale("log")
    left.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def run(config):
    """The benchmark `config` (parsed flags) asks for; returns its report."""
    if config.worker:
        run_worker(json.loads(config.worker))
        return None
    if config.quality:
        from nasp_tf.bench import quality

        report = quality.run_quality(config, machine())
    elif config.convergence:
        report = run_convergence(config)
    elif config.eta_sweep:
        report = run_eta_sweep(config)
    else:
        report = run_steps(config)
    if config.json:
        with open(config.json, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=1)
        print(f"wrote {config.json}")
    return report
