"""Flags of `bin/search.py`, defined once and validated at parse time.

This module imports no TensorFlow, so a bad flag is reported in a fraction of
a second, in one line.
"""

import os
import sys

from absl import flags

# Text corpora send bin/search.py and bin/train.py down the recurrent-cell path.
TEXT_DATASETS = ("ptb", "wt2", "synthetic_text")
DATASETS = ("cifar10", "digits", "synthetic") + TEXT_DATASETS
SPACES = ("darts7", "nasp12")
SEARCHERS = ("nasp", "darts1", "darts2", "pa", "pa_lazy")
STRATEGIES = ("default", "mirrored")


def define_flags():
    f = flags
    f.DEFINE_enum("dataset", "cifar10", DATASETS, "Images to search on. `digits` (scikit-"
                  "learn's bundled 8x8 digits) and `synthetic` need no download. `ptb`, "
                  "`wt2` (a corpus directory in --data_dir) and `synthetic_text` search a "
                  "recurrent cell.")
    f.DEFINE_string("data_dir", None, "tensorflow-datasets directory (default "
                    "~/tensorflow_datasets).")
    f.DEFINE_bool("download", True, "Download CIFAR-10 with tfds when it is not prepared.")
    f.DEFINE_enum("space", "darts7", SPACES, "Search space: `darts7` (DARTS's 7 ops, both "
                  "cells) or `nasp12` (8 normal ops, 5 reduction ops).")
    f.DEFINE_enum("searcher", "nasp", SEARCHERS, "Search algorithm: `nasp`; DARTS first "
                  "(`darts1`) or second order (`darts2`), which add the `none` op to the "
                  "space; the paper's ablations PA-standard (`pa`, eq. 10) and PA-lazy "
                  "(`pa_lazy`, eq. 11).")
    f.DEFINE_integer("epochs", 50, "Search epochs.", lower_bound=1)
    f.DEFINE_integer("batch_size", 64, "Global batch of both the weight and the "
                     "architecture half.", lower_bound=1)
    f.DEFINE_integer("steps_per_epoch", 0, "Steps per epoch; 0 is one pass over the "
                     "weight half.", lower_bound=0)
    f.DEFINE_integer("init_channels", 16, "Initial channels C.", lower_bound=2)
    f.DEFINE_integer("layers", 8, "Cells in the search network (reductions at 1/3, 2/3).",
                     lower_bound=3)
    f.DEFINE_integer("nodes", 4, "Intermediate nodes per cell.", lower_bound=1)
    f.DEFINE_float("learning_rate", 0.025, "Initial weight learning rate (SGD).",
                   lower_bound=0.0)
    f.DEFINE_float("learning_rate_min", 0.001, "Final weight learning rate (cosine).",
                   lower_bound=0.0)
    f.DEFINE_float("momentum", 0.9, "SGD momentum.", lower_bound=0.0)
    f.DEFINE_float("weight_decay", 3e-4, "Coupled L2 of the weights.", lower_bound=0.0)
    f.DEFINE_float("grad_clip", 5.0, "Global-norm clip of the weight gradient (0: off).",
                   lower_bound=0.0)
    f.DEFINE_float("arch_learning_rate", 3e-4, "Adam learning rate of A.", lower_bound=0.0)
    f.DEFINE_float("arch_beta1", 0.5, "Adam beta_1 of A.", lower_bound=0.0, upper_bound=1.0)
    f.DEFINE_float("arch_weight_decay", 1e-3, "Coupled L2 of A (the reference's Adam).",
                   lower_bound=0.0)
    f.DEFINE_float("eta", 0.0, "Weight of the complexity penalty R(A) (NASP eq. 8).",
                   lower_bound=0.0)
    f.DEFINE_enum("penalize", "normal", ("normal", "all"), "Penalise the normal cell's "
                  "matrix (the code) or both (the paper).")
    f.DEFINE_enum("prox_value", "one", ("one", "keep"), "prox_c1 sets the kept entry to 1 "
                  "(the code) or keeps its value (the paper).")
    f.DEFINE_enum("derive", "complete", ("complete", "softmax"), "Final genotype: the "
                  "trained discrete architecture, or the code's softmax re-derivation.")
    f.DEFINE_float("train_portion", 0.5, "Fraction of the training set that trains the "
                   "weights; the rest trains A.", lower_bound=0.05, upper_bound=0.95)
    f.DEFINE_integer("cutout", 0, "Cutout length (0: off).", lower_bound=0)
    f.DEFINE_integer("max_examples", 0, "Use only the first N training examples (0: all).",
                     lower_bound=0)
    f.DEFINE_integer("seed", 2, "Seed of Python, numpy, TF and the data pipeline.")
    f.DEFINE_bool("deterministic", False, "Turn on TF op determinism (same seed, same "
                  "genotype, on the CPU).")
    f.DEFINE_enum("strategy", "default", STRATEGIES, "`mirrored` runs on every GPU "
                  "(or every logical CPU) with tf.distribute.MirroredStrategy.")
    f.DEFINE_integer("cpu_devices", 0, "Split the CPU into N logical devices (to try "
                     "--strategy=mirrored without GPUs).", lower_bound=0)
    f.DEFINE_bool("jit_compile", False, "Compile the search step with XLA.")
    f.DEFINE_string("output_dir", "runs/search", "Run directory.")
    f.DEFINE_bool("resume", True, "Continue from the run directory's last checkpoint.")
    f.DEFINE_integer("verbose", 1, "Keras fit verbosity: 0 silent, 1 progress bar, 2 one "
                     "line per epoch.", lower_bound=0, upper_bound=2)

    define_text_flags(search=True)

    flags.register_validator("output_dir", writable_dir,
                             "--output_dir must be a directory we can create and write")
    flags.register_multi_flags_validator(
        ["learning_rate", "learning_rate_min"],
        lambda v: v["learning_rate_min"] <= v["learning_rate"],
        "--learning_rate_min must not exceed --learning_rate")
    flags.register_multi_flags_validator(
        ["searcher", "strategy"],
        lambda v: not (v["searcher"] == "darts2" and v["strategy"] == "mirrored"),
        "--searcher=darts2 runs on one device (its unrolled step rewrites the weights); "
        "use --strategy=default")


