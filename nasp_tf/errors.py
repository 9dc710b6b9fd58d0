"""The error types of nasp_tf, in one place.

`UserError`s are problems with what the user gave (flags, data, genotypes,
run directories): the binaries print their message as one line and exit
with code 2. `RunFailed` is a run that started but could not finish (a
diverged loss): one line and exit code 1. Every message says what is wrong
and what to do.
"""


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
