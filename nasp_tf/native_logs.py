"""TensorFlow's native start-up logs, hidden while it loads. No TensorFlow
here: the programs and the benchmarks call it before they import it."""

import contextlib
import os
import sys
import tempfile


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
