"""What the binaries share: user errors become one line and an exit code."""

import sys


def run_main(program, fn):
    """Runs `fn`; a known user error prints one line and returns its exit code."""
    from nasp_tf.data.images import DataError
    from nasp_tf.genotype import GenotypeError
    from nasp_tf.run_search import SearchFailed

    try:
        fn()
    except (DataError, GenotypeError) as e:
        print(f"{program}: error: {e}", file=sys.stderr)
        return 2
    except SearchFailed as e:
        print(f"{program}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{program}: interrupted; rerun the same command to resume from the last "
              "checkpoint", file=sys.stderr)
        return 130
    return 0
