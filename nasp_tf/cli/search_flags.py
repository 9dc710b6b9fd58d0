"""Flags of `bin/search.py`, defined once and validated at parse time.

This module imports no TensorFlow, so a bad flag is reported in a fraction of
a second, in one line. Flags that do not apply to the chosen data family or
searcher are refused, not ignored.
"""

import os

from absl import flags

from nasp_tf import config
from nasp_tf import run_dir, spaces
from nasp_tf.cli import flags_common as common
from nasp_tf.data import DIGITS_PROTOCOL
from nasp_tf.search import registry

DATASETS = ("cifar10", "digits", "synthetic") + DIGITS_PROTOCOL + common.TEXT_DATASETS


def define_flags():
    f, d = flags, config.SearchConfig
    common.define_dataset_flag(DATASETS, "Data to search on: one of " + ", ".join(DATASETS)
                               + ", or your own images: tfds:NAME (a prepared tensorflow-"
                               "datasets dataset), folder:DIR (a subfolder of images per "
                               "class) or npz:FILE (x_train, y_train[, x_test, y_test]). "
                               "`digits` (scikit-learn's bundled 8x8 digits; digits_search and "
                               "digits_foldK are the cell-quality benchmark's splits of it) "
                               "and `synthetic` need no download. `ptb`, `wt2` (a corpus directory in "
                               "--data_dir: weights on train.txt, architecture on valid.txt), "
                               "`ptb_sample` (shipped with nasp_tf: weights on the first half "
                               "of the PTB validation text, architecture on its second half; "
                               "the PTB test text is never read) and `synthetic_text` search "
                               "a recurrent cell.", d.dataset)
    f.DEFINE_string("data_dir", d.data_dir, "Images: the tensorflow-datasets directory (default "
                    "~/tensorflow_datasets); text (ptb, wt2): the corpus directory.")
    f.DEFINE_bool("download", d.download, "Download CIFAR-10 with tfds when it is not prepared.")
    f.DEFINE_string("space", d.space, "Search space: `darts7` (DARTS's 7 ops, both cells), "
                    "`nasp12` (8 normal ops, 5 reduction ops), `s2` (RobustDARTS's S2: "
                    "skip_connect and sep_conv_3x3), or a space of your own as "
                    "module:function (an importable module or a .py file, and a function "
                    "returning a Keras model with nasp_tf.Choice layers; e.g. "
                    "examples/custom_spaces.py:tabular_space) searched on --dataset=npz:FILE "
                    "(docs/custom-spaces.md).")
    common.register_space_validator()
    f.DEFINE_enum("task", d.task, ("classification", "regression"), "A space of your own: "
                  "`classification` (y: class ids; the model gives one logit per class; "
                  "cross-entropy, accuracy) or `regression` (y: float targets; mean squared "
                  "error, mean absolute error).")
    f.DEFINE_enum("searcher", d.searcher, list(registry.SEARCHERS), "Search algorithm: "
                  + "; ".join(f"`{e.name}`, {e.summary}" for e in registry.SEARCHERS.values()))
    f.DEFINE_integer("epochs", d.epochs, "Search epochs.", lower_bound=1)
    f.DEFINE_integer("batch_size", d.batch_size, "Global batch of both the weight and the "
                     "architecture half.", lower_bound=1)
    f.DEFINE_integer("steps_per_epoch", d.steps_per_epoch, "Steps per epoch; 0 is one pass over the "
                     "weight half.", lower_bound=0)
    f.DEFINE_integer("init_channels", d.init_channels, "Initial channels C.", lower_bound=2)
    f.DEFINE_integer("layers", d.layers, "Cells in the search network (reductions at 1/3, 2/3).",
                     lower_bound=3)
    f.DEFINE_integer("nodes", d.nodes, "Intermediate nodes per cell.", lower_bound=1)
    f.DEFINE_float("learning_rate", d.learning_rate, "Initial weight learning rate (SGD).",
                   lower_bound=0.0)
    f.DEFINE_float("learning_rate_min", d.learning_rate_min, "Final weight learning rate (cosine).",
                   lower_bound=0.0)
    f.DEFINE_float("momentum", d.momentum, "SGD momentum.", lower_bound=0.0)
    f.DEFINE_float("weight_decay", d.weight_decay, "Coupled L2 of the weights.", lower_bound=0.0)
    f.DEFINE_float("grad_clip", d.grad_clip, "Global-norm clip of the weight gradient (0: off).",
                   lower_bound=0.0)
    f.DEFINE_float("arch_learning_rate", d.arch_learning_rate, "Adam learning rate of A.", lower_bound=0.0)
    f.DEFINE_float("arch_beta1", d.arch_beta1, "Adam beta_1 of A.", lower_bound=0.0, upper_bound=1.0)
    f.DEFINE_enum("arch_lr_schedule", d.arch_lr_schedule, ("constant", "cosine"), "Learning rate "
                  "of A: constant (the reference), or cosine-annealed to 0 over the search, "
                  "so that the discrete architecture settles by the end.")
    f.DEFINE_float("arch_weight_decay", d.arch_weight_decay, "Coupled L2 of A (the reference's Adam).",
                   lower_bound=0.0)
    for name in registry.SEARCHER_FLAGS:  # defined from their config fields
        common.define_from_setting(config.SearchConfig, name)
    common.define_from_setting(config.SearchConfig, "train_flagfile")
    f.DEFINE_integer("search_seeds", d.search_seeds, "Images: run K searches (--seed, --seed+1, "
                     "...), retrain each cell for --select_epochs (the network of "
                     "--train_flagfile) on the training set less its last --select_split, "
                     "score it there, and write the best cell's genotype.json with "
                     "selection.md, a table of all K; the test set is never read. 1: one "
                     "search.", lower_bound=1)
    f.DEFINE_integer("select_epochs", d.select_epochs, "--search_seeds: epochs of each "
                     "cell's selection retraining.", lower_bound=1)
    f.DEFINE_float("select_split", d.select_split, "--search_seeds: the fraction of the "
                   "training set (its last examples) each selection retraining holds out "
                   "and is scored on.", lower_bound=0.01, upper_bound=0.5)
    f.DEFINE_float("train_portion", d.train_portion, "Fraction of the training set that trains the "
                   "weights; the rest trains A.", lower_bound=0.05, upper_bound=0.95)
    f.DEFINE_integer("cutout", d.cutout, "Cutout length (0: off).", lower_bound=0)
    f.DEFINE_integer("max_examples", d.max_examples, "Use only the first N training examples (0: all).",
                     lower_bound=0)
    f.DEFINE_integer("seed", d.seed, "Seed of Python, numpy, TF and the data pipeline.",
                     lower_bound=0, upper_bound=common.SEED_MAX)
    f.DEFINE_bool("deterministic", d.deterministic, "Turn on TF op determinism (same seed, same "
                  "genotype, on the CPU).")
    f.DEFINE_enum("strategy", d.strategy, common.STRATEGIES, "`mirrored` runs on every GPU "
                  "(or every logical CPU) with tf.distribute.MirroredStrategy; "
                  "`multi_worker` on the workers TF_CONFIG names "
                  "(MultiWorkerMirroredStrategy; bin/launch.py starts them on one machine).")
    f.DEFINE_integer("cpu_devices", d.cpu_devices, "Split the CPU into N logical devices (to try "
                     "--strategy=mirrored without GPUs).", lower_bound=0)
    f.DEFINE_bool("jit_compile", d.jit_compile, "Compile the search step with XLA.")
    f.DEFINE_string("output_dir", d.output_dir, "Run directory: a path, or a URL of a file "
                    "system TensorFlow reaches (gs://bucket/run).")
    f.DEFINE_bool("dry_run", d.dry_run, "Measure instead of searching: build the supernet, "
                  "run a few steps on the real data, one validation and one epoch end, and "
                  "print the parameters, seconds per step, per epoch and for the whole "
                  "search, and the peak memory; writes nothing into --output_dir.")
    f.DEFINE_string("json", d.json, "--dry_run: also write the estimate to this JSON file.")
    f.DEFINE_bool("resume", d.resume, "Continue from the run directory's last checkpoint.")
    f.DEFINE_integer("verbose", d.verbose, "Keras fit verbosity: 0 silent, 1 progress bar, 2 one "
                     "line per epoch.", lower_bound=0, upper_bound=2)

    common.define_text_flags(config.SearchConfig)

    common.define_run_flags(config.SearchConfig)
    common.register_strategy_validators()
    common.register_data_dir_validator()
    common.define_image_size_flag(d)
    flags.register_validator("output_dir", run_dir.usable_path,
                             "--output_dir must be a directory we can write: a path on disk "
                             "or a URL of a file system TensorFlow reaches (gs://...)")
    flags.register_validator("json",
                             lambda v: v is None or run_dir.usable_path(v, "--json", False),
                             "--json must be a file path on disk that we can write")
    flags.register_multi_flags_validator(
        ["json", "dry_run"], lambda v: v["json"] is None or v["dry_run"],
        "--json writes the estimate of --dry_run: add --dry_run")
    flags.register_multi_flags_validator(
        ["learning_rate", "learning_rate_min"],
        lambda v: v["learning_rate_min"] <= v["learning_rate"],
        "--learning_rate_min must not exceed --learning_rate")
    flags.register_multi_flags_validator(["searcher", "dataset", "space"], _check_searcher)
    flags.register_validator(
        "train_flagfile", lambda v: v is None or os.path.isfile(common.resolve_flagfile(v)),
        "--train_flagfile must be a bin/train.py flagfile that exists (e.g. "
        "configs/quickstart_train.flags)")
    flags.register_multi_flags_validator(
        ["train_flagfile", "max_params", "search_seeds"], lambda v: v["train_flagfile"] is None
        or v["max_params"] > 0 or v["search_seeds"] > 1, "--train_flagfile names the network "
        "--max_params counts and --search_seeds retrains: add one of them")
    flags.register_multi_flags_validator(
        ["search_seeds", "select_epochs", "select_split"], lambda v: v["search_seeds"] > 1
        or (v["select_epochs"], v["select_split"]) == (d.select_epochs, d.select_split),
        "--select_epochs and --select_split set the selection of --search_seeds: add "
        "--search_seeds=K (K > 1)")
    flags.register_multi_flags_validator(
        ["search_seeds", "dry_run"], lambda v: v["search_seeds"] == 1 or not v["dry_run"],
        "--dry_run estimates one search: drop --search_seeds (K searches take K times as "
        "long, plus K short retrainings)")


