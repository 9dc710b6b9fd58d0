"""Flags of `bin/train.py`, defined once and validated at parse time (no TF
import). Flags that do not apply to the chosen data family are refused."""

import os

from absl import flags

from nasp_tf import config
from nasp_tf import run_dir
from nasp_tf.cli import flags_common as common
from nasp_tf.data import DIGITS_PROTOCOL

DATASETS = (("cifar10", "imagenet2012", "digits", "synthetic") + DIGITS_PROTOCOL
            + common.TEXT_DATASETS)


def define_flags():
    f, d = flags, config.TrainConfig
    f.DEFINE_string("genotype", d.genotype, "A genotype JSON file (e.g. runs/quickstart/genotype.json)"
                    " or a published name: NASP, DARTS_V1, DARTS_V2 (text datasets: "
                    "DARTS_V1, DARTS_V2, ENAS, or LSTM for a keras.layers.LSTM baseline).")
    common.define_dataset_flag(DATASETS, "Data to train on: images (cifar10, imagenet2012, "
                               "digits, digits_foldK, synthetic, or your own: tfds:NAME, folder:DIR, "
                               "npz:FILE) or text (ptb, wt2: a corpus directory in --data_dir; "
                               "ptb_sample, shipped: trains on the PTB validation text, validates on the first "
                               "half of the PTB test text's lines and reports test perplexity "
                               "on the second half; synthetic_text).",
                               d.dataset)
    f.DEFINE_string("data_dir", d.data_dir, "Images: the tensorflow-datasets directory; text "
                    "(ptb, wt2): the corpus directory.")
    f.DEFINE_string("manual_dir", d.manual_dir, "ImageNet: directory holding the downloaded "
                    "ILSVRC2012 tar files (tfds manual download).")
    f.DEFINE_bool("download", d.download, "Download CIFAR-10 with tfds when it is not prepared.")
    f.DEFINE_integer("init_channels", d.init_channels, "Initial channels C.", lower_bound=2)
    f.DEFINE_integer("layers", d.layers, "Cells.", lower_bound=3)
    f.DEFINE_bool("auxiliary", d.auxiliary, "Auxiliary head on the second reduction cell.")
    f.DEFINE_float("aux_weight", d.aux_weight, "Weight of the auxiliary loss.", lower_bound=0.0)
    f.DEFINE_float("drop_path_prob", d.drop_path_prob, "Final drop-path probability (linear from 0).",
                   lower_bound=0.0, upper_bound=0.95)
    f.DEFINE_integer("cutout", d.cutout, "Cutout length (0: off).", lower_bound=0)
    f.DEFINE_integer("epochs", d.epochs, "Epochs.", lower_bound=1)
    f.DEFINE_integer("batch_size", d.batch_size, "Global batch.", lower_bound=1)
    f.DEFINE_integer("steps_per_epoch", d.steps_per_epoch, "Steps per epoch (0: one pass).", lower_bound=0)
    f.DEFINE_float("learning_rate", d.learning_rate, "Initial learning rate.", lower_bound=0.0)
    f.DEFINE_enum("lr_schedule", d.lr_schedule, ("cosine", "exponential"), "Per-epoch schedule: "
                  "cosine to --learning_rate_min, or x --lr_gamma per epoch.")
    f.DEFINE_float("learning_rate_min", d.learning_rate_min, "Final learning rate of the cosine.",
                   lower_bound=0.0)
    f.DEFINE_float("lr_gamma", d.lr_gamma, "Per-epoch factor of the exponential schedule.",
                   lower_bound=0.0, upper_bound=1.0)
    f.DEFINE_float("momentum", d.momentum, "SGD momentum.", lower_bound=0.0)
    f.DEFINE_float("weight_decay", d.weight_decay, "Coupled L2.", lower_bound=0.0)
    f.DEFINE_float("grad_clip", d.grad_clip, "Global-norm clip (0: off).", lower_bound=0.0)
    f.DEFINE_float("label_smoothing", d.label_smoothing, "Label smoothing epsilon.", lower_bound=0.0,
                   upper_bound=1.0)
    f.DEFINE_integer("max_examples", d.max_examples, "Use only the first N training examples (0: all).",
                     lower_bound=0)
    f.DEFINE_integer("seed", d.seed, "Seed of Python, numpy, TF and the data pipeline.",
                     lower_bound=0, upper_bound=common.SEED_MAX)
    f.DEFINE_bool("deterministic", d.deterministic, "Turn on TF op determinism.")
    f.DEFINE_enum("strategy", d.strategy, common.STRATEGIES, "`mirrored`: every GPU "
                  "(or logical CPU) with tf.distribute.MirroredStrategy; `multi_worker`: "
                  "the workers TF_CONFIG names (bin/launch.py starts them on one machine).")
    f.DEFINE_integer("cpu_devices", d.cpu_devices, "Split the CPU into N logical devices.", lower_bound=0)
    f.DEFINE_string("output_dir", d.output_dir, "Run directory.")
    f.DEFINE_bool("resume", d.resume, "Continue from the run directory's last checkpoint.")
    f.DEFINE_bool("dry_run", d.dry_run, "Build the network, print `parameters: N` and exit.")
    f.DEFINE_bool("export_only", d.export_only, "Export the last checkpoint and exit.")
    f.DEFINE_bool("export", d.export, "Write saved_model/ and model.keras at the end (--noexport: "
                  "results.json and the checkpoints only, e.g. for sweeps; --export_only "
                  "exports such a run later).")
    f.DEFINE_bool("save_predictions", d.save_predictions, "Images: also write "
                  "test_predictions.json, every test example's label and predicted class in "
                  "the test data's order (error analysis; the quality benchmark measures the "
                  "test images' sampling error from it).")
    f.DEFINE_integer("verbose", d.verbose, "Keras fit verbosity.", lower_bound=0, upper_bound=2)

    common.define_text_flags(config.TrainConfig)
    f.DEFINE_integer("nonmono", d.nonmono, "Text: switch to averaged SGD when the validation loss "
                     "is worse than the best of all but the last N epochs.", lower_bound=1)
    f.DEFINE_bool("asgd", d.asgd, "Text: allow the averaged-SGD switch.")
    f.DEFINE_integer("test_batch_size", d.test_batch_size, "Text: batch of the final test evaluation "
                     "(the reference uses 1).", lower_bound=1)

    flags.mark_flag_as_required("genotype")
    common.define_run_flags(config.TrainConfig)
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
               "label_smoothing", "max_examples", "save_predictions")
TEXT_FLAGS = common.TEXT_FLAGS + ("nonmono", "asgd", "test_batch_size")

FLAG_SET = common.FlagSet([__name__, common.__name__],
                          {"images": IMAGE_FLAGS, "text": TEXT_FLAGS})
serialize = FLAG_SET.serialize
parse_or_exit = FLAG_SET.parse_or_exit
