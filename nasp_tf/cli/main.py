"""The body of every binary: flags -> TensorFlow -> the recipe of (binary,
data family) -> one line and an exit code for user errors.

Exit codes: 0 done; 2 a user error (bad flag, data, genotype or checkpoint:
`nasp_tf.errors.UserError`); 1 a run that could not finish (`RunFailed`);
130 interrupted.
"""

import contextlib
import os
import sys
import tempfile

from nasp_tf.cli import flags_common


def recipe(binary, family):
    """The function that runs a (binary, data family) job: the one dispatch table."""
    from nasp_tf.pipelines import image_search, image_train, text_search, text_train

    return {
        ("search", "images"): image_search.run,
        ("search", "text"): text_search.run,
        ("train", "images"): image_train.run,
        ("train", "text"): text_train.run,
    }[(binary, family)]


def main(binary, argv, flag_set):
    """Runs `binary` ("search" or "train") with the parsed absl flags: TensorFlow
    loads quietly, then the recipe of the dataset's family runs."""
    from absl import flags

    program = f"{binary}.py"
    if len(argv) > 1:
        print(f"{program}: error: unexpected arguments {argv[1:]}", file=sys.stderr)
        return 2
    config = flags.FLAGS
    flags_text = flag_set.serialize()
    # The checks that need no TensorFlow come first: a refusal costs a fraction
    # of a second and nothing is written.
    code = run_main(program, lambda: check_inputs(binary, config, flags_text))
    if code:
        return code
    with quiet_native_stderr():
        import tensorflow as tf
    # tf.distribute logs every cross-device reduction at INFO.
    tf.get_logger().setLevel("WARNING")
    if not config["verbose"].present and not sys.stdout.isatty():
        config.verbose = 2  # one line per epoch: no progress-bar debris in files and pipes
    run = recipe(binary, flags_common.family(config.dataset))
    return run_main(program, lambda: run(config, flags_text))


def check_inputs(binary, config, flags_text):
    """The user errors found without TensorFlow: the genotype of a retraining
    and what may be written into --output_dir (`nasp_tf.run_dir`)."""
    from nasp_tf import genotype as genotype_lib
    from nasp_tf import run_dir

    if binary == "train":
        text = flags_common.family(config.dataset) == "text"
        if not text:
            genotype_lib.load_cnn_genotype(config.genotype)
        elif config.genotype != "LSTM":
            genotype_lib.load_rnn_genotype(config.genotype)
        if config.dry_run:
            return  # writes nothing
    run_dir.plan(config.output_dir, flags_text, run_dir.resumes(config), config.overwrite)


def run_main(program, fn):
    """Runs `fn`; a known user error prints one line and returns its exit code."""
    from nasp_tf.errors import RunFailed, UserError

    try:
        fn()
    except UserError as e:
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
