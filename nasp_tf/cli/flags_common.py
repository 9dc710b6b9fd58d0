"""What the binaries' flag sets share: data families, the recurrent-model
flags, per-family applicability, validation helpers and the flags record.

No TensorFlow here: a bad flag is reported in a fraction of a second, in one
line, with exit code 2.
"""

import dataclasses
import os
import re
import sys

from absl import flags

from nasp_tf import run_dir
from nasp_tf import shipped
from nasp_tf.shipped import resolve_flagfile
from nasp_tf import space_spec
from nasp_tf.data import checks

# Text corpora send bin/search.py and bin/train.py down the recurrent-cell path.
TEXT_DATASETS = ("ptb", "wt2", "ptb_sample", "synthetic_text")
# The user's own images: --dataset=tfds:NAME, folder:DIR or npz:FILE (the
# loaders are in nasp_tf.data.user_images, whose PREFIXES must match).
USER_DATA_PREFIXES = ("tfds", "folder", "npz")
USER_DATA_FORMS = "tfds:NAME, folder:DIR or npz:FILE"
STRATEGIES = ("default", "mirrored", "multi_worker")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")  # as nasp_tf.precision
# A space of the user's own (--space=module:function) is a family of its own.
FAMILIES = ("images", "text", "space")

# The flags of the recurrent-model path (define_text_flags).
TEXT_FLAGS = ("train_file", "valid_file", "test_file", "rnn_units", "rnn_steps", "bptt",
              "eval_batch_size", "dropout", "dropouth", "dropoutx", "dropouti", "dropoute",
              "tar_beta", "ar_alpha", "max_tokens")


def user_data(dataset):
    """(prefix, rest) of a --dataset value naming the user's own images
    (`folder:DIR` -> ("folder", "DIR")), or None for a built-in name."""
    prefix, colon, rest = dataset.partition(":")
    return (prefix, rest) if colon and prefix in USER_DATA_PREFIXES else None


def family(dataset, space=None):
    """The family of a job: "space" when --space names a space of the user's
    own (module:function), else that of the --dataset value: "text" or
    "images" (the user's own data, `tfds:`, `folder:` and `npz:`, is images)."""
    if space_spec.is_custom(space):
        return "space"
    return "text" if dataset in TEXT_DATASETS else "images"


def family_of(values):
    """The family of parsed flags (`family`; --space may be absent)."""
    space = values["space"].value if "space" in values else None
    return family(values["dataset"].value, space)


def dataset_problem(dataset, names):
    """Why a --dataset value cannot be used, as a message, or None.

    Checked when the flags are parsed (no TensorFlow): a built-in name, or a
    user-data form whose folder layout, archive keys or tfds name will do
    (`nasp_tf.data.checks`). The images and labels themselves are checked
    when they load (`nasp_tf.data.user_images`).

    Args:
      dataset: the --dataset value.
      names: the binary's built-in dataset names.
    """
    if dataset in names:
        return None
    user = user_data(dataset)
    if user is None:
        return (f"choose one of {', '.join(names)}, or your own images as {USER_DATA_FORMS}. "
                f"Received: {dataset!r}")
    prefix, rest = user
    if not rest:
        what, example = {"tfds": ("a tensorflow-datasets name", "mnist"),
                         "folder": ("a directory", "my_images"),
                         "npz": ("a .npz file", "my_images.npz")}[prefix]
        return (f"{prefix}: needs {what} after the colon. Received: {dataset!r}; write e.g. "
                f"--dataset={prefix}:{example}")
    if prefix == "tfds":
        return None  # with --data_dir (`register_data_dir_validator`)
    return checks.folder_problem(rest) if prefix == "folder" else checks.npz_problem(rest)


def define_dataset_flag(names, help_text, default):
    """Defines --dataset: one of `names`, or the user's own images (tfds:NAME,
    folder:DIR, npz:FILE), validated when parsed."""

    def check(value):
        problem = dataset_problem(value, names)
        if problem:
            raise flags.ValidationError(problem)
        return True

    flags.DEFINE_string("dataset", default, help_text)
    flags.register_validator("dataset", check)


def register_space_validator():
    """--space: a built-in cell space or module:function (`nasp_tf.space_spec`),
    whose module must be found; a space of your own trains on npz:FILE."""

    def check(value):
        problem = space_spec.problem(value) if space_spec.is_custom(value) else None
        if problem:
            raise flags.ValidationError(problem)
        return True

    flags.register_validator("space", check)

    def check_dataset(values):
        if (space_spec.is_custom(values["space"])
                and not values["dataset"].startswith("npz:")):
            raise flags.ValidationError(
                f"a space of your own trains on arrays: give --dataset=npz:FILE (x_train, "
                f"y_train[, x_test, y_test] of any shape your model takes). Received: "
                f"--dataset={values['dataset']}")
        return True

    flags.register_multi_flags_validator(["space", "dataset"], check_dataset)


