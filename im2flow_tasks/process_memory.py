"""Hand memory a finished stage freed back to the operating system.

`im2flow pipeline` runs every stage in one driver process. Python and glibc keep freed memory for reuse:
after recognition on UCF-101's count of videos the driver stayed at recognition's peak through the
next stage, though that stage needed less. Between stages nothing is live that the next one needs,
so the freed pages can go back.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import sys
from functools import cache


@cache
def _malloc_trim() -> ctypes._CFuncPtr | None:
    """glibc's `malloc_trim`, or None where the C library is not glibc (macOS, musl, Windows)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim
    except (OSError, AttributeError):
        return None


def release_freed_memory() -> bool:
    """Collect garbage cycles, then return free heap pages to the OS; True if glibc trimmed anything."""
    gc.collect()
    trim = _malloc_trim()
    return bool(trim(0)) if trim is not None else False
