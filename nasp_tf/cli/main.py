"""The programs, as functions: bin/*.py, the console scripts installed by
setup.py (`nasp-search`, `nasp-train`, `nasp-bench`, `nasp-compare`,
`nasp-launch`) and `python -m nasp_tf.cli PROGRAM` call these.

search and train: flags (validated before TensorFlow loads) -> a typed
config (`nasp_tf.config`) -> the recipe of (program, data family) in
`RECIPES` -> one line and an exit code for user errors. bench: flags ->
`BenchConfig` -> the benchmark it names.

Exit codes: 0 done; 2 a user error (bad flag, data, genotype or checkpoint:
`nasp_tf.errors.UserError`); 1 a run that could not finish (`RunFailed`, a
failed benchmark job); 130 interrupted.
"""

import json
import os
import sys

# TF_CPP_MIN_LOG_LEVEL=0 shows TensorFlow's C++ logs again.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from nasp_tf import config as config_lib  # noqa: E402
from nasp_tf import native_logs  # noqa: E402
from nasp_tf.cli import flags_common  # noqa: E402


def search():
    """bin/search.py: searches a cell (flags: `nasp_tf.cli.search_flags`)."""
    from absl import app

    from nasp_tf.cli import search_flags

    search_flags.define_flags()
    app.run(lambda argv: run_job("search", argv, search_flags.FLAG_SET,
                                 config_lib.SearchConfig),
            flags_parser=lambda argv: search_flags.parse_or_exit(argv, "search.py"))


def train():
    """bin/train.py: retrains a genotype and exports it (`nasp_tf.cli.train_flags`)."""
    from absl import app

    from nasp_tf.cli import train_flags

    train_flags.define_flags()
    app.run(lambda argv: run_job("train", argv, train_flags.FLAG_SET,
                                 config_lib.TrainConfig),
            flags_parser=lambda argv: train_flags.parse_or_exit(argv, "train.py"))


def bench():
    """bin/bench.py: the benchmarks (`nasp_tf.bench`, flags: `nasp_tf.cli.bench_flags`)."""
    from absl import app, flags

    from nasp_tf.cli import bench_flags

    bench_flags.define_flags()

    def run(argv):
        if len(argv) > 1:
            print(f"bench.py: error: unexpected arguments {argv[1:]}", file=sys.stderr)
            return 2
        try:
            run_bench(config_lib.from_values(config_lib.BenchConfig, flags.FLAGS))
        except RuntimeError as e:
            print(f"bench.py: error: {e}", file=sys.stderr)
            return 1
        return 0

    app.run(run, flags_parser=lambda argv: bench_flags.parse_or_exit(argv, "bench.py"))


def compare():
    """bin/compare.py: retrained runs, image and text, side by side
    (`nasp_tf.tools.compare`)."""
    from nasp_tf.errors import CompareError
    from nasp_tf.tools import compare as compare_lib

    program = os.path.basename(sys.argv[0])
    if len(sys.argv) > 1 and sys.argv[1] in ("-h", "--help"):
        print(f"usage: {program} RUN_DIR [RUN_DIR ...]\n\nPrints retrained runs of "
              "bin/train.py side by side (their results.json): parameters and test top-1 "
              "of image networks; parameters and validation and test perplexities of "
              "language models.")
        sys.exit(0)
    if len(sys.argv) < 2 or sys.argv[1].startswith("-"):
        print(f"{program}: error: give one or more run directories of bin/train.py",
              file=sys.stderr)
        sys.exit(2)
    try:
        lines = compare_lib.table(sys.argv[1:])
    except CompareError as e:
        print(f"{program}: error: {e}", file=sys.stderr)
        sys.exit(2)
    print("\n".join(lines))


def launch():
    """bin/launch.py: a local cluster of workers (`nasp_tf.tools.launcher`)."""
    from nasp_tf.tools import launcher

    sys.exit(launcher.main(sys.argv))


def recipe(binary, family, search_seeds=1):
    """The function that runs a (binary, data family) job: the one dispatch
    table (`search_seeds` > 1: several image searches and a selection)."""
    from nasp_tf.pipelines import (image_search, image_train, seed_selection, space_search,
                                   space_train, text_search, text_train)

    if (binary, family) == ("search", "images") and search_seeds > 1:
        return seed_selection.run
    return {
        ("search", "images"): image_search.run,
        ("search", "text"): text_search.run,
        ("search", "space"): space_search.run,
        ("train", "images"): image_train.run,
        ("train", "text"): text_train.run,
        ("train", "space"): space_train.run,
    }[(binary, family)]


