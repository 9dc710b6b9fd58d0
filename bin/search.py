#!/usr/bin/env python
"""Searches a cell with NASP: python bin/search.py --flagfile=configs/cifar10.flags"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from nasp_tf.cli import main  # noqa: E402

if __name__ == "__main__":
    main.search()
