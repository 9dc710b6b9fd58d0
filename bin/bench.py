#!/usr/bin/env python
"""Benchmarks the searchers: python bin/bench.py --preset=small --space=darts7 --json=b.json

See docs/benchmarks.md for the protocol; `--convergence`, `--eta_sweep` and `--quality`
reproduce the NASP paper's Fig. 3 and Fig. 2 on digits and compare cell quality."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from nasp_tf.cli import main  # noqa: E402

if __name__ == "__main__":
    main.bench()
