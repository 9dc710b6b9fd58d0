"""`python -m nasp_tf.cli PROGRAM [flags]`: the programs of nasp_tf (search,
train, bench, compare, launch) without bin/ or the console scripts, e.g. the
benchmarks' child runs from an installed package."""

import sys

from nasp_tf.cli import entry_points

PROGRAMS = {"search": entry_points.search, "train": entry_points.train,
            "bench": entry_points.bench, "compare": entry_points.compare,
            "launch": entry_points.launch}


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in PROGRAMS:
        print(f"usage: python -m nasp_tf.cli {{{','.join(PROGRAMS)}}} [flags]",
              file=sys.stderr)
        return 2
    program = sys.argv.pop(1)
    sys.argv[0] = f"{program}.py"
    PROGRAMS[program]()
    return 0


if __name__ == "__main__":
    sys.exit(main())
