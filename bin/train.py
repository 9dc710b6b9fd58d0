#!/usr/bin/env python
"""Retrains a genotype: python bin/train.py --flagfile=configs/cifar10_train.flags --genotype=NASP"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
# TF_CPP_MIN_LOG_LEVEL=0 shows TensorFlow's C++ logs again.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from absl import app  # noqa: E402

from nasp_tf import cli, search_flags, train_flags  # noqa: E402

train_flags.define_flags()


def main(argv):
    # TensorFlow is imported only once the flags are known to be good.
    return cli.main("train.py", argv, "nasp_tf.run_train", train_flags)


if __name__ == "__main__":
    app.run(main, flags_parser=lambda argv: search_flags.parse_or_exit(argv, "train.py"))
