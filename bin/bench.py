#!/usr/bin/env python
"""Benchmarks the searchers: python bin/bench.py --preset=small --space=darts7 --json=b.json

See docs/benchmarks.md for the protocol; `--convergence` and `--eta_sweep`
reproduce the NASP paper's Fig. 3 and Fig. 2 on digits.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from absl import app, flags  # noqa: E402

from nasp_tf import benchmark  # noqa: E402
from nasp_tf.cli import flags_common  # noqa: E402

benchmark.define_flags()


def main(argv):
    if len(argv) > 1:
        print(f"bench.py: error: unexpected arguments {argv[1:]}", file=sys.stderr)
        return 2
    try:
        benchmark.run(flags.FLAGS, os.path.abspath(__file__))
    except RuntimeError as e:
        print(f"bench.py: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    app.run(main, flags_parser=lambda argv: flags_common.parse_or_exit(argv, "bench.py"))
