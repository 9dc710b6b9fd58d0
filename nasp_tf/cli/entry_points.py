"""The programs, as functions: `bin/*.py` and the console scripts installed by
setup.py (`nasp-search`, `nasp-train`, `nasp-bench`, `nasp-compare`,
`nasp-launch`) call
these. Each defines its binary's flags, parses them (a bad flag: one line,
exit code 2, before TensorFlow loads) and runs."""

import os
import sys

# TF_CPP_MIN_LOG_LEVEL=0 shows TensorFlow's C++ logs again.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def search():
    """bin/search.py: searches a cell (see `nasp_tf.cli.search_flags`)."""
    from absl import app

    from nasp_tf.cli import main, search_flags

    search_flags.define_flags()
    app.run(lambda argv: main.main("search", argv, search_flags.FLAG_SET),
            flags_parser=lambda argv: search_flags.parse_or_exit(argv, "search.py"))


def train():
    """bin/train.py: retrains a genotype and exports it (see `nasp_tf.cli.train_flags`)."""
    from absl import app

    from nasp_tf.cli import main, train_flags

    train_flags.define_flags()
    app.run(lambda argv: main.main("train", argv, train_flags.FLAG_SET),
            flags_parser=lambda argv: train_flags.parse_or_exit(argv, "train.py"))


def bench():
    """bin/bench.py: the benchmarks (see `nasp_tf.benchmark`)."""
    from absl import app, flags

    from nasp_tf import benchmark
    from nasp_tf.cli import flags_common

    benchmark.define_flags()

    def run(argv):
        if len(argv) > 1:
            print(f"bench.py: error: unexpected arguments {argv[1:]}", file=sys.stderr)
            return 2
        try:
            benchmark.run(flags.FLAGS)
        except RuntimeError as e:
            print(f"bench.py: error: {e}", file=sys.stderr)
            return 1
        return 0

    app.run(run, flags_parser=lambda argv: flags_common.parse_or_exit(argv, "bench.py"))


def compare():
    """bin/compare.py (and bin/compare_lm.py): retrained runs, image and text,
    side by side (see `nasp_tf.compare`)."""
    from nasp_tf import compare as compare_lib
    from nasp_tf.errors import CompareError

    program = os.path.basename(sys.argv[0])
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
    """bin/launch.py: a local cluster of workers (see `nasp_tf.launcher`)."""
    from nasp_tf import launcher

    sys.exit(launcher.main(sys.argv))
