#!/usr/bin/env python
"""Prints retrained language models side by side:
python bin/compare_lm.py runs/qs_nasp runs/qs_darts_v2 runs/qs_lstm"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from nasp_tf import compare  # noqa: E402


def main(argv):
    if len(argv) < 2:
        print("compare_lm.py: error: give one or more run directories of bin/train.py",
              file=sys.stderr)
        return 2
    try:
        lines = compare.table(argv[1:])
    except compare.CompareError as e:
        print(f"compare_lm.py: error: {e}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
