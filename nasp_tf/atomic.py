"""Atomic writes: a file or directory appears whole or not at all.

A run killed while it writes (SIGKILL, a full disk, a pre-empted machine)
must never leave a half-written genotype, results file, picture or export in
place of a good one. Everything is written next to its destination under a
temporary name and renamed over it: on POSIX a rename within one directory
is atomic. A destination on another TensorFlow file system (`gs://...`) is
written locally first, copied next to its destination, then moved into
place (`nasp_tf.fs.move`). No TensorFlow here unless the path is a URL.
"""

import contextlib
import os
import shutil
import tempfile
import uuid

from nasp_tf import fs


def _temporary_name(path):
    # A hidden, unique name in the same directory (the rename stays on one
    # file system, concurrent writers never share a temporary) that ends like
    # the real one, for writers that choose the format by the extension.
    return fs.join(fs.dirname(path), f".tmp-{uuid.uuid4().hex[:8]}-{fs.basename(path)}")


def _replace(tmp, path):
    """Puts `tmp` in the place of `path`, so that at every moment one whole
    copy (the old one at `path`, or the new one at `tmp`) exists."""
    if fs.isdir(tmp) and fs.isdir(path):
        # Directories cannot be renamed over non-empty ones: move the old
        # one aside first.
        old = _temporary_name(path)
        fs.move(path, old)
        fs.move(tmp, path)
        fs.remove(old)
    else:
        fs.move(tmp, path)


@contextlib.contextmanager
def writing(path):
    """Yields a temporary local path to write a file or a directory to; on
    success it replaces `path` (an existing directory is replaced as a
    whole), on failure the temporaries are removed and `path` is untouched."""
    fs.makedirs(fs.dirname(path))
    if fs.is_remote(path):
        # Writers (numpy, matplotlib, Keras, TFLite) write local files.
        local_dir = tempfile.mkdtemp(prefix="nasp_tf_")
        tmp = _temporary_name(path)
        try:
            local = os.path.join(local_dir, fs.basename(path))
            yield local
            fs.upload(local, tmp)
            _replace(tmp, path)
        finally:
            shutil.rmtree(local_dir, ignore_errors=True)
            fs.remove(tmp)
        return
    tmp = _temporary_name(path)
    try:
        yield tmp
        _replace(tmp, path)
    finally:
        fs.remove(tmp)


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
    fs.makedirs(fs.dirname(path))
    with fs.open_append(path) as f:
        f.write(text)
    return path
