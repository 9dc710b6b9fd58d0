"""The error types of nasp_tf, in one place.

`UserError`s are problems with what the user gave (flags, data, genotypes,
run directories): the binaries print their message as one line and exit
with code 2. `RunFailed` is a run that started but could not finish (a
diverged loss, a full disk): one line and exit code 1. Every message says
what is wrong and what to do.
"""

import errno
import os


class UserError(ValueError):
    """Something the user gave cannot be used; the message says what to do."""


class DataError(UserError):
    """A dataset that is missing, unreadable or unusable."""


class GenotypeError(UserError):
    """A genotype file or value that cannot be used."""


class CheckpointError(UserError):
    """A checkpoint that cannot be restored."""


class CompareError(UserError):
    """A run directory without readable results."""


class RunFailed(RuntimeError):
    """A search or training run that could not finish; the message says why
    and what is kept."""


# What a failed write says when the storage, not the program, is the problem.
STORAGE_ERRNOS = {errno.ENOSPC: "no space left on device", errno.EFBIG: "file too large",
                  errno.EROFS: "read-only file system", errno.EACCES: "permission denied",
                  errno.EDQUOT: "disk quota exceeded"}


def storage_reason(error, run_dir):
    """Why the storage refused a write into `run_dir` when `error` (an
    OSError, or TensorFlow's error for a failed write) is such a refusal
    ("no space left on device", ...), else None."""
    reason = STORAGE_ERRNOS.get(getattr(error, "errno", None))
    text = f"{getattr(error, 'filename', None) or ''} {error}"
    if reason is None:
        reason = next((r for r in STORAGE_ERRNOS.values() if r in text.lower()), None)
    # Only a write into the run directory: another file's problem is not this.
    if reason is None or not any(p in text for p in (run_dir, os.path.abspath(run_dir))):
        return None
    return reason


def storage_problem(run_dir, reason, newest):
    """The one line to print for `reason` (`storage_reason`): the run
    directory, the reason, the newest complete checkpoint (`newest`: (name,
    bytes) or None; its size is about what one more needs) and that the run
    resumes from it."""
    need = f"; a checkpoint here takes {newest[1] / 2**20:.1f} MB" if newest else ""
    kept = (f"The run stopped at its last complete checkpoint ({newest[0]})" if newest
            else "No checkpoint of the run was complete yet")
    return (f"cannot write into {run_dir}: {reason}{need}. {kept}: make room (or make the "
            "directory writable) and run the same command again to resume")
