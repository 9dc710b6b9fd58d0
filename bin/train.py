#!/usr/bin/env python
"""Retrains a genotype: python bin/train.py --flagfile=configs/cifar10_train.flags --genotype=NASP"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from nasp_tf.cli import main  # noqa: E402

if __name__ == "__main__":
    main.train()