def define_image_size_flag(defaults):
    """--image_size=H[,W]: the user's own images resized when they load
    (`defaults`: the binary's config class)."""
    flags.DEFINE_string("image_size", defaults.image_size, "Images of your own (tfds:, folder:, npz:): "
                        "resize them to H,W (or HxH for one number) when they load; a "
                        "folder's images may then differ in size.")

    def check(value):
        if value is None:
            return True
        try:
            checks.parse_image_size(value)
        except ValueError as e:
            raise flags.ValidationError(str(e)) from None
        return True

    flags.register_validator("image_size", check)
    flags.register_multi_flags_validator(
        ["image_size", "dataset"],
        lambda v: v["image_size"] is None or user_data(v["dataset"]) is not None,
        "--image_size resizes your own images (--dataset=tfds:NAME, folder:DIR or npz:FILE); "
        "the built-in datasets keep their size: remove --image_size")


def register_data_dir_validator():
    """--data_dir is refused beside folder:DIR and npz:FILE, which name their
    own path (it would be ignored), and a tfds:NAME must be in the tfds catalog
    or prepared in --data_dir; call once both flags are defined."""

    def names_its_path(dataset):
        user = user_data(dataset)
        return user is not None and user[0] != "tfds"

    flags.register_multi_flags_validator(
        ["dataset", "data_dir"],
        lambda v: v["data_dir"] is None or not names_its_path(v["dataset"]),
        "--data_dir does not apply to --dataset=folder:DIR or npz:FILE (the path is in "
        "--dataset); remove --data_dir")

    def known_to_tfds(values):
        user = user_data(values["dataset"])
        problem = checks.tfds_problem(user[1], values["data_dir"]) \
            if user and user[0] == "tfds" and user[1] else None
        if problem:
            raise flags.ValidationError(problem)
        return True

    flags.register_multi_flags_validator(["dataset", "data_dir"], known_to_tfds)


def define_text_flags(defaults):
    """Flags of the recurrent-cell path (--dataset=ptb, wt2, synthetic_text), shared
    by search and retraining; `defaults` is the binary's config class (DARTS's
    rnn/train_search.py or rnn/train.py values)."""
    f, d = flags, defaults
    f.DEFINE_string("train_file", d.train_file, "Text: the training file inside --data_dir "
                    "(default train.txt or ptb.train.txt).")
    f.DEFINE_string("valid_file", d.valid_file, "Text: the validation file inside --data_dir.")
    f.DEFINE_string("test_file", d.test_file, "Text: the test file inside --data_dir.")
    f.DEFINE_integer("rnn_units", d.rnn_units, "Text: embedding size = hidden size of the "
                     "recurrent cell.", lower_bound=1)
    f.DEFINE_integer("rnn_steps", d.rnn_steps, "Text: intermediate nodes of the recurrent "
                     "cell.", lower_bound=1)
    f.DEFINE_integer("bptt", d.bptt, "Text: base BPTT length.", lower_bound=2)
    f.DEFINE_integer("eval_batch_size", d.eval_batch_size, "Text: batch of validation and "
                     "test.", lower_bound=1)
    f.DEFINE_float("dropout", d.dropout, "Text: locked dropout on the cell outputs.",
                   lower_bound=0.0, upper_bound=0.99)
    f.DEFINE_float("dropouth", d.dropouth, "Text: variational dropout of the hidden state.",
                   lower_bound=0.0, upper_bound=0.99)
    f.DEFINE_float("dropoutx", d.dropoutx, "Text: variational dropout of the cell input.",
                   lower_bound=0.0, upper_bound=0.99)
    f.DEFINE_float("dropouti", d.dropouti, "Text: locked dropout on the embeddings.",
                   lower_bound=0.0, upper_bound=0.99)
    f.DEFINE_float("dropoute", d.dropoute, "Text: embedding (word) dropout.",
                   lower_bound=0.0, upper_bound=0.99)
    f.DEFINE_float("tar_beta", d.tar_beta, "Text: temporal activation regularisation beta.",
                   lower_bound=0.0)
    f.DEFINE_float("ar_alpha", d.ar_alpha, "Text: activation regularisation alpha.",
                   lower_bound=0.0)
    f.DEFINE_integer("max_tokens", d.max_tokens, "Text: use only the first N tokens of each "
                     "split (0: all).", lower_bound=0)


