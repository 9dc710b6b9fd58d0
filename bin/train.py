#!/usr/bin/env python
"""Retrains a genotype: python bin/train.py --flagfile=configs/cifar10_train.flags --genotype=NASP"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
# TF_CPP_MIN_LOG_LEVEL=0 shows TensorFlow's C++ logs again.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from absl import app  # noqa: E402

from nasp_tf.cli import main as cli_main  # noqa: E402
from nasp_tf.cli import train_flags  # noqa: E402

train_flags.define_flags()


def main(argv):
    # TensorFlow is imported only once the flags are known to be good.
    return cli_main.main("train", argv, train_flags.FLAG_SET)


if __name__ == "__main__":
    app.run(main, flags_parser=lambda argv: train_flags.parse_or_exit(argv, "train.py"))
