"""Flags of `bin/bench.py` (`nasp-bench`), defined once (defaults from
`nasp_tf.config.BenchConfig`) and validated at parse time, without
TensorFlow."""

from absl import flags

from nasp_tf import config
from nasp_tf import run_dir
from nasp_tf.bench import quality, speed
from nasp_tf.cli import flags_common as common


def _known_searcher(name):
    return name.removesuffix(speed.XLA) in speed.SEARCHERS


def _known_cell(value):
    import os

    from nasp_tf.genotype import cnn

    return value == speed.WORST or value in cnn.PUBLISHED or os.path.isfile(value)


def _floats_at_least_zero(values):
    try:
        return all(float(v) >= 0 for v in values)
    except ValueError:
        return False


def define_flags():
    f, d = flags, config.BenchConfig
    f.DEFINE_enum("preset", d.preset, list(speed.PRESETS), "Network and batch size "
                  "(docs/benchmarks.md): small C=8, 5 cells, batch 16; paper C=16, 8 cells, "
                  "batch 64; tiny (C=4, 3 cells, 2 nodes, batch 4) checks the benchmark.")
    f.DEFINE_enum("task", d.task, speed.TASKS, "The step benchmark's search: images (a CNN "
                  "cell, --space) or text (the recurrent cell; presets: small 100 units, "
                  "batch 64; paper 300 units, batch 256; BPTT 35, 10,000 words).")
    f.DEFINE_list("space", list(d.space), "Search spaces, comma-separated (darts7, nasp12).")
    f.DEFINE_list("searchers", list(d.searchers), "Searchers, comma-separated: "
                  f"{', '.join(speed.SEARCHERS)}; add `{speed.XLA}` (e.g. nasp{speed.XLA}) to "
                  "compile with XLA.")
    f.DEFINE_list("mixed_precision", list(d.mixed_precision), "The step benchmark times every "
                  f"searcher under each of these dtype policies ({', '.join(common.PRECISIONS)}).")
    f.DEFINE_integer("steps", d.steps, "Timed steps per searcher.", lower_bound=10)
    f.DEFINE_integer("warmup", d.warmup, "Untimed steps first (the first one compiles).",
                     lower_bound=1)
    f.DEFINE_integer("rounds", d.rounds, "Times every searcher this many times, in turn "
                     "(NASP, DARTS-1st, DARTS-2nd, NASP, ...); the table gives the medians "
                     "and the ratios' range over the rounds.", lower_bound=1)
    f.DEFINE_list("pin", list(d.pin), "Also times NASP and PA with Ā pinned to these cells "
                  "for the timed steps (their weight step's cost depends on the ops Ā "
                  "selects): a published cell (DARTS_V2 on darts7, NASP on nasp12), a "
                  "genotype JSON file, or `worst` (every edge the cell's costliest op).")
    f.DEFINE_string("json", d.json, "Write every number to this JSON file.")
    f.DEFINE_integer("seed", d.seed, "Seed of the synthetic data and the networks.",
                     lower_bound=0, upper_bound=common.SEED_MAX)
    f.DEFINE_bool("pipeline", d.pipeline, "Also time the image search input pipeline alone "
                  "(CIFAR-shaped images, augmentation and cutout, the preset's batch).")
    f.DEFINE_bool("convergence", d.convergence, "Run the convergence-in-time comparison "
                  "(paper Fig. 3) on digits instead of the step benchmark.")
    f.DEFINE_float("budget", d.budget, "--convergence: wall-clock seconds per searcher.",
                   lower_bound=10.0)
    f.DEFINE_float("eval_every", d.eval_every, "--convergence: search seconds between "
                   "evaluations.", lower_bound=0.1)
    f.DEFINE_list("eta_sweep", list(d.eta_sweep), "Run the size-control sweep (paper Fig. 2) "
                  "on digits for these eta values instead of the step benchmark, e.g. "
                  "0,1,4,16.")
    f.DEFINE_list("budget_sweep", list(d.budget_sweep), "--eta_sweep (which must hold 0): "
                  "also search with size budgets (--max_params) of these fractions of the "
                  "eta = 0 cell (of the parameters its ops add to the smallest digits "
                  "network), e.g. 0.25,0.5,0.75, in the same table.")
    f.DEFINE_integer("sweep_epochs", d.sweep_epochs, "--eta_sweep: search epochs per eta.",
                     lower_bound=1)
    f.DEFINE_integer("train_epochs", d.train_epochs, "--eta_sweep: retraining epochs per "
                     "genotype.", lower_bound=1)
    f.DEFINE_bool("quality", d.quality, "Run the cell-quality benchmark instead "
                  "(docs/quality.md): every searcher over several search seeds, the "
                  "published cells, random cells and the cells NASP starts from, each "
                  "retrained twice or more and measured on data no search saw; "
                  "quality.csv, quality.md and quality.png in --output_dir. About 2-3 hours "
                  "on 2 CPU cores; run it again with the same --output_dir to go on where "
                  "it stopped.")
    f.DEFINE_bool("ranking", d.ranking, "After --quality on the same --output_dir: restore "
                  "each image search's final supernet, pin its Ā to every retrained cell and "
                  "compare the supernet's order of the random cells with their retrained "
                  "order (Spearman's ρ; docs/quality.md); ranking.md and ranking.json in "
                  "--output_dir.")
    f.DEFINE_bool("quick", d.quick, "--quality: a tiny version of both tasks (minutes).")
    f.DEFINE_list("quality_tasks", list(d.quality_tasks), "--quality: tasks (images: the "
                  "digits protocol; text: the shipped PTB sample).")
    f.DEFINE_list("quality_searchers", list(d.quality_searchers), "--quality: searchers "
                  "(default: nasp, darts1, darts2, pa, pa_lazy on images; nasp, darts1 on "
                  "text).")
    f.DEFINE_integer("random_cells", d.random_cells, "--quality: random cells per task (0: 20 "
                     "on images, 10 on text).", lower_bound=0)
    f.DEFINE_integer("quality_jobs", d.quality_jobs, "--quality: searches and retrainings run "
                     "at once, each pinned to its own CPU core (0: one per core this process "
                     "may use; 1: one at a time on all cores).", lower_bound=0)
    f.DEFINE_list("latency", list(d.latency), "Time inference instead of search steps: "
                  "these cells' final networks (published names or genotype JSON files, "
                  "comma-separated; --preset paper is the CIFAR-10 network, C=36, 20 "
                  "cells) as SavedModel and TensorFlow Lite, ms per image at batch 1.")
    f.DEFINE_string("output_dir", d.output_dir, "Where --convergence, --eta_sweep and "
                    "--quality write their CSV, PNG and runs.")

    flags.register_validator("output_dir",
                             lambda v: run_dir.usable_path(v, remote=False),
                             "--output_dir must be a directory on disk that we can write")
    flags.register_validator("json",
                             lambda v: v is None or run_dir.usable_path(v, "--json", False),
                             "--json must be a file path on disk that we can write")
    flags.register_validator("space", lambda v: bool(v) and set(v) <= set(speed.SPACES),
                             "--space takes a comma-separated subset of "
                             f"{', '.join(speed.SPACES)}")
    flags.register_validator("searchers", lambda v: bool(v) and all(map(_known_searcher, v)),
                             "--searchers takes a comma-separated subset of "
                             f"{', '.join(speed.SEARCHERS)} (each optionally with {speed.XLA})")
    flags.register_validator("mixed_precision",
                             lambda v: bool(v) and set(v) <= set(common.PRECISIONS),
                             "--mixed_precision takes a comma-separated subset of "
                             f"{', '.join(common.PRECISIONS)}")
    flags.register_multi_flags_validator(
        ["task", "searchers"],
        lambda v: v["task"] == "images" or all(s in speed.TEXT_SEARCHERS
                                               for s in v["searchers"]),
        f"--task=text times the recurrent searchers {', '.join(speed.TEXT_SEARCHERS)} "
        f"(no {speed.XLA})")
    flags.register_multi_flags_validator(
        ["task", "pipeline"], lambda v: not (v["pipeline"] and v["task"] == "text"),
        "--pipeline times the image search pipeline: use it with --task=images")
    flags.register_multi_flags_validator(
        ["ranking", "quality", "convergence", "eta_sweep"],
        lambda v: not v["ranking"] or not (v["quality"] or v["convergence"] or v["eta_sweep"]),
        "--ranking reads a finished --quality run in --output_dir: run the two one after "
        "the other, not together")
    flags.register_validator("quality_tasks",
                             lambda v: bool(v) and set(v) <= set(quality.TASKS),
                             "--quality_tasks takes images, text or both")
    flags.register_validator("quality_searchers",
                             lambda v: all(s in speed.SEARCHERS for s in v),
                             "--quality_searchers takes names among "
                             f"{', '.join(speed.SEARCHERS)}")
    flags.register_validator("pin", lambda v: all(_known_cell(p) for p in v),
                             "--pin takes `worst`, a published CNN cell (NASP, DARTS_V1, "
                             "DARTS_V2) or a genotype JSON file that exists")
    flags.register_multi_flags_validator(
        ["task", "pin"], lambda v: not (v["pin"] and v["task"] == "text"),
        "--pin pins a CNN cell: use it with --task=images")
    flags.register_validator("latency", lambda v: all(p != speed.WORST and _known_cell(p)
                                                      for p in v),
                             "--latency takes published CNN cells (NASP, DARTS_V1, DARTS_V2) "
                             "or genotype JSON files that exist, comma-separated")
    flags.register_multi_flags_validator(
        ["latency", "quality", "ranking", "convergence", "eta_sweep"],
        lambda v: not v["latency"] or not (v["quality"] or v["ranking"] or v["convergence"]
                                           or v["eta_sweep"]),
        "--latency is a benchmark of its own: run it alone, not with --quality, --ranking, "
        "--convergence or --eta_sweep")
    flags.register_validator("budget_sweep", lambda v: _floats_at_least_zero(v) and all(
        0 < float(x) <= 1 for x in v), "--budget_sweep takes comma-separated fractions in "
        "(0, 1]")
    flags.register_multi_flags_validator(
        ["budget_sweep", "eta_sweep"], lambda v: not v["budget_sweep"] or any(
            _floats_at_least_zero([x]) and float(x) == 0 for x in v["eta_sweep"]),
        "--budget_sweep's budgets are fractions of the eta = 0 cell: add 0 to --eta_sweep")
    flags.register_validator("eta_sweep", _floats_at_least_zero,
                             "--eta_sweep takes comma-separated numbers >= 0")


FLAG_SET = common.FlagSet([__name__], {})
parse_or_exit = FLAG_SET.parse_or_exit
