"""What the binaries share: user errors become one line and an exit code."""

import contextlib
import importlib
import os
import sys
import tempfile


def main(program, argv, module, flags_module):
    """The body of a binary's `main`: TensorFlow loads quietly, then `module.run`
    runs with the parsed flags; user errors become one line and an exit code."""
    from absl import flags

    if len(argv) > 1:
        print(f"{program}: error: unexpected arguments {argv[1:]}", file=sys.stderr)
        return 2
    with quiet_native_stderr():
        import tensorflow as tf
    # tf.distribute logs every cross-device reduction at INFO.
    tf.get_logger().setLevel("WARNING")
    runner = importlib.import_module(module)
    return run_main(program, lambda: runner.run(flags.FLAGS, flags_module.serialize()))


def run_main(program, fn):
    """Runs `fn`; a known user error prints one line and returns its exit code."""
    from nasp_tf.checkpoints import CheckpointError
    from nasp_tf.data.images import DataError
    from nasp_tf.genotype import GenotypeError
    from nasp_tf.run_search import RunFailed

    try:
        fn()
    except (DataError, GenotypeError, CheckpointError) as e:
        print(f"{program}: error: {e}", file=sys.stderr)
        return 2
    except RunFailed as e:
        print(f"{program}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{program}: interrupted; rerun the same command to resume from the last "
              "checkpoint", file=sys.stderr)
        return 130
    return 0


@contextlib.contextmanager
def quiet_native_stderr():
    """Hides what native code prints on stderr while TensorFlow loads.

    TensorFlow's C++ libraries log CUDA probing lines ("Could not find cuda
    drivers ...") before its log level applies, so TF_CPP_MIN_LOG_LEVEL cannot
    silence them. They are kept and shown only if the import itself fails.
    Set NASP_TF_SHOW_NATIVE_LOGS=1 to see them anyway.
    """
    if os.environ.get("NASP_TF_SHOW_NATIVE_LOGS"):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