def _check_searcher(values):
    problem = searcher_problem(values)
    if problem:
        raise flags.ValidationError(problem)
    return True


def searcher_problem(values):
    """Why --searcher cannot search the job's family, or None."""
    name = values["searcher"]
    fam = common.family(values["dataset"], values["space"])
    if name not in registry.SEARCHERS or fam in registry.SEARCHERS[name].families():
        return None
    able = ", ".join(n for n, e in registry.SEARCHERS.items() if fam in e.families())
    cells = f"{', '.join(spaces.USER_SPACES[:-1])} and {spaces.USER_SPACES[-1]} cells"
    what = {"text": "text datasets", "images": f"images ({cells})",
            "space": "a space of your own (--space=module:function)"}[fam]
    return f"--searcher={name} does not search {what}; choose one of {able}"


# Flags of image searches only (the text path reads the TEXT_FLAGS instead),
# and of a space of your own (some shared with images).
IMAGE_FLAGS = ("download", "space", "init_channels", "layers", "nodes", "learning_rate_min",
               "train_portion", "cutout", "max_examples", "jit_compile", "penalize",
               "dry_run", "json", "image_size", "max_params", "train_flagfile", "search_seeds",
               "select_epochs", "select_split")
SPACE_FLAGS = ("space", "task", "learning_rate_min", "train_portion", "max_examples",
               "dry_run", "json")
TEXT_ONLY_FLAGS = common.TEXT_FLAGS + ("dry_run", "json")


def _searcher_reads(searcher, name, family):
    if searcher not in registry.SEARCHERS or name not in registry.SEARCHERS[searcher].flags:
        return False
    return family != "space" or name in registry.SPACE_FLAGS


FLAG_SET = common.FlagSet([__name__, common.__name__],
                          {"images": IMAGE_FLAGS, "text": TEXT_ONLY_FLAGS,
                           "space": SPACE_FLAGS},
                          registry.SEARCHER_FLAGS, _searcher_reads)
serialize = FLAG_SET.serialize
parse_or_exit = FLAG_SET.parse_or_exit