def define_from_setting(config_class, name):
    """Defines flag `name` from the field of `config_class` that holds its
    default, help, choices and bounds (`nasp_tf.config.setting`)."""
    field = next(f for f in dataclasses.fields(config_class) if f.name == name)
    meta, default = field.metadata, field.default
    if meta.get("choices"):
        flags.DEFINE_enum(name, default, list(meta["choices"]), meta["help"])
    elif field.type in (float, "float"):
        flags.DEFINE_float(name, default, meta["help"], lower_bound=meta.get("lower"),
                           upper_bound=meta.get("upper"))
    elif field.type in (int, "int"):
        flags.DEFINE_integer(name, default, meta["help"], lower_bound=meta.get("lower"),
                             upper_bound=meta.get("upper"))
    elif field.type in (bool, "bool"):
        flags.DEFINE_bool(name, default, meta["help"])
    else:
        flags.DEFINE_string(name, default, meta["help"])


class FlagSet:
    """The flags one binary defines, which of them apply to each data family
    (and searcher), and the checks and the record built on that.

    Args:
      modules: the modules whose flags the binary defines.
      family_only: {family: flag names that apply to that family only}.
      searcher_flags: flag names that only some searchers read, and
        `reads(searcher, name, family)` says whether a searcher reads one.
    """

    def __init__(self, modules, family_only, searcher_flags=(), reads=None):
        self.modules = modules
        self.family_only = family_only
        self.searcher_flags = set(searcher_flags)
        self.reads = reads

    def names(self):
        values = flags.FLAGS
        return [f.name for m in self.modules for f in values.get_flags_for_module(m)]

    def families_of(self, name):
        """The families flag `name` is listed for (empty: every family)."""
        return [fam for fam, names in self.family_only.items() if name in names]

    def applies(self, name, values):
        """Whether flag `name` does anything for the parsed `values`."""
        if not self.family_only:
            return True
        fam = family_of(values)
        listed = self.families_of(name)
        if listed and fam not in listed:
            return False
        if name in self.searcher_flags and self.reads is not None:
            return self.reads(values.searcher, name, fam)
        return True

    def not_applicable(self, values):
        """The first given flag that does nothing here, as a one-line message, or None."""
        if not self.family_only:
            return None
        fam = family_of(values)
        for name in self.names():
            if not values[name].present or self.applies(name, values):
                continue
            listed = self.families_of(name)
            if listed and fam not in listed:
                what = ("a space of your own (--space=module:function)" if fam == "space"
                        else f"{fam} datasets (--dataset={values.dataset})")
                return (f"--{name} does not apply to {what}; remove it from the command "
                        "line or flagfile")
            return (f"--{name} is not read by --searcher={values.searcher}; remove it from "
                    "the command line or flagfile")
        return None

    def serialize(self, values=None):
        """The applicable flags as a flagfile, for exact reruns (`--flagfile=flags.txt`)."""
        values = values or flags.FLAGS
        lines = [values[name].serialize() for name in self.names()
                 if self.applies(name, values)]
        return "\n".join(line for line in lines if line) + "\n"

    def help_text(self, program):
        """The binary's own flags, grouped by where they apply, with defaults."""
        values = flags.FLAGS
        groups = {"for every run": []}
        for name in sorted(self.names()):
            listed = self.families_of(name)
            if name in self.searcher_flags:
                group = "read by some searchers only (see --searcher)"
            elif listed:
                group = " and ".join(listed) + " only"
            else:
                group = "for every run"
            flag = values[name]
            default = flag.default_as_str or "''"
            groups.setdefault(group, []).append(f"  --{name} (default {default})\n      "
                                                f"{flag.help}")
        lines = [f"usage: {program} [--flagfile=FILE] [--flag=value ...]", ""]
        for title, entries in groups.items():
            if entries:
                lines += [f"flags {title}:", *entries, ""]
        lines.append("A flag that does not apply to the chosen --dataset family or searcher is "
                     "refused. --helpfull lists absl's own flags too.")
        return "\n".join(lines)

    def parse_or_exit(self, argv, program):
        """absl's flag parser, but a bad flag (or one that does not apply)
        ends in one line and exit code 2; --help prints the binary's flags."""
        if any(a in ("--help", "-h", "-?", "--helpshort") for a in argv[1:]):
            print(self.help_text(program))
            sys.exit(0)
        rest = parse_or_exit(argv, program)
        problem = self.not_applicable(flags.FLAGS)
        if problem:
            print(f"{program}: error: {problem}", file=sys.stderr)
            sys.exit(2)
        return rest


SEED_MAX = 2 ** 32 - 1  # numpy's legacy seeding takes 0..2**32-1


