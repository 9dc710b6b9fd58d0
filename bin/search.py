#!/usr/bin/env python
"""Searches a cell with NASP: python bin/search.py --flagfile=configs/cifar10.flags"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
# TF_CPP_MIN_LOG_LEVEL=0 shows TensorFlow's C++ logs again.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from absl import app, flags  # noqa: E402

from nasp_tf import search_flags  # noqa: E402

search_flags.define_flags()
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        print(f"search.py: error: unexpected arguments {argv[1:]}", file=sys.stderr)
        return 2
    # TensorFlow is imported only once the flags are known to be good.
    from nasp_tf import cli
    with cli.quiet_native_stderr():
        import tensorflow as tf
    # tf.distribute logs every cross-device reduction at INFO.
    tf.get_logger().setLevel("WARNING")
    from nasp_tf import run_search
    return cli.run_main("search.py",
                        lambda: run_search.run(FLAGS, search_flags.serialize()))


if __name__ == "__main__":
    app.run(main, flags_parser=lambda argv: search_flags.parse_or_exit(argv, "search.py"))