def run_job(binary, argv, flag_set, config_class):
    """Runs `binary` ("search" or "train") with the parsed absl flags: the
    user errors found without TensorFlow first, then TensorFlow loads
    quietly and the recipe of the dataset's family runs on the typed config."""
    from absl import flags

    program = f"{binary}.py"
    if len(argv) > 1:
        print(f"{program}: error: unexpected arguments {argv[1:]}", file=sys.stderr)
        return 2
    values = flags.FLAGS
    if not values["verbose"].present and not sys.stdout.isatty():
        values.verbose = 2  # one line per epoch: no progress-bar debris in files and pipes
    config = config_lib.from_values(config_class, values)
    flags_text = flag_set.serialize()
    # The checks that need no TensorFlow come first: a refusal costs a fraction
    # of a second and nothing is written.
    code = run_main(program, lambda: check_inputs(binary, config, flags_text))
    if code:
        return code
    with native_logs.quiet_native_stderr():
        import tensorflow as tf
    # tf.distribute logs every cross-device reduction at INFO.
    tf.get_logger().setLevel("WARNING")
    run = recipe(binary, flags_common.family(config.dataset, config.space),
                 getattr(config, "search_seeds", 1))
    return run_main(program, lambda: run(config, flags_text), config.output_dir)


def check_inputs(binary, config, flags_text):
    """The user errors found without TensorFlow: the genotype of a retraining
    and what may be written into --output_dir (`nasp_tf.run_dir`)."""
    from nasp_tf import genotype as genotype_lib
    from nasp_tf import run_dir
    from nasp_tf.errors import UserError

    family = flags_common.family(config.dataset, config.space)
    if binary == "train" and family == "space":
        try:
            with open(config.choices, encoding="utf-8") as f:
                choices = json.load(f)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise UserError(f"--choices={config.choices} is not a readable JSON file "
                            f"({getattr(e, 'msg', e)}); give the choices.json a search "
                            "wrote") from None
        if not isinstance(choices, dict):
            raise UserError(f"--choices={config.choices} must hold a JSON object {{decision: "
                            f"choice}}. Received: {type(choices).__name__}")
    elif binary == "train" and family == "images":
        genotype_lib.load_cnn_genotype(config.genotype)
    elif binary == "train" and config.genotype != "LSTM":
        genotype_lib.load_rnn_genotype(config.genotype)
    if config.dry_run:
        return  # writes nothing into the run directory
    export_only = binary == "train" and config.export_only
    run_dir.plan(config.output_dir, flags_text, run_dir.resumes(config.resume, export_only),
                 config.overwrite)


def run_bench(config):
    """The benchmark a `BenchConfig` names; writes --json; returns the report."""
    from nasp_tf.bench import (convergence, eta_sweep, latency, machine, quality, ranking,
                               speed)

    if config.latency:
        report = latency.run_latency(config)
    elif config.ranking:
        report = ranking.run_ranking(config)
    elif config.quality:
        report = quality.run_quality(config, machine.machine())
    elif config.convergence:
        report = convergence.run_convergence(config)
    elif config.eta_sweep:
        report = eta_sweep.run_eta_sweep(config)
    else:
        report = speed.run_steps(config)
    if config.json:
        with open(config.json, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=1)
        print(f"wrote {config.json}")
    return report


def run_main(program, fn, run_dir=None):
    """Runs `fn`; a known user error prints one line and returns its exit code,
    and so does a write into `run_dir` that the storage refuses (a full disk,
    a read-only directory: exit code 1)."""
    from nasp_tf.errors import RunFailed, UserError, storage_problem, storage_reason

    try:
        fn()
    except UserError as e:
        print(f"{program}: error: {e}", file=sys.stderr)
        return 2
    except RunFailed as e:
        print(f"{program}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{program}: interrupted; rerun the same command to resume from the last "
              "checkpoint", file=sys.stderr)
        return 130
    except Exception as e:  # OSError, or TensorFlow's error for a failed write
        reason = storage_reason(e, run_dir) if run_dir else None
        if reason is None:
            raise
        from nasp_tf import checkpoints  # TensorFlow is loaded by now: a run was writing

        print(f"{program}: error: {storage_problem(run_dir, reason, checkpoints.newest(run_dir))}",
              file=sys.stderr)
        return 1
    return 0
