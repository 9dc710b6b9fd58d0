"""The cell-quality benchmark (`nasp-bench --quality`): are the cells a
searcher returns better than random cells of the same space?

Every cell is retrained from scratch under one fixed budget and measured on
data that nothing before it looked at (docs/quality.md):
  images: scikit-learn's digits in the digits protocol (`nasp_tf.data`): every
    search sees only the 797 images of the search pool; each cell is retrained
    on the pool plus one fold of the other 1,000 images and tested on the
    other fold, for both folds and two retraining seeds, so a cell's accuracy
    is measured on all 1,000 images, none of which its search saw.
  text: the shipped PTB sample: the search trains and steps the architecture
    on disjoint halves of the PTB validation text; retraining trains on that
    text, selects on the first half of the test text and reports the test
    perplexity of the second half.
Groups: every searcher (several search seeds), `random` cells (each edge a
uniformly random op, each node two distinct random inputs; recurrent: a
random activation and predecessor per node), the published cells, and
`initial`, the cells NASP's searches started from.

Each search and retraining is a run of nasp_tf's programs in its own process
(`jobs`); `--quality_jobs` run at once, each pinned to its own CPU core,
longest first. A run is reused when its flags and the nasp_tf version are
those the benchmark asks for (`jobs.run`), so an interrupted benchmark goes on
where it stopped when run again with the same --output_dir.
"""

import concurrent.futures
import dataclasses
import hashlib
import json
import os
import queue
import sys
import threading
import time

import numpy as np

import nasp_tf
from nasp_tf import spaces
from nasp_tf.bench import jobs
from nasp_tf.bench import machine as machine_lib
from nasp_tf.bench import quality_report


@dataclasses.dataclass(frozen=True)
class Task:
    """One task of the benchmark: what is searched, retrained and measured.

    Args:
      metric: the metric's name in the tables; `results_key` its key in the
        retraining's results.json; `higher_is_better` its direction.
      searchers: {searcher: search seeds} of the full run.
      published: the published cells retrained by name.
      random_cells: random cells of the full run.
      search, train: the search's and the retraining's flags (shipped
        flagfiles by name, then overrides).
      splits: the retraining's data, one flag list per fold.
      retrain_seeds: retraining seeds, each on every split.
      quick_*: the tiny version (--quick) that checks the benchmark.
    """
    metric: str
    results_key: str
    higher_is_better: bool
    searchers: dict
    published: tuple
    random_cells: int
    search: tuple
    train: tuple
    splits: tuple
    retrain_seeds: tuple
    quick_search: tuple
    quick_train: tuple


TASKS = {
    "images": Task(
        metric="test_accuracy", results_key="test_top1", higher_is_better=True,
        searchers={"nasp": 5, "darts1": 5, "darts2": 3, "pa": 3, "pa_lazy": 3},
        published=("DARTS_V2", "NASP"), random_cells=20,
        search=("quickstart.flags", "--dataset=digits_search", "--epochs=10"),
        # Small final networks and a short budget: on digits a full-size
        # network reaches 97-98 % with any cell; this one lets cells differ.
        train=("quickstart_train.flags", "--init_channels=8", "--layers=5", "--epochs=4",
               "--drop_path_prob=0", "--save_predictions"),
        splits=(("--dataset=digits_fold0",), ("--dataset=digits_fold1",)),
        retrain_seeds=(0, 1),
        quick_search=("--dataset=digits_search", "--epochs=1", "--steps_per_epoch=3",
                      "--batch_size=16", "--init_channels=4", "--layers=3", "--nodes=1"),
        quick_train=("--noauxiliary", "--epochs=1", "--steps_per_epoch=3", "--batch_size=16",
                     "--init_channels=4", "--layers=3", "--cutout=0")),
    "text": Task(
        metric="test_ppl", results_key="test_ppl", higher_is_better=False,
        searchers={"nasp": 5, "darts1": 5}, published=("DARTS_V2", "LSTM"), random_cells=10,
        search=("ptb_quickstart.flags",), train=("ptb_quickstart_train.flags",),
        splits=((),), retrain_seeds=(0, 1),
        quick_search=("--dataset=synthetic_text", "--epochs=1", "--steps_per_epoch=3",
                      "--batch_size=4", "--eval_batch_size=4", "--rnn_units=8"),
        quick_train=("--dataset=synthetic_text", "--epochs=1", "--steps_per_epoch=3",
                     "--batch_size=4", "--eval_batch_size=4", "--test_batch_size=4",
                     "--rnn_units=8")),
}
COLUMNS = ("task", "group", "cell", "search_seed", "retrain_seed", "fold", "metric",
           "parameters", "abar_changes_last_epoch", "search_seconds", "genotype",
           "initial_genotype", "notes", "commit", "version")
