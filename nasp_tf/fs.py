"""File operations on a local path or on any TensorFlow file system.

A run directory may be local (`runs/x`) or a URL of a file system TensorFlow
knows (`gs://bucket/run`, `s3://...`, `hdfs://...`, the in-memory `ram://`).
Every read and write of a run goes through this module: local paths use the
os module, so the flag checks that run before TensorFlow loads stay fast;
URLs go through `tf.io.gfile`, imported only then.
"""

import os
import re
import shutil

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_remote(path):
    """Whether `path` is a URL (`scheme://...`) rather than a local path."""
    return bool(_SCHEME.match(str(path)))


def _gfile():
    import tensorflow as tf  # only for URLs: local paths need no TensorFlow

    return tf.io.gfile


def join(path, *parts):
    return os.path.join(path, *parts)  # "/" separators: URLs join the same way


def dirname(path):
    """The parent of `path`; a local path is made absolute first."""
    return os.path.dirname(path if is_remote(path) else os.path.abspath(path))


def basename(path):
    return os.path.basename(str(path).rstrip("/"))


def exists(path):
    return _gfile().exists(path) if is_remote(path) else os.path.lexists(path)


def isdir(path):
    return _gfile().isdir(path) if is_remote(path) else os.path.isdir(path)


def isfile(path):
    if is_remote(path):
        return _gfile().exists(path) and not _gfile().isdir(path)
    return os.path.isfile(path)


def listdir(path):
    """The names in directory `path` (no trailing "/" on subdirectories)."""
    if is_remote(path):
        gfile = _gfile()
        # TensorFlow's ram:// lists by string prefix: in `run` it also lists
        # `.old-1` for a sibling `run.old-1`. Keep the names that exist.
        names = {name.rstrip("/") for name in gfile.listdir(path)}
        return sorted(n for n in names if gfile.exists(join(path, n)))
    return sorted(os.listdir(path))


def makedirs(path):
    if is_remote(path):
        _gfile().makedirs(path)
    else:
        os.makedirs(path, exist_ok=True)


def remove(path):
    """Removes the file or the directory tree `path` (nothing if it is absent)."""
    if is_remote(path):
        import tensorflow as tf

        try:
            if tf.io.gfile.isdir(path):
                tf.io.gfile.rmtree(path)
            elif tf.io.gfile.exists(path):
                tf.io.gfile.remove(path)
        except tf.errors.NotFoundError:
            pass  # an emptied directory is gone already on object stores
    elif os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.remove(path)


def read_text(path):
    """The UTF-8 text of file `path`."""
    if is_remote(path):
        with _gfile().GFile(path, "rb") as f:
            return f.read().decode("utf-8")
    with open(path, encoding="utf-8") as f:
        return f.read()


def read_bytes(path):
    if is_remote(path):
        with _gfile().GFile(path, "rb") as f:
            return f.read()
    with open(path, "rb") as f:
        return f.read()


def open_append(path):
    """A text stream appending to `path` (created if absent)."""
    if is_remote(path):
        return _gfile().GFile(path, "a")
    return open(path, "a", encoding="utf-8")


def files_under(directory):
    """The files of the tree `directory`, as paths relative to it."""
    found = []
    if is_remote(directory):
        for name in listdir(directory):
            if isdir(join(directory, name)):
                found += [join(name, n) for n in files_under(join(directory, name))]
            else:
                found.append(name)
    else:
        for root, _, names in os.walk(directory):
            relative = os.path.relpath(root, directory)
            found += [n if relative == "." else os.path.join(relative, n) for n in names]
    return sorted(found)


def move(source, target):
    """Renames file or directory `source` to `target` (which must not exist).

    Local: one `os.replace`, atomic. URL: file by file, because object stores
    (and TensorFlow's ram://) do not rename directories as a whole; every
    file appears whole (each is one object), the tree file by file.
    """
    if not is_remote(source):
        os.replace(source, target)
        return
    is_tree = _gfile().isdir(source)
    _each_file(source, target, is_tree, _gfile().rename)
    if is_tree:
        remove(source)


def _each_file(source, target, is_tree, transfer):
    """`transfer(from, to, overwrite=True)` of file `source` to `target`, or
    of every file of the tree `source` to the same place under the URL
    `target`."""
    if not is_tree:
        transfer(source, target, overwrite=True)
        return
    _gfile().makedirs(target)
    for relative in files_under(source):
        _gfile().makedirs(dirname(join(target, relative)))
        transfer(join(source, relative), join(target, relative), overwrite=True)


def upload(local, target):
    """Copies local file or directory `local` to the URL `target`."""
    _each_file(local, target, os.path.isdir(local), _gfile().copy)