def define_run_flags(defaults):
    """The flags of a run directory's safety, shared by search and retraining
    (`defaults`: the binary's config class)."""
    d = defaults
    flags.DEFINE_bool("overwrite", d.overwrite, "Start again in an --output_dir that holds another "
                      "run (other flags, or --noresume): the old run is moved to "
                      "DIR.old-N, not deleted.")
    flags.DEFINE_enum("on_nan", d.on_nan, ("stop", "restore"), "When a loss turns NaN/inf: "
                      "`stop` with one line (exit 1; the last good epoch's checkpoint and "
                      "outputs kept), or `restore` that checkpoint and go on at half the "
                      "learning rates (at most 3 times).")
    flags.DEFINE_string("checkpoint_every", d.checkpoint_every, "Checkpoint inside epochs too, every N "
                        "steps (`200`) or every so much time (`90s`, `5m`, `1h`); `0`: at "
                        "epoch ends only. A killed run loses at most this much; rerun the "
                        "same command to resume.")
    flags.register_validator("checkpoint_every", _valid_interval,
                             "--checkpoint_every takes N (steps), Ns, Nm or Nh (time), or 0")
    flags.DEFINE_enum("mixed_precision", d.mixed_precision, PRECISIONS, "Keras dtype policy: "
                      "`mixed_float16` or `mixed_bfloat16` compute in 16 bits with float32 "
                      "weights; A, prox, the penalty, losses and batch norm stay float32, "
                      "and float16 scales its losses dynamically.")


def _valid_interval(text):
    try:
        run_dir.checkpoint_interval(text)
    except ValueError:
        return False
    return True


def register_strategy_validators():
    """--cpu_devices only serves --strategy=mirrored (it splits the CPU for it);
    --strategy=multi_worker needs a cluster in TF_CONFIG."""
    flags.register_multi_flags_validator(
        ["cpu_devices", "strategy"],
        lambda v: v["cpu_devices"] <= 1 or v["strategy"] == "mirrored",
        "--cpu_devices splits the CPU for --strategy=mirrored; add --strategy=mirrored or "
        "drop --cpu_devices")
    flags.register_validator(
        "strategy", lambda v: v != "multi_worker" or cluster_problem() is None,
        "--strategy=multi_worker reads its cluster from TF_CONFIG: start the workers with "
        "python bin/launch.py --workers=N -- bin/search.py ... (one machine), or set "
        "TF_CONFIG on each machine (docs/scaling.md)")


def cluster_problem(text=None):
    """What is wrong with a TF_CONFIG (the environment's if `text` is None), or
    None: a JSON object with a non-empty cluster.worker list and a task
    {type: worker or chief, index in range}."""
    import json

    text = os.environ.get("TF_CONFIG") if text is None else text
    if not text:
        return "TF_CONFIG is not set"
    try:
        config = json.loads(text)
        cluster, task = config["cluster"], config["task"]
        members = cluster[task["type"]]
        if task["type"] not in ("worker", "chief") or not 0 <= int(task["index"]) < len(members):
            return "TF_CONFIG's task is not one of its cluster's workers"
    except (ValueError, KeyError, TypeError):
        return "TF_CONFIG is not a JSON object with cluster and task"
    return None


def resolve_flagfiles(argv):
    """argv with every --flagfile value resolved by `resolve_flagfile`, so that
    the shipped configs work from any directory."""
    resolved = list(argv[:1])
    args = iter(argv[1:])
    for arg in args:
        if arg.startswith("--flagfile="):
            arg = "--flagfile=" + resolve_flagfile(arg[len("--flagfile="):])
        elif arg == "--flagfile":
            resolved.append(arg)
            arg = next(args, None)
            if arg is None:
                break  # absl reports the missing value
            arg = resolve_flagfile(arg)
        resolved.append(arg)
    return resolved


def parse_or_exit(argv, program):
    """absl's flag parser, but a bad flag ends in one line and exit code 2;
    --flagfile also finds the shipped configs (`resolve_flagfile`)."""
    try:
        return flags.FLAGS(resolve_flagfiles(argv))
    except flags.Error as e:
        print(f"{program}: error: {_plain(str(e))}", file=sys.stderr)
        sys.exit(2)


def _plain(message):
    """absl's parse errors in the words of the programs' other errors."""
    number = re.match(r"flag --(\w+)=(.*?): (invalid literal for int\(\)|could not convert "
                      r"string to float)", message)
    if number:
        kind = "a whole number" if "int()" in number.group(3) else "a number"
        return f"--{number.group(1)} takes {kind}. Received: {number.group(2)!r}"
    missing = re.search(r"Unable to open flagfile: .*?No such file or directory: '(.*)'",
                        message)
    if missing:
        shipped_names = sorted(name for d in shipped.config_dirs() if os.path.isdir(d)
                               for name in os.listdir(d) if name.endswith(".flags"))
        return (f"the flagfile {missing.group(1)} does not exist; the shipped configs are "
                f"{', '.join(shipped_names)} (--flagfile=configs/NAME.flags)")
    # A check of several flags: absl lists their values first ("flags a=1, b=2: ");
    # the message names what matters.
    several = re.match(r"flags \w+=[^\n]*?(, \w+=[^\n]*?)+: (--|[a-z])", message)
    if several:
        message = message[several.end(2) - len(several.group(2)):]
    return message.replace("ERROR:: ", "")
