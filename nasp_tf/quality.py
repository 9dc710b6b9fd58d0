"""The cell-quality benchmark (`bin/bench.py --quality`): are searched cells
better than random ones, and close to the published ones?

A rerun with the same --output_dir reuses the searches and retrainings it
finds finished there. For each task it searches with every requested searcher over several seeds,
retrains every genotype from scratch under one fixed budget, retrains the
published cells (over the same seeds, which also measures one cell's
seed-to-seed noise) and N random cells of the same space, and writes
`quality.csv` (one row per retrained network) and a plot. Every search and
retraining is a run of bin/search.py or bin/train.py in its own process;
`--quality_jobs` of them run at once, each pinned to its own CPU core (the
small networks here gain almost nothing from a second core, so two pinned
jobs do twice the work of one unpinned job in the same time), longest
first. `search_seconds` is each search's own wall-clock time on its core.

Tasks:
  images: scikit-learn's digits (real, offline), darts7 space; the metric is
    test accuracy (higher is better).
  text: the PTB quick start (train on the PTB valid text, evaluate on the
    test text); the metric is test perplexity (lower is better).
"""

import concurrent.futures
import csv
import json
import os
import queue
import statistics
import subprocess
import sys
import time

import numpy as np

from nasp_tf import spaces

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = os.path.join(ROOT, "configs")

# The fixed budgets. `quick` is a tiny version for the benchmark's own test.
TASKS = {
    "images": {
        # The metric, and its key in bin/train.py's results.json.
        "metric": "test_accuracy", "results_key": "test_top1", "higher_is_better": True,
        "searchers": ("nasp", "darts1", "darts2", "pa", "pa_lazy"),
        # Second-order searchers step ~8x slower than NASP: one seed each keeps the
        # default run within 45 minutes on 2 CPU cores (--quality_all_seeds for all).
        "one_seed": ("darts2", "pa", "pa_lazy"),
        "published": ("DARTS_V2", "NASP"),
        "search": ["--flagfile=" + os.path.join(CONFIGS, "quickstart.flags"), "--epochs=2"],
        # Small final networks and a short budget: on digits a full-size network
        # reaches 97-98 % with any cell; this one lets cells differ.
        "train": ["--flagfile=" + os.path.join(CONFIGS, "quickstart_train.flags"),
                  "--init_channels=8", "--layers=5", "--epochs=4", "--drop_path_prob=0"],
        "quick_search": ["--dataset=digits", "--epochs=1", "--steps_per_epoch=3",
                         "--batch_size=16", "--init_channels=4", "--layers=3", "--nodes=1",
                         "--max_examples=256"],
        "quick_train": ["--dataset=digits", "--noauxiliary", "--epochs=1",
                        "--steps_per_epoch=3", "--batch_size=16", "--init_channels=4",
                        "--layers=3", "--cutout=0", "--max_examples=256"],
    },
    "text": {
        "metric": "test_ppl", "results_key": "test_ppl", "higher_is_better": False,
        "searchers": ("nasp", "darts1"),
        "published": ("DARTS_V2", "LSTM"),
        # The PTB quick start as it is (6 search epochs, 6 retraining epochs).
        "search": ["--flagfile=" + os.path.join(CONFIGS, "ptb_quickstart.flags")],
        "train": ["--flagfile=" + os.path.join(CONFIGS, "ptb_quickstart_train.flags")],
        "seeds": 1,
        "quick_search": ["--dataset=synthetic_text", "--epochs=1", "--steps_per_epoch=3",
                         "--batch_size=4", "--eval_batch_size=4", "--rnn_units=8"],
        "quick_train": ["--dataset=synthetic_text", "--epochs=1", "--steps_per_epoch=3",
                        "--batch_size=4", "--eval_batch_size=4", "--test_batch_size=4",
                        "--rnn_units=8"],
    },
}
COLUMNS = ("task", "group", "seed", "genotype", "metric", "parameters", "search_seconds")


