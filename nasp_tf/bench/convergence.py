"""Convergence in time (`nasp-bench --convergence`, the NASP paper's Fig. 3):
NASP, DARTS-1st and DARTS-2nd search digits for the same wall-clock budget,
each in its own process, and the validation accuracy of each one's current
discrete architecture is measured against the seconds spent (CSV, PNG and a
table)."""

import csv
import os
import sys
import time

from nasp_tf import config as config_lib
from nasp_tf import shipped
from nasp_tf.bench import jobs, machine
from nasp_tf.bench.speed import LABELS

STATISTICS_BATCHES = 20


def _digits_searcher(searcher_name, seed):
    """A searcher with configs/quickstart.flags' settings, and its digits data."""
    from nasp_tf.data import images
    from nasp_tf.pipelines import common, image_search

    common.seed_everything(seed, True)
    config = config_lib.from_flagfile(config_lib.SearchConfig,
                                      shipped.config_path("quickstart.flags"),
                                      searcher=searcher_name, seed=seed)
    source = images.get_source(config.dataset, None, False)
    data = images.search_data(source, config.batch_size, seed)
    searcher, _ = image_search.build_searcher(config, source.image_shape, source.num_classes,
                                              data.steps_per_epoch)
    return searcher, data


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
            "genotype": searcher.genotype().to_json(), "peak_rss_gb": machine.peak_rss_gb()}


def run_convergence(config):
    """The comparison of a `BenchConfig`: CSV, PNG and a table in --output_dir."""
    os.makedirs(config.output_dir, exist_ok=True)
    results = []
    for name in config.searchers:
        print(f"{name}: searching digits for {config.budget:.0f} s ...", file=sys.stderr,
              flush=True)
        results.append(jobs.in_subprocess({"task": "convergence", "searcher": name,
                                           "budget": config.budget,
                                           "eval_every": config.eval_every,
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
    machine.plot_lines(png_path, series,
                       "search seconds (compilation included, evaluation excluded)",
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
    return {"kind": "convergence", "machine": machine.machine(), "budget_s": config.budget,
            "results": results}
