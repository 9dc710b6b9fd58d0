#!/usr/bin/env python
"""Prints retrained runs side by side (the older name of bin/compare.py, which
tabulates image runs too): python bin/compare_lm.py runs/qs_nasp runs/qs_lstm"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from nasp_tf.cli import entry_points  # noqa: E402

if __name__ == "__main__":
    entry_points.compare()
