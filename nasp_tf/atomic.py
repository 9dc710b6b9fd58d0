"""Atomic writes: a file or directory appears whole or not at all.

A run killed while it writes (SIGKILL, a full disk, a pre-empted machine)
must never leave a half-written genotype, results file, picture or export in
place of a good one. Everything is written next to its destination under a
temporary name and renamed over it: on POSIX a rename within one directory
is atomic. No TensorFlow here.
"""

import contextlib
import os
import shutil
import uuid


def _temporary_name(path):
    head, tail = os.path.split(os.path.abspath(path))
    # A hidden, unique name in the same directory (the rename stays on one
    # file system, concurrent writers never share a temporary) that ends like
    # the real one, for writers that choose the format by the extension.
    return os.path.join(head, f".tmp-{uuid.uuid4().hex[:8]}-{tail}")


@contextlib.contextmanager
def writing(path):
    """Yields a temporary path to write a file or a directory to; on success it
    replaces `path` (an existing directory is replaced as a whole), on failure
    the temporary is removed and `path` is untouched."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = _temporary_name(path)
    try:
        yield tmp
        if os.path.isdir(tmp) and os.path.isdir(path):
            # Directories cannot be renamed over non-empty ones: move the old
            # one aside first, so at every moment one whole copy exists.
            old = _temporary_name(path)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
        elif os.path.lexists(tmp):
            os.remove(tmp)


def write_text(path, text):
    """Writes `text` (UTF-8) to `path` atomically, flushed to disk first."""
    with writing(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
    return path


def append_text(path, text):
    """Appends `text` to `path` (a log: a torn last line is the worst case)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(text)
    return path
