"""Limits the storage-fault tests put on a program's process, applied in the
child before the program runs (by tests/prewarmed.py, or as a Popen
`preexec_fn`). No TensorFlow here."""

import os
import resource
import signal

NAMES = ("fsize", "drop_dac_override")


def apply(fsize=None, drop_dac_override=False):
    """`fsize`: bytes per file written (SIGXFSZ ignored, so that a write past
    it fails with EFBIG as on a full disk). `drop_dac_override`: root gives up
    writing into read-only directories (the capabilities CAP_DAC_OVERRIDE and
    CAP_DAC_READ_SEARCH), so that file modes hold."""
    if fsize:
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    if drop_dac_override and os.geteuid() == 0:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        # From the bounding set, for a program exec'd after this (a Popen)...
        for capability in (1, 2):
            if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
                raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")
        # ... and from this process's own sets, for one that is not (a fork).
        header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
        data = (ctypes.c_uint32 * 6)()  # (effective, permitted, inheritable) x 2 words
        if libc.capget(header, data) != 0:
            raise OSError(ctypes.get_errno(), "capget")
        mask = ~((1 << 1) | (1 << 2)) & 0xFFFFFFFF
        data[0] &= mask  # effective, low word
        data[1] &= mask  # permitted, low word
        if libc.capset(header, data) != 0:
            raise OSError(ctypes.get_errno(), "capset")