def random_cnn_genotype(rng, space_name="darts7", nodes=4):
    """Each node: two distinct inputs among the earlier states, each edge a
    uniformly random op of the space."""
    space = spaces.get_cnn_space(space_name)
    cells = {}
    for kind in ("normal", "reduce"):
        pairs = []
        for node in range(nodes):
            inputs = rng.choice(node + 2, size=2, replace=False)
            pairs += [[str(rng.choice(space.ops(kind))), int(i)] for i in inputs]
        cells[kind] = pairs
    concat = list(range(2, 2 + nodes))
    return {"kind": "cnn", "space": space_name, "normal": cells["normal"],
            "normal_concat": concat, "reduce": cells["reduce"], "reduce_concat": concat}


def random_rnn_genotype(rng, steps=8):
    """Each node: a random predecessor among the earlier states and a random activation."""
    pairs = [[str(rng.choice(spaces.RECURRENT_ACTIVATIONS)), int(rng.integers(0, i + 1))]
             for i in range(steps)]
    return {"kind": "rnn", "recurrent": pairs, "concat": list(range(1, steps + 1))}


def _run(binary, args, core=None):
    """Runs bin/<binary>.py (pinned to CPU `core` if given); its stdout, or
    RuntimeError with its last error line."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    pin = (None if core is None or not hasattr(os, "sched_setaffinity")
           else lambda: os.sched_setaffinity(0, {core}))
    result = subprocess.run([sys.executable, os.path.join(ROOT, "bin", f"{binary}.py"), *args],
                            capture_output=True, text=True, env=env, cwd=ROOT, check=False,
                            preexec_fn=pin)
    if result.returncode != 0:
        tail = [line for line in result.stderr.splitlines() if line.strip()][-1:]
        raise RuntimeError(f"{binary}.py {' '.join(args[-3:])} failed: "
                           f"{tail[0] if tail else result.returncode}")
    return result.stdout


def _search(task, searcher, seed, run_dir, quick, core):
    """Searches (or reuses a finished search of an earlier invocation in the same
    --output_dir); returns its wall-clock seconds."""
    record = os.path.join(run_dir, "search_seconds.json")
    if os.path.exists(record) and os.path.exists(os.path.join(run_dir, "search",
                                                              "genotype.json")):
        with open(record, encoding="utf-8") as f:
            return json.load(f)["search_seconds"]
    args = TASKS[task]["quick_search" if quick else "search"] + [
        f"--searcher={searcher}", f"--seed={seed}", "--verbose=0",
        f"--output_dir={run_dir}/search"]
    start = time.perf_counter()
    _run("search", args, core)
    seconds = time.perf_counter() - start
    with open(record, "w", encoding="utf-8") as f:
        json.dump({"search_seconds": seconds}, f)
    return seconds


def _retrain(task, genotype, seed, run_dir, quick, core):
    """Retrains (or reuses a finished retraining of an earlier invocation)."""
    spec = TASKS[task]
    if os.path.exists(os.path.join(run_dir, "results.json")):
        return _read_results(task, run_dir)
    # Only results.json is read: no SavedModel export (seconds per retraining).
    args = spec["quick_train" if quick else "train"] + [
        f"--genotype={genotype}", f"--seed={seed}", "--verbose=0", "--noexport",
        f"--output_dir={run_dir}"]
    _run("train", args, core)
    return _read_results(task, run_dir)


def _read_results(task, run_dir):
    """(metric, parameters) of a finished retraining."""
    with open(os.path.join(run_dir, "results.json"), encoding="utf-8") as f:
        results = json.load(f)
    return results[TASKS[task]["results_key"]], results["parameters"]


def _genotype_text(path):
    """A genotype JSON file as one compact line, for the CSV."""
    with open(path, encoding="utf-8") as f:
        return json.dumps(json.load(f), separators=(",", ":"))


def plan_task(task, config, out_dir):
    """The jobs of one task, [(cost, job)]: job(core) -> its CSV row. A
    searched cell's job searches and then retrains; the published and random
    cells' jobs retrain. `cost` is a rough relative duration, to start the
    long jobs first."""
    spec = TASKS[task]
    quick = config.quick
    seeds = [int(s) for s in config.quality_seeds][:1 if quick else spec.get("seeds")]
    searchers = config.quality_searchers or spec["searchers"]
    searchers = [s for s in searchers if task == "images" or s in TASKS["text"]["searchers"]]
    if quick:
        searchers = searchers[:1]
    published = () if quick else spec["published"]
    # Relative costs measured on 2 CPU cores (one retraining = 1).
    search_cost = {"nasp": 3, "darts1": 4, "darts2": 6, "pa": 5, "pa_lazy": 10}
    scale = 4 if task == "text" else 1
    jobs = []

    def row(group, seed, genotype, metric, parameters, seconds):
        return {"task": task, "group": group, "seed": seed, "genotype": genotype,
                "metric": metric, "parameters": parameters, "search_seconds": seconds}

    def searched(searcher, seed):
        def job(core):
            run_dir = os.path.join(out_dir, task, f"{searcher}_seed{seed}")
            seconds = _search(task, searcher, seed, run_dir, quick, core)
            genotype = os.path.join(run_dir, "search", "genotype.json")
            metric, parameters = _retrain(task, genotype, seed, f"{run_dir}/train", quick, core)
            return row(searcher, seed, _genotype_text(genotype), metric, parameters, seconds)
        return job

    def retrained(group, name, genotype, text, seed):
        def job(core):
            metric, parameters = _retrain(task, genotype, seed,
                                          os.path.join(out_dir, task, name), quick, core)
            return row(group, seed, text, metric, parameters, 0.0)
        return job

    for searcher in searchers:
        one_seed = searcher in spec.get("one_seed", ()) and not config.quality_all_seeds
        for seed in seeds[:1] if one_seed else seeds:
            jobs.append(((search_cost.get(searcher, 4) + 1) * scale, searched(searcher, seed)))
    for name in published:
        for seed in seeds:
            jobs.append((scale, retrained(name, f"{name}_seed{seed}", name, name, seed)))
    rng = np.random.default_rng(config.seed)
    for n in range(config.random_cells if not quick else 1):
        genotype = random_cnn_genotype(rng) if task == "images" else random_rnn_genotype(rng)
        path = os.path.join(out_dir, task, f"random_{n}.json")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(genotype, f)
        jobs.append((scale, retrained("random", f"random_{n}", path,
                                      json.dumps(genotype, separators=(",", ":")), seeds[0])))
    return jobs


def run_jobs(jobs, parallel, log, done=None):
    """Runs `jobs` ([(cost, job(core) -> row)]) `parallel` at a time, the
    costliest first, each on its own core when `parallel` > 1 (on all cores
    when 1); returns their rows in the order of `jobs`. `done(rows so far)`
    is called after each job."""
    cores = queue.Queue()
    for core in (sorted(os.sched_getaffinity(0))[:parallel]
                 if parallel > 1 and hasattr(os, "sched_getaffinity") else [None]):
        cores.put(core)
    rows = [None] * len(jobs)

    def work(index):
        core = cores.get()
        try:
            rows[index] = jobs[index][1](core)
        finally:
            cores.put(core)
        r = rows[index]
        log(f"{r['task']:6s} {r['group']:10s} seed {r['seed']}: "
            f"{TASKS[r['task']]['metric']} {r['metric']:.4f}, {r['parameters']:,d} parameters"
            + (f", search {r['search_seconds']:.0f} s" if r["search_seconds"] else ""))
        if done:
            done([r for r in rows if r is not None])

    order = sorted(range(len(jobs)), key=lambda i: -jobs[i][0])
    with concurrent.futures.ThreadPoolExecutor(max(1, cores.qsize())) as pool:
        for future in [pool.submit(work, i) for i in order]:
            future.result()
    return rows


def summary(rows):
    """{(task, group): (mean, std, n, mean parameters, mean search seconds)}."""
    groups = {}
    for r in rows:
        groups.setdefault((r["task"], r["group"]), []).append(r)
    table = {}
    for key, members in groups.items():
        values = [m["metric"] for m in members]
        table[key] = (statistics.mean(values),
                      statistics.stdev(values) if len(values) > 1 else 0.0, len(values),
                      statistics.mean(m["parameters"] for m in members),
                      statistics.mean(m["search_seconds"] for m in members))
    return table


def table_lines(rows):
    """A markdown table per task, plus the random cells' spread against the
    published cells' seed-to-seed noise."""
    table = summary(rows)
    lines = []
    for task in TASKS:
        keys = [k for k in table if k[0] == task]
        if not keys:
            continue
        spec = TASKS[task]
        metric = spec["metric"]
        random_values = sorted(r["metric"] for r in rows
                               if r["task"] == task and r["group"] == "random")
        median = statistics.median(random_values) if random_values else float("nan")
        lines += [f"{task}: {metric} ({'higher' if spec['higher_is_better'] else 'lower'} is "
                  "better); random median " + f"{median:.4f}", "",
                  f"| group | runs | {metric} mean ± std | parameters | search seconds | "
                  "vs random median |", "|---|---|---|---|---|---|"]
        for key in keys:
            mean, std, n, params, seconds = table[key]
            better = (mean > median) if spec["higher_is_better"] else (mean < median)
            verdict = ("—" if key[1] == "random" or not random_values
                       else "better" if better else "not better")
            lines.append(f"| {key[1]} | {n} | {mean:.4f} ± {std:.4f} | {params:,.0f} | "
                         f"{seconds:.0f} | {verdict} |")
        noise = [table[k][1] for k in keys if k[1] in spec["published"] and table[k][2] > 1]
        if len(random_values) > 1 and noise:
            lines.append("")
            lines.append(f"spread of the random cells (std) {statistics.stdev(random_values):.4f}"
                         f" vs one cell's seed-to-seed noise (std over seeds, published cells) "
                         f"{max(noise):.4f}")
        lines.append("")
    return lines


