"""Run by test_no_leaks.py: a nasp_tf program on data of which one part was
replaced, to show that the program never reads that part.

    swapped_data_worker.py ptb DIR PROGRAM FLAGS...      the PTB sample read from DIR
    swapped_data_worker.py digits SEED PROGRAM FLAGS...  digits whose images at the
                                                         fixed permutation's positions
                                                         1500.. (the `digits` test
                                                         set) are noise drawn from SEED
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def main():
    kind, value, program, *flags = sys.argv[1:]
    if kind == "ptb":
        from nasp_tf.data import text

        text.PTB_SAMPLE_DIR = value
    else:
        import numpy as np

        from nasp_tf.data import images

        arrays = images._digits_arrays

        def swapped():
            x, y = (a.copy() for a in arrays())
            rng = np.random.default_rng(0)
            start = int(value)
            x[start:] = rng.integers(0, 256, x[start:].shape, dtype=np.uint8)
            y[start:] = rng.integers(0, 10, y[start:].shape)
            return x, y

        images._digits_arrays = swapped
    from nasp_tf.cli import main

    sys.argv = [f"{program}.py", *flags]
    getattr(main, program)()


if __name__ == "__main__":
    main()
