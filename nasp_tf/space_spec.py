"""`--space=module:function`: a search space of the user's own, named on the
command line.

`module` is an importable module (the current directory is searched first,
as `python -m` does) or a path to a `.py` file; `function()` takes no
arguments and returns a built Keras model with `nasp_tf.Choice` /
`nasp_tf.InputChoice` layers (`nasp_tf.choice`). The shipped examples are
such functions: `--space=examples/custom_spaces.py:tabular_space`.

`problem` checks what can be checked without importing anything (the form,
that the module or file exists); `load_function` imports the module, which
runs the user's code, and is called once TensorFlow has loaded. No
TensorFlow here.
"""

import importlib
import importlib.util
import os
import sys

from nasp_tf import spaces
from nasp_tf.errors import UserError

# The cell spaces bin/search.py has built in.
BUILT_IN = spaces.USER_SPACES


def is_custom(space):
    """Whether a --space value names a space of the user's own."""
    return bool(space) and space not in BUILT_IN


def _parts(spec):
    module, colon, function = spec.rpartition(":")
    return module, colon, function


def problem(spec):
    """Why `spec` cannot name a space, as a one-line message, or None. Looks
    for the module without running it."""
    module, colon, function = _parts(spec)
    form = (f"give {', '.join(BUILT_IN)}, or a space of your own as module:function (an "
            "importable module, or a path to a .py file, and a function returning a Keras "
            "model with nasp_tf.Choice layers)")
    if not colon or not module or not function:
        return f"--space names no space. Received: {spec!r}; {form}"
    if not function.isidentifier():
        return f"--space: {function!r} is not a Python function name. Received: {spec!r}; {form}"
    if module.endswith(".py"):
        if not os.path.isfile(module):
            return (f"--space: the file {module!r} does not exist. Received: {spec!r}; give "
                    "the path of a .py file, relative to the current directory or absolute")
        return None
    if not all(part.isidentifier() for part in module.split(".")):
        return (f"--space: {module!r} is neither a module name nor a .py file. Received: "
                f"{spec!r}; {form}")
    top = module.split(".")[0]
    with _current_directory_first():
        found = importlib.util.find_spec(top)
    if found is None:
        return (f"--space: no module named {top!r} (searched the current directory "
                f"{os.getcwd()} and the Python path). Received: {spec!r}; run from the "
                "directory that holds it, or give the path of its .py file")
    return None


class _current_directory_first:
    """sys.path with the current directory in front, for the time of an import."""

    def __enter__(self):
        self.added = os.getcwd() not in sys.path
        if self.added:
            sys.path.insert(0, os.getcwd())

    def __exit__(self, *exc):
        if self.added and os.getcwd() in sys.path:
            sys.path.remove(os.getcwd())


def load_function(spec):
    """Imports `spec`'s module and returns its function. Raises `UserError`
    with one line when the module fails to import (the user's own error is
    named) or has no such function."""
    message = problem(spec)
    if message:
        raise UserError(message)
    module_name, _, function_name = _parts(spec)
    try:
        if module_name.endswith(".py"):
            path = os.path.abspath(module_name)
            name = "nasp_tf_space_" + os.path.splitext(os.path.basename(path))[0]
            module_spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[name] = module  # so that its classes can be pickled by reference
            module_spec.loader.exec_module(module)
        else:
            with _current_directory_first():
                module = importlib.import_module(module_name)
    except Exception as e:  # the user's code: any error it raises is theirs to fix
        raise UserError(f"--space={spec}: importing {module_name} failed: "
                        f"{type(e).__name__}: {first_line(e)}; fix the module, or try "
                        f"`python -c \"import {module_name}\"` to see the whole "
                        "traceback" if not module_name.endswith(".py") else
                        f"--space={spec}: running {module_name} failed: "
                        f"{type(e).__name__}: {first_line(e)}; fix the file (`python "
                        f"{module_name}` shows the whole traceback)") from None
    function = getattr(module, function_name, None)
    if not callable(function):
        found = sorted(n for n, v in vars(module).items()
                       if callable(v) and not n.startswith("_")
                       and getattr(v, "__module__", None) == module.__name__)
        raise UserError(f"--space={spec}: {module_name} has no function {function_name!r}. "
                        f"Received: its functions are {', '.join(found) or '(none)'}")
    return function


def first_line(error):
    """The first line of an exception's message (for one-line refusals)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else "(no message)"