# Relative durations of one search (one retraining = 1), to start long jobs first.
SEARCH_COST = {"nasp": 4, "darts1": 6, "darts2": 14, "pa": 14, "pa_lazy": 14}


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


def random_genotypes(task, count, seed, nodes=4):
    """`count` distinct random genotypes of `task`'s space (CNN cells of
    `nodes` nodes), from `seed`."""
    rng = np.random.default_rng(seed)
    found = {}
    while len(found) < count:
        genotype = (random_cnn_genotype(rng, nodes=nodes) if task == "images"
                    else random_rnn_genotype(rng))
        found.setdefault(compact(genotype), genotype)
    return list(found.values())


def compact(genotype):
    """A genotype (JSON object) as one canonical line."""
    return json.dumps(genotype, separators=(",", ":"), sort_keys=True)


def _flags(names_and_flags):
    """Flag lists whose `*.flags` entries are shipped configs, by name."""
    return [jobs.config_flag(a) if a.endswith(".flags") else a for a in names_and_flags]


def _read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


class Plan:
    """The runs of one benchmark invocation, and their rows.

    Args:
      config: the parsed flags (quality_tasks, quality_searchers,
        random_cells, quick, seed, output_dir).
    """

    def __init__(self, config):
        self.config = config
        self.out = os.path.abspath(config.output_dir)
        self.quick = config.quick
        self.rows = []
        self.lock = threading.Lock()
        self.claimed = set()

    def seeds(self, task, searcher):
        return 1 if self.quick else TASKS[task].searchers[searcher]

    def searchers(self, task):
        chosen = self.config.quality_searchers or list(TASKS[task].searchers)
        chosen = [s for s in chosen if s in TASKS[task].searchers]
        return chosen[:1] if self.quick else chosen

    def retrain(self, task, group, cell, genotype, core, search=None):
        """Retrains `genotype` (a path or a published name) on every split with
        every retraining seed; adds a row per run."""
        spec = TASKS[task]
        splits = spec.splits[:1] if self.quick else spec.splits
        seeds = spec.retrain_seeds[:1] if self.quick else spec.retrain_seeds
        base = _flags(spec.train) + (list(spec.quick_train) if self.quick else [])
        # A file (absolute path) or a published cell's name.
        text = compact(_read_json(genotype)) if os.path.isabs(genotype) else genotype
        for fold, split in enumerate(splits):
            for seed in seeds:
                run_dir = os.path.join(self.out, task, "train", cell, f"fold{fold}_seed{seed}")
                args = base + list(split) + [f"--genotype={genotype}", f"--seed={seed}",
                                             "--deterministic", "--noexport", "--verbose=0"]
                notes = _run_or_restore("train", args, run_dir, core, "results.json")
                results = _read_json(os.path.join(run_dir, "results.json"))
                row = {"task": task, "group": group, "cell": cell, "retrain_seed": seed,
                       "fold": fold, "metric": results[spec.results_key],
                       "parameters": results["parameters"], "genotype": text,
                       "commit": jobs.recorded(run_dir)["commit"],
                       "version": nasp_tf.__version__, "search_seed": "",
                       "abar_changes_last_epoch": "", "search_seconds": "",
                       "initial_genotype": "", "notes": notes,
                       "test_examples": results.get("test_examples"),
                       "chunk_losses": results.get("test_chunk_losses"),
                       "correct": _correct(run_dir)}
                row.update({k: v for k, v in (search or {}).items() if k != "notes"})
                if search and search.get("notes"):
                    row["notes"] = "; ".join(n for n in (search["notes"], notes) if n)
                with self.lock:
                    self.rows.append(row)

    def search(self, task, searcher, seed, core):
        """Searches, then retrains the genotype found and (NASP) the one it started from."""
        spec = TASKS[task]
        run_dir = os.path.join(self.out, task, "search", f"{searcher}_seed{seed}")
        args = _flags(spec.search) + (list(spec.quick_search) if self.quick else []) + [
            f"--searcher={searcher}", f"--seed={seed}", "--deterministic", "--verbose=0"]
        start = time.perf_counter()
        notes = _run_or_restore("search", args, run_dir, core, "genotype.json", start)
        history = _read_json(os.path.join(run_dir, "history.json"))
        initial = os.path.join(run_dir, "initial_genotype.json")
        found = {"search_seed": seed, "search_seconds": _read_seconds(run_dir), "notes": notes,
                 "abar_changes_last_epoch": history[-1]["abar_changes"],
                 "initial_genotype": compact(_read_json(initial))}
        self.retrain(task, searcher, f"{searcher}_seed{seed}",
                     os.path.join(run_dir, "genotype.json"), core, found)
        if searcher == "nasp":
            # `initial`: the cells NASP's searches start from (one cell for
            # the CNN spaces, A = 0.5; one per seed for the recurrent cell).
            cell = "initial_" + hashlib.sha256(found["initial_genotype"].encode()).hexdigest()[:8]
            with self.lock:
                first = cell not in self.claimed
                self.claimed.add(cell)
            if first:
                self.retrain(task, "initial", cell, initial, core)

    def jobs(self):
        """[(relative cost, job(core))], for `run_jobs`."""
        planned = []
        for task in self.config.quality_tasks:
            spec = TASKS[task]
            scale = 3 if task == "text" else 1
            runs = len(spec.splits) * len(spec.retrain_seeds)
            for searcher in self.searchers(task):
                for seed in range(self.seeds(task, searcher)):
                    planned.append(((SEARCH_COST[searcher] + runs) * scale,
                                    lambda core, t=task, s=searcher, n=seed:
                                    self.search(t, s, n, core)))
            for name in () if self.quick else spec.published:
                planned.append((runs * scale, lambda core, t=task, n=name:
                                self.retrain(t, n, n, n, core)))
            count = self.config.random_cells or (2 if self.quick else spec.random_cells)
            # --quick searches cells of one node: its random cells are of the
            # same shape, so that `--ranking` can pin the supernet to them.
            nodes = 1 if self.quick else 4
            for n, genotype in enumerate(random_genotypes(task, count, self.config.seed, nodes)):
                path = os.path.join(self.out, task, "random", f"random_{n}.json")
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "w", encoding="utf-8") as f:
                    json.dump(genotype, f)
                planned.append((runs * scale, lambda core, t=task, c=f"random_{n}", p=path:
                                self.retrain(t, "random", c, p, core)))
        return planned


