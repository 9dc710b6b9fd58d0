#!/usr/bin/env python
"""Prints retrained runs side by side, image and text alike:
python bin/compare.py runs/quickstart_train runs/qs_train_nasp runs/qs_train_lstm"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from nasp_tf.cli import main  # noqa: E402

if __name__ == "__main__":
    main.compare()
