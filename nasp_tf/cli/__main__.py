"""`python -m nasp_tf.cli PROGRAM [flags]`: the programs of nasp_tf (search,
train, bench, compare, launch) without bin/ or the console scripts, e.g. the
benchmarks' child runs from an installed package."""

import sys

from nasp_tf.cli import main as programs

PROGRAMS = {"search": programs.search, "train": programs.train, "bench": programs.bench,
            "compare": programs.compare, "launch": programs.launch}


def run():
    if len(sys.argv) < 2 or sys.argv[1] not in PROGRAMS:
        print(f"usage: python -m nasp_tf.cli {{{','.join(PROGRAMS)}}} [flags]",
              file=sys.stderr)
        return 2
    program = sys.argv.pop(1)
    sys.argv[0] = f"{program}.py"
    PROGRAMS[program]()
    return 0


if __name__ == "__main__":
    sys.exit(run())
