"""Flags of `bin/train.py`, defined once and validated at parse time (no TF
import). Flags that do not apply to the chosen data family are refused."""

import os

from absl import flags

from nasp_tf import run_dir
from nasp_tf.cli import flags_common as common
from nasp_tf.data import DIGITS_PROTOCOL

DATASETS = (("cifar10", "imagenet2012", "digits", "synthetic") + DIGITS_PROTOCOL
            + common.TEXT_DATASETS)


def define_flags():
    f = flags
    f.DEFINE_string("genotype", None, "A genotype JSON file (e.g. runs/quickstart/genotype.json)"
                    " or a published name: NASP, DARTS_V1, DARTS_V2 (text datasets: "
                    "DARTS_V1, DARTS_V2, ENAS, or LSTM for a keras.layers.LSTM baseline).")
    common.define_dataset_flag(DATASETS, "Data to train on: images (cifar10, imagenet2012, "
                               "digits, digits_foldK, synthetic, or your own: tfds:NAME, folder:DIR, "
                               "npz:FILE) or text (ptb, wt2: a corpus directory in --data_dir; "
                               "ptb_sample, shipped: trains on the PTB validation text, validates on the first "
                               "half of the PTB test text's lines and reports test perplexity "
                               "on the second half; synthetic_text).")
    f.DEFINE_string("data_dir", None, "Images: the tensorflow-datasets directory; text "
                    "(ptb, wt2): the corpus directory.")
    f.DEFINE_string("manual_dir", None, "ImageNet: directory holding the downloaded "
                    "ILSVRC2012 tar files (tfds manual download).")
    f.DEFINE_bool("download", True, "Download CIFAR-10 with tfds when it is not prepared.")
    f.DEFINE_integer("init_channels", 36, "Initial channels C.", lower_bound=2)
    f.DEFINE_integer("layers", 20, "Cells.", lower_bound=3)
    f.DEFINE_bool("auxiliary", True, "Auxiliary head on the second reduction cell.")
    f.DEFINE_float("aux_weight", 0.4, "Weight of the auxiliary loss.", lower_bound=0.0)
    f.DEFINE_float("drop_path_prob", 0.2, "Final drop-path probability (linear from 0).",
                   lower_bound=0.0, upper_bound=0.95)
    f.DEFINE_integer("cutout", 16, "Cutout length (0: off).", lower_bound=0)
    f.DEFINE_integer("epochs", 600, "Epochs.", lower_bound=1)
    f.DEFINE_integer("batch_size", 96, "Global batch.", lower_bound=1)
    f.DEFINE_integer("steps_per_epoch", 0, "Steps per epoch (0: one pass).", lower_bound=0)
    f.DEFINE_float("learning_rate", 0.025, "Initial learning rate.", lower_bound=0.0)
    f.DEFINE_enum("lr_schedule", "cosine", ("cosine", "exponential"), "Per-epoch schedule: "
                  "cosine to --learning_rate_min, or x --lr_gamma per epoch.")
    f.DEFINE_float("learning_rate_min", 0.0, "Final learning rate of the cosine.",
                   lower_bound=0.0)
    f.DEFINE_float("lr_gamma", 0.97, "Per-epoch factor of the exponential schedule.",
                   lower_bound=0.0, upper_bound=1.0)
    f.DEFINE_float("momentum", 0.9, "SGD momentum.", lower_bound=0.0)
    f.DEFINE_float("weight_decay", 3e-4, "Coupled L2.", lower_bound=0.0)
    f.DEFINE_float("grad_clip", 5.0, "Global-norm clip (0: off).", lower_bound=0.0)
    f.DEFINE_float("label_smoothing", 0.0, "Label smoothing epsilon.", lower_bound=0.0,
                   upper_bound=1.0)
    f.DEFINE_integer("max_examples", 0, "Use only the first N training examples (0: all).",
                     lower_bound=0)
    f.DEFINE_integer("seed", 0, "Seed of Python, numpy, TF and the data pipeline.",
                     lower_bound=0, upper_bound=common.SEED_MAX)
    f.DEFINE_bool("deterministic", False, "Turn on TF op determinism.")
    f.DEFINE_enum("strategy", "default", common.STRATEGIES, "`mirrored`: every GPU "
                  "(or logical CPU) with tf.distribute.MirroredStrategy; `multi_worker`: "
                  "the workers TF_CONFIG names (bin/launch.py starts them on one machine).")
    f.DEFINE_integer("cpu_devices", 0, "Split the CPU into N logical devices.", lower_bound=0)
    f.DEFINE_string("output_dir", "runs/train", "Run directory.")
    f.DEFINE_bool("resume", True, "Continue from the run directory's last checkpoint.")
    f.DEFINE_bool("dry_run", False, "Build the network, print `parameters: N` and exit.")
    f.DEFINE_bool("export_only", False, "Export the last checkpoint and exit.")
    f.DEFINE_bool("export", True, "Write saved_model/ and model.keras at the end (--noexport: "
                  "results.json and the checkpoints only, e.g. for sweeps; --export_only "
                  "exports such a run later).")
    f.DEFINE_integer("verbose", 1, "Keras fit verbosity.", lower_bound=0, upper_bound=2)

    common.define_text_flags(search=False)
    f.DEFINE_integer("nonmono", 5, "Text: switch to averaged SGD when the validation loss "
                     "is worse than the best of all but the last N epochs.", lower_bound=1)
    f.DEFINE_bool("asgd", True, "Text: allow the averaged-SGD switch.")
    f.DEFINE_integer("test_batch_size", 1, "Text: batch of the final test evaluation "
                     "(the reference uses 1).", lower_bound=1)

    flags.mark_flag_as_required("genotype")
    common.define_run_flags()
    common.register_strategy_validators()
    common.register_data_dir_validator()
    flags.register_validator("output_dir", run_dir.usable_path,
                             "--output_dir must be a directory on disk that we can write")
    flags.register_multi_flags_validator(
        ["export", "export_only"], lambda v: v["export"] or not v["export_only"],
        "--export_only exports: it cannot be combined with --noexport")
    flags.register_validator("manual_dir", lambda d: d is None or os.path.isdir(d),
                             "--manual_dir must be an existing directory")


# Flags of image retraining only, and of text retraining only.
IMAGE_FLAGS = ("manual_dir", "download", "init_channels", "layers", "auxiliary", "aux_weight",
               "drop_path_prob", "cutout", "lr_schedule", "learning_rate_min", "lr_gamma",
               "label_smoothing", "max_examples")
TEXT_FLAGS = common.TEXT_FLAGS + ("nonmono", "asgd", "test_batch_size")

FLAG_SET = common.FlagSet([__name__, common.__name__],
                          {"images": IMAGE_FLAGS, "text": TEXT_FLAGS})
serialize = FLAG_SET.serialize
parse_or_exit = FLAG_SET.parse_or_exit
