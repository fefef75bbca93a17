"""Take the network away from the current process for good (Linux seccomp), before it runs queries.

Why: the SPARQL engine can fetch a ``SERVICE`` endpoint. The query checker refuses ``SERVICE``,
but a checker is one parser difference away from a bypass; a process that cannot create an IP
socket cannot fetch anything, whatever query reaches its engine. The filter makes
``socket(AF_INET…)`` and every other family but ``AF_UNIX`` fail with ``EACCES``; it is
inherited by every thread started afterwards and cannot be lifted (``no_new_privs``). Install it
first thing in a fresh, single-threaded process.

Where seccomp is not available (another OS or CPU), :func:`deny_network` returns False and the
caller says so in its log; the checker then stands alone.
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys
from typing import Final

_PR_SET_NO_NEW_PRIVS: Final = 38
_PR_SET_SECCOMP: Final = 22
_SECCOMP_MODE_FILTER: Final = 2
_SECCOMP_RET_ALLOW: Final = 0x7FFF0000
_SECCOMP_RET_ERRNO: Final = 0x00050000
_EACCES: Final = 13
_AF_UNIX: Final = 1
# seccomp_data: int nr @0, u32 arch @4, u64 ip @8, u64 args[6] @16 (the low word first).
_OFFSET_NR: Final = 0
_OFFSET_ARCH: Final = 4
_OFFSET_ARG0: Final = 16
_BPF_LD_W_ABS: Final = 0x20
_BPF_JEQ_K: Final = 0x15
_BPF_RET_K: Final = 0x06
# machine -> (AUDIT_ARCH_*, number of the socket syscall)
_ARCHITECTURES: Final = {"x86_64": (0xC000003E, 41), "aarch64": (0xC00000B7, 198)}


class _SockFilter(ctypes.Structure):
    _fields_ = [
        ("code", ctypes.c_ushort),
        ("jt", ctypes.c_ubyte),
        ("jf", ctypes.c_ubyte),
        ("k", ctypes.c_uint),
    ]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


def _program(arch: int, socket_call: int) -> list[tuple[int, int, int, int]]:
    """socket(family != AF_UNIX) -> EACCES; everything else allowed. Jumps count from the next line."""
    return [
        (_BPF_LD_W_ABS, 0, 0, _OFFSET_ARCH),
        (_BPF_JEQ_K, 0, 5, arch),  # another ABI: allow (the process runs only this one)
        (_BPF_LD_W_ABS, 0, 0, _OFFSET_NR),
        (_BPF_JEQ_K, 0, 3, socket_call),
        (_BPF_LD_W_ABS, 0, 0, _OFFSET_ARG0),
        (_BPF_JEQ_K, 1, 0, _AF_UNIX),
        (_BPF_RET_K, 0, 0, _SECCOMP_RET_ERRNO | _EACCES),
        (_BPF_RET_K, 0, 0, _SECCOMP_RET_ALLOW),
    ]


def deny_network() -> bool:
    """Install the filter in this process; True when it is in force."""
    known = _ARCHITECTURES.get(platform.machine())
    if not sys.platform.startswith("linux") or known is None:
        return False
    if len(os.listdir("/proc/self/task")) != 1:
        return False  # the filter would bind only this thread; other threads would keep the network
    libc = ctypes.CDLL(None, use_errno=True)
    instructions = [_SockFilter(*line) for line in _program(*known)]
    table = (_SockFilter * len(instructions))(*instructions)
    program = _SockFprog(len(instructions), table)
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        return False
    return bool(libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(program), 0, 0) == 0)