def _run_or_restore(program, args, run_dir, core, done, start=None):
    """Runs (or reuses) a search or retraining; one whose loss diverges is run
    again from the start with --on_nan=restore, as its error says (the
    diverged run is kept aside). Returns the row's note: "" or what happened.
    With `start`, a search's own seconds are recorded."""
    restore = [*args, "--on_nan=restore"]
    if jobs.recorded(run_dir) and jobs.recorded(run_dir)["key"] == jobs.job_key(program,
                                                                                 restore):
        args = restore  # an earlier invocation already ran it so
    try:
        ran = jobs.run(program, args, run_dir, core, done=done)
    except RuntimeError as e:
        if "NaN/inf" not in str(e) or args is restore:
            raise
        args, ran = restore, jobs.run(program, restore, run_dir, core, done=done)
    if ran is not None and start is not None:
        _write_seconds(run_dir, time.perf_counter() - start)
    return "diverged; rerun with --on_nan=restore" if args is restore else ""


def _correct(run_dir):
    """[1 if right else 0 per test example] from test_predictions.json, or None."""
    path = os.path.join(run_dir, "test_predictions.json")
    if not os.path.exists(path):
        return None
    predictions = _read_json(path)
    return [int(a == b) for a, b in zip(predictions["labels"], predictions["predicted"])]


