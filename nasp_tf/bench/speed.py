"""The search-step benchmark (`nasp-bench`, docs/benchmarks.md): every
searcher in its own process on fixed synthetic batches; the time to the
first step (tracing and compilation), then the median seconds of the
architecture update, the weight update and their sum over the timed steps,
and the peak resident memory; a table shaped like the NASP paper's Table 5.
`--task=text` times the recurrent searchers the same way. This module loads
TensorFlow only inside the workers."""

import math
import os
import statistics
import sys
import time

from nasp_tf import config as config_lib
from nasp_tf import shipped
from nasp_tf.bench import jobs, machine
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
SPACES = ("darts7", "nasp12")
# NASP by `SpaceSearcher` on the same cells written with nasp_tf.Choice
# (`nasp_tf.cnn.choice_network`): what a space of your own costs against the
# built-in supernet.
CHOICE = "nasp_choice"
SEARCHERS = tuple(n for n, e in registry.SEARCHERS.items() if "images" in e.families()) \
    + (CHOICE,)
TEXT_SEARCHERS = tuple(n for n, e in registry.SEARCHERS.items() if "text" in e.families())
LABELS = {**{name: entry.label for name, entry in registry.SEARCHERS.items()},
          CHOICE: "NASP on Choice cells"}
# The searchers whose Ā is prox_c1(A): --pin fixes it for their timed steps.
PINNABLE = ("nasp", "pa", "pa_lazy", CHOICE)
XLA = "_xla"
# --pin=worst: every edge the costliest op of its cell (`worst_genotype`).
WORST = "worst"
# The search pipeline check: CIFAR-10's search split (two halves of the
# training set) with the real augmentation (4-pixel pad and crop, flip) and a
# cutout hole.
PIPELINE_CUTOUT = 16


def _time_steps(searcher, jit_compile, train, val, spec, before_step=None, ran=None):
    """Runs spec's warm-up and timed steps (the architecture step on (train,
    val), then the weight step on train); the medians and every timing.
    `before_step()` runs before each step, untimed; `ran()` names the ops
    each timed step's weight update ran."""
    import tensorflow as tf

    def arch(train, val):
        searcher.update_arch(train, val)
        return searcher.arch_loss.result()

    def weights(inputs, targets):
        searcher.update_weights(inputs, targets)
        return searcher.train_loss.result()

    arch_fn = tf.function(arch, jit_compile=jit_compile)
    weight_fn = tf.function(weights, jit_compile=jit_compile)
    arch_s, weight_s, ops, diverged = [], [], [], []
    for step in range(spec["warmup"] + spec["steps"]):
        if before_step is not None:
            before_step()
        t0 = time.perf_counter()
        arch_loss = float(arch_fn(train, val))
        t1 = time.perf_counter()
        weight_loss = float(weight_fn(*train))
        t2 = time.perf_counter()
        if step == 0:
            first_step_s = t2 - t0
        if step >= spec["warmup"]:
            # A step whose loss is NaN/inf may skip work (or run slow paths):
            # such a run is reported as diverged, not as a timing.
            if not (math.isfinite(arch_loss) and math.isfinite(weight_loss)):
                diverged.append(step - spec["warmup"])
            arch_s.append(t1 - t0)
            weight_s.append(t2 - t1)
            if ran is not None:
                ops.append(ran())
    totals = [a + w for a, w in zip(arch_s, weight_s)]
    return {"arch_s": statistics.median(arch_s), "weight_s": statistics.median(weight_s),
            "total_s": statistics.median(totals), "first_step_s": first_step_s,
            "arch_s_all": arch_s, "weight_s_all": weight_s, "ops_per_step": ops,
            "final_losses": [arch_loss, weight_loss], "diverged_steps": diverged}


def _process_facts(parameters):
    import tensorflow as tf

    return {"peak_rss_gb": machine.peak_rss_gb(), "parameters": parameters,
            "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
            "tensorflow": tf.__version__, "tf_build": machine.tf_build()}


