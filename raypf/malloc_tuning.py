"""Keep freed memory in the process heap instead of returning it to the OS.

Array code allocates and frees multi-MB temporaries at every step. With glibc's
defaults these are mmapped and unmapped each time, so every reuse page-faults
the memory back in: about 7 % of the detector simulation's CPU time. Raising
the mmap and trim thresholds keeps such blocks in the heap. A no-op where glibc
is not the allocator.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging

log = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3


@functools.lru_cache(maxsize=1)
def keep_freed_memory(mmap_threshold: int = 512 << 20, trim_threshold: int = 1 << 30) -> bool:
    """Tune glibc malloc for large, short-lived arrays; returns whether it applied."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    ok = all(
        mallopt(option, value)
        for option, value in ((_M_MMAP_THRESHOLD, mmap_threshold), (_M_TRIM_THRESHOLD, trim_threshold), (_M_TOP_PAD, 64 << 20))
    )
    log.debug("glibc malloc tuned for large temporaries: %s", ok)
    return bool(ok)