def define_text_flags(search):
    """Flags of the recurrent-cell path (--dataset=ptb, wt2, synthetic_text), shared
    by search and retraining; the defaults are DARTS's rnn/train_search.py
    (search) or rnn/train.py (retraining) values (REFERENCE.md §6.4, §6.5)."""
    f = flags
    f.DEFINE_string("train_file", "", "Text: the training file inside --data_dir "
                    "(default train.txt or ptb.train.txt).")
    f.DEFINE_string("valid_file", "", "Text: the validation file inside --data_dir.")
    f.DEFINE_string("test_file", "", "Text: the test file inside --data_dir.")
    f.DEFINE_integer("rnn_units", 300 if search else 850, "Text: embedding size = hidden "
                     "size of the recurrent cell.", lower_bound=1)
    f.DEFINE_integer("rnn_steps", 8, "Text: intermediate nodes of the recurrent cell.",
                     lower_bound=1)
    f.DEFINE_integer("bptt", 35, "Text: base BPTT length.", lower_bound=2)
    f.DEFINE_integer("eval_batch_size", 10, "Text: batch of validation and test.",
                     lower_bound=1)
    f.DEFINE_float("dropout", 0.75, "Text: locked dropout on the cell outputs.",
                   lower_bound=0.0, upper_bound=0.99)
    f.DEFINE_float("dropouth", 0.25, "Text: variational dropout of the hidden state.",
                   lower_bound=0.0, upper_bound=0.99)
    f.DEFINE_float("dropoutx", 0.75, "Text: variational dropout of the cell input.",
                   lower_bound=0.0, upper_bound=0.99)
    f.DEFINE_float("dropouti", 0.2, "Text: locked dropout on the embeddings.",
                   lower_bound=0.0, upper_bound=0.99)
    f.DEFINE_float("dropoute", 0.0 if search else 0.1, "Text: embedding (word) dropout.",
                   lower_bound=0.0, upper_bound=0.99)
    f.DEFINE_float("tar_beta", 1e-3, "Text: temporal activation regularisation beta.",
                   lower_bound=0.0)
    f.DEFINE_float("ar_alpha", 0.0, "Text: activation regularisation alpha.", lower_bound=0.0)
    f.DEFINE_integer("max_tokens", 0, "Text: use only the first N tokens of each split "
                     "(0: all).", lower_bound=0)


def serialize():
    """The search flags as a flagfile, for exact reruns (`--flagfile=flags.txt`)."""
    lines = [f.serialize() for f in flags.FLAGS.get_flags_for_module(__name__)]
    return "\n".join(line for line in lines if line) + "\n"


def writable_dir(path):
    if not path:
        return False
    path = os.path.abspath(path)
    while not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            return False
        path = parent
    return os.path.isdir(path) and os.access(path, os.W_OK | os.X_OK)


def parse_or_exit(argv, program):
    """absl's flag parser, but a bad flag ends in one line and exit code 2."""
    try:
        return flags.FLAGS(argv)
    except flags.Error as e:
        print(f"{program}: error: {e}", file=sys.stderr)
        sys.exit(2)