def step_worker(spec):
    """Times one CNN searcher on fixed synthetic CIFAR-shaped batches."""
    import numpy as np
    import tensorflow as tf

    from nasp_tf import counting, precision
    from nasp_tf.pipelines import common, image_search

    common.seed_everything(spec["seed"], False)
    precision.set_policy(spec.get("policy", "float32"))
    preset = PRESETS[spec["preset"]]
    name = spec["searcher"]
    xla = name.endswith(XLA)
    config = config_lib.SearchConfig(
        space=spec["space"], searcher="nasp" if name == CHOICE else name.removesuffix(XLA),
        init_channels=preset["init_channels"], layers=preset["layers"],
        nodes=preset["nodes"], jit_compile=xla)
    start = time.perf_counter()
    if name == CHOICE:
        searcher = _choice_searcher(config)
    else:
        searcher, _ = image_search.build_searcher(config, (32, 32, 3), 10, steps_per_epoch=391)
    build_s = time.perf_counter() - start
    rng = np.random.default_rng(spec["seed"])

    def batch():
        return (tf.constant(rng.normal(size=(preset["batch_size"], 32, 32, 3)), tf.float32),
                tf.constant(rng.integers(0, 10, preset["batch_size"]), tf.int32))

    train, val = batch(), batch()
    before_step, pinned = _pin(searcher, spec.get("pin"), config)
    timed = _time_steps(searcher, xla, train, val, spec, before_step, lambda: _ops_run(searcher))
    network = searcher.model if name == CHOICE else searcher.supernet
    return {"searcher": name, "space": spec["space"], "preset": spec["preset"],
            "policy": spec.get("policy", "float32"), "pin": spec.get("pin"),
            "pinned_genotype": pinned, **timed, "build_s": build_s,
            **_process_facts(counting.parameter_count(network))}


def _choice_searcher(config):
    """NASP's `SpaceSearcher` on the Choice-built cells of `config`, built as
    bin/search.py builds a space's searcher (the built-in one's optimizers)."""
    from nasp_tf.cnn import choice_network
    from nasp_tf.pipelines import space_search

    model = choice_network.choice_search_network(config.space, 10, config.init_channels,
                                                 config.layers, config.nodes, (32, 32, 3))
    return space_search.build_searcher(config, model, steps_per_epoch=391)[0]


def worst_genotype(supernet):
    """Every node the cell's costliest op (by parameters; ties: the later op) on
    its first two inputs: the most expensive discrete cell of the supernet."""
    from nasp_tf import genotype as genotype_lib

    cells = {}
    for kind in ("normal", "reduce"):
        costs = supernet.op_costs(kind)
        ops = supernet.space.ops(kind)
        worst = max(range(len(ops)), key=lambda k: (costs[k], k))
        cells[kind] = tuple((ops[worst], i) for _ in range(supernet.num_nodes) for i in (0, 1))
    concat = tuple(range(2, 2 + supernet.num_nodes))
    return genotype_lib.CNNGenotype(supernet.space.name, cells["normal"], concat,
                                    cells["reduce"], concat)


def _pin(searcher, pin, config):
    """(a function that pins Ā to the cell `pin` names before each step, the
    pinned genotype's JSON), or (None, None). Only searchers whose Ā is
    prox_c1(A) are pinned (NASP, PA, NASP on Choice cells); DARTS's weight
    step runs the whole mixture whatever A is."""
    from nasp_tf import genotype as genotype_lib
    from nasp_tf.cnn import search_model

    choice_cells = not hasattr(searcher, "supernet")
    if not pin or (not choice_cells and getattr(searcher, "project", None) is None):
        return None, None
    # The Choice cells' costs and ops are the built-in supernet's (built untimed).
    supernet = search_model.SearchNetwork(config.space, 10, config.init_channels,
                                          config.layers, config.nodes) \
        if choice_cells else searcher.supernet
    genotype = (worst_genotype(supernet) if pin == WORST
                else genotype_lib.load_cnn_genotype(pin))
    matrices = genotype_lib.arch_matrices_of(genotype, supernet.space, supernet.num_nodes)

    def pin_arch():
        for kind, matrix in matrices.items():
            if choice_cells:  # a row of A per edge: decisions "normal_E", "reduce_E"
                for edge in range(matrix.shape[0]):
                    searcher.arch_vars[f"{kind}_{edge}"].assign(matrix[edge:edge + 1])
            else:
                searcher.arch_vars[kind].assign(matrix)

    return pin_arch, genotype.to_json()


