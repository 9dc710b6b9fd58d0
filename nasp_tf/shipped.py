"""Where the files shipped with nasp_tf are: the flagfiles of configs/."""

import os

PACKAGE = os.path.dirname(os.path.abspath(__file__))


def config_dirs():
    """Where the shipped flagfiles are: nasp_tf/configs in an installed package
    (setup.py installs the repository's configs/ there), configs/ next to the
    package in a checkout."""
    return [os.path.join(PACKAGE, "configs"), os.path.join(os.path.dirname(PACKAGE), "configs")]


def config_path(name):
    """The path of the shipped flagfile `name` (e.g. "quickstart.flags")."""
    for directory in config_dirs():
        candidate = os.path.join(directory, name)
        if os.path.isfile(candidate):
            return candidate
    raise FileNotFoundError(f"no shipped config {name!r} in {config_dirs()}")


def resolve_flagfile(path):
    """The file a --flagfile value names: the path itself when it exists
    (relative to the current directory), else the shipped config of that name
    when the value is a bare name or configs/<name> (e.g. `quickstart.flags`,
    `configs/quickstart.flags`), else the path as given (absl reports it)."""
    if os.path.exists(path) or os.path.dirname(os.path.normpath(path)) not in ("", "configs"):
        return path
    for directory in config_dirs():
        candidate = os.path.join(directory, os.path.basename(path))
        if os.path.isfile(candidate):
            return candidate
    return path
