"""Flags of `bin/train.py`, defined once and validated at parse time (no TF
import). Flags that do not apply to the chosen data family are refused."""

import os

from absl import flags

from nasp_tf import config
from nasp_tf import run_dir
from nasp_tf import space_spec
from nasp_tf.cli import flags_common as common
from nasp_tf.data import DIGITS_PROTOCOL

DATASETS = (("cifar10", "imagenet2012", "digits", "synthetic") + DIGITS_PROTOCOL
            + common.TEXT_DATASETS)


def define_flags():
    f, d = flags, config.TrainConfig
    f.DEFINE_string("genotype", d.genotype, "A genotype JSON file (e.g. runs/quickstart/genotype.json)"
                    " or a published name: NASP, DARTS_V1, DARTS_V2 (text datasets: "
                    "DARTS_V1, DARTS_V2, ENAS, or LSTM for a keras.layers.LSTM baseline).")
    f.DEFINE_string("space", d.space, "A space of your own, as searched (module:function, "
                    "docs/custom-spaces.md): retrains the architecture --choices names, "
                    "built fresh, on --dataset=npz:FILE (instead of --genotype).")
    f.DEFINE_string("choices", d.choices, "A space of your own: the choices JSON a search "
                    "wrote (e.g. runs/search/choices.json).")
    f.DEFINE_enum("task", d.task, ("classification", "regression"), "A space of your own: "
                  "`classification` (class ids, logits; cross-entropy, accuracy) or "
                  "`regression` (float targets; mean squared error).")
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
    f.DEFINE_string("output_dir", d.output_dir, "Run directory: a path, or a URL of a file "
                    "system TensorFlow reaches (gs://bucket/run).")
    f.DEFINE_bool("resume", d.resume, "Continue from the run directory's last checkpoint.")
    f.DEFINE_bool("dry_run", d.dry_run, "Build the network, print `parameters: N` and exit.")
    f.DEFINE_bool("export_only", d.export_only, "Export the last checkpoint and exit.")
    f.DEFINE_bool("export", d.export, "Write saved_model/ and model.keras at the end (--noexport: "
                  "results.json and the checkpoints only, e.g. for sweeps; --export_only "
                  "exports such a run later).")
    f.DEFINE_float("select_split", d.select_split, "Images: hold out this fraction of the "
                   "training set (its last examples), train on the rest, and report "
                   "accuracy on it (selection_top1 in results.json) instead of testing: "
                   "choosing between cells without reading the test set (bin/search.py "
                   "--search_seeds does). 0: train on all, report the test set.",
                   lower_bound=0.0, upper_bound=0.5)
    f.DEFINE_bool("export_tflite", d.export_tflite, "Images: also write model.tflite "
                  "(float32) and model_int8.tflite (int8 dynamic-range weights) for TensorFlow "
                  "Lite, each checked against the network on the first test images "
                  "(results.json).")
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

    flags.register_multi_flags_validator(
        ["genotype", "space", "choices"], _what_to_train,
        "give --genotype (a cell), or --space with --choices (a space of your own)")
    common.register_space_validator()
    common.define_run_flags(config.TrainConfig)
    common.register_strategy_validators()
    common.register_data_dir_validator()
    common.define_image_size_flag(d)
    flags.register_validator("output_dir", run_dir.usable_path,
                             "--output_dir must be a directory we can write: a path on disk "
                             "or a URL of a file system TensorFlow reaches (gs://...)")
    flags.register_multi_flags_validator(
        ["export", "export_only"], lambda v: v["export"] or not v["export_only"],
        "--export_only exports: it cannot be combined with --noexport")
    flags.register_multi_flags_validator(
        ["select_split", "save_predictions"],
        lambda v: not (v["select_split"] and v["save_predictions"]),
        "--save_predictions writes the test set's predictions, which --select_split does "
        "not read: drop one of them")
    flags.register_multi_flags_validator(
        ["export", "export_tflite"], lambda v: v["export"] or not v["export_tflite"],
        "--export_tflite writes beside the export: it cannot be combined with --noexport")
    flags.register_validator("manual_dir", lambda d: d is None or os.path.isdir(d),
                             "--manual_dir must be an existing directory")


def _what_to_train(values):
    """--genotype, or --space with --choices: one thing to train, said in one line."""
    genotype, space, choices = values["genotype"], values["space"], values["choices"]
    if space is not None and not space_spec.is_custom(space):
        raise flags.ValidationError(
            f"bin/train.py --space takes a space of your own (module:function); the cell "
            f"spaces are retrained from a genotype: --genotype=FILE. Received: --space={space}")
    if space is None and genotype is None:
        raise flags.ValidationError("give --genotype (a genotype JSON file or a published "
                                    "name), or --space=module:function with --choices=FILE")
    if space is not None and genotype is not None:
        raise flags.ValidationError("give --genotype or --space with --choices, not both")
    if space is not None and choices is None:
        raise flags.ValidationError(f"--space={space}: add --choices=FILE, the choices.json "
                                    "its search wrote")
    if choices is not None and not os.path.isfile(choices):
        hint = (f"; its search wrote {os.path.join(choices, 'choices.json')}"
                if os.path.isdir(choices) else "")
        raise flags.ValidationError(f"--choices must be a choices JSON file. Received: "
                                    f"{choices!r}{hint}")
    return True


# Flags of image retraining only, of text retraining only, and of a space of
# your own (some shared with images).
IMAGE_FLAGS = ("manual_dir", "download", "init_channels", "layers", "auxiliary", "aux_weight",
               "drop_path_prob", "cutout", "lr_schedule", "learning_rate_min", "lr_gamma",
               "label_smoothing", "max_examples", "save_predictions", "genotype",
               "export_tflite", "image_size", "select_split")
TEXT_FLAGS = common.TEXT_FLAGS + ("nonmono", "asgd", "test_batch_size", "genotype")
SPACE_FLAGS = ("space", "choices", "task", "learning_rate_min", "max_examples")

FLAG_SET = common.FlagSet([__name__, common.__name__],
                          {"images": IMAGE_FLAGS, "text": TEXT_FLAGS, "space": SPACE_FLAGS})
serialize = FLAG_SET.serialize
parse_or_exit = FLAG_SET.parse_or_exit
