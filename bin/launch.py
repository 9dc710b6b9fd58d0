#!/usr/bin/env python
"""A local cluster for --strategy=multi_worker:
python bin/launch.py --workers=2 -- bin/search.py --flagfile=configs/quickstart.flags --strategy=multi_worker"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from nasp_tf.cli import main  # noqa: E402

if __name__ == "__main__":
    main.launch()