def _write_seconds(run_dir, seconds):
    with open(os.path.join(run_dir, "search_seconds.json"), "w", encoding="utf-8") as f:
        json.dump({"search_seconds": seconds}, f)


def _read_seconds(run_dir):
    path = os.path.join(run_dir, "search_seconds.json")
    return _read_json(path)["search_seconds"] if os.path.exists(path) else float("nan")


def run_jobs(planned, parallel, log):
    """Runs `planned` ([(cost, job(core))]) `parallel` at a time, the costliest
    first, each on its own core when `parallel` > 1 (on all cores when 1),
    logging one line as each ends. Returns the number of jobs that failed."""
    cores = queue.Queue()
    for core in (sorted(os.sched_getaffinity(0))[:parallel]
                 if parallel > 1 and hasattr(os, "sched_getaffinity") else [None]):
        cores.put(core)
    failed, done, start = [], [], time.perf_counter()

    def work(index):
        core = cores.get()
        try:
            planned[index][1](core)
            done.append(index)
            log(f"{len(done) + len(failed)}/{len(planned)} jobs done "
                f"({(time.perf_counter() - start) / 60:.0f} min)")
        except RuntimeError as e:
            failed.append(index)
            log(f"failed: {e}")
        finally:
            cores.put(core)

    order = sorted(range(len(planned)), key=lambda i: -planned[i][0])
    with concurrent.futures.ThreadPoolExecutor(max(1, cores.qsize())) as pool:
        for future in [pool.submit(work, i) for i in order]:
            future.result()
    return len(failed)


def run_quality(config, machine):
    """Runs the benchmark, writes quality.csv, quality.md and quality.png into
    --output_dir and prints the tables; returns the report."""
    plan = Plan(config)
    parallel = config.quality_jobs or machine_lib.cores()
    os.makedirs(plan.out, exist_ok=True)
    start = time.perf_counter()
    planned = plan.jobs()

    def log(line):
        print(line, file=sys.stderr, flush=True)

    log(f"{len(planned)} jobs, {parallel} at a time; finished runs in "
        f"{plan.out} are reused")
    failed = run_jobs(planned, parallel, log)
    def order(r):
        spec = TASKS[r["task"]]
        groups = [*spec.searchers, *spec.published, "initial", "random"]
        return (list(TASKS).index(r["task"]), groups.index(r["group"]), r["cell"], r["fold"],
                r["retrain_seed"])

    rows = sorted(plan.rows, key=order)
    paths = quality_report.write(rows, plan.out, " ".join(sys.argv), jobs.commit(), TASKS,
                                 COLUMNS)
    print(open(paths["md"], encoding="utf-8").read())
    seconds = time.perf_counter() - start
    print(f"wrote {', '.join(paths.values())} ({seconds / 60:.1f} min, "
          f"{parallel} job(s) at a time)")
    if failed:
        raise RuntimeError(f"{failed} of {len(planned)} jobs failed (see above); run the "
                           "same command again to retry them")
    return {"kind": "quality", "machine": machine, "rows": rows, "wall_seconds": seconds,
            "jobs": parallel}
