"""The error types of nasp_tf, in one place.

`UserError`s are problems with what the user gave (flags, data, genotypes,
run directories): the binaries print their message as one line and exit
with code 2. `RunFailed` is a run that started but could not finish (a
diverged loss, a full disk): one line and exit code 1. Every message says
what is wrong and what to do.
"""

import errno
import glob
import os
import re


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


def storage_problem(error, run_dir):
    """The one line to print when `error` (an OSError, or TensorFlow's error
    for a failed write) means the run directory cannot be written, else None.
    It names the run directory, the reason and the size of the newest
    checkpoint there (about what one more needs), and says that the run
    resumes from its last complete checkpoint."""
    reason = STORAGE_ERRNOS.get(getattr(error, "errno", None))
    text = f"{getattr(error, 'filename', None) or ''} {error}"
    if reason is None:
        reason = next((r for r in STORAGE_ERRNOS.values() if r in text.lower()), None)
    # Only a write into the run directory: another file's problem is not this.
    if reason is None or not any(p in text for p in (run_dir, os.path.abspath(run_dir))):
        return None
    # Complete checkpoints only (ckpt-N.index and its data); a save the storage
    # refused leaves a ckpt-N_temp directory behind.
    files = glob.glob(os.path.join(run_dir, "checkpoints", "ckpt-*"))
    numbered = [int(m.group(1)) for m in (re.fullmatch(r"ckpt-(\d+)\.index", os.path.basename(p))
                                          for p in files) if m]
    prefix = f"ckpt-{max(numbered)}." if numbered else None
    size = sum(os.path.getsize(p) for p in files
               if prefix and os.path.basename(p).startswith(prefix) and os.path.isfile(p))
    need = (f"; a checkpoint here takes {size / 2**20:.1f} MB" if size else "")
    kept = (f"The run stopped at its last complete checkpoint ({prefix[:-1]})" if prefix
            else "No checkpoint of the run was complete yet")
    return (f"cannot write into {run_dir}: {reason}{need}. {kept}: make room (or make the "
            "directory writable) and run the same command again to resume")