def write_csv(rows, path):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        for r in rows:
            writer.writerow({**r, "metric": f"{r['metric']:.6f}",
                             "search_seconds": f"{r['search_seconds']:.1f}"})


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = [t for t in TASKS if any(r["task"] == t for r in rows)]
    fig, axes = plt.subplots(1, len(tasks), figsize=(6 * len(tasks), 4), dpi=110,
                             squeeze=False)
    for ax, task in zip(axes[0], tasks):
        groups = list(dict.fromkeys(r["group"] for r in rows if r["task"] == task))
        for x, group in enumerate(groups):
            values = [r["metric"] for r in rows if r["task"] == task and r["group"] == group]
            ax.scatter([x] * len(values), values, color="tab:gray", s=14, zorder=2)
            ax.errorbar([x], [np.mean(values)], yerr=[np.std(values)], fmt="o",
                        color="tab:red" if group == "random" else "tab:blue", capsize=4,
                        zorder=3)
        ax.set_xticks(range(len(groups)))
        ax.set_xticklabels(groups, rotation=30, ha="right")
        ax.set_ylabel(TASKS[task]["metric"])
        ax.set_title(f"{task}: retrained cells (mean ± std, points = runs)")
        ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def run_quality(config, machine):
    """Runs the requested tasks, writes quality.csv and quality.png into
    --output_dir, prints the tables; returns the report."""
    out_dir = os.path.abspath(config.output_dir)
    os.makedirs(out_dir, exist_ok=True)
    csv_path, png_path = os.path.join(out_dir, "quality.csv"), os.path.join(out_dir,
                                                                             "quality.png")

    def log(line):
        print(line, file=sys.stderr, flush=True)

    jobs = [job for task in config.quality_tasks for job in plan_task(task, config, out_dir)]
    start = time.perf_counter()
    # quality.csv keeps what is done so far (a rerun reuses the finished runs).
    rows = run_jobs(jobs, config.quality_jobs, log, done=lambda rows: write_csv(rows, csv_path))
    write_csv(rows, csv_path)
    plot(rows, png_path)
    print("\n".join(table_lines(rows)))
    seconds = time.perf_counter() - start
    print(f"wrote {csv_path} and {png_path} ({seconds / 60:.1f} min, "
          f"{config.quality_jobs} job(s) at a time)")
    return {"kind": "quality", "machine": machine, "rows": rows, "wall_seconds": seconds,
            "jobs": config.quality_jobs}