def _ops_run(searcher):
    """The ops the last weight update ran, per cell kind: the selected op of
    every kept edge, or the whole mixture."""
    if getattr(searcher, "mixture", None) is not None:
        return "mixture of every op on every edge"
    if not hasattr(searcher, "supernet"):  # Choice cells: {decision: op}
        kinds = {}
        for decision, op in searcher.choices().items():
            kinds.setdefault(decision.split("_")[0], []).append(op)
        return kinds
    space = searcher.supernet.space
    return {kind: [space.ops(kind)[i] for i in index.numpy() if i < len(space.ops(kind))]
            for kind, index in searcher.selected_indices().items()}


def text_step_worker(spec):
    """Times one recurrent searcher's architecture step (on a search chunk)
    and weight step (on a training chunk), as `train_step` runs them, on
    fixed synthetic chunks of BPTT tokens (configs/ptb.flags' settings at the
    preset's sizes)."""
    import numpy as np
    import tensorflow as tf

    from nasp_tf import counting, precision
    from nasp_tf.pipelines import common, text_search

    common.seed_everything(spec["seed"], False)
    precision.set_policy(spec.get("policy", "float32"))
    preset = TEXT_PRESETS[spec["preset"]]
    config = config_lib.from_flagfile(
        config_lib.SearchConfig, shipped.config_path("ptb.flags"), searcher=spec["searcher"],
        rnn_units=preset["rnn_units"], batch_size=preset["batch_size"], bptt=preset["bptt"],
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
    return {"searcher": spec["searcher"], "space": "recurrent", "preset": spec["preset"],
            "policy": spec.get("policy", "float32"), **timed, "build_s": build_s,
            **_process_facts(counting.parameter_count(searcher.model))}


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


def _label(r):
    name = r["searcher"]
    label = LABELS[name.removesuffix(XLA)] + (" (XLA)" if name.endswith(XLA) else "")
    if r.get("policy", "float32") != "float32":
        label += f" ({r['policy']})"
    if r.get("pin"):
        label += f" pinned to {os.path.basename(r['pin'])}"
    return label


def _spread(values):
    """The median of `values` as a ratio, with its range when there are several."""
    text = f"{statistics.median(values):.2f}x"
    return text + (f" ({min(values):.2f}-{max(values):.2f})" if len(values) > 1 else "")


def step_table(results):
    """Markdown, the shape of the paper's Table 5: one row per searcher (policy,
    pinned cell), the medians over the rounds, and the time and memory
    ratios to the free-running float32 NASP of the same space in the same
    round (median and range over the rounds)."""
    lines = ["| searcher | space | arch update (s) | weight update (s) | total (s/step) | "
             "first step (s) | peak RSS (GB) | time / NASP | memory / NASP |",
             "|---|---|---|---|---|---|---|---|---|"]
    nasp = {}
    for r in results:
        key = (r.get("round", 0), r["space"])
        if r["searcher"] == "nasp" and not r.get("pin") and (
                key not in nasp or r.get("policy", "float32") == "float32"):
            nasp[key] = r
    groups = {}
    for r in results:
        groups.setdefault((r["searcher"], r["space"], r.get("policy", "float32"),
                           r.get("pin")), []).append(r)
    for runs in groups.values():
        bases = [(r, nasp.get((r.get("round", 0), r["space"]))) for r in runs]
        time_ratio = [r["total_s"] / b["total_s"] for r, b in bases if b]
        memory_ratio = [r["peak_rss_gb"] / b["peak_rss_gb"] for r, b in bases if b]
        median = {k: statistics.median(r[k] for r in runs)
                  for k in ("arch_s", "weight_s", "total_s", "first_step_s")}
        label = _label(runs[0])
        diverged = sum(bool(r.get("diverged_steps")) for r in runs)
        if diverged:
            label += f" (diverged in {diverged} of {len(runs)} rounds: not a timing)"
        lines.append(f"| {label} | {runs[0]['space']} | {median['arch_s']:.3f} | "
                     f"{median['weight_s']:.3f} | {median['total_s']:.3f} | "
                     f"{median['first_step_s']:.1f} | "
                     f"{max(r['peak_rss_gb'] for r in runs):.2f} | "
                     f"{_spread(time_ratio) if time_ratio else '-'} | "
                     f"{_spread(memory_ratio) if memory_ratio else '-'} |")
    return "\n".join(lines)


def _pins_for(space, pins):
    """The --pin values that apply to `space`: `worst`, and the cells of that
    space (a published name or a JSON file); others are reported and skipped."""
    from nasp_tf import genotype as genotype_lib
    from nasp_tf import spaces

    ops = spaces.get_cnn_space(space)
    chosen = []
    for pin in pins:
        cell = None if pin == WORST else genotype_lib.load_cnn_genotype(pin)
        if cell and not all(op in ops.ops(kind) for kind, pairs in
                            (("normal", cell.normal), ("reduce", cell.reduce))
                            for op, _ in pairs):
            print(f"--pin={pin} is a cell of another space: not timed on {space}",
                  file=sys.stderr)
            continue
        chosen.append(pin)
    return chosen


def _specs(config):
    """The measurements of one round, in order."""
    text = config.task == "text"
    specs = []
    for space in ["recurrent"] if text else config.space:
        pins = [] if text else _pins_for(space, config.pin)
        for name in config.searchers:
            # Only searchers whose Ā is prox_c1(A) can be pinned (not DARTS).
            pinnable = name.removesuffix(XLA) in PINNABLE
            for policy in config.mixed_precision:
                for pin in [None] + (pins if pinnable else []):
                    specs.append({"task": "text_step" if text else "step", "searcher": name,
                                  "space": space, "preset": config.preset,
                                  "steps": config.steps, "warmup": config.warmup,
                                  "seed": config.seed, "policy": policy, "pin": pin})
    return specs


def run_steps(config):
    """The step benchmark of a `BenchConfig`: prints the table; returns the report."""
    results = []
    text = config.task == "text"
    specs = _specs(config)
    # Each round times every searcher once, in turn, so that a drift of the
    # host's speed shows as a spread of the ratios instead of biasing them.
    for round_ in range(config.rounds):
        for spec in specs:
            pinned = f", pinned to {spec['pin']}" if spec["pin"] else ""
            print(f"round {round_ + 1}/{config.rounds}: {spec['searcher']} on {spec['space']} "
                  f"({config.preset}, {spec['policy']}{pinned}) ...", file=sys.stderr,
                  flush=True)
            results.append({**jobs.in_subprocess(spec), "round": round_})
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
          f"steps after {config.warmup} warm-up, {config.rounds} round(s); TF threads "
          f"intra={results[0]['intra_op_threads']} inter={results[0]['inter_op_threads']} "
          f"(0 = TF's default, all {os.cpu_count()} cores)")
    model, extensions = machine.cpu_info()
    build = results[0]["tf_build"]
    print(f"machine: {model}, {os.cpu_count()} cores, {' '.join(extensions) or 'no avx2'}; "
          f"TensorFlow {build['version']} ({build['cpu_compiler']}, oneDNN "
          f"{'on' if build['onednn'] else 'off' if build['onednn'] is False else 'unknown'})")
    print(step_table(results))
    if config.rounds > 1:
        for round_ in range(config.rounds):
            print(f"round {round_ + 1}: " + ", ".join(
                f"{_label(r)} {r['space']} {r['total_s']:.3f} s" for r in results
                if r["round"] == round_))
    report = {"kind": "step", "task": config.task, "machine": machine.machine(),
              "preset": config.preset, "preset_sizes": sizes, "results": results}
    if config.pipeline:
        pipe = jobs.in_subprocess({"task": "pipeline", "seed": config.seed,
                                   "batch_size": sizes["batch_size"],
                                   "images": sizes["pipeline_images"]})
        nasp = [r["total_s"] for r in results if r["searcher"] == "nasp"]
        versus = f" (NASP's step: {min(nasp):.3f} s)" if nasp else ""
        print(f"search input pipeline alone (CIFAR-shaped, pad-crop, flip, cutout "
              f"{pipe['cutout']}): {pipe['seconds_per_pair']:.3f} s per (train, val) pair "
              f"of batch {pipe['batch_size']}{versus}")
        report["pipeline"] = pipe
    return report
